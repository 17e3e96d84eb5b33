//! The floor filesystem served by `fuse-floor` (tools/src/bin/fuse_floor.rs): an empty in-memory
//! filesystem that does no real work (no disk, no journal, no checksums, one mutex over a hash
//! map), spoken to over the same fuser 0.18 session as a VexFS mount: the capabilities of
//! [`vexfs::fuse::negotiate_session`], the same [`TTL`] for entries, attributes and negative
//! entries (a missing name is an entry of inode 0, as VexFS answers it), and cached directory
//! listings (OPENDIR answered ENOSYS once the kernel checks permissions, as VexFS answers it;
//! else `FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE`). What it measures is the lower bound on what
//! any FUSE filesystem built with fuser can do on this kernel: its figures are the cost of the
//! round trips, not of a filesystem's work. `bench-fs --floor` runs the metadata and tree
//! workloads on it next to VexFS and ext4.
//!
//! With FUSE_POSIX_ACL the kernel checks permissions itself (it implies `default_permissions`),
//! so nothing here checks them; new nodes get the caller's uid and gid and `mode & !umask`
//! (FUSE_DONT_MASK leaves the umask to the filesystem). There are no xattrs and no ACLs.
//! Inode numbers are never reused (generation 0); a node lives until it has no links and the
//! kernel has forgotten every lookup of it.

mod requests;

use fuser::{Errno, FileAttr, FileType, Generation, INodeNo, RenameFlags, ReplyEntry, Request, TimeOrNow};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;
use std::time::SystemTime;
pub use vexfs::fuse::TTL;

type Res<T> = Result<T, Errno>;

const ROOT: u64 = 1;
/// Readdir cookies of `.` and `..`; entries count from `FIRST_COOKIE`.
const FIRST_COOKIE: u64 = 3;
/// Largest file. Why: file data lives in this process's memory; the
/// workloads write files of at most a few MiB (fio's files are not put
/// on the floor by bench-fs).
const MAX_FILE_BYTES: u64 = 4 << 30;
/// Blocks statfs reports, all free (the bound of one large file, four
/// times over: nothing here is meant to hold more).
pub const STATFS_BLOCKS: u64 = 4 * MAX_FILE_BYTES / 4096;

/// ENAMETOOLONG past VexFS's longest name (255 bytes, as ext4's), as VexFS answers.
fn check_name(name: &[u8]) -> Res<()> {
    if name.len() > vexfs::format::MAX_NAME_LEN {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// Grow or shrink `data` to `len` bytes: EFBIG past [`MAX_FILE_BYTES`],
/// ENOSPC when the memory cannot be had (instead of aborting the server).
fn resize_file(data: &mut Vec<u8>, len: u64) -> Res<()> {
    if len > MAX_FILE_BYTES {
        return Err(Errno::EFBIG);
    }
    let len = len as usize;
    data.try_reserve(len.saturating_sub(data.len()))
        .map_err(|_| Errno::ENOSPC)?;
    data.resize(len, 0);
    Ok(())
}

/// A directory: names to (cookie, inode), and cookies in order for readdir. A cookie is given
/// once per insertion, so a listing resumes after the last entry it returned however the
/// directory changed meanwhile.
struct Dir {
    parent: u64,
    names: HashMap<Box<[u8]>, (u64, u64)>,
    order: BTreeMap<u64, Box<[u8]>>,
    next: u64,
}

/// What a node holds: a file's data, a directory's entries, a symlink's target; a FIFO, socket
/// or device node has only its type and rdev.
enum Body {
    File(Vec<u8>),
    Dir(Dir),
    Symlink(Box<[u8]>),
    Special(FileType, u32),
}

impl Body {
    fn kind(&self) -> FileType {
        match self {
            Body::File(_) => FileType::RegularFile,
            Body::Dir(_) => FileType::Directory,
            Body::Symlink(_) => FileType::Symlink,
            Body::Special(k, _) => *k,
        }
    }
}

/// Readdir cookies of an entry list and the inodes: (cookie, name, inode).
type Listing = Vec<(u64, Box<[u8]>, u64)>;

struct Node {
    attr: FileAttr,
    body: Body,
    /// Lookups the kernel holds (each entry reply adds one, FORGET takes them back).
    lookups: u64,
}

struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
}

/// The floor filesystem.
pub struct Floor {
    state: Mutex<State>,
    /// OPENDIR is answered ENOSYS, as VexFS answers it (set at INIT).
    no_opendir: bool,
}

fn new_attr(ino: u64, kind: FileType, perm: u16, uid: u32, gid: u32, rdev: u32) -> FileAttr {
    let t = SystemTime::now();
    let dir = kind == FileType::Directory;
    FileAttr {
        ino: INodeNo(ino),
        size: if dir { 4096 } else { 0 },
        blocks: if dir { 8 } else { 0 },
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        kind,
        perm,
        nlink: if dir { 2 } else { 1 },
        uid,
        gid,
        rdev,
        blksize: 4096,
        flags: 0,
    }
}

fn set_size(a: &mut FileAttr, size: u64) {
    a.size = size;
    a.blocks = size.div_ceil(512);
}

fn touch(a: &mut FileAttr) {
    let t = SystemTime::now();
    a.mtime = t;
    a.ctime = t;
}

impl Dir {
    fn new(parent: u64) -> Dir {
        Dir {
            parent,
            names: HashMap::new(),
            order: BTreeMap::new(),
            next: FIRST_COOKIE,
        }
    }

    fn insert(&mut self, name: &[u8], ino: u64) {
        let c = self.next;
        self.next += 1;
        self.names.insert(name.into(), (c, ino));
        self.order.insert(c, name.into());
    }

    fn remove(&mut self, name: &[u8]) -> Option<u64> {
        let (c, ino) = self.names.remove(name)?;
        self.order.remove(&c);
        Some(ino)
    }
}

impl State {
    fn node(&mut self, ino: u64) -> Res<&mut Node> {
        self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn dir(&mut self, ino: u64) -> Res<&mut Dir> {
        match &mut self.node(ino)?.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn child(&mut self, parent: u64, name: &[u8]) -> Res<Option<u64>> {
        Ok(self.dir(parent)?.names.get(name).map(|&(_, ino)| ino))
    }

    /// An entry reply for `ino`: the kernel now holds one more lookup of it.
    fn entry(&mut self, ino: u64) -> Res<FileAttr> {
        let n = self.node(ino)?;
        n.lookups += 1;
        Ok(n.attr)
    }

    /// The parent's times and link count after an entry of it was added or removed.
    fn changed(&mut self, parent: u64, subdirs: i32) -> Res<()> {
        let a = &mut self.node(parent)?.attr;
        touch(a);
        a.nlink = a.nlink.saturating_add_signed(subdirs);
        Ok(())
    }

    /// Free `ino` once it has no links and the kernel holds no lookup of it.
    fn maybe_free(&mut self, ino: u64) {
        if self
            .nodes
            .get(&ino)
            .is_some_and(|n| n.attr.nlink == 0 && n.lookups == 0)
        {
            self.nodes.remove(&ino);
        }
    }

    /// A new node named `name` in `parent`, owned by the caller, with permission bits `perm`
    /// (the umask already applied).
    fn make(&mut self, req: &Request, parent: u64, name: &[u8], perm: u32, body: Body) -> Res<FileAttr> {
        let kind = body.kind();
        let rdev = if let Body::Special(_, r) = body { r } else { 0 };
        check_name(name)?;
        if self.child(parent, name)?.is_some() {
            return Err(Errno::EEXIST);
        }
        let p = self.node(parent)?.attr;
        let mut perm = (perm & 0o7777) as u16;
        // A setgid directory hands its group down, and its setgid bit to subdirectories.
        let setgid = p.perm & libc::S_ISGID as u16 != 0;
        let gid = if setgid { p.gid } else { req.gid() };
        if setgid && kind == FileType::Directory {
            perm |= libc::S_ISGID as u16;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let mut attr = new_attr(ino, kind, perm, req.uid(), gid, rdev);
        if let Body::Symlink(t) = &body {
            set_size(&mut attr, t.len() as u64);
        }
        self.nodes.insert(ino, Node { attr, body, lookups: 0 });
        self.dir(parent)?.insert(name, ino);
        self.changed(parent, i32::from(kind == FileType::Directory))?;
        self.entry(ino)
    }

    /// Take away a link of `ino` (a directory: all of them).
    fn unlinked(&mut self, ino: u64) -> Res<()> {
        let a = &mut self.node(ino)?.attr;
        a.nlink = if a.kind == FileType::Directory {
            0
        } else {
            a.nlink.saturating_sub(1)
        };
        a.ctime = SystemTime::now();
        self.maybe_free(ino);
        Ok(())
    }

    /// Remove `parent/name`, which must be a directory (empty) or not, as `dir` says.
    fn remove(&mut self, parent: u64, name: &[u8], dir: bool) -> Res<()> {
        let ino = self.child(parent, name)?.ok_or(Errno::ENOENT)?;
        self.check_victim(ino, dir)?;
        self.dir(parent)?.remove(name);
        self.changed(parent, -i32::from(dir))?;
        self.unlinked(ino)
    }

    /// Whether `ino` may be removed (or replaced) as a directory (`dir`) or as a non-directory.
    fn check_victim(&mut self, ino: u64, dir: bool) -> Res<()> {
        match (&self.node(ino)?.body, dir) {
            (Body::Dir(d), true) if d.names.is_empty() => Ok(()),
            (Body::Dir(_), true) => Err(Errno::ENOTEMPTY),
            (Body::Dir(_), false) => Err(Errno::EISDIR),
            (_, true) => Err(Errno::ENOTDIR),
            (_, false) => Ok(()),
        }
    }

    fn rename(&mut self, from: (u64, &[u8]), to: (u64, &[u8]), flags: RenameFlags) -> Res<()> {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            return Err(Errno::EINVAL);
        }
        check_name(to.1)?;
        let ino = self.child(from.0, from.1)?.ok_or(Errno::ENOENT)?;
        let is_dir = self.node(ino)?.attr.kind == FileType::Directory;
        if let Some(old) = self.child(to.0, to.1)? {
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            if old == ino {
                return Ok(());
            }
            self.check_victim(old, is_dir)?;
            self.dir(to.0)?.remove(to.1);
            self.changed(to.0, -i32::from(is_dir))?;
            self.unlinked(old)?;
        }
        self.dir(from.0)?.remove(from.1);
        self.dir(to.0)?.insert(to.1, ino);
        let moved = i32::from(is_dir && from.0 != to.0);
        self.changed(from.0, -moved)?;
        self.changed(to.0, moved)?;
        let n = self.node(ino)?;
        n.attr.ctime = SystemTime::now();
        if let Body::Dir(d) = &mut n.body {
            d.parent = to.0;
        }
        Ok(())
    }

    fn set_attr(
        &mut self,
        ino: u64,
        mode: Option<u32>,
        owner: (Option<u32>, Option<u32>),
        size: Option<u64>,
        times: [Option<TimeOrNow>; 2],
    ) -> Res<FileAttr> {
        let n = self.node(ino)?;
        let now = SystemTime::now();
        let a = &mut n.attr;
        if owner.0.is_some() || owner.1.is_some() {
            // chown of a regular file clears setuid, and setgid with group execute (the kernel
            // leaves this to the filesystem under FUSE_HANDLE_KILLPRIV_V2).
            if a.kind == FileType::RegularFile {
                let group_exec = a.perm & 0o010 != 0;
                a.perm &= !(libc::S_ISUID as u16 | if group_exec { libc::S_ISGID as u16 } else { 0 });
            }
            a.uid = owner.0.unwrap_or(a.uid);
            a.gid = owner.1.unwrap_or(a.gid);
        }
        if let Some(m) = mode {
            a.perm = (m & 0o7777) as u16;
        }
        if let Some(s) = size {
            let Body::File(data) = &mut n.body else {
                return Err(Errno::EISDIR);
            };
            resize_file(data, s)?;
            set_size(a, s);
            a.mtime = now;
        }
        let time = |t: TimeOrNow| match t {
            TimeOrNow::Now => now,
            TimeOrNow::SpecificTime(t) => t,
        };
        a.atime = times[0].map_or(a.atime, time);
        a.mtime = times[1].map_or(a.mtime, time);
        a.ctime = now;
        Ok(*a)
    }
}

impl Default for Floor {
    fn default() -> Floor {
        let root = Node {
            attr: new_attr(ROOT, FileType::Directory, 0o755, 0, 0, 0),
            body: Body::Dir(Dir::new(ROOT)),
            lookups: 0,
        };
        Floor {
            state: Mutex::new(State {
                nodes: HashMap::from([(ROOT, root)]),
                next_ino: ROOT + 1,
            }),
            no_opendir: false,
        }
    }
}

impl Floor {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> Res<T>) -> Res<T> {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn make(&self, req: &Request, parent: INodeNo, name: &OsStr, perm: u32, body: Body, reply: ReplyEntry) {
        match self.with(|s| s.make(req, parent.0, name.as_bytes(), perm, body)) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }
}

/// Children of `dir` from cookie `offset` on, `.` and `..` first.
fn listing(s: &mut State, dir: u64, offset: u64) -> Res<Listing> {
    let d = s.dir(dir)?;
    let mut v = Vec::new();
    for (c, name, ino) in [(1, &b"."[..], dir), (2, &b".."[..], d.parent)] {
        if offset < c {
            v.push((c, name.into(), ino));
        }
    }
    // A reply holds as many entries as VexFS's; the rest come with the next request.
    let from = offset.max(FIRST_COOKIE - 1).saturating_add(1);
    for (&c, name) in d.order.range(from..).take(vexfs::fuse::READDIR_BATCH) {
        v.push((c, name.clone(), d.names[name].1));
    }
    Ok(v)
}
