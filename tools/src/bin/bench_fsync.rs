//! `bench-fsync`: small fsync'd transactions on VexFS (FUSE) against ext4 (loop device) on the
//! same disk, and the time to recover a full journal after a crash. See docs/benchmarks.md. The
//! pieces live in `vexfs_tools::bench_fsync`; this is the command line and the run loop.

use clap::Parser;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use vexfs_tools::bench_fsync::recovery::{self, Ext4Recovery, Setup as RecoverySetup, VexfsRecovery};
use vexfs_tools::bench_fsync::report::{print_report, Report};
use vexfs_tools::bench_fsync::summary::{ratios, summaries};
use vexfs_tools::bench_fsync::sys::{self, io_err, Bins, Ext4Mount, Machine, VexMount, WorkDir, R};
use vexfs_tools::bench_fsync::workload::{self, Limit};
use vexfs_tools::bench_fsync::{payload, Case, Target, TARGET_RATIO};

const LONG_ABOUT: &str = "\
Small fsync'd transactions on VexFS against ext4, on the same disk, in one run; then the time to \
recover a full journal. Must run as root (it mounts, attaches a loop device and uses /dev/fuse).

Setup: a fresh work directory inside --dir holds two image files of --image-mib MiB each: a VexFS \
image made by mkfs-vexfs and mounted over FUSE by `mount-vexfs IMAGE DIR -f`, and a sparse file \
attached with `losetup --find --show`, formatted with `mkfs.ext4 -q -E \
lazy_itable_init=0,lazy_journal_init=0` and mounted with `mount -t ext4`. Both images therefore \
live on the same host filesystem and disk. The requests the disk holding them completed during \
each run (/sys/class/block/DEV/stat: cache flushes, writes, bytes; every process's) are reported \
per transaction.

Throughput: one transaction is open(O_CREAT|O_EXCL) of a new file, a write of --write-bytes \
bytes, fsync, close. For each thread count in --threads, and each filesystem, the threads run \
transactions, each in its own directory, for --seconds (or until --transactions in all); this is \
repeated --repeats times, the order of the two filesystems alternating, and each run's files are \
removed (untimed) before the next. Printed per case: the median transactions/s, latency p50/p99 \
over all runs (the four calls of one transaction), and VexFS/ext4 per thread count against the \
target of 0.5.

Recovery: VexFS is filled with a burst of fsync'd transactions sized from a probe run to fill \
--journal-fill of its journal ring (VexFS checkpoints only when the ring is full or at unmount), \
then the mount daemon gets SIGKILL. Reported: the transactions and blocks in the journal \
(vexfs::journal::scan), the time of vexfs::journal::recover alone on a copy, and of \
`mount-vexfs IMAGE DIR` on the dirty image and again after a clean unmount. ext4 gets the same \
burst, then EXT4_IOC_SHUTDOWN without log flush (as xfstests simulates a crash) and an unmount, \
which leave its journal un-checkpointed (checked with dumpe2fs; counted with debugfs logdump); \
reported: `mount` time of the dirty and of the clean filesystem. A second ext4 burst is sized to \
fill --journal-fill (at most 70%: jbd2 checkpoints by itself beyond that) of ext4's own, larger \
journal. Every timed mount starts with the image's pages dropped from the page cache (and the \
loop device's buffers flushed).

Checks: fsck-vexfs and e2fsck -fn must pass after the runs and after recovery, and every \
transaction of a burst must be present after recovery. Everything is unmounted and detached on \
exit, on error and on Ctrl-C. Needs mount-vexfs, mkfs-vexfs and fsck-vexfs next to this program \
(cargo build --release -p vexfs --bin mount-vexfs; cargo build --release -p vexfs-tools --bin \
mkfs-vexfs --bin fsck-vexfs --bin bench-fsync) and losetup, mkfs.ext4, mount, umount, blockdev, \
dumpe2fs, debugfs, e2fsck, cp.";

#[derive(Parser, Debug)]
#[command(name = "bench-fsync", version, about, long_about = LONG_ABOUT)]
struct Cli {
    /// Seconds each throughput case runs.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    seconds: f64,
    /// Run each throughput case for this many transactions in all (split between the threads)
    /// instead of --seconds.
    #[arg(long, value_name = "N")]
    transactions: Option<u64>,
    /// Runs of every case; the order of the filesystems alternates from run to run and the median
    /// is reported.
    #[arg(long, default_value_t = 3, value_name = "N")]
    repeats: usize,
    /// Thread counts, comma-separated; each thread works in its own directory.
    #[arg(long, value_delimiter = ',', default_value = "1,2", value_name = "N,...")]
    threads: Vec<usize>,
    /// Bytes written by each transaction.
    #[arg(long, default_value_t = 4096, value_name = "BYTES")]
    write_bytes: usize,
    /// Size of each image file (VexFS and ext4), in MiB.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    image_mib: u64,
    /// Where the work directory (both images and the mount points) is created
    /// [default: the repository's target/ directory, on the work disk].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Fraction of VexFS's journal ring the recovery burst fills.
    #[arg(long, default_value_t = 0.9, value_name = "F")]
    journal_fill: f64,
    /// Skip the throughput cases.
    #[arg(long)]
    no_throughput: bool,
    /// Skip the recovery measurement.
    #[arg(long)]
    no_recovery: bool,
    /// Options for mount-vexfs -o (default: none, i.e. as `mount -t vexfs` mounts).
    #[arg(long, default_value = "", value_name = "OPTS")]
    vexfs_options: String,
    /// Options for mount -t ext4 -o (default: none: data=ordered, barriers on).
    #[arg(long, default_value = "", value_name = "OPTS")]
    ext4_options: String,
    /// Directory holding mount-vexfs, mkfs-vexfs and fsck-vexfs [default: this program's].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Keep the work directory (the images) afterwards.
    #[arg(long)]
    keep: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
}

fn preflight(a: &Cli) -> R<Bins> {
    if sys::euid() != Some(0) {
        return Err("must run as root (it mounts filesystems and attaches a loop device)".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse is missing: load the fuse module (modprobe fuse)".into());
    }
    if a.threads.is_empty() || a.threads.contains(&0) || a.repeats == 0 {
        return Err("--threads needs thread counts of at least 1, --repeats at least 1".into());
    }
    if a.seconds.is_nan() || a.seconds <= 0.0 || a.transactions == Some(0) || a.write_bytes == 0 {
        return Err("--seconds, --transactions and --write-bytes must be positive".into());
    }
    if a.journal_fill.is_nan() || a.journal_fill <= 0.0 || a.journal_fill >= 1.0 {
        return Err("--journal-fill must be between 0 and 1".into());
    }
    Bins::find(a.bin_dir.as_deref())
}

/// The order of the two filesystems in case `n`: a load that drifts during the run favours
/// neither filesystem.
fn order(n: usize) -> [Target; 2] {
    if n.is_multiple_of(2) {
        [Target::Vexfs, Target::Ext4]
    } else {
        [Target::Ext4, Target::Vexfs]
    }
}

/// Untimed: remove the files of one run (a 1 GiB ext4 has 65,536 inodes) and make that durable.
fn remove_run(root: &Path) -> R<()> {
    fs::remove_dir_all(root).map_err(io_err("rm -r", root))?;
    let top = root.parent().unwrap_or(root);
    fs::File::open(top)
        .and_then(|f| f.sync_all())
        .map_err(io_err("fsync", top))
}

/// Both filesystems mounted side by side; every case in its own directory.
fn throughput(a: &Cli, bins: &Bins, work: &WorkDir, data: &[u8]) -> R<Vec<Case>> {
    let vex_image = work.path.join("vexfs.img");
    let ext4_image = work.path.join("ext4.img");
    let (vex_mnt, ext4_mnt) = (work.subdir("mnt-vexfs")?, work.subdir("mnt-ext4")?);
    eprintln!(
        "bench-fsync: mkfs-vexfs {} and mkfs.ext4 on a loop device over {} ({} MiB each)",
        vex_image.display(),
        ext4_image.display(),
        a.image_mib
    );
    bins.mkfs_vexfs(&vex_image, a.image_mib)?;
    let loopdev = sys::ext4_image(&ext4_image, a.image_mib)?;
    let log = work.path.join("mount-vexfs.log");
    let vex = VexMount::foreground(&bins.mount, &vex_image, &vex_mnt, &a.vexfs_options, &log)?;
    let (ext4, _) = Ext4Mount::mount(&loopdev.dev, &ext4_mnt, &a.ext4_options)?;
    let limit = match a.transactions {
        Some(n) => Limit::Count(n),
        None => Limit::Time(Duration::from_secs_f64(a.seconds)),
    };
    let disk = sys::disk_stat_file(&work.path);
    let mut cases = Vec::new();
    let plan = (0..a.repeats).flat_map(|r| a.threads.iter().enumerate().map(move |(k, &t)| (r, k, t)));
    for (repeat, k, threads) in plan {
        for fs in order(repeat + k) {
            sys::check()?;
            let root = match fs {
                Target::Vexfs => &vex.dir,
                Target::Ext4 => &ext4.dir,
            };
            let root = root.join(format!("run{repeat}-{threads}t"));
            let m = workload::run(&root, threads, limit, data, disk.as_deref())?;
            eprintln!(
                "bench-fsync: run {}/{}: {} {threads} thread(s): {} transactions in {:.2} s = {:.0}/s, p50 {:.3} ms, p99 {:.3} ms",
                repeat + 1,
                a.repeats,
                fs.label(),
                m.transactions,
                m.seconds,
                m.tx_per_sec,
                m.latency_p50_ms,
                m.latency_p99_ms
            );
            cases.push(Case {
                fs,
                threads,
                repeat,
                measured: m,
            });
            remove_run(&root)?;
        }
    }
    vex.finish()?;
    sys::fsck_vexfs(&bins.fsck, &vex_image)?;
    ext4.finish()?;
    sys::e2fsck(&loopdev.dev)?;
    drop(loopdev);
    for img in [&vex_image, &ext4_image] {
        fs::remove_file(img).map_err(io_err("remove", img))?;
    }
    eprintln!("bench-fsync: fsck-vexfs and e2fsck -fn: clean");
    Ok(cases)
}

/// VexFS's recovery, then ext4's after the same burst and (if its journal can take more) after a
/// burst filling its own journal.
fn recoveries(a: &Cli, bins: &Bins, work: &WorkDir, data: &[u8]) -> R<(Option<VexfsRecovery>, Vec<Ext4Recovery>)> {
    let s = RecoverySetup {
        mount_bin: &bins.mount,
        mkfs_bin: &bins.mkfs,
        fsck_bin: &bins.fsck,
        work,
        image_mib: a.image_mib,
        vexfs_options: &a.vexfs_options,
        ext4_options: &a.ext4_options,
        payload: data,
        fill: a.journal_fill,
    };
    let v = recovery::vexfs(&s)?;
    sys::check()?;
    let same = recovery::ext4(&s, v.burst_transactions, "same burst as VexFS")?;
    let fill = a.journal_fill.min(recovery::EXT4_MAX_FILL);
    let full = same
        .journal
        .as_ref()
        .and_then(|j| recovery::ext4_fill_transactions(j, fill));
    let mut ext4_recovery = vec![same];
    if let Some(n) = full {
        sys::check()?;
        let label = format!("burst sized to fill {:.0}% of its own journal", fill * 100.0);
        ext4_recovery.push(recovery::ext4(&s, n, &label)?);
    }
    Ok((Some(v), ext4_recovery))
}

fn run(a: &Cli) -> R<()> {
    let bins = preflight(a)?;
    sys::catch_signals();
    let load_before = sys::loadavg();
    let parent = a.dir.clone().unwrap_or_else(sys::default_parent);
    let work = WorkDir::create(&parent, a.keep)?;
    eprintln!("bench-fsync: work directory {}", work.path.display());
    let data = payload(a.write_bytes);
    let cases = if a.no_throughput {
        Vec::new()
    } else {
        throughput(a, &bins, &work, &data)?
    };
    let (vexfs_recovery, ext4_recovery) = if a.no_recovery {
        (None, Vec::new())
    } else {
        recoveries(a, &bins, &work, &data)?
    };
    let sums = summaries(&cases, &a.threads);
    let ratios = ratios(&cases, &sums, &a.threads);
    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: Machine::describe(&work.path, load_before),
        image_mib: a.image_mib,
        write_bytes: a.write_bytes,
        seconds_per_case: a.transactions.is_none().then_some(a.seconds),
        transactions_per_case: a.transactions,
        vexfs_options: a.vexfs_options.clone(),
        ext4_options: a.ext4_options.clone(),
        repeats: a.repeats,
        summaries: sums,
        ratios,
        cases,
        target_min_ratio: TARGET_RATIO,
        vexfs_recovery,
        ext4_recovery,
    };
    drop(work);
    print_report(&report);
    if let Some(out) = &a.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| format!("JSON: {e}"))?;
        fs::write(out, text + "\n").map_err(io_err("write", out))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let a = Cli::parse();
    match run(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-fsync: error: {e}");
            ExitCode::FAILURE
        }
    }
}
