//! An image file truncated by another process while it is open (mapped):
//! the access to a vanished page becomes EIO, never a SIGBUS that kills the
//! process, and the filesystem refuses to go on with the damaged image.

mod common;

use common::fuse::{fuse_usable, mount, wait};
use common::*;
use std::fs::{self, OpenOptions};
use std::path::Path;
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;

const MIB: u64 = 1 << 20;

/// One test at a time: a mount child forked by one test would inherit (until
/// its exec) the other's image descriptor and with it the image's flock.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
const ROOT: u64 = 1;

/// Cut the image file down to `len` bytes behind the opener's back.
fn shrink(image: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(image)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn reading_a_vanished_page_is_eio_and_the_fs_stops() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let image = make_image(dir.path(), "img", 64 * MIB, false);
    let fs = Fs::open(&image, false).unwrap();
    let ctx = Ctx::root();
    let f = fs.create(&ctx, ROOT, b"big", 0o644, NewNode::File).unwrap();
    let data = pattern(32 * MIB as usize);
    fs.write_data(f.ino.into(), 0, &data).unwrap();
    fs.sync().unwrap();
    assert_eq!(fs.read_data(f.ino.into(), 0, 4096).unwrap(), data[..4096]);

    shrink(&image, 16 * MIB);
    // The file's tail lay past 16 MiB: reading it raised SIGBUS before.
    let err = fs.read_data(f.ino.into(), 31 * MIB, 4096).unwrap_err();
    assert_eq!(err.errno(), libc::EIO, "{err}");
    assert!(err.to_string().contains("shrank"), "{err}");
    // From now on nothing is trusted: reads and writes fail the same way.
    assert_eq!(fs.getattr(ROOT).unwrap_err().errno(), libc::EIO);
    let w = fs.create(&ctx, ROOT, b"after", 0o644, NewNode::File).unwrap_err();
    assert!(matches!(w.errno(), libc::EIO | libc::EROFS), "{w}");
    // Closing does not crash either (it reports the failure).
    let _ = fs.close();
}

#[test]
fn a_mount_whose_image_shrinks_answers_eio_and_unmounts() {
    if !fuse_usable() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let image = make_image(dir.path(), "img", 64 * MIB, false);
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let m = mount(&image, &mnt);
    let data = pattern(32 * MIB as usize);
    fs::write(mnt.join("big"), &data).unwrap();
    fs::File::open(mnt.join("big")).unwrap().sync_all().unwrap();
    // Drop the kernel's cached copy of the file so the read reaches the map.
    fs::write("/proc/sys/vm/drop_caches", "3").unwrap();

    shrink(&image, 16 * MIB);
    let err = fs::read(mnt.join("big")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    // The daemon is alive: it still answers (with EIO) rather than ENOTCONN.
    let err = fs::metadata(mnt.join("big"))
        .map(|_| ())
        .or_else(|e| match e.raw_os_error() {
            Some(libc::EIO) => Ok(()),
            _ => Err(e),
        });
    err.expect("the daemon answers");
    let log = mnt.with_extension("log");
    drop(m); // umount and wait for the daemon
    wait("the daemon's log", || {
        fs::read_to_string(&log).is_ok_and(|l| l.contains("shrank"))
    });
    let log = fs::read_to_string(&log).unwrap();
    assert!(!log.contains("panicked"), "{log}");
}
