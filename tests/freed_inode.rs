//! Requests about an unlinked inode. With the writeback cache the kernel
//! writes back the times of a file unlinked after its last close (SETATTR)
//! before it forgets the inode. Under FUSE the core therefore keeps such
//! an inode until FORGET ([`Fs::set_kernel_forgets`], [`Fs::forgotten`]):
//! freed at the unlink, its number could already be a new file's, and the
//! times would land on that file (issue 8). A request about an inode that
//! is freed all the same (the core alone frees at the unlink) is ENOENT,
//! not damage: answered as corruption it was logged as such and failed
//! syncfs with EIO (bench-fs -o writeback_cache, metadata phase).

mod common;

use common::*;
use vexfs::error::FsError;
use vexfs::fs::attrs::{SetAttr, TimeSet};
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;

#[test]
fn a_freed_inode_is_not_found_rather_than_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "f.img", 16 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    let c = Ctx::root();
    let f: u64 = fs.create(&c, 1, b"f", 0o644, NewNode::File).unwrap().ino.into();
    fs.write_data(f, 0, b"data").unwrap();
    fs.unlink(&c, 1, b"f").unwrap();
    let times = SetAttr {
        mtime: Some(TimeSet::Now),
        ..SetAttr::default()
    };
    assert!(matches!(fs.setattr(&c, f, &times), Err(FsError::NotFound)));
    assert!(matches!(fs.getattr(f), Err(FsError::NotFound)));
    fs.sync().unwrap();
    drop(fs);
    assert!(fsck(&p).unwrap().is_clean());
}

const ROOT: u64 = 1;

fn free_inodes(fs: &Fs) -> u64 {
    fs.statfs().unwrap().free_files
}

/// A mounted-like core: unlinked inodes wait for `forgotten`.
fn held_fs(p: &std::path::Path) -> Fs {
    let fs = Fs::open(p, false).unwrap();
    fs.set_kernel_forgets(true);
    fs
}

fn file(fs: &Fs, name: &[u8]) -> u64 {
    let f: u64 = fs
        .create(&Ctx::root(), ROOT, name, 0o644, NewNode::File)
        .unwrap()
        .ino
        .into();
    fs.write_data(f, 0, &[7u8; 10_000]).unwrap();
    f
}

#[test]
fn an_unlinked_inode_lives_until_the_kernel_forgets_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "h.img", 16 << 20, false);
    let fs = held_fs(&p);
    let c = Ctx::root();
    let free0 = free_inodes(&fs);
    let f = file(&fs, b"f");
    fs.unlink(&c, ROOT, b"f").unwrap();
    // The kernel may still write back its times: they land on it.
    assert!(fs.awaits_forget(f));
    assert_eq!(fs.getattr(f).unwrap().nlink, 0);
    let t = SetAttr {
        mtime: Some(TimeSet::At(vexfs::format::inode::Timestamp { sec: 12345, nsec: 0 })),
        ..SetAttr::default()
    };
    fs.setattr(&c, f, &t).unwrap();
    assert_eq!(free_inodes(&fs), free0 - 1, "not freed before FORGET");
    // A new file does not get its number meanwhile.
    let g = file(&fs, b"g");
    assert_ne!(g, f);
    // FORGETs of other inodes (a live file, an unknown number) change nothing.
    fs.forgotten(&[g, ROOT, 99_999_999]).unwrap();
    assert_eq!(fs.getattr(f).unwrap().nlink, 0);
    fs.forgotten(&[f]).unwrap();
    assert!(!fs.awaits_forget(f));
    assert!(matches!(fs.getattr(f), Err(FsError::NotFound)));
    assert_eq!(free_inodes(&fs), free0 - 1, "only g is left");
    assert_eq!(fs.getattr(g).unwrap().size, 10_000);
    // A second FORGET of the number (now free) is harmless.
    fs.forgotten(&[f]).unwrap();
    drop(fs);
    assert!(fsck(&p).unwrap().is_clean());
}

#[test]
fn an_open_unlinked_inode_waits_for_both_the_last_close_and_forget() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "o.img", 16 << 20, false);
    let fs = held_fs(&p);
    let c = Ctx::root();
    let free0 = free_inodes(&fs);
    // Closed first, then forgotten.
    let a = file(&fs, b"a");
    fs.opened(a).unwrap();
    fs.unlink(&c, ROOT, b"a").unwrap();
    fs.released(a).unwrap();
    assert_eq!(fs.read_data(a, 0, 4).unwrap(), [7u8; 4], "still held by the kernel");
    fs.forgotten(&[a]).unwrap();
    assert!(matches!(fs.getattr(a), Err(FsError::NotFound)));
    // Forgotten first (the kernel's RELEASE handled late), then closed.
    let b = file(&fs, b"b");
    fs.opened(b).unwrap();
    fs.unlink(&c, ROOT, b"b").unwrap();
    fs.forgotten(&[b]).unwrap();
    assert_eq!(fs.read_data(b, 0, 4).unwrap(), [7u8; 4], "still open");
    fs.released(b).unwrap();
    assert!(matches!(fs.getattr(b), Err(FsError::NotFound)));
    assert_eq!(free_inodes(&fs), free0);
    drop(fs);
    assert!(fsck(&p).unwrap().is_clean());
}

#[test]
fn hard_links_rename_over_and_rmdir_wait_for_forget_at_the_last_link() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "l.img", 16 << 20, false);
    let fs = held_fs(&p);
    let c = Ctx::root();
    let free0 = free_inodes(&fs);
    let a = file(&fs, b"a");
    fs.link(&c, a, ROOT, b"a2").unwrap();
    fs.unlink(&c, ROOT, b"a").unwrap();
    assert!(!fs.awaits_forget(a), "one name left");
    fs.forgotten(&[a]).unwrap();
    assert_eq!(fs.getattr(a).unwrap().nlink, 1, "a FORGET does not free a linked inode");
    fs.unlink(&c, ROOT, b"a2").unwrap();
    assert!(fs.awaits_forget(a));
    // An unlinked inode cannot get a name back.
    assert!(matches!(fs.link(&c, a, ROOT, b"back"), Err(FsError::NotFound)));
    // Renaming over a file drops its last link too.
    let t = file(&fs, b"target");
    file(&fs, b"src");
    fs.rename(&c, ROOT, b"src", ROOT, b"target", 0).unwrap();
    assert!(fs.awaits_forget(t));
    let d: u64 = fs.create(&c, ROOT, b"d", 0o755, NewNode::Dir).unwrap().ino.into();
    fs.rmdir(&c, ROOT, b"d").unwrap();
    assert!(fs.awaits_forget(d));
    assert_eq!(fs.getattr(d).unwrap().nlink, 0);
    fs.forgotten(&[a, t, d]).unwrap();
    for n in [a, t, d] {
        assert!(matches!(fs.getattr(n), Err(FsError::NotFound)));
    }
    assert_eq!(free_inodes(&fs), free0 - 1, "only the renamed file is left");
    drop(fs);
    assert!(fsck(&p).unwrap().is_clean());
}

#[test]
fn inodes_never_forgotten_are_freed_at_unmount_or_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "u.img", 16 << 20, false);
    let c = Ctx::root();
    let free0 = free_inodes(&Fs::open(&p, false).unwrap());
    let crashed = dir.path().join("crashed.img");
    {
        let fs = held_fs(&p);
        for n in [&b"x"[..], b"y"] {
            file(&fs, n);
            fs.unlink(&c, ROOT, n).unwrap();
        }
        // Proof that the copy below holds what came before it.
        file(&fs, b"keep");
        assert_eq!(free_inodes(&fs), free0 - 3);
        // The image as a crash now would leave it: both on the orphan chain.
        fs.sync().unwrap();
        std::fs::copy(&p, &crashed).unwrap();
        // The unmount: the kernel sends no FORGET then, and holds nothing.
    }
    // Read-only: no orphan is released at this open.
    let fs = Fs::open(&p, true).unwrap();
    assert_eq!(free_inodes(&fs), free0 - 1, "freed at unmount");
    drop(fs);
    assert!(fsck(&p).unwrap().is_clean());
    // Opening the crashed image frees the orphans.
    let fs = Fs::open(&crashed, false).unwrap();
    assert_eq!(fs.lookup(&c, ROOT, b"keep").unwrap().size, 10_000);
    assert_eq!(free_inodes(&fs), free0 - 1, "freed at the next mount");
    drop(fs);
    assert!(fsck(&crashed).unwrap().is_clean());
}

#[test]
fn without_the_kernel_an_unlink_frees_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "n.img", 16 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    let free0 = free_inodes(&fs);
    let f = file(&fs, b"f");
    fs.unlink(&Ctx::root(), ROOT, b"f").unwrap();
    assert!(!fs.awaits_forget(f));
    assert_eq!(free_inodes(&fs), free0);
}
