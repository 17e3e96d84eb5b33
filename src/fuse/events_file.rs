//! `/.vexfs/events`: the event stream as JSON lines (format-spec/11). Each
//! open file description is a reader with its own position (the oldest
//! event held, until it writes `since N` or `since end`) and an optional
//! filter (`filter {"ops":["unlink"],"subtree":"/a"}`). A read returns
//! whole lines; when nothing new is committed it waits (a blocking
//! reader makes the core commit at once, so it waits milliseconds, not
//! the commit interval), or fails with EAGAIN under O_NONBLOCK. poll and
//! select report POLLIN when events are there.

use crate::error::FsError;
use crate::events::{Filter, Op};
use crate::fs::core::Fs;
use fuser::{PollEvents, PollNotifier, ReplyData, ReplyPoll};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How long a blocked read or the poll notifier waits before checking
/// whether its reader is still there.
const RECHECK: Duration = Duration::from_millis(500);
/// Most events turned into one reply. Why: bounds the reply's memory.
const MAX_EVENTS_PER_READ: usize = 1024;

struct Reader {
    pos: u64,
    filter: Filter,
    /// Reply bytes not yet read (a line longer than the read size).
    carry: Vec<u8>,
    nonblock: bool,
    pid: u32,
}

pub struct EventFiles {
    fs: Weak<Fs>,
    readers: Mutex<HashMap<u64, Reader>>,
    polls: Mutex<Vec<PollNotifier>>,
    notifier: Mutex<bool>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterSpec {
    #[serde(default)]
    ops: Vec<String>,
    #[serde(default)]
    subtree: Option<String>,
}

fn parse_command(line: &str, fs: &Fs, r: &mut Reader) -> Result<(), FsError> {
    let bad = |why: String| FsError::Invalid(why);
    match line.split_once(' ').unwrap_or((line, "")) {
        ("since", "end" | "now") => r.pos = fs.event_end()?,
        ("since", n) => {
            r.pos = n
                .trim()
                .parse()
                .map_err(|_| bad(format!("since {n:?}: not a number")))?
        }
        ("filter", spec) => {
            let f: FilterSpec = serde_json::from_str(spec).map_err(|e| bad(format!("filter: {e}")))?;
            let ops = f
                .ops
                .iter()
                .map(|o| Op::code_of(o).ok_or_else(|| bad(format!("unknown operation {o:?}"))))
                .collect::<Result<_, _>>()?;
            r.filter = Filter {
                ops,
                subtree: f.subtree,
            };
        }
        _ => {
            return Err(bad(format!(
                "unknown command {line:?}: use `since N`, `since end` or `filter {{..}}`"
            )))
        }
    }
    Ok(())
}

/// Whether the reading thread is gone or has a signal pending (a killed
/// reader waits, unkillable, for our reply: give it EINTR).
fn gone_or_signalled(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    status
        .lines()
        .filter_map(|l| l.strip_prefix("SigPnd:").or_else(|| l.strip_prefix("ShdPnd:")))
        .any(|v| u64::from_str_radix(v.trim(), 16).is_ok_and(|bits| bits != 0))
}

impl EventFiles {
    pub fn new(fs: &Arc<Fs>) -> Arc<EventFiles> {
        Arc::new(EventFiles {
            fs: Arc::downgrade(fs),
            readers: Mutex::new(HashMap::new()),
            polls: Mutex::new(Vec::new()),
            notifier: Mutex::new(false),
        })
    }

    fn fs(&self) -> Result<Arc<Fs>, FsError> {
        self.fs.upgrade().ok_or(FsError::Invalid("unmounted".into()))
    }

    pub fn open(&self, fh: u64, nonblock: bool, pid: u32) -> Result<(), FsError> {
        let pos = self.fs()?.event_range()?.0;
        let r = Reader {
            pos,
            filter: Filter::default(),
            carry: Vec::new(),
            nonblock,
            pid,
        };
        self.readers.lock().insert(fh, r);
        Ok(())
    }

    pub fn release(&self, fh: u64) {
        self.readers.lock().remove(&fh);
    }

    /// Commands, one per line.
    pub fn write(&self, fh: u64, data: &[u8]) -> Result<usize, FsError> {
        let fs = self.fs()?;
        let text = std::str::from_utf8(data).map_err(|_| FsError::Invalid("commands are text".into()))?;
        let mut readers = self.readers.lock();
        let r = readers
            .get_mut(&fh)
            .ok_or(FsError::Invalid("not an open events file".into()))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            parse_command(line, &fs, r)?;
        }
        r.carry.clear();
        Ok(data.len())
    }

    /// Up to `size` bytes of whole lines, or None when nothing is new.
    fn fill(&self, fs: &Fs, fh: u64, size: usize) -> Result<Option<Vec<u8>>, FsError> {
        let mut readers = self.readers.lock();
        let r = readers
            .get_mut(&fh)
            .ok_or(FsError::Invalid("not an open events file".into()))?;
        // Filtered-out events advance the position; stop at the end.
        while r.carry.is_empty() {
            let batch = fs.events_since(r.pos, (size / 96).clamp(1, MAX_EVENTS_PER_READ), &r.filter)?;
            if batch.missed > 0 {
                let line = serde_json::json!({"missed": batch.missed, "next": r.pos + batch.missed});
                r.carry.extend_from_slice(format!("{line}\n").as_bytes());
            }
            for e in &batch.events {
                r.carry.extend_from_slice(format!("{}\n", e.to_json()).as_bytes());
            }
            let moved = batch.next != r.pos;
            r.pos = batch.next;
            if !moved {
                break;
            }
        }
        if r.carry.is_empty() {
            return Ok(None);
        }
        // Whole lines that fit; a single longer line is split.
        let cut = match r.carry[..size.min(r.carry.len())].iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => size.min(r.carry.len()),
        };
        Ok(Some(r.carry.drain(..cut).collect()))
    }

    pub fn read(self: &Arc<Self>, fh: u64, size: usize, reply: ReplyData) {
        let fs = match self.fs() {
            Ok(f) => f,
            Err(_) => return reply.data(&[]),
        };
        match self.fill(&fs, fh, size) {
            Ok(Some(d)) => return reply.data(&d),
            Err(e) => return reply.error(super::convert::errno(&e)),
            Ok(None) => {}
        }
        let (nonblock, pid) = match self.readers.lock().get(&fh) {
            Some(r) => (r.nonblock, r.pid),
            None => return reply.error(fuser::Errno::EBADF),
        };
        if nonblock {
            return reply.error(fuser::Errno::EAGAIN);
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("events-read".into())
            .stack_size(super::THREAD_STACK)
            .spawn(move || me.wait_and_reply(fh, size, pid, reply));
        if let Err(e) = spawned {
            log::error!("events: cannot start a waiting thread: {e}");
        }
    }

    /// A blocked read: wait for a committed event, checking that the file
    /// is still open and its reader alive (a killed reader's request
    /// would otherwise wait for the next event).
    fn wait_and_reply(&self, fh: u64, size: usize, pid: u32, reply: ReplyData) {
        loop {
            let Ok(fs) = self.fs() else { return reply.data(&[]) };
            let Some(pos) = self.readers.lock().get(&fh).map(|r| r.pos) else {
                return reply.error(fuser::Errno::EBADF);
            };
            if pid != 0 && gone_or_signalled(pid) {
                return reply.error(fuser::Errno::EINTR);
            }
            if let Err(e) = fs.wait_events(pos, RECHECK) {
                return reply.error(super::convert::errno(&e));
            }
            match self.fill(&fs, fh, size) {
                Ok(Some(d)) => return reply.data(&d),
                Ok(None) => {}
                Err(e) => return reply.error(super::convert::errno(&e)),
            }
        }
    }

    /// poll/select: POLLIN when something is readable; otherwise the
    /// kernel is notified when an event commits.
    pub fn poll(self: &Arc<Self>, fh: u64, ph: PollNotifier, reply: ReplyPoll) {
        let ready = match self.fs() {
            Ok(fs) => {
                let r = self.readers.lock().get(&fh).map(|r| (r.pos, r.carry.is_empty()));
                match (r, fs.event_range()) {
                    (Some((_, false)), _) => true,
                    (Some((pos, true)), Ok((_, next))) => next > pos,
                    _ => true,
                }
            }
            Err(_) => true,
        };
        if ready {
            return reply.poll(PollEvents::POLLIN | PollEvents::POLLRDNORM);
        }
        self.polls.lock().push(ph);
        self.start_notifier();
        reply.poll(PollEvents::empty());
    }

    /// One thread per mount wakes pollers when events commit.
    fn start_notifier(self: &Arc<Self>) {
        let mut started = self.notifier.lock();
        if *started {
            return;
        }
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("events-poll".into())
            .stack_size(super::THREAD_STACK)
            .spawn(move || loop {
                let Some(me) = weak.upgrade() else { return };
                let Ok(fs) = me.fs() else { return };
                if me.polls.lock().is_empty() {
                    drop((me, fs));
                    std::thread::sleep(RECHECK);
                    continue;
                }
                let next = fs.event_range().map_or(0, |r| r.1);
                if fs.wait_events(next, RECHECK).unwrap_or(false) {
                    for ph in me.polls.lock().drain(..) {
                        let _ = ph.notify();
                    }
                }
            });
        *started = spawned.is_ok();
    }
}
