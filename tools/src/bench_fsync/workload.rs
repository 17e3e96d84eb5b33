//! The workload: small fsync'd transactions. Each is `open(O_CREAT|O_EXCL|O_WRONLY)` of a new
//! file, one write of the payload, `fsync`, `close`; its latency is the time of the four calls.
//! Each thread works in its own directory; all start together.

use super::sys::{self, io_err, DiskCounters, R};
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// When a case ends.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    /// Every thread stops at its first transaction boundary after this long.
    Time(Duration),
    /// Transactions in all (split between the threads).
    Count(u64),
}

/// One transaction: create, write, fsync, close.
pub fn transaction(path: &Path, payload: &[u8]) -> R<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_err("create", path))?;
    f.write_all(payload).map_err(io_err("write", path))?;
    f.sync_all().map_err(io_err("fsync", path))?;
    drop(f);
    Ok(())
}

/// Make `dir` and fsync its parent, so that the directory is durable before the timing starts.
pub fn durable_dir(dir: &Path) -> R<()> {
    fs::create_dir(dir).map_err(io_err("mkdir", dir))?;
    let parent = dir.parent().unwrap_or(dir);
    File::open(parent)
        .and_then(|f| f.sync_all())
        .map_err(io_err("fsync", parent))
}

/// The file names of the workload.
pub fn name(i: u64) -> String {
    format!("f{i:07}")
}

/// What one case measured.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    pub transactions: u64,
    pub seconds: f64,
    pub tx_per_sec: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_mean_ms: f64,
    pub latency_max_ms: f64,
    /// Transactions per thread.
    pub per_thread: Vec<u64>,
    /// What the disk holding the images did during the run (all processes' requests).
    pub disk: Option<DiskCounters>,
    /// Every latency, sorted (for pooling runs; not in the JSON).
    #[serde(skip)]
    pub sorted_ms: Vec<f64>,
}

pub use crate::benchsys::stats::percentile;

/// Transactions of thread `t` of `threads` when `total` are asked for.
fn share(total: u64, threads: usize, t: usize) -> u64 {
    let n = threads as u64;
    total / n + u64::from((t as u64) < total % n)
}

/// Run the workload in `root/t0`, `root/t1`, ... with `threads` threads; `disk` is the stat file
/// of the disk to count requests on.
pub fn run(root: &Path, threads: usize, limit: Limit, payload: &[u8], disk: Option<&Path>) -> R<Measured> {
    durable_dir(root)?;
    let dirs: Vec<PathBuf> = (0..threads).map(|t| root.join(format!("t{t}"))).collect();
    for d in &dirs {
        fs::create_dir(d).map_err(io_err("mkdir", d))?;
    }
    File::open(root)
        .and_then(|f| f.sync_all())
        .map_err(io_err("fsync", root))?;
    let barrier = Barrier::new(threads + 1);
    let (per_thread, seconds, disk_used) = thread::scope(|s| {
        let workers: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(t, d)| {
                let barrier = &barrier;
                s.spawn(move || -> R<Vec<f64>> {
                    barrier.wait();
                    let start = Instant::now();
                    let mut lat = Vec::with_capacity(1 << 14);
                    for i in 0u64.. {
                        let more = match limit {
                            Limit::Time(d) => start.elapsed() < d,
                            Limit::Count(n) => i < share(n, threads, t),
                        };
                        if !more {
                            break;
                        }
                        sys::check()?;
                        let t0 = Instant::now();
                        transaction(&d.join(name(i)), payload)?;
                        lat.push(t0.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok(lat)
                })
            })
            .collect();
        let disk_before = disk.and_then(sys::disk_counters);
        barrier.wait();
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut first_err = None;
        for w in workers {
            match w.join() {
                Ok(Ok(l)) => out.push(l),
                Ok(Err(e)) => first_err = first_err.or(Some(e)),
                Err(_) => first_err = first_err.or(Some("a worker thread panicked".to_string())),
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let disk_used = disk
            .and_then(sys::disk_counters)
            .zip(disk_before)
            .map(|(after, before)| after.since(before));
        match first_err {
            Some(e) => Err(e),
            None => Ok((out, secs, disk_used)),
        }
    })?;
    let counts: Vec<u64> = per_thread.iter().map(|l| l.len() as u64).collect();
    let mut all: Vec<f64> = per_thread.into_iter().flatten().collect();
    all.sort_by(f64::total_cmp);
    let n = all.len() as u64;
    Ok(Measured {
        transactions: n,
        seconds,
        tx_per_sec: n as f64 / seconds,
        latency_p50_ms: percentile(&all, 50.0),
        latency_p99_ms: percentile(&all, 99.0),
        latency_mean_ms: all.iter().sum::<f64>() / all.len().max(1) as f64,
        latency_max_ms: all.last().copied().unwrap_or(f64::NAN),
        per_thread: counts,
        disk: disk_used,
        sorted_ms: all,
    })
}

/// `n` transactions in `dir` (which must exist), one thread; returns when the last fsync returned.
pub fn burst(dir: &Path, n: u64, payload: &[u8]) -> R<Duration> {
    let t0 = Instant::now();
    for i in 0..n {
        sys::check()?;
        transaction(&dir.join(name(i)), payload)?;
    }
    Ok(t0.elapsed())
}

/// Check that `dir` holds exactly the files `burst(dir, n, payload)` made, each `payload` long.
pub fn verify_burst(dir: &Path, n: u64, payload: &[u8]) -> R<()> {
    let mut found = 0u64;
    for e in fs::read_dir(dir).map_err(io_err("readdir", dir))? {
        let e = e.map_err(io_err("readdir", dir))?;
        let len = e.metadata().map_err(io_err("stat", &e.path()))?.len();
        if len != payload.len() as u64 {
            return Err(format!("{} has {len} bytes, not {}", e.path().display(), payload.len()));
        }
        found += 1;
    }
    if found != n {
        return Err(format!("{} holds {found} files after recovery, not {n}", dir.display()));
    }
    let last = dir.join(name(n - 1));
    let data = fs::read(&last).map_err(io_err("read", &last))?;
    if data != payload {
        return Err(format!("{} does not hold the bytes written", last.display()));
    }
    Ok(())
}
