//! The mount daemon's threads run on small stacks ([`THREAD_STACK`],
//! 256 KiB). On a real mount this checks that the daemon really runs them
//! so (the room below each waiting thread's stack pointer, read from
//! /proc, is under 256 KiB, where std's default would leave 2 MiB), then
//! drives the deepest paths a request can take: a 2,000-level directory
//! chain with a rename into its bottom, a loop refused and a search that
//! names the file at its bottom; a 40-link symlink chain (41 is ELOOP)
//! and a 4,095-byte target; readdir of a 20,000-entry hashed directory; a
//! 10,000-hit search over 10,000 vectors; the largest xattr that fits; a
//! 64 MiB write and read. An overflow aborts the daemon, which fails the
//! test; afterwards each thread's touched stack (its resident pages) must
//! be under half of THREAD_STACK, so the margin is kept too.
//!
//! Needs /dev/fuse and root; prints SKIPPED without them, except under CI.

mod common;

use common::fuse::{fuse_usable, is_mounted, wait};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use vexfs::fuse::THREAD_STACK;

const BIN: &str = env!("CARGO_BIN_EXE_mount-vexfs");
/// Directory levels of the deep chain (the search names paths of up to
/// 2,048 components).
const DEPTH: usize = 2_000;
/// Symlinks the kernel follows in one lookup (MAXSYMLINKS); one more is ELOOP.
const MAX_SYMLINKS: usize = 40;
/// Entries of the big directory, and how many of them get a vector.
const BIG_DIR: usize = 20_000;
const VECTORS: usize = 10_000;
const DIM: usize = 32;
/// The largest xattr value Linux passes (XATTR_SIZE_MAX); more than fits.
const XATTR_MAX: usize = 65_536;
const BIG_FILE: usize = 64 << 20;

/// One test at a time: a mount child forked by one test would inherit (until
/// its exec) the other's image descriptor and with it the image's flock.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A `mount.vexfs -f` child with a chosen worker stack (None: the daemon's
/// own default, whatever the test's environment says), unmounted on drop.
struct Daemon {
    dir: PathBuf,
    child: Child,
}

impl Daemon {
    fn start(image: &Path, dir: &Path, stack: Option<usize>) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.arg(image).arg(dir).arg("-f").stdout(Stdio::null());
        cmd.stderr(File::create(dir.with_extension("log")).unwrap());
        match stack {
            Some(bytes) => cmd.env("RUST_MIN_STACK", bytes.to_string()),
            None => cmd.env_remove("RUST_MIN_STACK"),
        };
        let child = cmd.spawn().unwrap();
        wait("the mount", || is_mounted(dir));
        Daemon {
            dir: dir.to_path_buf(),
            child,
        }
    }

    /// The exit status, once the daemon has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Unmount and return the daemon's exit status.
    fn stop(mut self) -> ExitStatus {
        assert!(
            Command::new("umount").arg(&self.dir).status().unwrap().success(),
            "umount"
        );
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if is_mounted(&self.dir) {
            // A dead daemon leaves its mount behind (ENOTCONN): detach it.
            let lazy = if self.exited().is_some() { "-l" } else { "--" };
            let _ = Command::new("umount").arg(lazy).arg(&self.dir).status();
        }
        let _ = self.child.wait();
    }
}

/// One mapping of /proc/PID/smaps: start, end, permissions, resident KiB.
struct Mapping {
    lo: u64,
    hi: u64,
    perms: String,
    rss_kib: u64,
}

fn mappings(pid: u32) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap().lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some(rss) = line.strip_prefix("Rss:") {
            out.last_mut().unwrap().rss_kib = rss.trim().trim_end_matches(" kB").parse().unwrap();
        } else if let Some((lo, hi)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            let hex = |s| u64::from_str_radix(s, 16).unwrap();
            let perms = f.next().unwrap().to_string();
            out.push(Mapping {
                lo: hex(lo),
                hi: hex(hi),
                perms,
                rss_kib: 0,
            });
        }
    }
    out
}

/// A thread's stack as /proc shows it.
#[derive(Debug)]
struct Stack {
    thread: String,
    /// Bytes below the stack pointer down to the guard page: how much
    /// deeper the thread could go from where it waits.
    room: u64,
    /// Resident KiB of the stack's mapping: the deepest the thread has
    /// been (stack pages stay resident), plus glibc's thread block and TLS
    /// at the top.
    touched_kib: u64,
}

/// The stacks of the threads of `pid` but the main one (which runs on the
/// process stack and only waits for the others). Each thread is caught
/// blocked in a system call (FUSE workers in read of /dev/fuse), where
/// /proc/PID/task/TID/syscall shows its stack pointer.
fn stacks(pid: u32) -> Vec<Stack> {
    // The mount appears before the daemon starts its workers and timers.
    let names = || -> Vec<(PathBuf, String)> {
        let tasks = fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        let paths = tasks
            .map(|t| t.unwrap().path())
            .filter(|t| !t.ends_with(pid.to_string()));
        paths
            .map(|t| (t.clone(), fs::read_to_string(t.join("comm")).unwrap().trim().into()))
            .collect()
    };
    wait("the daemon's threads", || {
        let n = names();
        n.iter().filter(|t| t.1.starts_with("fuser-")).count() >= 2 && n.iter().any(|t| t.1 == "commit")
    });
    let mut sps = Vec::new();
    for (task, thread) in names() {
        let mut sp = None;
        wait("a thread blocked in a system call", || {
            let s = fs::read_to_string(task.join("syscall")).unwrap();
            let f: Vec<&str> = s.split_whitespace().collect();
            sp = (f.len() == 9).then(|| u64::from_str_radix(f[7].trim_start_matches("0x"), 16).unwrap());
            sp.is_some()
        });
        sps.push((thread, sp.unwrap()));
    }
    let maps = mappings(pid);
    let mut out = Vec::new();
    for (thread, sp) in sps {
        let i = maps
            .iter()
            .position(|m| m.lo <= sp && sp < m.hi)
            .expect("a mapping holds the stack pointer");
        let (below, m) = (&maps[i.max(1) - 1], &maps[i]);
        assert!(
            i > 0 && below.hi == m.lo && below.perms == "---p",
            "{thread}: the stack mapping {:x}-{:x} has no guard page below it",
            m.lo,
            m.hi
        );
        out.push(Stack {
            thread,
            room: sp - m.lo,
            touched_kib: m.rss_kib,
        });
    }
    out
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A deterministic vector per index, all distinct.
fn vector(i: usize) -> Vec<f32> {
    (0..DIM)
        .map(|d| ((i * 7919 + d * 104_729) % 10_007) as f32 / 10_007.0)
        .collect()
}

/// Write a request to a control file and read the reply.
fn control(mnt: &Path, file: &str, body: &serde_json::Value) -> std::io::Result<String> {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(mnt.join(".vexfs").join(file))?;
    f.write_all(body.to_string().as_bytes())?;
    let mut out = String::new();
    f.read_to_string(&mut out)?;
    Ok(out)
}

/// A path that reaches into the directory open as `dir` (through its
/// /proc/self/fd link, so that paths stay short at any depth).
fn under(dir: &File, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
}

/// A DEPTH-level chain /deep/d/d/.../d with a file with a vector at the
/// bottom; a directory moved in and out of the bottom (the rename walks
/// every ancestor), a loop refused, and a search that names the file.
fn deep_tree(mnt: &Path) {
    fs::create_dir(mnt.join("deep")).unwrap();
    let mut dir = File::open(mnt.join("deep")).unwrap();
    for _ in 0..DEPTH {
        fs::create_dir(under(&dir, "d")).unwrap();
        dir = File::open(under(&dir, "d")).unwrap();
    }
    let bottom = under(&dir, "bottom");
    File::create(&bottom).unwrap();
    xattr::set(&bottom, "user.vexfs.vector.big", &le_bytes(&vector(VECTORS))).unwrap();
    fs::create_dir(mnt.join("mover")).unwrap();
    fs::rename(mnt.join("mover"), under(&dir, "mover")).unwrap();
    fs::rename(under(&dir, "mover"), mnt.join("mover")).unwrap();
    let loop_err = fs::rename(mnt.join("deep/d"), under(&dir, "loop")).unwrap_err();
    assert_eq!(
        loop_err.raw_os_error(),
        Some(libc::EINVAL),
        "moving a directory under itself"
    );
    let q = serde_json::json!({"collection": "big", "k": 1, "ef": 200, "paths": true, "vector": vector(VECTORS)});
    let reply = control(mnt, "search", &q).unwrap();
    let want = format!("/deep{}/bottom", "/d".repeat(DEPTH));
    let hit: serde_json::Value = serde_json::from_str(reply.lines().next().unwrap()).unwrap();
    assert_eq!(hit["path"].as_str(), Some(want.as_str()), "the deep file's path");
}

/// l0 -> target, l1 -> l0, ..., l39 -> l38 opens (40 links); l40 is ELOOP.
/// And a symlink with the longest target (4,095 bytes) reads back whole.
fn symlinks(mnt: &Path) {
    let dir = mnt.join("links");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("target"), b"at the end of the chain").unwrap();
    std::os::unix::fs::symlink("target", dir.join("l0")).unwrap();
    for i in 1..=MAX_SYMLINKS {
        std::os::unix::fs::symlink(format!("l{}", i - 1), dir.join(format!("l{i}"))).unwrap();
    }
    let last = dir.join(format!("l{}", MAX_SYMLINKS - 1));
    assert_eq!(fs::read(last).unwrap(), b"at the end of the chain");
    let over = fs::read(dir.join(format!("l{MAX_SYMLINKS}"))).unwrap_err();
    assert_eq!(over.raw_os_error(), Some(libc::ELOOP), "41 links");
    let long = "x/".repeat(2047) + "y";
    std::os::unix::fs::symlink(&long, dir.join("long")).unwrap();
    assert_eq!(fs::read_link(dir.join("long")).unwrap().to_str(), Some(long.as_str()));
}

/// BIG_DIR files in one hashed directory, VECTORS of them with a vector in
/// a new collection; readdir sees every name, and a search for all
/// VECTORS neighbours (ef as large) returns them all, with paths.
fn big_dir_and_search(mnt: &Path) {
    let create = serde_json::json!({"op": "create", "name": "big", "dim": DIM, "metric": "l2", "type": "f32"});
    control(mnt, "collections", &create).unwrap();
    let dir = mnt.join("big");
    fs::create_dir(&dir).unwrap();
    for i in 0..BIG_DIR {
        let p = dir.join(format!("an-entry-with-a-longer-name-{i:06}"));
        File::create(&p).unwrap();
        if i < VECTORS {
            xattr::set(&p, "user.vexfs.vector.big", &le_bytes(&vector(i))).unwrap();
        }
    }
    assert_eq!(fs::read_dir(&dir).unwrap().count(), BIG_DIR);
    let q = serde_json::json!({"collection": "big", "k": VECTORS, "ef": VECTORS, "paths": true, "vector": vector(0)});
    let reply = control(mnt, "search", &q).unwrap();
    let hits: Vec<serde_json::Value> = reply.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(hits.len(), VECTORS, "{}", reply.lines().last().unwrap_or(""));
    assert_eq!(
        hits[0]["path"].as_str(),
        Some("/big/an-entry-with-a-longer-name-000000")
    );
}

/// The largest xattr value that fits, set and read back beside the vector
/// xattr: a value of XATTR_SIZE_MAX (64 KiB) is ENOSPC, since all of an
/// inode's xattrs share one 4 KiB block (format-spec/07-xattrs.md).
fn big_xattrs(mnt: &Path) {
    let p = mnt.join("big/an-entry-with-a-longer-name-000001");
    let value = |len: usize| (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>();
    let too_big = xattr::set(&p, "user.big", &value(XATTR_MAX)).unwrap_err();
    assert_eq!(too_big.raw_os_error(), Some(libc::ENOSPC), "a 64 KiB value");
    let fits = (0..4096usize)
        .rev()
        .step_by(16)
        .find(|&len| xattr::set(&p, "user.big", &value(len)).is_ok())
        .unwrap();
    assert!(fits > 3_500, "only {fits} bytes fit");
    assert_eq!(xattr::get(&p, "user.big").unwrap().unwrap(), value(fits));
    let names: Vec<_> = xattr::list(&p).unwrap().collect();
    assert!(names.iter().any(|n| n == "user.big"), "{names:?}");
}

/// One 64 MiB write (the kernel sends 1 MiB requests) and one read back.
fn big_file(mnt: &Path) {
    let data: Vec<u8> = (0..BIG_FILE).map(|i| (i * 31 / 4096) as u8).collect();
    fs::write(mnt.join("big.bin"), &data).unwrap();
    assert!(fs::read(mnt.join("big.bin")).unwrap() == data, "64 MiB read back");
}

/// A named part of the workload.
type Step = (&'static str, fn(&Path));

/// Every deep path in turn; panics (with the step) if one fails or the
/// daemon dies.
fn workload(mnt: &Path, daemon: &mut Daemon) {
    let steps: [Step; 5] = [
        ("big directory and search", big_dir_and_search),
        ("deep tree", deep_tree),
        ("symlink chain", symlinks),
        ("big xattrs", big_xattrs),
        ("big file", big_file),
    ];
    for (name, step) in steps {
        step(mnt);
        assert!(daemon.exited().is_none(), "the daemon died during: {name}");
    }
}

fn fresh(tmp: &Path) -> (PathBuf, PathBuf) {
    let image = common::make_image(tmp, "s.img", 1 << 30, false);
    let mnt = tmp.join("mnt");
    fs::create_dir(&mnt).unwrap();
    (image, mnt)
}

#[test]
fn the_deepest_paths_fit_the_worker_stack() {
    if !fuse_usable() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let (image, mnt) = fresh(tmp.path());
    let mut daemon = Daemon::start(&image, &mnt, None);
    // The daemon runs its threads on THREAD_STACK, not std's 2 MiB: room
    // below the stack pointer is under THREAD_STACK, and nearly all of it
    // (a thread waiting for work has used only a few KiB).
    let before = stacks(daemon.child.id());
    assert!(
        before.iter().filter(|s| s.thread.starts_with("fuser-")).count() >= 2,
        "{before:?}"
    );
    for s in &before {
        let room = s.room as usize;
        assert!(
            room < THREAD_STACK && room > THREAD_STACK - 64 * 1024,
            "{}: {room} bytes of stack left",
            s.thread
        );
    }
    workload(&mnt, &mut daemon);
    // The deepest each thread went. An overflow would have killed the
    // daemon above; half the stack is the margin a change may not eat.
    for s in stacks(daemon.child.id()) {
        let at_mount = before
            .iter()
            .find(|b| b.thread == s.thread)
            .map_or(0, |b| b.touched_kib);
        println!(
            "{}: {} KiB of its stack touched ({} KiB after mounting), {} KiB room below where it waits",
            s.thread,
            s.touched_kib,
            at_mount,
            s.room / 1024
        );
        assert!(s.touched_kib * 1024 < THREAD_STACK as u64 / 2, "{s:?}");
    }
    let status = daemon.stop();
    assert!(status.success(), "mount.vexfs exited with {status}");
    let r = common::fsck(&image).unwrap();
    assert!(r.is_clean(), "fsck: {:#?}", r.problems);
}
