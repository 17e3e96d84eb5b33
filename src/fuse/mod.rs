//! The FUSE adapter: [`VexFuse`] turns fuser requests into calls on the
//! core ([`crate::fs::core::Fs`]) and core results into replies. Errors go
//! through [`FsError::errno`](crate::error::FsError::errno), the one
//! mapping to errno (plus ENXIO for SEEK_DATA/SEEK_HOLE past the end, see
//! [`convert::errno`]).
//!
//! Kernel caches: attributes, entries and missing names (negative
//! entries) live [`TTL`], an hour. The core is the only writer of a
//! mounted image and every change goes through this mount, whose own
//! changes FUSE invalidates itself; the few the core makes behind the
//! kernel's back (a vector attached through the ioctl or a control file
//! changes the file's ctime) are invalidated by [`Invalidator`] before
//! the request that made them is answered. So cached attributes stay
//! right however long they live, and a short TTL only costs round trips
//! (a walk or a rename of many files looked every name up again).
//!
//! The writeback cache is off unless asked for (`-o writeback_cache`):
//! with it the kernel keeps dirty pages, sizes and mtimes of its own and
//! writes them back later under other credentials, and ENOSPC surfaces at
//! fsync or close instead of at the write that caused it.
//!
//! File handles are always 0: the core is stateless per handle; open
//! files are only counted (`Fs::opened` / `Fs::released`) so that a file
//! unlinked while open lives until its last close.

pub mod bdi;
pub mod control;
pub mod convert;
mod data;
mod dirs;
mod entries;
pub mod events_file;
mod helpers;
mod invalidate;
mod meta;
mod requests;
pub mod server;
mod session;
mod virtual_files;

pub use invalidate::Invalidator;
pub use session::{negotiate_session, spawn_commit_timer, TICK};

use crate::fs::core::Fs;
use std::sync::Arc;
use std::time::Duration;

/// How long the kernel may cache attributes, directory entries and
/// missing names (see the module docs for why this is safe). ext4's
/// caches have no expiry; an hour bounds how long a missed invalidation
/// could show, should one ever be missed.
pub const TTL: Duration = Duration::from_secs(3600);
/// Largest write request (and readahead) asked of the kernel.
pub const MAX_WRITE: u32 = 1 << 20;
/// Chunk size of copy_file_range.
pub const COPY_CHUNK: usize = 1 << 20;
/// Directory entries fetched from the core per readdir request (a 4 KiB
/// reply holds at most 128 entries of 32 bytes).
pub const READDIR_BATCH: usize = 128;

/// Stack of every thread a mount runs: fuser's workers (set through
/// `RUST_MIN_STACK`, see `mount.vexfs`), the commit timer and the event
/// threads. A request keeps its large state (buffers, search heaps, htree
/// walks) on the heap, so its frames need far less; 256 KiB instead of
/// std's 2 MiB bounds a mount with 64 threads to 16 MiB of stack, and
/// tests/fuse_stack.rs runs the deepest paths on it so that a regression
/// (a big array on the stack, deep recursion) fails in tests, not in use.
pub const THREAD_STACK: usize = 256 * 1024;

/// A mounted image, served over FUSE.
pub struct VexFuse {
    pub fs: Arc<Fs>,
    /// The virtual `/.vexfs` directory and its open control files.
    control: control::Control,
    /// Readers of `/.vexfs/events`.
    events: Arc<events_file::EventFiles>,
    /// Attribute invalidations for changes the kernel did not see.
    invalidator: Invalidator,
    /// Ask for the kernel's writeback cache (`-o writeback_cache`).
    writeback_cache: bool,
    /// OPENDIR is answered ENOSYS: the kernel checks permissions itself
    /// (set at INIT, see [`negotiate_session`]).
    no_opendir: bool,
}

impl VexFuse {
    pub fn new(fs: Arc<Fs>) -> VexFuse {
        VexFuse {
            events: events_file::EventFiles::new(&fs),
            fs,
            control: control::Control::default(),
            invalidator: Invalidator::default(),
            writeback_cache: false,
            no_opendir: false,
        }
    }

    /// Ask for the writeback cache at init: the kernel then keeps written
    /// pages dirty and sends them in large WRITEs later (and owns mtime
    /// and size meanwhile). Off by default; docs/mount.md gives the cost.
    pub fn with_writeback_cache(mut self, on: bool) -> VexFuse {
        self.writeback_cache = on;
        self
    }

    /// Where the session's notifier goes once the session exists.
    pub fn invalidator(&self) -> Invalidator {
        self.invalidator.clone()
    }
}
