//! Requests on the virtual `/.vexfs` files: open, read, write and release
//! go to the control files' buffers ([`super::control`]) or to the event
//! stream ([`super::events_file`]). Their inodes are above every on-disk
//! one, so the core never sees them.

use super::convert::errno;
use super::helpers::{log_err, req_ctx};
use super::{control, VexFuse};
use fuser::{FileHandle, FopenFlags, OpenFlags, ReplyData, ReplyOpen, ReplyWrite, Request};

impl VexFuse {
    /// Open a control file, or the event stream (`O_NONBLOCK` makes its
    /// reads return at once when no event waits). Answered uncached.
    pub(super) fn open_virtual(&self, req: &Request, ino: u64, flags: OpenFlags, reply: ReplyOpen) {
        let opened = self.control.open(ino, req_ctx(req)).and_then(|fh| match ino {
            control::EVENTS_INO => {
                let nonblock = flags.0 & libc::O_NONBLOCK != 0;
                self.events.open(fh, nonblock, req.pid()).map(|()| fh)
            }
            _ => Ok(fh),
        });
        match opened {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(log_err("open", &e)),
        }
    }

    pub(super) fn read_virtual(&self, ino: u64, fh: u64, size: u32, reply: ReplyData) {
        if ino == control::EVENTS_INO {
            return self.events.read(fh, size as usize, reply);
        }
        match self.control.read(&self.fs, fh, size as usize) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(errno(&e)),
        }
    }

    pub(super) fn write_virtual(&self, ino: u64, fh: u64, data: &[u8], reply: ReplyWrite) {
        if ino == control::EVENTS_INO {
            return match self.events.write(fh, data) {
                Ok(n) => reply.written(n as u32),
                Err(e) => reply.error(errno(&e)),
            };
        }
        match self.control.write(&self.fs, fh, data) {
            Ok(n) => {
                // A command may have attached vectors (changing ctimes).
                self.invalidator.flush(&self.fs);
                reply.written(n as u32)
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    pub(super) fn release_virtual(&self, fh: u64) {
        self.control.release(fh);
        self.events.release(fh);
    }
}
