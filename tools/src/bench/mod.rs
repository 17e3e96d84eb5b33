//! `bench-ann`: VexFS's offline search against hnswlib on the same data and queries.
//!
//! [`data`] makes the deterministic data set and its exact ground truth, [`vexfs_side`] builds the
//! image and runs the search child process, [`peer`] runs the hnswlib script, [`report`] turns both
//! into the table and the ratios.

pub mod data;
pub mod peer;
pub mod report;
pub mod vexfs_side;

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Errors are reported as plain messages.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// Neighbours per query (recall@K).
pub const K: usize = 10;

/// The recall at which QPS is compared.
pub const TARGET_RECALL: f64 = 0.95;

/// One point of an ef sweep (both sides report these; the hnswlib script only the first three).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SweepPoint {
    pub ef: usize,
    /// Mean |hits ∩ truth| / K.
    pub recall: f64,
    /// Queries per second, one query at a time on one thread.
    pub qps: f64,
    /// Answers cut short by the search budget (VexFS only).
    #[serde(default)]
    pub incomplete: usize,
    /// Mean nodes visited per query (VexFS only).
    #[serde(default)]
    pub mean_visited: f64,
    /// Queries per CPU second of the searching process (user + system time of the sweep at this
    /// ef): less disturbed than `qps` when other work shares the CPUs. 0 when not measured.
    #[serde(default)]
    pub cpu_qps: f64,
}

/// Keep, per ef, the faster of `best` and a later round's sweep over the same efs: every QPS
/// figure is already the fastest of its passes, so a round only adds passes. Recall is the same
/// in every round (the searches are deterministic) and is left as it is.
pub fn keep_fastest(best: &mut [SweepPoint], round: &[SweepPoint]) {
    for (b, r) in best.iter_mut().zip(round).filter(|(b, r)| b.ef == r.ef) {
        b.qps = b.qps.max(r.qps);
        b.cpu_qps = b.cpu_qps.max(r.cpu_qps);
    }
}

/// CPU time (user + system) this process has used, in seconds.
pub fn process_cpu_seconds() -> f64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Prefix an I/O error with what was being done.
pub fn io_err(what: impl std::fmt::Display, path: &Path, e: std::io::Error) -> Error {
    format!("{what} {}: {e}", path.display()).into()
}

/// Anonymous resident memory of this process (KiB), from /proc/self/status.
pub fn rss_anon_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("RssAnon:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Read a JSON file into `T` (`None` when it is missing or does not parse: a cache miss).
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Write `value` as pretty JSON to `path`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_vec_pretty(value)?;
    std::fs::write(path, text).map_err(|e| io_err("cannot write", path, e))
}

/// Remove `path` if it exists.
pub fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("cannot remove", path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(ef: usize, qps: f64, cpu_qps: f64) -> SweepPoint {
        SweepPoint {
            ef,
            recall: 0.9,
            qps,
            incomplete: 0,
            mean_visited: 0.0,
            cpu_qps,
        }
    }

    #[test]
    fn rounds_keep_each_efs_fastest_figures() {
        let mut best = vec![point(10, 100.0, 120.0), point(20, 50.0, 60.0)];
        keep_fastest(&mut best, &[point(10, 90.0, 130.0), point(20, 70.0, 55.0)]);
        assert_eq!(best, [point(10, 100.0, 130.0), point(20, 70.0, 60.0)]);
        keep_fastest(&mut best, &[point(16, 999.0, 999.0)]);
        assert_eq!(best[0].qps, 100.0, "a different ef is not merged");
    }
}
