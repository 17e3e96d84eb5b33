//! vexctl's command line: values that look like options, and mkfs's
//! --force on an existing image without --size.

use std::process::Command;

#[test]
fn a_query_vector_may_start_with_a_minus_sign() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("v.img");
    let mkfs = Command::new(env!("CARGO_BIN_EXE_mkfs-vexfs"))
        .args(["-q", "--size", "64M", "--collection", "docs:4:l2"])
        .arg(&img)
        .status()
        .unwrap();
    assert!(mkfs.success());
    let out = Command::new(env!("CARGO_BIN_EXE_vexctl"))
        .arg("search")
        .arg(&img)
        .args(["docs", "--vector", "-0.5,1,0,0", "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
}

#[test]
fn mkfs_force_without_a_size_keeps_the_image_file() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("f.img");
    let mkfs = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mkfs-vexfs"))
            .args(args)
            .arg(&img)
            .status()
            .unwrap()
    };
    assert!(mkfs(&["-q", "--size", "64M"]).success());
    assert!(mkfs(&["-q", "--force"]).success());
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 64 << 20);
    let fsck = Command::new(env!("CARGO_BIN_EXE_fsck-vexfs"))
        .arg("-n")
        .arg(&img)
        .status()
        .unwrap();
    assert!(fsck.success());
}
