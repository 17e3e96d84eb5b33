//! Issue 8 through a real mount: an unlinked inode stays allocated until
//! the kernel forgets it (FORGET) and its last handle is closed, so what
//! the kernel still sends for it meanwhile (with `-o writeback_cache`: the
//! times it writes back after the unlink) cannot land on a new file that
//! took its number; and it is freed then (no leak), or at the unmount.
//!
//! Needs /dev/fuse and root (see `common::fuse::fuse_usable`); the tests
//! print SKIPPED and pass without them, except under CI.

mod common;

use common::fuse::{fuse_usable, mount_with, serial, unmount, wait};
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use vexfs::fs::core::Fs;
use vexfs::fs::perm::Ctx;

struct Setup {
    _tmp: tempfile::TempDir,
    image: PathBuf,
    mnt: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let image = common::make_image(tmp.path(), "fs.img", 64 << 20, false);
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    Setup { _tmp: tmp, image, mnt }
}

/// Files unlinked (and new files made) by the reuse tests.
const ROUNDS: usize = 300;

fn free_inodes(p: &Path) -> u64 {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: statvfs fills the zeroed struct for a valid path.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(c.as_ptr(), &mut s), 0, "statvfs");
        s.f_ffree
    }
}

/// A regular file made by MKNOD alone (no open: one request).
fn mknod(p: &Path) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C path.
    assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFREG | 0o644, 0) }, 0, "mknod");
}

fn content(j: usize) -> Vec<u8> {
    (0..5000 + j % 3000).map(|i| (i * 31 + j * 7) as u8).collect()
}

fn assert_fsck_clean(image: &Path) {
    let r = common::fsck(image).expect("fsck opens the image");
    assert!(r.is_clean(), "fsck: {:#?}", r.problems);
}

/// Each round writes a file, unlinks it while the kernel still holds it
/// (an O_PATH descriptor: no OPEN reaches the daemon, so only the kernel's
/// reference keeps it) and makes a new file in the same directory, which
/// would take the unlinked one's number were it freed at the unlink. Then
/// the kernel sends what it may send for the unlinked inode until it
/// forgets it: new times and a new mode (through `/proc/self/fd`, as the
/// writeback cache writes times back after an unlink). They must land on
/// the unlinked inode, never on the new file: its times, mode and contents
/// stay intact.
fn requests_for_unlinked_inodes_do_not_land_on_new_files(opts: &[&str]) {
    if !fuse_usable() {
        return;
    }
    let _g = serial();
    let s = setup();
    let m = mount_with(&s.image, &s.mnt, opts);
    let d = s.mnt.join("d");
    fs::create_dir(&d).unwrap();
    let d_ino = fs::metadata(&d).unwrap().ino();
    for i in 0..ROUNDS {
        let v = d.join(format!("victim{i}"));
        fs::write(&v, [i as u8; 4096]).unwrap();
        let held = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(&v)
            .unwrap();
        fs::remove_file(&v).unwrap();
        let n = d.join(format!("new{i}"));
        // Every fourth new file gets contents (its mtime is the kernel's
        // then); the others are only made: mtime stays the creation time.
        match i % 4 {
            0 => fs::write(&n, content(i)).unwrap(),
            _ => mknod(&n),
        }
        let proc_path = PathBuf::from(format!("/proc/self/fd/{}", held.as_raw_fd()));
        set_mtime(&proc_path, 1_000_000_000 + i as i64);
        fs::set_permissions(&proc_path, fs::Permissions::from_mode(0o600)).unwrap();
        let md = held.metadata().unwrap();
        assert_eq!(
            (md.nlink(), md.mtime(), md.mode() & 0o7777),
            (0, 1_000_000_000 + i as i64, 0o600)
        );
    }
    unmount(m);
    let fs = Fs::open(&s.image, true).unwrap();
    let c = Ctx::root();
    let mut wrong = Vec::new();
    for i in 0..ROUNDS {
        let name = format!("new{i}");
        let a = fs.lookup(&c, d_ino, name.as_bytes()).unwrap();
        if i % 4 == 0 {
            assert_eq!(fs.read_data(a.ino.into(), 0, 10_000).unwrap(), content(i), "{name}");
        } else if a.mtime != a.crtime {
            wrong.push((name.clone(), "mtime", a.mtime.sec));
        }
        if a.perm != 0o644 {
            wrong.push((name, "mode", a.perm.into()));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} changes meant for unlinked inodes landed on new files, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(4)]
    );
    assert!(fs.lookup(&c, d_ino, b"victim0").is_err());
    drop(fs);
    assert_fsck_clean(&s.image);
}

#[test]
fn requests_for_unlinked_inodes_do_not_land_on_new_files_with_the_writeback_cache() {
    requests_for_unlinked_inodes_do_not_land_on_new_files(&["-o", "writeback_cache"]);
}

#[test]
fn requests_for_unlinked_inodes_do_not_land_on_new_files_without_the_writeback_cache() {
    requests_for_unlinked_inodes_do_not_land_on_new_files(&[]);
}

fn set_mtime(p: &Path, sec: i64) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let t = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: sec,
            tv_nsec: 0,
        },
    ];
    // SAFETY: a valid C path and two timespecs.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), t.as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat {}: {}", p.display(), std::io::Error::last_os_error());
}

/// An inode the kernel holds without an open handle (an O_PATH descriptor
/// sends no OPEN) stays allocated after its unlink, until the descriptor
/// is closed and the kernel forgets the inode; every unlinked inode is
/// freed then, with the writeback cache or without.
fn unlinked_inodes_are_freed_once_forgotten(opts: &[&str]) {
    if !fuse_usable() {
        return;
    }
    let _g = serial();
    let s = setup();
    let free_at_mkfs = Fs::open(&s.image, true).unwrap().statfs().unwrap().free_files;
    let m = mount_with(&s.image, &s.mnt, opts);
    let free0 = free_inodes(&s.mnt);
    let p = s.mnt.join("held");
    fs::write(&p, [5u8; 8192]).unwrap();
    let held = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&p)
        .unwrap();
    fs::remove_file(&p).unwrap();
    assert_eq!(free_inodes(&s.mnt), free0 - 1, "freed while the kernel holds it");
    assert_eq!(held.metadata().unwrap().nlink(), 0);
    drop(held);
    wait("the FORGET of the held inode", || free_inodes(&s.mnt) == free0);
    for i in 0..200 {
        let f = s.mnt.join(format!("f{i}"));
        fs::write(&f, [i as u8; 3000]).unwrap();
        fs::remove_file(&f).unwrap();
    }
    let dir = s.mnt.join("dir");
    fs::create_dir(&dir).unwrap();
    fs::remove_dir(&dir).unwrap();
    wait("the FORGETs of the unlinked inodes", || free_inodes(&s.mnt) == free0);
    // One more unlinked right before the unmount.
    let p = s.mnt.join("late");
    fs::write(&p, [6u8; 100]).unwrap();
    let held = File::open(&p).unwrap();
    fs::remove_file(&p).unwrap();
    drop(held);
    unmount(m);
    assert_fsck_clean(&s.image);
    let fs = Fs::open(&s.image, true).unwrap();
    assert_eq!(fs.statfs().unwrap().free_files, free_at_mkfs);
}

#[test]
fn unlinked_inodes_are_freed_once_forgotten_with_the_writeback_cache() {
    unlinked_inodes_are_freed_once_forgotten(&["-o", "writeback_cache"]);
}

#[test]
fn unlinked_inodes_are_freed_once_forgotten_without_the_writeback_cache() {
    unlinked_inodes_are_freed_once_forgotten(&[]);
}
