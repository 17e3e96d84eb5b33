//! The adapter's small pieces: the caller's context from a request,
//! open-flag and mode conversions, error logging, and the replies and
//! multi-step operations the request handlers in `requests.rs` share.

use super::convert::{ctx, errno, file_attr};
use super::{control, VexFuse, TTL};
use crate::error::FsError;
use crate::format::inode::FileType as VexfsFileType;
use crate::fs::attrs::SetAttr;
use crate::fs::core::Attr;
use crate::fs::perm::{Ctx, MAY_READ, MAY_WRITE};
use fuser::{Errno, Generation, OpenFlags, ReplyEmpty, ReplyEntry, Request};
use log::debug;

pub(super) fn req_ctx(req: &Request) -> Ctx {
    ctx(req.uid(), req.gid(), req.pid())
}

/// Attributes for an entry whose inode could not be read (see readdirplus).
pub(super) fn placeholder_attr(ino: u32, dirent_type: u8) -> Attr {
    let kind = match dirent_type {
        2 => VexfsFileType::Directory,
        7 => VexfsFileType::Symlink,
        _ => VexfsFileType::Regular,
    };
    let t = crate::format::inode::Timestamp::default();
    Attr {
        ino,
        kind,
        perm: 0,
        nlink: 1,
        uid: 0,
        gid: 0,
        size: 0,
        blocks: 0,
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        rdev: 0,
        generation: 0,
    }
}

/// The entry a LOOKUP of a missing name is answered with: inode 0 means
/// "no such name" to the kernel, which then keeps a negative dentry.
pub(super) fn negative_entry() -> fuser::FileAttr {
    file_attr(&placeholder_attr(0, 0))
}

pub(super) fn gen(a: &Attr) -> Generation {
    Generation(a.generation.into())
}

/// MAY_* bits an open with these flags needs (O_TRUNC needs write
/// permission even with O_RDONLY, as in Linux's build_open_flags).
pub(super) fn open_mask(flags: OpenFlags) -> u32 {
    let trunc = if flags.0 & libc::O_TRUNC != 0 { MAY_WRITE } else { 0 };
    trunc
        | match flags.0 & libc::O_ACCMODE {
            libc::O_WRONLY => MAY_WRITE,
            libc::O_RDWR => MAY_READ | MAY_WRITE,
            _ => MAY_READ,
        }
}

/// Permission bits plus file type of a mknod/create mode, after the umask
/// (the kernel has already applied it unless FUSE_DONT_MASK, which we do
/// not ask for; masking again is harmless).
/// The caller of a create, mkdir or mknod with its umask: the core applies
/// it, unless the parent directory has a default ACL (FUSE_DONT_MASK).
pub(super) fn req_ctx_umask(req: &Request, umask: u32) -> Ctx {
    Ctx {
        umask: (umask & 0o7777) as u16,
        ..req_ctx(req)
    }
}

/// File type and permission bits of a create request.
pub(super) fn mode_bits(mode: u32) -> u16 {
    (mode & (libc::S_IFMT | 0o7777)) as u16
}

pub(super) fn log_err(op: &str, e: &FsError) -> Errno {
    match e {
        // Damage and I/O failures are what an administrator must hear
        // about: always logged, with the location the error carries.
        FsError::Corrupt(_) | FsError::Io { .. } | FsError::Truncated { .. } => report(&format!("{op}: {e}")),
        _ => debug!("{op}: {e}"),
    }
    errno(e)
}

/// A problem line on stderr (foreground) and in the system log (the
/// daemon's stderr is /dev/null): syslog's datagram socket, facility
/// daemon, severity warning.
pub(super) fn report(msg: &str) {
    eprintln!("vexfs: {msg}");
    if let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() {
        let _ = sock.send_to(
            format!("<28>vexfs[{}]: {msg}", std::process::id()).as_bytes(),
            "/dev/log",
        );
    }
}

impl VexFuse {
    pub(super) fn reply_entry(&self, op: &str, r: crate::Result<Attr>, reply: ReplyEntry) {
        match r {
            Ok(a) => reply.entry(&TTL, &file_attr(&a), gen(&a)),
            Err(e) => reply.error(log_err(op, &e)),
        }
    }

    /// The kernel forgot nodes `inos` (FORGET, BATCH_FORGET): free those
    /// unlinked meanwhile, unless the kernel has an inode for one again.
    /// That can only be a later kernel inode of the same file, the FORGET
    /// a late one of an earlier (see [`crate::fs::lifecycle`]); its own
    /// FORGET follows.
    pub(super) fn forget_nodes(&self, inos: &[u64]) {
        let gone: Vec<u64> = inos
            .iter()
            .copied()
            .filter(|&n| !control::is_virtual(n) && self.fs.awaits_forget(n))
            .filter(|&n| !self.invalidator.kernel_holds(n))
            .collect();
        if gone.is_empty() {
            return;
        }
        if let Err(e) = self.fs.forgotten(&gone) {
            log_err("forget", &e);
        }
    }

    pub(super) fn reply_empty(&self, op: &str, r: crate::Result<()>, reply: ReplyEmpty) {
        match r {
            Ok(()) => {
                self.invalidator.flush(&self.fs);
                reply.ok()
            }
            Err(e) => reply.error(log_err(op, &e)),
        }
    }

    /// open(2) without default_permissions: the kernel does not check
    /// read/write permission on open, the core's `access` does.
    pub(super) fn do_open(&self, req: &Request, ino: u64, flags: OpenFlags) -> crate::Result<()> {
        let c = req_ctx(req);
        self.fs.access(&c, ino, open_mask(flags))?;
        if flags.0 & libc::O_TRUNC != 0 {
            // Sent only because we ask for FUSE_ATOMIC_O_TRUNC; Linux
            // truncates on O_RDONLY|O_TRUNC too.
            let s = SetAttr {
                size: Some(0),
                ..SetAttr::default()
            };
            self.fs.setattr(&c, ino, &s)?;
        }
        self.fs.opened(ino)
    }

    /// `.`, `..` and the control files, for readdir of `/.vexfs`.
    pub(super) fn control_entries(&self) -> Vec<(&'static str, u64, fuser::FileType)> {
        let mut v = vec![
            (".", control::DIR_INO, fuser::FileType::Directory),
            ("..", 1, fuser::FileType::Directory),
        ];
        v.extend(
            control::ENTRIES
                .iter()
                .map(|(n, i)| (*n, *i, fuser::FileType::RegularFile)),
        );
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_masks_follow_the_access_mode() {
        assert_eq!(open_mask(OpenFlags(libc::O_RDONLY)), MAY_READ);
        assert_eq!(open_mask(OpenFlags(libc::O_WRONLY | libc::O_APPEND)), MAY_WRITE);
        assert_eq!(open_mask(OpenFlags(libc::O_RDWR)), MAY_READ | MAY_WRITE);
        assert_eq!(
            open_mask(OpenFlags(libc::O_RDONLY | libc::O_TRUNC)),
            MAY_READ | MAY_WRITE
        );
    }

    #[test]
    fn create_modes_keep_type_and_permission_bits() {
        assert_eq!(mode_bits(libc::S_IFIFO | 0o4666), (libc::S_IFIFO | 0o4666) as u16);
        assert_eq!(mode_bits(0o1_000_777), 0o777, "bits above the type are dropped");
    }
}
