//! Repair of the event ring (format-spec/11 §11.2): a damaged header, or
//! records that do not match it, make the ring an empty one. Its sequence
//! numbers go on after the highest one still readable, so a follower's
//! position never moves backwards.

use super::repair::{Fix, RepairOutcome};
use super::{Kind, Problem};
use crate::error::{FsError, Result};
use crate::events::ring;
use crate::format::events::{header_checksum, EventRingHeader, EVENT_RING_MAGIC};
use crate::fs::core::Fs;
use crate::fs::txn::Txn;
use crate::layout::Geometry;
use zerocopy::{FromZeros, IntoBytes};

pub(super) fn apply(fs: &Fs, problems: &[&Problem], out: &mut RepairOutcome) {
    let header = problems.iter().any(|p| p.kind == Kind::EventRingHeader);
    let records = problems.iter().any(|p| p.kind == Kind::EventRing);
    if !header && !records {
        return;
    }
    match fs.write(|txn, g| reinit(txn, g, fs.seed, header)) {
        Ok(next) => {
            if header {
                let what = format!("reinitialised as an empty ring (next sequence {next})");
                out.fixed.push(Fix::new("event ring header", what));
            }
            if records {
                let what = format!("emptied: its records did not match its header (next sequence {next})");
                out.fixed.push(Fix::new("event ring", what));
            }
            // Events were off while the header was damaged.
            let _ = fs.set_events(true);
        }
        Err(e) => out.errors.push(format!("event ring: not reinitialised: {e}")),
    }
}

/// Write an empty ring header and clear the ring's first block (where the
/// next record goes); returns the next sequence number.
fn reinit(txn: &mut Txn<'_>, g: &Geometry, seed: u32, header_damaged: bool) -> Result<u64> {
    if !ring::enabled(g) {
        return Err(FsError::Invalid("the image has no event ring".into()));
    }
    let blocks = g.events.blocks - 1;
    let mut next = match ring::header(txn, g, seed) {
        Ok(h) if !header_damaged => h.er_next_seq.get(),
        _ => 1,
    };
    if header_damaged {
        // At most `blocks` blocks of at most MAX_EVENTS_PER_BLOCK records.
        for k in 0..blocks {
            if let Ok(events) = ring::block_events(txn, g, seed, k) {
                for (e, _) in events {
                    next = next.max(e.seq.saturating_add(1));
                }
            }
        }
    }
    let mut h = EventRingHeader::new_zeroed();
    h.er_magic.set(EVENT_RING_MAGIC);
    h.er_version.set(1);
    h.er_ring_blocks.set(blocks);
    h.er_next_seq.set(next);
    h.er_oldest_seq.set(next);
    let at = g.events.start;
    let block = txn.block_mut(at)?;
    block.fill(0);
    block[..72].copy_from_slice(h.as_bytes());
    let c = header_checksum(block, at, seed);
    block[68..72].copy_from_slice(&c.to_le_bytes());
    txn.block_new(at + 1)?;
    Ok(next)
}
