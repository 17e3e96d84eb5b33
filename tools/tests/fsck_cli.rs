//! `fsck-vexfs` as a program: exit codes as e2fsck's (0 clean, 1 corrected,
//! 4 left uncorrected, 8 cannot check), `-n` changes no byte, `-p` refuses
//! what it must not fix without changing a byte, `-y` fixes and a second
//! run is clean, and `--json` says the same.
//!
//! One test at a time (a child forked by one test would hold another
//! test's image lock until it execs), like the other tools tests.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::fs::{alloc, dir};
use vexfs::mkfs::{mkfs, MkfsOptions};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn image(dir: &Path) -> PathBuf {
    let path = dir.join("f.img");
    let opts = MkfsOptions {
        size: Some(16 << 20),
        uuid: Some([7; 16]),
        time: Some(1_700_000_000),
        ..Default::default()
    };
    mkfs(&path, &opts, &mut |_, _| {}).unwrap();
    let fs = Fs::open(&path, false).unwrap();
    let f = fs.create(&Ctx::root(), 1, b"keep", 0o644, NewNode::File).unwrap();
    fs.write_data(f.ino.into(), 0, &[0x5a; 10_000]).unwrap();
    fs.close().unwrap();
    path
}

/// Change the image through a transaction of the core (the damage).
fn damage(path: &Path, f: impl FnMut(&mut vexfs::fs::txn::Txn<'_>, &vexfs::layout::Geometry) -> vexfs::Result<()>) {
    let fs = Fs::open(path, false).unwrap();
    fs.write(f).unwrap();
    fs.close().unwrap();
}

/// Run fsck; (exit code, stdout, stderr).
fn fsck(args: &[&str], path: &Path) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_fsck-vexfs"))
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (
        o.status.code().expect("not killed by a signal"),
        text(o.stdout),
        text(o.stderr),
    )
}

#[test]
fn exit_codes_and_what_each_mode_changes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let path = image(tmp.path());
    assert_eq!(fsck(&["-n"], &path).0, 0, "a clean image");

    // A leaked block: safe to fix, so -p fixes it too.
    damage(&path, |txn, g| {
        alloc::alloc_blocks(txn, g, g.first_data_block, 1).map(|_| ())
    });
    let before = std::fs::read(&path).unwrap();
    let (code, out, _) = fsck(&["-n"], &path);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("leaked"), "{out}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "-n changes nothing");
    let (code, out, err) = fsck(&["-p"], &path);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("fixed: block"), "{out}");
    assert_eq!(fsck(&["-n"], &path).0, 0);

    // A directory entry naming a free inode: not for -p, which refuses
    // without changing a byte; -y removes it.
    damage(&path, |txn, g| {
        let root = vexfs::fs::core::live_dir(txn, g, vexfs::format::inode::InodeNo::ROOT)?;
        let mut root = root;
        dir::add(txn, g, &mut root, b"ghost", g.inodes_count - 1, 1)
    });
    let before = std::fs::read(&path).unwrap();
    let (code, out, err) = fsck(&["-p"], &path);
    assert_eq!(code, 4, "{out}{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "-p refused and changed nothing");
    let (code, out, err) = fsck(&["-y", "--json"], &path);
    assert_eq!(code, 1, "{out}{err}");
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["exit"], 1, "{v}");
    assert!(v["fixed"].as_array().is_some_and(|f| !f.is_empty()), "{v}");
    assert_eq!(fsck(&["-n"], &path).0, 0, "a second check is clean");

    // Data intact.
    let fs = Fs::open(&path, true).unwrap();
    let keep = fs.lookup(&Ctx::root(), 1, b"keep").unwrap();
    assert_eq!(fs.read_data(keep.ino.into(), 0, 10_000).unwrap(), vec![0x5a; 10_000]);
}

#[test]
fn an_image_that_cannot_be_checked_exits_8() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("junk.img");
    std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
    let (code, _, err) = fsck(&["-n"], &path);
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("s_magic"), "{err}");
}

/// An image left by a crash with committed transactions in the journal:
/// fsck replays them first (and says so), then finds the image clean, with
/// the fsync'd file in it.
#[test]
fn a_crashed_image_is_replayed_then_clean() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let path = image(tmp.path());
    let crashed = tmp.path().join("crashed.img");
    {
        let fs = Fs::open(&path, false).unwrap();
        let f = fs.create(&Ctx::root(), 1, b"synced", 0o644, NewNode::File).unwrap();
        fs.write_data(f.ino.into(), 0, b"durable").unwrap();
        fs.sync().unwrap();
        // The image as a power cut now would leave it: mounted, journal full.
        std::fs::copy(&path, &crashed).unwrap();
        fs.close().unwrap();
    }
    let (code, out, err) = fsck(&["-n"], &crashed);
    assert_eq!(code, 4, "-n does not replay, and says it is needed: {out}{err}");
    assert!(out.contains("need replay"), "{out}");
    let (code, out, err) = fsck(&["-y"], &crashed);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("replayed"), "{err}");
    let fs = Fs::open(&crashed, true).unwrap();
    let f = fs.lookup(&Ctx::root(), 1, b"synced").unwrap();
    assert_eq!(fs.read_data(f.ino.into(), 0, 100).unwrap(), b"durable");
}
