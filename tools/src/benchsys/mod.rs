//! What the filesystem benchmarks (bench-fsync, bench-fs) ask of the system: running commands,
//! signals, mount points, disk counters, the page cache, load average. [`mounts`] holds the guards
//! (VexFS over FUSE, the floor filesystem, ext4 on a loop device, the work directory) whose `Drop` undoes what they set
//! up, so an error or Ctrl-C (which stops the workload and returns an error up the stack) leaves
//! nothing mounted or attached.

pub mod images;
pub mod machine;
pub mod mounts;
pub mod stats;

pub use images::{default_parent, e2fsck, ext4_image, fsck_vexfs, Bins};
pub use machine::{loadavg, Machine};
pub use mounts::{Ext4Mount, FloorMount, LoopDev, VexMount, WorkDir};

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub type R<T> = Result<T, String>;

/// An io::Error as "`what` `p`: error".
pub fn io_err<'a>(what: &'a str, p: &'a Path) -> impl FnOnce(std::io::Error) -> String + 'a {
    move |e| format!("{what} {}: {e}", p.display())
}

/// This program's name (for messages): the file name of argv\[0\].
pub fn prog() -> String {
    std::env::args()
        .next()
        .and_then(|a| Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "bench".into())
}

static INTERRUPTED: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// Turn SIGINT, SIGTERM and SIGHUP into a flag the workload polls, so that the guards run.
pub fn catch_signals() {
    let flag = INTERRUPTED.get_or_init(Default::default);
    for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // Registration fails only for signals that cannot be caught; these can.
        let _ = signal_hook::flag::register(s, flag.clone());
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.get().is_some_and(|f| f.load(Ordering::Relaxed))
}

/// An error once a signal has arrived.
pub fn check() -> R<()> {
    if interrupted() {
        return Err("interrupted".into());
    }
    Ok(())
}

/// Run a command to completion; its stdout, or an error with its stderr.
pub fn run(cmd: &mut Command) -> R<String> {
    let what = format!("{cmd:?}").replace('"', "");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The effective uid, from /proc/self/status.
pub fn euid() -> Option<u32> {
    let s = fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Whether `dir` (canonical) is a mount point, from /proc/self/mountinfo.
pub fn is_mounted(dir: &Path) -> bool {
    mounts().iter().any(|m| m == dir)
}

/// Every mount point, unescaped.
pub fn mounts() -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")))
        .collect()
}

/// The filesystem type of the mount at `dir`, as mountinfo gives it.
pub fn fstype(dir: &Path) -> Option<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = dir.to_string_lossy();
    text.lines()
        .filter(|l| l.split(' ').nth(4) == Some(&want))
        .filter_map(|l| l.split_once(" - ").and_then(|(_, r)| r.split(' ').next()))
        .map(str::to_string)
        .next_back()
}

/// The block-layer statistics file (/sys/class/block/DEV/stat) of the device holding `dir`,
/// when the device is a plain block device.
pub fn disk_stat_file(dir: &Path) -> Option<PathBuf> {
    let out = run(Command::new("df").arg("--output=source").arg(dir)).ok()?;
    let dev = out.lines().nth(1)?.trim().strip_prefix("/dev/")?.to_string();
    let p = PathBuf::from(format!("/sys/class/block/{dev}/stat"));
    disk_counters(&p).map(|_| p)
}

/// Requests the disk completed so far (every process's, not only this program's).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct DiskCounters {
    /// Cache flushes (field 16 of the stat file).
    pub flushes: u64,
    pub write_requests: u64,
    pub write_sectors: u64,
}

impl DiskCounters {
    pub fn since(self, before: DiskCounters) -> DiskCounters {
        DiskCounters {
            flushes: self.flushes.saturating_sub(before.flushes),
            write_requests: self.write_requests.saturating_sub(before.write_requests),
            write_sectors: self.write_sectors.saturating_sub(before.write_sectors),
        }
    }
}

pub fn disk_counters(stat: &Path) -> Option<DiskCounters> {
    let text = fs::read_to_string(stat).ok()?;
    let v: Vec<u64> = text.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    Some(DiskCounters {
        flushes: *v.get(15)?,
        write_requests: *v.get(4)?,
        write_sectors: *v.get(6)?,
    })
}

/// How long an unmount is retried while the mount is busy. A FUSE mount can stay busy for a while
/// after a burst of closes (tar x of thousands of files) on a loaded machine.
const UMOUNT_WAIT: Duration = Duration::from_secs(60);

/// Unmount `dir`, retrying while busy, then detaching it (`umount -l`) as a last resort.
pub fn umount(dir: &Path) -> R<()> {
    let deadline = Instant::now() + UMOUNT_WAIT;
    let mut last = String::new();
    while Instant::now() < deadline {
        if !is_mounted(dir) {
            return Ok(());
        }
        match run(Command::new("umount").arg(dir)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
        thread::sleep(Duration::from_millis(250));
    }
    let holders = run(Command::new("fuser").arg("-vm").arg(dir)).unwrap_or_else(|e| e);
    let _ = Command::new("umount").arg("-l").arg(dir).status();
    Err(format!(
        "umount {} failed for {UMOUNT_WAIT:?} ({last}; held by: {}); detached it (umount -l)",
        dir.display(),
        holders.trim()
    ))
}

/// Wait until nothing holds the image's lock (the mount-vexfs daemon has closed it).
pub fn wait_unlocked(image: &Path, timeout: Duration) -> R<()> {
    let f = File::open(image).map_err(io_err("open", image))?;
    let deadline = Instant::now() + timeout;
    loop {
        match f.try_lock() {
            Ok(()) => {
                let _ = f.unlock();
                return Ok(());
            }
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
            Err(_) => return Err(format!("{} is still locked after {timeout:?}", image.display())),
        }
    }
}

/// Write the file's dirty pages and drop its pages from the page cache, so that the next reads
/// come from the disk (a cold start, as after a reboot).
pub fn drop_cache(path: &Path) -> R<()> {
    let f = File::open(path).map_err(io_err("open", path))?;
    f.sync_all().map_err(io_err("fsync", path))?;
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)
        .map_err(|e| format!("posix_fadvise {}: {e}", path.display()))?;
    Ok(())
}

/// Write every dirty page, then drop the page cache, dentries and inodes of the whole machine
/// (`sync; echo 3 > /proc/sys/vm/drop_caches`): the next reads of either filesystem come from the
/// disk (the loop device's backing file and the VexFS image are host files, dropped too).
pub fn drop_all_caches() -> R<()> {
    run(&mut Command::new("sync"))?;
    let p = Path::new("/proc/sys/vm/drop_caches");
    fs::write(p, "3\n").map_err(io_err("write 3 to", p))
}

/// `program`'s answer to `version_arg`, installing the Debian `package`
/// with apt-get (after an `apt-get update` if the first try fails) when the
/// program is missing.
pub fn ensure_tool(program: &str, version_arg: &str, package: &str) -> R<String> {
    if let Ok(v) = run(Command::new(program).arg(version_arg)) {
        return Ok(v.trim().to_string());
    }
    eprintln!(
        "{}: {program} is not installed: installing it with apt-get install -y {package}",
        prog()
    );
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", package])
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    install().or_else(|_| {
        run(Command::new("apt-get").arg("update").arg("-q"))?;
        install()
    })?;
    let v = run(Command::new(program).arg(version_arg))?;
    eprintln!("{}: installed {}", prog(), v.trim());
    Ok(v.trim().to_string())
}

/// `sync -f DIR`: syncfs(2) of the filesystem holding `dir`.
pub fn syncfs(dir: &Path) -> R<()> {
    run(Command::new("sync").arg("-f").arg(dir)).map(drop)
}
