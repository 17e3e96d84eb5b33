//! The FUSE mount end to end: build an image with mkfs, mount it with the
//! built `mount-vexfs` binary, use it through std::fs and libc, unmount,
//! remount, compare, and fsck it clean.
//!
//! Needs /dev/fuse and root (or fusermount3). Without /dev/fuse the tests
//! print "SKIPPED: no /dev/fuse" and pass, unless the CI variable is set,
//! where they fail: CI must run them.

mod common;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};
use vexfs::fs::core::Fs;

const BIN: &str = env!("CARGO_BIN_EXE_mount-vexfs");
const MIB: u64 = 1 << 20;
const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------- harness

/// Tests run in parallel threads of one process. A child spawned by one
/// test holds copies of every descriptor of the process until its exec
/// closes them, and an image descriptor carries the image's flock: a child
/// spawned while another test runs mkfs or fsck could make that test's
/// next mount fail with "already mounted or in use". So descriptors of
/// images are only held under the write side of this lock, and children
/// are only spawned under its read side.
static FD_LOCK: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn spawn(c: &mut Command) -> io::Result<Child> {
    let _g = FD_LOCK.read().unwrap_or_else(|e| e.into_inner());
    c.spawn()
}

fn output(c: &mut Command) -> io::Result<std::process::Output> {
    spawn(c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()))?.wait_with_output()
}

fn holding_images<R>(f: impl FnOnce() -> R) -> R {
    let _g = FD_LOCK.write().unwrap_or_else(|e| e.into_inner());
    f()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn has_fusermount() -> bool {
    ["fusermount3", "fusermount"]
        .iter()
        .any(|b| output(Command::new(b).arg("-V")).is_ok())
}

/// Can this machine mount FUSE? Prints SKIPPED and returns false when not
/// (and fails instead when the CI variable is set).
fn fuse_usable() -> bool {
    let why = if !Path::new("/dev/fuse").exists() {
        Some("no /dev/fuse")
    } else if !is_root() && !has_fusermount() {
        Some("not root and no fusermount3/fusermount")
    } else {
        None
    };
    match why {
        None => true,
        Some(w) if std::env::var_os("CI").is_some() => {
            panic!("FUSE mount tests cannot run: {w}; CI must provide /dev/fuse (and root or fusermount3)")
        }
        Some(w) => {
            println!("SKIPPED: {w}");
            false
        }
    }
}

/// One line of /proc/self/mountinfo: (mount point, fs type, source, options).
fn mounts() -> Vec<(String, String, String, String)> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?.replace("\\040", " ");
            let mut r = right.split(' ');
            let (ty, src, opts) = (r.next()?, r.next()?, r.next()?);
            Some((point, ty.to_string(), src.replace("\\040", " "), opts.to_string()))
        })
        .collect()
}

fn mount_of(dir: &Path) -> Option<(String, String, String, String)> {
    let d = dir.to_str().unwrap();
    mounts().into_iter().rev().find(|m| m.0 == d)
}

fn is_mounted(dir: &Path) -> bool {
    mount_of(dir).is_some()
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// Unmount `dir` (root: umount(2); otherwise fusermount -u).
fn umount(dir: &Path, lazy: bool) -> io::Result<()> {
    if is_root() {
        let flags = if lazy { libc::MNT_DETACH } else { 0 };
        // SAFETY: a valid C path.
        if unsafe { libc::umount2(cpath(dir).as_ptr(), flags) } == 0 {
            return Ok(());
        }
        return Err(io::Error::last_os_error());
    }
    for b in ["fusermount3", "fusermount"] {
        let mut c = Command::new(b);
        c.arg("-u");
        if lazy {
            c.arg("-z");
        }
        if output(c.arg(dir)).is_ok_and(|o| o.status.success()) {
            return Ok(());
        }
    }
    Err(io::Error::other("fusermount -u failed"))
}

fn alive(pid: u32) -> bool {
    // A reparented daemon may linger as a zombie if nothing reaps it; its
    // files (and the image lock) are gone once its last thread has exited.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let zombie = s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'));
            let threads = fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
            !zombie || threads > 1
        }
        Err(_) => false,
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < WAIT, "timed out waiting for {what}");
        sleep(Duration::from_millis(20));
    }
}

/// A running mount. Dropping it unmounts (lazily if needed) and stops the
/// daemon, so a failing test leaves nothing mounted.
struct Mounted {
    dir: PathBuf,
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
}

fn mount_cmd(image: &Path, dir: &Path, opts: &str, foreground: bool) -> Command {
    let mut c = Command::new(BIN);
    c.arg(image).arg(dir);
    if foreground {
        c.arg("-f");
    }
    if !opts.is_empty() {
        c.args(["-o", opts]);
    }
    c
}

impl Mounted {
    /// `mount.vexfs -f` in the background, waiting until the mount shows.
    fn foreground(image: &Path, dir: &Path, opts: &str) -> Mounted {
        let log = dir.with_extension("log");
        let child = spawn(
            mount_cmd(image, dir, opts, true)
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap()),
        )
        .unwrap();
        let pid = child.id();
        let mut m = Mounted {
            dir: dir.to_path_buf(),
            child: Some(child),
            pid,
            log,
        };
        let t = Instant::now();
        while !is_mounted(dir) {
            if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("mount.vexfs exited with {st}: {}", fs::read_to_string(&m.log).unwrap());
            }
            assert!(
                t.elapsed() < WAIT,
                "mount did not appear: {}",
                fs::read_to_string(&m.log).unwrap()
            );
            sleep(Duration::from_millis(10));
        }
        m
    }

    /// `mount.vexfs` as mount(8) runs it: it must return only once mounted.
    fn daemon(image: &Path, dir: &Path, opts: &str) -> Mounted {
        let out = output(&mut mount_cmd(image, dir, opts, false)).unwrap();
        assert!(
            out.status.success(),
            "mount.vexfs failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(is_mounted(dir), "mount.vexfs returned before the mount was ready");
        let pid = daemon_pid(image).expect("the daemon process");
        Mounted {
            dir: dir.to_path_buf(),
            child: None,
            pid,
            log: PathBuf::new(),
        }
    }

    /// Unmount and wait for the daemon to exit successfully.
    fn unmount(mut self) {
        let t = Instant::now();
        loop {
            match umount(&self.dir, false) {
                Ok(()) => break,
                // Releases are asynchronous: give the last close a moment.
                Err(e) if t.elapsed() < WAIT => {
                    let _ = e;
                    sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("umount {}: {e}", self.dir.display()),
            }
        }
        self.wait_exit();
    }

    fn wait_exit(&mut self) {
        match self.child.take() {
            Some(mut c) => {
                let t = Instant::now();
                loop {
                    if let Some(st) = c.try_wait().unwrap() {
                        assert!(
                            st.success(),
                            "daemon exit {st}: {}",
                            fs::read_to_string(&self.log).unwrap()
                        );
                        break;
                    }
                    assert!(t.elapsed() < WAIT, "daemon did not exit after unmount");
                    sleep(Duration::from_millis(10));
                }
            }
            None => wait_until("the daemon to exit", || !alive(self.pid)),
        }
        assert!(!is_mounted(&self.dir));
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if is_mounted(&self.dir) {
            let _ = umount(&self.dir, true);
        }
        if let Some(mut c) = self.child.take() {
            let t = Instant::now();
            while c.try_wait().ok().flatten().is_none() {
                if t.elapsed() > Duration::from_secs(5) {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                sleep(Duration::from_millis(10));
            }
        } else if alive(self.pid) {
            // SAFETY: signalling a process we started.
            unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        }
    }
}

/// The pid of the daemon serving `image` (found by its command line).
fn daemon_pid(image: &Path) -> Option<u32> {
    let want = image.as_os_str().as_bytes();
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        let is_ours = args.first().is_some_and(|a| a.ends_with(b"mount-vexfs")) && args.contains(&want);
        (is_ours && alive(pid)).then_some(pid)
    })
}

struct Setup {
    tmp: tempfile::TempDir,
    image: PathBuf,
    mnt: PathBuf,
}

fn setup(size: u64, kernel: bool) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let image = holding_images(|| common::make_image(tmp.path(), "fs.img", size, kernel));
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    Setup { tmp, image, mnt }
}

fn assert_fsck_clean(image: &Path) {
    let r = holding_images(|| common::fsck(image)).expect("fsck opens the image");
    assert!(r.is_clean(), "fsck: {:#?}", r.problems);
}

fn errno<T: std::fmt::Debug>(r: io::Result<T>) -> i32 {
    r.expect_err("the call should fail").raw_os_error().unwrap()
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[derive(Debug, PartialEq)]
struct Node {
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    nlink: u64,
    mtime: (i64, i64),
    rdev: u64,
    data: Option<u32>,
    target: Option<PathBuf>,
}

/// Everything observable of a tree except atimes and ctimes.
fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let kind = match () {
                _ if ft.is_dir() => 'd',
                _ if ft.is_symlink() => 'l',
                _ if ft.is_fifo() => 'p',
                _ if ft.is_char_device() => 'c',
                _ if ft.is_file() => '-',
                _ => '?',
            };
            let node = Node {
                kind,
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                size: m.size(),
                nlink: m.nlink(),
                mtime: (m.mtime(), m.mtime_nsec()),
                rdev: m.rdev(),
                data: (kind == '-').then(|| crc32fast::hash(&fs::read(&p).unwrap())),
                target: (kind == 'l').then(|| fs::read_link(&p).unwrap()),
            };
            out.insert(p.strip_prefix(root).unwrap().display().to_string(), node);
            if kind == 'd' {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn set_times(p: &Path, atime: libc::timespec, mtime: libc::timespec) -> io::Result<()> {
    let ts = [atime, mtime];
    // SAFETY: a valid path and two timespecs.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, cpath(p).as_ptr(), ts.as_ptr(), 0) }).map(|_| ())
}

fn ts(sec: i64, nsec: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }
}

fn statvfs(p: &Path) -> libc::statvfs {
    // SAFETY: statvfs fills the zeroed struct for a valid path.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        check(libc::statvfs(cpath(p).as_ptr(), &mut s)).unwrap();
        s
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn posix_operations_survive_a_remount() {
    if !fuse_usable() {
        return;
    }
    let s = setup(64 * MIB, false);
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    let root = s.mnt.clone();
    let f = root.join("hello.txt");

    // create, write, read, append
    fs::write(&f, b"hello").unwrap();
    OpenOptions::new()
        .append(true)
        .open(&f)
        .unwrap()
        .write_all(b" world")
        .unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"hello world");
    let mut h = OpenOptions::new().read(true).write(true).open(&f).unwrap();
    h.seek(SeekFrom::Start(6)).unwrap();
    h.write_all(b"WORLD").unwrap();
    drop(h);
    assert_eq!(fs::read_to_string(&f).unwrap(), "hello WORLD");

    // O_EXCL on an existing name
    assert_eq!(
        errno(OpenOptions::new().write(true).create_new(true).open(&f)),
        libc::EEXIST
    );
    // open(O_TRUNC)
    fs::write(root.join("trunc"), b"0123456789").unwrap();
    fs::write(root.join("trunc"), b"ab").unwrap();
    assert_eq!(fs::read(root.join("trunc")).unwrap(), b"ab");

    // directories and their link counts
    fs::create_dir(root.join("a")).unwrap();
    fs::create_dir(root.join("a/b")).unwrap();
    assert_eq!(fs::metadata(&root).unwrap().nlink(), 3);
    assert_eq!(fs::metadata(root.join("a")).unwrap().nlink(), 3);
    fs::write(root.join("a/b/f"), b"x").unwrap();
    assert_eq!(errno(fs::remove_dir(root.join("a/b"))), libc::ENOTEMPTY);
    assert_eq!(errno(fs::remove_dir(&f)), libc::ENOTDIR);
    assert_eq!(errno(fs::remove_file(root.join("a"))), libc::EISDIR);
    fs::remove_file(root.join("a/b/f")).unwrap();
    fs::remove_dir(root.join("a/b")).unwrap();
    assert_eq!(fs::metadata(root.join("a")).unwrap().nlink(), 2);
    assert_eq!(errno(fs::metadata(root.join("a/b"))), libc::ENOENT);

    // rename: across directories, over an existing file, a directory
    fs::rename(&f, root.join("a/moved")).unwrap();
    assert_eq!(errno(fs::metadata(&f)), libc::ENOENT);
    fs::write(root.join("victim"), b"old").unwrap();
    fs::rename(root.join("a/moved"), root.join("victim")).unwrap();
    assert_eq!(fs::read_to_string(root.join("victim")).unwrap(), "hello WORLD");
    fs::create_dir(root.join("d1")).unwrap();
    fs::create_dir(root.join("d1/inner")).unwrap();
    fs::rename(root.join("d1/inner"), root.join("a/inner")).unwrap();
    assert_eq!(fs::metadata(root.join("d1")).unwrap().nlink(), 2);
    assert_eq!(fs::metadata(root.join("a")).unwrap().nlink(), 3);
    assert_eq!(errno(fs::rename(root.join("a"), root.join("a/inner/x"))), libc::EINVAL);

    // hard links
    fs::hard_link(root.join("victim"), root.join("a/link")).unwrap();
    assert_eq!(fs::metadata(root.join("victim")).unwrap().nlink(), 2);
    assert_eq!(
        fs::metadata(root.join("victim")).unwrap().ino(),
        fs::metadata(root.join("a/link")).unwrap().ino()
    );
    fs::write(root.join("a/link"), b"via link").unwrap();
    assert_eq!(fs::read(root.join("victim")).unwrap(), b"via link");
    fs::hard_link(root.join("victim"), root.join("d1/third")).unwrap();
    fs::remove_file(root.join("d1/third")).unwrap();
    assert_eq!(fs::metadata(root.join("a/link")).unwrap().nlink(), 2);
    assert_eq!(errno(fs::hard_link(root.join("a"), root.join("dirlink"))), libc::EPERM);

    // symlinks
    std::os::unix::fs::symlink("victim", root.join("sym")).unwrap();
    assert_eq!(fs::read_link(root.join("sym")).unwrap(), Path::new("victim"));
    assert_eq!(fs::read(root.join("sym")).unwrap(), b"via link");
    let long = "t/".repeat(200);
    std::os::unix::fs::symlink(&long, root.join("longsym")).unwrap();
    assert_eq!(fs::read_link(root.join("longsym")).unwrap(), Path::new(&long));

    // chmod, chown, utimes (UTIME_NOW, exact, before the epoch)
    fs::set_permissions(root.join("victim"), fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(fs::metadata(root.join("victim")).unwrap().mode() & 0o7777, 0o640);
    std::os::unix::fs::chown(root.join("victim"), Some(1000), Some(2000)).unwrap();
    let md = fs::metadata(root.join("a/link")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 2000));
    set_times(
        &root.join("victim"),
        ts(1_600_000_000, 123_456_789),
        ts(-2, 500_000_000),
    )
    .unwrap();
    let md = fs::metadata(root.join("victim")).unwrap();
    assert_eq!((md.atime(), md.atime_nsec()), (1_600_000_000, 123_456_789));
    assert_eq!((md.mtime(), md.mtime_nsec()), (-2, 500_000_000));
    set_times(&root.join("trunc"), ts(0, libc::UTIME_NOW), ts(0, libc::UTIME_OMIT)).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((fs::metadata(root.join("trunc")).unwrap().atime() - now).abs() < 5);

    // truncate: shrink, grow (a hole reads as zeros), by path and by fd
    fs::write(root.join("t"), b"abcdefgh").unwrap();
    OpenOptions::new()
        .write(true)
        .open(root.join("t"))
        .unwrap()
        .set_len(3)
        .unwrap();
    assert_eq!(fs::read(root.join("t")).unwrap(), b"abc");
    // SAFETY: a valid path.
    check(unsafe { libc::truncate(cpath(&root.join("t")).as_ptr(), 10_000) }).unwrap();
    let data = fs::read(root.join("t")).unwrap();
    assert_eq!(data.len(), 10_000);
    assert!(data[3..].iter().all(|&b| b == 0));

    // fifo and device nodes
    // SAFETY: valid paths.
    check(unsafe { libc::mkfifo(cpath(&root.join("fifo")).as_ptr(), 0o644) }).unwrap();
    assert!(fs::metadata(root.join("fifo")).unwrap().file_type().is_fifo());
    let dev = libc::makedev(1, 3);
    // SAFETY: valid path.
    check(unsafe { libc::mknod(cpath(&root.join("null")).as_ptr(), libc::S_IFCHR | 0o600, dev) }).unwrap();
    let md = fs::metadata(root.join("null")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), dev);

    // extended attributes
    let name = CString::new("user.color").unwrap();
    // SAFETY: valid path, name and value buffers.
    check(unsafe {
        libc::setxattr(
            cpath(&root.join("t")).as_ptr(),
            name.as_ptr(),
            b"blue".as_ptr().cast(),
            4,
            0,
        )
    })
    .unwrap();
    let mut buf = [0u8; 16];
    // SAFETY: as above, buf is writable for its length.
    let n = check(unsafe {
        libc::getxattr(
            cpath(&root.join("t")).as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        ) as i32
    })
    .unwrap();
    assert_eq!(&buf[..n as usize], b"blue");

    // renameat2: RENAME_NOREPLACE and RENAME_EXCHANGE; names too long
    fs::write(root.join("x1"), b"one").unwrap();
    fs::write(root.join("x2"), b"two").unwrap();
    let rename2 = |a: &str, b: &str, flags: libc::c_uint| {
        let (a, b) = (cpath(&root.join(a)), cpath(&root.join(b)));
        // SAFETY: valid C paths.
        check(unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), flags) })
    };
    assert_eq!(errno(rename2("x1", "x2", libc::RENAME_NOREPLACE)), libc::EEXIST);
    rename2("x1", "x2", libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(fs::read(root.join("x1")).unwrap(), b"two");
    assert_eq!(fs::read(root.join("x2")).unwrap(), b"one");
    fs::remove_file(root.join("x1")).unwrap();
    fs::remove_file(root.join("x2")).unwrap();
    assert_eq!(errno(fs::write(root.join("n".repeat(256)), b"")), libc::ENAMETOOLONG);
    fs::write(root.join("n".repeat(255)), b"").unwrap();
    fs::remove_file(root.join("n".repeat(255))).unwrap();
    // an empty directory replaced by rename
    fs::create_dir(root.join("e1")).unwrap();
    fs::create_dir(root.join("e2")).unwrap();
    fs::rename(root.join("e1"), root.join("e2")).unwrap();
    assert_eq!(errno(fs::metadata(root.join("e1"))), libc::ENOENT);
    fs::remove_dir(root.join("e2")).unwrap();

    // readdir
    let mut names: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["a", "d1", "fifo", "longsym", "null", "sym", "t", "trunc", "victim"]
    );
    // a directory bigger than one readdir reply
    fs::create_dir(root.join("many")).unwrap();
    for i in 0..300 {
        fs::write(root.join(format!("many/file-with-a-long-name-{i:04}")), i.to_string()).unwrap();
    }
    assert_eq!(fs::read_dir(root.join("many")).unwrap().count(), 300);

    let before = snapshot(&root);
    m.unmount();
    assert_fsck_clean(&s.image);

    let m = Mounted::foreground(&s.image, &s.mnt, "");
    assert_eq!(snapshot(&s.mnt), before);
    m.unmount();
    assert_fsck_clean(&s.image);
}

#[test]
fn unlinked_open_file_lives_until_close() {
    if !fuse_usable() {
        return;
    }
    let s = setup(32 * MIB, false);
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    let p = s.mnt.join("doomed");
    let data = pattern(7, 3 * MIB as usize);
    let free0 = statvfs(&s.mnt).f_bfree;
    fs::write(&p, &data).unwrap();
    let mut fd = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    fs::remove_file(&p).unwrap();
    assert_eq!(errno(fs::metadata(&p)), libc::ENOENT);
    assert_eq!(fd.metadata().unwrap().nlink(), 0);
    let mut back = Vec::new();
    fd.read_to_end(&mut back).unwrap();
    assert_eq!(back, data);
    fd.write_all(b"more").unwrap();
    assert!(statvfs(&s.mnt).f_bfree < free0, "blocks freed while still open");
    drop(fd);
    // release is asynchronous: the blocks come back shortly after close
    wait_until("the blocks of the unlinked file to be freed", || {
        statvfs(&s.mnt).f_bfree == free0
    });
    m.unmount();
    assert_fsck_clean(&s.image);
}

#[test]
fn fallocate_seek_hole_and_copy_file_range() {
    if !fuse_usable() {
        return;
    }
    let s = setup(64 * MIB, false);
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    let p = s.mnt.join("sparse");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&p)
        .unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&[1; 4096], 0).unwrap();
    f.write_all_at(&[2; 4096], MIB).unwrap();
    let fd = f.as_raw_fd();
    let seek = |off: i64, whence: i32| {
        // SAFETY: lseek on an open fd.
        check(unsafe { libc::lseek(fd, off, whence) } as i32).map(i64::from)
    };
    let size = (MIB + 4096) as i64;
    assert_eq!(seek(0, libc::SEEK_DATA).unwrap(), 0);
    assert_eq!(seek(0, libc::SEEK_HOLE).unwrap(), 4096);
    assert_eq!(seek(4096, libc::SEEK_DATA).unwrap(), MIB as i64);
    assert_eq!(seek(MIB as i64, libc::SEEK_HOLE).unwrap(), size);
    assert_eq!(errno(seek(size, libc::SEEK_DATA)), libc::ENXIO);
    assert_eq!(errno(seek(size + 10, libc::SEEK_HOLE)), libc::ENXIO);

    // fallocate mode 0 grows the file; blocks are reserved, reads give zeros
    let blocks0 = f.metadata().unwrap().blocks();
    // SAFETY: fallocate on an open fd.
    check(unsafe { libc::fallocate(fd, 0, 2 * MIB as i64, MIB as i64) }).unwrap();
    let md = f.metadata().unwrap();
    assert_eq!(md.len(), 3 * MIB);
    assert!(
        md.blocks() >= blocks0 + 2 * MIB / 512 / 2,
        "{} -> {}",
        blocks0,
        md.blocks()
    );
    let mut buf = vec![9u8; 4096];
    f.read_exact_at(&mut buf, 2 * MIB + 100).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    // KEEP_SIZE leaves the size alone
    // SAFETY: as above.
    check(unsafe { libc::fallocate(fd, libc::FALLOC_FL_KEEP_SIZE, 3 * MIB as i64, MIB as i64) }).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 3 * MIB);
    // punching the first block makes offset 0 a hole
    // SAFETY: as above.
    check(unsafe { libc::fallocate(fd, libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, 0, 4096) }).unwrap();
    assert_eq!(seek(0, libc::SEEK_DATA).unwrap(), MIB as i64);
    f.read_exact_at(&mut buf, 0).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    // an unsupported mode
    // SAFETY: as above.
    assert_eq!(
        errno(check(unsafe {
            libc::fallocate(fd, libc::FALLOC_FL_COLLAPSE_RANGE, 0, 4096)
        })),
        libc::EOPNOTSUPP
    );
    drop(f);

    // copy_file_range, more than one 1 MiB chunk, at offsets
    let src_data = pattern(11, (2 * MIB + 12345) as usize);
    fs::write(s.mnt.join("src"), &src_data).unwrap();
    let src = File::open(s.mnt.join("src")).unwrap();
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(s.mnt.join("dst"))
        .unwrap();
    let (mut off_in, mut off_out): (i64, i64) = (100, 7);
    let mut left = src_data.len() - 100;
    while left > 0 {
        // SAFETY: valid fds and offset pointers.
        let n = check(unsafe {
            libc::copy_file_range(src.as_raw_fd(), &mut off_in, dst.as_raw_fd(), &mut off_out, left, 0) as i32
        })
        .unwrap();
        assert!(n > 0, "copy_file_range made no progress");
        left -= n as usize;
    }
    drop((src, dst));
    let out = fs::read(s.mnt.join("dst")).unwrap();
    assert_eq!(out.len(), 7 + src_data.len() - 100);
    assert!(out[..7].iter().all(|&b| b == 0));
    assert!(out[7..] == src_data[100..], "copied bytes differ");

    m.unmount();
    assert_fsck_clean(&s.image);
}

#[test]
fn twenty_mib_file_and_parallel_writers() {
    if !fuse_usable() {
        return;
    }
    let s = setup(128 * MIB, false);
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    let data = pattern(42, 20 * MIB as usize);
    let sum = crc32fast::hash(&data);
    let mut f = File::create(s.mnt.join("big")).unwrap();
    for chunk in data.chunks(777_777) {
        f.write_all(chunk).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(fs::metadata(s.mnt.join("big")).unwrap().len(), 20 * MIB);
    let mut back = Vec::new();
    File::open(s.mnt.join("big")).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(crc32fast::hash(&back), sum);

    // several writers at once (the session runs several threads)
    let handles: Vec<_> = (0..6u64)
        .map(|i| {
            let p = s.mnt.join(format!("par{i}"));
            std::thread::spawn(move || {
                let d = pattern(100 + i, (2 * MIB + i * 1000) as usize);
                fs::write(&p, &d).unwrap();
                assert!(fs::read(&p).unwrap() == d, "parallel file {i} differs");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }

    m.unmount();
    assert_fsck_clean(&s.image);
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    let mut back = Vec::new();
    File::open(s.mnt.join("big")).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(crc32fast::hash(&back), sum);
    for i in 0..6u64 {
        assert!(fs::read(s.mnt.join(format!("par{i}"))).unwrap() == pattern(100 + i, (2 * MIB + i * 1000) as usize));
    }
    m.unmount();
}

#[test]
fn enospc_keeps_earlier_bytes() {
    if !fuse_usable() {
        return;
    }
    let s = setup(8 * MIB, false);
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    let free0 = statvfs(&s.mnt).f_bfree;
    let data = pattern(3, 16 * MIB as usize);
    let mut f = File::create(s.mnt.join("fill")).unwrap();
    let mut written = 0usize;
    let err = loop {
        match f.write(&data[written..(written + 300_000).min(data.len())]) {
            Ok(0) => panic!("write returned 0"),
            Ok(n) => written += n,
            Err(e) => break e,
        }
        assert!(written < data.len(), "an 8 MiB image took 16 MiB");
    };
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    assert!(written > MIB as usize, "only {written} bytes fit");
    drop(f);
    assert_eq!(fs::metadata(s.mnt.join("fill")).unwrap().len(), written as u64);
    let back = fs::read(s.mnt.join("fill")).unwrap();
    assert!(back == data[..written], "bytes written before ENOSPC changed");
    assert!(
        written as u64 > free0 * 4096 * 3 / 4,
        "ENOSPC after {written} bytes with {free0} blocks free"
    );
    // removing the file gives the space back
    fs::remove_file(s.mnt.join("fill")).unwrap();
    wait_until("the space to come back", || statvfs(&s.mnt).f_bfree == free0);
    fs::write(s.mnt.join("after"), b"fits again").unwrap();
    m.unmount();
    assert_fsck_clean(&s.image);
}

#[test]
fn kernel_layout_files_stop_at_48_kib() {
    if !fuse_usable() {
        return;
    }
    let s = setup(16 * MIB, true);
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    let p = s.mnt.join("k");
    let mut data = pattern(5, 48 * 1024);
    fs::write(&p, &data).unwrap();
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    use std::os::unix::fs::FileExt;
    assert_eq!(errno(f.write_at(b"x", 48 * 1024)), libc::EFBIG);
    // A write across the limit writes what fits (a short count, as Linux).
    assert_eq!(f.write_at(&[7; 8192], 44 * 1024).unwrap(), 4096);
    data[44 * 1024..].fill(7);
    assert_eq!(errno(f.set_len(48 * 1024 + 1)), libc::EFBIG);
    drop(f);
    assert!(fs::read(&p).unwrap() == data, "a refused write changed the file");
    fs::create_dir(s.mnt.join("dir")).unwrap();
    fs::write(s.mnt.join("dir/small"), b"small").unwrap();
    let before = snapshot(&s.mnt);
    m.unmount();
    assert_fsck_clean(&s.image);
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    assert_eq!(snapshot(&s.mnt), before);
    m.unmount();
}

#[test]
fn second_mount_refused_and_type_is_fuse_vexfs() {
    if !fuse_usable() {
        return;
    }
    let s = setup(32 * MIB, false);
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    let (_, ty, src, _) = mount_of(&s.mnt).unwrap();
    assert_eq!(ty, "fuse.vexfs");
    assert_eq!(Path::new(&src), fs::canonicalize(&s.image).unwrap());
    if let Ok(out) = output(Command::new("df").arg("-T").arg(&s.mnt)) {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("fuse.vexfs"), "df -T: {text}");
    }

    // the same image again, read-write and read-only: refused, exit 32
    let other = s.tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    for opts in ["", "ro"] {
        let out = output(&mut mount_cmd(&s.image, &other, opts, false)).unwrap();
        assert_eq!(out.status.code(), Some(32));
        let err = String::from_utf8_lossy(&out.stderr);
        let canon = fs::canonicalize(&s.image).unwrap();
        assert!(
            err.contains(&format!(
                "mount.vexfs: {} is already mounted or in use",
                canon.display()
            )),
            "{err}"
        );
        assert!(!is_mounted(&other));
    }
    // other failures: a missing image, a missing mount point, a bad option
    let out = output(&mut mount_cmd(&s.tmp.path().join("nope.img"), &other, "", false)).unwrap();
    assert_eq!(out.status.code(), Some(32));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("mount.vexfs: "));
    let out = output(&mut mount_cmd(&s.image, &s.tmp.path().join("nodir"), "", false)).unwrap();
    assert_eq!(out.status.code(), Some(32));
    let out = output(&mut mount_cmd(&s.image, &other, "frobnicate", false)).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown mount option 'frobnicate'"));

    // statfs numbers are the core's
    fs::write(s.mnt.join("some"), pattern(1, 100_000)).unwrap();
    let sv = statvfs(&s.mnt);
    m.unmount();
    let core = holding_images(|| Fs::open(&s.image, true).unwrap().statfs().unwrap());
    assert_eq!(sv.f_bsize, 4096);
    assert_eq!(sv.f_frsize, 4096);
    assert_eq!(sv.f_blocks, core.blocks);
    assert_eq!(sv.f_bfree, core.free_blocks);
    assert_eq!(sv.f_bavail, core.free_blocks);
    assert_eq!(sv.f_files, core.files);
    assert_eq!(sv.f_ffree, core.free_files);
    assert_eq!(sv.f_namemax, 255);
    assert_fsck_clean(&s.image);
}

#[test]
fn daemon_stops_on_sigterm_and_on_umount() {
    if !fuse_usable() {
        return;
    }
    let s = setup(32 * MIB, false);
    let image = fs::canonicalize(&s.image).unwrap();

    // SIGTERM: unmounts, syncs, exits
    let m = Mounted::daemon(&image, &s.mnt, "");
    fs::write(s.mnt.join("one"), b"written before SIGTERM").unwrap();
    // SAFETY: signalling the daemon this test started.
    unsafe { libc::kill(m.pid as i32, libc::SIGTERM) };
    wait_until("the mount to go away after SIGTERM", || !is_mounted(&s.mnt));
    wait_until("the daemon to exit after SIGTERM", || !alive(m.pid));
    drop(m);
    assert_fsck_clean(&image);

    // umount DIR: the daemon notices and exits
    let m = Mounted::daemon(&image, &s.mnt, "");
    assert_eq!(fs::read(s.mnt.join("one")).unwrap(), b"written before SIGTERM");
    fs::write(s.mnt.join("two"), b"written before umount").unwrap();
    m.unmount();
    // the lock is free again: the image opens read-write
    holding_images(|| drop(Fs::open(&image, false).expect("the daemon released the image")));
    assert_fsck_clean(&image);

    // SIGTERM with a file open: lazy unmount, the daemon ends at the last close
    let m = Mounted::daemon(&image, &s.mnt, "");
    let f = File::open(s.mnt.join("two")).unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(m.pid as i32, libc::SIGTERM) };
    wait_until("the mount to be detached", || !is_mounted(&s.mnt));
    assert!(alive(m.pid), "the daemon must serve the open file");
    let mut text = String::new();
    (&f).read_to_string(&mut text).unwrap();
    assert_eq!(text, "written before umount");
    drop(f);
    wait_until("the daemon to exit after the last close", || !alive(m.pid));
    drop(m);
    assert_fsck_clean(&image);
}

#[test]
fn read_only_mount_refuses_writes() {
    if !fuse_usable() {
        return;
    }
    let s = setup(16 * MIB, false);
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    fs::write(s.mnt.join("keep"), b"kept").unwrap();
    m.unmount();
    let m = Mounted::foreground(&s.image, &s.mnt, "ro,noatime,nodev,nosuid,defaults");
    let (_, _, _, opts) = mount_of(&s.mnt).unwrap();
    assert!(opts.split(',').any(|o| o == "ro"), "{opts}");
    assert_eq!(fs::read(s.mnt.join("keep")).unwrap(), b"kept");
    assert_eq!(errno(fs::write(s.mnt.join("new"), b"x")), libc::EROFS);
    assert_eq!(errno(fs::remove_file(s.mnt.join("keep"))), libc::EROFS);
    m.unmount();
    assert_fsck_clean(&s.image);
}

/// Run `args` as uid/gid 1000 with these supplementary groups; Ok(()) when it succeeds.
fn as_user(groups: &[u32], args: &[&str]) -> Result<(), String> {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=1000", "--regid=1000"]);
    if groups.is_empty() {
        c.arg("--clear-groups");
    } else {
        let g: Vec<String> = groups.iter().map(u32::to_string).collect();
        c.arg(format!("--groups={}", g.join(",")));
    }
    let out = output(c.args(args)).map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn permissions_of_other_users() {
    if !fuse_usable() {
        return;
    }
    if !is_root() || output(Command::new("setpriv").arg("--version")).is_err() {
        println!("SKIPPED: needs root and setpriv");
        return;
    }
    let s = setup(16 * MIB, false);
    // the temp dir must be reachable by uid 1000
    fs::set_permissions(s.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for opts in ["allow_other", "allow_other,default_permissions"] {
        let m = Mounted::foreground(&s.image, &s.mnt, opts);
        let p = |n: &str| s.mnt.join(n).display().to_string();
        fs::set_permissions(&s.mnt, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(p("secret"), b"s").unwrap();
        fs::set_permissions(p("secret"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(p("grp"), b"g").unwrap();
        std::os::unix::fs::chown(p("grp"), Some(0), Some(5000)).unwrap();
        fs::set_permissions(p("grp"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::write(p("ro"), b"r").unwrap();
        fs::set_permissions(p("ro"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::create_dir(p("home")).unwrap();
        std::os::unix::fs::chown(p("home"), Some(1000), Some(1000)).unwrap();

        assert!(
            as_user(&[], &["cat", &p("secret")]).is_err(),
            "{opts}: read of 0600 root file"
        );
        assert!(as_user(&[], &["cat", &p("ro")]).is_ok(), "{opts}");
        assert!(
            as_user(&[5000], &["cat", &p("grp")]).is_ok(),
            "{opts}: supplementary group"
        );
        assert!(as_user(&[], &["cat", &p("grp")]).is_err(), "{opts}: no group");
        assert!(
            as_user(&[], &["sh", "-c", &format!("echo x >> {}", p("ro"))]).is_err(),
            "{opts}"
        );
        assert!(
            as_user(&[], &["touch", &p("newfile")]).is_err(),
            "{opts}: create in root dir"
        );
        assert!(
            as_user(&[], &["rm", "-f", &p("ro")]).is_err(),
            "{opts}: unlink in root dir"
        );
        assert!(
            as_user(&[], &["chmod", "777", &p("ro")]).is_err(),
            "{opts}: chmod not owner"
        );
        assert!(
            as_user(&[], &["touch", &p("home/mine")]).is_ok(),
            "{opts}: create in own dir"
        );
        // truncate(2) by path without write permission (the adapter checks it)
        let perl = format!("truncate('{}', 0) or exit 1", p("ro"));
        assert!(as_user(&[], &["perl", "-e", &perl]).is_err(), "{opts}: truncate(2)");
        assert_eq!(fs::read(p("ro")).unwrap(), b"r");
        let md = fs::metadata(p("home/mine")).unwrap();
        assert_eq!((md.uid(), md.gid()), (1000, 1000));
        // a non-owner who may write a setuid file writes it; the bits go
        fs::write(p("suid"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(p("suid"), fs::Permissions::from_mode(0o6777)).unwrap();
        let append = format!("echo more >> {}", p("suid"));
        as_user(&[], &["sh", "-c", &append]).unwrap_or_else(|e| panic!("{opts}: write to a setuid file: {e}"));
        assert_eq!(fs::metadata(p("suid")).unwrap().mode() & 0o7777, 0o777, "{opts}");
        assert_eq!(fs::read(p("suid")).unwrap(), b"#!/bin/sh\nmore\n");
        // but may not clear those bits with chmod without write permission
        fs::set_permissions(p("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
        assert!(
            as_user(&[], &["chmod", "0755", &p("suid")]).is_err(),
            "{opts}: chmod u-s by non-owner"
        );
        assert_eq!(fs::metadata(p("suid")).unwrap().mode() & 0o7777, 0o4755);

        for n in ["secret", "grp", "ro", "home/mine", "suid"] {
            fs::remove_file(p(n)).unwrap();
        }
        fs::remove_dir(p("home")).unwrap();
        m.unmount();
    }
    assert_fsck_clean(&s.image);
}

#[test]
fn killed_daemon_orphans_are_reclaimed_at_the_next_mount() {
    if !fuse_usable() {
        return;
    }
    let s = setup(32 * MIB, false);
    let mut m = Mounted::foreground(&s.image, &s.mnt, "");
    let free0 = statvfs(&s.mnt).f_bfree;
    fs::write(s.mnt.join("kept"), b"survives").unwrap();
    let free1 = statvfs(&s.mnt).f_bfree;
    let p = s.mnt.join("orphan");
    fs::write(&p, pattern(9, 2 * MIB as usize)).unwrap();
    let f = File::open(&p).unwrap();
    fs::remove_file(&p).unwrap();
    // a durability point: everything so far survives the crash
    f.sync_all().unwrap();
    // crash: the daemon dies with the unlinked file still open
    m.child.as_mut().unwrap().kill().unwrap();
    m.child.take().unwrap().wait().unwrap();
    drop(f);
    umount(&s.mnt, true).unwrap();
    drop(m);
    // the next read-write mount frees the orphan
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    assert_eq!(fs::read(s.mnt.join("kept")).unwrap(), b"survives");
    assert_eq!(statvfs(&s.mnt).f_bfree, free1);
    assert!(free1 < free0);
    m.unmount();
    assert_fsck_clean(&s.image);
}

#[test]
fn a_damaged_inode_gives_eio_and_the_rest_of_the_mount_works() {
    if !fuse_usable() {
        return;
    }
    let s = setup(16 * MIB, false);
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    for name in ["a", "b", "c"] {
        fs::write(s.mnt.join(name), name.as_bytes()).unwrap();
    }
    let bad_ino = fs::metadata(s.mnt.join("b")).unwrap().ino();
    m.unmount();
    // Damage inode "b" offline (its checksum no longer matches).
    let g = {
        let img = holding_images(|| vexfs::image::Image::open(&s.image, vexfs::image::Mode::ReadOnly)).unwrap();
        img.geometry().clone()
    };
    let off = g.inode_offset(vexfs::format::inode::InodeNo::new(bad_ino as u32, g.inodes_count).unwrap());
    common::flip(&s.image, off + 20, 0x40);
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    let mut names: Vec<String> = fs::read_dir(&s.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"], "the listing still shows every name");
    assert_eq!(errno(fs::metadata(s.mnt.join("b"))), libc::EIO);
    assert_eq!(fs::read(s.mnt.join("a")).unwrap(), b"a");
    assert_eq!(fs::read(s.mnt.join("c")).unwrap(), b"c");
    fs::write(s.mnt.join("d"), b"d").unwrap();
    m.unmount();
}

/// Names and contents whose fsync has returned.
type Acked = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

#[test]
fn kill_9_under_load_keeps_every_fsynced_change() {
    if !fuse_usable() {
        return;
    }
    let s = setup(64 * MIB, false);
    let mut m = Mounted::foreground(&s.image, &s.mnt, "");
    let acked: Acked = Default::default();
    let writer = {
        let (dir, acked) = (s.mnt.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut batch = Vec::new();
            for i in 0u64.. {
                let name = format!("f{i:05}");
                let data = pattern(i, 3000 + (i as usize % 5) * 4096);
                let ok = (|| -> io::Result<()> {
                    fs::write(dir.join(&name), &data)?;
                    if i % 3 == 0 {
                        fs::rename(dir.join(&name), dir.join(format!("r{name}")))?;
                        fs::remove_file(dir.join(format!("r{name}")))?;
                    } else {
                        batch.push((name.clone(), data.clone()));
                    }
                    if i % 10 == 9 {
                        // Durability point for the names and their data.
                        for (n, _) in &batch {
                            File::open(dir.join(n))?.sync_all()?;
                        }
                        File::open(&dir)?.sync_all()?;
                        acked.lock().unwrap().append(&mut batch);
                    }
                    Ok(())
                })();
                if ok.is_err() {
                    return;
                }
            }
        })
    };
    // Let the load run, then kill the daemon with SIGKILL mid-flight.
    wait_until("some fsync'd files", || acked.lock().unwrap().len() >= 60);
    m.child.as_mut().unwrap().kill().unwrap();
    m.child.take().unwrap().wait().unwrap();
    writer.join().unwrap();
    umount(&s.mnt, true).unwrap();
    drop(m);
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let m = Mounted::foreground(&s.image, &s.mnt, "");
    for (name, data) in &acked {
        assert_eq!(
            &fs::read(s.mnt.join(name)).unwrap_or_default(),
            data,
            "{name} was fsync'd"
        );
    }
    m.unmount();
    assert_fsck_clean(&s.image);
}

/// `ls -a /.vexfs` lists `..` (regression: READDIRPLUS skipped it, its
/// attributes being the root's and not a control file's), and listings
/// stay right with OPENDIR answered ENOSYS (the kernel caches them).
#[test]
fn control_directory_lists_its_parent_and_listings_follow_changes() {
    if !fuse_usable() {
        return;
    }
    let s = setup(32 * MIB, false);
    let _m = Mounted::foreground(&s.image, &s.mnt, "");
    let ls = |p: &Path| {
        let out = output(Command::new("ls").arg("-a").arg(p)).unwrap();
        assert!(out.status.success(), "ls -a {}", p.display());
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ls(&s.mnt.join(".vexfs")),
        [".", "..", "collections", "events", "search"]
    );
    let d = s.mnt.join("d");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("a"), b"x").unwrap();
    assert_eq!(ls(&d), [".", "..", "a"]);
    fs::write(d.join("b"), b"x").unwrap();
    fs::remove_file(d.join("a")).unwrap();
    assert_eq!(ls(&d), [".", "..", "b"], "a cached listing was not dropped");
}
