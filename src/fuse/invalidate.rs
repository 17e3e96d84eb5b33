//! Tells the kernel about inodes the core changed behind its attribute
//! cache ([`crate::fs::stale`]; an ioctl attaching a vector changes the
//! file's ctime, say): FUSE_NOTIFY_INVAL_INODE for each, sent by the
//! handler of the request that made the change *before* it replies, so the
//! caller's next `stat` already sees the change. Attributes only (offset
//! -1): the kernel then takes no inode or page lock, so sending from
//! inside a handler cannot wait on the request being handled.

use crate::fs::core::Fs;
use fuser::{INodeNo, Notifier};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The session's notifier, known only once the session exists (after the
/// adapter was built); until then nothing is cached to invalidate.
#[derive(Clone, Default)]
pub struct Invalidator(Arc<OnceLock<Notifier>>);

impl Invalidator {
    /// Hand over the session's notifier (once).
    pub fn connect(&self, notifier: Notifier) {
        let _ = self.0.set(notifier);
    }

    /// Invalidate every inode the core marked stale.
    pub fn flush(&self, fs: &Fs) {
        let stale = fs.stale.take(Duration::ZERO);
        let Some(notifier) = self.0.get() else { return };
        for ino in stale {
            // ENOENT just means the kernel had nothing cached.
            if let Err(e) = notifier.inval_inode(INodeNo(ino.into()), -1, 0) {
                if e.raw_os_error() != Some(libc::ENOENT) {
                    log::debug!("invalidating inode {ino}: {e}");
                }
            }
        }
    }
}
