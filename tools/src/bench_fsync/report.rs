//! What bench-fsync reports: every figure of the run ([`Report`], also written as JSON) and the
//! text printed at the end: throughput table, the disk's requests per transaction, VexFS/ext4
//! ratios, and the recovery of each filesystem.

use super::recovery::{Ext4Recovery, VexfsRecovery};
use super::summary::{Ratio, Summary};
use super::sys::Machine;
use super::Case;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Report {
    pub command: String,
    pub machine: Machine,
    pub image_mib: u64,
    pub write_bytes: usize,
    pub seconds_per_case: Option<f64>,
    pub transactions_per_case: Option<u64>,
    pub vexfs_options: String,
    pub ext4_options: String,
    pub repeats: usize,
    pub cases: Vec<Case>,
    pub summaries: Vec<Summary>,
    pub ratios: Vec<Ratio>,
    pub target_min_ratio: f64,
    pub vexfs_recovery: Option<VexfsRecovery>,
    /// ext4 after the same burst as VexFS, then after a burst filling its own journal.
    pub ext4_recovery: Vec<Ext4Recovery>,
}

pub fn print_report(r: &Report) {
    print_setup(r);
    if !r.summaries.is_empty() {
        print_throughput(r);
        if r.summaries.iter().any(|s| s.disk_flushes_per_tx.is_some()) {
            print_disk(r);
        }
        println!();
        print_ratios(r);
    }
    if let Some(v) = &r.vexfs_recovery {
        print_vexfs_recovery(v);
    }
    for e in &r.ext4_recovery {
        print_ext4_recovery(e);
    }
}

/// The command, the machine and what one transaction is.
fn print_setup(r: &Report) {
    let m = &r.machine;
    println!("bench-fsync: {}", r.command);
    println!(
        "machine: {} CPUs, {}, Linux {}; work directory on {}; load average {} before, {} after",
        m.cpus, m.cpu_model, m.kernel, m.work_fs, m.loadavg_before, m.loadavg_after
    );
    let limit = match (r.transactions_per_case, r.seconds_per_case) {
        (Some(n), _) => format!("{n} transactions per case"),
        (None, Some(s)) => format!("{s} s per case"),
        _ => String::new(),
    };
    println!(
        "transaction: create a new file, write {} B, fsync, close; {limit}; images {} MiB each; \
         mount-vexfs -o '{}', mount -t ext4 -o '{}'",
        r.write_bytes, r.image_mib, r.vexfs_options, r.ext4_options
    );
}

fn print_throughput(r: &Report) {
    println!();
    println!(
        "{:<14} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9}   tx/s of each run",
        "filesystem", "threads", "tx/s", "p50 ms", "p99 ms", "mean ms", "max ms"
    );
    for s in &r.summaries {
        let runs: Vec<String> = s.tx_per_sec_runs.iter().map(|x| format!("{x:.0}")).collect();
        println!(
            "{:<14} {:>7} {:>8.0} {:>9.3} {:>9.3} {:>9.3} {:>9.3}   {}",
            s.fs.label(),
            s.threads,
            s.tx_per_sec,
            s.latency_p50_ms,
            s.latency_p99_ms,
            s.latency_mean_ms,
            s.latency_max_ms,
            runs.join(", ")
        );
    }
    println!(
        "(tx/s: median of {} runs; latencies over all their transactions)",
        r.repeats
    );
}

fn print_disk(r: &Report) {
    println!();
    println!(
        "requests of the disk holding the images ({}) per transaction, median of the runs (all processes' requests count):",
        r.machine.work_fs
    );
    println!(
        "{:<14} {:>7} {:>9} {:>9} {:>12}",
        "filesystem", "threads", "flushes", "writes", "KiB written"
    );
    for s in &r.summaries {
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
        println!(
            "{:<14} {:>7} {:>9} {:>9} {:>12}",
            s.fs.label(),
            s.threads,
            f(s.disk_flushes_per_tx),
            f(s.disk_writes_per_tx),
            f(s.disk_kib_written_per_tx)
        );
    }
}

fn print_ratios(r: &Report) {
    for q in &r.ratios {
        let paired: Vec<String> = q.paired.iter().map(|x| format!("{x:.2}")).collect();
        println!(
            "{} thread(s): VexFS/ext4 = {:.0}/{:.0} = {:.3}x (each run: {}); target >= {:.1}x: {}",
            q.threads,
            q.vexfs_tx_per_sec,
            q.ext4_tx_per_sec,
            q.ratio,
            paired.join(", "),
            r.target_min_ratio,
            if q.met { "met" } else { "MISSED" }
        );
    }
}

fn print_vexfs_recovery(v: &VexfsRecovery) {
    let j = &v.journal;
    println!();
    println!(
        "recovery, VexFS: {} fsync'd transactions in {:.2} s, then kill -9 of mount-vexfs; the journal held \
         {} transactions, {} logged blocks, {} of {} ring blocks ({:.1}% full; probe: {:.1} ring blocks per transaction)",
        v.burst_transactions,
        v.burst_seconds,
        j.transactions,
        j.logged_blocks,
        j.ring_blocks,
        j.journal_blocks,
        j.fill * 100.0,
        v.ring_blocks_per_transaction
    );
    println!(
        "  journal replay alone (vexfs::journal::recover, in-process, cold cache): {:.1} ms for {} transactions",
        v.replay_in_process_ms, v.replayed_transactions
    );
    println!(
        "  mount-vexfs of the dirty image (open + replay + FUSE mount, cold cache): {:.1} ms; clean image: {:.1} ms",
        v.mount_dirty_ms, v.mount_clean_ms
    );
}

fn print_ext4_recovery(e: &Ext4Recovery) {
    println!(
        "recovery, ext4 ({}): {} fsync'd transactions in {:.2} s; {}",
        e.burst, e.burst_transactions, e.burst_seconds, e.note
    );
    if let Some(j) = &e.journal {
        println!(
            "  the journal held {} transactions, {} logged blocks, {} of {} journal blocks ({:.1}% full; debugfs logdump)",
            j.transactions,
            j.logged_blocks,
            j.ring_blocks,
            j.journal_blocks,
            j.fill * 100.0
        );
    }
    match e.mount_dirty_ms {
        Some(d) => println!(
            "  mount -t ext4 of the dirty filesystem (replay included, cold cache): {d:.1} ms; clean: {:.1} ms",
            e.mount_clean_ms
        ),
        None => println!(
            "  mount -t ext4 of the clean filesystem (cold cache): {:.1} ms",
            e.mount_clean_ms
        ),
    }
}
