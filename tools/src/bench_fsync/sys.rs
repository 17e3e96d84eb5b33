//! What bench-fsync asks of the system: running commands, signals, mounts (VexFS over FUSE, ext4
//! on a loop device), the page cache of one file, and the ext4 shutdown ioctl. Every mount, loop
//! device and daemon is held by a guard whose `Drop` undoes it, so an error or Ctrl-C (which stops
//! the workload and returns an error up the stack) leaves nothing mounted or attached.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub type R<T> = Result<T, String>;

/// An io::Error as "`what` `p`: error".
pub fn io_err<'a>(what: &'a str, p: &'a Path) -> impl FnOnce(std::io::Error) -> String + 'a {
    move |e| format!("{what} {}: {e}", p.display())
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Turn SIGINT, SIGTERM and SIGHUP into a flag the workload polls, so that the guards run.
pub fn catch_signals() {
    for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; the function
        // pointer has the signature signal(2) expects.
        unsafe {
            libc::signal(s, on_signal as *const () as libc::sighandler_t);
        }
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
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

/// Unmount `dir`, retrying while busy, then detaching it (`umount -l`) as a last resort.
pub fn umount(dir: &Path) -> R<()> {
    for _ in 0..20 {
        if !is_mounted(dir) {
            return Ok(());
        }
        if Command::new("umount")
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(250));
    }
    let _ = Command::new("umount").arg("-l").arg(dir).status();
    Err(format!("umount {} failed; detached it (umount -l)", dir.display()))
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

/// The pid of the mount-vexfs process holding `image` open (as ci/lib.sh `ci_daemon_of`).
fn daemon_of(image: &Path) -> Option<u32> {
    for p in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if fs::read_to_string(p.path().join("comm")).map_or(true, |c| c.trim() != "mount-vexfs") {
            continue;
        }
        let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l == image))
        {
            return Some(pid);
        }
    }
    None
}

/// Write the file's dirty pages and drop its pages from the page cache, so that the next reads
/// come from the disk (a cold start, as after a reboot).
pub fn drop_cache(path: &Path) -> R<()> {
    let f = File::open(path).map_err(io_err("open", path))?;
    f.sync_all().map_err(io_err("fsync", path))?;
    // SAFETY: a valid open descriptor; fadvise only changes the page cache of this file.
    let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if r != 0 {
        return Err(format!(
            "posix_fadvise {}: {}",
            path.display(),
            std::io::Error::from_raw_os_error(r)
        ));
    }
    Ok(())
}

/// `_IOR('X', 125, __u32)`: EXT4_IOC_SHUTDOWN (the same number as XFS_IOC_GOINGDOWN).
const EXT4_IOC_SHUTDOWN: libc::c_ulong = 0x8004_587D;
/// Stop at once: neither flush the log nor write data (the journal stays as it is on disk).
const EXT4_GOING_FLAGS_NOLOGFLUSH: u32 = 2;

/// Shut the ext4 filesystem mounted at `dir` down as a crash would (xfstests' `godown -f`): every
/// later operation fails, the unmount does not checkpoint the journal, the next mount replays it.
pub fn ext4_shutdown(dir: &Path) -> R<()> {
    let f = File::open(dir).map_err(io_err("open", dir))?;
    let flags = EXT4_GOING_FLAGS_NOLOGFLUSH;
    // SAFETY: a valid descriptor and a pointer to a u32, as EXT4_IOC_SHUTDOWN reads.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), EXT4_IOC_SHUTDOWN as _, &flags as *const u32) };
    if r != 0 {
        return Err(format!(
            "EXT4_IOC_SHUTDOWN on {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// A VexFS image mounted by mount-vexfs: a foreground child (`-f`, which we can SIGKILL) or a
/// daemon (the plain `mount-vexfs IMAGE DIR` a user runs, which returns once mounted).
pub struct VexMount {
    child: Option<Child>,
    pub dir: PathBuf,
    image: PathBuf,
    /// Unmounted by `finish` or `kill9`: nothing left for `Drop`.
    done: bool,
}

/// How long a mount may take to appear, and a daemon to exit after its unmount.
const MOUNT_WAIT: Duration = Duration::from_secs(30);
const EXIT_WAIT: Duration = Duration::from_secs(120);

impl VexMount {
    /// `mount-vexfs -f IMAGE DIR -o OPTS` as a child (own process group, so a terminal's Ctrl-C
    /// reaches only this program, which then unmounts); returns once DIR is mounted.
    pub fn foreground(bin: &Path, image: &Path, dir: &Path, opts: &str, log: &Path) -> R<VexMount> {
        if is_mounted(dir) {
            return Err(format!("{} is already a mount point", dir.display()));
        }
        let log_file = File::create(log).map_err(io_err("create", log))?;
        let mut cmd = Command::new(bin);
        cmd.arg(image).arg(dir).arg("-f");
        if !opts.is_empty() {
            cmd.arg("-o").arg(opts);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let mut m = VexMount {
            child: Some(child),
            dir: dir.to_path_buf(),
            image: image.to_path_buf(),
            done: false,
        };
        let deadline = Instant::now() + MOUNT_WAIT;
        while !is_mounted(dir) {
            if let Some(st) = m.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                m.child = None;
                let log_text = fs::read_to_string(log).unwrap_or_default();
                return Err(format!(
                    "mount-vexfs exited before mounting ({st}): {}",
                    log_text.trim()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not appear in /proc/self/mountinfo", dir.display()));
            }
            thread::sleep(Duration::from_millis(1));
        }
        m.check_type()?;
        Ok(m)
    }

    /// `mount-vexfs IMAGE DIR -o OPTS` (daemon mode, as ci/lib.sh `ci_mount` does); returns the
    /// mount and the time the command took (it returns once the filesystem is usable).
    pub fn daemon(bin: &Path, image: &Path, dir: &Path, opts: &str) -> R<(VexMount, Duration)> {
        if is_mounted(dir) {
            return Err(format!("{} is already a mount point", dir.display()));
        }
        let mut cmd = Command::new(bin);
        cmd.arg(image).arg(dir);
        if !opts.is_empty() {
            cmd.arg("-o").arg(opts);
        }
        let t0 = Instant::now();
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let took = t0.elapsed();
        let m = VexMount {
            child: None,
            dir: dir.to_path_buf(),
            image: image.to_path_buf(),
            done: false,
        };
        if !out.status.success() {
            return Err(format!(
                "mount-vexfs {} {} failed ({}): {}",
                image.display(),
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        if !is_mounted(dir) {
            return Err(format!("{} is not mounted after mount-vexfs returned", dir.display()));
        }
        m.check_type()?;
        Ok((m, took))
    }

    fn check_type(&self) -> R<()> {
        match fstype(&self.dir) {
            Some(t) if t == "fuse.vexfs" => Ok(()),
            t => Err(format!("{} is mounted as {t:?}, not fuse.vexfs", self.dir.display())),
        }
    }

    /// Unmount and wait for the daemon to close the image and exit.
    pub fn finish(mut self) -> R<()> {
        umount(&self.dir)?;
        self.done = true;
        match self.child.take() {
            Some(mut child) => {
                let deadline = Instant::now() + EXIT_WAIT;
                loop {
                    match child.try_wait() {
                        Ok(Some(st)) if st.success() => return Ok(()),
                        Ok(Some(st)) => return Err(format!("mount-vexfs exited with {st} after the unmount")),
                        Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
                        Ok(None) => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return Err("mount-vexfs did not exit after the unmount".into());
                        }
                        Err(e) => return Err(format!("waiting for mount-vexfs: {e}")),
                    }
                }
            }
            None => wait_unlocked(&self.image, EXIT_WAIT),
        }
    }

    /// SIGKILL the foreground daemon (a crash of the daemon: the kernel keeps what it wrote,
    /// nothing more is written), then unmount the dead connection.
    pub fn kill9(mut self) -> R<()> {
        let mut child = self.child.take().ok_or("kill9 needs a foreground mount")?;
        child.kill().map_err(|e| format!("kill -9 mount-vexfs: {e}"))?;
        child.wait().map_err(|e| format!("waiting for mount-vexfs: {e}"))?;
        self.done = true;
        umount(&self.dir)
    }
}

impl Drop for VexMount {
    /// After an error or a signal: unmount, let the daemon close the image, stop it if it hangs.
    fn drop(&mut self) {
        if self.done && self.child.is_none() {
            return;
        }
        if umount(&self.dir).is_err() {
            eprintln!("bench-fsync: cleanup: {} had to be detached", self.dir.display());
        }
        match self.child.take() {
            Some(mut child) => {
                let deadline = Instant::now() + Duration::from_secs(20);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(10));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            None => {
                if wait_unlocked(&self.image, Duration::from_secs(20)).is_err() {
                    if let Some(pid) = daemon_of(&self.image) {
                        eprintln!("bench-fsync: cleanup: sending SIGTERM to the mount-vexfs daemon (pid {pid})");
                        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
                    }
                }
            }
        }
    }
}

/// A loop device attached to an image file; detached when dropped.
pub struct LoopDev {
    pub dev: PathBuf,
}

impl LoopDev {
    pub fn attach(image: &Path) -> R<LoopDev> {
        let out = run(Command::new("losetup").arg("--find").arg("--show").arg(image))?;
        let dev = PathBuf::from(out.trim());
        if !dev.starts_with("/dev/") {
            return Err(format!("losetup printed {out:?}, not a device"));
        }
        Ok(LoopDev { dev })
    }

    /// Write the device's dirty buffers and drop its buffer cache (BLKFLSBUF).
    pub fn flush_buffers(&self) -> R<()> {
        run(Command::new("blockdev").arg("--flushbufs").arg(&self.dev)).map(drop)
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        for _ in 0..20 {
            if Command::new("losetup")
                .arg("-d")
                .arg(&self.dev)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                return;
            }
            thread::sleep(Duration::from_millis(250));
        }
        eprintln!("bench-fsync: cleanup: losetup -d {} failed", self.dev.display());
    }
}

/// An ext4 filesystem mounted from a loop device; unmounted when dropped.
pub struct Ext4Mount {
    pub dir: PathBuf,
}

impl Ext4Mount {
    /// `mount -t ext4 [-o OPTS] DEV DIR`, and the time it took.
    pub fn mount(dev: &Path, dir: &Path, opts: &str) -> R<(Ext4Mount, Duration)> {
        if is_mounted(dir) {
            return Err(format!("{} is already a mount point", dir.display()));
        }
        let mut cmd = Command::new("mount");
        cmd.arg("-t").arg("ext4");
        if !opts.is_empty() {
            cmd.arg("-o").arg(opts);
        }
        cmd.arg(dev).arg(dir);
        let t0 = Instant::now();
        run(&mut cmd)?;
        let took = t0.elapsed();
        Ok((Ext4Mount { dir: dir.to_path_buf() }, took))
    }

    pub fn finish(self) -> R<()> {
        umount(&self.dir)
    }
}

impl Drop for Ext4Mount {
    fn drop(&mut self) {
        if umount(&self.dir).is_err() {
            eprintln!("bench-fsync: cleanup: {} had to be detached", self.dir.display());
        }
    }
}

/// The work directory (images, mount points, logs); removed when dropped unless kept, and never
/// while something is still mounted inside it.
pub struct WorkDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl WorkDir {
    /// A fresh directory `bench-fsync.PID` inside `parent`.
    pub fn create(parent: &Path, keep: bool) -> R<WorkDir> {
        fs::create_dir_all(parent).map_err(io_err("mkdir", parent))?;
        let parent = fs::canonicalize(parent).map_err(io_err("canonicalize", parent))?;
        let path = parent.join(format!("bench-fsync.{}", std::process::id()));
        fs::create_dir(&path).map_err(io_err("mkdir", &path))?;
        Ok(WorkDir { path, keep })
    }

    /// A subdirectory (a mount point).
    pub fn subdir(&self, name: &str) -> R<PathBuf> {
        let p = self.path.join(name);
        fs::create_dir_all(&p).map_err(io_err("mkdir", &p))?;
        Ok(p)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("bench-fsync: kept {}", self.path.display());
            return;
        }
        if mounts().iter().any(|m| m.starts_with(&self.path)) {
            eprintln!(
                "bench-fsync: not removing {}: something is still mounted inside it",
                self.path.display()
            );
            return;
        }
        if let Err(e) = fs::remove_dir_all(&self.path) {
            eprintln!("bench-fsync: cannot remove {}: {e}", self.path.display());
        }
    }
}
