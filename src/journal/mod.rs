//! The journal ring's behaviour (format-spec/10-journal.md): committing
//! staged metadata blocks as a transaction, checkpointing, and replay.
//!
//! Writes go through [`Media`]: stage records in the map's journal region,
//! flush them together with the file data the transaction points at, write
//! the commit, flush, and only then let the staged blocks reach home.

mod commit;
mod replay;

pub use commit::{checkpoint, commit, commit_ordered, stage_recover_flag, JournalState, Staged};
pub use replay::{recover, scan, Scan};

use crate::format::journal::{JournalSuperblock, TAGS_PER_DESCRIPTOR};
use crate::format::BLOCK_SIZE_U64;
use crate::layout::Geometry;

/// Revoke entries per revoke block.
pub const REVOKES_PER_BLOCK: usize = (4092 - 24) / 8;

/// Ring positions are 1 ..= N-1 of the journal region.
pub fn ring_len(g: &Geometry) -> u64 {
    g.journal.blocks - 1
}

/// The position after `pos`, wrapping from N-1 to 1.
pub fn next_pos(g: &Geometry, pos: u64) -> u64 {
    if pos + 1 >= g.journal.blocks {
        1
    } else {
        pos + 1
    }
}

/// Image block number of ring position `pos`.
pub fn pos_block(g: &Geometry, pos: u64) -> u64 {
    g.journal.start + pos
}

/// Ring blocks a transaction of `tags` blocks and `revokes` revokes needs.
pub fn tx_blocks(tags: usize, revokes: usize) -> u64 {
    (1 + tags.div_ceil(TAGS_PER_DESCRIPTOR) + tags + revokes.div_ceil(REVOKES_PER_BLOCK)) as u64
}

/// Byte range of the journal region, for flushes.
pub fn region_range(g: &Geometry) -> (u64, u64) {
    (g.journal.start * BLOCK_SIZE_U64, g.journal.blocks * BLOCK_SIZE_U64)
}

/// True when the image has a journal to use.
pub fn enabled(g: &Geometry) -> bool {
    g.features.has_compat(crate::format::features::COMPAT_HAS_JOURNAL) && g.journal.blocks >= 2
}

/// Read the journal superblock (checked), falling back to its backup copy
/// when the primary is damaged (a torn or garbage sector).
pub fn superblock<'a>(bytes: &'a [u8], g: &Geometry, seed: u32) -> crate::Result<&'a JournalSuperblock> {
    let at = (g.journal.start * BLOCK_SIZE_U64) as usize;
    let block = &bytes[at..at + 4096];
    let parse = |b| crate::format::journal::parse_superblock(b, g.journal.start, seed, g.journal.blocks);
    parse(block).or_else(|e| parse(&block[crate::format::journal::BACKUP_OFFSET..]).map_err(|_| e))
}
