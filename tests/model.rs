//! Model-based tests: random operation sequences run against the VexFS core
//! and, through the kernel and its caches, against a real FUSE mount, each
//! beside a plain directory on the host filesystem; results, listings and
//! errno values must agree, and fsck must find the image clean at the end.

mod common;

use common::*;
use proptest::prelude::*;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use vexfs::format::inode::FileType;
use vexfs::fs::attrs::SetAttr;
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;

const NAMES: [&str; 4] = ["a", "b", "c", "d"];
const DIRS: [&str; 3] = ["", "d", "d/d"];
/// Symlink targets; none ever exists, so every symlink dangles and
/// following one (as a path component, or by open, stat or setxattr) is
/// ENOENT, which the core model can state without a path walker.
const TARGETS: [&str; 2] = ["nowhere", "../gone/x"];
const XATTRS: [&str; 2] = ["user.k0", "user.k1"];

#[derive(Debug, Clone)]
enum Op {
    Create(usize, usize),
    Mkdir(usize, usize),
    Write(usize, usize, u16, u8, u16),
    Truncate(usize, usize, u16),
    Unlink(usize, usize),
    Rmdir(usize, usize),
    Rename(usize, usize, usize, usize),
    Link(usize, usize, usize, usize),
    Read(usize, usize),
    List(usize),
    Symlink(usize, usize, usize),
    ReadLink(usize, usize),
    SetX(usize, usize, usize, u8, i32),
    GetX(usize, usize, usize),
    RemoveX(usize, usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let at = (0..DIRS.len(), 0..NAMES.len());
    prop_oneof![
        at.clone().prop_map(|(d, n)| Op::Create(d, n)),
        at.clone().prop_map(|(d, n)| Op::Mkdir(d, n)),
        (at.clone(), any::<u16>(), any::<u8>(), 1..9000u16).prop_map(|((d, n), o, b, l)| Op::Write(d, n, o, b, l)),
        (at.clone(), any::<u16>()).prop_map(|((d, n), s)| Op::Truncate(d, n, s)),
        at.clone().prop_map(|(d, n)| Op::Unlink(d, n)),
        at.clone().prop_map(|(d, n)| Op::Rmdir(d, n)),
        (at.clone(), at.clone()).prop_map(|((d, n), (e, m))| Op::Rename(d, n, e, m)),
        (at.clone(), at.clone()).prop_map(|((d, n), (e, m))| Op::Link(d, n, e, m)),
        at.clone().prop_map(|(d, n)| Op::Read(d, n)),
        (0..DIRS.len()).prop_map(Op::List),
        (at.clone(), 0..TARGETS.len()).prop_map(|((d, n), t)| Op::Symlink(d, n, t)),
        at.clone().prop_map(|(d, n)| Op::ReadLink(d, n)),
        (at.clone(), 0..XATTRS.len(), any::<u8>(), 0..3i32).prop_map(|((d, n), k, v, f)| Op::SetX(d, n, k, v, f)),
        (at.clone(), 0..XATTRS.len()).prop_map(|((d, n), k)| Op::GetX(d, n, k)),
        (at, 0..XATTRS.len()).prop_map(|((d, n), k)| Op::RemoveX(d, n, k)),
    ]
}

fn rel(d: usize, n: usize) -> String {
    if DIRS[d].is_empty() {
        NAMES[n].to_string()
    } else {
        format!("{}/{}", DIRS[d], NAMES[n])
    }
}

/// Resolve a relative path in the core without following a symlink in
/// the last component; Err(errno). A symlink met on the way dangles
/// (TARGETS), so following it is ENOENT.
fn resolve(fs: &Fs, path: &str) -> Result<u64, i32> {
    let mut cur = 1u64;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if fs.getattr(cur).map_err(|e| e.errno())?.kind == FileType::Symlink {
            return Err(libc::ENOENT);
        }
        cur = fs
            .lookup(&Ctx::root(), cur, part.as_bytes())
            .map_err(|e| e.errno())?
            .ino
            .into();
    }
    Ok(cur)
}

/// Resolve following a symlink in the last component too (open, stat,
/// setxattr do): a dangling one is ENOENT.
fn resolve_follow(fs: &Fs, path: &str) -> Result<u64, i32> {
    let ino = resolve(fs, path)?;
    match fs.getattr(ino).map_err(|e| e.errno())?.kind {
        FileType::Symlink => Err(libc::ENOENT),
        _ => Ok(ino),
    }
}

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// Run one op on the core; the outcome as Ok(summary) or Err(errno).
fn on_core(fs: &Fs, op: &Op) -> Result<Vec<u8>, i32> {
    let c = Ctx::root();
    let e = |r: vexfs::Result<()>| r.map_err(|e| e.errno());
    let parent_of = |p: &str| resolve_follow(fs, split(p).0);
    match op {
        Op::Create(d, n) | Op::Mkdir(d, n) => {
            let p = rel(*d, *n);
            let kind = if matches!(op, Op::Create(..)) {
                NewNode::File
            } else {
                NewNode::Dir
            };
            fs.create(&c, parent_of(&p)?, split(&p).1.as_bytes(), 0o755, kind)
                .map(|_| vec![])
                .map_err(|e| e.errno())
        }
        Op::Write(d, n, off, byte, len) => {
            let ino = resolve_follow(fs, &rel(*d, *n))?;
            fs.write_data(ino, u64::from(*off), &vec![*byte; usize::from(*len)])
                .map(|_| vec![])
                .map_err(|e| e.errno())
        }
        Op::Truncate(d, n, size) => {
            let ino = resolve_follow(fs, &rel(*d, *n))?;
            fs.setattr(
                &c,
                ino,
                &SetAttr {
                    size: Some(u64::from(*size)),
                    ..Default::default()
                },
            )
            .map(|_| vec![])
            .map_err(|e| e.errno())
        }
        Op::Unlink(d, n) | Op::Rmdir(d, n) => {
            let p = rel(*d, *n);
            let parent = parent_of(&p)?;
            let name = split(&p).1.as_bytes();
            e(if matches!(op, Op::Unlink(..)) {
                fs.unlink(&c, parent, name)
            } else {
                fs.rmdir(&c, parent, name)
            })
            .map(|_| vec![])
        }
        Op::Rename(d, n, e2, m) | Op::Link(d, n, e2, m) => {
            let (from, to) = (rel(*d, *n), rel(*e2, *m));
            // link(2) resolves its source completely before the target's
            // directory; rename(2) looks up both directories first.
            if matches!(op, Op::Link(..)) {
                resolve(fs, &from)?;
            }
            let dst_parent = parent_of(&to)?;
            if matches!(op, Op::Rename(..)) {
                let sp = parent_of(&from)?;
                e(fs.rename(
                    &c,
                    sp,
                    split(&from).1.as_bytes(),
                    dst_parent,
                    split(&to).1.as_bytes(),
                    0,
                ))
                .map(|_| vec![])
            } else {
                let ino = resolve(fs, &from)?;
                fs.link(&c, ino, dst_parent, split(&to).1.as_bytes())
                    .map(|_| vec![])
                    .map_err(|e| e.errno())
            }
        }
        Op::Read(d, n) => {
            let ino = resolve_follow(fs, &rel(*d, *n))?;
            let a = fs.getattr(ino).map_err(|e| e.errno())?;
            if a.kind == FileType::Directory {
                return Ok(b"dir".to_vec());
            }
            let mut out = fs.read_data(ino, 0, 1 << 20).map_err(|e| e.errno())?;
            out.extend_from_slice(&a.nlink.to_le_bytes());
            Ok(out)
        }
        Op::List(d) => {
            let ino = resolve_follow(fs, DIRS[*d])?;
            let mut names: Vec<Vec<u8>> = fs
                .readdir(ino, 0, usize::MAX)
                .map_err(|e| e.errno())?
                .into_iter()
                .map(|e| e.name)
                .filter(|n| n != b"." && n != b"..")
                .collect();
            names.sort();
            Ok(names.join(&b'/'))
        }
        Op::Symlink(d, n, t) => {
            let p = rel(*d, *n);
            let target = NewNode::Symlink {
                target: TARGETS[*t].as_bytes(),
            };
            fs.create(&c, parent_of(&p)?, split(&p).1.as_bytes(), 0o777, target)
                .map(|_| vec![])
                .map_err(|e| e.errno())
        }
        Op::ReadLink(d, n) => {
            let ino = resolve(fs, &rel(*d, *n))?;
            fs.readlink(ino).map_err(|e| e.errno())
        }
        Op::SetX(d, n, k, v, flags) => {
            let ino = resolve_follow(fs, &rel(*d, *n))?;
            e(fs.setxattr(&c, ino, XATTRS[*k].as_bytes(), &[*v; 3], *flags)).map(|_| vec![])
        }
        Op::GetX(d, n, k) => {
            let ino = resolve_follow(fs, &rel(*d, *n))?;
            fs.getxattr(&c, ino, XATTRS[*k].as_bytes()).map_err(|e| e.errno())
        }
        Op::RemoveX(d, n, k) => {
            let ino = resolve_follow(fs, &rel(*d, *n))?;
            e(fs.removexattr(&c, ino, XATTRS[*k].as_bytes())).map(|_| vec![])
        }
    }
}

fn errno(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// The same op on the host directory.
fn on_host(root: &Path, op: &Op) -> Result<Vec<u8>, i32> {
    let p = |d: usize, n: usize| -> PathBuf { root.join(rel(d, n)) };
    match op {
        Op::Create(d, n) => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p(*d, *n))
            .map(|_| vec![])
            .map_err(errno),
        Op::Mkdir(d, n) => std::fs::create_dir(p(*d, *n)).map(|_| vec![]).map_err(errno),
        Op::Write(d, n, off, byte, len) => {
            let f = std::fs::OpenOptions::new().write(true).open(p(*d, *n)).map_err(errno)?;
            f.write_all_at(&vec![*byte; usize::from(*len)], u64::from(*off))
                .map(|_| vec![])
                .map_err(errno)
        }
        Op::Truncate(d, n, s) => {
            let f = std::fs::OpenOptions::new().write(true).open(p(*d, *n)).map_err(errno)?;
            f.set_len(u64::from(*s)).map(|_| vec![]).map_err(errno)
        }
        Op::Unlink(d, n) => std::fs::remove_file(p(*d, *n)).map(|_| vec![]).map_err(errno),
        Op::Rmdir(d, n) => std::fs::remove_dir(p(*d, *n)).map(|_| vec![]).map_err(errno),
        Op::Rename(d, n, e, m) => std::fs::rename(p(*d, *n), p(*e, *m)).map(|_| vec![]).map_err(errno),
        Op::Link(d, n, e, m) => std::fs::hard_link(p(*d, *n), p(*e, *m)).map(|_| vec![]).map_err(errno),
        Op::Read(d, n) => {
            let meta = std::fs::metadata(p(*d, *n)).map_err(errno)?;
            if meta.is_dir() {
                return Ok(b"dir".to_vec());
            }
            let mut out = std::fs::read(p(*d, *n)).map_err(errno)?;
            out.extend_from_slice(&(meta.nlink() as u32).to_le_bytes());
            Ok(out)
        }
        Op::List(d) => {
            let mut names = Vec::new();
            for e in std::fs::read_dir(root.join(DIRS[*d])).map_err(errno)? {
                names.push(e.map_err(errno)?.file_name().as_bytes().to_vec());
            }
            names.sort();
            Ok(names.join(&b'/'))
        }
        Op::Symlink(d, n, t) => std::os::unix::fs::symlink(TARGETS[*t], p(*d, *n))
            .map(|_| vec![])
            .map_err(errno),
        Op::ReadLink(d, n) => std::fs::read_link(p(*d, *n))
            .map(|t| t.as_os_str().as_bytes().to_vec())
            .map_err(errno),
        Op::SetX(d, n, k, v, flags) => {
            let f = rustix::fs::XattrFlags::from_bits_truncate(*flags as u32);
            rustix::fs::setxattr(p(*d, *n), XATTRS[*k], &[*v; 3], f)
                .map(|_| vec![])
                .map_err(|e| e.raw_os_error())
        }
        Op::GetX(d, n, k) => {
            let mut buf = vec![0u8; 64];
            let len = rustix::fs::getxattr(p(*d, *n), XATTRS[*k], &mut buf[..]).map_err(|e| e.raw_os_error())?;
            buf.truncate(len);
            Ok(buf)
        }
        Op::RemoveX(d, n, k) => rustix::fs::removexattr(p(*d, *n), XATTRS[*k])
            .map(|_| vec![])
            .map_err(|e| e.raw_os_error()),
    }
}

/// One test at a time: a mount child forked by one test would inherit
/// (until its exec) the image descriptor, and the flock, of the other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(64)))]

    #[test]
    fn core_matches_the_host_filesystem(ops in proptest::collection::vec(op(), 1..60)) {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let img = make_image(dir.path(), "m.img", 16 << 20, false);
        let host = dir.path().join("host");
        std::fs::create_dir(&host).unwrap();
        let fs = Fs::open(&img, false).unwrap();
        for (i, op) in ops.iter().enumerate() {
            let want = on_host(&host, op);
            let got = on_core(&fs, op);
            prop_assert_eq!(&got, &want, "op #{} {:?}", i, op);
        }
        drop(fs);
        let r = fsck(&img).unwrap();
        prop_assert!(r.is_clean(), "fsck: {:?}", r.problems);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(24)))]

    /// The same through the kernel: its attribute and entry caches, the
    /// adapter, and remount (every outcome again after it).
    #[test]
    fn the_mount_matches_the_host_filesystem(ops in proptest::collection::vec(op(), 1..60)) {
        if !common::fuse::fuse_usable() {
            return Ok(());
        }
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let img = make_image(dir.path(), "m.img", 16 << 20, false);
        let (host, mnt) = (dir.path().join("host"), dir.path().join("mnt"));
        std::fs::create_dir(&host).unwrap();
        std::fs::create_dir(&mnt).unwrap();
        let m = common::fuse::mount(&img, &mnt);
        for (i, op) in ops.iter().enumerate() {
            let want = on_host(&host, op);
            let got = on_host(&mnt, op);
            prop_assert_eq!(&got, &want, "op #{} {:?}", i, op);
        }
        common::fuse::unmount(m);
        let m = common::fuse::mount(&img, &mnt);
        for d in 0..DIRS.len() {
            for n in 0..NAMES.len() {
                let op = Op::Read(d, n);
                prop_assert_eq!(on_host(&mnt, &op), on_host(&host, &op), "after remount: {:?}", op);
            }
            prop_assert_eq!(on_host(&mnt, &Op::List(d)), on_host(&host, &Op::List(d)), "after remount: list {}", d);
        }
        common::fuse::unmount(m);
        let r = fsck(&img).unwrap();
        prop_assert!(r.is_clean(), "fsck: {:?}", r.problems);
    }
}
