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
//! HNSW search, a read-only [`Fs`]).
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

use crate::check::{self, CheckOptions};
use crate::events::{ring, Event, Filter, Op};
use crate::format::bitmap::{self, BITS_PER_KERNEL_BLOCK, BITS_PER_TAILED_BLOCK, TAILED_BITS_BYTES};
use crate::format::dir::{self, DirBlockIter, DIR_TAIL_SIZE};
use crate::format::events::{self, EventRecord};
use crate::format::extent::{self, ExtentNode, BLOCK_MAX_ENTRIES, ROOT_MAX_ENTRIES, TAIL_OFFSET};
use crate::format::hnsw::{self, NeighbourIter, UpperRecord};
use crate::format::inode::{self, FileType, InodeView, EXTENTS_FL, I_BLOCK_BYTES, LARGE_INODE_SIZE};
use crate::format::journal::{self, JournalHeader};
use crate::format::superblock::{Superblock, CHECKSUM_OFFSET};
use crate::format::vector::{self, CollectionHeader, ElemType, Metric, NodeHeader, MAX_DIM};
use crate::format::BLOCK_SIZE;
use crate::format::{xattr, BLOCK_SIZE_U64, CATALOG_INO, ROOT_INO};
use crate::fs::core::Fs;
use crate::fs::namespace::NewNode;
use crate::fs::perm::Ctx;
use crate::fs::txn::Txn;
use crate::image::Media;
use crate::image::{Image, Mode};
use crate::layout::Geometry;
use crate::mkfs::{MkfsOptions, Sizing, MIN_V1_BYTES};
use crate::vector::distance::Scorer;
use crate::vector::search::{knn, Budget, LiveOnly, Walk};
use crate::vector::store::Collection;
use crate::vector::{catalog_io, control, stats, Hit, SearchRequest, SearchResponse};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use zerocopy::FromBytes;

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
/// Most node records [`collection_header`] decodes.
const MAX_NODE_RECORDS: u64 = 64;

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

/// Superblock bytes: [`Superblock::parse`], every accessor, and
/// [`Geometry::new`] against a few image lengths (the input's, the one the
/// superblock asks for, and an unbounded one). Also parses a copy with
/// `s_checksum` recomputed.
pub fn superblock(data: &[u8]) {
    superblock_once(data);
    if let Some(copy) = sealed(data, CHECKSUM_OFFSET, |b| {
        crate::format::checksum::superblock_csum(&b[..CHECKSUM_OFFSET])
    }) {
        superblock_once(&copy);
    }
}

fn superblock_once(data: &[u8]) {
    let Ok(sb) = Superblock::parse(data) else {
        return;
    };
    let features = sb.features();
    let _ = features.check();
    let _ = features.names();
    let _ = features.is_kernel_layout();
    let _ = (sb.blocks_count(), sb.free_blocks(), sb.mkfs_time(), sb.volume_name());
    let _ = (sb.is_checksummed(), sb.compute_checksum());
    let wanted = sb.blocks_count().checked_mul(BLOCK_SIZE_U64);
    for len in [Some(data.len() as u64), wanted, Some(u64::MAX)].into_iter().flatten() {
        if let Ok(g) = Geometry::new(sb, len) {
            geometry(&g);
        }
    }
}

/// Exercise the derived geometry: regions and first/last inode offsets.
fn geometry(g: &Geometry) {
    for (_, r) in g.regions() {
        let _ = (r.end(), r.contains(g.first_data_block));
    }
    for n in [1, 2, g.first_ino, g.inodes_count] {
        if let Some(ino) = g.inode_no(n) {
            let _ = g.inode_offset(ino);
        }
    }
    let _ = (g.is_data_block(g.first_data_block), g.bits_per_bitmap_block());
}

/// Inode bytes (112-byte kernel or 256-byte large): [`inode::parse_inode`]
/// with and without checksums, on the first 112 bytes alone too, every
/// accessor, and the extent root in `i_block` when `EXTENTS_FL` is set. Also
/// parses a copy with `i_checksum` recomputed for inode [`FUZZ_INO`].
pub fn inode(data: &[u8]) {
    for seed in SEEDS {
        inode_once(data, seed);
    }
    inode_once(data.get(..inode::BASE_INODE_SIZE).unwrap_or(data), None);
    if data.len() >= LARGE_INODE_SIZE {
        let mut copy = data.to_vec();
        inode::seal_inode(&mut copy[..LARGE_INODE_SIZE], FUZZ_INO, FUZZ_SEED);
        inode_once(&copy, Some(FUZZ_SEED));
    }
}

fn inode_once(data: &[u8], seed: Option<u32>) {
    let Ok(view) = inode::parse_inode(data, FUZZ_INO, 4096, seed) else {
        return;
    };
    inode_view(&view);
}

fn inode_view(view: &InodeView<'_>) {
    let b = view.base;
    let _ = (view.times(), view.blocks_512(), view.xattr_block(), view.rdev());
    let _ = (b.mode(), b.flags(), b.is_free(), b.i_block_bytes().len());
    if let Some(ft) = b.file_type() {
        let _ = (ft.dirent_code(), ft.letter());
        let size = b.i_size.get();
        if ft == FileType::Symlink && size < I_BLOCK_BYTES as u64 {
            let _ = b.i_block_bytes().get(..size as usize);
        }
    }
    if let Some(e) = view.ext {
        let _ = inode::join_seconds(e.i_crtime.get(), e.i_crtime_hi.get());
    }
    if b.flags() & EXTENTS_FL != 0 {
        if let Ok(node) = extent::parse_node(b.i_block_bytes(), 4096 + 40, ROOT_MAX_ENTRIES) {
            extent_entries(&node);
        }
    }
}

fn extent_entries(node: &ExtentNode<'_>) {
    let _ = node.depth();
    for e in node.extents() {
        let _ = (e.start(), e.len(), e.is_empty(), e.is_unwritten());
    }
    for i in node.indexes() {
        let _ = i.leaf();
    }
}

/// Extent node bytes: [`extent::parse_node`] as an inode root (3 entries)
/// and as a tree block (340 entries), and [`extent::parse_tree_block`] with
/// and without checksums, plus a copy with the tail checksum recomputed for
/// block [`FUZZ_BLOCK`] owned by inode [`FUZZ_INO`].
pub fn extent_node(data: &[u8]) {
    for max in [ROOT_MAX_ENTRIES, BLOCK_MAX_ENTRIES] {
        if let Ok(node) = extent::parse_node(data, 0, max) {
            extent_entries(&node);
        }
    }
    for seed in SEEDS {
        if let Ok(node) = extent::parse_tree_block(data, FUZZ_BLOCK, FUZZ_INO, seed) {
            extent_entries(&node);
        }
    }
    let copy = sealed(data, TAIL_OFFSET, |b| {
        extent::tree_block_checksum(b, FUZZ_BLOCK, FUZZ_INO, FUZZ_SEED)
    });
    if let Some(copy) = copy {
        if let Ok(node) = extent::parse_tree_block(&copy, FUZZ_BLOCK, FUZZ_INO, Some(FUZZ_SEED)) {
            extent_entries(&node);
        }
    }
}

/// Directory block bytes: every entry of [`DirBlockIter`] with and without a
/// checksum tail, [`dir::verify_leaf_tail`], and the name checks and hash on
/// every name. Also verifies a copy whose last 12 bytes were replaced by a
/// sealed tail for block [`FUZZ_BLOCK`] of directory [`FUZZ_INO`]. Blocks
/// that look like an htree root or node have their index entries read too.
pub fn dir_block(data: &[u8]) {
    for has_tail in [true, false] {
        dir_entries(data, has_tail);
    }
    let _ = dir::verify_leaf_tail(data, FUZZ_BLOCK, FUZZ_INO, FUZZ_SEED);
    if data.len() >= DIR_TAIL_SIZE {
        let mut copy = data.to_vec();
        dir::seal_leaf_tail(&mut copy, FUZZ_BLOCK, FUZZ_INO, FUZZ_SEED);
        if dir::verify_leaf_tail(&copy, FUZZ_BLOCK, FUZZ_INO, FUZZ_SEED).is_ok() {
            dir_entries(&copy, true);
        }
    }
    dx_entries(data);
}

fn dir_entries(data: &[u8], has_tail: bool) {
    for e in DirBlockIter::new(data, FUZZ_BLOCK * BLOCK_SIZE_U64, has_tail).flatten() {
        let _ = dir::check_name(e.name);
        let _ = dir::name_hash(e.name, FUZZ_SEED);
        let _ = (e.inode, e.file_type, e.offset, e.rec_len);
    }
}

/// The index entries of an htree root (count/limit at byte 32) and of an
/// interior node (at byte 8), each bounded by `dx_limit` and the block.
fn dx_entries(data: &[u8]) {
    let root = dir::DxRoot::ref_from_prefix(data)
        .ok()
        .map(|(r, _)| (r.dx_limit.get(), r.dx_count.get(), 32usize));
    let node = dir::DxNode::ref_from_prefix(data)
        .ok()
        .map(|(n, _)| (n.dx_limit.get(), n.dx_count.get(), 8usize));
    for (limit, count, at) in [root, node].into_iter().flatten() {
        let n = usize::from(count.min(limit));
        let Some(entries) = data.get(at..).and_then(|b| b.get(..n * 8)) else {
            continue;
        };
        for e in entries.chunks_exact(8) {
            if let Ok(e) = dir::DxEntry::ref_from_bytes(e) {
                let _ = (e.hash.get(), e.block.get());
            }
        }
    }
}

/// Xattr block bytes: [`xattr::parse_block`] with and without checksums and
/// on a copy with `h_checksum` recomputed for block [`FUZZ_BLOCK`]; every
/// attribute's full name.
pub fn xattr_block(data: &[u8]) {
    for seed in SEEDS {
        xattr_once(data, seed);
    }
    if let Some(copy) = sealed(data, 16, |b| xattr::block_checksum(b, FUZZ_BLOCK, FUZZ_SEED)) {
        xattr_once(&copy, Some(FUZZ_SEED));
    }
}

fn xattr_once(data: &[u8], seed: Option<u32>) {
    if let Ok(attrs) = xattr::parse_block(data, FUZZ_BLOCK, seed) {
        for a in attrs {
            let _ = (a.full_name(), a.value.len(), a.name_index);
        }
    }
}

/// Bitmap block bytes: [`bitmap::parse_tailed`] with and without checksums
/// for several valid-bit counts (taken from the input too), on a copy with
/// `bt_checksum` recomputed for block [`FUZZ_BLOCK`], and the bit helpers
/// (`test_bit`, `count_zeros`, `find_zero`, `set_bit`) on the raw bits as a
/// kernel-layout bitmap.
pub fn bitmap_block(data: &[u8]) {
    let from_input = data
        .get(..4)
        .map_or(0, |b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    let valids = [BITS_PER_TAILED_BLOCK, from_input, 0, u64::MAX];
    for seed in SEEDS {
        for valid in valids {
            if let Ok(t) = bitmap::parse_tailed(data, FUZZ_BLOCK, seed, valid) {
                let _ = (t.bits.len(), t.tail.bt_free.get());
            }
        }
    }
    let copy = sealed(data, TAILED_BITS_BYTES + 4, |b| {
        bitmap::tailed_checksum(b, FUZZ_BLOCK, FUZZ_SEED)
    });
    if let Some(copy) = copy {
        for valid in valids {
            let _ = bitmap::parse_tailed(&copy, FUZZ_BLOCK, Some(FUZZ_SEED), valid);
        }
    }
    // Kernel layout: the whole block is bits. Bound `valid` by the input as
    // every caller does (count_zeros walks up to `valid` bits).
    let bits_len = (data.len() as u64).saturating_mul(8);
    let valid = bits_len.min(BITS_PER_KERNEL_BLOCK);
    let _ = bitmap::count_zeros(data, valid);
    let _ = bitmap::find_zero(data, from_input, u64::MAX);
    let mut next = Some(0);
    let mut found = 0;
    while let Some(from) = next {
        next = bitmap::find_zero(data, from, valid).map(|n| n + 1);
        found += 1;
        if found > 64 {
            break;
        }
    }
    for n in [0, 1, from_input, bits_len.saturating_sub(1), bits_len, u64::MAX] {
        let _ = bitmap::test_bit(data, n);
    }
    let mut copy = data.to_vec();
    for n in [from_input, bits_len, u64::MAX] {
        let old = bitmap::set_bit(&mut copy, n, true);
        bitmap::set_bit(&mut copy, n, old);
    }
}

/// Encoded HNSW neighbour list bytes: every id of [`NeighbourIter`] for
/// several `ch_slots` values, re-encoded with
/// [`hnsw::encode_neighbours`] and decoded again; then the same bytes read as
/// an [`UpperRecord`] followed by its list.
pub fn adjacency(data: &[u8]) {
    let slots = [u64::MAX, 1 << 32, 1 << 20, data.len() as u64];
    for s in slots {
        let ids: Vec<u32> = NeighbourIter::new(data, s, 0).map_while(Result::ok).collect();
        let mut buf = vec![0u8; ids.len() * hnsw::MAX_VARINT];
        if let Some(n) = hnsw::encode_neighbours(&ids, &mut buf) {
            NeighbourIter::new(&buf[..n], s, 0).for_each(drop);
        }
    }
    if let Ok((rec, rest)) = UpperRecord::ref_from_prefix(data) {
        let _ = (rec.u_slot.get(), rec.u_level, rec.u_flags, rec.u_checksum.get());
        let len = usize::from(rec.u_adj_len.get()).min(rest.len());
        NeighbourIter::new(&rest[..len], u64::from(u32::MAX), 16).for_each(drop);
    }
}

/// Journal superblock bytes: [`journal::parse_superblock`] with the input's
/// own `js_max_len` and with 64 as the region size, on the input and on a
/// copy with `js_checksum` recomputed for block [`FUZZ_BLOCK`]; the record
/// checksum and header of the block as a journal record.
pub fn journal_superblock(data: &[u8]) {
    let own = data
        .get(12..16)
        .map_or(0, |b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    let copy = (data.len() >= 72).then(|| {
        let mut c = data.to_vec();
        let sum = journal::superblock_checksum(&c, FUZZ_BLOCK, FUZZ_SEED);
        c[68..72].copy_from_slice(&sum.to_le_bytes());
        c
    });
    for region in [own, journal::MIN_JOURNAL_BLOCKS] {
        for seed in [FUZZ_SEED, 0] {
            if let Ok(js) = journal::parse_superblock(data, FUZZ_BLOCK, seed, region) {
                let _ = (js.js_sequence.get(), js.js_start.get(), js.js_errno.get());
            }
        }
        if let Some(c) = &copy {
            if let Ok(js) = journal::parse_superblock(c, FUZZ_BLOCK, FUZZ_SEED, region) {
                let _ = (js.js_sequence.get(), js.js_start.get(), js.js_errno.get());
            }
        }
    }
    let _ = journal::record_checksum(data, 1, FUZZ_SEED);
    if let Ok((h, _)) = JournalHeader::ref_from_prefix(data) {
        let _ = (h.jh_magic.get(), h.jh_blocktype.get(), h.jh_sequence.get());
    }
}

/// Event ring header bytes: [`events::parse_header`] with the input's own
/// ring size and with 16 blocks, on the input and on a copy with
/// `er_checksum` recomputed for block [`FUZZ_BLOCK`]; then the bytes after
/// the header read as event records (bounded by `ev_len`), with their
/// checksums and operation names.
pub fn event_header(data: &[u8]) {
    let own = data
        .get(8..16)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, |b| u64::from_le_bytes(b).saturating_add(1));
    let copy = (data.len() >= 72).then(|| {
        let mut c = data.to_vec();
        let sum = events::header_checksum(&c, FUZZ_BLOCK, FUZZ_SEED);
        c[68..72].copy_from_slice(&sum.to_le_bytes());
        c
    });
    for region in [own, events::MIN_EVENT_BLOCKS] {
        for seed in [FUZZ_SEED, 0] {
            let _ = events::parse_header(data, FUZZ_BLOCK, seed, region);
        }
        if let Some(c) = &copy {
            let _ = events::parse_header(c, FUZZ_BLOCK, FUZZ_SEED, region);
        }
    }
    event_records(data.get(72..).unwrap_or(&[]));
}

fn event_records(mut rest: &[u8]) {
    for _ in 0..events::MAX_EVENTS_PER_BLOCK {
        let Ok((r, _)) = EventRecord::ref_from_prefix(rest) else {
            return;
        };
        let len = usize::from(r.ev_len.get());
        let Some(record) = rest.get(..len).filter(|_| len >= core::mem::size_of::<EventRecord>()) else {
            return;
        };
        let _ = events::record_checksum(record, r.ev_seq.get(), FUZZ_SEED);
        let _ = events::op_name(r.ev_op.get());
        rest = &rest[len.next_multiple_of(events::EVENT_ALIGN).min(rest.len())..];
    }
}

/// Catalogue file bytes (header + rkyv archive):
/// [`crate::catalog::parse_catalogue`] with and without checksums and on a
/// copy with `cat_checksum` recomputed; [`crate::catalog::decode_records`]
/// on the bytes after the header; every record's codes and node geometry,
/// and an encode/decode round trip of the records.
pub fn catalogue(data: &[u8]) {
    for seed in SEEDS {
        catalogue_once(data, seed);
    }
    let copy = sealed(data, 12, |b| {
        let len = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
        let archive = b.get(32..32usize.saturating_add(len)).unwrap_or(&[]);
        vector::catalog_checksum(&b[..32.min(b.len())], archive, FUZZ_SEED)
    });
    if let Some(copy) = copy {
        catalogue_once(&copy, Some(FUZZ_SEED));
    }
    if let Ok(records) = crate::catalog::decode_records(data.get(32..).unwrap_or(&[])) {
        collection_records(&records);
    }
}

fn catalogue_once(data: &[u8], seed: Option<u32>) {
    if let Ok(cat) = crate::catalog::parse_catalogue(data, 0, seed) {
        let _ = (
            cat.offset,
            cat.version,
            cat.len,
            cat.generation,
            cat.next_id,
            cat.checksum,
        );
        collection_records(&cat.records);
        if let Ok(bytes) = crate::catalog::encode_records(&cat.records) {
            let _ = crate::catalog::decode_records(&bytes);
        }
    }
}

fn collection_records(records: &[vector::CollectionRecord]) {
    for r in records {
        let _ = (
            r.id,
            r.name.len(),
            r.int8_scale,
            r.ef_construction,
            r.node_ino,
            r.created,
        );
        let _ = Metric::from_code(r.metric).map(Metric::name);
        if let Some(elem) = ElemType::from_code(r.elem_type) {
            if (1..=MAX_DIM).contains(&r.dim) {
                let _ = vector::node_geometry(r.dim, elem, r.m);
            }
        }
    }
}

/// A collection's node file bytes (block 0 = header, node records from
/// byte 4096): [`vector::parse_collection_header`] with and without
/// checksums and on a copy with `ch_checksum` recomputed for node inode
/// [`FUZZ_INO`]; the header's codes and geometry; then up to 64 node records
/// placed as format-spec/08 §8.5.2 says, each record's level-0 list decoded
/// with [`NeighbourIter`].
pub fn collection_header(data: &[u8]) {
    for seed in SEEDS {
        collection_once(data, seed);
    }
    let copy = (data.len() >= 88).then(|| {
        let mut c = data.to_vec();
        let sum = vector::collection_header_checksum(&c[..88], FUZZ_INO, FUZZ_SEED);
        c[84..88].copy_from_slice(&sum.to_le_bytes());
        c
    });
    if let Some(c) = copy {
        collection_once(&c, Some(FUZZ_SEED));
    }
}

fn collection_once(data: &[u8], seed: Option<u32>) {
    let Ok(h) = vector::parse_collection_header(data, 0, FUZZ_INO, seed) else {
        return;
    };
    let _ = Metric::from_code(h.ch_metric).map(Metric::name);
    if let Some(elem) = ElemType::from_code(h.ch_elem_type) {
        let _ = vector::node_geometry(h.ch_dim.get(), elem, h.ch_m.get());
        let _ = elem.name();
    }
    node_records(h, data);
}

/// Byte offset of slot `s` in the node file (format-spec/08 §8.5.2).
fn slot_offset(stride: u64, s: u64) -> Option<u64> {
    if stride == 0 {
        return None;
    }
    if stride <= BLOCK_SIZE_U64 {
        let per_block = BLOCK_SIZE_U64 / stride;
        let block = 1 + s / per_block;
        Some(block * BLOCK_SIZE_U64 + (s % per_block) * stride)
    } else {
        let blocks = stride.div_ceil(BLOCK_SIZE_U64);
        (1 + s.checked_mul(blocks)?).checked_mul(BLOCK_SIZE_U64)
    }
}

fn node_records(h: &CollectionHeader, data: &[u8]) {
    let stride = u64::from(h.ch_node_stride.get());
    let (adj_off, adj_cap) = (h.ch_adj_offset.get() as usize, h.ch_adj_capacity.get() as usize);
    let slots = h.ch_slots.get();
    for s in 0..slots.min(MAX_NODE_RECORDS) {
        let Some(at) = slot_offset(stride, s).and_then(|o| usize::try_from(o).ok()) else {
            return;
        };
        let Some(record) = data.get(at..).and_then(|r| r.get(..stride as usize)) else {
            return;
        };
        let Ok((n, _)) = NodeHeader::ref_from_prefix(record) else {
            return;
        };
        let _ = (
            n.n_owner_ino.get(),
            n.n_level,
            n.n_flags,
            n.n_upper_ref.get(),
            n.n_next_free.get(),
        );
        let len = usize::from(n.n_adj_len.get()).min(adj_cap);
        if let Some(list) = record.get(adj_off..).and_then(|r| r.get(..len)) {
            NeighbourIter::new(list, slots, at as u64 + adj_off as u64).for_each(drop);
        }
    }
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

/// A whole image: writes the bytes to a temp file, opens it read-only with
/// [`Image::open`] and, if it opens, runs fsck ([`check::check`]), reads the
/// catalogue ([`crate::catalog::read_catalogue`]) and walks the tree from
/// the root (explicit stack, visited set, at most [`MAX_WALK_ENTRIES`]
/// entries), reading every regular file (at most [`MAX_FILE_READ`] bytes
/// each) and every symlink target. Then, if the image mounts read-only as
/// an [`Fs`], each collection is searched (budget 2000 nodes) and its
/// statistics gathered, and the first 100 events are read. Last, the
/// repair property ([`repair_settles`]) on the same temp copy. The temp
/// file is removed afterwards.
pub fn whole_image(data: &[u8]) {
    let tmp = TempImage(temp_image_path());
    if std::fs::write(&tmp.0, data).is_err() {
        return;
    }
    let Ok(img) = Image::open(&tmp.0, Mode::ReadOnly) else {
        return;
    };
    let report = check::check(&img, CheckOptions::default());
    for p in &report.problems {
        let _ = p.to_string();
    }
    if let Ok(Some(cat)) = crate::catalog::read_catalogue(&img) {
        collection_records(&cat.records);
    }
    walk(&img);
    drop(img);
    if let Ok(fs) = Fs::open(&tmp.0, true) {
        fs_queries(&fs);
    }
    if data.len() <= MAX_REPAIR_BYTES {
        repair_settles(&tmp.0);
    }
}

/// Largest image [`whole_image`] repairs. Why: a repair may rebuild every
/// collection's graph; bounding the image bounds that work per input.
const MAX_REPAIR_BYTES: usize = 64 << 20;

/// The repair property: `fsck -y` on the (writable, temp) image either
/// leaves some problem uncorrected (and lists it), or a second, read-only
/// check without journal replay (`fsck -n`) finds the image clean. Panics
/// otherwise. The repair itself runs at most [`check::MAX_PASSES`] passes.
fn repair_settles(path: &std::path::Path) {
    let Ok(outcome) = check::repair(path, check::RepairMode::Yes, CheckOptions::default()) else {
        return; // could not be opened or checked: an operational error
    };
    for f in &outcome.fixed {
        let _ = f.to_string();
    }
    if outcome.exit_code() != 1 {
        return; // clean from the start, or problems left uncorrected (listed)
    }
    let again = match Image::open(path, Mode::ReadOnly) {
        Ok(img) => check::check(&img, CheckOptions::default()),
        Err(e) => panic!("fsck -y reported every problem corrected, but the image no longer opens: {e}"),
    };
    assert!(
        again.is_clean(),
        "fsck -y reported every problem corrected ({:?}), but a second check finds {:?}",
        outcome.fixed.iter().map(ToString::to_string).collect::<Vec<_>>(),
        again.problems.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
}

/// Read-only walk of the tree from the root.
fn walk(img: &Image) {
    let mut stack = vec![ROOT_INO];
    let mut visited: HashSet<u32> = HashSet::from([ROOT_INO]);
    let mut entries_seen = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(dir_ino) = img.inode_no(dir) else { continue };
        let Ok(entries) = img.read_dir(dir_ino) else { continue };
        if let Some(first) = entries.first() {
            let _ = img.lookup(dir_ino, &first.name);
        }
        for e in entries {
            entries_seen += 1;
            if entries_seen > MAX_WALK_ENTRIES {
                return;
            }
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let Ok(ino) = img.inode_no(e.inode) else { continue };
            let Ok(view) = img.inode(ino) else { continue };
            let _ = img.extent_tree_blocks(ino, &view);
            match view.base.file_type() {
                Some(FileType::Directory) if visited.insert(e.inode) => stack.push(e.inode),
                Some(FileType::Regular) => {
                    let _ = img.read_file(ino, 0, MAX_FILE_READ);
                }
                Some(FileType::Symlink) => {
                    let _ = img.read_link(ino);
                }
                _ => {}
            }
        }
    }
    // The hidden catalogue inode, read as a file like any other.
    if let Ok(ino) = img.inode_no(CATALOG_INO) {
        let _ = img.read_file(ino, 0, MAX_FILE_READ);
    }
    let _ = img.resolve("/");
}

// ---------------------------------------------------------------------------
// The search protocol, the event ring, node records through the search and
// queries over a whole mounted image.

/// The request and reply parsers of `/.vexfs/search` ([`control`]):
/// [`control::is_complete`] on the input and on its first half,
/// [`control::parse`] (JSON or binary), and for a parsed request its binary
/// encoding parsed again; [`control::decode_binary_reply`] and, for a reply
/// that decodes, both reply formats of it; the error line of every error.
pub fn search_request(data: &[u8]) {
    let _ = control::is_complete(data);
    let _ = control::is_complete(&data[..data.len() / 2]);
    match control::parse(data) {
        Ok(p) => {
            let r = &p.request;
            let _ = (p.binary, r.collection.len(), r.vector.len(), r.k, r.ef, r.with_paths);
            let _ = (r.subtree.as_deref().map(str::len), r.budget.max_visited);
            let bin = control::encode_binary(r);
            let _ = control::is_complete(&bin);
            if let Err(e) = control::parse(&bin) {
                let _ = control::error_line(&e);
            }
        }
        Err(e) => {
            let _ = control::error_line(&e);
        }
    }
    match control::decode_binary_reply(data) {
        Ok((hits, complete)) => {
            let resp = SearchResponse {
                hits: hits
                    .iter()
                    .map(|&(ino, slot, distance)| Hit {
                        ino,
                        slot,
                        distance,
                        path: None,
                    })
                    .collect(),
                complete,
                visited: hits.len(),
            };
            let _ = control::decode_binary_reply(&control::format(&resp, true));
            let _ = control::format(&resp, false);
        }
        Err(e) => {
            let _ = control::error_line(&e);
        }
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

/// Files with a vector in the [`node_record`] template's collection.
const TEMPLATE_VECTORS: u32 = 40;
/// Collection of the [`node_record`] template: 4 f32 dimensions, L2.
const TEMPLATE_COLLECTION: &str = "t";
/// HNSW M of the [`node_record`] template's collection.
const TEMPLATE_M: u16 = 4;
/// Most slots [`node_record`] reads one by one.
const MAX_SLOTS_READ: u32 = 256;

fn template_vector(i: u32) -> [f32; 4] {
    let f = i as f32;
    [
        (i % 5) as f32,
        (i / 5) as f32,
        (i * 7 % 11) as f32 / 10.0,
        1.0 + f / 40.0,
    ]
}

/// An 8 MiB image with collection "t" (4 f32 dimensions, L2) holding the
/// vectors of [`TEMPLATE_VECTORS`] files, half of them in `/d`, and where
/// its node file, upper file and header lie.
struct NodeTemplate {
    image: Vec<u8>,
    geometry: Geometry,
    coll: Collection,
    /// Physical blocks of the node file's logical blocks 1.. (slot records).
    node_blocks: Vec<u64>,
    /// Physical blocks of the upper file, logical block 0 on.
    upper_blocks: Vec<u64>,
    /// Physical block of the collection header.
    header_block: u64,
}

impl NodeTemplate {
    /// Put the blocks [`node_record`] changes back as they were.
    fn restore(&self, bytes: &mut [u8]) {
        let blocks = self.node_blocks.iter().chain(&self.upper_blocks);
        for &b in blocks.chain(std::iter::once(&self.header_block)) {
            let r = b as usize * BLOCK_SIZE..(b as usize + 1) * BLOCK_SIZE;
            bytes[r.clone()].copy_from_slice(&self.image[r]);
        }
    }
}

/// Physical blocks of logical blocks `from..` of a file, in order, up to
/// the first hole (at most 64).
fn file_blocks(runs: &[crate::read::Mapping], from: u64) -> Vec<u64> {
    (from..from + 64)
        .map_while(|l| crate::fs::map::lookup(runs, l).map(|(p, _)| p))
        .collect()
}

fn node_template() -> Option<&'static NodeTemplate> {
    static T: OnceLock<Option<NodeTemplate>> = OnceLock::new();
    T.get_or_init(build_node_template).as_ref()
}

fn build_node_template() -> Option<NodeTemplate> {
    let tmp = TempImage(temp_image_path());
    let mut opts = template_options(&["t:4:l2"], Sizing::default())?;
    // M = 4 instead of 16: about a quarter of the nodes get upper levels,
    // so the template's graph has several levels and upper records.
    opts.collections[0].m = TEMPLATE_M;
    crate::mkfs::mkfs(&tmp.0, &opts, &mut |_, _| {}).ok()?;
    {
        let fs = Fs::open(&tmp.0, false).ok()?;
        let ctx = Ctx::root();
        let root = u64::from(ROOT_INO);
        let sub = fs.create(&ctx, root, b"d", 0o755, NewNode::Dir).ok()?;
        for i in 0..TEMPLATE_VECTORS {
            let parent = if i % 2 == 0 { root } else { sub.ino.into() };
            let name = format!("v{i:02}");
            let f = fs.create(&ctx, parent, name.as_bytes(), 0o644, NewNode::File).ok()?;
            fs.set_vector(&ctx, f.ino.into(), TEMPLATE_COLLECTION, &template_vector(i))
                .ok()?;
        }
        fs.close().ok()?;
    }
    let image = std::fs::read(&tmp.0).ok()?;
    let geometry = geometry_of(&image)?;
    let coll = {
        let txn = Txn::read_only(&image, geometry.blocks_count);
        let cat = catalog_io::read(&txn, &geometry).ok()??;
        let rec = cat.records.iter().find(|r| r.name == TEMPLATE_COLLECTION)?;
        Collection::load(&txn, &geometry, rec).ok()?
    };
    if coll.count() != u64::from(TEMPLATE_VECTORS) {
        return None;
    }
    Some(NodeTemplate {
        node_blocks: file_blocks(&coll.node_runs, 1),
        upper_blocks: file_blocks(&coll.upper_runs, 0),
        header_block: crate::fs::map::lookup(&coll.node_runs, 0)?.0,
        image,
        geometry,
        coll,
    })
}

/// Working copies of the template image, so an input costs a few block
/// copies rather than an 8 MiB one. A copy is put back only as the template
/// (every block [`node_record`] changes restored).
static NODE_POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An image in memory for a read-only [`Fs`]; returns its bytes, restored,
/// to [`NODE_POOL`] when the filesystem drops it.
struct PooledImage(Vec<u8>);

impl Media for PooledImage {
    fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn bytes_mut(&mut self) -> crate::Result<&mut [u8]> {
        // Read-only mounts never write; refusing keeps the pool pristine.
        Err(crate::FsError::ReadOnly)
    }

    fn flush(&mut self, _: Option<(u64, u64)>) -> crate::Result<()> {
        Ok(())
    }
}

impl Drop for PooledImage {
    fn drop(&mut self) {
        let Some(t) = node_template() else { return };
        let mut bytes = std::mem::take(&mut self.0);
        t.restore(&mut bytes);
        if let Ok(mut pool) = NODE_POOL.lock() {
            if pool.len() < 4 {
                pool.push(bytes);
            }
        }
    }
}

/// Write `payload` over (or, with `xor`, into) the bytes of `blocks` seen as
/// one run, from byte `at` of the run.
fn splice(bytes: &mut [u8], blocks: &[u64], at: usize, payload: &[u8], xor: bool) {
    for (i, &p) in payload.iter().enumerate() {
        let lin = at + i;
        let Some(&b) = blocks.get(lin / BLOCK_SIZE) else {
            return;
        };
        let byte = &mut bytes[b as usize * BLOCK_SIZE + lin % BLOCK_SIZE];
        *byte = if xor { *byte ^ p } else { p };
    }
}

/// Byte offset of record `i` of `stride` bytes in a run of blocks holding
/// `BLOCK_SIZE / stride` records each (records do not straddle blocks).
fn record_at(i: usize, stride: usize) -> usize {
    let per = (BLOCK_SIZE / stride.clamp(1, BLOCK_SIZE)).max(1);
    i / per * BLOCK_SIZE + i % per * stride
}

/// Recompute the checksums of every node and upper record the template's
/// files can hold (as [`Collection::put_record`] and
/// [`Collection::put_upper`] do), the records as they are.
fn seal_node_records(t: &NodeTemplate, bytes: &mut [u8]) {
    let coll = &t.coll;
    let mut txn = Txn::new(bytes, t.geometry.blocks_count);
    let stride = coll.geo.stride as usize;
    let slots = t.node_blocks.len() * BLOCK_SIZE / stride.max(1);
    for s in 0..slots as u32 {
        let Ok(rec) = coll.record(&txn, s) else { break };
        let mut rec = rec.into_owned();
        if coll.put_record(&mut txn, s, &mut rec).is_err() {
            break;
        }
    }
    let ustride = coll.upper_stride();
    if (24..=BLOCK_SIZE).contains(&ustride) {
        for r in 0..(t.upper_blocks.len() * (BLOCK_SIZE / ustride)) as u32 {
            let at = record_at(r as usize, ustride);
            let Some(&b) = t.upper_blocks.get(at / BLOCK_SIZE) else {
                break;
            };
            let Ok(blk) = txn.block(b) else { break };
            let mut rec = blk[at % BLOCK_SIZE..at % BLOCK_SIZE + ustride].to_vec();
            if coll.put_upper(&mut txn, r, &mut rec).is_err() {
                break;
            }
        }
    }
    txn.commit();
}

/// Query vectors: near the template's data, far from it, and degenerate.
const QUERIES: [[f32; 4]; 4] = [
    [1.0, 2.0, 0.5, 1.2],
    [40.0, -3.0, 8.0, 0.0],
    [0.0, 0.0, 0.0, 0.0],
    [f32::MAX, f32::MIN, 1e-38, -0.0],
];

/// Node records through the collection code and the search, over an image
/// mkfs made and the filesystem core filled (collection "t", 4 f32
/// dimensions, 40 vectors; built once per process).
///
/// The input is a control byte, a record index, then (control bit 2) 52
/// bytes XORed into the collection header's counters (bytes 32..84:
/// `ch_count` to `ch_int8_scale`; its checksum is then recomputed), then a
/// payload written over the slot records of the node file (control bit 0:
/// over the upper file's records) from the record with that index on;
/// control bit 3 XORs the payload in instead. Control bit 1 recomputes the
/// checksums of every node and upper record afterwards.
///
/// Then, read-only: [`Collection::load`], for every slot (at most 256)
/// [`Collection::node`], [`Collection::peek`] and [`Walk::neighbours`] at
/// levels 0, 1 and 2; [`knn`] for a few queries, k and ef (budget 2000
/// nodes); [`stats::gather`]; and through a read-only [`Fs`] on the image
/// [`Fs::search`] (whole tree and subtree `/d`, budget 2000 nodes) and
/// [`Fs::collection_stats`].
pub fn node_record(data: &[u8]) {
    let Some(t) = node_template() else { return };
    let Some((&control, rest)) = data.split_first() else {
        run_node_record(t, t.image.clone());
        return;
    };
    let (index, mut rest) = rest.split_first().map_or((0, &[][..]), |(&i, r)| (usize::from(i), r));
    let mut bytes = NODE_POOL
        .lock()
        .ok()
        .and_then(|mut p| p.pop())
        .unwrap_or_else(|| t.image.clone());
    if control & 4 != 0 {
        let (overlay, after) = rest.split_at(rest.len().min(52));
        rest = after;
        let at = t.header_block as usize * BLOCK_SIZE;
        splice(&mut bytes, &[t.header_block], 32, overlay, true);
        if let Some(seed) = t.geometry.csum_seed {
            let sum = vector::collection_header_checksum(&bytes[at..at + 88], t.coll.record.node_ino, seed);
            bytes[at + 84..at + 88].copy_from_slice(&sum.to_le_bytes());
        }
    }
    let xor = control & 8 != 0;
    if control & 1 == 0 {
        let at = record_at(index, t.coll.geo.stride as usize);
        splice(&mut bytes, &t.node_blocks, at, rest, xor);
    } else {
        let at = record_at(index, t.coll.upper_stride());
        splice(&mut bytes, &t.upper_blocks, at, rest, xor);
    }
    if control & 2 != 0 {
        seal_node_records(t, &mut bytes);
    }
    run_node_record(t, bytes);
}

fn run_node_record(t: &NodeTemplate, bytes: Vec<u8>) {
    collection_walks(t, &bytes);
    let Ok(fs) = Fs::from_media(Box::new(PooledImage(bytes)), true) else {
        return;
    };
    for (q, subtree) in QUERIES.iter().zip([None, Some("/d")]) {
        let mut req = SearchRequest::new(TEMPLATE_COLLECTION, q.to_vec(), 5);
        req.budget = FUZZ_BUDGET;
        req.subtree = subtree.map(String::from);
        if let Ok(resp) = fs.search(&req) {
            let _ = control::format(&resp, false);
        }
    }
    let _ = fs.collection_stats(TEMPLATE_COLLECTION);
}

fn collection_walks(t: &NodeTemplate, bytes: &[u8]) {
    let txn = Txn::read_only(bytes, t.geometry.blocks_count);
    let Ok(coll) = Collection::load(&txn, &t.geometry, &t.coll.record) else {
        return;
    };
    let _ = (coll.slots(), coll.count(), coll.upper_stride());
    let walk = Walk::new(&coll, &txn, FUZZ_BUDGET);
    let mut ids = Vec::new();
    for s in 0..coll.slots().min(u64::from(MAX_SLOTS_READ)) as u32 {
        let _ = coll.record_offset(s);
        if let Ok(n) = coll.node(&txn, s) {
            let _ = (n.vector().len(), n.adjacency().len(), n.is_live(), n.level());
        }
        let Ok(n) = coll.peek(&txn, s) else { continue };
        for level in 0..=2 {
            let _ = walk.neighbours(s, &n, level, &mut ids);
        }
    }
    for (q, (k, ef)) in QUERIES.iter().zip([(5, 16), (1, 1), (40, 64), (3, 3)]) {
        let Ok(mut scorer) = Scorer::new(coll.space, q) else {
            continue;
        };
        if let Ok(r) = knn(&coll, &txn, &mut scorer, k, ef, FUZZ_BUDGET, &mut LiveOnly) {
            let _ = (r.found.len(), r.exhausted, r.visited);
        }
    }
    let _ = stats::gather(&coll, &txn);
}

/// A mounted image's vector and event queries, read-only: every collection
/// (at most 8) searched with a query of its dimension (budget 2000 nodes)
/// and its statistics gathered; the first 100 events.
fn fs_queries(fs: &Fs) {
    if let Ok(colls) = fs.collections() {
        for rec in colls.iter().take(8) {
            let dim = rec.dim.min(MAX_DIM) as usize;
            let v = (0..dim).map(|i| (i % 7) as f32 * 0.25 + 0.5).collect();
            let mut req = SearchRequest::new(&rec.name, v, 5);
            req.budget = FUZZ_BUDGET;
            let _ = fs.search(&req);
            let _ = fs.collection_stats(&rec.name);
        }
    }
    let _ = fs.event_range();
    if let Ok(batch) = fs.events_since(0, 100, &Filter::default()) {
        for e in &batch.events {
            let _ = e.to_json();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_templates_build() {
        let r = ring_template().expect("event ring template");
        assert_eq!(r.geometry.events.blocks, events::MIN_EVENT_BLOCKS);
        let n = node_template().expect("node record template");
        assert!(!n.node_blocks.is_empty() && !n.upper_blocks.is_empty());
        assert!(n.coll.header.ch_upper_records.get() > 0, "the graph has upper levels");
    }
}
