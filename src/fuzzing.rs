//! Fuzzing entry points: one function per on-disk structure, plus a whole
//! image. Each takes untrusted bytes, feeds them to the parsers in
//! [`crate::format`] (and [`crate::catalog`]), consumes every item of every
//! iterator they return, and returns `()`. None of them may panic on any
//! input; the cargo-fuzz targets in `fuzz/` check exactly that, and
//! `tests/fuzz_corpus.rs` replays the seed corpora and saved crashes.
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
use crate::format::bitmap::{self, BITS_PER_KERNEL_BLOCK, BITS_PER_TAILED_BLOCK, TAILED_BITS_BYTES};
use crate::format::dir::{self, DirBlockIter, DIR_TAIL_SIZE};
use crate::format::events::{self, EventRecord};
use crate::format::extent::{self, ExtentNode, BLOCK_MAX_ENTRIES, ROOT_MAX_ENTRIES, TAIL_OFFSET};
use crate::format::hnsw::{self, NeighbourIter, UpperRecord};
use crate::format::inode::{self, FileType, InodeView, EXTENTS_FL, I_BLOCK_BYTES, LARGE_INODE_SIZE};
use crate::format::journal::{self, JournalHeader};
use crate::format::superblock::{Superblock, CHECKSUM_OFFSET};
use crate::format::vector::{self, CollectionHeader, ElemType, Metric, NodeHeader, MAX_DIM};
use crate::format::{xattr, BLOCK_SIZE_U64, CATALOG_INO, ROOT_INO};
use crate::image::{Image, Mode};
use crate::layout::Geometry;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
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
/// each) and every symlink target. The temp file is removed afterwards.
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
        }
    }
}
