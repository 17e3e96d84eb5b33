//! Building blocks of the crash harness (`tests/crash.rs`): the recording
//! media, the operations and the events they should append, namespace
//! snapshots, crash-image enumeration, fsck of an image, and the workloads
//! (ACE-style sequences, seeded random ones). Cargo also builds this file
//! as a test target of its own, which has no tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use vexfs::events::Event;
use vexfs::format::events::op_name;
use vexfs::fs::attrs::SetAttr;
use vexfs::fs::core::Fs;
use vexfs::fs::data::{FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE};
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::image::{Image, Media, Mode};

pub const BS: usize = 4096;

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One flush: the blocks it made durable, their contents before and after
/// it (in `changed` order). The durable image before an epoch is the first
/// image with every earlier epoch applied (see `advance`).
pub struct Epoch {
    pub changed: Vec<usize>,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
    /// Operations whose fsync had returned before this flush began.
    pub synced_ops: usize,
}

impl Epoch {
    fn old_block(&self, i: usize) -> &[u8] {
        &self.old[i * BS..(i + 1) * BS]
    }
    fn new_block(&self, i: usize) -> &[u8] {
        &self.new[i * BS..(i + 1) * BS]
    }
}

pub struct Shared {
    pub epochs: Mutex<Vec<Epoch>>,
    pub synced_ops: AtomicUsize,
    /// The image's bytes when the media was dropped (after unmount).
    pub last: Mutex<Option<Vec<u8>>>,
}

/// The recording seam: the image in memory, the durable copy, the epochs.
/// Without recording a flush costs nothing and only the final bytes are
/// kept (for fsck).
pub struct RecMedia {
    bytes: Vec<u8>,
    durable: Option<Vec<u8>>,
    shared: Arc<Shared>,
}

impl RecMedia {
    pub fn new(img: Vec<u8>, record: bool) -> (RecMedia, Arc<Shared>) {
        let shared = Arc::new(Shared {
            epochs: Mutex::new(Vec::new()),
            synced_ops: AtomicUsize::new(0),
            last: Mutex::new(None),
        });
        let durable = record.then(|| copy_image(&img));
        let m = RecMedia {
            bytes: img,
            durable,
            shared: shared.clone(),
        };
        (m, shared)
    }
}

impl Media for RecMedia {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    fn bytes_mut(&mut self) -> vexfs::Result<&mut [u8]> {
        Ok(&mut self.bytes)
    }
    fn flush(&mut self, range: Option<(u64, u64)>) -> vexfs::Result<()> {
        let Some(durable) = &mut self.durable else {
            return Ok(());
        };
        // A range flush makes only the blocks it covers durable; other
        // changes wait for a later flush that covers them (the earliest
        // the kernel may have written them is modeled by that flush's
        // subsets, the latest by its end).
        let blocks = self.bytes.len() / BS;
        let (lo, hi) = match range {
            Some((off, len)) => (
                (off as usize / BS).min(blocks),
                ((off + len) as usize).div_ceil(BS).min(blocks),
            ),
            None => (0, blocks),
        };
        let changed: Vec<usize> = (lo..hi)
            .filter(|&b| self.bytes[b * BS..(b + 1) * BS] != durable[b * BS..(b + 1) * BS])
            .collect();
        if !changed.is_empty() {
            let (mut old, mut new) = (Vec::new(), Vec::new());
            for &b in &changed {
                old.extend_from_slice(&durable[b * BS..(b + 1) * BS]);
                new.extend_from_slice(&self.bytes[b * BS..(b + 1) * BS]);
                durable[b * BS..(b + 1) * BS].copy_from_slice(&self.bytes[b * BS..(b + 1) * BS]);
            }
            let synced_ops = self.shared.synced_ops.load(Ordering::SeqCst);
            self.shared.epochs.lock().unwrap().push(Epoch {
                changed,
                old,
                new,
                synced_ops,
            });
        }
        Ok(())
    }
}

impl Drop for RecMedia {
    fn drop(&mut self) {
        *self.shared.last.lock().unwrap() = Some(std::mem::take(&mut self.bytes));
        if let Some(d) = self.durable.take() {
            recycle(d);
        }
    }
}

/// The operations of the workloads (ACE-style, over a few names). At the
/// core's level fsync, fdatasync, fsyncdir and syncfs are one call
/// (`Fs::sync`, a single durability point), so `Fsync` stands for all four.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    Create(&'static str),
    Mkdir(&'static str),
    Write(&'static str, u64, usize),
    Truncate(&'static str, u64),
    /// fallocate(PUNCH_HOLE | KEEP_SIZE, off, len).
    Punch(&'static str, u64, u64),
    Unlink(&'static str),
    Rmdir(&'static str),
    Rename(&'static str, &'static str),
    Link(&'static str, &'static str),
    SetXattr(&'static str),
    Fsync,
}

pub fn lookup(fs: &Fs, path: &str) -> Option<u64> {
    let mut cur = 1u64;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        cur = fs.lookup(&Ctx::root(), cur, part.as_bytes()).ok()?.ino.into();
    }
    Some(cur)
}

pub fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// The event an operation should append (format-spec/11 §11.4), predicted
/// from the operation and the live namespace around it.
#[derive(Debug, Clone, PartialEq)]
pub struct Want {
    pub op: &'static str,
    pub ino: u64,
    pub parent: u64,
    pub name: Vec<u8>,
    pub ino2: u64,
    pub parent2: u64,
    pub name2: Vec<u8>,
    /// Checked where it is simple: write and truncate (the size after),
    /// setxattr (the value's length).
    pub aux: Option<u64>,
}

impl Want {
    pub fn new(op: &'static str, ino: u64, parent: u64, name: &[u8]) -> Want {
        Want {
            op,
            ino,
            parent,
            name: name.to_vec(),
            ino2: 0,
            parent2: 0,
            name2: Vec::new(),
            aux: None,
        }
    }

    /// The event is this one (the aux only where predicted).
    pub fn matches(&self, e: &Event) -> bool {
        self.same_key(e) && self.aux.is_none_or(|a| a == e.aux)
    }

    /// Same operation on the same names and inodes.
    pub fn same_key(&self, e: &Event) -> bool {
        op_name(e.op) == self.op
            && (e.ino, e.parent, e.ino2, e.parent2) == (self.ino, self.parent, self.ino2, self.parent2)
            && e.name == self.name
            && e.name2 == self.name2
    }

    pub fn show(&self) -> String {
        let n = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let mut s = format!("{} ino {}", self.op, self.ino);
        if !self.name.is_empty() {
            s += &format!(" {}/{}", self.parent, n(&self.name));
        }
        if !self.name2.is_empty() {
            s += &format!(" -> {}/{}", self.parent2, n(&self.name2));
        }
        s
    }
}

/// What an op did to file data: (op, inode, first byte, end) of the bytes
/// it may have changed. A new inode (its number may be reused) is all of it.
pub type Effect = (usize, u32, u64, u64);

/// Apply op `i`; `value` is the byte a write uses (unique per op). Returns
/// the event the op should append: none for fsync or a failed op. Data it
/// may change is added to `effects`, the bytes it writes to `writes`.
pub fn apply(
    fs: &Fs,
    (i, op): (usize, Op),
    value: u8,
    writes: &mut Vec<(u32, u64, usize, u8)>,
    effects: &mut Vec<Effect>,
) -> Option<Want> {
    let c = Ctx::root();
    let parent = |p: &str| lookup(fs, split(p).0);
    let name = |p: &'static str| split(p).1.as_bytes();
    let size = |i: u64| fs.getattr(i).map_or(0, |a| a.size);
    match op {
        Op::Create(p) | Op::Mkdir(p) => {
            let (node, mode, kind) = match op {
                Op::Create(_) => (NewNode::File, 0o644, "create"),
                _ => (NewNode::Dir, 0o755, "mkdir"),
            };
            let d = parent(p)?;
            let a = fs.create(&c, d, name(p), mode, node).ok()?;
            effects.push((i, a.ino, 0, u64::MAX));
            Some(Want::new(kind, a.ino.into(), d, name(p)))
        }
        Op::Write(p, off, len) => {
            let n = lookup(fs, p)?;
            writes.push((n as u32, off, len, value));
            effects.push((i, n as u32, off, off + len as u64));
            fs.write_data(n, off, &vec![value; len]).ok()?;
            Some(Want {
                aux: Some(size(n)),
                ..Want::new("write", n, 0, b"")
            })
        }
        Op::Truncate(p, to) => {
            let n = lookup(fs, p)?;
            effects.push((i, n as u32, to.min(size(n)), u64::MAX));
            let s = SetAttr {
                size: Some(to),
                ..Default::default()
            };
            fs.setattr(&c, n, &s).ok()?;
            Some(Want {
                aux: Some(to),
                ..Want::new("truncate", n, 0, b"")
            })
        }
        Op::Punch(p, off, len) => {
            let n = lookup(fs, p)?;
            effects.push((i, n as u32, off, off + len));
            fs.fallocate(n, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len)
                .ok()?;
            Some(Want {
                aux: Some(size(n)),
                ..Want::new("write", n, 0, b"")
            })
        }
        Op::Unlink(p) | Op::Rmdir(p) => {
            let d = parent(p)?;
            let victim = lookup(fs, p);
            let kind = match op {
                Op::Unlink(_) => fs.unlink(&c, d, name(p)).map(|()| "unlink"),
                _ => fs.rmdir(&c, d, name(p)).map(|()| "rmdir"),
            };
            Some(Want::new(kind.ok()?, victim?, d, name(p)))
        }
        Op::Rename(a, b) => {
            let (x, y) = parent(a).zip(parent(b))?;
            let (moved, replaced) = (lookup(fs, a), lookup(fs, b).unwrap_or(0));
            fs.rename(&c, x, name(a), y, name(b), 0).ok()?;
            Some(Want {
                ino2: replaced,
                parent2: y,
                name2: name(b).to_vec(),
                ..Want::new("rename", moved?, x, name(a))
            })
        }
        Op::Link(a, b) => {
            let (n, d) = lookup(fs, a).zip(parent(b))?;
            fs.link(&c, n, d, name(b)).ok()?;
            Some(Want::new("link", n, d, name(b)))
        }
        Op::SetXattr(p) => {
            let n = lookup(fs, p)?;
            fs.setxattr(&c, n, b"user.k", &[value], 0).ok()?;
            Some(Want {
                aux: Some(1),
                ..Want::new("setxattr", n, 0, b"user.k")
            })
        }
        Op::Fsync => {
            let _ = fs.sync();
            None
        }
    }
}

/// The namespace as (path -> (kind, size, nlink, xattr)).
pub type Tree = BTreeMap<String, (u8, u64, u32, Option<Vec<u8>>)>;

/// The namespace, its inode numbers, and every regular file's bytes.
#[derive(Clone, PartialEq)]
pub struct Snap {
    pub tree: Tree,
    pub inos: BTreeMap<String, u32>,
    pub data: BTreeMap<u32, Vec<u8>>,
}

pub fn snapshot(fs: &Fs) -> Result<Snap, String> {
    let mut s = Snap {
        tree: Tree::new(),
        inos: BTreeMap::new(),
        data: BTreeMap::new(),
    };
    let mut stack = vec![(1u64, String::new())];
    while let Some((dir, path)) = stack.pop() {
        let entries = fs
            .readdir(dir, 0, usize::MAX)
            .map_err(|e| format!("readdir {path}/: {e}"))?;
        for e in entries {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let p = format!("{path}/{}", String::from_utf8_lossy(&e.name));
            let n = u64::from(e.inode);
            let a = fs.getattr(n).map_err(|err| format!("getattr {p}: {err}"))?;
            let x = fs.getxattr(&Ctx::root(), n, b"user.k").ok();
            let size = if e.file_type == 2 { 0 } else { a.size };
            s.tree.insert(p.clone(), (e.file_type, size, a.nlink, x));
            s.inos.insert(p.clone(), e.inode);
            match e.file_type {
                1 if !s.data.contains_key(&e.inode) => {
                    let d = fs.read_data(n, 0, 1 << 20).map_err(|err| format!("{p}: {err}"))?;
                    s.data.insert(e.inode, d);
                }
                2 => stack.push((n, p)),
                _ => {}
            }
        }
    }
    Ok(s)
}

/// How one crash image of an epoch is made.
#[derive(Debug, Clone)]
pub enum Recipe {
    /// The image before, plus the changed blocks the mask selects.
    Subset(Vec<bool>),
    /// The image after, with the i-th changed block torn: its tail from before.
    Torn(usize),
    /// The image before, with a garbage sector in the i-th changed block.
    Garbage(usize),
}

/// Candidate subsets of `n` changed blocks (bounded by `max`).
fn subsets(n: usize, max: usize, seed: u64) -> Vec<Vec<bool>> {
    let mut out = Vec::new();
    if n <= 10 && (1usize << n) <= max {
        for m in 0..(1u64 << n) {
            out.push((0..n).map(|i| m & (1 << i) != 0).collect());
        }
        return out;
    }
    for k in 0..=n {
        out.push((0..n).map(|i| i < k).collect());
    }
    for skip in 0..n {
        out.push((0..n).map(|i| i != skip).collect());
    }
    let mut x = seed | 1;
    while out.len() < max {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((0..n).map(|i| (x >> (i % 64)) & 1 == 1).collect());
    }
    out
}

/// Every crash image of one epoch: subsets, plus torn and garbage sectors.
pub fn recipes(e: &Epoch, max: usize, seed: u64) -> Vec<Recipe> {
    let mut out: Vec<Recipe> = subsets(e.changed.len(), max, seed)
        .into_iter()
        .map(Recipe::Subset)
        .collect();
    for i in 0..e.changed.len().min(4) {
        out.extend([Recipe::Torn(i), Recipe::Garbage(i)]);
    }
    out
}

/// At most `max` of `all`, spread evenly (first and last kept).
pub fn spread<T: Clone>(all: &[T], max: usize) -> Vec<T> {
    if all.len() <= max || max < 2 {
        return all.iter().take(max.max(1)).cloned().collect();
    }
    (0..max).map(|k| all[k * (all.len() - 1) / (max - 1)].clone()).collect()
}

/// The garbage sector `Recipe::Garbage(i)` writes over the first sector of
/// the i-th changed block.
pub fn garbage_sector(i: usize) -> [u8; 512] {
    std::array::from_fn(|j| (j as u8).wrapping_mul(31).wrapping_add(i as u8))
}

/// Whether `v` at `off` of a block may be from a garbage sector.
pub fn garbage_byte(off: usize, v: u8) -> bool {
    off % BS < 512 && (0..4).any(|i| v == garbage_sector(i)[off % BS])
}

thread_local! {
    /// Image buffers to reuse: fresh 8 MiB allocations cost page faults.
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A copy of `img` in a reused buffer.
pub fn copy_image(img: &[u8]) -> Vec<u8> {
    match POOL.with(|p| p.borrow_mut().pop()) {
        Some(mut b) if b.len() == img.len() => {
            b.copy_from_slice(img);
            b
        }
        _ => img.to_vec(),
    }
}

/// Give an image buffer back for reuse.
pub fn recycle(b: Vec<u8>) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < 4 {
            p.push(b);
        }
    });
}

/// The crash image `r` of epoch `e`, whose durable image before is `cur`.
pub fn build(cur: &[u8], e: &Epoch, r: &Recipe) -> Vec<u8> {
    let mut img = copy_image(cur);
    let block = |i: usize| e.changed[i] * BS..(e.changed[i] + 1) * BS;
    match r {
        Recipe::Subset(mask) => {
            for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
                img[block(i)].copy_from_slice(e.new_block(i));
            }
        }
        &Recipe::Torn(i) => {
            advance(&mut img, e);
            let cut = 512 * (1 + i % 7);
            img[block(i)][cut..].copy_from_slice(&e.old_block(i)[cut..]);
        }
        &Recipe::Garbage(i) => img[block(i)][..512].copy_from_slice(&garbage_sector(i)),
    }
    img
}

/// Make epoch `e` durable in `cur`.
pub fn advance(cur: &mut [u8], e: &Epoch) {
    for (i, &b) in e.changed.iter().enumerate() {
        cur[b * BS..(b + 1) * BS].copy_from_slice(e.new_block(i));
    }
}

impl Recipe {
    pub fn show(&self) -> String {
        match self {
            Recipe::Subset(m) => {
                let bits: String = m.iter().map(|&b| if b { '1' } else { '0' }).collect();
                format!("blocks {bits}")
            }
            Recipe::Torn(i) => format!("torn block #{i}"),
            Recipe::Garbage(i) => format!("garbage sector in block #{i}"),
        }
    }
}

thread_local! {
    /// The image file fsck reads, and what it holds: only the blocks that
    /// differ are written again (writing 8 MiB per state dominated).
    static FSCK_FILE: std::cell::RefCell<Option<(std::path::PathBuf, std::fs::File, Vec<u8>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Write the image to `dir` and run fsck over it.
pub fn fsck_bytes(dir: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    let p = dir.join("recovered.img");
    FSCK_FILE.with(|cell| -> Result<(), String> {
        let mut cell = cell.borrow_mut();
        if cell
            .as_ref()
            .is_none_or(|(q, _, held)| *q != p || held.len() != bytes.len())
        {
            let f = std::fs::File::create(&p).map_err(|e| e.to_string())?;
            f.write_all_at(bytes, 0).map_err(|e| e.to_string())?;
            *cell = Some((p.clone(), f, bytes.to_vec()));
            return Ok(());
        }
        let (_, f, held) = cell.as_mut().unwrap();
        for b in 0..bytes.len() / BS {
            let r = b * BS..(b + 1) * BS;
            if held[r.clone()] != bytes[r.clone()] {
                f.write_all_at(&bytes[r.clone()], r.start as u64)
                    .map_err(|e| e.to_string())?;
                held[r.clone()].copy_from_slice(&bytes[r]);
            }
        }
        Ok(())
    })?;
    let img = Image::open(&p, Mode::ReadOnly).map_err(|e| e.to_string())?;
    let report = vexfs::check::check(&img, vexfs::check::CheckOptions::default());
    if !report.is_clean() {
        return Err(format!("fsck: {:?}", report.problems));
    }
    Ok(())
}

/// Unmount, then fsck what the media holds.
pub fn close_and_fsck(fs: Fs, shared: &Shared, dir: &Path) -> Result<(), String> {
    fs.close().map_err(|e| format!("close after recovery: {e}"))?;
    drop(fs);
    let last = shared.last.lock().unwrap().take().ok_or("the media was not dropped")?;
    let r = fsck_bytes(dir, &last);
    recycle(last);
    r
}

/// Every crash state of every epoch (at most `per_epoch` recipes each),
/// recovered from `img` and checked: `check`'s verdict on the recovered
/// filesystem ("ok" or a label the caller counts), then fsck after close.
/// Returns the states tried, the labels returned, and the failures.
pub fn check_crash_states(
    img: Vec<u8>,
    epochs: &[Epoch],
    (per_epoch, dir): (usize, &Path),
    check: impl Fn(&Fs) -> Result<String, String>,
) -> (usize, Vec<String>, Vec<String>) {
    let (mut cur, mut states, mut labels, mut failures) = (img, 0, Vec::new(), Vec::new());
    for (n, e) in epochs.iter().enumerate() {
        for recipe in recipes(e, per_epoch, n as u64 + 1) {
            states += 1;
            let (media, shared) = RecMedia::new(build(&cur, e, &recipe), false);
            let checked = Fs::from_media(Box::new(media), false)
                .map_err(|e| format!("recovery: {e}"))
                .and_then(|fs| {
                    let label = check(&fs)?;
                    close_and_fsck(fs, &shared, dir)?;
                    Ok(label)
                });
            match checked {
                Ok(label) => labels.push(label),
                Err(why) => failures.push(format!("epoch {n}, {}: {why}", recipe.show())),
            }
        }
        advance(&mut cur, e);
    }
    (states, labels, failures)
}

/// The hits (inode, distance bits) of a k-nearest search for each query in
/// collection `name`, one line per query.
pub fn hits_text(fs: &Fs, name: &str, queries: &[Vec<f32>], k: usize) -> Result<String, String> {
    let mut out = String::new();
    for q in queries {
        let mut req = vexfs::vector::SearchRequest::new(name, q.clone(), k);
        req.with_paths = false;
        let r = fs.search(&req).map_err(|e| format!("search: {e}"))?;
        let hits: Vec<(u32, u32)> = r.hits.iter().map(|h| (h.ino, h.distance.to_bits())).collect();
        out += &format!("{hits:?}\n");
    }
    Ok(out)
}

/// Each file's vector in collection `name`, one line per file.
pub fn vectors_text(fs: &Fs, name: &str, inos: &[u32]) -> Result<String, String> {
    let ctx = vexfs::fs::perm::Ctx::root();
    let mut out = String::new();
    for &i in inos {
        let v = fs
            .get_vector(&ctx, i.into(), name)
            .map_err(|e| format!("vector of {i}: {e}"))?;
        out += &format!("{v:?}\n");
    }
    Ok(out)
}

/// The operations sequences of up to three are built from.
pub const OPS: &[Op] = &[
    Op::Create("d/B"),
    Op::Mkdir("d/e"),
    Op::Write("A", 0, 6000),
    Op::Write("A", 20_000, 4096),
    Op::Truncate("A", 1000),
    Op::Unlink("A"),
    Op::Rename("A", "d/C"),
    Op::Rename("d", "f"),
    Op::Link("A", "d/L"),
    Op::SetXattr("A"),
];

/// The namespace change `op` makes when it succeeds, by the usual rules
/// (a sketch: hard links to one inode are separate names here).
fn model(ns: &mut BTreeMap<String, bool>, op: Op) {
    let dir_ok = |ns: &BTreeMap<String, bool>, p: &str| split(p).0.is_empty() || ns.get(split(p).0) == Some(&true);
    let under = |p: &str, a: &str| p == a || p.starts_with(&format!("{a}/"));
    let empty = |ns: &BTreeMap<String, bool>, d: &str| !ns.keys().any(|p| p.starts_with(&format!("{d}/")));
    match op {
        Op::Create(p) | Op::Mkdir(p) | Op::Link(_, p) if dir_ok(ns, p) && !ns.contains_key(p) => {
            let source_ok = match op {
                Op::Link(a, _) => ns.get(a) == Some(&false),
                _ => true,
            };
            if source_ok {
                ns.insert(p.to_owned(), matches!(op, Op::Mkdir(_)));
            }
        }
        Op::Unlink(p) if ns.get(p) == Some(&false) => {
            ns.remove(p);
        }
        Op::Rmdir(p) if ns.get(p) == Some(&true) && empty(ns, p) => {
            ns.remove(p);
        }
        Op::Rename(a, b) if ns.contains_key(a) && dir_ok(ns, b) && !under(b, a) => {
            let is_dir = ns[a];
            if let Some(&d) = ns.get(b) {
                if d != is_dir || (d && !empty(ns, b)) {
                    return;
                }
            }
            let moved: Vec<(String, bool)> = ns
                .iter()
                .filter(|(p, _)| under(p, a))
                .map(|(p, d)| (format!("{b}{}", &p[a.len()..]), *d))
                .collect();
            ns.retain(|p, _| !under(p, a) && p != b);
            ns.extend(moved);
        }
        _ => {}
    }
}

/// A random workload of `lo` to `hi` ops (20 to 50) over a few names,
/// fsyncs included, from `seed` (xorshift64*: the same seed, the same
/// workload). A model of
/// the namespace steers most ops to names where they can succeed (writes to
/// files that exist, renames into directories that exist, ...); one op in
/// ten is picked blindly from fixed names, mostly to fail. The model need
/// not be exact: the checks use what the live run did.
pub fn random_ops(seed: u64, (lo, hi): (usize, usize)) -> Vec<Op> {
    const NAMES: &[&str] = &["A", "B", "C", "d", "e", "f"];
    const BLIND: &[&str] = &["A", "B", "d/B", "d/C", "d/e", "d/e/F", "f", "f/G", "g"];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66_D1CE_4E5B;
    let mut next = |n: usize| {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    };
    let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
    // path -> is a directory (the root is "", not listed).
    let mut ns: BTreeMap<String, bool> = [("A", false), ("d", true)].map(|(p, d)| (p.to_owned(), d)).into();
    let len = lo + next(hi + 1 - lo);
    let mut ops = Vec::with_capacity(len);
    while ops.len() < len {
        let (k, n, m) = (next(1 << 20), next(NAMES.len()), next(1 << 20));
        let pick = |want_dir: Option<bool>, k: usize| -> Option<&'static str> {
            let c: Vec<&String> = ns
                .iter()
                .filter(|(_, d)| want_dir.is_none_or(|w| **d == w))
                .map(|(p, _)| p)
                .collect();
            (!c.is_empty()).then(|| leak(c[k % c.len()]))
        };
        // A new name in the root or a top-level directory.
        let fresh = |k: usize| -> Option<&'static str> {
            let dirs: Vec<&str> = std::iter::once("")
                .chain(
                    ns.iter()
                        .filter(|(p, d)| **d && !p.contains('/'))
                        .map(|(p, _)| p.as_str()),
                )
                .collect();
            let dir = dirs[k % dirs.len()];
            let p = if dir.is_empty() {
                NAMES[n].to_owned()
            } else {
                format!("{dir}/{}", NAMES[n])
            };
            (!ns.contains_key(&p)).then(|| leak(&p))
        };
        let file = pick(Some(false), k);
        let op = match next(100) {
            0..=9 => {
                let (a, b) = (BLIND[next(BLIND.len())], BLIND[next(BLIND.len())]);
                match next(6) {
                    0 => Op::Create(a),
                    1 => Op::Mkdir(a),
                    2 => Op::Unlink(a),
                    3 => Op::Rmdir(a),
                    4 if a != b => Op::Rename(a, b),
                    _ => Op::Write(a, 100, 100),
                }
            }
            10..=34 => {
                let off = [0, 100, 1000, 4096, 6000, 8191, 20_000, 40_000][next(8)];
                Op::Write(
                    file.or_else(|| fresh(k)).unwrap_or("A"),
                    off,
                    [1, 100, 512, 3000, 4096, 9000][next(6)],
                )
            }
            35..=47 => Op::Fsync,
            48..=56 => Op::Create(fresh(k).unwrap_or("A")),
            57..=61 => Op::Mkdir(fresh(k).unwrap_or("d")),
            62..=68 => Op::Truncate(file.unwrap_or("A"), [0, 1, 1000, 4096, 5000, 12_000, 30_000][next(7)]),
            69..=72 => Op::Punch(
                file.unwrap_or("A"),
                [0, 1000, 4096, 6000][next(4)],
                [100, 4096, 8192, 20_000][next(4)],
            ),
            73..=77 => Op::Unlink(file.unwrap_or("A")),
            78..=80 => Op::Rmdir(pick(Some(true), k).unwrap_or("d")),
            81..=89 => {
                // Onto a new name, or over an entry of the same kind.
                let Some(a) = pick(None, k) else { continue };
                let b = match next(3) {
                    0 => pick(Some(ns[a]), m),
                    _ => fresh(m),
                };
                match b.filter(|&b| b != a) {
                    Some(b) => Op::Rename(a, b),
                    None => continue,
                }
            }
            90..=94 => Op::Link(file.unwrap_or("A"), fresh(m).unwrap_or("B")),
            _ => Op::SetXattr(pick(None, k).unwrap_or("A")),
        };
        model(&mut ns, op);
        ops.push(op);
    }
    ops
}

/// The ACE-style workloads: every op alone (fsync'd or not), and the
/// sequences of two and three ops with fsync after each op, only at the
/// end, or (three ops) not at all. All under CRASH_FULL, a fixed stride of
/// them otherwise.
pub fn ace_workloads(full: bool) -> Vec<Vec<Op>> {
    let mut w: Vec<Vec<Op>> = Vec::new();
    for &a in OPS {
        w.push(vec![a, Op::Fsync]);
        w.push(vec![a]);
    }
    let n = OPS.len();
    for p in (0..n * n).step_by(env_usize("CRASH_PAIR_STRIDE", if full { 1 } else { 3 })) {
        let (a, b) = (OPS[p / n], OPS[p % n]);
        w.push(vec![a, Op::Fsync, b, Op::Fsync]);
        w.push(vec![a, b, Op::Fsync]);
    }
    // A stride coprime with 10 so the sample covers every op in every slot.
    for p in (0..n * n * n).step_by(env_usize("CRASH_TRIPLE_STRIDE", if full { 1 } else { 11 })) {
        let (a, b, c) = (OPS[p / (n * n)], OPS[p / n % n], OPS[p % n]);
        w.push(vec![a, b, c]);
        w.push(vec![a, Op::Fsync, b, Op::Fsync, c, Op::Fsync]);
        w.push(vec![a, b, c, Op::Fsync]);
    }
    w
}
