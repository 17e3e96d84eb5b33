//! Turning SIGBUS on a mapped image into EIO instead of a dead daemon.
//!
//! The image's length is checked against the superblock before it is
//! mapped, but nothing stops another process from truncating the file while
//! it is mounted; touching a mapped page past the new end then raises
//! SIGBUS, which would kill the daemon (and every open file with it).
//!
//! Every map registers its address range here. A process-wide SIGBUS
//! handler looks the faulting address up: inside a registered map, it puts
//! a private zero-filled page over the faulting page (so the instruction
//! completes, reading zeros and writing nowhere), marks that map as
//! *shrunk* and returns. The owner checks [`Region::check`] after every
//! operation that touched the map and turns the mark into EIO (and the
//! filesystem read-only), so nothing read from the zero page is handed out
//! and nothing written to it is acknowledged. Faults outside every
//! registered map go to the handler that was installed before ours (Rust's
//! stack-overflow reporter, or the default action).

use crate::error::{FsError, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Maps registered at once. A process maps one image (the daemon) or a few
/// (tools, tests running in parallel); past this many a map is simply not
/// protected, which is what it was before this module existed.
const MAX_REGIONS: usize = 256;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    shrunk: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to build SLOTS
const EMPTY: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    shrunk: AtomicBool::new(false),
};
static SLOTS: [Slot; MAX_REGIONS] = [EMPTY; MAX_REGIONS];
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
/// The SIGBUS action before ours, for faults that are not ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// A registered map; unregisters itself on drop (before the unmap, as the
/// owner declares it before the map).
pub struct Region {
    slot: Option<usize>,
}

impl Region {
    /// Register `len` bytes at `start` (installing the handler once).
    pub fn register(start: *const u8, len: usize) -> Region {
        install();
        for (i, s) in SLOTS.iter().enumerate() {
            // Claim a free slot by its length (0 = free), then publish start.
            if s.len
                .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                s.shrunk.store(false, Ordering::Relaxed);
                s.start.store(start as usize, Ordering::Relaxed);
                s.len.store(len.max(1), Ordering::Release);
                return Region { slot: Some(i) };
            }
        }
        Region { slot: None }
    }

    /// EIO once a page of this map was found beyond the end of the file.
    pub fn check(&self) -> Result<()> {
        match self.slot {
            Some(i) if SLOTS[i].shrunk.load(Ordering::Acquire) => Err(shrunk_error()),
            _ => Ok(()),
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            SLOTS[i].start.store(0, Ordering::Relaxed);
            SLOTS[i].len.store(0, Ordering::Release);
        }
    }
}

/// The error every operation gets once the image shrank under the map.
pub fn shrunk_error() -> FsError {
    FsError::io(
        "the image file shrank while mapped (truncated by another process?); refusing to use it".to_string(),
        std::io::Error::from_raw_os_error(libc::EIO),
    )
}

fn install() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            PAGE_SIZE.store(page as usize, Ordering::Relaxed);
        }
        // SAFETY: zeroed is a valid sigaction (no handler, empty mask);
        // sigemptyset and sigaction get valid pointers to locals. The
        // handler only uses async-signal-safe operations (atomics, mmap,
        // sigaction) and does not allocate.
        unsafe {
            let mut ours: libc::sigaction = std::mem::zeroed();
            ours.sa_sigaction = on_sigbus as *const () as usize;
            ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut ours.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGBUS, &ours, &mut previous);
            previous
        }
    });
}

/// The registered map holding `addr`, if any.
fn slot_of(addr: usize) -> Option<&'static Slot> {
    SLOTS.iter().find(|s| {
        let len = s.len.load(Ordering::Acquire);
        let start = s.start.load(Ordering::Relaxed);
        len != 0 && len != usize::MAX && addr >= start && addr - start < len
    })
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(slot) = slot_of(addr) {
        let page = addr & !(PAGE_SIZE.load(Ordering::Relaxed) - 1);
        // SAFETY: the page lies inside a live map that this process owns
        // (it is registered until just before the unmap); replacing it with
        // a private anonymous page only changes what that map shows there,
        // which the owner will refuse to use (the shrunk mark).
        let p = unsafe {
            libc::mmap(
                page as *mut libc::c_void,
                PAGE_SIZE.load(Ordering::Relaxed),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            slot.shrunk.store(true, Ordering::Release);
            return;
        }
    }
    chain(sig, info, ctx);
}

/// Not our fault: hand it to the previous handler, or restore the default
/// action so that returning re-raises it.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let Some(prev) = PREVIOUS.get() else { return };
    let handler = prev.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: `prev` is a sigaction the kernel gave us; reinstalling it
        // is async-signal-safe.
        unsafe { libc::sigaction(libc::SIGBUS, prev, std::ptr::null_mut()) };
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed as an SA_SIGINFO
        // handler with this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the previous handler was installed as a plain handler.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(sig);
    }
}
