//! `bench-fs`: VexFS (FUSE) against ext4 (loop device) on the same disk, in one run: fio jobs, a
//! metadata workload, `tar x`, a stat walk and `git status`; with --floor the metadata and tree
//! workloads also on fuse-floor, the do-nothing FUSE filesystem. See tools/bench-fs/README.md.

use clap::Parser;
use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vexfs_tools::bench_fs::bed::Bed;
use vexfs_tools::bench_fs::report::{self, Row, Side};
use vexfs_tools::bench_fs::tree::Tarball;
use vexfs_tools::bench_fs::{fio, meta, tree, Figures, Target};
use vexfs_tools::benchsys::{self as sys, io_err, Bins, Machine, WorkDir, R};

const LONG_ABOUT: &str = "\
VexFS over FUSE against ext4 on a loop device, both image files in one work directory on the same \
disk, in one run. Must run as root (it mounts, attaches a loop device, drops the page cache).

Workloads, each run on both filesystems (the order alternating from workload to workload): fio \
(installed with apt-get if missing) sequential write and read of one --size-mib file in 1 MiB \
blocks (end_fsync=1), 4 KiB random read and random overwrite of that file, 4 KiB appending \
writes with fsync after each, two parallel jobs (numjobs=2) writing and then randomly reading \
their own files; the metadata workload (create, stat, rename, unlink of --files small files in \
nested directories, ops/s per phase); tar x of a tarball made deterministically from --tree-src, \
a walk that stats every file (cold, then warm), and git status on a committed copy (cold, then \
warm). Reads marked cold follow `sync; echo 3 > /proc/sys/vm/drop_caches`.

Printed: a table of each figure on both filesystems, the ratio (how many times as fast VexFS is), \
the target of issue 8 (sequential read/write 0.8x, everything else 0.5x), and the peaks of the \
mount daemon's RssAnon and VmRSS during each workload (target: RssAnon < 64 MiB). --json writes \
everything to a file. Both filesystems are checked (fsck-vexfs, e2fsck -fn) at the end.

--floor also runs the metadata and tree workloads on fuse-floor (built next to this program): an \
empty in-memory FUSE filesystem doing no work, over the same fuser session as VexFS (capabilities, \
TTLs, threads). Its figures are the lower bound of any FUSE filesystem built with fuser on this \
kernel, printed as extra columns (floor, floor/ext4, VexFS/floor). Its cold start is syncfs and \
drop_caches only (it cannot be remounted); fio is not run on it.";

#[derive(Parser, Debug)]
#[command(name = "bench-fs", version, about, long_about = LONG_ABOUT)]
struct Cli {
    /// Size of the sequential fio file (the two parallel jobs write half of it each).
    #[arg(long, default_value_t = 2048, value_name = "MIB")]
    size_mib: u64,
    /// Seconds each time-based fio job (random read/write, fsync writes, parallel reads) runs.
    #[arg(long, default_value_t = 30, value_name = "S")]
    runtime: u64,
    /// Files of the metadata workload.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    files: usize,
    /// Bytes written into each file of the metadata workload.
    #[arg(long, default_value_t = 4096, value_name = "BYTES")]
    file_bytes: usize,
    /// The source tree the tarball is made from [default: ~/.cargo/registry/src].
    #[arg(long, value_name = "DIR")]
    tree_src: Option<PathBuf>,
    /// Workload groups to run, comma-separated: fio, meta, tree.
    #[arg(long, value_delimiter = ',', default_value = "fio,meta,tree", value_name = "LIST")]
    only: Vec<String>,
    /// Size of each image file (VexFS and ext4), in MiB.
    #[arg(long, default_value_t = 8192, value_name = "MIB")]
    image_mib: u64,
    /// Where the work directory (both images, the tarball, the mount points) is created
    /// [default: the repository's target/ directory].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Options for mount-vexfs -o.
    #[arg(long, default_value = "", value_name = "OPTS")]
    vexfs_options: String,
    /// Options for mount -t ext4 -o (default: none: data=ordered, barriers on).
    #[arg(long, default_value = "", value_name = "OPTS")]
    ext4_options: String,
    /// Record `perf record -g` of the mount daemon during each VexFS workload into DIR.
    #[arg(long, value_name = "DIR")]
    perf: Option<PathBuf>,
    /// Directory holding mount-vexfs, mkfs-vexfs and fsck-vexfs [default: this program's].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Keep the work directory afterwards.
    #[arg(long)]
    keep: bool,
    /// Also write everything as JSON to this file.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
    /// Also run the meta and tree workloads on fuse-floor, the in-memory FUSE filesystem that
    /// does no work (the lower bound of any fuser filesystem; see the README).
    #[arg(long)]
    floor: bool,
}

#[derive(Serialize)]
struct Report {
    command: String,
    machine: Machine,
    fio_version: Option<String>,
    git_version: Option<String>,
    image_mib: u64,
    size_mib: u64,
    runtime_s: u64,
    files: usize,
    file_bytes: usize,
    vexfs_options: String,
    ext4_options: String,
    /// The meta and tree workloads ran on fuse-floor too.
    floor: bool,
    tarball: Option<Tarball>,
    rows: Vec<Row>,
    sides: Vec<Side>,
    rss_anon_target_mib: f64,
}

fn preflight(a: &Cli) -> R<Bins> {
    if sys::euid() != Some(0) {
        return Err("must run as root (it mounts filesystems, attaches a loop device, drops caches)".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse is missing: load the fuse module (modprobe fuse)".into());
    }
    if let Some(g) = a.only.iter().find(|g| !["fio", "meta", "tree"].contains(&g.as_str())) {
        return Err(format!("--only: unknown workload group {g:?} (fio, meta, tree)"));
    }
    if a.size_mib < 2 || a.runtime == 0 || a.files == 0 {
        return Err("--size-mib must be at least 2, --runtime and --files positive".into());
    }
    let bins = Bins::find(a.bin_dir.as_deref())?;
    if a.floor {
        bins.check_floor()?;
    }
    Ok(bins)
}

fn tree_source(a: &Cli) -> PathBuf {
    a.tree_src.clone().unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
        home.join(".cargo/registry/src")
    })
}

fn version(cmd: &str) -> Option<String> {
    sys::run(std::process::Command::new(cmd).arg("--version"))
        .ok()
        .map(|v| v.trim().to_string())
}

/// VexFS goes first in every other workload (the floor, when it runs, in the middle), so that a
/// load drifting during the run favours neither filesystem.
fn vexfs_first(sides: &[Side]) -> bool {
    let workloads = sides.iter().filter(|s| s.fs == Target::Vexfs).count();
    workloads.is_multiple_of(2)
}

/// The fio jobs on both filesystems, each in its own `fio/` directory (removed afterwards).
fn fio_jobs(a: &Cli, bed: &mut Bed, sides: &mut Vec<Side>) -> R<()> {
    let sizes = fio::Sizes {
        size_mib: a.size_mib,
        runtime_s: a.runtime,
    };
    for job in &fio::jobs(&sizes) {
        bed.both(job.name, vexfs_first(sides), job.cold, false, sides, |root, _| {
            let dir = root.join("fio");
            fs::create_dir_all(&dir).map_err(io_err("mkdir", &dir))?;
            Ok(vec![Figures {
                name: job.name.into(),
                what: job.what.into(),
                metrics: fio::run(job, &dir)?,
            }])
        })?;
    }
    for root in [&bed.vex_dir, &bed.ext4_dir] {
        let dir = root.join("fio");
        fs::remove_dir_all(&dir).map_err(io_err("rm -r", &dir))?;
        sys::syncfs(root)?;
    }
    Ok(())
}

fn run(a: &Cli) -> R<()> {
    let bins = preflight(a)?;
    sys::catch_signals();
    let load_before = sys::loadavg();
    let group = |g: &str| a.only.iter().any(|x| x == g);
    let fio_version = if group("fio") {
        Some(fio::ensure_installed()?)
    } else {
        None
    };
    let git_version = version("git");
    let parent = a.dir.clone().unwrap_or_else(sys::default_parent);
    let work = WorkDir::create(&parent, a.keep)?;
    eprintln!("{}: work directory {}", sys::prog(), work.path.display());
    let tarball = if group("tree") {
        let src = tree_source(a);
        eprintln!("{}: making the tarball from {}", sys::prog(), src.display());
        let t = tree::make_tarball(&src, &work.path.join("tree.tar"))?;
        eprintln!(
            "{}: tarball: {} files, {} dirs, {} symlinks, {} MiB of file data, {} MiB tar, sha256 {}",
            sys::prog(),
            t.census.files,
            t.census.dirs,
            t.census.symlinks,
            t.census.bytes >> 20,
            t.tar_bytes >> 20,
            t.sha256
        );
        Some(t)
    } else {
        None
    };
    let (vex_image, ext4_image) = (work.path.join("vexfs.img"), work.path.join("ext4.img"));
    let (vex_mnt, ext4_mnt) = (work.subdir("mnt-vexfs")?, work.subdir("mnt-ext4")?);
    bins.mkfs_vexfs(&vex_image, a.image_mib)?;
    let loopdev = sys::ext4_image(&ext4_image, a.image_mib)?;
    if let Some(p) = &a.perf {
        fs::create_dir_all(p).map_err(io_err("mkdir", p))?;
    }
    let bed = Bed::new(
        bins,
        vex_image,
        vex_mnt,
        a.vexfs_options.clone(),
        work.path.join("mount-vexfs.log"),
        loopdev,
        ext4_mnt,
        a.ext4_options.clone(),
        a.perf.clone(),
    );
    let bed = if a.floor {
        bed.with_floor(work.subdir("mnt-floor")?, work.path.join("fuse-floor.log"))
    } else {
        bed
    };
    let mut bed = bed.mount()?;
    let mut sides = Vec::new();
    if group("fio") {
        fio_jobs(a, &mut bed, &mut sides)?;
    }
    if group("meta") {
        let spec = meta::Spec {
            files: a.files,
            file_bytes: a.file_bytes,
        };
        let first = vexfs_first(&sides);
        bed.both("metadata", first, false, a.floor, &mut sides, |root, cold| {
            meta::run(&root.join("meta"), &spec, cold)
        })?;
    }
    if let Some(t) = &tarball {
        let first = vexfs_first(&sides);
        bed.both("tree", first, false, a.floor, &mut sides, |root, cold| {
            tree::run(root, t, git_version.is_some(), cold)
        })?;
    }
    bed.finish()?;
    eprintln!("{}: fsck-vexfs and e2fsck -fn: clean", sys::prog());
    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: Machine::describe(&work.path, load_before),
        fio_version,
        git_version,
        image_mib: a.image_mib,
        size_mib: a.size_mib,
        runtime_s: a.runtime,
        files: a.files,
        file_bytes: a.file_bytes,
        vexfs_options: a.vexfs_options.clone(),
        ext4_options: a.ext4_options.clone(),
        floor: a.floor,
        tarball,
        rows: report::rows(&sides),
        sides,
        rss_anon_target_mib: report::RSS_ANON_TARGET_MIB,
    };
    drop(work);
    print_report(&report);
    if let Some(out) = &a.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| format!("JSON: {e}"))?;
        fs::write(out, text + "\n").map_err(io_err("write", out))?;
    }
    Ok(())
}

fn print_report(r: &Report) {
    let m = &r.machine;
    println!("bench-fs: {}", r.command);
    println!(
        "machine: {} CPUs, {}, Linux {}; work directory on {}; load average {} before, {} after",
        m.cpus, m.cpu_model, m.kernel, m.work_fs, m.loadavg_before, m.loadavg_after
    );
    println!(
        "images {} MiB each; mount-vexfs -o '{}'; mount -t ext4 -o '{}'; fio: {}; git: {}",
        r.image_mib,
        r.vexfs_options,
        r.ext4_options,
        r.fio_version.as_deref().unwrap_or("not run"),
        r.git_version.as_deref().unwrap_or("not installed")
    );
    if r.floor {
        println!(
            "floor: fuse-floor (in-memory, no work, VexFS's FUSE session) on the meta and tree workloads; \
             its cold start is syncfs + drop_caches, no remount"
        );
    }
    if let Some(t) = &r.tarball {
        println!(
            "tree: {} ({} files, {} dirs, {} symlinks, {} bytes; tarball {} bytes, sha256 {})",
            t.source.display(),
            t.census.files,
            t.census.dirs,
            t.census.symlinks,
            t.census.bytes,
            t.tar_bytes,
            t.sha256
        );
    }
    println!();
    report::print_table(&r.rows);
    let missed: Vec<&str> = r.rows.iter().filter(|x| !x.met).map(|x| x.name.as_str()).collect();
    let rss_max = r.rows.iter().filter_map(|x| x.rss_anon_peak_mib).fold(0.0, f64::max);
    println!();
    println!(
        "targets: {} of {} met{}; daemon RssAnon peak {rss_max:.1} MiB (target < {:.0} MiB: {})",
        r.rows.len() - missed.len(),
        r.rows.len(),
        if missed.is_empty() {
            String::new()
        } else {
            format!(" (missed: {})", missed.join(", "))
        },
        r.rss_anon_target_mib,
        if rss_max < r.rss_anon_target_mib {
            "met"
        } else {
            "MISSED"
        }
    );
}

fn main() -> ExitCode {
    let a = Cli::parse();
    match run(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-fs: error: {e}");
            ExitCode::FAILURE
        }
    }
}
