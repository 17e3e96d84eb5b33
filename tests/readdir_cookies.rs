//! readdir cookies stay valid while the directory changes between calls
//! (POSIX readdir: an entry present for the whole listing is returned
//! exactly once; entries added or removed meanwhile may or may not be).
//!
//! Each test pages through a directory a few entries at a time through the
//! core API, creating and unlinking other names between pages, and checks
//! that every name present throughout is returned exactly once, that no
//! name is returned twice, and that the listing ends.

mod common;

use common::*;
use std::collections::{BTreeSet, HashMap};
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;

const ROOT: u64 = 1;

fn open(kernel: bool, size: u64) -> (tempfile::TempDir, std::path::PathBuf, Fs) {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "r.img", size, kernel);
    let fs = Fs::open(&p, false).unwrap();
    (dir, p, fs)
}

fn assert_clean(p: &std::path::Path, fs: Fs) {
    fs.sync().unwrap();
    drop(fs);
    let r = fsck(p).unwrap();
    assert!(r.is_clean(), "fsck: {:#?}", r.problems);
}

/// Deterministic xorshift, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn names(fs: &Fs, d: u64) -> BTreeSet<Vec<u8>> {
    fs.readdir(d, 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

fn show(n: &[u8]) -> String {
    String::from_utf8_lossy(n).into_owned()
}

/// Page through `d`, `page` entries per call, running `between(page_no)`
/// after every non-empty page. Returns every name returned, in order.
/// Asserts that no name is returned twice, that every name present before
/// the first page and after the last one (and never removed meanwhile, which
/// `between` reports through its return value) is returned, and that the
/// listing ends.
fn page_through(fs: &Fs, d: u64, page: usize, mut between: impl FnMut(usize) -> Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let before = names(fs, d);
    let mut removed = BTreeSet::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut count: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut cookie = 0;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 100_000, "listing does not end (cookie {cookie})");
        let v = fs.readdir(d, cookie, page).unwrap();
        if v.is_empty() {
            break;
        }
        for e in &v {
            *count.entry(e.name.clone()).or_default() += 1;
            assert_eq!(
                count[&e.name],
                1,
                "page {pages} (from cookie {cookie}) returns {:?} a second time",
                show(&e.name)
            );
            got.push(e.name.clone());
        }
        let next = v.last().unwrap().next;
        assert_ne!(next, cookie, "cookie does not advance");
        cookie = next;
        removed.extend(between(pages));
    }
    let after = names(fs, d);
    for n in before.intersection(&after) {
        if !removed.contains(n) {
            assert_eq!(
                count.get(n),
                Some(&1),
                "{:?} was there throughout but not returned",
                show(n)
            );
        }
    }
    got
}

/// Churn between pages: create `add` fresh names, unlink up to `del`
/// earlier churn names. Returns nothing removed from the stable set.
struct Churn {
    rng: Rng,
    next: usize,
    live: Vec<Vec<u8>>,
    prefix: &'static str,
}

impl Churn {
    fn new(seed: u64, prefix: &'static str) -> Churn {
        Churn {
            rng: Rng(seed),
            next: 0,
            live: Vec::new(),
            prefix,
        }
    }

    fn step(&mut self, fs: &Fs, d: u64, add: usize, del: usize) {
        let c = Ctx::root();
        for _ in 0..add {
            let name = format!("{}-{:05}", self.prefix, self.next).into_bytes();
            self.next += 1;
            fs.create(&c, d, &name, 0o644, NewNode::File).unwrap();
            self.live.push(name);
        }
        for _ in 0..del.min(self.live.len()) {
            let i = self.rng.below(self.live.len());
            let name = self.live.swap_remove(i);
            fs.unlink(&c, d, &name).unwrap();
        }
    }
}

fn stable(i: usize) -> Vec<u8> {
    format!("stable-{i:04}").into_bytes()
}

fn mkdir(fs: &Fs, name: &[u8]) -> u64 {
    fs.create(&Ctx::root(), ROOT, name, 0o755, NewNode::Dir)
        .unwrap()
        .ino
        .into()
}

fn fill(fs: &Fs, d: u64, n: usize) {
    for i in 0..n {
        fs.create(&Ctx::root(), d, &stable(i), 0o644, NewNode::File).unwrap();
    }
}

fn assert_all_stable(got: &[Vec<u8>], n: usize) {
    let set: BTreeSet<_> = got.iter().cloned().collect();
    for i in 0..n {
        assert!(set.contains(&stable(i)), "{:?} missing", show(&stable(i)));
    }
    assert!(set.contains(&b"."[..]) && set.contains(&b".."[..]));
}

/// Kernel layout (no dir_hash): byte-offset cookies in a one-block linear
/// directory, with freed records reused between pages.
#[test]
fn linear_directory_with_byte_cookies() {
    let (_d, p, fs) = open(true, 16 << 20);
    let d = mkdir(&fs, b"lin");
    fill(&fs, d, 60);
    let mut churn = Churn::new(0x9e37_79b9_7f4a_7c15, "churn");
    churn.step(&fs, d, 20, 0);
    let got = page_through(&fs, d, 3, |_| {
        churn.step(&fs, d, 2, 3);
        Vec::new()
    });
    assert_all_stable(&got, 60);
    assert!(fs.getattr(d).unwrap().size == 4096, "stayed one block");
    assert_clean(&p, fs);
}

/// v1 layout: a small directory that stays linear (one block) while names
/// come and go.
#[test]
fn small_directory_on_a_hashing_image() {
    let (_d, p, fs) = open(false, 32 << 20);
    let d = mkdir(&fs, b"small");
    fill(&fs, d, 40);
    let mut churn = Churn::new(7, "churn");
    churn.step(&fs, d, 20, 0);
    let got = page_through(&fs, d, 4, |_| {
        churn.step(&fs, d, 2, 2);
        Vec::new()
    });
    assert_all_stable(&got, 40);
    assert_eq!(fs.getattr(d).unwrap().size, 4096, "stayed one block");
    assert_clean(&p, fs);
}

/// A hashed directory whose leaves split between pages.
#[test]
fn hashed_directory_with_splits_between_pages() {
    let (_d, p, fs) = open(false, 64 << 20);
    let d = mkdir(&fs, b"hashed");
    fill(&fs, d, 600);
    let blocks_before = fs.getattr(d).unwrap().size / 4096;
    assert!(blocks_before >= 3, "hashed: {blocks_before} blocks");
    let mut churn = Churn::new(42, "churn");
    let got = page_through(&fs, d, 7, |_| {
        churn.step(&fs, d, 5, 2);
        Vec::new()
    });
    assert_all_stable(&got, 600);
    assert!(
        fs.getattr(d).unwrap().size / 4096 > blocks_before,
        "leaves split during the listing"
    );
    assert_clean(&p, fs);
}

/// The listing starts while the directory is one linear block and goes on
/// after creations turn it into a hashed directory.
#[test]
fn listing_survives_conversion_to_hashed() {
    for (seed, page, first_pages) in [(1u64, 5usize, 1usize), (2, 3, 4), (3, 8, 2), (4, 1, 30), (5, 16, 3)] {
        let (_d, p, fs) = open(false, 32 << 20);
        let d = mkdir(&fs, b"grows");
        fill(&fs, d, 100);
        assert_eq!(fs.getattr(d).unwrap().size, 4096);
        let mut churn = Churn::new(seed, "churn");
        let got = page_through(&fs, d, page, |n| {
            // Enough names after `first_pages` pages to convert (a block
            // holds ~200 of these), then a trickle with removals.
            if n == first_pages {
                churn.step(&fs, d, 250, 0);
            } else {
                churn.step(&fs, d, 1, 1);
            }
            Vec::new()
        });
        assert!(fs.getattr(d).unwrap().size > 4096, "converted (seed {seed})");
        assert_all_stable(&got, 100);
        assert_clean(&p, fs);
    }
}

/// A hashed directory where names, including ones not listed yet and ones
/// already listed, are removed between pages.
#[test]
fn hashed_directory_with_removals_between_pages() {
    let (_d, p, fs) = open(false, 64 << 20);
    let d = mkdir(&fs, b"shrinks");
    fill(&fs, d, 800);
    let mut rng = Rng(0xdead_beef);
    let mut present: Vec<usize> = (0..800).collect();
    let mut churn = Churn::new(99, "churn");
    churn.step(&fs, d, 100, 0);
    let c = Ctx::root();
    let got = page_through(&fs, d, 6, |_| {
        let mut gone = Vec::new();
        for _ in 0..3 {
            if present.len() > 400 {
                let i = present.swap_remove(rng.below(present.len()));
                fs.unlink(&c, d, &stable(i)).unwrap();
                gone.push(stable(i));
            }
        }
        churn.step(&fs, d, 0, 2);
        gone
    });
    let set: BTreeSet<_> = got.into_iter().collect();
    for i in present {
        assert!(set.contains(&stable(i)), "{:?} missing", show(&stable(i)));
    }
    assert_clean(&p, fs);
}

/// Two names whose hashes share the 31 bits a cookie keeps (found by
/// birthday search; the image's hash seed is fixed by mkfs options).
fn colliding_pair(seed: u32) -> (Vec<u8>, Vec<u8>) {
    // CRC-32 is linear, so names differing only in decimal digits span too
    // few bits to collide early; spread the varying bytes over hex digits.
    let mut seen = HashMap::new();
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    loop {
        let name = format!("col-{:016x}", rng.next()).into_bytes();
        let pos = vexfs::format::dir::name_hash(&name, seed) >> 1;
        if let Some(other) = seen.insert(pos, name.clone()) {
            return (other, name);
        }
    }
}

/// Names sharing a cookie position are never split across pages, so the
/// second one is not skipped, whatever the page size; in a linear and in a
/// hashed directory.
#[test]
fn names_sharing_a_hash_are_not_skipped() {
    let (_d, p, fs) = open(false, 64 << 20);
    let (a, b) = colliding_pair(fs.geometry().hash_seed);
    let c = Ctx::root();
    for (dir, stable_names) in [(&b"lin"[..], 30), (b"hashed", 500)] {
        let d = mkdir(&fs, dir);
        fill(&fs, d, stable_names);
        fs.create(&c, d, &a, 0o644, NewNode::File).unwrap();
        fs.create(&c, d, &b, 0o644, NewNode::File).unwrap();
        assert_eq!(fs.getattr(d).unwrap().size > 4096, stable_names > 100);
        for page in 1..=9 {
            let got = page_through(&fs, d, page, |_| Vec::new());
            assert_all_stable(&got, stable_names);
            assert!(got.contains(&a) && got.contains(&b), "page size {page}");
        }
    }
    assert_clean(&p, fs);
}

/// A leaf of a hashed directory whose checksum does not match fails the
/// listing with that leaf's error (as a lookup in it does), instead of
/// listing names from an unverified block.
#[test]
fn a_damaged_leaf_fails_the_hashed_listing() {
    use vexfs::image::{Image, Mode};
    let (_d, p, fs) = open(false, 64 << 20);
    let d = mkdir(&fs, b"hashed");
    fill(&fs, d, 500);
    fs.sync().unwrap();
    drop(fs);
    let img = Image::open(&p, Mode::ReadOnly).unwrap();
    let ino = img.resolve("/hashed").unwrap();
    let runs = img.mappings(ino, &img.inode(ino).unwrap()).unwrap();
    // Logical block 1 is a leaf (block 0 is the index root).
    let m = runs.iter().find(|m| m.logical <= 1 && 1 < m.logical + m.len).unwrap();
    let leaf = m.physical + (1 - m.logical);
    drop(img);
    flip(&p, leaf * 4096 + 40, 0x01);
    let fs = Fs::open(&p, true).unwrap();
    let e = fs.readdir(d, 0, usize::MAX).unwrap_err();
    assert_eq!(e.errno(), libc::EIO);
    assert!(
        e.to_string()
            .contains(&corrupt_at("directory block", leaf * 4096 + 4092, "det_checksum")),
        "{e}"
    );
}
