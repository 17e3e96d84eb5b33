//! `bench-fs` (tools/src/bin/bench_fs.rs): VexFS over FUSE against ext4 on a loop device on the
//! same disk, in one run: [`fio`] jobs (sequential and random I/O, fsync-heavy writes, two parallel
//! jobs), the [`meta`]data workload, and the source-[`tree`] workloads (`tar x`, a stat walk,
//! `git status`). [`rss`] samples the mount daemon's memory during each workload, [`perf`] can
//! profile it, and [`report`] pairs the two filesystems' figures into ratios. With `--floor` the
//! metadata and tree workloads also run on the floor filesystem (`fuse-floor`, tools/src/floor/):
//! an in-memory FUSE filesystem doing no work over the same session as VexFS, the lower bound of
//! any FUSE filesystem built with fuser. See tools/bench-fs/README.md.

pub mod bed;
pub mod fio;
pub mod meta;
pub mod perf;
pub mod report;
pub mod rss;
pub mod tree;

use serde::Serialize;

/// One figure of one workload on one filesystem.
#[derive(Clone, Debug, Serialize)]
pub struct Metric {
    pub unit: &'static str,
    pub value: f64,
    /// Larger is better (a rate) or smaller is (a time or latency).
    pub higher_is_better: bool,
}

impl Metric {
    pub fn higher(unit: &'static str, value: f64) -> Metric {
        Metric {
            unit,
            value,
            higher_is_better: true,
        }
    }

    pub fn lower(unit: &'static str, value: f64) -> Metric {
        Metric {
            unit,
            value,
            higher_is_better: false,
        }
    }
}

/// One row of the report on one filesystem: the first metric is the one compared.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    pub name: String,
    pub what: String,
    pub metrics: Vec<Metric>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Vexfs,
    Ext4,
    /// The floor filesystem (bench-fs --floor).
    Floor,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::Vexfs => "VexFS",
            Target::Ext4 => "ext4",
            Target::Floor => "floor",
        }
    }
}
