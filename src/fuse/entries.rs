//! Names and attributes: the longer handlers of LOOKUP, SETATTR, MKNOD,
//! SYMLINK, RENAME, CREATE and ACCESS (the one-call ones stay in
//! `requests.rs`).

use super::convert::{self, errno, file_attr};
use super::helpers::{gen, log_err, mode_bits, negative_entry, req_ctx, req_ctx_umask};
use super::{control, VexFuse, TTL};
use crate::error::FsError;
use crate::fs::attrs::{SetAttr, TimeSet};
use crate::fs::namespace::NewNode;
use crate::fs::perm::{Ctx, MAY_EXEC, MAY_READ, MAY_WRITE};
use fuser::{
    AccessFlags, Errno, FileHandle, FopenFlags, Generation, INodeNo, RenameFlags, ReplyAttr, ReplyCreate, ReplyEmpty,
    ReplyEntry, Request, TimeOrNow,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What a SETATTR asks to change (the times and flags the core does not
/// keep are left out).
pub(super) struct SetAttrRequest {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeOrNow>,
    pub mtime: Option<TimeOrNow>,
    pub fh: Option<FileHandle>,
}

impl VexFuse {
    pub(super) fn look_up(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
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

    pub(super) fn set_attr(&self, req: &Request, ino: INodeNo, want: SetAttrRequest, reply: ReplyAttr) {
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
            mode: want.mode.map(|m| (m & 0o7777) as u16),
            uid: want.uid,
            gid: want.gid,
            size: want.size,
            atime: want.atime.map(time),
            mtime: want.mtime.map(time),
        };
        // ftruncate(2) and open(O_TRUNC) come with a handle whose open
        // already checked write permission; truncate(2) by path comes
        // without one, so it is checked here.
        let r = match (want.size, want.fh) {
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

    /// MKNOD: a regular file, FIFO, socket or device node.
    pub(super) fn make_node(&self, ctx: &Ctx, parent: INodeNo, name: &OsStr, mode: u32, rdev: u32, reply: ReplyEntry) {
        let node = match mode & libc::S_IFMT {
            0 | libc::S_IFREG => NewNode::File,
            libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK => NewNode::Special { rdev },
            _ => return reply.error(Errno::EINVAL),
        };
        let r = self.fs.create(ctx, parent.0, name.as_bytes(), mode_bits(mode), node);
        self.reply_entry("mknod", r, reply);
    }

    pub(super) fn make_symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let node = NewNode::Symlink {
            target: target.as_os_str().as_bytes(),
        };
        let r = self
            .fs
            .create(&req_ctx(req), parent.0, link_name.as_bytes(), 0o777, node);
        self.reply_entry("symlink", r, reply);
    }

    /// RENAME of `(parent, name)` to `(newparent, newname)`; `/.vexfs`
    /// can be neither.
    pub(super) fn rename_entry(
        &self,
        req: &Request,
        (parent, name): (INodeNo, &OsStr),
        (newparent, newname): (INodeNo, &OsStr),
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

    /// CREATE: a regular file, opened at once.
    pub(super) fn create_file(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
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

    pub(super) fn check_access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        if control::is_virtual(ino.0) {
            return reply.ok(); // mode bits (0555 dir, 0666 file) say the rest
        }
        // R_OK/W_OK/X_OK are MAY_READ/MAY_WRITE/MAY_EXEC bit for bit.
        let m = mask.bits() as u32 & (MAY_READ | MAY_WRITE | MAY_EXEC);
        let r = self.fs.access(&req_ctx(req), ino.0, m);
        self.reply_empty("access", r, reply);
    }
}
