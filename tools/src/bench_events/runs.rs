//! Throughput runs: a fresh image per run, mounted with events on or off (or opened in-process),
//! the workload timed, and fsck-vexfs afterwards.

use super::latency::{created, Follower};
use super::workload::{workload, CoreTarget, PathTarget};
use super::{io_err, Backend, Mode, PHASES, R, STOP};
use crate::benchsys::VexMount;
use serde::Serialize;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use vexfs::fs::core::Fs;
use vexfs::fs::perm::Ctx;
use vexfs::mkfs::{mkfs, MkfsOptions};

/// One throughput run.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub backend: Backend,
    pub mode: Mode,
    pub repeat: usize,
    /// Seconds per phase, in the order of `phases`.
    pub phase_seconds: [f64; 4],
    pub ops: usize,
    pub seconds: f64,
    pub ops_per_sec: f64,
    /// Events the follower read (on+follower only).
    pub events_read: Option<u64>,
}

impl Run {
    pub fn new(backend: Backend, mode: Mode, repeat: usize, files: usize, phase_seconds: [f64; 4]) -> Run {
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

    pub fn phase_rate(&self, i: usize, files: usize) -> f64 {
        (files * PHASES[i].ops_per_file()) as f64 / self.phase_seconds[i]
    }
}

/// Where things are.
pub struct Setup {
    pub mount_bin: PathBuf,
    pub fsck_bin: PathBuf,
    pub image: PathBuf,
    pub mnt: PathBuf,
    pub image_bytes: u64,
}

pub(super) fn fresh_image(s: &Setup) -> R<()> {
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

pub(super) fn fsck(s: &Setup) -> R<()> {
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
pub(super) fn mount(s: &Setup, events: bool) -> R<VexMount> {
    let opts = if events { "events=on" } else { "events=off" };
    VexMount::foreground(&s.mount_bin, &s.image, &s.mnt, opts, &s.image.with_extension("log"))
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

/// One throughput run through a FUSE mount: a fresh image, mounted with events on or off (and, for
/// on+follower, a follower counting events), the workload, then fsck.
pub fn fuse_run(s: &Setup, files: usize, threads: usize, mode: Mode, repeat: usize) -> R<Run> {
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
    let secs = workload(&PathTarget(m.dir.clone()), files, threads)?;
    let mut run = Run::new(Backend::Fuse, mode, repeat, files, secs);
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

/// One throughput run against the core in-process: a fresh image, the workload, then fsck.
pub fn core_run(s: &Setup, files: usize, threads: usize, mode: Mode, repeat: usize) -> R<Run> {
    fresh_image(s)?;
    let fs = Fs::open(&s.image, false).map_err(|e| format!("open {}: {e}", s.image.display()))?;
    fs.set_events(mode != Mode::Off)
        .map_err(|e| format!("set_events: {e}"))?;
    let target = CoreTarget {
        fs: Arc::new(fs),
        ctx: Ctx::root(),
    };
    let secs = workload(&target, files, threads)?;
    target.fs.close().map_err(|e| format!("close: {e}"))?;
    drop(target);
    fsck(s)?;
    Ok(Run::new(Backend::Core, mode, repeat, files, secs))
}
