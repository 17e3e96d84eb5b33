//! The summary of the runs (medians per backend and mode), the machine, and the printed report.

use super::latency::{median, Latency};
use super::runs::Run;
use super::{Backend, Mode, TARGET_SLOWDOWN};
use serde::Serialize;
use std::fs;
use std::thread;

/// Medians of the runs of one backend and mode.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub backend: Backend,
    pub mode: Mode,
    pub runs: usize,
    pub ops_per_sec: f64,
    /// Operations per second of each phase, in the order of `phases`.
    pub phase_ops_per_sec: [f64; 4],
}

pub fn summarise(runs: &[Run], backend: Backend, mode: Mode, files: usize) -> Option<Summary> {
    let mine: Vec<&Run> = runs.iter().filter(|r| r.backend == backend && r.mode == mode).collect();
    if mine.is_empty() {
        return None;
    }
    let rates: Vec<f64> = mine.iter().map(|r| r.ops_per_sec).collect();
    let mut phase_ops_per_sec = [0.0; 4];
    for (i, p) in phase_ops_per_sec.iter_mut().enumerate() {
        *p = median(&mine.iter().map(|r| r.phase_rate(i, files)).collect::<Vec<_>>());
    }
    Some(Summary {
        backend,
        mode,
        runs: mine.len(),
        ops_per_sec: median(&rates),
        phase_ops_per_sec,
    })
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
}

pub fn machine() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
        .map_or_else(|| "unknown".into(), |(_, m)| m.trim().to_string());
    Machine {
        cpus: thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model,
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "unknown".into(), |k| k.trim().into()),
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub files: usize,
    pub threads: usize,
    pub repeats: usize,
    pub image_mib: u64,
    pub ops_per_file: usize,
    pub phases: Vec<&'static str>,
    pub runs: Vec<Run>,
    pub summaries: Vec<Summary>,
    /// events=on / events=off ops/s through FUSE (medians).
    pub fuse_ratio: f64,
    /// The same against the core.
    pub core_ratio: f64,
    pub target_min_ratio: f64,
    pub latency: Latency,
    pub target_latency_ms: f64,
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

pub fn print_report(r: &Report) {
    let m = &r.machine;
    println!(
        "bench-events: {} files x {} ops (create, write 100 B, stat, rename, unlink), {} threads, {} MiB image; \
         median of {} runs per mode (order off,on / on,off alternating)",
        r.files, r.ops_per_file, r.threads, r.image_mib, r.repeats
    );
    println!("machine: {} CPUs, {}, Linux {}", m.cpus, m.cpu_model, m.kernel);
    println!();
    println!(
        "{:<18} {:<13} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "throughput", "mode", "ops/s", "create+write", "stat", "rename", "unlink"
    );
    for s in &r.summaries {
        let p = s.phase_ops_per_sec;
        println!(
            "{:<18} {:<13} {:>12.0} {:>12.0} {:>12.0} {:>12.0} {:>12.0}",
            s.backend.label(),
            s.mode.label(),
            s.ops_per_sec,
            p[0],
            p[1],
            p[2],
            p[3]
        );
    }
    println!();
    for (label, ratio) in [("FUSE mount", r.fuse_ratio), ("core, in-process", r.core_ratio)] {
        println!(
            "{label:<18} on/off = {ratio:.3} ({:+.1}%); target >= {:.2} (< {:.0}% slower): {}",
            (ratio - 1.0) * 100.0,
            r.target_min_ratio,
            TARGET_SLOWDOWN * 100.0,
            verdict(ratio >= r.target_min_ratio)
        );
    }
    println!("runs (ops/s):");
    for backend in [Backend::Fuse, Backend::Core] {
        for mode in [Mode::Off, Mode::On, Mode::OnFollowed] {
            let v: Vec<String> = r
                .runs
                .iter()
                .filter(|x| x.backend == backend && x.mode == mode)
                .map(|x| match x.events_read {
                    Some(n) => format!("{:.0} ({n} events read)", x.ops_per_sec),
                    None => format!("{:.0}", x.ops_per_sec),
                })
                .collect();
            if !v.is_empty() {
                println!("  {:<18} {:<13} {}", backend.label(), mode.label(), v.join(", "));
            }
        }
    }
    let l = &r.latency;
    println!();
    println!(
        "latency, operation returned -> follower read its event ({} creates, {} ms apart):",
        l.ops, l.gap_ms
    );
    println!(
        "  median {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms; {} of {} read before creat(2) returned (as 0)",
        l.median_ms, l.p90_ms, l.p99_ms, l.max_ms, l.negative, l.ops
    );
    println!(
        "  target: median and p99 < {:.0} ms: {}",
        r.target_latency_ms,
        verdict(l.median_ms < r.target_latency_ms && l.p99_ms < r.target_latency_ms)
    );
    println!(
        "  creat(2) itself (with the commit the waiting follower forces): median {:.3} ms, p99 {:.3} ms",
        l.create_median_ms, l.create_p99_ms
    );
}
