//! Per-file metadata beyond stat: reading extended attributes (setting
//! and removing them are one core call each, in `requests.rs`) and the
//! kernel module's two flat vector-metadata ioctls (format-spec/12
//! §12.4), so that tools written for the module work on a FUSE mount too.

use super::helpers::{log_err, req_ctx};
use super::{control, VexFuse};
use crate::format::inode::FileType as VexfsFileType;
use crate::format::ioctl::{VEXFS_IOC_GET_VECTOR_META, VEXFS_IOC_SET_VECTOR_META};
use fuser::{Errno, INodeNo, ReplyIoctl, ReplyXattr, Request};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

impl VexFuse {
    /// GETXATTR; `size` 0 asks for the value's length only.
    pub(super) fn get_xattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
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

    /// LISTXATTR; `size` 0 asks for the list's length only.
    pub(super) fn list_xattrs(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
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

    /// IOCTL: set or get a regular file's vector metadata; everything
    /// else (other commands, other file types, `/.vexfs`) is ENOTTY.
    pub(super) fn vector_ioctl(&self, req: &Request, ino: INodeNo, cmd: u32, in_data: &[u8], reply: ReplyIoctl) {
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
