//! Crash harness (CrashMonkey / ALICE style). The real filesystem core runs
//! over an in-memory `Media` that records every flush. For each flush
//! epoch, crash states are built from the durable image before it plus
//! subsets of the blocks written since: every subset when there are few,
//! otherwise random subsets, in-order prefixes and leave-one-out sets, plus
//! torn 512-byte sectors and garbage sectors. Each state is recovered with
//! the real replay and checked: recovery succeeds; fsck finds nothing; the
//! namespace equals the state after some operation no earlier than the
//! last acknowledged fsync (so create, unlink, rename, link, truncate and
//! setxattr are all-or-nothing and fsync'd changes are present); no file
//! shows a byte that was never written to it; and the semantic events
//! (format-spec/11) agree: gap-free, the live run's own records in op order,
//! one for every change that survived and none for a lost one, all of those
//! before the last fsync held (see `check_events`). The live run's events
//! are first checked against what each op should append.
//!
//! `CRASH_FULL=1 cargo test --release --test crash -- --nocapture` runs the
//! long version (every two-operation sequence, more states per epoch).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use vexfs::events::{Event, Filter};
use vexfs::format::events::op_name;
use vexfs::fs::attrs::SetAttr;
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::image::Media;

const BS: usize = 4096;

/// One flush: the durable image before it and the blocks changed since.
struct Epoch {
    before: Arc<Vec<u8>>,
    after: Arc<Vec<u8>>,
    changed: Vec<usize>,
    /// Operations whose fsync had returned before this flush began.
    synced_ops: usize,
}

#[derive(Default)]
struct Shared {
    epochs: Mutex<Vec<Epoch>>,
    synced_ops: AtomicUsize,
}

/// The recording seam: the image in memory, the durable copy, the epochs.
struct RecMedia {
    bytes: Vec<u8>,
    durable: Arc<Vec<u8>>,
    shared: Arc<Shared>,
}

impl Media for RecMedia {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    fn bytes_mut(&mut self) -> vexfs::Result<&mut [u8]> {
        Ok(&mut self.bytes)
    }
    fn flush(&mut self, _range: Option<(u64, u64)>) -> vexfs::Result<()> {
        let changed: Vec<usize> = (0..self.bytes.len() / BS)
            .filter(|&b| self.bytes[b * BS..(b + 1) * BS] != self.durable[b * BS..(b + 1) * BS])
            .collect();
        if !changed.is_empty() {
            let after = Arc::new(self.bytes.clone());
            let synced_ops = self.shared.synced_ops.load(Ordering::SeqCst);
            self.shared.epochs.lock().unwrap().push(Epoch {
                before: self.durable.clone(),
                after: after.clone(),
                changed,
                synced_ops,
            });
            self.durable = after;
        }
        Ok(())
    }
}

/// The operations of the workloads (ACE-style, over a few names).
#[derive(Debug, Clone, Copy)]
enum Op {
    Create(&'static str),
    Mkdir(&'static str),
    Write(&'static str, u64, usize),
    Truncate(&'static str, u64),
    Unlink(&'static str),
    Rename(&'static str, &'static str),
    Link(&'static str, &'static str),
    SetXattr(&'static str),
    Fsync,
}

const OPS: &[Op] = &[
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

fn lookup(fs: &Fs, path: &str) -> Option<u64> {
    let mut cur = 1u64;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        cur = fs.lookup(&Ctx::root(), cur, part.as_bytes()).ok()?.ino.into();
    }
    Some(cur)
}

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// The event an operation should append (format-spec/11 §11.4), predicted
/// from the operation and the live namespace around it.
#[derive(Debug, Clone, PartialEq)]
struct Want {
    op: &'static str,
    ino: u64,
    parent: u64,
    name: Vec<u8>,
    ino2: u64,
    parent2: u64,
    name2: Vec<u8>,
    /// Checked where it is simple: write and truncate (the size after),
    /// setxattr (the value's length).
    aux: Option<u64>,
}

impl Want {
    fn new(op: &'static str, ino: u64, parent: u64, name: &[u8]) -> Want {
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
    fn matches(&self, e: &Event) -> bool {
        self.same_key(e) && self.aux.is_none_or(|a| a == e.aux)
    }

    /// Same operation on the same names and inodes.
    fn same_key(&self, e: &Event) -> bool {
        op_name(e.op) == self.op
            && (e.ino, e.parent, e.ino2, e.parent2) == (self.ino, self.parent, self.ino2, self.parent2)
            && e.name == self.name
            && e.name2 == self.name2
    }

    fn show(&self) -> String {
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

/// Apply one op; `value` is the byte a write uses (unique per op). Returns
/// the event the op should append: none for fsync or a failed op.
fn apply(fs: &Fs, op: Op, value: u8, writes: &mut Vec<(u32, u64, usize, u8)>) -> Option<Want> {
    let c = Ctx::root();
    let parent = |p: &str| lookup(fs, split(p).0);
    let name = |p: &'static str| split(p).1.as_bytes();
    match op {
        Op::Create(p) | Op::Mkdir(p) => {
            let (node, mode, kind) = match op {
                Op::Create(_) => (NewNode::File, 0o644, "create"),
                _ => (NewNode::Dir, 0o755, "mkdir"),
            };
            let d = parent(p)?;
            let a = fs.create(&c, d, name(p), mode, node).ok()?;
            Some(Want::new(kind, a.ino.into(), d, name(p)))
        }
        Op::Write(p, off, len) => {
            let i = lookup(fs, p)?;
            writes.push((i as u32, off, len, value));
            fs.write_data(i, off, &vec![value; len]).ok()?;
            let size = fs.getattr(i).ok()?.size;
            Some(Want {
                aux: Some(size),
                ..Want::new("write", i, 0, b"")
            })
        }
        Op::Truncate(p, size) => {
            let i = lookup(fs, p)?;
            let s = SetAttr {
                size: Some(size),
                ..Default::default()
            };
            fs.setattr(&c, i, &s).ok()?;
            Some(Want {
                aux: Some(size),
                ..Want::new("truncate", i, 0, b"")
            })
        }
        Op::Unlink(p) => {
            let d = parent(p)?;
            let victim = lookup(fs, p);
            fs.unlink(&c, d, name(p)).ok()?;
            Some(Want::new("unlink", victim?, d, name(p)))
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
            let (i, d) = lookup(fs, a).zip(parent(b))?;
            fs.link(&c, i, d, name(b)).ok()?;
            Some(Want::new("link", i, d, name(b)))
        }
        Op::SetXattr(p) => {
            let i = lookup(fs, p)?;
            fs.setxattr(&c, i, b"user.k", &[value], 0).ok()?;
            Some(Want {
                aux: Some(1),
                ..Want::new("setxattr", i, 0, b"user.k")
            })
        }
        Op::Fsync => {
            let _ = fs.sync();
            None
        }
    }
}

/// The namespace as (path -> (kind, size, nlink, xattr)) plus inode numbers.
type Tree = BTreeMap<String, (u8, u64, u32, Option<Vec<u8>>)>;

fn snapshot(fs: &Fs) -> (Tree, BTreeMap<String, u32>) {
    let (mut tree, mut inos) = (Tree::new(), BTreeMap::new());
    let mut stack = vec![(1u64, String::new())];
    while let Some((dir, path)) = stack.pop() {
        for e in fs.readdir(dir, 0, usize::MAX).unwrap() {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let p = format!("{path}/{}", String::from_utf8_lossy(&e.name));
            let a = fs.getattr(e.inode.into()).unwrap();
            let x = fs.getxattr(&Ctx::root(), e.inode.into(), b"user.k").ok();
            tree.insert(
                p.clone(),
                (e.file_type, if e.file_type == 2 { 0 } else { a.size }, a.nlink, x),
            );
            inos.insert(p.clone(), e.inode);
            if e.file_type == 2 {
                stack.push((e.inode.into(), p));
            }
        }
    }
    (tree, inos)
}

struct Outcome {
    states: usize,
    violations: Vec<String>,
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
fn crash_images(e: &Epoch, max: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut imgs = Vec::new();
    for mask in subsets(e.changed.len(), max, seed) {
        let mut img = (*e.before).clone();
        for (i, &b) in e.changed.iter().enumerate() {
            if mask[i] {
                img[b * BS..(b + 1) * BS].copy_from_slice(&e.after[b * BS..(b + 1) * BS]);
            }
        }
        imgs.push(img);
    }
    for (i, &b) in e.changed.iter().enumerate().take(4) {
        let mut torn = (*e.after).clone();
        let cut = 512 * (1 + i % 7);
        torn[b * BS + cut..(b + 1) * BS].copy_from_slice(&e.before[b * BS + cut..(b + 1) * BS]);
        imgs.push(torn);
        let mut garbage = (*e.before).clone();
        for (j, byte) in garbage[b * BS..b * BS + 512].iter_mut().enumerate() {
            *byte = (j as u8).wrapping_mul(31).wrapping_add(i as u8);
        }
        imgs.push(garbage);
    }
    imgs
}

/// One expected event of a workload's live run.
struct Expected {
    want: Want,
    /// The first and last op it records: one op, or a run of writes
    /// coalesced into one event (§11.7). None for the mount and unmount.
    ops: Option<(usize, usize)>,
    /// No other expected event has the same operation, inodes and names.
    unique: bool,
}

/// The events of a workload's live run.
struct Live {
    /// Every event the live run committed, from seq 1 (read after its
    /// unmount): the base image's, then the workload's.
    all: Vec<Event>,
    /// Sequence number of the workload's first event (its mount).
    first: u64,
    /// The workload's events, in order: mount, the ops', unmount. The live
    /// run's events are checked to be exactly these.
    expected: Vec<Expected>,
}

/// The events of a recovered state. (a) The events held are gap-free and
/// agree with `event_range`. They are the live run's first events, the
/// same records in the same order: so no event appears that the live run
/// did not commit, none twice, and (c) their order is the order of the
/// ops. (b) Each op the namespace shows survived (before the first
/// operation boundary the namespace matches) has its event; each op the
/// namespace shows lost (at or after the last boundary it matches) has
/// none. That is by position (its sequence number) for every op, and also
/// by content (exactly one / no event of that operation on those inodes
/// and names) for ops whose event is unique in the workload: not for a
/// second setxattr or truncate of the same file, say. Ops the namespace
/// cannot place (a write inside the file's size, an op between two equal
/// states) are covered by the last check: some operation boundary agrees
/// with both the namespace and the events. (d) Every event appended
/// before the last completed fsync is held (events after it may be lost).
fn check_events(fs: &Fs, live: &Live, ops: &[Op], states: &[Tree], tree: &Tree, synced: usize) -> Result<(), String> {
    let (oldest, next) = fs.event_range().map_err(|e| format!("event_range: {e}"))?;
    let batch = fs
        .events_since(1, usize::MAX, &Filter::default())
        .map_err(|e| format!("events_since: {e}"))?;
    let held = &batch.events;
    let names = |evs: &[Event]| -> Vec<String> {
        evs.iter()
            .map(|e| format!("{}:{}", e.seq, e.to_json()["op"].as_str().unwrap_or("?")))
            .collect()
    };
    if oldest == 0
        || oldest > next
        || batch.missed != oldest - 1
        || batch.next != next
        || held.len() as u64 != next - oldest
    {
        return Err(format!(
            "events: event_range is {oldest}..{next}, but reading from 1 gave {} events, {} missed, next {}",
            held.len(),
            batch.missed,
            batch.next
        ));
    }
    if let Some((k, e)) = held.iter().enumerate().find(|(k, e)| e.seq != oldest + *k as u64) {
        return Err(format!("events: seq {} where {} was due", e.seq, oldest + k as u64));
    }
    if let Some(k) = (0..held.len()).find(|&k| live.all.get(k) != Some(&held[k])) {
        return Err(format!(
            "events: held {} where the live run committed {:?}",
            held[k].to_json(),
            live.all.get(k).map(|e| e.to_json())
        ));
    }
    if next < live.first {
        return Err(format!(
            "events: those of the base image end at {}, but only {next} is next",
            live.first
        ));
    }
    let m = (next - live.first) as usize;
    let work = &held[held.len() - m..];
    let after: Vec<usize> = (synced..states.len()).filter(|&j| states[j] == *tree).collect();
    let (lo, hi) = (after[0], after[after.len() - 1]);
    for (x, ex) in live.expected.iter().enumerate() {
        let present = x < m;
        let count = work.iter().filter(|e| ex.want.same_key(e)).count();
        let first_op = match ex.ops {
            Some((i, _)) => i,
            None if x == 0 => 0,
            None => usize::MAX,
        };
        if first_op < synced && !present {
            return Err(format!(
                "events: the event of op {first_op} ({}) is missing, but fsync covered {synced} ops; held {:?}",
                ex.want.show(),
                names(work)
            ));
        }
        let Some((i, k)) = ex.ops else { continue };
        if i < lo && !(present && (!ex.unique || count == 1)) {
            return Err(format!(
                "events: op {i} {:?} survived (the namespace is the state after ops {after:?}), but its event \
                 ({}) is not held once; held {:?}",
                ops[i],
                ex.want.show(),
                names(work)
            ));
        }
        if k >= hi && (present || (ex.unique && count != 0)) {
            return Err(format!(
                "events: op {k} {:?} was lost (the namespace is the state after ops {after:?}), but its event \
                 ({}) is held; held {:?}",
                ops[k],
                ex.want.show(),
                names(work)
            ));
        }
    }
    // The op boundaries the events allow: an event is held exactly when
    // all of its ops survived (a coalesced run commits together).
    let by_events: Vec<usize> = (0..states.len())
        .filter(|&j| {
            live.expected.iter().enumerate().all(|(x, ex)| match ex.ops {
                None => true,
                Some((_, k)) if x < m => j > k,
                Some((i, _)) => j <= i,
            })
        })
        .collect();
    if !by_events.iter().any(|j| after.contains(j)) {
        return Err(format!(
            "events and namespace disagree: the namespace is the state after ops {after:?}, the events {:?} \
             say after ops {by_events:?}",
            names(work)
        ));
    }
    Ok(())
}

/// Recover one crash image and check every property; Err says which failed.
fn check_state(
    img: Vec<u8>,
    dir: &std::path::Path,
    (ops, states, live): (&[Op], &[Tree], Option<&Live>),
    synced: usize,
    writes: &[(u32, u64, usize, u8)],
) -> Result<(), String> {
    let shared = Arc::new(Shared::default());
    let media = RecMedia {
        durable: Arc::new(img.clone()),
        bytes: img.clone(),
        shared: shared.clone(),
    };
    let fs = Fs::from_media(Box::new(media), false).map_err(|e| {
        if let Some(p) = std::env::var_os("CRASH_DUMP") {
            std::fs::write(p, &img).ok();
        }
        format!("recovery failed: {e}")
    })?;
    let (tree, inos) = snapshot(&fs);
    if !states[synced..].contains(&tree) {
        let j = states.iter().position(|t| *t == tree);
        return Err(match j {
            Some(j) => format!("recovered the state after op {j}, but fsync covered {synced} ops"),
            None => format!("namespace matches no operation boundary: {tree:?}"),
        });
    }
    if let Some(live) = live {
        check_events(&fs, live, ops, states, &tree, synced)?;
    }
    for (path, &ino) in &inos {
        if tree[path].0 != 1 {
            continue;
        }
        let data = fs
            .read_data(ino.into(), 0, 1 << 20)
            .map_err(|e| format!("{path}: {e}"))?;
        for (off, &v) in data.iter().enumerate() {
            let written = writes
                .iter()
                .any(|&(i, o, l, w)| i == ino && w == v && (o as usize..o as usize + l).contains(&off));
            // A garbage sector in a data block being written at the crash
            // (the media's fault, not the filesystem's): its pattern is
            // known, see crash_images.
            let garbage = off % BS < 512 && (0..4u8).any(|i| v == ((off % BS) as u8).wrapping_mul(31).wrapping_add(i));
            let ok = v == 0 || written || garbage;
            if !ok {
                return Err(format!("{path} byte {off} is {v:#x}, never written there"));
            }
        }
    }
    fs.close().map_err(|e| format!("close after recovery: {e}"))?;
    drop(fs);
    let last = shared
        .epochs
        .lock()
        .unwrap()
        .last()
        .map(|e| (*e.after).clone())
        .unwrap_or(img);
    let p = dir.join("recovered.img");
    std::fs::write(&p, last).map_err(|e| e.to_string())?;
    let report = fsck(&p)?;
    if !report.is_clean() {
        return Err(format!("fsck: {:?}", report.problems));
    }
    Ok(())
}

/// Run a workload with the recorder attached; check every crash state.
fn run_workload(ops: &[Op], base: &[u8], dir: &std::path::Path, max_per_epoch: usize) -> Outcome {
    let shared = Arc::new(Shared::default());
    let media = RecMedia {
        durable: Arc::new(base.to_vec()),
        bytes: base.to_vec(),
        shared: shared.clone(),
    };
    let fs = Fs::from_media(Box::new(media), false).expect("open");
    let first = fs.event_range().expect("event_range").1;
    // The base image's /A holds 8 KiB of 0x11 (see base_image).
    let a_ino = lookup(&fs, "A").expect("/A") as u32;
    let mut writes = vec![(a_ino, 0, 8192, 0x11)];
    let mut states = vec![snapshot(&fs).0];
    let edge = |op| Expected {
        want: Want::new(op, 0, 0, b""),
        ops: None,
        unique: false,
    };
    let mut expected = vec![edge("mount")];
    // The inode of the newest event while it is an uncommitted write.
    let mut open_write = None;
    for (i, &op) in ops.iter().enumerate() {
        let want = apply(&fs, op, 0x40 + i as u8, &mut writes);
        states.push(snapshot(&fs).0);
        if matches!(op, Op::Fsync) {
            shared.synced_ops.store(i + 1, Ordering::SeqCst);
            open_write = None;
        }
        let Some(want) = want else { continue };
        let last = expected.last_mut().unwrap();
        if want.op == "write" && open_write == Some(want.ino) {
            // Coalesced: the pending write event takes the new size (§11.7).
            last.want.aux = want.aux;
            last.ops = last.ops.map(|(f, _)| (f, i));
        } else {
            open_write = (want.op == "write").then_some(want.ino);
            expected.push(Expected {
                want,
                ops: Some((i, i)),
                unique: false,
            });
        }
    }
    expected.push(edge("unmount"));
    for x in 0..expected.len() {
        let key = Want {
            aux: None,
            ..expected[x].want.clone()
        };
        let same = expected.iter().filter(|e| {
            Want {
                aux: None,
                ..e.want.clone()
            } == key
        });
        expected[x].unique = same.count() == 1;
    }
    let mut out = Outcome {
        states: 0,
        violations: Vec::new(),
    };
    // Unmount, then read every committed event of the live run.
    let all = fs
        .close()
        .and_then(|()| fs.events_since(1, usize::MAX, &Filter::default()));
    drop(fs);
    let live = match all {
        Err(e) => {
            out.violations
                .push(format!("{ops:?}, live run: close or events_since: {e}"));
            None
        }
        Ok(b) => {
            let work: Vec<&Event> = b.events.iter().filter(|e| e.seq >= first).collect();
            let agree = work.len() == expected.len() && work.iter().zip(&expected).all(|(e, x)| x.want.matches(e));
            if !agree {
                let got: Vec<_> = work.iter().map(|e| e.to_json()).collect();
                let want: Vec<_> = expected.iter().map(|x| x.want.show()).collect();
                out.violations
                    .push(format!("{ops:?}, live run: events {got:?}, expected {want:?}"));
            }
            agree.then_some(Live {
                all: b.events,
                first,
                expected,
            })
        }
    };
    let epochs = std::mem::take(&mut *shared.epochs.lock().unwrap());
    for (k, e) in epochs.iter().enumerate() {
        for (s, img) in crash_images(e, max_per_epoch, k as u64 * 7919 + ops.len() as u64)
            .into_iter()
            .enumerate()
        {
            out.states += 1;
            let run = (ops, &states[..], live.as_ref());
            if let Err(v) = check_state(img, dir, run, e.synced_ops, &writes) {
                out.violations.push(format!("{ops:?}, epoch {k}, state {s}: {v}"));
            }
        }
    }
    out
}

/// The image every workload starts from: /A (8 KiB of 0x11), /d, synced.
fn base_image(dir: &std::path::Path) -> Vec<u8> {
    let p = make_image(dir, "base.img", 8 << 20, false);
    {
        let fs = Fs::open(&p, false).unwrap();
        let c = Ctx::root();
        let a = fs.create(&c, 1, b"A", 0o644, NewNode::File).unwrap();
        fs.write_data(a.ino.into(), 0, &[0x11; 8192]).unwrap();
        fs.create(&c, 1, b"d", 0o755, NewNode::Dir).unwrap();
        fs.close().unwrap();
    }
    std::fs::read(&p).unwrap()
}

#[test]
fn every_crash_state_recovers_to_a_consistent_image() {
    let full = std::env::var_os("CRASH_FULL").is_some();
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let mut workloads: Vec<Vec<Op>> = Vec::new();
    for &a in OPS {
        workloads.push(vec![a, Op::Fsync]);
        workloads.push(vec![a]);
    }
    let pairs: Vec<(Op, Op)> = OPS.iter().flat_map(|&a| OPS.iter().map(move |&b| (a, b))).collect();
    let step = if full { 1 } else { 7 };
    for (a, b) in pairs.into_iter().step_by(step) {
        workloads.push(vec![a, Op::Fsync, b, Op::Fsync]);
        workloads.push(vec![a, b, Op::Fsync]);
    }
    let max = if full { 256 } else { 24 };
    let (mut states, mut violations) = (0, Vec::new());
    for w in &workloads {
        let o = run_workload(w, &base, dir.path(), max);
        states += o.states;
        violations.extend(o.violations);
    }
    println!(
        "crash harness: {} workloads, {states} crash states checked, {} violations",
        workloads.len(),
        violations.len()
    );
    for v in violations
        .iter()
        .filter(|v| std::env::var_os("CRASH_ALL").is_some() || !v.contains("superblock"))
        .take(if std::env::var_os("CRASH_ALL").is_some() {
            usize::MAX
        } else {
            20
        })
    {
        println!("  {v}");
    }
    assert!(states > 0, "no crash state was generated");
    assert!(
        violations.is_empty(),
        "{} violations, first: {}",
        violations.len(),
        violations[0]
    );
}
