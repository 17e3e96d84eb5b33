//! Appending to and reading the event ring through a transaction
//! (format-spec/11 §11.5-11.8). The ring's blocks and header are
//! journaled like other metadata, so an event commits together with the
//! change it describes.

use super::record::Event;
use crate::error::{Expected, FsError, Result};
use crate::format::events::{parse_header, EventRingHeader, MAX_EVENTS_PER_BLOCK};
use crate::format::features::RO_COMPAT_EVENTS;
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64};
use crate::fs::txn::Txn;
use crate::layout::Geometry;
use zerocopy::IntoBytes;

/// Whether the image records events.
pub fn enabled(g: &Geometry) -> bool {
    g.features.has_ro_compat(RO_COMPAT_EVENTS) && g.events.blocks >= 2
}

/// The ring header as the transaction sees it.
pub fn header(txn: &Txn<'_>, g: &Geometry, seed: u32) -> Result<EventRingHeader> {
    let v = g.events.start;
    parse_header(txn.block(v)?, v, seed, g.events.blocks).cloned()
}

fn store_header(txn: &mut Txn<'_>, g: &Geometry, seed: u32, h: &mut EventRingHeader) -> Result<()> {
    let v = g.events.start;
    h.er_checksum
        .set(crate::format::events::header_checksum(h.as_bytes(), v, seed));
    txn.block_mut(v)?[..72].copy_from_slice(h.as_bytes());
    Ok(())
}

/// Image block of ring block `k`.
fn ring_block(g: &Geometry, k: u64) -> u64 {
    g.events.start + 1 + k
}

/// Where a record was written: (ring block, byte offset).
pub type Place = (u64, usize);

/// The valid records of ring block `k`, in order (bounded by
/// MAX_EVENTS_PER_BLOCK: a block cannot hold more).
pub fn block_events(txn: &Txn<'_>, g: &Geometry, seed: u32, k: u64) -> Result<Vec<(Event, usize)>> {
    let b = ring_block(g, k);
    let bytes = txn.block(b)?;
    let mut out = Vec::new();
    let mut off = 0;
    for _ in 0..MAX_EVENTS_PER_BLOCK {
        let Some(e) = Event::decode(&bytes[off..], b * BLOCK_SIZE_U64 + off as u64, seed)? else {
            break;
        };
        let len = e.encoded_len();
        out.push((e, off));
        off += len;
        if off + 88 > BLOCK_SIZE {
            break;
        }
    }
    Ok(out)
}

/// Append `ev` (its `seq` is assigned here); returns its place.
pub fn append(txn: &mut Txn<'_>, g: &Geometry, seed: u32, ev: &mut Event) -> Result<Place> {
    let mut h = header(txn, g, seed)?;
    let ring = h.er_ring_blocks.get();
    ev.seq = h.er_next_seq.get();
    let bytes = ev.encode(seed);
    let empty = h.er_oldest_seq.get() == h.er_next_seq.get();
    let (mut head, mut off) = (h.er_head_block.get(), h.er_head_offset.get() as usize);
    if off + bytes.len() > BLOCK_SIZE {
        let next = (head + 1) % ring;
        if !empty && next == u64::from(h.er_tail_block.get()) {
            drop_tail(txn, g, seed, &mut h)?;
        }
        txn.block_new(ring_block(g, next))?;
        (head, off) = (next, 0);
    }
    if empty {
        h.er_tail_block.set(head as u32);
        h.er_oldest_seq.set(ev.seq);
    }
    txn.block_mut(ring_block(g, head))?[off..off + bytes.len()].copy_from_slice(&bytes);
    h.er_head_block.set(head);
    h.er_head_offset.set((off + bytes.len()) as u32);
    h.er_next_seq.set(ev.seq + 1);
    store_header(txn, g, seed, &mut h)?;
    Ok((head, off))
}

/// Drop the tail block whole (§11.6).
fn drop_tail(txn: &Txn<'_>, g: &Geometry, seed: u32, h: &mut EventRingHeader) -> Result<()> {
    let ring = h.er_ring_blocks.get();
    let tail = u64::from(h.er_tail_block.get());
    let dropped = block_events(txn, g, seed, tail)?.len() as u64;
    let new_tail = (tail + 1) % ring;
    let first = block_events(txn, g, seed, new_tail)?.first().map(|(e, _)| e.seq);
    h.er_dropped.set(h.er_dropped.get() + dropped);
    h.er_tail_block.set(new_tail as u32);
    h.er_oldest_seq.set(first.unwrap_or(h.er_next_seq.get()));
    Ok(())
}

/// Rewrite the record at `place` (same length: only times and `aux` of a
/// coalesced write event change).
pub fn rewrite(txn: &mut Txn<'_>, g: &Geometry, seed: u32, place: Place, ev: &Event) -> Result<()> {
    let bytes = ev.encode(seed);
    let blk = txn.block_mut(ring_block(g, place.0))?;
    let at = place.1;
    let old_len = u16::from_le_bytes([blk[at + 2], blk[at + 3]]) as usize;
    if old_len != bytes.len() {
        return Err(FsError::Invalid("coalesced event changed length".into()));
    }
    blk[at..at + bytes.len()].copy_from_slice(&bytes);
    Ok(())
}

/// Events from `w` up to (not including) `end`, at most `max`. Returns
/// how many events from `w` on were dropped before they could be read
/// (`missed`), the events, and the position after the last one returned.
pub fn read(txn: &Txn<'_>, g: &Geometry, seed: u32, w: u64, end: u64, max: usize) -> Result<(u64, Vec<Event>, u64)> {
    let h = header(txn, g, seed)?;
    let (oldest, next) = (h.er_oldest_seq.get(), h.er_next_seq.get());
    let end = end.min(next);
    // Staged appends may have dropped blocks past the committed end: only
    // committed events count as missed, and a position never passes `end`
    // (numbers above it may be given again after a crash).
    let oldest = oldest.min(end);
    let missed = oldest.saturating_sub(w);
    let mut w = w.max(oldest);
    let mut out = Vec::new();
    if w >= end {
        return Ok((missed, out, w));
    }
    let ring = h.er_ring_blocks.get();
    let tail = u64::from(h.er_tail_block.get());
    let count = (h.er_head_block.get() + ring - tail) % ring + 1;
    let mut k = first_block_holding(txn, g, seed, tail, ring, count, w)?;
    // At most `count` blocks are visited: the ring holds no more.
    while k < count && out.len() < max {
        for (e, _) in block_events(txn, g, seed, (tail + k) % ring)? {
            if e.seq >= w && e.seq < end && out.len() < max {
                if e.seq != w {
                    let at = ring_block(g, (tail + k) % ring) * BLOCK_SIZE_U64;
                    return Err(FsError::corrupt("event record", at, "ev_seq", Expected::Eq(w), e.seq));
                }
                w += 1;
                out.push(e);
            }
        }
        k += 1;
    }
    Ok((missed, out, w))
}

/// Index (from the tail) of the last block whose first record is <= w: a
/// binary search, the ring being in sequence order from the tail.
fn first_block_holding(
    txn: &Txn<'_>,
    g: &Geometry,
    seed: u32,
    tail: u64,
    ring: u64,
    count: u64,
    w: u64,
) -> Result<u64> {
    let (mut lo, mut hi) = (0u64, count);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let first = block_events(txn, g, seed, (tail + mid) % ring)?
            .first()
            .map(|(e, _)| e.seq);
        match first {
            Some(s) if s <= w => lo = mid,
            _ => hi = mid,
        }
    }
    Ok(lo)
}
