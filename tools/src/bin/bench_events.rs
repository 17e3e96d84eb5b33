//! `bench-events`: what VexFS's semantic events (format-spec/11) cost. Metadata operations per
//! second through a FUSE mount with `-o events=off` against `events=on`, the same workload against
//! the core in-process (no FUSE), and the latency from an operation returning to a follower of
//! `/.vexfs/events` seeing its event. See docs/bench-events.md.

use clap::Parser;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::mkfs::{mkfs, MkfsOptions};
use vexfs_tools::benchsys::VexMount;

type R<T> = Result<T, String>;

/// The root directory's inode.
const ROOT: u64 = 1;
/// Bytes written to every file.
const PAYLOAD: [u8; 100] = [b'x'; 100];
/// Largest throughput slowdown the issue accepts (on/off at least 0.90).
const TARGET_SLOWDOWN: f64 = 0.10;
/// Largest p99 latency (and median) the issue accepts, in ms.
const TARGET_LATENCY_MS: f64 = 5.0;
/// A follower stops when it sees this name created.
const STOP: &str = "bench-stop";

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Backend {
    /// Through a FUSE mount served by mount-vexfs.
    Fuse,
    /// vexfs::fs::core::Fs in this process.
    Core,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Fuse => "FUSE mount",
            Backend::Core => "core, in-process",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    Off,
    On,
    /// Events on and a follower blocked on `.vexfs/events`.
    OnFollowed,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Off => "events=off",
            Mode::On => "events=on",
            Mode::OnFollowed => "on+follower",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Create a file and write 100 bytes (two operations).
    CreateWrite,
    Stat,
    Rename,
    Unlink,
}

const PHASES: [Phase; 4] = [Phase::CreateWrite, Phase::Stat, Phase::Rename, Phase::Unlink];

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::CreateWrite => "create+write",
            Phase::Stat => "stat",
            Phase::Rename => "rename",
            Phase::Unlink => "unlink",
        }
    }

    fn ops_per_file(self) -> usize {
        match self {
            Phase::CreateWrite => 2,
            _ => 1,
        }
    }
}

/// The operations of the workload, by path or against the core.
trait Target: Sync {
    type Dir: Sync;
    fn mkdir(&self, name: &str) -> R<Self::Dir>;
    fn create_write(&self, d: &Self::Dir, name: &str) -> R<()>;
    fn stat(&self, d: &Self::Dir, name: &str) -> R<()>;
    fn rename(&self, d: &Self::Dir, from: &str, to: &str) -> R<()>;
    fn unlink(&self, d: &Self::Dir, name: &str) -> R<()>;

    fn run(&self, phase: Phase, d: &Self::Dir, i: usize) -> R<()> {
        let (f, r) = (format!("f{i:06}"), format!("r{i:06}"));
        match phase {
            Phase::CreateWrite => self.create_write(d, &f),
            Phase::Stat => self.stat(d, &f),
            Phase::Rename => self.rename(d, &f, &r),
            Phase::Unlink => self.unlink(d, &r),
        }
    }
}

/// The workload through the mount point, with std::fs.
struct PathTarget(PathBuf);

/// An io::Error as "`what` `p`: error".
fn io_err<'a>(what: &'a str, p: &'a Path) -> impl FnOnce(std::io::Error) -> String + 'a {
    move |e| format!("{what} {}: {e}", p.display())
}

impl Target for PathTarget {
    type Dir = PathBuf;

    fn mkdir(&self, name: &str) -> R<PathBuf> {
        let p = self.0.join(name);
        fs::create_dir(&p).map_err(io_err("mkdir", &p))?;
        Ok(p)
    }

    fn create_write(&self, d: &PathBuf, name: &str) -> R<()> {
        let p = d.join(name);
        File::create(&p)
            .and_then(|mut f| f.write_all(&PAYLOAD))
            .map_err(io_err("create", &p))
    }

    fn stat(&self, d: &PathBuf, name: &str) -> R<()> {
        let p = d.join(name);
        match fs::metadata(&p) {
            Ok(m) if m.len() == PAYLOAD.len() as u64 => Ok(()),
            Ok(m) => Err(format!(
                "stat {}: size {} instead of {}",
                p.display(),
                m.len(),
                PAYLOAD.len()
            )),
            Err(e) => Err(format!("stat {}: {e}", p.display())),
        }
    }

    fn rename(&self, d: &PathBuf, from: &str, to: &str) -> R<()> {
        let p = d.join(from);
        fs::rename(&p, d.join(to)).map_err(io_err("rename", &p))
    }

    fn unlink(&self, d: &PathBuf, name: &str) -> R<()> {
        let p = d.join(name);
        fs::remove_file(&p).map_err(io_err("unlink", &p))
    }
}

/// The workload against the core: the same calls the FUSE adapter makes, minus the kernel.
struct CoreTarget {
    fs: Arc<Fs>,
    ctx: Ctx,
}

impl Target for CoreTarget {
    type Dir = u64;

    fn mkdir(&self, name: &str) -> R<u64> {
        let a = self.fs.create(&self.ctx, ROOT, name.as_bytes(), 0o755, NewNode::Dir);
        a.map(|a| a.ino.into()).map_err(|e| format!("mkdir {name}: {e}"))
    }

    fn create_write(&self, d: &u64, name: &str) -> R<()> {
        let a = self.fs.create(&self.ctx, *d, name.as_bytes(), 0o644, NewNode::File);
        let a = a.map_err(|e| format!("create {name}: {e}"))?;
        match self.fs.write_data(a.ino.into(), 0, &PAYLOAD) {
            Ok(n) if n == PAYLOAD.len() => Ok(()),
            Ok(n) => Err(format!("write {name}: {n} bytes written")),
            Err(e) => Err(format!("write {name}: {e}")),
        }
    }

    fn stat(&self, d: &u64, name: &str) -> R<()> {
        // stat(2) by path: a lookup, which returns the attributes.
        let a = self.fs.lookup(&self.ctx, *d, name.as_bytes());
        a.map(drop).map_err(|e| format!("stat {name}: {e}"))
    }

    fn rename(&self, d: &u64, from: &str, to: &str) -> R<()> {
        let r = self.fs.rename(&self.ctx, *d, from.as_bytes(), *d, to.as_bytes(), 0);
        r.map_err(|e| format!("rename {from}: {e}"))
    }

    fn unlink(&self, d: &u64, name: &str) -> R<()> {
        let r = self.fs.unlink(&self.ctx, *d, name.as_bytes());
        r.map_err(|e| format!("unlink {name}: {e}"))
    }
}

/// Files of thread `t` of `threads`.
fn share(files: usize, threads: usize, t: usize) -> usize {
    files / threads + usize::from(t < files % threads)
}

/// Run the workload; the seconds each phase took (all threads start a phase together).
fn workload<T: Target>(target: &T, files: usize, threads: usize) -> R<[f64; 4]> {
    let dirs = (0..threads)
        .map(|t| target.mkdir(&format!("t{t}")))
        .collect::<R<Vec<_>>>()?;
    let barrier = Barrier::new(threads + 1);
    thread::scope(|s| {
        let workers: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(t, d)| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut err = None;
                    for phase in PHASES {
                        barrier.wait();
                        if err.is_none() {
                            err = (0..share(files, threads, t)).find_map(|i| target.run(phase, d, i).err());
                        }
                        barrier.wait();
                    }
                    err
                })
            })
            .collect();
        let mut secs = [0.0; 4];
        for s in &mut secs {
            barrier.wait();
            let t0 = Instant::now();
            barrier.wait();
            *s = t0.elapsed().as_secs_f64();
        }
        for w in workers {
            if let Some(e) = w.join().map_err(|_| "a worker thread panicked".to_string())? {
                return Err(e);
            }
        }
        Ok(secs)
    })
}

/// One throughput run.
#[derive(Clone, Debug, Serialize)]
struct Run {
    backend: Backend,
    mode: Mode,
    repeat: usize,
    /// Seconds per phase, in the order of `phases`.
    phase_seconds: [f64; 4],
    ops: usize,
    seconds: f64,
    ops_per_sec: f64,
    /// Events the follower read (on+follower only).
    events_read: Option<u64>,
}

impl Run {
    fn new(backend: Backend, mode: Mode, repeat: usize, files: usize, phase_seconds: [f64; 4]) -> Run {
        let ops = files * PHASES.iter().map(|p| p.ops_per_file()).sum::<usize>();
        let seconds = phase_seconds.iter().sum::<f64>();
        Run {
            backend,
            mode,
            repeat,
            phase_seconds,
            ops,
            seconds,
            ops_per_sec: ops as f64 / seconds,
            events_read: None,
        }
    }

    fn phase_rate(&self, i: usize, files: usize) -> f64 {
        (files * PHASES[i].ops_per_file()) as f64 / self.phase_seconds[i]
    }
}

/// Where things are.
struct Setup {
    mount_bin: PathBuf,
    fsck_bin: PathBuf,
    image: PathBuf,
    mnt: PathBuf,
    image_bytes: u64,
}

fn fresh_image(s: &Setup) -> R<()> {
    match fs::remove_file(&s.image) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot remove {}: {e}", s.image.display()))
        }
        _ => {}
    }
    let opts = MkfsOptions {
        size: Some(s.image_bytes),
        label: "bench-events".into(),
        ..Default::default()
    };
    mkfs(&s.image, &opts, &mut |_, _| {}).map_err(|e| format!("mkfs {}: {e}", s.image.display()))?;
    Ok(())
}

fn fsck(s: &Setup) -> R<()> {
    let out = Command::new(&s.fsck_bin)
        .arg(&s.image)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", s.fsck_bin.display()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "fsck-vexfs {} failed ({}):\n{}{}",
        s.image.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// A foreground `mount-vexfs -f` serving the image, with events on or off; its messages go to a
/// log beside the image.
fn mount(s: &Setup, events: bool) -> R<VexMount> {
    let opts = if events { "events=on" } else { "events=off" };
    VexMount::foreground(&s.mount_bin, &s.image, &s.mnt, opts, &s.image.with_extension("log"))
}

/// Reads `.vexfs/events` with blocking reads, stamping each read's lines with the instant the
/// read returned (a BufReader would stamp lines kept in its buffer late).
struct Follower {
    file: File,
    buf: Vec<u8>,
    carry: Vec<u8>,
}

impl Follower {
    /// Open the events file and start at its end.
    fn open(mnt: &Path) -> R<Follower> {
        let p = mnt.join(".vexfs/events");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .map_err(io_err("open", &p))?;
        file.write_all(b"since end\n")
            .map_err(io_err("write `since end` to", &p))?;
        Ok(Follower {
            file,
            buf: vec![0; 64 << 10],
            carry: Vec::new(),
        })
    }

    /// Call `f(event, instant read)` for each event until it returns false (Ok(())) or the file
    /// ends (an error).
    fn follow(mut self, mut f: impl FnMut(&serde_json::Value, Instant) -> bool) -> R<()> {
        loop {
            let n = self
                .file
                .read(&mut self.buf)
                .map_err(|e| format!("reading events: {e}"))?;
            let at = Instant::now();
            if n == 0 {
                return Err("the events file ended".into());
            }
            self.carry.extend_from_slice(&self.buf[..n]);
            let whole = self.carry.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            for line in self.carry[..whole].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| format!("bad event line: {e}"))?;
                if !f(&v, at) {
                    return Ok(());
                }
            }
            self.carry.drain(..whole);
        }
    }
}

/// The name of a `create` event, if `v` is one.
fn created(v: &serde_json::Value) -> Option<&str> {
    (v["op"] == "create").then(|| v["name"].as_str()).flatten()
}

/// A follower thread that counts events until `STOP` is created.
fn spawn_counter(mnt: &Path, count: Arc<AtomicU64>) -> R<thread::JoinHandle<R<()>>> {
    let f = Follower::open(mnt)?;
    Ok(thread::spawn(move || {
        f.follow(|v, _| {
            count.fetch_add(1, Ordering::Relaxed);
            created(v) != Some(STOP)
        })
    }))
}

fn fuse_run(s: &Setup, a: &Cli, mode: Mode, repeat: usize) -> R<Run> {
    fresh_image(s)?;
    let m = mount(s, mode != Mode::Off)?;
    let count = Arc::new(AtomicU64::new(0));
    let follower = match mode {
        Mode::OnFollowed => {
            let h = spawn_counter(&m.dir, count.clone())?;
            thread::sleep(Duration::from_millis(100));
            Some(h)
        }
        _ => None,
    };
    let secs = workload(&PathTarget(m.dir.clone()), a.files, a.threads)?;
    let mut run = Run::new(Backend::Fuse, mode, repeat, a.files, secs);
    if let Some(h) = follower {
        let p = m.dir.join(STOP);
        File::create(&p).map_err(io_err("create", &p))?;
        h.join().map_err(|_| "the follower panicked".to_string())??;
        run.events_read = Some(count.load(Ordering::Relaxed));
    }
    m.finish()?;
    fsck(s)?;
    Ok(run)
}

fn core_run(s: &Setup, a: &Cli, mode: Mode, repeat: usize) -> R<Run> {
    fresh_image(s)?;
    let fs = Fs::open(&s.image, false).map_err(|e| format!("open {}: {e}", s.image.display()))?;
    fs.set_events(mode != Mode::Off)
        .map_err(|e| format!("set_events: {e}"))?;
    let target = CoreTarget {
        fs: Arc::new(fs),
        ctx: Ctx::root(),
    };
    let secs = workload(&target, a.files, a.threads)?;
    target.fs.close().map_err(|e| format!("close: {e}"))?;
    drop(target);
    fsck(s)?;
    Ok(Run::new(Backend::Core, mode, repeat, a.files, secs))
}

/// Latency figures, in ms.
#[derive(Clone, Debug, Serialize)]
struct Latency {
    ops: usize,
    gap_ms: u64,
    median_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Events read before creat(2) had returned (counted as 0 ms).
    negative: usize,
    /// Median time creat(2) itself took (it includes the commit a waiting follower forces).
    create_median_ms: f64,
    create_p99_ms: f64,
    /// Every latency in order of the creates, in ms, negative ones as measured.
    samples_ms: Vec<f64>,
    /// How long each creat(2) took, in ms.
    create_samples_ms: Vec<f64>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn latency(s: &Setup, ops: usize, gap: Duration) -> R<Latency> {
    fresh_image(s)?;
    let m = mount(s, true)?;
    let dir = m.dir.join("lat");
    fs::create_dir(&dir).map_err(io_err("mkdir", &dir))?;
    let follower = Follower::open(&m.dir)?;
    let (tx, rx) = mpsc::channel::<(usize, Instant)>();
    let handle = thread::spawn(move || {
        follower.follow(|v, at| match created(v) {
            Some(STOP) => false,
            Some(name) => {
                if let Some(i) = name.strip_prefix("lat-").and_then(|n| n.parse().ok()) {
                    let _ = tx.send((i, at));
                }
                true
            }
            None => true,
        })
    });
    thread::sleep(Duration::from_millis(100));
    let mut returned = Vec::with_capacity(ops);
    let mut took = Vec::with_capacity(ops);
    for i in 0..ops {
        thread::sleep(gap);
        let p = dir.join(format!("lat-{i}"));
        let t0 = Instant::now();
        let f = File::create(&p).map_err(io_err("create", &p))?;
        let t1 = Instant::now();
        drop(f);
        returned.push(t1);
        took.push(ms(t1 - t0));
    }
    let mut seen = vec![None; ops];
    let mut missing = ops;
    let deadline = Instant::now() + Duration::from_secs(10);
    while missing > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((i, at)) = rx.recv_timeout(left) else { break };
        if let Some(slot @ None) = seen.get_mut(i) {
            *slot = Some(at);
            missing -= 1;
        }
    }
    let stop = m.dir.join(STOP);
    File::create(&stop).map_err(io_err("create", &stop))?;
    handle.join().map_err(|_| "the follower panicked".to_string())??;
    m.finish()?;
    fsck(s)?;
    if missing > 0 {
        return Err(format!("the follower never saw {missing} of {ops} create events"));
    }
    let samples: Vec<f64> = seen
        .iter()
        .flatten()
        .zip(&returned)
        .map(|(&seen, &ret)| match seen.checked_duration_since(ret) {
            Some(d) => ms(d),
            None => -ms(ret - seen),
        })
        .collect();
    let negative = samples.iter().filter(|&&v| v < 0.0).count();
    let mut lat: Vec<f64> = samples.iter().map(|&v| v.max(0.0)).collect();
    lat.sort_by(f64::total_cmp);
    let create_samples_ms = took.clone();
    took.sort_by(f64::total_cmp);
    Ok(Latency {
        ops,
        gap_ms: gap.as_millis() as u64,
        median_ms: percentile(&lat, 50.0),
        p90_ms: percentile(&lat, 90.0),
        p99_ms: percentile(&lat, 99.0),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
        negative,
        create_median_ms: percentile(&took, 50.0),
        create_p99_ms: percentile(&took, 99.0),
        samples_ms: samples,
        create_samples_ms,
    })
}

/// Medians of the runs of one backend and mode.
#[derive(Clone, Debug, Serialize)]
struct Summary {
    backend: Backend,
    mode: Mode,
    runs: usize,
    ops_per_sec: f64,
    /// Operations per second of each phase, in the order of `phases`.
    phase_ops_per_sec: [f64; 4],
}

fn summarise(runs: &[Run], backend: Backend, mode: Mode, files: usize) -> Option<Summary> {
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
struct Machine {
    cpus: usize,
    cpu_model: String,
    kernel: String,
}

fn machine() -> Machine {
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
struct Report {
    machine: Machine,
    files: usize,
    threads: usize,
    repeats: usize,
    image_mib: u64,
    ops_per_file: usize,
    phases: Vec<&'static str>,
    runs: Vec<Run>,
    summaries: Vec<Summary>,
    /// events=on / events=off ops/s through FUSE (medians).
    fuse_ratio: f64,
    /// The same against the core.
    core_ratio: f64,
    target_min_ratio: f64,
    latency: Latency,
    target_latency_ms: f64,
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn print_report(r: &Report) {
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
                    Backend::Fuse => fuse_run(&s, a, mode, repeat)?,
                    Backend::Core => core_run(&s, a, mode, repeat)?,
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
