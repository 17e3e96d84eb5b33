//! The parts of `bench-fsync` (tools/src/bin/bench_fsync.rs): the system interface and cleanup
//! guards ([`sys`]), the fsync'd-transaction [`workload`], the crash-[`recovery`] measurement,
//! the [`summary`] of the runs (medians, VexFS/ext4 ratios) and the [`report`] printed and
//! written as JSON. The shared types of one run live here. See docs/benchmarks.md.

pub mod recovery;
pub mod report;
pub mod summary;
pub mod sys;
pub mod workload;

use serde::Serialize;
use workload::Measured;

/// Smallest VexFS/ext4 throughput ratio issue 4 accepts.
pub const TARGET_RATIO: f64 = 0.5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Vexfs,
    Ext4,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::Vexfs => "VexFS (FUSE)",
            Target::Ext4 => "ext4 (loop)",
        }
    }
}

/// One run of one case.
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    pub fs: Target,
    pub threads: usize,
    pub repeat: usize,
    #[serde(flatten)]
    pub measured: Measured,
}

/// The payload: a fixed, non-zero pattern.
pub fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 + 1).collect()
}
