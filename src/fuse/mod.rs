//! The FUSE adapter: [`VexFuse`] turns fuser requests into calls on the
//! core ([`crate::fs::core::Fs`]) and core results into replies. Errors go
//! through [`FsError::errno`](crate::error::FsError::errno), the one
//! mapping to errno (plus ENXIO for SEEK_DATA/SEEK_HOLE past the end, see
//! [`convert::errno`]).
//!
//! Kernel caches: attributes, entries and missing names (negative
//! entries) live [`TTL`], an hour. The core is the only writer of a
//! mounted image and every change goes through this mount, whose own
//! changes FUSE invalidates itself; the few the core makes behind the
//! kernel's back (a vector attached through the ioctl or a control file
//! changes the file's ctime) are invalidated by [`Invalidator`] before
//! the request that made them is answered. So cached attributes stay
//! right however long they live, and a short TTL only costs round trips
//! (a walk or a rename of many files looked every name up again).
//!
//! The writeback cache is off unless asked for (`-o writeback_cache`):
//! with it the kernel keeps dirty pages, sizes and mtimes of its own and
//! writes them back later under other credentials, and ENOSPC surfaces at
//! fsync or close instead of at the write that caused it.
//!
//! File handles are always 0: the core is stateless per handle; open
//! files are only counted (`Fs::opened` / `Fs::released`) so that a file
//! unlinked while open lives until its last close.

pub mod bdi;
pub mod control;
pub mod convert;
mod dirs;
pub mod events_file;
mod helpers;
mod invalidate;

pub use invalidate::Invalidator;

use crate::error::FsError;
use crate::format::inode::FileType as VexfsFileType;
use crate::fs::attrs::{SetAttr, TimeSet};
use crate::fs::core::Fs;
use crate::fs::namespace::NewNode;
use crate::fs::perm::{MAY_EXEC, MAY_READ, MAY_WRITE};
use convert::{errno, file_attr};
use fuser::{
    AccessFlags, CopyFileRangeFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request,
    TimeOrNow, WriteFlags,
};
use helpers::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

/// How long the kernel may cache attributes, directory entries and
/// missing names (see the module docs for why this is safe). ext4's
/// caches have no expiry; an hour bounds how long a missed invalidation
/// could show, should one ever be missed.
pub const TTL: Duration = Duration::from_secs(3600);
/// Largest write request (and readahead) asked of the kernel.
pub const MAX_WRITE: u32 = 1 << 20;
/// Chunk size of copy_file_range.
pub const COPY_CHUNK: usize = 1 << 20;
/// Directory entries fetched from the core per readdir request (a 4 KiB
/// reply holds at most 128 entries of 32 bytes).
pub(super) const READDIR_BATCH: usize = 128;

/// Stack of every thread a mount runs: fuser's workers (set through
/// `RUST_MIN_STACK`, see `mount.vexfs`), the commit timer and the event
/// threads. A request keeps its large state (buffers, search heaps, htree
/// walks) on the heap, so its frames need far less; 256 KiB instead of
/// std's 2 MiB bounds a mount with 64 threads to 16 MiB of stack, and
/// tests/fuse_stack.rs runs the deepest paths on it so that a regression
/// (a big array on the stack, deep recursion) fails in tests, not in use.
pub const THREAD_STACK: usize = 256 * 1024;

const SEEK_DATA: i32 = 3;
const SEEK_HOLE: i32 = 4;

/// A mounted image, served over FUSE.
pub struct VexFuse {
    pub fs: Arc<Fs>,
    /// The virtual `/.vexfs` directory and its open control files.
    control: control::Control,
    /// Readers of `/.vexfs/events`.
    events: Arc<events_file::EventFiles>,
    /// Attribute invalidations for changes the kernel did not see.
    invalidator: Invalidator,
    /// Ask for the kernel's writeback cache (`-o writeback_cache`).
    writeback_cache: bool,
}

/// How often the commit timer asks the core to commit old changes.
pub const TICK: Duration = Duration::from_secs(1);

/// Start the commit timer of a mount: every [`TICK`] it calls
/// [`Fs::tick`], which commits staged changes older than the core's
/// commit interval (like jbd2's commit timer). It holds only a weak
/// reference and ends once the filesystem is gone.
pub fn spawn_commit_timer(fs: Weak<Fs>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("commit".into())
        .stack_size(THREAD_STACK)
        .spawn(move || loop {
            std::thread::sleep(TICK);
            let Some(fs) = fs.upgrade() else { return };
            if let Err(e) = fs.tick() {
                log::error!("periodic commit: {e}");
            }
        })
}

impl VexFuse {
    pub fn new(fs: Arc<Fs>) -> VexFuse {
        VexFuse {
            events: events_file::EventFiles::new(&fs),
            fs,
            control: control::Control::default(),
            invalidator: Invalidator::default(),
            writeback_cache: false,
        }
    }

    /// Ask for the writeback cache at init: the kernel then keeps written
    /// pages dirty and sends them in large WRITEs later (and owns mtime
    /// and size meanwhile). Off by default; docs/mount.md gives the cost.
    pub fn with_writeback_cache(mut self, on: bool) -> VexFuse {
        self.writeback_cache = on;
        self
    }

    /// Where the session's notifier goes once the session exists.
    pub fn invalidator(&self) -> Invalidator {
        self.invalidator.clone()
    }
}

impl Filesystem for VexFuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        if let Err(nearest) = config.set_max_write(MAX_WRITE) {
            let _ = config.set_max_write(nearest);
        }
        if let Err(nearest) = config.set_max_readahead(MAX_WRITE) {
            let _ = config.set_max_readahead(nearest);
        }
        // Capabilities that stay correct with the core as the only writer;
        // each is requested only when the kernel offers it.
        for cap in [
            InitFlags::FUSE_ATOMIC_O_TRUNC,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            // The kernel enforces ACLs; the core keeps them in step with
            // the mode, inherits default ACLs and applies the umask.
            InitFlags::FUSE_POSIX_ACL,
            InitFlags::FUSE_DONT_MASK,
            // The core clears setuid/setgid on write, truncate and chown
            // (see `Fs::write_killing_privs`, `Fs::setattr`). In return the
            // kernel marks inodes without them and without
            // security.capability S_NOSEC and stops asking GETXATTR
            // security.capability before every write (file_remove_privs).
            // Capabilities are still removed by the kernel (on chown, and
            // on the first write after the attributes were refreshed).
            InitFlags::FUSE_HANDLE_KILLPRIV_V2,
        ] {
            let _ = config.add_capabilities(cap);
        }
        // The kernel holds what it looked up until it forgets it: unlinked
        // inodes are freed at FORGET, not at the unlink.
        self.fs.set_kernel_forgets(true);
        if self.writeback_cache && config.add_capabilities(InitFlags::FUSE_WRITEBACK_CACHE).is_err() {
            log::warn!("the kernel offers no writeback cache; writing through");
        }
        Ok(())
    }

    fn destroy(&mut self) {
        // Commit, checkpoint the journal and mark the image clean.
        if let Err(e) = self.fs.close() {
            log::error!("closing the image at unmount: {e}");
        }
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if let Some(r) = self.control.lookup(parent.0, name.as_bytes()) {
            return match r {
                Ok(a) => reply.entry(&TTL, &a, Generation(0)),
                Err(e) => reply.error(errno(&e)),
            };
        }
        let r = self.fs.lookup(&req_ctx(req), parent.0, name.as_bytes());
        match r {
            Ok(a) => reply.entry(&TTL, &file_attr(&a), gen(&a)),
            // A missing name as an entry of inode 0: the kernel caches the
            // miss (a negative dentry) for TTL, so the create that usually
            // follows, and every later look for the name (git, tar, PATH
            // searches), need no LOOKUP. A create replaces the dentry.
            Err(FsError::NotFound) => reply.entry(&TTL, &negative_entry(), Generation(0)),
            // Missing names are normal (debug level only); damage is logged.
            Err(e) => reply.error(log_err("lookup", &e)),
        }
    }

    /// The kernel evicted its inode for `ino`: an inode unlinked while the
    /// kernel held it is freed now (see [`crate::fs::lifecycle`]). fuser
    /// splits BATCH_FORGET into these (its node type is private, so
    /// `batch_forget` cannot be overridden to free a batch at once).
    fn forget(&self, _req: &Request, ino: INodeNo, _nlookup: u64) {
        self.forget_nodes(&[ino.0]);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if let Some(a) = self.control.attr(ino.0) {
            return reply.attr(&TTL, &a);
        }
        match self.fs.getattr(ino.0) {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(log_err("getattr", &e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        if let Some(a) = self.control.attr(ino.0) {
            // `> /.vexfs/search` truncates: there is nothing to change.
            return reply.attr(&TTL, &a);
        }
        let c = req_ctx(req);
        let time = |t: TimeOrNow| match t {
            TimeOrNow::Now => TimeSet::Now,
            TimeOrNow::SpecificTime(st) => TimeSet::At(convert::timestamp_from_kernel(st)),
        };
        let s = SetAttr {
            mode: mode.map(|m| (m & 0o7777) as u16),
            uid,
            gid,
            size,
            atime: atime.map(time),
            mtime: mtime.map(time),
        };
        // ftruncate(2) and open(O_TRUNC) come with a handle whose open
        // already checked write permission; truncate(2) by path comes
        // without one, so it is checked here.
        let r = match (size, fh) {
            (Some(_), None) => self.fs.access(&c, ino.0, MAY_WRITE),
            _ => Ok(()),
        }
        .and_then(|()| self.fs.setattr(&c, ino.0, &s));
        // With the writeback cache the kernel writes back the times of a
        // file it has just unlinked (ctime) before it forgets it: the core
        // keeps such an inode until FORGET (see `forget`), so they land on
        // it and not on a new file that took its number.
        match r {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(log_err("setattr", &e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.fs.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(log_err("readlink", &e)),
        }
    }

    fn mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, rdev: u32, reply: ReplyEntry) {
        let node = match mode & libc::S_IFMT {
            0 | libc::S_IFREG => NewNode::File,
            libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK => NewNode::Special { rdev },
            _ => return reply.error(Errno::EINVAL),
        };
        let ctx = req_ctx_umask(req, umask);
        let r = self.fs.create(&ctx, parent.0, name.as_bytes(), mode_bits(mode), node);
        self.reply_entry("mknod", r, reply);
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let m = mode_bits(mode & 0o7777);
        let r = self
            .fs
            .create(&req_ctx_umask(req, umask), parent.0, name.as_bytes(), m, NewNode::Dir);
        self.reply_entry("mkdir", r, reply);
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        if control::is_reserved(parent.0, name.as_bytes()) {
            return reply.error(Errno::EBUSY);
        }
        let r = self.fs.unlink(&req_ctx(req), parent.0, name.as_bytes());
        self.reply_empty("unlink", r, reply);
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        if control::is_reserved(parent.0, name.as_bytes()) {
            return reply.error(Errno::EBUSY);
        }
        let r = self.fs.rmdir(&req_ctx(req), parent.0, name.as_bytes());
        self.reply_empty("rmdir", r, reply);
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        let node = NewNode::Symlink {
            target: target.as_os_str().as_bytes(),
        };
        let r = self
            .fs
            .create(&req_ctx(req), parent.0, link_name.as_bytes(), 0o777, node);
        self.reply_entry("symlink", r, reply);
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if control::is_reserved(parent.0, name.as_bytes()) || control::is_reserved(newparent.0, newname.as_bytes()) {
            return reply.error(Errno::EBUSY);
        }
        let r = self.fs.rename(
            &req_ctx(req),
            parent.0,
            name.as_bytes(),
            newparent.0,
            newname.as_bytes(),
            flags.bits(),
        );
        self.reply_empty("rename", r, reply);
    }

    fn link(&self, req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let r = self.fs.link(&req_ctx(req), ino.0, newparent.0, newname.as_bytes());
        self.reply_entry("link", r, reply);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if control::is_virtual(ino.0) {
            let opened = self.control.open(ino.0, req_ctx(req)).and_then(|fh| match ino.0 {
                control::EVENTS_INO => {
                    let nonblock = flags.0 & libc::O_NONBLOCK != 0;
                    self.events.open(fh, nonblock, req.pid()).map(|()| fh)
                }
                _ => Ok(fh),
            });
            return match opened {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
                Err(e) => reply.error(log_err("open", &e)),
            };
        }
        match self.do_open(req, ino.0, flags) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(log_err("open", &e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        if ino.0 == control::EVENTS_INO {
            return self.events.read(fh.0, size as usize, reply);
        }
        if control::is_virtual(ino.0) {
            return match self.control.read(&self.fs, fh.0, size as usize) {
                Ok(d) => reply.data(&d),
                Err(e) => reply.error(errno(&e)),
            };
        }
        match self.fs.read_data(ino.0, offset, size as usize) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(log_err("read", &e)),
        }
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if ino.0 == control::EVENTS_INO {
            return match self.events.write(fh.0, data) {
                Ok(n) => reply.written(n as u32),
                Err(e) => reply.error(errno(&e)),
            };
        }
        if control::is_virtual(ino.0) {
            return match self.control.write(&self.fs, fh.0, data) {
                Ok(n) => {
                    // A command may have attached vectors (changing ctimes).
                    self.invalidator.flush(&self.fs);
                    reply.written(n as u32)
                }
                Err(e) => reply.error(errno(&e)),
            };
        }
        let kill = write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID);
        match self
            .fs
            .write_killing_privs(Some(&req_ctx(req)), ino.0, offset, data, kill)
        {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(log_err("write", &e)),
        }
    }

    /// Nothing to do at close: writes reach the core before they return
    /// (no writeback cache) and POSIX locks are the kernel's. Answered OK,
    /// not ENOSYS (which would make the kernel stop sending it): the round
    /// trip saved was not measurable, and while ENOSYS was tried pjdfstest's
    /// open::etxtbsy failed three runs in a row (it fails now and then with
    /// either answer, see ci/pjdfstest.sh), so the long-tested answer stays.
    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if control::is_virtual(ino.0) {
            self.control.release(fh.0);
            self.events.release(fh.0);
            return reply.ok();
        }
        let r = self.fs.released(ino.0);
        self.reply_empty("release", r, reply);
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let r = self.fs.sync();
        self.reply_empty("fsync", r, reply);
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino.0 == control::DIR_INO {
            return reply.opened(FileHandle(0), FopenFlags::empty());
        }
        // As for files, the kernel leaves the read check to us.
        // The kernel may keep the listing in its page cache and serve the
        // next opendir+readdir from it (a warm walk, `git status`): every
        // change to a directory goes through this mount, and the kernel
        // drops the cached listing of a directory it changed (its
        // i_version and mtime move).
        let cache = FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE;
        match self.fs.access(&req_ctx(req), ino.0, MAY_READ) {
            Ok(()) => reply.opened(FileHandle(0), cache),
            Err(e) => reply.error(log_err("opendir", &e)),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, reply: ReplyDirectory) {
        self.list(ino.0, offset, reply);
    }

    fn readdirplus(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, reply: ReplyDirectoryPlus) {
        self.list_plus(ino.0, offset, reply);
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let r = self.fs.sync();
        self.reply_empty("fsyncdir", r, reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.fs.statfs() {
            Ok(s) => reply.statfs(
                s.blocks,
                s.free_blocks,
                s.free_blocks,
                s.files,
                s.free_files,
                s.block_size,
                s.name_max,
                s.block_size,
            ),
            Err(e) => reply.error(log_err("statfs", &e)),
        }
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let r = self.fs.setxattr(&req_ctx(req), ino.0, name.as_bytes(), value, flags);
        self.reply_empty("setxattr", r, reply);
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if control::is_virtual(ino.0) {
            return reply.error(Errno::ENODATA);
        }
        match self.fs.getxattr(&req_ctx(req), ino.0, name.as_bytes()) {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() <= size as usize => reply.data(&v),
            Ok(_) => reply.error(Errno::ERANGE),
            Err(e) => reply.error(log_err("getxattr", &e)),
        }
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        if control::is_virtual(ino.0) {
            return reply.size(0);
        }
        match self.fs.listxattr(&req_ctx(req), ino.0) {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() <= size as usize => reply.data(&v),
            Ok(_) => reply.error(Errno::ERANGE),
            Err(e) => reply.error(log_err("listxattr", &e)),
        }
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.fs.removexattr(&req_ctx(req), ino.0, name.as_bytes());
        self.reply_empty("removexattr", r, reply);
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        if control::is_virtual(ino.0) {
            return reply.ok(); // mode bits (0555 dir, 0666 file) say the rest
        }
        // R_OK/W_OK/X_OK are MAY_READ/MAY_WRITE/MAY_EXEC bit for bit.
        let m = mask.bits() as u32 & (MAY_READ | MAY_WRITE | MAY_EXEC);
        let r = self.fs.access(&req_ctx(req), ino.0, m);
        self.reply_empty("access", r, reply);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        // O_EXCL needs nothing here: the kernel looked the name up first,
        // and the core answers EEXIST if it appeared since.
        let m = mode_bits((mode & 0o7777) | libc::S_IFREG);
        let r = self
            .fs
            .create(&req_ctx_umask(req, umask), parent.0, name.as_bytes(), m, NewNode::File)
            .and_then(|a| self.fs.opened(a.ino.into()).map(|()| a));
        match r {
            Ok(a) => reply.created(&TTL, &file_attr(&a), gen(&a), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(log_err("create", &e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let r = self.fs.fallocate(ino.0, mode, offset, length);
        self.reply_empty("fallocate", r, reply);
    }

    fn lseek(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: i64, whence: i32, reply: ReplyLseek) {
        // The kernel answers SEEK_SET/CUR/END itself.
        if whence != SEEK_DATA && whence != SEEK_HOLE {
            return reply.error(Errno::EINVAL);
        }
        let Ok(off) = u64::try_from(offset) else {
            return reply.error(Errno::from_i32(libc::ENXIO));
        };
        match self.fs.seek_data_hole(ino.0, off, whence == SEEK_DATA) {
            Ok(pos) => reply.offset(pos as i64),
            Err(e) => reply.error(log_err("lseek", &e)),
        }
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        ino_in: INodeNo,
        _fh_in: FileHandle,
        offset_in: u64,
        ino_out: INodeNo,
        _fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        match self.do_copy(ino_in.0, offset_in, ino_out.0, offset_out, len) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(log_err("copy_file_range", &e)),
        }
    }

    /// poll/select on `/.vexfs/events` (other files are always ready).
    fn poll(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        ph: fuser::PollNotifier,
        _events: fuser::PollEvents,
        _flags: fuser::PollFlags,
        reply: fuser::ReplyPoll,
    ) {
        if ino.0 == control::EVENTS_INO {
            return self.events.poll(fh.0, ph, reply);
        }
        reply.poll(fuser::PollEvents::POLLIN | fuser::PollEvents::POLLOUT);
    }

    /// The kernel module's two flat vector-metadata ioctls
    /// (format-spec/12 §12.4); everything else is ENOTTY.
    fn ioctl(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        cmd: u32,
        in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        use crate::format::ioctl::{VEXFS_IOC_GET_VECTOR_META, VEXFS_IOC_SET_VECTOR_META};
        let regular =
            !control::is_virtual(ino.0) && self.fs.getattr(ino.0).is_ok_and(|a| a.kind == VexfsFileType::Regular);
        if !regular {
            return reply.error(Errno::from_i32(libc::ENOTTY));
        }
        match cmd {
            VEXFS_IOC_SET_VECTOR_META => match self.fs.vector_meta_set(&req_ctx(req), ino.0, in_data) {
                Ok(()) => {
                    self.invalidator.flush(&self.fs);
                    reply.ioctl(0, &[])
                }
                Err(e) => reply.error(log_err("ioctl", &e)),
            },
            VEXFS_IOC_GET_VECTOR_META => match self.fs.vector_meta_get(ino.0) {
                Ok(info) => reply.ioctl(0, &info),
                Err(e) => reply.error(log_err("ioctl", &e)),
            },
            _ => reply.error(Errno::from_i32(libc::ENOTTY)),
        }
    }
}
