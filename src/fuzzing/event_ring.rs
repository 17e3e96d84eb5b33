//! Event records and the event ring, read through the filesystem's own
//! ring reader over the event region of an image mkfs made (built once
//! per process).

use super::{geometry_of, temp_image_path, template_options, TempImage, FUZZ_BLOCK, FUZZ_SEED};
use crate::events::{ring, Event, Op};
use crate::format::events::{self, EventRecord};
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64};
use crate::fs::txn::Txn;
use crate::layout::Geometry;
use crate::mkfs::Sizing;
use std::sync::{Mutex, OnceLock};
use zerocopy::FromBytes;

/// Event records decoded from the start of `data` onwards, the way a ring
/// block is read (each record's `ev_len` after the one before, at most
/// [`events::MAX_EVENTS_PER_BLOCK`]), checking that a decoded record
/// encodes and decodes to itself.
fn decode_events(data: &[u8], seed: u32) {
    let mut off = 0;
    for _ in 0..events::MAX_EVENTS_PER_BLOCK {
        let Some(rest) = data.get(off..) else { return };
        let Ok(Some(e)) = Event::decode(rest, FUZZ_BLOCK * BLOCK_SIZE_U64 + off as u64, seed) else {
            return;
        };
        let _ = (e.to_json(), Op::code_of(events::op_name(e.op)));
        let again = Event::decode(&e.encode(seed), 0, seed);
        assert!(
            matches!(&again, Ok(Some(a)) if *a == e),
            "event record does not survive encode and decode: {e:?} -> {again:?}"
        );
        off += e.encoded_len();
    }
}

/// Recompute the checksum of every record a ring reader would reach from
/// the start of `block` (names and `ev_len` as they are; stops where a
/// record's names or length cannot be valid, as the reader does).
fn seal_event_records(block: &mut [u8], seed: u32) {
    let mut off = 0;
    for _ in 0..events::MAX_EVENTS_PER_BLOCK {
        let Some(rest) = block.get_mut(off..) else { return };
        let Ok((r, _)) = EventRecord::ref_from_prefix(rest) else {
            return;
        };
        if r.ev_magic.get() == 0 {
            return;
        }
        let names = usize::from(r.ev_name_len.get()) + usize::from(r.ev_name2_len.get());
        let len = (88 + names).next_multiple_of(events::EVENT_ALIGN);
        let seq = r.ev_seq.get();
        if names > 2 * crate::format::MAX_NAME_LEN || len > rest.len() {
            return;
        }
        let sum = events::record_checksum(&rest[..len], seq, seed);
        rest[80..84].copy_from_slice(&sum.to_le_bytes());
        off += len;
    }
}

/// Event records on their own ([`Event::decode`], each record that decodes
/// re-encoded and decoded again), from the start of the input and from the
/// ring contents below, each also on a copy whose records' checksums were
/// recomputed; then a ring made of the input.
///
/// The ring: the input is one control byte, a 72-byte ring header, then
/// ring block contents. It is written over the event region of an image
/// mkfs made (16 blocks: the header and 15 ring blocks), the contents in
/// pieces of `64 × (1 + (control & 0x3f))` bytes, one piece at the start of
/// each ring block from the header's tail block on. Control bit 6 recomputes
/// the header's checksum, bit 7 every reachable record's. Then
/// [`ring::header`], [`ring::block_events`] of every ring block and
/// [`ring::read`] from several positions to several ends, all with
/// [`FUZZ_SEED`] through a read-only [`Txn`].
pub fn event_ring(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let (head, body) = rest.split_at(rest.len().min(72));
    for records in [data, body] {
        decode_events(records, FUZZ_SEED);
        let mut copy = records.to_vec();
        seal_event_records(&mut copy, FUZZ_SEED);
        decode_events(&copy, FUZZ_SEED);
    }
    let Some(t) = ring_template() else { return };
    let mut bytes = RING_POOL
        .lock()
        .ok()
        .and_then(|mut p| p.pop())
        .unwrap_or_else(|| t.bytes.clone());
    let g = &t.geometry;
    let ring_blocks = g.events.blocks - 1;
    let start = g.events.start as usize * BLOCK_SIZE;
    bytes[start..start + head.len()].copy_from_slice(head);
    if control & 0x40 != 0 {
        let sum = events::header_checksum(&bytes[start..start + 72], g.events.start, FUZZ_SEED);
        bytes[start + 68..start + 72].copy_from_slice(&sum.to_le_bytes());
    }
    let tail = u64::from(u32::from_le_bytes([
        bytes[start + 44],
        bytes[start + 45],
        bytes[start + 46],
        bytes[start + 47],
    ]));
    let piece = 64 * (1 + usize::from(control & 0x3f));
    for (i, chunk) in body.chunks(piece).take(ring_blocks as usize).enumerate() {
        let at = start + (1 + (tail + i as u64) % ring_blocks) as usize * BLOCK_SIZE;
        bytes[at..at + chunk.len()].copy_from_slice(chunk);
        if control & 0x80 != 0 {
            seal_event_records(&mut bytes[at..at + BLOCK_SIZE], FUZZ_SEED);
        }
    }
    read_ring(g, &bytes);
    // Only the event region changed: put it back and keep the copy.
    bytes[start..].copy_from_slice(&t.bytes[start..]);
    if let Ok(mut pool) = RING_POOL.lock() {
        if pool.len() < 4 {
            pool.push(bytes);
        }
    }
}

/// Working copies of the [`event_ring`] template, as it (an allocation and
/// copy of the template per input costs more than the ring reads).
static RING_POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Every ring block's records, the header, and reads from several
/// positions to several ends.
fn read_ring(g: &Geometry, bytes: &[u8]) {
    let txn = Txn::read_only(bytes, g.events.end());
    for k in 0..g.events.blocks - 1 {
        if let Ok(evs) = ring::block_events(&txn, g, FUZZ_SEED, k) {
            for (e, off) in evs {
                let _ = (e.seq, off, e.to_json());
            }
        }
    }
    let Ok(h) = ring::header(&txn, g, FUZZ_SEED) else {
        return;
    };
    let (oldest, next) = (h.er_oldest_seq.get(), h.er_next_seq.get());
    let middle = oldest / 2 + next / 2;
    for w in [
        0,
        oldest,
        oldest.saturating_add(1),
        middle,
        next.saturating_sub(1),
        u64::MAX,
    ] {
        for (end, max) in [(next, 4096), (u64::MAX, 3), (w.saturating_add(2), 1)] {
            if let Ok((missed, evs, pos)) = ring::read(&txn, g, FUZZ_SEED, w, end, max) {
                let _ = (missed, pos, evs.iter().map(|e| e.seq).max());
            }
        }
    }
}

/// The event region of a mkfs image, for [`event_ring`].
struct RingTemplate {
    /// The image up to the end of its event region.
    bytes: Vec<u8>,
    geometry: Geometry,
}

fn ring_template() -> Option<&'static RingTemplate> {
    static T: OnceLock<Option<RingTemplate>> = OnceLock::new();
    T.get_or_init(|| {
        let tmp = TempImage(temp_image_path());
        let sizing = Sizing {
            event_blocks: Some(events::MIN_EVENT_BLOCKS),
            ..Default::default()
        };
        crate::mkfs::mkfs(&tmp.0, &template_options(&[], sizing)?, &mut |_, _| {}).ok()?;
        let mut bytes = std::fs::read(&tmp.0).ok()?;
        let geometry = geometry_of(&bytes)?;
        if !ring::enabled(&geometry) {
            return None;
        }
        bytes.truncate(usize::try_from(geometry.events.end()).ok()? * BLOCK_SIZE);
        Some(RingTemplate { bytes, geometry })
    })
    .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_template_builds() {
        let r = ring_template().expect("event ring template");
        assert_eq!(r.geometry.events.blocks, events::MIN_EVENT_BLOCKS);
    }
}
