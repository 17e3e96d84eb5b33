//! Images built by mkfs are dumped by vexfs-inspect exactly as recorded in
//! tests/golden/ (fixed UUID, time and owner make the output reproducible).
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test`.

use std::path::Path;
use std::process::Command;

const UUID: &str = "0badc0de-0000-4000-8000-00000000beef";

fn mkfs(img: &Path, extra: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_mkfs-vexfs"))
        .args(["-q", "--uuid", UUID, "--root-owner", "0:0", "--label", "golden"])
        .args(extra)
        .arg(img)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn inspect(args: &[&str], img: &Path, after: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vexfs-inspect"))
        .args(args)
        .arg(img)
        .args(after)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn compare(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(got, want, "output differs from {}", path.display());
}

#[test]
fn inspect_output_matches_the_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1.img");
    mkfs(
        &v1,
        &[
            "--size",
            "64M",
            "--collection",
            "docs:384:cosine",
            "--collection",
            "thumbs:64:l2:int8",
        ],
    );
    let kernel = dir.path().join("k.img");
    mkfs(&kernel, &["--size", "4M", "--kernel-layout"]);
    for (name, args, img, after) in [
        ("v1-super.txt", &["super"][..], &v1, &[][..]),
        ("v1-super.json", &["--json", "super"], &v1, &[]),
        ("v1-tree.txt", &["tree"], &v1, &[]),
        ("v1-blocks.txt", &["blocks"], &v1, &[]),
        ("v1-inode1.txt", &["inode"], &v1, &["1"]),
        ("kernel-super.txt", &["super"], &kernel, &[]),
        ("kernel-tree.txt", &["tree"], &kernel, &[]),
        ("kernel-blocks.txt", &["blocks"], &kernel, &[]),
    ] {
        compare(name, &inspect(args, img, after));
    }
    let fsck = Command::new(env!("CARGO_BIN_EXE_fsck-vexfs"))
        .arg(&v1)
        .status()
        .unwrap();
    assert_eq!(fsck.code(), Some(0));
}
