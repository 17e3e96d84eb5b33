//! The fio jobs of bench-fs: what each one runs, installing fio when it is missing, and the
//! figures taken from fio's JSON output.

use super::Metric;
use crate::benchsys::{self as sys, R};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The file the sequential write lays down and the single-job reads and random writes reuse.
const SEQ_FILE: &str = "fio-seq.dat";

/// The files of the two parallel jobs, one per job, shared by the write and the read job.
const PAR_FILES: &str = "--filename_format=fio-par.$jobnum";

/// One fio job: its name in the report, what it reports, and its fio arguments.
pub struct Job {
    pub name: &'static str,
    pub what: &'static str,
    /// Report bandwidth (MiB/s) rather than IOPS.
    pub bandwidth: bool,
    /// The page cache is dropped before the job (reads must come from the disk).
    pub cold: bool,
    args: Vec<String>,
}

/// The sizes of one run: `size` for the sequential file (the issue says 2 GiB), `runtime` seconds
/// for the time-based jobs.
pub struct Sizes {
    pub size_mib: u64,
    pub runtime_s: u64,
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Every job, in the order they run (the reads and random writes need the sequential file).
pub fn jobs(s: &Sizes) -> Vec<Job> {
    let size = format!("--size={}M", s.size_mib);
    let half = format!("--size={}M", s.size_mib / 2);
    let runtime = format!("--runtime={}", s.runtime_s);
    let seq = format!("--filename={SEQ_FILE}");
    let mut out = vec![
        Job {
            name: "seq-write",
            what: "sequential write, 1 MiB blocks, end_fsync=1",
            bandwidth: true,
            cold: false,
            args: args(&["--rw=write", "--bs=1M", "--end_fsync=1"]),
        },
        Job {
            name: "seq-read",
            what: "sequential read, 1 MiB blocks, cold cache",
            bandwidth: true,
            cold: true,
            args: args(&["--rw=read", "--bs=1M"]),
        },
        Job {
            name: "rand-read",
            what: "random read, 4 KiB blocks, cold cache",
            bandwidth: false,
            cold: true,
            args: args(&["--rw=randread", "--bs=4k", "--time_based"]),
        },
        Job {
            name: "rand-write",
            what: "random overwrite, 4 KiB blocks, end_fsync=1",
            bandwidth: false,
            cold: false,
            args: args(&["--rw=randwrite", "--bs=4k", "--time_based", "--end_fsync=1"]),
        },
    ];
    for j in &mut out {
        j.args.extend([seq.clone(), size.clone()]);
        if j.args.iter().any(|a| a == "--time_based") {
            j.args.push(runtime.clone());
        }
    }
    out.push(Job {
        name: "fsync-write",
        what: "4 KiB appending writes, fsync after each",
        bandwidth: false,
        cold: false,
        args: vec![
            "--rw=write".into(),
            "--bs=4k".into(),
            "--fsync=1".into(),
            "--size=256M".into(),
            "--time_based".into(),
            runtime.clone(),
            "--filename=fio-fsync.dat".into(),
        ],
    });
    out.push(Job {
        name: "par-write",
        what: "2 jobs (numjobs=2) each writing its own file, 1 MiB blocks, end_fsync=1",
        bandwidth: true,
        cold: false,
        args: vec![
            "--rw=write".into(),
            "--bs=1M".into(),
            "--end_fsync=1".into(),
            "--numjobs=2".into(),
            PAR_FILES.into(),
            half.clone(),
        ],
    });
    out.push(Job {
        name: "par-rand-read",
        what: "2 jobs (numjobs=2) reading par-write's files, 4 KiB random, cold cache",
        bandwidth: false,
        cold: true,
        args: vec![
            "--rw=randread".into(),
            "--bs=4k".into(),
            "--numjobs=2".into(),
            PAR_FILES.into(),
            half,
            "--time_based".into(),
            runtime,
        ],
    });
    out
}

/// fio's version, installing the Debian package with apt-get when it is missing.
pub fn ensure_installed() -> R<String> {
    sys::ensure_tool("fio", "--version", "fio")
}

/// Run `job` in `dir` (psync, buffered, no preallocation: files are written as cp or tar would).
pub fn run(job: &Job, dir: &Path) -> R<Vec<Metric>> {
    let mut cmd = Command::new("fio");
    cmd.arg(format!("--name={}", job.name))
        .arg(format!("--directory={}", dir.display()))
        .arg("--ioengine=psync")
        .arg("--fallocate=none")
        .arg("--group_reporting")
        .arg("--output-format=json")
        .args(&job.args);
    let t0 = Instant::now();
    let out = sys::run(&mut cmd)?;
    let wall = t0.elapsed().as_secs_f64();
    // fio may print notes before the JSON object.
    let json = out.find('{').map_or(out.as_str(), |i| &out[i..]);
    let v: Value = serde_json::from_str(json).map_err(|e| format!("fio {}: JSON output: {e}", job.name))?;
    metrics(job, &v["jobs"][0], wall)
}

/// The figures of one (group-reported) job: the main one first. Bandwidth is bytes over the wall
/// time of the whole fio run, so that the final fsync (end_fsync=1) counts.
fn metrics(job: &Job, j: &Value, wall_s: f64) -> R<Vec<Metric>> {
    let dir = if job.args.iter().any(|a| a.contains("read")) {
        "read"
    } else {
        "write"
    };
    let side = &j[dir];
    let num = |v: &Value, what: &str| {
        v.as_f64()
            .ok_or_else(|| format!("fio {}: no {what} in its output", job.name))
    };
    let bw_mib = num(&side["bw"], "bw")? / 1024.0;
    let wall_mib = num(&side["io_bytes"], "io_bytes")? / wall_s / f64::from(1u32 << 20);
    let iops = num(&side["iops"], "iops")?;
    let p99_us = side["clat_ns"]["percentile"]["99.000000"]
        .as_f64()
        .map(|ns| ns / 1000.0);
    let mut out = if job.bandwidth {
        vec![Metric::higher("MiB/s", wall_mib), Metric::higher("MiB/s (fio)", bw_mib)]
    } else {
        vec![Metric::higher("IOPS", iops), Metric::higher("MiB/s", bw_mib)]
    };
    if let Some(p) = p99_us {
        out.push(Metric::lower("p99 us", p));
    }
    if let Some(ns) = j["sync"]["lat_ns"]["mean"].as_f64().filter(|&ns| ns > 0.0) {
        out.push(Metric::lower("fsync mean us", ns / 1000.0));
    }
    Ok(out)
}
