//! The [`Filesystem`] implementation: each FUSE request, answered by one
//! call on the core or handed to the sibling module that handles it
//! (`session.rs`, `entries.rs`, `dirs.rs`, `data.rs`, `virtual_files.rs`,
//! `meta.rs`). The `/.vexfs` names are reserved and answered by
//! [`super::control`].

use super::convert::file_attr;
use super::entries::SetAttrRequest;
use super::helpers::*;
use super::{control, VexFuse, TTL};
use crate::fs::namespace::NewNode;
use fuser::{
    AccessFlags, CopyFileRangeFlags, Errno, FileHandle, Filesystem, FopenFlags, INodeNo, KernelConfig, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::SystemTime;

impl Filesystem for VexFuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        self.negotiate(config);
        Ok(())
    }

    fn destroy(&mut self) {
        // Commit, checkpoint the journal and mark the image clean.
        if let Err(e) = self.fs.close() {
            log::error!("closing the image at unmount: {e}");
        }
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.look_up(req, parent, name, reply);
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
        let r = SetAttrRequest {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
            fh,
        };
        self.set_attr(req, ino, r, reply);
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.fs.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(log_err("readlink", &e)),
        }
    }

    fn mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, rdev: u32, reply: ReplyEntry) {
        self.make_node(&req_ctx_umask(req, umask), parent, name, mode, rdev, reply);
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
        self.make_symlink(req, parent, link_name, target, reply);
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
        self.rename_entry(req, (parent, name), (newparent, newname), flags, reply);
    }

    fn link(&self, req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let r = self.fs.link(&req_ctx(req), ino.0, newparent.0, newname.as_bytes());
        self.reply_entry("link", r, reply);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if control::is_virtual(ino.0) {
            return self.open_virtual(req, ino.0, flags, reply);
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
        if control::is_virtual(ino.0) {
            return self.read_virtual(ino.0, fh.0, size, reply);
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
        if control::is_virtual(ino.0) {
            return self.write_virtual(ino.0, fh.0, data, reply);
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
            self.release_virtual(fh.0);
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
        self.open_dir(req, ino, reply);
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
        self.get_xattr(req, ino, name, size, reply);
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.list_xattrs(req, ino, size, reply);
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.fs.removexattr(&req_ctx(req), ino.0, name.as_bytes());
        self.reply_empty("removexattr", r, reply);
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.check_access(req, ino, mask, reply);
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
        self.create_file(req, parent, name, mode, umask, reply);
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
        self.seek_data_hole(ino, offset, whence, reply);
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
        self.vector_ioctl(req, ino, cmd, in_data, reply);
    }
}
