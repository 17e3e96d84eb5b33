//! Event latency: a follower of `/.vexfs/events` stamps each event with the instant its read returned,
//! against the instant the operation returned; and the order statistics of the figures.

use super::runs::{fresh_image, fsck, mount, Setup};
use super::{io_err, R, STOP};
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Reads `.vexfs/events` with blocking reads, stamping each read's lines with the instant the
/// read returned (a BufReader would stamp lines kept in its buffer late).
pub(super) struct Follower {
    pub file: File,
    pub buf: Vec<u8>,
    pub carry: Vec<u8>,
}

impl Follower {
    /// Open the events file and start at its end.
    pub(super) fn open(mnt: &Path) -> R<Follower> {
        let p = mnt.join(".vexfs/events");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .map_err(io_err("open", &p))?;
        file.write_all(b"since end\n")
            .map_err(io_err("write `since end` to", &p))?;
        Ok(Follower {
            file,
            buf: vec![0; 64 << 10],
            carry: Vec::new(),
        })
    }

    /// Call `f(event, instant read)` for each event until it returns false (Ok(())) or the file
    /// ends (an error).
    pub(super) fn follow(mut self, mut f: impl FnMut(&serde_json::Value, Instant) -> bool) -> R<()> {
        loop {
            let n = self
                .file
                .read(&mut self.buf)
                .map_err(|e| format!("reading events: {e}"))?;
            let at = Instant::now();
            if n == 0 {
                return Err("the events file ended".into());
            }
            self.carry.extend_from_slice(&self.buf[..n]);
            let whole = self.carry.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            for line in self.carry[..whole].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| format!("bad event line: {e}"))?;
                if !f(&v, at) {
                    return Ok(());
                }
            }
            self.carry.drain(..whole);
        }
    }
}

/// The name of a `create` event, if `v` is one.
pub(super) fn created(v: &serde_json::Value) -> Option<&str> {
    (v["op"] == "create").then(|| v["name"].as_str()).flatten()
}

/// Latency figures, in ms.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub ops: usize,
    pub gap_ms: u64,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Events read before creat(2) had returned (counted as 0 ms).
    pub negative: usize,
    /// Median time creat(2) itself took (it includes the commit a waiting follower forces).
    pub create_median_ms: f64,
    pub create_p99_ms: f64,
    /// Every latency in order of the creates, in ms, negative ones as measured.
    pub samples_ms: Vec<f64>,
    /// How long each creat(2) took, in ms.
    pub create_samples_ms: Vec<f64>,
}

pub(super) use crate::benchsys::stats::{median, percentile};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// With events on, a follower reads `.vexfs/events` while `ops` empty files are created `gap`
/// apart; each latency is the instant the follower read the create event minus the instant
/// `creat(2)` returned.
pub fn latency(s: &Setup, ops: usize, gap: Duration) -> R<Latency> {
    fresh_image(s)?;
    let m = mount(s, true)?;
    let dir = m.dir.join("lat");
    fs::create_dir(&dir).map_err(io_err("mkdir", &dir))?;
    let follower = Follower::open(&m.dir)?;
    let (tx, rx) = mpsc::channel::<(usize, Instant)>();
    let handle = thread::spawn(move || {
        follower.follow(|v, at| match created(v) {
            Some(STOP) => false,
            Some(name) => {
                if let Some(i) = name.strip_prefix("lat-").and_then(|n| n.parse().ok()) {
                    let _ = tx.send((i, at));
                }
                true
            }
            None => true,
        })
    });
    thread::sleep(Duration::from_millis(100));
    let mut returned = Vec::with_capacity(ops);
    let mut took = Vec::with_capacity(ops);
    for i in 0..ops {
        thread::sleep(gap);
        let p = dir.join(format!("lat-{i}"));
        let t0 = Instant::now();
        let f = File::create(&p).map_err(io_err("create", &p))?;
        let t1 = Instant::now();
        drop(f);
        returned.push(t1);
        took.push(ms(t1 - t0));
    }
    let mut seen = vec![None; ops];
    let mut missing = ops;
    let deadline = Instant::now() + Duration::from_secs(10);
    while missing > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((i, at)) = rx.recv_timeout(left) else { break };
        if let Some(slot @ None) = seen.get_mut(i) {
            *slot = Some(at);
            missing -= 1;
        }
    }
    let stop = m.dir.join(STOP);
    File::create(&stop).map_err(io_err("create", &stop))?;
    handle.join().map_err(|_| "the follower panicked".to_string())??;
    m.finish()?;
    fsck(s)?;
    if missing > 0 {
        return Err(format!("the follower never saw {missing} of {ops} create events"));
    }
    let samples: Vec<f64> = seen
        .iter()
        .flatten()
        .zip(&returned)
        .map(|(&seen, &ret)| match seen.checked_duration_since(ret) {
            Some(d) => ms(d),
            None => -ms(ret - seen),
        })
        .collect();
    let negative = samples.iter().filter(|&&v| v < 0.0).count();
    let mut lat: Vec<f64> = samples.iter().map(|&v| v.max(0.0)).collect();
    lat.sort_by(f64::total_cmp);
    let create_samples_ms = took.clone();
    took.sort_by(f64::total_cmp);
    Ok(Latency {
        ops,
        gap_ms: gap.as_millis() as u64,
        median_ms: percentile(&lat, 50.0),
        p90_ms: percentile(&lat, 90.0),
        p99_ms: percentile(&lat, 99.0),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
        negative,
        create_median_ms: percentile(&took, 50.0),
        create_p99_ms: percentile(&took, 99.0),
        samples_ms: samples,
        create_samples_ms,
    })
}
