//! opendir, and readdir and readdirplus replies: entries from the core in
//! cookie order (fs/listing.rs), each with the cookie where the next call
//! resumes.

use super::convert::{self, file_attr};
use super::helpers::{gen, log_err, placeholder_attr, req_ctx};
use super::{control, VexFuse, READDIR_BATCH, TTL};
use crate::fs::perm::MAY_READ;
use fuser::{
    Errno, FileHandle, FopenFlags, Generation, INodeNo, ReplyDirectory, ReplyDirectoryPlus, ReplyOpen, Request,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

impl VexFuse {
    pub(super) fn open_dir(&self, req: &Request, ino: INodeNo, reply: ReplyOpen) {
        if self.no_opendir {
            // The kernel checked the permission; it sends no more OPENDIR.
            return reply.error(Errno::ENOSYS);
        }
        if ino.0 == control::DIR_INO {
            return reply.opened(FileHandle(0), FopenFlags::empty());
        }
        // A kernel without FUSE_POSIX_ACL leaves the read check to us.
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

    pub(super) fn list(&self, ino: u64, offset: u64, mut reply: ReplyDirectory) {
        if ino == control::DIR_INO {
            for (i, (name, n, kind)) in self.control_entries().into_iter().enumerate().skip(offset as usize) {
                if reply.add(INodeNo(n), i as u64 + 1, kind, OsStr::new(name)) {
                    break;
                }
            }
            return reply.ok();
        }
        let entries = match self.fs.readdir(ino, offset, READDIR_BATCH) {
            Ok(v) => v,
            Err(e) => return reply.error(log_err("readdir", &e)),
        };
        for e in entries {
            let kind = match convert::dirent_type(e.file_type) {
                Some(k) => k,
                None => match self.fs.getattr(e.inode.into()) {
                    Ok(a) => convert::file_type(a.kind),
                    Err(err) => return reply.error(log_err("readdir", &err)),
                },
            };
            // The offset of an entry is where the next readdir resumes.
            if reply.add(INodeNo(e.inode.into()), e.next, kind, OsStr::from_bytes(&e.name)) {
                break;
            }
        }
        reply.ok();
    }

    /// readdir with each entry's attributes (one request instead of a
    /// lookup per name). An entry whose inode cannot be read (damaged) is
    /// listed with placeholder attributes that expire at once, so the
    /// listing works and a later stat of that name gets the error.
    pub(super) fn list_plus(&self, ino: u64, offset: u64, mut reply: ReplyDirectoryPlus) {
        if ino == control::DIR_INO {
            for (i, (name, n, _)) in self.control_entries().into_iter().enumerate().skip(offset as usize) {
                // `..` is the root, a real inode; the rest are virtual.
                let a = match self.control.attr(n) {
                    Some(a) => a,
                    None => match self.fs.getattr(n) {
                        Ok(a) => file_attr(&a),
                        Err(e) => return reply.error(log_err("readdirplus", &e)),
                    },
                };
                if reply.add(INodeNo(n), i as u64 + 1, OsStr::new(name), &TTL, &a, Generation(0)) {
                    break;
                }
            }
            return reply.ok();
        }
        let entries = match self.fs.readdir(ino, offset, READDIR_BATCH) {
            Ok(v) => v,
            Err(e) => return reply.error(log_err("readdirplus", &e)),
        };
        for e in entries {
            let (attr, ttl) = match self.fs.getattr(e.inode.into()) {
                Ok(a) => (a, TTL),
                Err(err) => {
                    log_err("readdirplus", &err);
                    (placeholder_attr(e.inode, e.file_type), Duration::ZERO)
                }
            };
            let name = OsStr::from_bytes(&e.name);
            if reply.add(
                INodeNo(e.inode.into()),
                e.next,
                name,
                &ttl,
                &file_attr(&attr),
                gen(&attr),
            ) {
                break;
            }
        }
        reply.ok();
    }
}
