//! Hints to the kernel and the CPU about memory the map is about to
//! serve: page read-ahead ([`will_need`]) and cache-line prefetch
//! ([`prefetch`]). Neither can fail or change memory.

/// Ask the kernel to start reading the pages of `bytes` (a part of the
/// map) from the media: read-ahead for file data, which the map's
/// MADV_RANDOM otherwise turns off. A hint: never fails, changes nothing.
pub fn will_need(bytes: &[u8]) {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    let start = bytes.as_ptr() as usize & !(page - 1);
    let len = bytes.as_ptr() as usize + bytes.len() - start;
    // SAFETY: MADV_WILLNEED only schedules reads of the pages of a live
    // mapping (the page holding the slice's first byte belongs to the same
    // mapping as the slice); it cannot change memory, and on memory that
    // is not a file mapping it does nothing harmful. Errors are ignored.
    unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_WILLNEED) };
}

/// Ask the CPU to start loading the cache lines of `bytes` (a hint: the
/// graph walk prefetches the records it is about to score, as hnswlib
/// does). Never faults, changes nothing, and is a no-op off x86-64.
#[inline]
pub fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        // One hint per 64-byte line the slice touches: from the line
        // holding its first byte to the one holding its last (a slice
        // that does not start on a line, like a packed node record,
        // touches one more line than its length suggests). The pointer is
        // stepped with wrapping arithmetic (no slice bookkeeping per line:
        // a walk issues this for every node it scores).
        let start = bytes.as_ptr();
        let skew = start as usize % 64;
        let first = start.wrapping_sub(skew);
        for i in 0..(skew + bytes.len()).div_ceil(64) {
            let line = first.wrapping_add(i * 64);
            // SAFETY: PREFETCHT0 is a hint that cannot fault or change
            // memory, whatever the address; SSE, which it needs, is part
            // of the x86-64 baseline. `line` is the start of a cache line
            // holding bytes of the live slice.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}
