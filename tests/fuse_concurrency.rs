//! Several threads create, write, rename, link, list and delete in shared
//! directories at once through a real FUSE mount (the kernel's caches and
//! the daemon's worker threads in between); afterwards every acknowledged
//! write is present, through the mount, after a remount, and fsck is clean.
//! A kill -9 round checks that every fsync'd file survives.

mod common;

use common::fuse::{fuse_usable, mount, unmount};
use common::*;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const THREADS: u32 = 6;
const ROUNDS: u32 = 120;

fn content(t: u32, r: u32) -> Vec<u8> {
    (0..(r % 7 + 1) * 1500).map(|i| (i ^ t ^ (r * 7)) as u8).collect()
}

/// One test at a time: a mount child forked by one test would inherit
/// (until its exec) the other's image descriptor and with it its flock.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What a thread leaves behind: the path, the content, and for a file
/// fsync'd before its rename, the name it had then.
type Kept = (PathBuf, Vec<u8>, Option<PathBuf>);

/// One thread's work in the shared directories `a` and `b`.
fn worker(root: &Path, t: u32) -> Vec<Kept> {
    let dirs = [root.join("a"), root.join("b")];
    let mut kept = Vec::new();
    for r in 0..ROUNDS {
        let (here, there) = (&dirs[(r % 2) as usize], &dirs[((r + 1) % 2) as usize]);
        let p = here.join(format!("t{t}-r{r}"));
        let data = content(t, r);
        let mut f = File::create(&p).unwrap();
        f.write_all(&data).unwrap();
        let synced = r % 10 == 0;
        if synced {
            f.sync_all().unwrap();
        }
        drop(f);
        let moved = there.join(format!("m-t{t}-r{r}"));
        fs::rename(&p, &moved).unwrap();
        match r % 3 {
            0 => fs::remove_file(&moved).unwrap(),
            1 => {
                let link = here.join(format!("l-t{t}-r{r}"));
                fs::hard_link(&moved, &link).unwrap();
                fs::remove_file(&moved).unwrap();
                kept.push((link, data, None));
            }
            _ => kept.push((moved, data, synced.then_some(p))),
        }
        if r % 16 == 0 {
            // A directory of its own, made and removed among the others,
            // and a listing of a shared one while everyone changes it.
            let d = here.join(format!("dir-t{t}-r{r}"));
            fs::create_dir(&d).unwrap();
            fs::write(d.join("x"), b"x").unwrap();
            let n = fs::read_dir(there).unwrap().count();
            assert!(n > 0 || r == 0);
            fs::remove_file(d.join("x")).unwrap();
            fs::remove_dir(&d).unwrap();
        }
    }
    kept
}

fn in_parallel(mnt: &Path) -> Vec<Kept> {
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS).map(|t| s.spawn(move || worker(mnt, t))).collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("worker panicked"))
            .collect()
    })
}

fn check(kept: &[Kept], root: &Path, from: &Path) {
    for (p, data, _) in kept {
        let q = root.join(p.strip_prefix(from).unwrap());
        assert!(fs::read(&q).unwrap() == *data, "{} differs", q.display());
    }
    let listed: BTreeSet<PathBuf> = ["a", "b"]
        .iter()
        .flat_map(|d| fs::read_dir(root.join(d)).unwrap().map(|e| e.unwrap().path()))
        .collect();
    let want: BTreeSet<PathBuf> = kept
        .iter()
        .map(|(p, ..)| root.join(p.strip_prefix(from).unwrap()))
        .collect();
    assert_eq!(listed, want);
}

/// A fresh image mounted, with the shared directories `a` and `b`.
fn mounted_with_shared_dirs() -> (tempfile::TempDir, PathBuf, PathBuf, common::fuse::Mounted) {
    let dir = tempfile::tempdir().unwrap();
    let image = make_image(dir.path(), "img", 128 << 20, false);
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let m = mount(&image, &mnt);
    fs::create_dir(mnt.join("a")).unwrap();
    fs::create_dir(mnt.join("b")).unwrap();
    (dir, image, mnt, m)
}

#[test]
fn threads_changing_shared_directories_through_the_mount() {
    if !fuse_usable() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (_dir, image, mnt, m) = mounted_with_shared_dirs();
    let kept = in_parallel(&mnt);
    check(&kept, &mnt, &mnt);
    unmount(m);
    let r = fsck(&image).unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
    let m = mount(&image, &mnt);
    check(&kept, &mnt, &mnt);
    unmount(m);
}

#[test]
fn a_killed_daemon_keeps_every_fsynced_file_written_in_parallel() {
    if !fuse_usable() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (_dir, image, mnt, mut m) = mounted_with_shared_dirs();
    File::open(&mnt).unwrap().sync_all().unwrap();
    let kept = in_parallel(&mnt);
    m.kill9();
    let m = mount(&image, &mnt);
    let mut checked = 0;
    for (p, data, synced_as) in &kept {
        // Renamed after its fsync: it is under the new name if the rename
        // reached the journal before the kill, else under the old one; one
        // transaction either way, so never neither.
        if let Some(old) = synced_as {
            let bytes = fs::read(p).or_else(|_| fs::read(old));
            let bytes = bytes.unwrap_or_else(|e| panic!("fsync'd {} lost: {e}", old.display()));
            assert!(bytes == *data, "{} differs after the crash", p.display());
            checked += 1;
        }
    }
    assert_eq!(checked, THREADS as usize * 4, "fsync'd files kept per thread");
    unmount(m);
    let r = fsck(&image).unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
    println!("{checked} fsync'd files checked after kill -9");
}
