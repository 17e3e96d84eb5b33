//! Listing a directory through the mount returns every name exactly once,
//! also when names share a readdir cookie (31 bits of the name hash,
//! format-spec/06 §6.8): the adapter never splits such a run between two
//! replies, whatever buffer size the kernel asks with, in readdir and in
//! readdirplus.

mod common;

use common::fuse::{fuse_usable, mount};
use common::*;
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use vexfs::fs::core::Fs;

const MIB: u64 = 1 << 20;
/// Colliding pairs in the directory: with every name in a pair, any reply
/// boundary has an even chance of falling inside one.
const PAIRS: usize = 5000;

/// `count` disjoint pairs of names whose cookies collide (birthday search
/// over a deterministic sequence; CRC-32 is linear, so the varying bytes are
/// spread over hex digits).
fn colliding_pairs(seed: u32, count: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut seen: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut pairs = Vec::new();
    let mut x: u64 = 0x0123_4567_89ab_cdef;
    while pairs.len() < count {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let name = format!("c-{x:016x}").into_bytes();
        let pos = vexfs::format::dir::name_hash(&name, seed) >> 1;
        if let Some(other) = seen.remove(&pos) {
            pairs.push((other, name));
        } else {
            seen.insert(pos, name);
        }
    }
    pairs
}

/// Every name in `dir` except "." and "..", read with getdents64 calls of
/// at most `buf` bytes each.
fn list_with_buffer(dir: &std::path::Path, buf: usize) -> Vec<Vec<u8>> {
    let fd = fs::File::open(dir).unwrap();
    let mut space = vec![std::mem::MaybeUninit::<u8>::uninit(); buf];
    let mut raw = rustix::fs::RawDir::new(&fd, &mut space);
    let mut out = Vec::new();
    while let Some(e) = raw.next() {
        let name = e.unwrap().file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            out.push(name);
        }
    }
    out
}

#[test]
fn names_sharing_a_cookie_are_all_listed_through_the_mount() {
    if !fuse_usable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = make_image(dir.path(), "img", 256 * MIB, false);
    let seed = Fs::open(&image, true).unwrap().geometry().hash_seed;
    let pairs = colliding_pairs(seed, PAIRS);
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let m = mount(&image, &mnt);
    let d = mnt.join("d");
    fs::create_dir(&d).unwrap();
    let mut want = BTreeSet::new();
    for (a, b) in &pairs {
        for n in [a, b] {
            fs::write(d.join(std::ffi::OsStr::from_bytes(n)), b"").unwrap();
            want.insert(n.clone());
        }
    }
    // Through getdents64 with buffers so small that the kernel stops
    // emitting a reply's entries part way (the next call resumes at the
    // cookie of the last entry it took), and through std's read_dir (glibc's
    // 32 KiB buffer); each twice: readdirplus first, plain readdir later.
    for (round, buf) in [256usize, 1000, 256, 32768].into_iter().enumerate() {
        let got = list_with_buffer(&d, buf);
        let unique: BTreeSet<_> = got.iter().cloned().collect();
        assert_eq!(unique.len(), got.len(), "round {round}: a name listed twice");
        let missing: Vec<_> = want
            .difference(&unique)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        assert!(
            missing.is_empty(),
            "buffer {buf}: {} names missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(4)]
        );
    }
    for round in 0..2 {
        let got: BTreeSet<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().as_bytes().to_vec())
            .collect();
        assert_eq!(got, want, "read_dir round {round}");
    }
    common::fuse::unmount(m);
    assert!(fsck(&image).unwrap().is_clean());
}
