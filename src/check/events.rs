//! fsck of the event ring's contents (format-spec/11 §11.5, §11.9): every
//! record from the oldest to the newest is valid and the sequence numbers
//! run without a gap from `er_oldest_seq` to `er_next_seq`.

use super::{Kind, Report};
use crate::events::ring;
use crate::fs::txn::Txn;
use crate::image::Image;

/// Events read per step (a whole ring is at most 65,535 blocks of at most
/// 46 records; stepping bounds the memory of one step).
const STEP: usize = 4096;

pub fn check(img: &Image, report: &mut Report) {
    let g = img.geometry();
    if !ring::enabled(g) {
        return;
    }
    let seed = img.superblock().s_checksum_seed.get();
    let txn = Txn::read_only(img.file().bytes(), g.blocks_count);
    let Ok(h) = ring::header(&txn, g, seed) else { return }; // reported by check_rings
    let (oldest, next) = (h.er_oldest_seq.get(), h.er_next_seq.get());
    let mut w = oldest;
    // Each step returns at least one event or stops: at most next - oldest steps.
    while w < next {
        match ring::read(&txn, g, seed, w, next, STEP) {
            Ok((_, events, after)) if !events.is_empty() => w = after,
            Ok(_) => {
                report.add_kind(
                    "event ring",
                    format!("events {w}..{next} are missing (the header says the ring holds {oldest}..{next})"),
                    Kind::EventRing,
                );
                return;
            }
            Err(e) => {
                report.add_err_kind("event ring", &e, Kind::EventRing);
                return;
            }
        }
    }
}
