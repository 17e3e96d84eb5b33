//! The [`Filesystem`] implementation of the floor: each request, answered from [`State`] under
//! the one lock, as VexFS's adapter answers it (src/fuse/requests.rs): the same [`TTL`]
//! everywhere, negative entries of inode 0, cached directory listings, no xattrs.

use super::{
    check_name, listing, new_attr, resize_file, set_size, touch, Body, Dir, Floor, Res, FIRST_COOKIE, STATFS_BLOCKS,
    TTL,
};
use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, KernelConfig,
    LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::SystemTime;

fn empty(r: Res<()>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn attr(r: Res<FileAttr>, reply: ReplyAttr) {
    match r {
        Ok(a) => reply.attr(&TTL, &a),
        Err(e) => reply.error(e),
    }
}

#[allow(clippy::too_many_arguments)]
impl Filesystem for Floor {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        self.no_opendir = vexfs::fuse::negotiate_session(config);
        Ok(())
    }

    fn destroy(&mut self) {
        let s = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        log::debug!("{} nodes left at unmount", s.nodes.len());
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self.with(|s| match s.child(parent.0, name.as_bytes())? {
            Some(ino) => s.entry(ino),
            // A missing name: an entry of inode 0, which the kernel keeps as a negative dentry.
            None => Ok(new_attr(0, FileType::RegularFile, 0, 0, 0, 0)),
        });
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let _ = self.with(|s| {
            let n = s.node(ino.0)?;
            n.lookups = n.lookups.saturating_sub(nlookup);
            s.maybe_free(ino.0);
            Ok(())
        });
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        attr(self.with(|s| Ok(s.node(ino.0)?.attr)), reply);
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        attr(
            self.with(|s| s.set_attr(ino.0, mode, (uid, gid), size, [atime, mtime])),
            reply,
        );
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.with(|s| match &s.node(ino.0)?.body {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, rdev: u32, reply: ReplyEntry) {
        let body = match mode & libc::S_IFMT {
            0 | libc::S_IFREG => Body::File(Vec::new()),
            libc::S_IFIFO => Body::Special(FileType::NamedPipe, rdev),
            libc::S_IFSOCK => Body::Special(FileType::Socket, rdev),
            libc::S_IFCHR => Body::Special(FileType::CharDevice, rdev),
            libc::S_IFBLK => Body::Special(FileType::BlockDevice, rdev),
            _ => return reply.error(Errno::EINVAL),
        };
        self.make(req, parent, name, mode & !umask, body, reply);
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let body = Body::Dir(Dir::new(parent.0));
        self.make(req, parent, name, mode & !umask, body, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.with(|s| s.remove(parent.0, name.as_bytes(), false)), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.with(|s| s.remove(parent.0, name.as_bytes(), true)), reply);
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        let body = Body::Symlink(target.as_os_str().as_bytes().into());
        self.make(req, parent, link_name, 0o777, body, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        empty(
            self.with(|s| s.rename((parent.0, name.as_bytes()), (newparent.0, newname.as_bytes()), flags)),
            reply,
        );
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let r = self.with(|s| {
            if s.node(ino.0)?.attr.kind == FileType::Directory {
                return Err(Errno::EPERM);
            }
            check_name(newname.as_bytes())?;
            if s.child(newparent.0, newname.as_bytes())?.is_some() {
                return Err(Errno::EEXIST);
            }
            s.dir(newparent.0)?.insert(newname.as_bytes(), ino.0);
            s.changed(newparent.0, 0)?;
            let a = &mut s.node(ino.0)?.attr;
            a.nlink += 1;
            a.ctime = SystemTime::now();
            s.entry(ino.0)
        });
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        // O_TRUNC reaches us only because of FUSE_ATOMIC_O_TRUNC: truncate here.
        let r = match flags.0 & libc::O_TRUNC {
            0 => Ok(()),
            _ => self.with(|s| s.set_attr(ino.0, None, (None, None), Some(0), [None, None]).map(drop)),
        };
        match r {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let r = self.with(|s| match &s.node(ino.0)?.body {
            Body::File(d) => {
                let start = (offset as usize).min(d.len());
                Ok(d[start..(start + size as usize).min(d.len())].to_vec())
            }
            _ => Err(Errno::EISDIR),
        });
        match r {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = self.with(|s| {
            let n = s.node(ino.0)?;
            let Body::File(d) = &mut n.body else {
                return Err(Errno::EISDIR);
            };
            let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
            if (d.len() as u64) < end {
                resize_file(d, end)?;
            }
            d[offset as usize..end as usize].copy_from_slice(data);
            let len = d.len() as u64;
            set_size(&mut n.attr, len);
            touch(&mut n.attr);
            if write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID) {
                n.attr.perm &= !(libc::S_ISUID | libc::S_ISGID) as u16;
            }
            Ok(data.len() as u32)
        });
        match r {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if self.no_opendir {
            return reply.error(Errno::ENOSYS);
        }
        reply.opened(
            FileHandle(0),
            FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
        );
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let r = self.with(|s| {
            let v = listing(s, ino.0, offset)?;
            v.into_iter()
                .map(|(c, name, n)| Ok((c, name, n, s.node(n)?.attr.kind)))
                .collect::<Res<Vec<_>>>()
        });
        match r {
            Ok(v) => {
                for (c, name, n, kind) in v {
                    if reply.add(INodeNo(n), c, kind, OsStr::from_bytes(&name)) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdirplus(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectoryPlus) {
        // Each entry added counts as a lookup (not `.` and `..`), so the buffer is filled under
        // the lock; the reply goes out after it.
        let r = self.with(|s| {
            for (c, name, n) in listing(s, ino.0, offset)? {
                let a = s.node(n)?.attr;
                if reply.add(INodeNo(n), c, OsStr::from_bytes(&name), &TTL, &a, Generation(0)) {
                    break;
                }
                if c >= FIRST_COOKIE {
                    s.node(n)?.lookups += 1;
                }
            }
            Ok(())
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(
            STATFS_BLOCKS,
            STATFS_BLOCKS,
            STATFS_BLOCKS,
            1 << 28,
            1 << 28,
            4096,
            vexfs::format::MAX_NAME_LEN as u32,
            4096,
        );
    }

    fn getxattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENODATA);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        reply.ok();
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
        let body = Body::File(Vec::new());
        match self.with(|s| s.make(req, parent.0, name.as_bytes(), mode & !umask, body)) {
            Ok(a) => reply.created(&TTL, &a, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }
}
