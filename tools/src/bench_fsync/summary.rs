//! The runs of every case summarised: per filesystem and thread count the median rate over the
//! runs, latency percentiles over all their transactions and the disk's requests per
//! transaction; per thread count the VexFS/ext4 ratio against [`TARGET_RATIO`].

use super::sys::DiskCounters;
use super::workload::{self, Measured};
use super::{Case, Target, TARGET_RATIO};
use serde::Serialize;

/// The runs of one filesystem and thread count.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub fs: Target,
    pub threads: usize,
    pub runs: usize,
    /// Median over the runs.
    pub tx_per_sec: f64,
    pub tx_per_sec_runs: Vec<f64>,
    /// Over the transactions of all runs together.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_mean_ms: f64,
    pub latency_max_ms: f64,
    /// Requests of the disk holding the images per transaction, median over the runs (every
    /// process's requests count: on a shared machine, an upper bound).
    pub disk_flushes_per_tx: Option<f64>,
    pub disk_writes_per_tx: Option<f64>,
    pub disk_kib_written_per_tx: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Ratio {
    pub threads: usize,
    pub vexfs_tx_per_sec: f64,
    pub ext4_tx_per_sec: f64,
    /// VexFS / ext4 of the medians.
    pub ratio: f64,
    /// VexFS / ext4 of each repeat (the two runs were back to back).
    pub paired: Vec<f64>,
    pub met: bool,
}

pub use crate::benchsys::stats::median;

/// Distinct thread counts in the order given.
fn thread_counts(threads: &[usize]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for &t in threads {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// The summary of one filesystem's runs (`mine`, not empty) at `threads` threads.
fn summary(fs: Target, threads: usize, mine: &[&Measured]) -> Summary {
    let rates: Vec<f64> = mine.iter().map(|m| m.tx_per_sec).collect();
    let mut all: Vec<f64> = mine.iter().flat_map(|m| m.sorted_ms.iter().copied()).collect();
    all.sort_by(f64::total_cmp);
    // Median over the runs: one run during another process's burst of writes must not
    // dominate.
    let per_tx = |f: fn(&DiskCounters) -> f64| {
        let v: Option<Vec<f64>> = mine
            .iter()
            .map(|m| m.disk.map(|d| f(&d) / m.transactions.max(1) as f64))
            .collect();
        v.map(|v| median(&v))
    };
    Summary {
        fs,
        threads,
        runs: mine.len(),
        tx_per_sec: median(&rates),
        tx_per_sec_runs: rates,
        latency_p50_ms: workload::percentile(&all, 50.0),
        latency_p99_ms: workload::percentile(&all, 99.0),
        latency_mean_ms: all.iter().sum::<f64>() / all.len().max(1) as f64,
        latency_max_ms: all.last().copied().unwrap_or(f64::NAN),
        disk_flushes_per_tx: per_tx(|d| d.flushes as f64),
        disk_writes_per_tx: per_tx(|d| d.write_requests as f64),
        disk_kib_written_per_tx: per_tx(|d| d.write_sectors as f64 / 2.0),
    }
}

pub fn summaries(cases: &[Case], threads: &[usize]) -> Vec<Summary> {
    let mut out = Vec::new();
    for t in thread_counts(threads) {
        for fs in [Target::Vexfs, Target::Ext4] {
            let mine: Vec<&Measured> = cases
                .iter()
                .filter(|c| c.fs == fs && c.threads == t)
                .map(|c| &c.measured)
                .collect();
            if !mine.is_empty() {
                out.push(summary(fs, t, &mine));
            }
        }
    }
    out
}

/// VexFS / ext4 at `t` threads, if both ran.
fn ratio(cases: &[Case], sums: &[Summary], t: usize) -> Option<Ratio> {
    let rate = |f: Target| sums.iter().find(|s| s.fs == f && s.threads == t).map(|s| s.tx_per_sec);
    let (v, e) = (rate(Target::Vexfs)?, rate(Target::Ext4)?);
    let run = |f: Target, r: usize| {
        cases
            .iter()
            .filter(|c| c.fs == f && c.threads == t && c.repeat == r)
            .map(|c| c.measured.tx_per_sec)
            .collect::<Vec<_>>()
    };
    let repeats = cases.iter().map(|c| c.repeat + 1).max().unwrap_or(0);
    let paired = (0..repeats)
        .map(|r| median(&run(Target::Vexfs, r)) / median(&run(Target::Ext4, r)))
        .filter(|x| x.is_finite())
        .collect();
    Some(Ratio {
        threads: t,
        vexfs_tx_per_sec: v,
        ext4_tx_per_sec: e,
        ratio: v / e,
        paired,
        met: v / e >= TARGET_RATIO,
    })
}

pub fn ratios(cases: &[Case], sums: &[Summary], threads: &[usize]) -> Vec<Ratio> {
    thread_counts(threads)
        .into_iter()
        .filter_map(|t| ratio(cases, sums, t))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(fs: Target, repeat: usize, tx_per_sec: f64) -> Case {
        let measured = Measured {
            transactions: 10,
            seconds: 1.0,
            tx_per_sec,
            latency_p50_ms: 0.0,
            latency_p99_ms: 0.0,
            latency_mean_ms: 0.0,
            latency_max_ms: 0.0,
            per_thread: vec![10],
            disk: None,
            sorted_ms: vec![1.0, 3.0],
        };
        Case {
            fs,
            threads: 1,
            repeat,
            measured,
        }
    }

    #[test]
    fn ratios_pair_the_runs_of_one_repeat() {
        let cases = [
            case(Target::Vexfs, 0, 100.0),
            case(Target::Ext4, 0, 200.0),
            case(Target::Ext4, 1, 200.0),
            case(Target::Vexfs, 1, 300.0),
        ];
        // A thread count given twice is summarised once.
        let sums = summaries(&cases, &[1, 1]);
        assert_eq!(sums.len(), 2);
        assert_eq!(sums[0].tx_per_sec, 200.0);
        assert_eq!(sums[0].latency_max_ms, 3.0);
        assert_eq!(sums[0].disk_flushes_per_tx, None);
        let r = ratios(&cases, &sums, &[1, 1]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].ratio, 1.0);
        assert_eq!(r[0].paired, vec![0.5, 1.5]);
        assert!(r[0].met);
    }
}
