//! Fixed-layout structures: superblock, inode, extent node, directory
//! block, xattr block, bitmap block, HNSW adjacency list, journal
//! superblock and event ring header. Each is parsed with and without
//! checksums and on a sealed copy (see the [parent module](super)).

use super::{sealed, FUZZ_BLOCK, FUZZ_INO, FUZZ_SEED, SEEDS};
use crate::format::bitmap::{self, BITS_PER_KERNEL_BLOCK, BITS_PER_TAILED_BLOCK, TAILED_BITS_BYTES};
use crate::format::dir::{self, DirBlockIter, DIR_TAIL_SIZE};
use crate::format::events::{self, EventRecord};
use crate::format::extent::{self, ExtentNode, BLOCK_MAX_ENTRIES, ROOT_MAX_ENTRIES, TAIL_OFFSET};
use crate::format::hnsw::{self, UpperRecord};
use crate::format::inode::{self, FileType, InodeView, EXTENTS_FL, I_BLOCK_BYTES, LARGE_INODE_SIZE};
use crate::format::journal::{self, JournalHeader};
use crate::format::superblock::{Superblock, CHECKSUM_OFFSET};
use crate::format::{xattr, BLOCK_SIZE_U64};
use crate::layout::Geometry;
use zerocopy::FromBytes;

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

/// Encoded HNSW neighbour list bytes, in each coding (format-spec/09
/// §9.5): every id the checked iterator yields for several `ch_slots`
/// values; the search's fast decoder must agree with it exactly; the ids
/// re-encoded must decode to themselves; then the same bytes read as an
/// [`UpperRecord`] followed by its list.
pub fn adjacency(data: &[u8]) {
    for coding in hnsw::CODINGS {
        adjacency_in(coding, data);
    }
}

fn adjacency_in(coding: hnsw::ListCoding, data: &[u8]) {
    let slots = [u64::MAX, 1 << 32, 1 << 20, data.len() as u64];
    for s in slots {
        let ids: Vec<u32> = coding.iter(data, s, 0).map_while(Result::ok).collect();
        let mut fast = Vec::new();
        let whole = coding.decode_all(data, s, &mut fast);
        assert_eq!(
            whole,
            coding.iter(data, s, 0).all(|r| r.is_ok()),
            "{coding:?}: decode_all's verdict"
        );
        if whole {
            assert_eq!(fast, ids, "{coding:?}: decode_all's ids");
        }
        // Room for any coding of these ids: 5 varint bytes, or 1 + 57 + 31
        // bits of Rice code, an id.
        let mut buf = vec![0u8; 1 + ids.len() * 12];
        let n = coding
            .encode(&ids, &mut buf)
            .expect("sorted distinct ids always encode");
        let again: Vec<u32> = coding.iter(&buf[..n], s, 0).map(|r| r.expect("own encoding")).collect();
        assert_eq!(again, ids, "{coding:?}: re-encoded ids");
    }
    if let Ok((rec, rest)) = UpperRecord::ref_from_prefix(data) {
        let _ = (rec.u_slot.get(), rec.u_level, rec.u_flags, rec.u_checksum.get());
        let len = usize::from(rec.u_adj_len.get()).min(rest.len());
        coding.iter(&rest[..len], u64::from(u32::MAX), 16).for_each(drop);
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
