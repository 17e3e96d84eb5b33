//! Clearing setuid/setgid on write and truncate in the core: the FUSE mount
//! negotiates FUSE_HANDLE_KILLPRIV_V2, so the kernel leaves it to us (it
//! no longer sends a mode change of its own, nor asks GETXATTR
//! security.capability before every write).

mod common;

use common::*;
use vexfs::fs::attrs::SetAttr;
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;

const ROOT: u64 = 1;

fn user() -> Ctx {
    Ctx {
        uid: 1000,
        gid: 1000,
        ..Ctx::default()
    }
}

/// A file owned by root with `mode` (writable by all).
fn file(fs: &Fs, name: &[u8], mode: u16) -> u64 {
    let c = Ctx::root();
    let f = fs.create(&c, ROOT, name, 0o666, NewNode::File).unwrap().ino.into();
    let m = SetAttr {
        mode: Some(mode),
        ..SetAttr::default()
    };
    fs.setattr(&c, f, &m).unwrap();
    f
}

fn mode(fs: &Fs, f: u64) -> u16 {
    fs.getattr(f).unwrap().perm & 0o7777
}

#[test]
fn a_write_asked_to_kill_privileges_clears_setuid_and_group_exec_setgid() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "k.img", 16 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    let a = file(&fs, b"a", 0o6777);
    fs.write_killing_privs(Some(&user()), a, 0, b"x", false).unwrap();
    assert_eq!(mode(&fs, a), 0o6777, "not asked: the bits stay");
    fs.write_killing_privs(Some(&user()), a, 1, b"y", true).unwrap();
    assert_eq!(mode(&fs, a), 0o777);
    // Setgid without group execute is a locking mark, not a privilege.
    let b = file(&fs, b"b", 0o6766);
    fs.write_killing_privs(Some(&user()), b, 0, b"x", true).unwrap();
    assert_eq!(mode(&fs, b), 0o2766);
    assert_eq!(fs.read_data(a, 0, 9).unwrap(), b"xy");
}

#[test]
fn a_truncate_by_anyone_but_root_clears_setuid() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "t.img", 16 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    let f = file(&fs, b"f", 0o6777);
    let size = |n| SetAttr {
        size: Some(n),
        ..SetAttr::default()
    };
    fs.setattr(&Ctx::root(), f, &size(10)).unwrap();
    assert_eq!(mode(&fs, f), 0o6777, "root (CAP_FSETID) keeps the bits");
    fs.setattr(&user(), f, &size(5)).unwrap();
    assert_eq!(mode(&fs, f), 0o777);
    assert_eq!(fs.getattr(f).unwrap().size, 5);
    fs.sync().unwrap();
    drop(fs);
    assert!(fsck(&p).unwrap().is_clean());
}
