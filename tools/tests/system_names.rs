//! `mkfs -t vexfs` and `fsck -t vexfs` find the tools under their system
//! names (mkfs.vexfs / fsck.vexfs on PATH), and exit codes follow fsck's
//! conventions.

use std::path::Path;
use std::process::Command;

fn link_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mkfs-vexfs"), d.path().join("mkfs.vexfs")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_fsck-vexfs"), d.path().join("fsck.vexfs")).unwrap();
    d
}

fn path_with(dir: &Path) -> String {
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn mkfs_and_fsck_dispatch_by_type() {
    if !Path::new("/usr/sbin/mkfs").exists() && !Path::new("/sbin/mkfs").exists() {
        eprintln!("SKIPPED: util-linux mkfs is not installed");
        return;
    }
    let links = link_dir();
    let work = tempfile::tempdir().unwrap();
    let img = work.path().join("sys.img");
    let out = Command::new("mkfs")
        .args(["-t", "vexfs", "--size", "16M", "--label", "sys"])
        .arg(&img)
        .env("PATH", path_with(links.path()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mkfs -t vexfs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Created a VexFS v1 image"));
    let out = Command::new("fsck")
        .args(["-t", "vexfs"])
        .arg(&img)
        .env("PATH", path_with(links.path()))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "fsck -t vexfs: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn fsck_exit_codes() {
    let work = tempfile::tempdir().unwrap();
    let img = work.path().join("x.img");
    let mkfs = env!("CARGO_BIN_EXE_mkfs-vexfs");
    let fsck = env!("CARGO_BIN_EXE_fsck-vexfs");
    assert!(Command::new(mkfs)
        .args(["-q", "--size", "8M"])
        .arg(&img)
        .status()
        .unwrap()
        .success());
    assert_eq!(Command::new(fsck).arg(&img).status().unwrap().code(), Some(0));
    // Damage the root directory's inode link count: a problem, exit 4.
    let bytes = std::fs::read(&img).unwrap();
    let table = u64::from_le_bytes(bytes[712..720].try_into().unwrap()) as usize * 4096;
    let mut damaged = bytes.clone();
    damaged[table + 2] = 7;
    std::fs::write(&img, &damaged).unwrap();
    let out = Command::new(fsck).arg("--json").arg(&img).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["clean"], false);
    assert!(
        v["problems"][0]["message"].as_str().unwrap().contains("i_checksum"),
        "{v}"
    );
    // Not an image at all: exit 8 with the reason.
    std::fs::write(&img, vec![0u8; 8192]).unwrap();
    let out = Command::new(fsck).arg(&img).output().unwrap();
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains("s_magic"));
}

#[test]
fn mkfs_refuses_bad_arguments_with_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    let mkfs = env!("CARGO_BIN_EXE_mkfs-vexfs");
    let cases: [(&[&str], &str); 4] = [
        (&["--size", "1M"], "at least 8 MiB"),
        (&["--size", "200M", "--kernel-layout"], "at most 128 MiB"),
        (&["--size", "16M", "--collection", "x:0:l2"], "dimension 0"),
        (&["--size", "12Q"], "unknown size unit"),
    ];
    for (i, (args, want)) in cases.iter().enumerate() {
        let out = Command::new(mkfs)
            .args(*args)
            .arg(work.path().join(format!("{i}.img")))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
