//! The machine a benchmark ran on: CPUs, kernel, load average, the filesystem holding the work
//! directory. On a shared machine the load average belongs beside every figure.

use super::run;
use serde::Serialize;
use std::fs;
use std::path::Path;
use std::process::Command;

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    /// /proc/loadavg (1, 5, 15 minutes) before and after the run.
    pub loadavg_before: String,
    pub loadavg_after: String,
    /// The filesystem and device holding the work directory.
    pub work_fs: String,
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg gives them.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

impl Machine {
    /// This machine now; `loadavg_before` was taken when the run started.
    pub fn describe(work: &Path, loadavg_before: String) -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
            .map_or_else(|| "unknown".into(), |(_, m)| m.trim().to_string());
        let work_fs = run(Command::new("df").arg("--output=fstype,source").arg(work))
            .ok()
            .and_then(|o| {
                o.lines()
                    .nth(1)
                    .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" on "))
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".into(), |k| k.trim().into()),
            loadavg_before,
            loadavg_after: loadavg(),
            work_fs,
        }
    }
}
