//! Inodes the core changed without the kernel asking through them (an
//! ioctl attaching a vector changes the file's ctime, say). The kernel
//! caches attributes for a TTL; the FUSE adapter drains this list and sends
//! FUSE_NOTIFY_INVAL_INODE for each, so `stat` sees the change at once.

use parking_lot::{Condvar, Mutex};
use std::time::Duration;

/// Most inodes remembered between two drains. Why: bounds the memory a
/// burst of changes can take; past it the kernel's attribute TTL (1 s)
/// still ends the staleness.
pub const MAX_STALE: usize = 4096;

#[derive(Default)]
pub struct Stale {
    inodes: Mutex<Vec<u32>>,
    changed: Condvar,
}

impl Stale {
    /// Remember that inode `ino`'s attributes changed behind the kernel.
    pub fn mark(&self, ino: u32) {
        let mut v = self.inodes.lock();
        if v.len() < MAX_STALE && !v.contains(&ino) {
            v.push(ino);
            self.changed.notify_one();
        }
    }

    /// The inodes marked since the last call, waiting up to `timeout` for
    /// one when there is none.
    pub fn take(&self, timeout: Duration) -> Vec<u32> {
        let mut v = self.inodes.lock();
        if v.is_empty() {
            self.changed.wait_for(&mut v, timeout);
        }
        std::mem::take(&mut *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_deduplicated_bounded_and_drained() {
        let s = Stale::default();
        s.mark(5);
        s.mark(5);
        s.mark(7);
        assert_eq!(s.take(Duration::ZERO), vec![5, 7]);
        assert!(s.take(Duration::from_millis(1)).is_empty());
        for i in 0..(MAX_STALE as u32 + 10) {
            s.mark(i);
        }
        assert_eq!(s.take(Duration::ZERO).len(), MAX_STALE);
    }
}
