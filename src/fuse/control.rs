//! The virtual control directory `/.vexfs` (format-spec/12 §12.5): it has
//! no inode on disk. `/.vexfs/search` answers nearest-neighbour queries:
//! one open file description is one conversation: write a request, read
//! the reply (the protocol is in [`crate::vector::control`]). Replies are
//! served from this open file's own cursor (the file is opened with
//! direct I/O and has no size), so `read` after `write` works without a
//! seek, from a shell (`exec 3<>`) as from Python (`open(.., "r+b")`).

use crate::error::FsError;
use crate::fs::core::Fs;
use crate::fs::perm::Ctx;
use crate::vector::{admin, control};
use fuser::{FileAttr, FileType, INodeNo};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// The reserved name in the root directory.
pub const DIR_NAME: &[u8] = b".vexfs";
/// Inode numbers above every on-disk inode (those are 32-bit).
pub const DIR_INO: u64 = 1 << 32 | 1;
pub const SEARCH_INO: u64 = 1 << 32 | 2;
pub const COLLECTIONS_INO: u64 = 1 << 32 | 3;
pub const EVENTS_INO: u64 = 1 << 32 | 4;
/// File handles of control files start here (real files use 0).
const FIRST_FH: u64 = 1 << 32;
/// Most concurrent open control files. Why: each buffers a request and a
/// reply; this bounds the daemon's memory whatever clients do.
const MAX_SESSIONS: usize = 1024;

/// Entries of `/.vexfs`: (name, inode).
pub const ENTRIES: [(&str, u64); 3] = [
    ("search", SEARCH_INO),
    ("collections", COLLECTIONS_INO),
    ("events", EVENTS_INO),
];

#[derive(Default)]
struct Session {
    ino: u64,
    /// Who opened the file (commands run with these credentials).
    ctx: Ctx,
    request: Vec<u8>,
    reply: Vec<u8>,
    read: usize,
}

pub struct Control {
    sessions: Mutex<HashMap<u64, Session>>,
    next_fh: AtomicU64,
    mounted: SystemTime,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            sessions: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(FIRST_FH),
            mounted: SystemTime::now(),
        }
    }
}

pub fn is_virtual(ino: u64) -> bool {
    ino == DIR_INO || ino == SEARCH_INO || ino == COLLECTIONS_INO || ino == EVENTS_INO
}

/// The reply to a complete request on control file `ino`.
fn answer(fs: &Fs, ino: u64, ctx: &Ctx, request: &[u8]) -> Result<Vec<u8>, FsError> {
    match ino {
        COLLECTIONS_INO => admin::command(fs, ctx, request),
        _ => control::answer(fs, request),
    }
}

/// Whether `parent/name` is the reserved control directory.
pub fn is_reserved(parent: u64, name: &[u8]) -> bool {
    parent == u64::from(crate::format::ROOT_INO) && name == DIR_NAME
}

impl Control {
    pub fn attr(&self, ino: u64) -> Option<FileAttr> {
        let (kind, perm, nlink) = match ino {
            DIR_INO => (FileType::Directory, 0o555, 2),
            SEARCH_INO => (FileType::RegularFile, 0o666, 1),
            COLLECTIONS_INO => (FileType::RegularFile, 0o644, 1),
            EVENTS_INO => (FileType::RegularFile, 0o666, 1),
            _ => return None,
        };
        Some(FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: self.mounted,
            mtime: self.mounted,
            ctime: self.mounted,
            crtime: self.mounted,
            kind,
            perm,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    /// Lookup inside `/.vexfs`, or of `/.vexfs` itself.
    pub fn lookup(&self, parent: u64, name: &[u8]) -> Option<Result<FileAttr, FsError>> {
        if is_reserved(parent, name) {
            return self.attr(DIR_INO).map(Ok);
        }
        if parent != DIR_INO {
            return None;
        }
        let found = ENTRIES.iter().find(|(n, _)| n.as_bytes() == name);
        Some(found.and_then(|(_, ino)| self.attr(*ino)).ok_or(FsError::NotFound))
    }

    /// Open a control file: a new conversation.
    pub fn open(&self, ino: u64, ctx: Ctx) -> Result<u64, FsError> {
        if ino == DIR_INO {
            return Err(FsError::IsDir);
        }
        let mut s = self.sessions.lock();
        if s.len() >= MAX_SESSIONS {
            return Err(FsError::NoSpace);
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        s.insert(
            fh,
            Session {
                ino,
                ctx,
                ..Session::default()
            },
        );
        Ok(fh)
    }

    pub fn release(&self, fh: u64) {
        self.sessions.lock().remove(&fh);
    }

    /// Append request bytes; once the request is whole, run it. A failed
    /// request fails the write, and its reply is one JSON error line.
    pub fn write(&self, fs: &Fs, fh: u64, data: &[u8]) -> Result<usize, FsError> {
        let request = {
            let mut s = self.sessions.lock();
            let sess = s
                .get_mut(&fh)
                .ok_or(FsError::Invalid("not an open control file".into()))?;
            if !sess.reply.is_empty() {
                // A new query on the same file.
                sess.reply.clear();
                sess.read = 0;
            }
            if sess.request.len() + data.len() > control::MAX_REQUEST {
                sess.request.clear();
                return Err(FsError::Invalid(format!(
                    "request longer than {} bytes",
                    control::MAX_REQUEST
                )));
            }
            sess.request.extend_from_slice(data);
            if !control::is_complete(&sess.request) {
                return Ok(data.len());
            }
            (sess.ino, sess.ctx.clone(), std::mem::take(&mut sess.request))
        };
        let (ino, ctx, request) = request;
        // The search runs without the session lock held.
        let (reply, r) = match answer(fs, ino, &ctx, &request) {
            Ok(reply) => (reply, Ok(data.len())),
            Err(e) => (control::error_line(&e), Err(e)),
        };
        if let Some(sess) = self.sessions.lock().get_mut(&fh) {
            sess.reply = reply;
            sess.read = 0;
        }
        r
    }

    /// The next `size` reply bytes (an unanswered partial request is run
    /// now, so a request without a final newline works too).
    pub fn read(&self, fs: &Fs, fh: u64, size: usize) -> Result<Vec<u8>, FsError> {
        let pending = {
            let mut s = self.sessions.lock();
            let sess = s
                .get_mut(&fh)
                .ok_or(FsError::Invalid("not an open control file".into()))?;
            let ctx = sess.ctx.clone();
            match (sess.reply.is_empty(), sess.request.is_empty(), sess.ino) {
                (true, false, _) => Some((sess.ino, ctx, std::mem::take(&mut sess.request))),
                // Reading the collections file without a command lists them.
                (true, true, COLLECTIONS_INO) if sess.read == 0 => Some((sess.ino, ctx, Vec::new())),
                _ => None,
            }
        };
        if let Some((ino, ctx, request)) = pending {
            let r = match (ino, request.is_empty()) {
                (COLLECTIONS_INO, true) => admin::list(fs),
                _ => answer(fs, ino, &ctx, &request),
            };
            let reply = r.unwrap_or_else(|e| control::error_line(&e));
            if let Some(sess) = self.sessions.lock().get_mut(&fh) {
                sess.reply = reply;
            }
        }
        let mut s = self.sessions.lock();
        let sess = s
            .get_mut(&fh)
            .ok_or(FsError::Invalid("not an open control file".into()))?;
        let end = sess.reply.len().min(sess.read + size);
        let out = sess.reply[sess.read..end].to_vec();
        sess.read = end;
        Ok(out)
    }
}
