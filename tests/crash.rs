//! Crash harness (CrashMonkey / ALICE style). The real filesystem core runs
//! over an in-memory `Media` that records every flush. For each flush
//! epoch, crash states are built from the durable image before it plus
//! subsets of the blocks written since: every subset when there are few,
//! otherwise random subsets, in-order prefixes and leave-one-out sets, plus
//! torn 512-byte sectors and garbage sectors. Each state is recovered with
//! the real replay and checked: recovery succeeds; fsck finds nothing; the
//! namespace (and its inode numbers) equals the state after some operation
//! no earlier than the last acknowledged fsync (so create, unlink, rename,
//! link, truncate and setxattr are all-or-nothing and fsync'd changes are
//! present); every file byte no op touched since that fsync is exactly the
//! fsync'd byte, and no file shows a byte that was never written to it;
//! and the semantic events (format-spec/11) agree: gap-free, the live run's
//! own records in op order, one for every change that survived and none
//! for a lost one, all of those before the last fsync held (see
//! `check_events`). The live run's events are first checked against what
//! each op should append.
//!
//! A crash during recovery: for every `rec_every`-th crash state the
//! recovery itself runs over a recording media; crash states are built
//! from its flushes the same way (for every fourth such state, from the
//! flushes of the unmount after it too: the first commit and checkpoint
//! after a replay), recovered again, and must give the same namespace,
//! inode numbers, file bytes and events as the uninterrupted recovery,
//! with fsck clean.
//!
//! Workloads: every single op and a sample of the sequences of two and
//! three ops (ACE-style, fsync none / after each op / at the end; fsync,
//! fdatasync, fsyncdir and syncfs are the same `Fs::sync` in the core), and
//! random seeded workloads of 20 to 50 ops. The long versions:
//!
//! `CRASH_FULL=1 cargo test --release --test crash ace -- --nocapture`
//! (every sequence of up to three ops, more states per flush), and
//! `CRASH_SEEDS=200 cargo test --release --test crash random -- --nocapture`
//! (or `CRASH_SEED=17` / `CRASH_SEED=100..300` to replay or pick seeds).
//! `CRASH_MAX`, `CRASH_REC_EVERY` and `CRASH_REC_MAX` override the number of
//! subsets per flush, the recovery sampling stride and the crash states per
//! recovery flush, `CRASH_PAIR_STRIDE` and `CRASH_TRIPLE_STRIDE` the sample
//! of sequences; `CRASH_ALL=1` prints every violation.

mod common;
mod crash_support;

use common::make_image;
use crash_support::*;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;
use vexfs::events::{Event, Filter};
use vexfs::format::events::op_name;
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;

/// How much of each workload is checked.
#[derive(Clone, Copy)]
struct Cfg {
    /// Subsets of the changed blocks per flush (torn and garbage sectors
    /// come on top).
    max: usize,
    /// Every how many-th crash state also has its recovery crashed (0: none).
    rec_every: usize,
    /// Crash states per flush of a recovery.
    rec_max: usize,
    /// Every how many-th crashed recovery also has the unmount after it
    /// crashed (half as many states per flush).
    unmount_every: usize,
    /// Self-test only: claim that fsync covered every op, and expect an
    /// extra file after a crashed recovery, so the checks must fire.
    lie: bool,
}

impl Cfg {
    fn new(full: bool) -> Cfg {
        Cfg {
            max: env_usize("CRASH_MAX", if full { 256 } else { 24 }),
            rec_every: env_usize("CRASH_REC_EVERY", if full { 8 } else { 16 }),
            rec_max: env_usize("CRASH_REC_MAX", if full { 32 } else { 6 }),
            unmount_every: 4,
            lie: false,
        }
    }
}

/// Counts and violations of one category.
#[derive(Default)]
struct Tally {
    workloads: usize,
    states: usize,
    violations: Vec<String>,
    /// Crash states whose recovery was crashed, and the states built from those.
    recoveries: usize,
    unmounts: usize,
    rec_states: usize,
    rec_violations: Vec<String>,
}

/// A workload's live run.
struct Run<'a> {
    ops: &'a [Op],
    label: String,
    /// After 0, 1, ... ops.
    snaps: Vec<Snap>,
    trees: Vec<Tree>,
    live: Option<Live>,
    writes: Vec<(u32, u64, usize, u8)>,
    effects: Vec<Effect>,
}

/// File bytes: a byte no op changed since the last fsync (op `synced` on)
/// is exactly the byte it held then (a zero past the size it had then),
/// unless the crash state put a garbage sector (`garbled`, see `build`)
/// over the first sector of its block: that block was being written (the
/// block, not those bytes) and the media failed. Any other byte is zero,
/// a value written to that offset of that inode, or the garbage-sector
/// pattern; what the fsync'd content was is allowed too.
fn check_bytes(snap: &Snap, run: &Run, (synced, garbled): (usize, Option<usize>)) -> Result<(), String> {
    let at_sync = &run.snaps[synced].data;
    for (path, &ino) in &snap.inos {
        let Some(data) = snap.data.get(&ino).filter(|_| snap.tree[path].0 == 1) else {
            continue;
        };
        let fsynced = at_sync.get(&ino);
        for (off, &v) in data.iter().enumerate() {
            let was = fsynced.and_then(|d| d.get(off)).copied().unwrap_or(0);
            let o = off as u64;
            let touched = run
                .effects
                .iter()
                .any(|&(i, n, lo, hi)| i >= synced && n == ino && (lo..hi).contains(&o));
            if !touched {
                let sector = off - off % 512..(off - off % 512 + 512).min(data.len());
                let media_fault = garbled
                    .is_some_and(|i| off % BS < 512 && data[sector.clone()] == garbage_sector(i)[..sector.len()]);
                if v != was && !media_fault {
                    return Err(format!(
                        "{path} byte {off} is {v:#x}, but {was:#x} was fsync'd there (fsync covered {synced} ops, \
                         none later touched it)"
                    ));
                }
                continue;
            }
            let written = run
                .writes
                .iter()
                .any(|&(i, w, l, x)| i == ino && x == v && (w as usize..w as usize + l).contains(&off));
            if !(v == 0 || v == was || written || garbage_byte(off, v)) {
                return Err(format!("{path} byte {off} is {v:#x}, never written there"));
            }
        }
    }
    Ok(())
}

/// Every event held, without the times (a remount rewrites none, but its
/// own mount event is stamped anew).
fn event_keys(fs: &Fs) -> Result<Vec<Event>, String> {
    let b = fs
        .events_since(1, usize::MAX, &Filter::default())
        .map_err(|e| format!("events_since: {e}"))?;
    Ok(b.events
        .into_iter()
        .map(|e| Event {
            time: Default::default(),
            ..e
        })
        .collect())
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
/// With `rec`, the recovery is recorded and crashed in turn (see `recrash`).
fn check_state(
    img: Vec<u8>,
    dir: &Path,
    run: &Run,
    (synced, garbled): (usize, Option<usize>),
    rec: Option<(Cfg, &str)>,
    t: &mut Tally,
) -> Result<(), String> {
    let dump = std::env::var_os("CRASH_DUMP").map(|p| (p, img.clone()));
    let first = rec.map(|_| copy_image(&img));
    let (media, shared) = RecMedia::new(img, rec.is_some());
    let fs = Fs::from_media(Box::new(media), false).map_err(|e| {
        if let Some((p, img)) = &dump {
            std::fs::write(p, img).ok();
        }
        format!("recovery failed: {e}")
    })?;
    // The flushes of the recovery (the mount), then of the unmount.
    let mounted = shared.epochs.lock().unwrap().len();
    let snap = snapshot(&fs)?;
    let tree = &snap.tree;
    if !run.trees[synced..].contains(tree) {
        let j = run.trees.iter().position(|t| t == tree);
        return Err(match j {
            Some(j) => format!("recovered the state after op {j}, but fsync covered {synced} ops"),
            None => format!("namespace matches no operation boundary: {tree:?}"),
        });
    }
    if !run.snaps[synced..]
        .iter()
        .any(|s| s.tree == *tree && s.inos == snap.inos)
    {
        return Err(format!(
            "the namespace has other inode numbers than the live run's: {:?}",
            snap.inos
        ));
    }
    check_bytes(&snap, run, (synced, garbled))?;
    if let Some(live) = &run.live {
        check_events(&fs, live, run.ops, &run.trees, tree, synced)?;
    }
    let events = rec.map(|_| event_keys(&fs)).transpose()?;
    close_and_fsck(fs, &shared, dir)?;
    if let (Some((cfg, at)), Some(events), Some(img)) = (rec, events, first) {
        let epochs = std::mem::take(&mut *shared.epochs.lock().unwrap());
        recrash(
            img,
            (&epochs, mounted),
            dir,
            (&snap, &events),
            (cfg, &format!("{}, {at}", run.label)),
            t,
        );
    }
    Ok(())
}

/// The events but the mounts' and unmounts'.
fn strip(events: &[Event]) -> Vec<&Event> {
    let edge = |e: &&Event| matches!(op_name(e.op), "mount" | "unmount");
    events.iter().filter(|e| !edge(e)).collect()
}

/// Crash states of one recovery, from image `img`: of the flushes the
/// recovery made (the first `mounted` epochs) and, for every
/// `unmount_every`-th, of those of the unmount after it (the first commit
/// and checkpoint after a replay). Each is recovered again and must give
/// what the uninterrupted recovery gave: the same events too, but for
/// mounts and unmounts once the unmount began.
fn recrash(
    mut img: Vec<u8>,
    (epochs, mounted): (&[Epoch], usize),
    dir: &Path,
    want: (&Snap, &[Event]),
    (cfg, at): (Cfg, &str),
    t: &mut Tally,
) {
    t.recoveries += 1;
    let epochs = match t.recoveries % cfg.unmount_every {
        0 => {
            t.unmounts += 1;
            epochs
        }
        _ => &epochs[..mounted],
    };
    let mut want_tree = want.0.tree.clone();
    if cfg.lie {
        want_tree.insert("/lie".into(), (1, 0, 1, None));
    }
    for (k, e) in epochs.iter().enumerate() {
        let (phase, max) = match k < mounted {
            true => ("recovery", cfg.rec_max),
            false => ("unmount after recovery", cfg.rec_max.div_ceil(2)),
        };
        for r in spread(&recipes(e, cfg.rec_max, 31 * k as u64 + 5), max) {
            t.rec_states += 1;
            let check = || -> Result<(), String> {
                let (media, shared) = RecMedia::new(build(&img, e, &r), false);
                let fs = Fs::from_media(Box::new(media), false).map_err(|e| format!("recovery failed: {e}"))?;
                let s = snapshot(&fs)?;
                if s.tree != want_tree {
                    return Err(format!(
                        "namespace {:?}, the uninterrupted recovery gave {want_tree:?}",
                        s.tree
                    ));
                }
                if s.inos != want.0.inos {
                    return Err(format!("inode numbers {:?}, not {:?}", s.inos, want.0.inos));
                }
                if let Some((ino, d)) = s.data.iter().find(|(i, d)| want.0.data.get(i) != Some(d)) {
                    return Err(format!("inode {ino} holds {} other bytes", d.len()));
                }
                let ev = event_keys(&fs)?;
                if (k < mounted && ev != want.1) || strip(&ev) != strip(want.1) {
                    return Err(format!(
                        "{} events, {} after the uninterrupted recovery",
                        ev.len(),
                        want.1.len()
                    ));
                }
                close_and_fsck(fs, &shared, dir)
            };
            if let Err(v) = check() {
                t.rec_violations
                    .push(format!("{at}, {phase} flush {k} ({}): {v}", r.show()));
            }
        }
        advance(&mut img, e);
    }
    recycle(img);
}

/// Run a workload with the recorder attached; check every crash state.
/// Returns how many of its ops (fsync aside) took effect.
fn run_workload(ops: &[Op], label: String, base: &[u8], dir: &Path, cfg: Cfg, t: &mut Tally) -> usize {
    t.workloads += 1;
    let mut effective = 0;
    let (media, shared) = RecMedia::new(base.to_vec(), true);
    let fs = Fs::from_media(Box::new(media), false).expect("open");
    let first = fs.event_range().expect("event_range").1;
    // The base image's /A holds 8 KiB of 0x11 (see base_image).
    let a_ino = lookup(&fs, "A").expect("/A") as u32;
    let mut run = Run {
        ops,
        label,
        snaps: vec![snapshot(&fs).expect("snapshot")],
        trees: Vec::new(),
        live: None,
        writes: vec![(a_ino, 0, 8192, 0x11)],
        effects: Vec::new(),
    };
    let edge = |op| Expected {
        want: Want::new(op, 0, 0, b""),
        ops: None,
        unique: false,
    };
    let mut expected = vec![edge("mount")];
    // The inode of the newest event while it is an uncommitted write.
    let mut open_write = None;
    for (i, &op) in ops.iter().enumerate() {
        // The byte op i writes: unique per op in workloads of up to 192 ops.
        let want = apply(&fs, (i, op), 0x40 + (i % 0xc0) as u8, &mut run.writes, &mut run.effects);
        run.snaps.push(snapshot(&fs).expect("snapshot"));
        if matches!(op, Op::Fsync) {
            shared.synced_ops.store(i + 1, Ordering::SeqCst);
            open_write = None;
        }
        let Some(want) = want else { continue };
        effective += 1;
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
    let key = |w: &Want| Want { aux: None, ..w.clone() };
    for x in 0..expected.len() {
        let k = key(&expected[x].want);
        expected[x].unique = expected.iter().filter(|e| key(&e.want) == k).count() == 1;
    }
    run.trees = run.snaps.iter().map(|s| s.tree.clone()).collect();
    // Unmount, then read every committed event of the live run.
    let all = fs
        .close()
        .and_then(|()| fs.events_since(1, usize::MAX, &Filter::default()));
    drop(fs);
    match all {
        Err(e) => t
            .violations
            .push(format!("{}, live run: close or events_since: {e}", run.label)),
        Ok(b) => {
            let work: Vec<&Event> = b.events.iter().filter(|e| e.seq >= first).collect();
            let agree = work.len() == expected.len() && work.iter().zip(&expected).all(|(e, x)| x.want.matches(e));
            if !agree {
                let got: Vec<_> = work.iter().map(|e| e.to_json()).collect();
                let want: Vec<_> = expected.iter().map(|x| x.want.show()).collect();
                t.violations
                    .push(format!("{}, live run: events {got:?}, expected {want:?}", run.label));
            }
            run.live = agree.then_some(Live {
                all: b.events,
                first,
                expected,
            });
        }
    }
    let epochs = std::mem::take(&mut *shared.epochs.lock().unwrap());
    let mut cur = base.to_vec();
    for (k, e) in epochs.iter().enumerate() {
        for (s, r) in recipes(e, cfg.max, k as u64 * 7919 + ops.len() as u64)
            .iter()
            .enumerate()
        {
            t.states += 1;
            let at = format!("flush {k}, state {s} ({})", r.show());
            let rec = (cfg.rec_every > 0 && t.states.is_multiple_of(cfg.rec_every)).then_some((cfg, at.as_str()));
            let synced = if cfg.lie { ops.len() } else { e.synced_ops };
            let garbled = match r {
                Recipe::Garbage(i) => Some(*i),
                _ => None,
            };
            if let Err(v) = check_state(build(&cur, e, r), dir, &run, (synced, garbled), rec, t) {
                t.violations.push(format!("{}, {at}: {v}", run.label));
            }
        }
        advance(&mut cur, e);
    }
    effective
}

/// The image every workload starts from: /A (8 KiB of 0x11), /d, synced.
fn base_image(dir: &Path) -> Vec<u8> {
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

/// Print the counts of a category and its first violations.
fn report(category: &str, t: &Tally, started: Instant) {
    let all = std::env::var_os("CRASH_ALL").is_some();
    println!(
        "crash harness [{category}]: {} workloads, {} crash states checked, {} violations ({:.0} s)",
        t.workloads,
        t.states,
        t.violations.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "crash harness [recovery, {category}]: {} recoveries crashed ({} and the unmount after them), {} crash \
         states checked, {} violations",
        t.recoveries,
        t.unmounts,
        t.rec_states,
        t.rec_violations.len()
    );
    for v in t
        .violations
        .iter()
        .chain(&t.rec_violations)
        .take(if all { usize::MAX } else { 20 })
    {
        println!("  {v}");
    }
}

/// Err (which fails the test) when a category found anything.
fn verdict(category: &str, t: &Tally) -> Result<(), String> {
    if t.states == 0 {
        return Err(format!("{category}: no crash state was generated"));
    }
    match t.violations.iter().chain(&t.rec_violations).next() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{category}: {} violations in crash states, {} in crashed recoveries; first: {first}",
            t.violations.len(),
            t.rec_violations.len()
        )),
    }
}

#[test]
fn ace_workloads_of_up_to_three_ops() {
    let started = Instant::now();
    let full = std::env::var_os("CRASH_FULL").is_some();
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let (cfg, mut t) = (Cfg::new(full), Tally::default());
    let all = ace_workloads(full);
    for (k, w) in all.iter().enumerate() {
        run_workload(w, format!("{w:?}"), &base, dir.path(), cfg, &mut t);
        if full && (k + 1) % 200 == 0 {
            let (n, v) = (t.states + t.rec_states, t.violations.len() + t.rec_violations.len());
            println!("{}/{} workloads: {n} crash states, {v} violations", k + 1, all.len());
        }
    }
    report("ops", &t, started);
    verdict("ops", &t).unwrap();
}

/// The seeds to run: CRASH_SEED=a or a..b, CRASH_SEEDS=n (0..n), else 0..16.
fn seeds() -> std::ops::Range<u64> {
    if let Ok(s) = std::env::var("CRASH_SEED") {
        let (a, b) = s.split_once("..").unwrap_or((&s, ""));
        let a: u64 = a.trim().parse().expect("CRASH_SEED=a or a..b");
        return a..b.trim().parse().unwrap_or(a + 1);
    }
    0..env_usize("CRASH_SEEDS", 16) as u64
}

#[test]
fn random_seeded_workloads() {
    // CRASH_LEN=a..b: longer workloads than 20..50 ops (to explore).
    let lens = std::env::var("CRASH_LEN").ok().and_then(|v| {
        let (a, b) = v.split_once("..")?;
        Some((a.parse().ok()?, b.parse().ok()?))
    });
    let lens = lens.unwrap_or((20, 50));
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let (cfg, mut t) = (Cfg::new(false), Tally::default());
    let mut failed = Vec::new();
    for seed in seeds() {
        let ops = random_ops(seed, lens);
        let before = (t.states, t.violations.len() + t.rec_violations.len());
        let took = run_workload(&ops, format!("seed {seed}"), &base, dir.path(), cfg, &mut t);
        let bad = t.violations.len() + t.rec_violations.len() - before.1;
        let fsyncs = ops.iter().filter(|o| matches!(o, Op::Fsync)).count();
        println!(
            "random seed {seed}: {} ops ({took} took effect, {fsyncs} fsyncs), {} crash states, {bad} violations",
            ops.len(),
            t.states - before.0
        );
        if bad > 0 {
            failed.push(seed);
        }
        if bad > 0 || std::env::var_os("CRASH_SEED").is_some() {
            println!("  workload of seed {seed}: {ops:?}");
        }
    }
    report("random", &t, started);
    if !failed.is_empty() {
        println!("replay with CRASH_SEED=<seed> cargo test --release --test crash random -- --nocapture; failed seeds: {failed:?}");
    }
    verdict("random", &t).unwrap();
}

/// The checks fire: a run that claims fsync covered every op (it did not),
/// and a crashed recovery that must show a file it never had, both count
/// violations, and the verdict fails on them.
#[test]
fn the_harness_reports_violations() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let cfg = Cfg {
        max: 8,
        rec_every: 3,
        rec_max: 3,
        unmount_every: 1,
        lie: true,
    };
    let mut t = Tally::default();
    for w in [vec![Op::Create("d/B")], vec![Op::Write("A", 0, 6000)]] {
        run_workload(&w, format!("{w:?}"), &base, dir.path(), cfg, &mut t);
    }
    println!(
        "crash harness self-test (planted failures): {} of {} crash states and {} of {} crashed-recovery states \
         flagged",
        t.violations.len(),
        t.states,
        t.rec_violations.len(),
        t.rec_states
    );
    assert!(t.violations.iter().any(|v| v.contains("but fsync covered 1 ops")));
    assert!(t.violations.iter().any(|v| v.contains("was fsync'd there")));
    assert!(t.rec_states > 0 && t.rec_violations.len() == t.rec_states);
    assert!(verdict("self-test", &t).is_err(), "a tally with violations passed");
}
