//! Emitting events from the core's operations, and the reader API:
//! positions, missed counts, filters, and waiting for new events.

use super::record::{Event, Op};
use super::ring::{self, Place};
use crate::error::Result;
use crate::fs::core::Fs;
use crate::fs::perm::Ctx;
use crate::fs::txn::Txn;
use crate::layout::Geometry;
use crate::vector::paths::Subtree;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Most events returned by one read. Why: bounds a reply's memory.
pub const MAX_BATCH: usize = 4096;
/// How long after a read a reader still counts as following (ms).
pub const FOLLOW_GRACE_MS: u64 = 250;

/// The event side of a mounted image.
#[derive(Default)]
pub struct EventState {
    /// Events are recorded (the image has a ring and `events=off` was not given).
    pub(crate) on: AtomicBool,
    /// Searches are recorded too (mount option `log_searches`).
    pub(crate) log_searches: AtomicBool,
    /// Sequence number after the last committed event: readers see only
    /// events below it (format-spec/11 §11.7: never shown, never reused).
    committed: AtomicU64,
    /// An event was appended since the last commit.
    pub(crate) pending: AtomicBool,
    /// Readers waiting for new events (commits are then made at once).
    pub(crate) waiters: AtomicUsize,
    /// When a reader last asked for events (ms since `epoch`): a reader
    /// that read a moment ago is about to wait again, so events are
    /// committed at once for it too (it sees them as the operation returns).
    last_read_ms: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
    lock: Mutex<()>,
    cv: Condvar,
    /// The newest event, when it is a write not yet committed: later
    /// writes to the same inode update it instead of adding one.
    last_write: Mutex<Option<(u64, u64, Place)>>,
}

/// What a read returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    /// Events the reader asked for that were dropped before it read them.
    pub missed: u64,
    pub events: Vec<Event>,
    /// The position to ask for next.
    pub next: u64,
}

/// Which events a reader wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Operation codes; empty = all.
    pub ops: Vec<u16>,
    /// Only events whose file or directory lies below this directory.
    pub subtree: Option<String>,
}

impl Fs {
    /// Set up event recording at open: the committed position is the
    /// ring's (the journal has been replayed). Called again by
    /// `set_events`, it only switches recording: the header as seen then
    /// may hold staged events, which readers must not see before their
    /// commit (`committed` is 0 only before the first call; sequence
    /// numbers start at 1).
    pub(crate) fn init_events(&self, on: bool) -> Result<()> {
        let mut on = on && ring::enabled(&self.geometry);
        if ring::enabled(&self.geometry) && self.events.committed.load(Ordering::Acquire) == 0 {
            match self.read(|txn, g| Ok(ring::header(txn, g, self.seed)?.er_next_seq.get())) {
                Ok(next) => self.events.committed.store(next, Ordering::Release),
                // A damaged ring must not make the whole image unusable:
                // the rest mounts, without events (fsck reports the ring).
                Err(e) => {
                    eprintln!("vexfs: the event ring is damaged ({e}); events are not recorded");
                    on = false;
                }
            }
        }
        self.events.on.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Are searches recorded?
    pub(crate) fn logs_searches(&self) -> bool {
        self.events.log_searches.load(Ordering::Relaxed) && self.events.on.load(Ordering::Relaxed)
    }

    /// Turn search logging on or off (mount option `log_searches`).
    pub fn set_log_searches(&self, on: bool) {
        self.events.log_searches.store(on, Ordering::Relaxed);
    }

    /// Append `ev` in the current transaction (a no-op when events are off).
    pub(crate) fn emit(&self, txn: &mut Txn<'_>, g: &Geometry, ctx: Option<&Ctx>, mut ev: Event) -> Result<()> {
        if !self.events.on.load(Ordering::Relaxed) {
            return Ok(());
        }
        ev.time = crate::fs::inode::now();
        if let Some(c) = ctx {
            (ev.uid, ev.pid) = (c.uid, c.pid);
        }
        ring::append(txn, g, self.seed, &mut ev)?;
        *self.events.last_write.lock() = None;
        self.events.pending.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// A write to `ino`, now `size` bytes long: coalesced with the newest
    /// event when that is an uncommitted write to the same inode.
    pub(crate) fn emit_write(
        &self,
        txn: &mut Txn<'_>,
        g: &Geometry,
        ctx: Option<&Ctx>,
        ino: u64,
        size: u64,
    ) -> Result<()> {
        if !self.events.on.load(Ordering::Relaxed) {
            return Ok(());
        }
        let next = ring::header(txn, g, self.seed)?.er_next_seq.get();
        let last = *self.events.last_write.lock();
        if let Some((w_ino, seq, place)) = last {
            if w_ino == ino && seq + 1 == next && seq >= self.events.committed.load(Ordering::Acquire) {
                let mut ev = Event::new(Op::Write, ino).with_aux(size);
                ev.seq = seq;
                ev.time = crate::fs::inode::now();
                if let Some(c) = ctx {
                    (ev.uid, ev.pid) = (c.uid, c.pid);
                }
                return ring::rewrite(txn, g, self.seed, place, &ev);
            }
        }
        let mut ev = Event::new(Op::Write, ino).with_aux(size);
        ev.time = crate::fs::inode::now();
        if let Some(c) = ctx {
            (ev.uid, ev.pid) = (c.uid, c.pid);
        }
        let place = ring::append(txn, g, self.seed, &mut ev)?;
        *self.events.last_write.lock() = Some((ino, ev.seq, place));
        self.events.pending.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// After a commit: everything appended so far is durable.
    pub(crate) fn events_committed(&self, next: u64) {
        self.events.committed.store(next, Ordering::Release);
        self.events.pending.store(false, Ordering::Relaxed);
        let _g = self.events.lock.lock();
        self.events.cv.notify_all();
    }

    /// The ring's next sequence number as staged (for commit bookkeeping).
    pub(crate) fn staged_event_seq(&self, txn: &Txn<'_>) -> Result<u64> {
        Ok(ring::header(txn, &self.geometry, self.seed)?.er_next_seq.get())
    }

    /// (oldest event still held, next sequence number readers will see).
    pub fn event_range(&self) -> Result<(u64, u64)> {
        if !ring::enabled(&self.geometry) {
            return Ok((1, 1));
        }
        let committed = self.events.committed.load(Ordering::Acquire);
        let oldest = self.read(|txn, g| Ok(ring::header(txn, g, self.seed)?.er_oldest_seq.get()))?;
        // The header is the staged one: its oldest may lie past the commit.
        Ok((oldest.min(committed), committed))
    }

    /// The sequence number the next event will get (staged events
    /// included): where a reader that wants only new events starts.
    pub fn event_end(&self) -> Result<u64> {
        if !ring::enabled(&self.geometry) {
            return Ok(1);
        }
        self.read(|txn, g| Ok(ring::header(txn, g, self.seed)?.er_next_seq.get()))
    }

    fn now_ms(&self) -> u64 {
        self.events.epoch.get_or_init(Instant::now).elapsed().as_millis() as u64
    }

    /// Whether a reader is following: waiting now, or read within
    /// [`FOLLOW_GRACE_MS`]. Changes then commit at once, so a follower
    /// sees each event by the time its operation returns.
    pub(crate) fn followers_active(&self) -> bool {
        self.events.waiters.load(Ordering::Acquire) > 0
            || match self.events.last_read_ms.load(Ordering::Relaxed) {
                0 => false,
                t => self.now_ms().saturating_sub(t) < FOLLOW_GRACE_MS,
            }
    }

    /// Committed events from position `w` (at most `max`), filtered.
    pub fn events_since(&self, w: u64, max: usize, filter: &Filter) -> Result<EventBatch> {
        self.events.last_read_ms.store(self.now_ms().max(1), Ordering::Relaxed);
        if !ring::enabled(&self.geometry) {
            return Ok(EventBatch {
                missed: 0,
                events: Vec::new(),
                next: w,
            });
        }
        let end = self.events.committed.load(Ordering::Acquire);
        self.read(|txn, g| {
            let (missed, events, next) = ring::read(txn, g, self.seed, w, end, max.min(MAX_BATCH))?;
            let mut tree = match &filter.subtree {
                Some(p) => Some(Subtree::new(crate::vector::query::resolve_dir(txn, g, p)?)),
                None => None,
            };
            let mut kept = Vec::with_capacity(events.len());
            for e in events {
                if (filter.ops.is_empty() || filter.ops.contains(&e.op)) && in_tree(txn, g, &mut tree, &e)? {
                    kept.push(e);
                }
            }
            Ok(EventBatch {
                missed,
                events: kept,
                next,
            })
        })
    }

    /// Wait until an event at or after `w` is committed, or `timeout`
    /// passes; true if there is one. Staged events are committed at once
    /// for a waiting reader (and, while it waits, each new one is).
    pub fn wait_events(&self, w: u64, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        self.events.waiters.fetch_add(1, Ordering::AcqRel);
        let r = self.wait_loop(w, deadline);
        self.events.waiters.fetch_sub(1, Ordering::AcqRel);
        r
    }

    fn wait_loop(&self, w: u64, deadline: Instant) -> Result<bool> {
        loop {
            if self.events.committed.load(Ordering::Acquire) > w {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            if self.events.pending.load(Ordering::Relaxed) && !self.is_read_only() {
                self.sync()?;
                // Nothing may have been left to commit (a transaction that
                // emitted then failed): do not spin on it. Events staged
                // from now on are committed by `Fs::write`, as we wait.
                self.events.pending.store(false, Ordering::Relaxed);
                continue;
            }
            let mut g = self.events.lock.lock();
            if self.events.committed.load(Ordering::Acquire) > w || self.events.pending.load(Ordering::Relaxed) {
                continue;
            }
            if self.events.cv.wait_until(&mut g, deadline).timed_out() {
                return Ok(self.events.committed.load(Ordering::Acquire) > w);
            }
        }
    }
}

/// Whether event `e` concerns the subtree: its directory (else its
/// inode), or its second directory (a rename into the subtree).
fn in_tree(txn: &Txn<'_>, g: &Geometry, tree: &mut Option<Subtree>, e: &Event) -> Result<bool> {
    let Some(t) = tree else { return Ok(true) };
    let first = if e.parent != 0 { e.parent } else { e.ino };
    for target in [first, e.parent2] {
        let Some(ino) = u32::try_from(target).ok().and_then(|n| g.inode_no(n)) else {
            continue;
        };
        // A file gone since the event cannot be placed: leave it out.
        if t.contains(txn, g, ino).unwrap_or(false) {
            return Ok(true);
        }
    }
    Ok(false)
}
