//! vexctl's command line: values that look like options, mkfs's --force
//! on an existing image without --size, and `vexctl reorder`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `fsck.vexfs -n` finds `img` clean.
fn fsck_clean(img: &Path) -> bool {
    let fsck = Command::new(env!("CARGO_BIN_EXE_fsck-vexfs"))
        .arg("-n")
        .arg(img)
        .status();
    fsck.unwrap().success()
}

/// A 64 MiB image in `dir` with collection docs (4 dimensions, L2).
fn image_with_docs(dir: &Path) -> PathBuf {
    let img = dir.join("v.img");
    let mkfs = Command::new(env!("CARGO_BIN_EXE_mkfs-vexfs"))
        .args(["-q", "--size", "64M", "--collection", "docs:4:l2"])
        .arg(&img)
        .status()
        .unwrap();
    assert!(mkfs.success());
    img
}

#[test]
fn a_query_vector_may_start_with_a_minus_sign() {
    let dir = tempfile::tempdir().unwrap();
    let img = image_with_docs(dir.path());
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
    assert!(fsck_clean(&img));
}

#[test]
fn reorder_renumbers_an_imported_collection_and_names_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let img = image_with_docs(dir.path());
    // 500 vectors on a line, inserted out of order (i * 7 mod 500).
    let fvecs = dir.path().join("v.fvecs");
    let bytes: Vec<u8> = (0..500u32)
        .flat_map(|i| {
            let x = ((i * 7) % 500) as f32;
            [4i32.to_le_bytes()]
                .into_iter()
                .chain([x, 0.0, 0.0, 1.0].map(f32::to_le_bytes))
                .flatten()
        })
        .collect();
    std::fs::write(&fvecs, bytes).unwrap();
    let vexctl = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vexctl"))
            .arg(args[0])
            .arg(&img)
            .args(&args[1..])
            .output()
            .unwrap()
    };
    let import = Command::new(env!("CARGO_BIN_EXE_vexctl"))
        .arg("import")
        .arg(&img)
        .arg("docs")
        .arg(&fvecs)
        .output()
        .unwrap();
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    // The hits as (inode, distance), ties in inode order, and their slots.
    let search = || {
        let out = vexctl(&["search", "docs", "--vector", "250,0,0,1", "-k", "5", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let hits = v["hits"].as_array().unwrap();
        let mut found: Vec<(u64, String)> = hits
            .iter()
            .map(|h| (h["ino"].as_u64().unwrap(), h["distance"].to_string()))
            .collect();
        found.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        let slots: Vec<u64> = hits.iter().map(|h| h["slot"].as_u64().unwrap()).collect();
        let spread = slots.iter().max().unwrap() - slots.iter().min().unwrap();
        (found, spread)
    };
    let (before, spread_before) = search();
    assert!(spread_before > 50, "inserted out of order: {spread_before}");
    let out = vexctl(&["reorder", "docs", "-q"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("reordered docs: 500 slots, "), "{text}");
    let (after, spread_after) = search();
    assert_eq!(after, before, "the same answers");
    // Neighbours on the line now lie in neighbouring slots (measured: 4).
    assert!(spread_after < 10, "{spread_after}");
    let unknown = vexctl(&["reorder", "nosuch"]);
    assert!(!unknown.status.success());
    assert_eq!(
        String::from_utf8_lossy(&unknown.stderr),
        "vexctl: no collection named \"nosuch\"\n"
    );
    assert!(fsck_clean(&img));
}
