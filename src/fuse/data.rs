//! File data beyond READ and WRITE: SEEK_DATA/SEEK_HOLE (answered from
//! the core's extents) and copy_file_range (read and written in chunks).

use super::helpers::log_err;
use super::{VexFuse, COPY_CHUNK};
use crate::error::FsError;
use fuser::{Errno, INodeNo, ReplyLseek};

const SEEK_DATA: i32 = 3;
const SEEK_HOLE: i32 = 4;

impl VexFuse {
    pub(super) fn seek_data_hole(&self, ino: INodeNo, offset: i64, whence: i32, reply: ReplyLseek) {
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

    /// copy_file_range: [`COPY_CHUNK`] bytes at a time through the core's
    /// read and write; the number of bytes copied.
    pub(super) fn do_copy(
        &self,
        ino_in: u64,
        off_in: u64,
        ino_out: u64,
        off_out: u64,
        len: u64,
    ) -> Result<u32, FsError> {
        // The reply carries a u32; stop at the largest whole chunk below it.
        let len = len.min(u64::from(u32::MAX) & !(COPY_CHUNK as u64 - 1));
        let mut done = 0u64;
        while done < len {
            let want = (len - done).min(COPY_CHUNK as u64) as usize;
            let step = self
                .fs
                .read_data(ino_in, off_in + done, want)
                .and_then(|buf| match buf.is_empty() {
                    true => Ok(0),
                    false => self.fs.write_data(ino_out, off_out + done, &buf),
                });
            match step {
                Ok(0) => break,
                Ok(n) => done += n as u64,
                // Like write(2): report what was copied before the error.
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done as u32)
    }
}
