//! The guards of a filesystem benchmark: a VexFS image mounted by mount-vexfs, the floor
//! filesystem mounted by fuse-floor, a loop device, an ext4 mount and the work directory, each
//! undone by its `Drop`.

use super::{fstype, io_err, is_mounted, mounts, prog, run, umount, wait_unlocked, R};
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

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
        let mut cmd = Command::new(bin);
        cmd.arg(image).arg(dir).arg("-f");
        if !opts.is_empty() {
            cmd.arg("-o").arg(opts);
        }
        let child = start_server(&mut cmd, dir, log, "fuse.vexfs")?;
        Ok(VexMount {
            child: Some(child),
            dir: dir.to_path_buf(),
            image: image.to_path_buf(),
            done: false,
        })
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

    /// The daemon's pid, for a foreground mount.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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
            Some(child) => wait_exit(child, "mount-vexfs"),
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
            eprintln!("{}: cleanup: {} had to be detached", prog(), self.dir.display());
        }
        match self.child.take() {
            Some(child) => stop_child(child),
            None => {
                if wait_unlocked(&self.image, Duration::from_secs(20)).is_err() {
                    if let Some(pid) = daemon_of(&self.image) {
                        eprintln!(
                            "{}: cleanup: sending SIGTERM to the mount-vexfs daemon (pid {pid})",
                            prog()
                        );
                        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
                    }
                }
            }
        }
    }
}

/// Start `cmd`, a FUSE server staying in the foreground, as a child in its own process group (so
/// that a terminal's Ctrl-C reaches only this program, which then unmounts), its stderr into
/// `log`; return once `dir` is mounted with type `want` (as mountinfo gives it).
fn start_server(cmd: &mut Command, dir: &Path, log: &Path, want: &str) -> R<Child> {
    let name = Path::new(cmd.get_program())
        .file_name()
        .map_or_else(|| "the server".into(), |n| n.to_string_lossy().into_owned());
    if is_mounted(dir) {
        return Err(format!("{} is already a mount point", dir.display()));
    }
    let log_file = File::create(log).map_err(io_err("create", log))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    let deadline = Instant::now() + MOUNT_WAIT;
    let failed = loop {
        if is_mounted(dir) {
            match fstype(dir) {
                Some(t) if t == want => return Ok(child),
                t => break format!("{} is mounted as {t:?}, not {want}", dir.display()),
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            let log_text = fs::read_to_string(log).unwrap_or_default();
            return Err(format!("{name} exited before mounting ({st}): {}", log_text.trim()));
        }
        if Instant::now() > deadline {
            break format!("{} did not appear in /proc/self/mountinfo", dir.display());
        }
        thread::sleep(Duration::from_millis(1));
    };
    if is_mounted(dir) {
        let _ = umount(dir);
    }
    stop_child(child);
    Err(failed)
}

/// Wait for a server to exit after its unmount: it must exit, and with success.
fn wait_exit(mut child: Child, name: &str) -> R<()> {
    let deadline = Instant::now() + EXIT_WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("{name} exited with {st} after the unmount")),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{name} did not exit after the unmount"));
            }
            Err(e) => return Err(format!("waiting for {name}: {e}")),
        }
    }
}

/// After an error or a signal, once the mount is gone: give the server a while to exit, then
/// kill it.
fn stop_child(mut child: Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The floor filesystem (an empty in-memory FUSE filesystem doing no work, tools/src/floor/)
/// mounted by `fuse-floor -f DIR` as a child. Its contents go with the unmount.
pub struct FloorMount {
    child: Option<Child>,
    pub dir: PathBuf,
}

impl FloorMount {
    /// `fuse-floor -f DIR`, its stderr into `log`; returns once DIR is mounted.
    pub fn start(bin: &Path, dir: &Path, log: &Path) -> R<FloorMount> {
        let child = start_server(Command::new(bin).arg("-f").arg(dir), dir, log, "fuse.floor")?;
        Ok(FloorMount {
            child: Some(child),
            dir: dir.to_path_buf(),
        })
    }

    /// Unmount and wait for the server to exit.
    pub fn finish(mut self) -> R<()> {
        umount(&self.dir)?;
        match self.child.take() {
            Some(child) => wait_exit(child, "fuse-floor"),
            None => Ok(()),
        }
    }
}

impl Drop for FloorMount {
    fn drop(&mut self) {
        let Some(child) = self.child.take() else { return };
        if umount(&self.dir).is_err() {
            eprintln!("{}: cleanup: {} had to be detached", prog(), self.dir.display());
        }
        stop_child(child);
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
        eprintln!("{}: cleanup: losetup -d {} failed", prog(), self.dev.display());
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
            eprintln!("{}: cleanup: {} had to be detached", prog(), self.dir.display());
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
    /// A fresh directory `PROGRAM.PID` inside `parent`.
    pub fn create(parent: &Path, keep: bool) -> R<WorkDir> {
        fs::create_dir_all(parent).map_err(io_err("mkdir", parent))?;
        let parent = fs::canonicalize(parent).map_err(io_err("canonicalize", parent))?;
        let path = parent.join(format!("{}.{}", prog(), std::process::id()));
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
            eprintln!("{}: kept {}", prog(), self.path.display());
            return;
        }
        if mounts().iter().any(|m| m.starts_with(&self.path)) {
            eprintln!(
                "{}: not removing {}: something is still mounted inside it",
                prog(),
                self.path.display()
            );
            return;
        }
        if let Err(e) = fs::remove_dir_all(&self.path) {
            eprintln!("{}: cannot remove {}: {e}", prog(), self.path.display());
        }
    }
}
