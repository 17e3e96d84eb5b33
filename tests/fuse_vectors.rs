//! Vectors through a real FUSE mount: attach by xattr and by the kernel
//! module's ioctl, search through /.vexfs/search (JSON and binary), and
//! compare with the offline search of the unmounted image; errors; fsck.
//!
//! Needs /dev/fuse and root; prints SKIPPED without them, except under CI
//! (the CI variable set), where it fails.

mod common;

use common::fuse::{fuse_usable, mount, unmount};

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use vexfs::fs::core::Fs;
use vexfs::vector::{control, SearchRequest};

const DIM: usize = 8;

/// One test at a time: a mount child forked by one test would inherit (until
/// its exec) the other's image descriptor and with it the image's flock.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A deterministic vector per index.
fn vector(i: usize) -> Vec<f32> {
    (0..DIM)
        .map(|d| (((i * 31 + d * 17) % 23) as f32 - 11.0) / 7.0)
        .collect()
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// VEXFS_IOC_SET_VECTOR_META for one dense f32 vector at file offset 0.
fn ioctl_attach(f: &File) -> std::io::Result<()> {
    let mut info = [0u8; 40];
    info[0..4].copy_from_slice(&(DIM as u32).to_le_bytes());
    info[4..8].copy_from_slice(&1u32.to_le_bytes()); // f32
    info[8..12].copy_from_slice(&1u32.to_le_bytes()); // one vector
                                                      // SAFETY: the command's size (40) matches the buffer passed.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), 0x4028_5601, info.as_ptr()) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn ioctl_get(f: &File) -> [u8; 40] {
    let mut info = [0u8; 40];
    // SAFETY: as above; the kernel writes 40 bytes.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), 0x8028_5602, info.as_mut_ptr()) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    info
}

/// Search through the control file; (ino, distance) per hit.
fn control_search(mnt: &Path, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(mnt.join(".vexfs/search"))?;
    f.write_all(body)?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

fn json_hits(reply: &[u8]) -> Vec<(u32, f32)> {
    String::from_utf8_lossy(reply)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (
                v["ino"].as_u64().unwrap() as u32,
                v["distance"].as_f64().unwrap() as f32,
            )
        })
        .collect()
}

fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("an error").raw_os_error().unwrap()
}

#[test]
fn vectors_through_the_mount_match_the_offline_search() {
    if !fuse_usable() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let image = common::make_image(tmp.path(), "v.img", 64 << 20, false);
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mounted = mount(&image, &mnt);
    let dir = mnt.join("docs");
    fs::create_dir(&dir).unwrap();
    // 0..100 by xattr, 100..200 by ioctl (vector stored in the file itself).
    for i in 0..200 {
        let p = dir.join(format!("f{i}"));
        let mut f = File::create(&p).unwrap();
        if i < 100 {
            xattr::set(&p, "user.vexfs.vector.docs", &le_bytes(&vector(i))).unwrap();
        } else {
            f.write_all(&le_bytes(&vector(i))).unwrap();
            ioctl_attach(&f).unwrap();
            assert_eq!(ioctl_get(&f)[0..4], (DIM as u32).to_le_bytes());
        }
    }
    // Every file reads back its vector, whichever way it was attached.
    for i in [0, 99, 100, 199] {
        let got = xattr::get(dir.join(format!("f{i}")), "user.vexfs.vector.docs")
            .unwrap()
            .unwrap();
        assert_eq!(got, le_bytes(&vector(i)), "file {i}");
    }
    let names: Vec<_> = xattr::list(dir.join("f1")).unwrap().collect();
    assert!(names.iter().any(|n| n == "user.vexfs.vector.docs"), "{names:?}");
    // Errors: wrong length, unknown collection, non-finite values.
    let f0 = dir.join("f0");
    assert_eq!(
        errno(xattr::set(&f0, "user.vexfs.vector.docs", &[0u8; 12])),
        libc::EINVAL
    );
    assert_eq!(
        errno(xattr::set(&f0, "user.vexfs.vector.nope", &le_bytes(&vector(0)))),
        libc::ENOENT
    );
    let nan = le_bytes(&[f32::NAN; DIM]);
    assert_eq!(errno(xattr::set(&f0, "user.vexfs.vector.docs", &nan)), libc::EINVAL);
    assert_eq!(
        errno(control_search(&mnt, b"{\"collection\":\"docs\"}\n")),
        libc::EINVAL
    );
    // Detach one, unlink another: they must never come back.
    xattr::remove(dir.join("f5"), "user.vexfs.vector.docs").unwrap();
    fs::remove_file(dir.join("f150")).unwrap();
    let q = vector(5);
    let body = serde_json::json!({"collection": "docs", "k": 10, "ef": 200, "vector": q});
    let by_json = json_hits(&control_search(&mnt, format!("{body}\n").as_bytes()).unwrap());
    assert_eq!(by_json.len(), 10);
    let mut req = SearchRequest::new("docs", q.clone(), 10);
    req.ef = Some(200);
    let bin = control::decode_binary_reply(&control_search(&mnt, &control::encode_binary(&req)).unwrap()).unwrap();
    let by_bin: Vec<(u32, f32)> = bin.0.iter().map(|h| (h.0, h.2)).collect();
    assert_eq!(by_json, by_bin, "JSON and binary requests agree");
    let stats = fs::read_to_string(mnt.join(".vexfs/collections")).unwrap();
    assert!(stats.contains("\"count\":198"), "{stats}");
    unmount(mounted);
    // The unmounted image answers the same, and is consistent.
    let fs = Fs::open(&image, true).unwrap();
    req.with_paths = true;
    let offline = fs.search(&req).unwrap();
    let by_offline: Vec<(u32, f32)> = offline.hits.iter().map(|h| (h.ino, h.distance)).collect();
    assert_eq!(by_json, by_offline, "mounted and offline searches agree");
    assert!(offline
        .hits
        .iter()
        .all(|h| h.path.as_deref().is_some_and(|p| p.starts_with("/docs/f"))));
    let gone = ["/docs/f5", "/docs/f150"];
    assert!(offline
        .hits
        .iter()
        .all(|h| !gone.contains(&h.path.as_deref().unwrap_or(""))));
    drop(fs);
    let r = common::fsck(&image).unwrap();
    assert!(r.is_clean(), "fsck: {:#?}", r.problems);
}

/// An ioctl changes the file (its vector, its ctime) without the kernel
/// knowing: the adapter invalidates the cached attributes before it
/// replies, so the next stat, well inside the 1 s attribute TTL, sees the
/// new ctime.
#[test]
fn an_ioctl_change_is_visible_to_the_next_stat() {
    if !fuse_usable() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let image = common::make_image(dir.path(), "fs.img", 16 << 20, false);
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let m = mount(&image, &mnt);
    let path = mnt.join("v");
    std::fs::write(&path, le_bytes(&vector(1))).unwrap();
    let f = File::open(&path).unwrap();
    for _ in 0..3 {
        let cached = std::fs::metadata(&path).unwrap();
        ioctl_attach(&f).unwrap();
        let after = std::fs::metadata(&path).unwrap();
        assert!(
            (after.ctime(), after.ctime_nsec()) > (cached.ctime(), cached.ctime_nsec()),
            "ctime {}.{} still cached after the ioctl (before it: {}.{})",
            after.ctime(),
            after.ctime_nsec(),
            cached.ctime(),
            cached.ctime_nsec()
        );
    }
    drop(f);
    unmount(m);
}
