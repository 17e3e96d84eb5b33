//! `bench-events`: what VexFS's semantic events (format-spec/11) cost. Metadata operations per
//! second through a FUSE mount with `-o events=off` against `events=on`, the same workload against
//! the core in-process (no FUSE), and the latency from an operation returning to a follower of
//! `/.vexfs/events` seeing its event. See docs/bench-events.md.
use clap::Parser;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use vexfs_tools::bench_events::latency::latency;
use vexfs_tools::bench_events::report::{machine, print_report, summarise, Report, Summary};
use vexfs_tools::bench_events::runs::{core_run, fuse_run, Setup};
use vexfs_tools::bench_events::{io_err, Backend, Mode, PHASES, R, TARGET_LATENCY_MS, TARGET_SLOWDOWN};

/// Measure the cost of VexFS's semantic events.
///
/// Throughput: a metadata workload (each thread in its own directory creates its share of
/// --files files writing 100 bytes each, stats them, renames each and unlinks each) through a
/// FUSE mount made with `mount-vexfs -f -o events=off` and with `events=on`, --repeats times
/// each (off, on, then on, off, ...) on a fresh image each time, reporting the median; then the same
/// workload in-process against the core. Every image must pass fsck-vexfs afterwards.
///
/// Latency: with events on, a follower reads `.vexfs/events` (after `since end`) while this
/// program creates --latency-ops empty files 2 ms apart; latency is the instant the follower
/// reads the file's `create` event minus the instant `creat(2)` returned.
#[derive(Parser, Debug)]
#[command(name = "bench-events", version, about, long_about)]
struct Cli {
    /// Files in the throughput workload (split between the threads).
    #[arg(long, default_value_t = 20_000)]
    files: usize,
    /// Threads running the throughput workload, each in its own directory.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Creates timed by the latency measurement.
    #[arg(long, default_value_t = 2000)]
    latency_ops: usize,
    /// Pause between two timed creates, in ms (so that the follower is waiting).
    #[arg(long, default_value_t = 2)]
    latency_gap_ms: u64,
    /// Runs of each mode (off then on, then on then off, and so on); the median is reported.
    #[arg(long, default_value_t = 2)]
    repeats: usize,
    /// Size of the images in MiB.
    #[arg(long, default_value_t = 1024)]
    image_mib: u64,
    /// Also run the FUSE workload with events on and a follower reading them (each event then
    /// commits at once): the cost of being watched, not part of the on/off ratio.
    #[arg(long)]
    with_follower: bool,
    /// Where the image and the mount point go.
    #[arg(long, default_value = "target/bench-events")]
    workdir: PathBuf,
    /// Directory holding mount-vexfs and fsck-vexfs (default: this program's directory).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
}

fn setup(a: &Cli) -> R<Setup> {
    if a.files == 0 || a.threads == 0 || a.latency_ops == 0 || a.repeats == 0 {
        return Err("--files, --threads, --latency-ops and --repeats must be at least 1".into());
    }
    let bin_dir = match &a.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
            .ok_or("cannot find this program's directory: give --bin-dir")?,
    };
    let (mount_bin, fsck_bin) = (bin_dir.join("mount-vexfs"), bin_dir.join("fsck-vexfs"));
    for b in [&mount_bin, &fsck_bin] {
        if !b.is_file() {
            return Err(format!(
                "{} is missing: cargo build --release --bin mount-vexfs --bin fsck-vexfs (or give --bin-dir)",
                b.display()
            ));
        }
    }
    let mnt = a.workdir.join("mnt");
    fs::create_dir_all(&mnt).map_err(io_err("mkdir", &mnt))?;
    let mnt = fs::canonicalize(&mnt).map_err(io_err("canonicalize", &mnt))?;
    Ok(Setup {
        mount_bin,
        fsck_bin,
        image: fs::canonicalize(&a.workdir)
            .map_err(io_err("canonicalize", &a.workdir))?
            .join("bench.img"),
        mnt,
        image_bytes: a.image_mib << 20,
    })
}

fn run(a: &Cli) -> R<()> {
    let s = setup(a)?;
    let mut modes = vec![Mode::Off, Mode::On];
    if a.with_follower {
        modes.push(Mode::OnFollowed);
    }
    let mut runs = Vec::new();
    for backend in [Backend::Fuse, Backend::Core] {
        for repeat in 0..a.repeats {
            // off, on, then on, off, ...: a load that drifts during the runs favours neither mode.
            let mut order: Vec<Mode> = modes
                .iter()
                .copied()
                .filter(|&m| backend == Backend::Fuse || m != Mode::OnFollowed)
                .collect();
            if repeat % 2 == 1 {
                order.reverse();
            }
            for mode in order {
                let r = match backend {
                    Backend::Fuse => fuse_run(&s, a.files, a.threads, mode, repeat)?,
                    Backend::Core => core_run(&s, a.files, a.threads, mode, repeat)?,
                };
                eprintln!(
                    "bench-events: {} {} run {}/{}: {:.0} ops/s in {:.2} s, fsck clean",
                    backend.label(),
                    mode.label(),
                    repeat + 1,
                    a.repeats,
                    r.ops_per_sec,
                    r.seconds
                );
                runs.push(r);
            }
        }
    }
    eprintln!("bench-events: latency, {} creates", a.latency_ops);
    let lat = latency(&s, a.latency_ops, Duration::from_millis(a.latency_gap_ms))?;
    let _ = fs::remove_file(&s.image);
    let summaries: Vec<Summary> = [Backend::Fuse, Backend::Core]
        .into_iter()
        .flat_map(|b| modes.iter().map(move |&m| (b, m)))
        .filter_map(|(b, m)| summarise(&runs, b, m, a.files))
        .collect();
    let ratio = |b: Backend| {
        let rate = |m: Mode| {
            summaries
                .iter()
                .find(|s| s.backend == b && s.mode == m)
                .map(|s| s.ops_per_sec)
        };
        rate(Mode::On)
            .zip(rate(Mode::Off))
            .map_or(f64::NAN, |(on, off)| on / off)
    };
    let report = Report {
        machine: machine(),
        files: a.files,
        threads: a.threads,
        repeats: a.repeats,
        image_mib: a.image_mib,
        ops_per_file: PHASES.iter().map(|p| p.ops_per_file()).sum(),
        phases: PHASES.iter().map(|p| p.name()).collect(),
        fuse_ratio: ratio(Backend::Fuse),
        core_ratio: ratio(Backend::Core),
        target_min_ratio: 1.0 - TARGET_SLOWDOWN,
        runs,
        summaries,
        latency: lat,
        target_latency_ms: TARGET_LATENCY_MS,
    };
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
            eprintln!("bench-events: error: {e}");
            ExitCode::FAILURE
        }
    }
}
