//! A small FUSE mount harness for the integration tests that need a real
//! mount (fuse_vectors, fuse_events): `mount.vexfs -f` as a child,
//! unmounted on drop, so a failing test leaves no mount behind.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mount-vexfs");

/// One mount (or image open) at a time within a test binary: a daemon
/// forked by one test holds copies of every descriptor of the process
/// until it execs, among them another test's image descriptor with its
/// flock, so that test's next mount, open or fsck could find the image
/// "in use" ("Locked" now and then).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Can FUSE mounts run here? Prints SKIPPED and returns false when not,
/// except under CI (the CI variable set), where it fails instead.
pub fn fuse_usable() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    match (
        Path::new("/dev/fuse").exists() && root,
        std::env::var_os("CI").is_some(),
    ) {
        (true, _) => true,
        (false, true) => panic!("FUSE tests cannot run: need /dev/fuse and root; CI must provide them"),
        (false, false) => {
            println!("SKIPPED: no /dev/fuse or not root");
            false
        }
    }
}

pub fn is_mounted(dir: &Path) -> bool {
    let d = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(d.as_str()))
}

pub fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A `mount.vexfs -f` child, unmounted on drop (also when a test fails).
pub struct Mounted(PathBuf, Option<Child>);

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(mut c) = self.1.take() {
            let _ = Command::new("umount").arg(&self.0).status();
            let _ = c.wait();
        }
    }
}

/// Mount `image` on `dir` (the daemon's log goes next to `dir`).
pub fn mount(image: &Path, dir: &Path) -> Mounted {
    mount_with(image, dir, &[])
}

/// [`mount`] with extra arguments (e.g. `-o allow_other`).
pub fn mount_with(image: &Path, dir: &Path, args: &[&str]) -> Mounted {
    let log = File::create(dir.with_extension("log")).unwrap();
    let child = Command::new(BIN)
        .arg(image)
        .arg(dir)
        .args(args)
        .arg("-f")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait("the mount", || is_mounted(dir));
    Mounted(dir.to_path_buf(), Some(child))
}

impl Mounted {
    /// `kill -9` the daemon, then detach its dead mount.
    pub fn kill9(&mut self) {
        let mut child = self.1.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status()
                .unwrap()
                .success(),
            "umount -l"
        );
    }
}

/// Unmount and check that the daemon exited cleanly.
pub fn unmount(mut m: Mounted) {
    let mut child = m.1.take().unwrap();
    assert!(Command::new("umount").arg(&m.0).status().unwrap().success(), "umount");
    let st = child.wait().unwrap();
    assert!(st.success(), "mount.vexfs exited with {st}");
}
