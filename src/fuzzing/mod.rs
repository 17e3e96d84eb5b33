//! Fuzzing entry points: one function per on-disk structure, plus a whole
//! image. Each takes untrusted bytes, feeds them to the parsers in
//! [`crate::format`] (and [`crate::catalog`]), consumes every item of every
//! iterator they return, and returns `()`. None of them may panic on any
//! input; the cargo-fuzz targets in `fuzz/` check exactly that, and
//! `tests/fuzz_corpus.rs` replays the seed corpora and saved crashes.
//!
//! Beyond the structures: [`search_request`] takes the search protocol's
//! requests and replies, and [`event_ring`] and [`node_record`] write the
//! input into an image mkfs made (built once per process) and read it
//! through the filesystem's own code (event ring reader, collection store,
//! HNSW search, a read-only [`Fs`](crate::fs::core::Fs)).
//!
//! Checksums. Each structure is parsed with checksum verification on
//! (`Some(`[`FUZZ_SEED`]`)`) and off (`None`). A fuzzer cannot forge a
//! CRC-32, so each function also parses a *sealed* copy of the input, in
//! which the checksum field has been recomputed with [`FUZZ_SEED`] and the
//! fixed location the function uses ([`FUZZ_BLOCK`], [`FUZZ_INO`]); that copy
//! gets past the checksum and exercises every check behind it.
//!
//! The functions use fixed, realistic locations (block and inode numbers
//! well below 2^48): the parsers multiply block numbers by the block size
//! and are only ever called with numbers validated against the geometry.
//!
//! The entry points live in submodules by what they fuzz:
//! `structures` (fixed-layout structures: superblock, inode, extent node,
//! directory block, xattr block, bitmap block, adjacency list, journal
//! superblock, event ring header), `vectors` (catalogue, collection
//! header and node records, the search protocol), `image_walk` (a whole
//! image: fsck, tree walk, queries, repair), `event_ring` and
//! `node_record` (the template-image targets). Every one is re-exported
//! here as `vexfs::fuzzing::NAME`, the path the fuzz targets call.

mod event_ring;
mod image_walk;
mod node_record;
mod structures;
mod vectors;

pub use event_ring::event_ring;
pub use image_walk::whole_image;
pub use node_record::node_record;
pub use structures::{
    adjacency, bitmap_block, dir_block, event_header, extent_node, inode, journal_superblock, superblock, xattr_block,
};
pub use vectors::{catalogue, collection_header, search_request};

use crate::format::superblock::Superblock;
use crate::layout::Geometry;
use crate::mkfs::{MkfsOptions, Sizing, MIN_V1_BYTES};
use crate::vector::search::Budget;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Checksum seed used for the `Some(seed)` parses and the sealed copies.
pub const FUZZ_SEED: u32 = 0x5EED_F022;
/// Block number the block-sized structures are parsed "at".
pub const FUZZ_BLOCK: u64 = 70;
/// Inode number used where a checksum is seeded by an inode (an inode's own
/// number, the directory of a leaf block, the owner of an extent block, a
/// collection's node file).
pub const FUZZ_INO: u32 = 11;
/// Most bytes [`whole_image`] reads from one regular file.
pub const MAX_FILE_READ: usize = 1 << 20;
/// Most directory entries [`whole_image`] visits in its walk.
pub const MAX_WALK_ENTRIES: usize = 100_000;

/// Both checksum settings every parser is run with.
const SEEDS: [Option<u32>; 2] = [Some(FUZZ_SEED), None];

/// Copy of `data` with the little-endian u32 at `at` set to `csum(copy)`,
/// or `None` when the field does not fit.
fn sealed(data: &[u8], at: usize, csum: impl FnOnce(&[u8]) -> u32) -> Option<Vec<u8>> {
    let end = at.checked_add(4).filter(|&e| e <= data.len())?;
    let mut copy = data.to_vec();
    let c = csum(&copy);
    copy[at..end].copy_from_slice(&c.to_le_bytes());
    Some(copy)
}

/// A unique temp file path for one [`whole_image`] run.
fn temp_image_path() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("vexfs-fuzz-{}-{n}-{nanos}.img", std::process::id()))
}

/// Removes the temp image when dropped.
struct TempImage(PathBuf);

impl Drop for TempImage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The smallest budget the harnesses search with: enough to walk a small
/// graph whole, small enough that a corrupt one cannot make a query slow.
const FUZZ_BUDGET: Budget = Budget {
    max_visited: 2000,
    deadline: None,
};

/// A fixed, realistic UUID and time for the images the harnesses build.
const TEMPLATE_UUID: [u8; 16] = [0x5e, 0xed, 0xf0, 0x22, 1, 2, 0x43, 4, 0x85, 6, 7, 8, 9, 10, 11, 12];
const TEMPLATE_TIME: i64 = 1_700_000_000;

fn template_options(collections: &[&str], sizing: Sizing) -> Option<MkfsOptions> {
    let collections = collections.iter().map(|c| c.parse().ok()).collect::<Option<Vec<_>>>()?;
    Some(MkfsOptions {
        size: Some(MIN_V1_BYTES),
        label: "fuzz".into(),
        collections,
        uuid: Some(TEMPLATE_UUID),
        time: Some(TEMPLATE_TIME),
        sizing,
        root_owner: Some((0, 0)),
        ..Default::default()
    })
}

/// Geometry of a mkfs image's bytes.
fn geometry_of(bytes: &[u8]) -> Option<Geometry> {
    let sb = Superblock::parse(bytes.get(..1024)?).ok()?;
    Geometry::new(sb, bytes.len() as u64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::BLOCK_SIZE;

    #[test]
    fn every_entry_point_survives_trivial_inputs() {
        let inputs: [&[u8]; 4] = [&[], &[0], &[0xff; 100], &[0u8; BLOCK_SIZE]];
        for d in inputs {
            superblock(d);
            inode(d);
            extent_node(d);
            dir_block(d);
            xattr_block(d);
            bitmap_block(d);
            adjacency(d);
            journal_superblock(d);
            event_header(d);
            catalogue(d);
            collection_header(d);
            whole_image(d);
            search_request(d);
            event_ring(d);
            node_record(d);
        }
    }
}
