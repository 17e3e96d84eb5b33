//! Tells the kernel about inodes the core changed behind its attribute
//! cache ([`crate::fs::stale`]; an ioctl attaching a vector changes the
//! file's ctime, say): FUSE_NOTIFY_INVAL_INODE for each, sent by the
//! handler of the request that made the change *before* it replies, so the
//! caller's next `stat` already sees the change. Attributes only (offset
//! -1): the kernel then takes no inode or page lock, so sending from
//! inside a handler cannot wait on the request being handled.
//!
//! The same notification, written to the device directly, also asks
//! whether the kernel still caches a node ([`Invalidator::kernel_holds`]).

use crate::fs::core::Fs;
use fuser::{INodeNo, Notifier};
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// FUSE_NOTIFY_INVAL_INODE (include/uapi/linux/fuse.h).
const NOTIFY_INVAL_INODE: i32 = 2;

#[derive(Default)]
struct Inner {
    notifier: OnceLock<Notifier>,
    /// A duplicate of the session's `/dev/fuse` descriptor.
    device: OnceLock<File>,
}

/// The session's notifier, known only once the session exists (after the
/// adapter was built); until then nothing is cached to invalidate.
#[derive(Clone, Default)]
pub struct Invalidator(Arc<Inner>);

impl Invalidator {
    /// Hand over the session's notifier (once).
    pub fn connect(&self, notifier: Notifier) {
        let _ = self.0.notifier.set(notifier);
    }

    /// Hand over a duplicate of the session's device descriptor (once),
    /// for [`Invalidator::kernel_holds`].
    pub fn connect_device(&self, fd: OwnedFd) {
        let _ = self.0.device.set(File::from(fd));
    }

    /// Invalidate every inode the core marked stale.
    pub fn flush(&self, fs: &Fs) {
        let stale = fs.stale.take(Duration::ZERO);
        let Some(notifier) = self.0.notifier.get() else { return };
        for ino in stale {
            // ENOENT just means the kernel had nothing cached.
            if let Err(e) = notifier.inval_inode(INodeNo(ino.into()), -1, 0) {
                if e.raw_os_error() != Some(libc::ENOENT) {
                    log::debug!("invalidating inode {ino}: {e}");
                }
            }
        }
    }

    /// Does the kernel still have an inode for node `ino`? Asked with an
    /// attribute invalidation (harmless: the next `stat` asks GETATTR),
    /// which the kernel answers ENOENT when it has none; an inode being
    /// evicted counts as none (the kernel waits for the eviction to end).
    /// fuser's [`Notifier`] hides that answer, so the notification is
    /// written here. Without the device, or on any other error: no.
    pub fn kernel_holds(&self, ino: u64) -> bool {
        let Some(mut dev) = self.0.device.get() else {
            return false;
        };
        match dev.write(&inval_inode_message(ino)) {
            Ok(_) => true,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
            Err(e) => {
                log::debug!("asking the kernel about node {ino}: {e}");
                false
            }
        }
    }
}

/// fuse_out_header (len, error = the notify code, unique 0) and
/// fuse_notify_inval_inode_out (ino, off -1: attributes only, len 0).
fn inval_inode_message(ino: u64) -> [u8; 40] {
    let mut m = [0u8; 40];
    m[0..4].copy_from_slice(&40u32.to_ne_bytes());
    m[4..8].copy_from_slice(&NOTIFY_INVAL_INODE.to_ne_bytes());
    m[16..24].copy_from_slice(&ino.to_ne_bytes());
    m[24..32].copy_from_slice(&(-1i64).to_ne_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_an_attribute_invalidation_of_the_node() {
        let m = inval_inode_message(0x1234);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 40);
        assert_eq!(i32::from_ne_bytes(m[4..8].try_into().unwrap()), NOTIFY_INVAL_INODE);
        assert_eq!(
            u64::from_ne_bytes(m[8..16].try_into().unwrap()),
            0,
            "unique 0: a notification"
        );
        assert_eq!(u64::from_ne_bytes(m[16..24].try_into().unwrap()), 0x1234);
        assert_eq!(i64::from_ne_bytes(m[24..32].try_into().unwrap()), -1);
        assert_eq!(i64::from_ne_bytes(m[32..40].try_into().unwrap()), 0);
        assert!(!Invalidator::default().kernel_holds(5), "not connected: no");
    }
}
