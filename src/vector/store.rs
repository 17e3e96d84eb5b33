//! One collection's node file and upper file, read and written through a
//! transaction (format-spec/08 §8.4-8.6, 09 §9.4).
//!
//! Records are addressed by arithmetic (§8.5.2) plus the file's extent
//! map, which is loaded once per [`Collection`]. A record that fits in a
//! block is borrowed straight from the map (or from the transaction's copy
//! of the block); larger ones are assembled block by block.

use super::direct::{DirectNodes, RunIndex};
use super::distance::Space;
pub(crate) use super::slots::SlotMap;
pub(crate) use super::span::block_of;
use super::span::{read_span, read_span_in, write_span};
use crate::error::{Expected, FsError, Result};
use crate::format::checksum::csum_skipping;
use crate::format::hnsw::{ListCoding, UpperRecord, MAX_LEVEL};
use crate::format::inode::{FileType, InodeNo};
use crate::format::vector::{
    node_geometry, packed_geometry, parse_collection_header, CollectionHeader, CollectionRecord, ElemType, Metric,
    NodeGeometry, NodeHeader, NodeLayout, MAX_LIST_BYTES, MIN_LIST_BYTES, NODE_CSUM_AT, NODE_DELETED, NODE_HEADER_LEN,
    NODE_LIVE,
};
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64};
use crate::fs::map;
use crate::fs::txn::Txn;
use crate::layout::Geometry;
use crate::read::Mapping;
use std::borrow::Cow;
use std::sync::OnceLock;
use zerocopy::{FromBytes, IntoBytes};

/// Offset of `u_checksum` in an upper record.
const UPPER_CSUM_AT: usize = 8;

/// A collection opened for searching or changing.
#[derive(Debug, Clone)]
pub struct Collection {
    pub record: CollectionRecord,
    pub space: Space,
    pub node_ino: InodeNo,
    pub upper_ino: Option<InodeNo>,
    pub geo: NodeGeometry,
    /// How the image codes neighbour lists (format-spec/09 §9.5).
    pub coding: ListCoding,
    /// The header as last read or written (counters, entry point).
    pub header: CollectionHeader,
    /// Where a slot's record is (§8.5.2).
    pub(crate) slot_map: SlotMap,
    pub(crate) node_runs: Vec<Mapping>,
    /// [`RunIndex`] of `node_runs`, built at the first direct walk. Reset
    /// whenever `node_runs` changes ([`Collection::node_runs_changed`]).
    pub(crate) node_index: OnceLock<Option<RunIndex>>,
    pub(crate) upper_runs: Vec<Mapping>,
    pub(crate) seed: Option<u32>,
    /// The node and upper files are orphans being built by a bulk load
    /// (`super::bulk`): their blocks are written straight to the map,
    /// outside the journal ([`Txn::unjournaled_mut`]).
    pub(crate) unjournaled: bool,
}

/// A validated node record.
pub struct Node<'a> {
    pub bytes: Cow<'a, [u8]>,
    geo: NodeGeometry,
    vec_len: usize,
}

impl Node<'_> {
    #[inline]
    pub fn header(&self) -> &NodeHeader {
        // The record is at least a header long (the geometry is).
        NodeHeader::ref_from_prefix(&self.bytes).map_or_else(|_| unreachable_header(), |(h, _)| h)
    }

    #[inline]
    pub fn vector(&self) -> &[u8] {
        let at = self.geo.vector_offset as usize;
        &self.bytes[at..at + self.vec_len]
    }

    pub fn adjacency(&self) -> &[u8] {
        let at = self.geo.adj_offset as usize;
        &self.bytes[at..at + usize::from(self.header().n_adj_len.get())]
    }

    pub fn is_live(&self) -> bool {
        self.header().n_flags == NODE_LIVE
    }

    pub fn level(&self) -> u8 {
        self.header().n_level
    }
}

fn unreachable_header() -> &'static NodeHeader {
    static ZERO: [u8; NODE_HEADER_LEN] = [0; NODE_HEADER_LEN];
    NodeHeader::ref_from_bytes(&ZERO[..]).expect("NODE_HEADER_LEN bytes make a NodeHeader")
}

/// The space a collection record describes.
pub fn space_of(rec: &CollectionRecord) -> Result<Space> {
    let metric = Metric::from_code(rec.metric).ok_or_else(|| FsError::Unsupported(format!("metric {}", rec.metric)))?;
    let elem =
        ElemType::from_code(rec.elem_type).ok_or_else(|| FsError::Unsupported(format!("type {}", rec.elem_type)))?;
    let scale = if elem == ElemType::Int8 { rec.int8_scale } else { 1.0 };
    Ok(Space {
        dim: rec.dim as usize,
        metric,
        elem,
        scale,
    })
}

impl Collection {
    /// Open the collection `rec` describes, checking its header against
    /// the record (format-spec/08 §8.8).
    pub fn load(txn: &Txn<'_>, g: &Geometry, rec: &CollectionRecord) -> Result<Collection> {
        let space = space_of(rec)?;
        let node_ino = hidden_file(txn, g, rec.node_ino)?;
        let node_buf = crate::fs::inode::load(txn, g, node_ino)?;
        let node_runs = map::load(txn, g, &node_buf)?.runs;
        let phys = block_of(&node_runs, 0, "node file")?;
        let blk = txn.block(phys)?;
        let h = parse_collection_header(blk, phys * BLOCK_SIZE_U64, rec.node_ino, g.csum_seed)?.clone();
        let at = phys * BLOCK_SIZE_U64;
        let geo = geometry_of(&h, rec, space.elem, g.features.node_layout(), at)?;
        let mismatch = |off: u64, field, want: u64, got: u64| {
            FsError::corrupt("collection header", at + off, field, Expected::Eq(want), got)
        };
        let checks: [(u64, &'static str, u64, u64); 9] = [
            (4, "ch_collection_id", rec.id.into(), h.ch_collection_id.get().into()),
            (8, "ch_dim", rec.dim.into(), h.ch_dim.get().into()),
            (12, "ch_elem_type", rec.elem_type.into(), h.ch_elem_type.into()),
            (13, "ch_metric", rec.metric.into(), h.ch_metric.into()),
            (14, "ch_m", rec.m.into(), h.ch_m.get().into()),
            (16, "ch_node_stride", geo.stride.into(), h.ch_node_stride.get().into()),
            (
                20,
                "ch_vector_offset",
                geo.vector_offset.into(),
                h.ch_vector_offset.get().into(),
            ),
            (24, "ch_adj_offset", geo.adj_offset.into(), h.ch_adj_offset.get().into()),
            (
                28,
                "ch_adj_capacity",
                geo.adj_capacity.into(),
                h.ch_adj_capacity.get().into(),
            ),
        ];
        for (off, field, want, got) in checks {
            if want != got {
                return Err(mismatch(off, field, want, got));
            }
        }
        let bad = |off: u64, field, exp, got: u64| FsError::corrupt("collection header", at + off, field, exp, got);
        let slots = h.ch_slots.get();
        if slots >= 1 << 32 {
            return Err(bad(40, "ch_slots", Expected::Below(1 << 32), slots));
        }
        if h.ch_count.get() > slots {
            return Err(bad(32, "ch_count", Expected::AtMost(slots), h.ch_count.get()));
        }
        if h.ch_free_head.get() > slots {
            return Err(bad(48, "ch_free_head", Expected::AtMost(slots), h.ch_free_head.get()));
        }
        if h.ch_count.get() > 0 {
            if h.ch_entry_slot.get() >= slots {
                return Err(bad(56, "ch_entry_slot", Expected::Below(slots), h.ch_entry_slot.get()));
            }
            let max = h.ch_max_level.get();
            if max > MAX_LEVEL.into() {
                return Err(bad(64, "ch_max_level", Expected::AtMost(MAX_LEVEL.into()), max.into()));
            }
        }
        if h.ch_upper_records.get() > 0 && h.ch_upper_ino.get() == 0 {
            return Err(bad(68, "ch_upper_ino", Expected::NonZero, 0));
        }
        let upper_stride = h.ch_upper_stride.get();
        let (upper_ino, upper_runs) = match h.ch_upper_ino.get() {
            0 => (None, Vec::new()),
            n => {
                if !(24..=4096).contains(&upper_stride) || upper_stride % 8 != 0 {
                    return Err(bad(
                        72,
                        "ch_upper_stride",
                        Expected::Within(24, 4096),
                        upper_stride.into(),
                    ));
                }
                let ino = hidden_file(txn, g, n)?;
                let b = crate::fs::inode::load(txn, g, ino)?;
                (Some(ino), map::load(txn, g, &b)?.runs)
            }
        };
        Ok(Collection {
            record: rec.clone(),
            space,
            node_ino,
            upper_ino,
            geo,
            coding: g.features.list_coding(),
            header: h,
            slot_map: SlotMap::of(geo),
            node_runs,
            node_index: OnceLock::new(),
            upper_runs,
            seed: g.csum_seed,
            unjournaled: false,
        })
    }

    pub fn slots(&self) -> u64 {
        self.header.ch_slots.get()
    }

    pub fn count(&self) -> u64 {
        self.header.ch_count.get()
    }

    pub fn upper_stride(&self) -> usize {
        self.header.ch_upper_stride.get() as usize
    }

    /// (logical block, byte offset) of slot `s` (§8.5.2).
    #[inline]
    fn slot_at(&self, s: u32) -> (u64, usize) {
        self.slot_map.place(s, self.geo.stride)
    }

    /// Byte of the node file where the first `n` slots end (0 for none):
    /// the least `i_size` that holds them.
    pub fn slots_end(&self, n: u64) -> u64 {
        let Some(last) = n.checked_sub(1).and_then(|l| u32::try_from(l).ok()) else {
            return 0;
        };
        let (l, off) = self.slot_at(last);
        l * BLOCK_SIZE_U64 + off as u64 + u64::from(self.geo.stride)
    }

    fn upper_at(&self, r: u32) -> (u64, usize) {
        let stride = self.upper_stride();
        let per = (BLOCK_SIZE / stride) as u64;
        (u64::from(r) / per, (u64::from(r) % per) as usize * stride)
    }

    /// The raw bytes of slot `s` (not validated).
    pub fn record<'t>(&self, txn: &'t Txn<'_>, s: u32) -> Result<Cow<'t, [u8]>> {
        let (l, off) = self.slot_at(s);
        read_span(txn, &self.node_runs, l, off, self.geo.stride as usize, "node file")
    }

    /// The raw bytes of slot `s` through the transaction when they lie in
    /// one block (borrowed, no copy), else `None`: what a prefetch hint
    /// wants, which is not worth assembling a straddling record for.
    pub(crate) fn record_in_one_block<'t>(&self, txn: &'t Txn<'_>, s: u32) -> Option<&'t [u8]> {
        if u64::from(s) >= self.slots() {
            return None;
        }
        let (l, off) = self.slot_at(s);
        let end = off + self.geo.stride as usize;
        let blk = txn.block(block_of(&self.node_runs, l, "node file").ok()?).ok()?;
        blk.get(off..end)
    }

    /// Slot `s`, validated (§8.8 NodeHeader rules and checksum). Writers
    /// and search results use this.
    pub fn node<'t>(&self, txn: &'t Txn<'_>, s: u32) -> Result<Node<'t>> {
        self.read_node(txn, s, true)
    }

    /// Slot `s` with its structure checked (flags, level, list length) but
    /// not its checksum: what a graph walk routes through (§9.7). A
    /// damaged record it accepts can misroute a search, never make it
    /// read out of bounds; results are read with [`Collection::node`].
    pub fn peek<'t>(&self, txn: &'t Txn<'_>, s: u32) -> Result<Node<'t>> {
        self.read_node(txn, s, false)
    }

    /// [`Collection::peek`], reading the record through `direct` when it
    /// holds it (the same bytes, without the per-record lookups).
    #[inline]
    pub fn peek_in<'t>(&self, txn: &'t Txn<'_>, direct: Option<&DirectNodes<'_, 't>>, s: u32) -> Result<Node<'t>> {
        match direct.and_then(|d| self.direct_record(d, s)) {
            Some(bytes) => self.validated(Cow::Borrowed(bytes), s, false),
            None => self.read_node(txn, s, false),
        }
    }

    /// [`Collection::peek`] through the transaction, a record straddling
    /// blocks assembled in `buf` instead of a new allocation (what a walk
    /// reads when its direct view cannot serve a record).
    pub fn peek_in_buf<'a>(&self, txn: &'a Txn<'_>, s: u32, buf: &'a mut Vec<u8>) -> Result<Node<'a>> {
        if u64::from(s) >= self.slots() {
            return self.peek(txn, s);
        }
        let (l, off) = self.slot_at(s);
        let span = (l, off, self.geo.stride as usize);
        let bytes = read_span_in(txn, &self.node_runs, span, "node file", buf)?;
        self.validated(Cow::Borrowed(bytes), s, false)
    }

    /// [`Collection::peek`] of slot `s`, whose raw bytes the caller got
    /// from [`Collection::direct_record`] (which checked `s < ch_slots`).
    #[inline]
    pub fn peek_record<'t>(&self, bytes: &'t [u8], s: u32) -> Result<Node<'t>> {
        self.validated(Cow::Borrowed(bytes), s, false)
    }

    /// The header and vector of a record the direct view served, when
    /// its structure passes the walk's checks (those of
    /// [`Collection::peek`]); `None` sends the caller to `peek`, which
    /// says what is wrong. Why not a [`Node`]: the walk reads two fields
    /// and the vector of every record it scores, and building a `Node`
    /// (returned through a `Result`) cost a store-to-load stall per
    /// record (26% of a search's time in its own profile).
    #[inline]
    pub fn quick<'t>(&self, rec: &'t [u8]) -> Option<(&'t NodeHeader, &'t [u8])> {
        let h = self.sound_header(rec)?;
        let at = self.geo.vector_offset as usize;
        Some((h, rec.get(at..at + self.space.vector_bytes())?))
    }

    /// The record's header when it passes the structural checks of §8.8
    /// (flags, level, list length; not the checksum), else `None`: the one
    /// place a walk's fast paths check a header (the full check with its
    /// error reports is [`Collection::validated_fully`]).
    #[inline]
    fn sound_header<'b>(&self, rec: &'b [u8]) -> Option<&'b NodeHeader> {
        let (h, _) = NodeHeader::ref_from_prefix(rec).ok()?;
        let sound = matches!(h.n_flags, 0 | NODE_LIVE | NODE_DELETED)
            && h.n_level <= MAX_LEVEL
            && u32::from(h.n_adj_len.get()) <= self.geo.adj_capacity;
        sound.then_some(h)
    }

    /// The raw bytes of slot `s` in `direct`, if it is a slot and the
    /// view holds it (not validated).
    #[inline]
    pub fn direct_record<'t>(&self, direct: &DirectNodes<'_, 't>, s: u32) -> Option<&'t [u8]> {
        if u64::from(s) >= self.slots() {
            return None;
        }
        let (l, off) = self.slot_at(s);
        direct.span(l, off, self.geo.stride as usize)
    }

    pub(crate) fn node_runs(&self) -> &[Mapping] {
        &self.node_runs
    }

    /// The node file's [`RunIndex`] (`None` if it cannot be built).
    pub(crate) fn run_index(&self) -> Option<&RunIndex> {
        self.node_index
            .get_or_init(|| RunIndex::build(&self.node_runs))
            .as_ref()
    }

    /// Forget the [`RunIndex`] after `node_runs` changed.
    pub(crate) fn node_runs_changed(&mut self) {
        self.node_index = OnceLock::new();
    }

    fn read_node<'t>(&self, txn: &'t Txn<'_>, s: u32, verify: bool) -> Result<Node<'t>> {
        if u64::from(s) >= self.slots() {
            let slots = self.slots();
            return Err(FsError::corrupt(
                "node record",
                0,
                "slot",
                Expected::Below(slots),
                s.into(),
            ));
        }
        let bytes = self.record(txn, s)?;
        self.validated(bytes, s, verify)
    }

    /// Slot `s`'s record checked (§8.8): flags, level, list length, and
    /// the checksum when `verify`. The caller checked `s < ch_slots`.
    #[inline]
    fn validated<'t>(&self, bytes: Cow<'t, [u8]>, s: u32, verify: bool) -> Result<Node<'t>> {
        // The walk's case (no checksum, a sound header) without the
        // error paths; anything else takes the full check below.
        if (!verify || self.seed.is_none()) && self.sound_header(&bytes).is_some() {
            return Ok(Node {
                bytes,
                geo: self.geo,
                vec_len: self.space.vector_bytes(),
            });
        }
        self.validated_fully(bytes, s, verify)
    }

    #[cold]
    fn validated_fully<'t>(&self, bytes: Cow<'t, [u8]>, s: u32, verify: bool) -> Result<Node<'t>> {
        let h = NodeHeader::ref_from_prefix(&bytes)
            .map_err(|_| FsError::Invalid("short node record".into()))?
            .0;
        let bad = |off: u64, field, exp, act: u64| {
            FsError::corrupt("node record", self.record_offset(s) + off, field, exp, act)
        };
        if let (Some(seed), true) = (self.seed, verify) {
            let want = csum_skipping(seed, s.into(), &bytes, NODE_CSUM_AT);
            if h.n_checksum.get() != want {
                let got = h.n_checksum.get().into();
                return Err(bad(16, "n_checksum", Expected::Eq(want.into()), got));
            }
        }
        if !matches!(h.n_flags, 0 | NODE_LIVE | NODE_DELETED) {
            return Err(bad(5, "n_flags", Expected::Known, h.n_flags.into()));
        }
        if h.n_level > MAX_LEVEL {
            return Err(bad(4, "n_level", Expected::AtMost(MAX_LEVEL.into()), h.n_level.into()));
        }
        if u32::from(h.n_adj_len.get()) > self.geo.adj_capacity {
            let cap = self.geo.adj_capacity.into();
            return Err(bad(6, "n_adj_len", Expected::AtMost(cap), h.n_adj_len.get().into()));
        }
        Ok(Node {
            bytes,
            geo: self.geo,
            vec_len: self.space.vector_bytes(),
        })
    }

    /// Where slot `s`'s record lies in the image: (byte offset, length) of
    /// its part in each block it touches, in order (offset 0 for a block
    /// the node file does not map). For tools and tests that patch records
    /// in an image file; a packed record's two blocks need not be adjacent.
    pub fn record_pieces(&self, s: u32) -> Vec<(u64, usize)> {
        let (l, off) = self.slot_at(s);
        super::span::pieces(l, off, self.geo.stride as usize)
            .map(|(b, at, n)| {
                let phys = map::lookup(&self.node_runs, b).map_or(0, |(p, _)| p * BLOCK_SIZE_U64 + at as u64);
                (phys, n)
            })
            .collect()
    }

    /// Image byte offset of slot `s` (for error reports; 0 if unmapped).
    pub fn record_offset(&self, s: u32) -> u64 {
        let (l, off) = self.slot_at(s);
        map::lookup(&self.node_runs, l).map_or(0, |(p, _)| p * BLOCK_SIZE_U64 + off as u64)
    }

    /// Write slot `s`, sealing its checksum.
    pub fn put_record(&self, txn: &mut Txn<'_>, s: u32, rec: &mut [u8]) -> Result<()> {
        if let Some(seed) = self.seed {
            let c = csum_skipping(seed, s.into(), rec, NODE_CSUM_AT);
            rec[NODE_CSUM_AT..NODE_CSUM_AT + 4].copy_from_slice(&c.to_le_bytes());
        }
        let (l, off) = self.slot_at(s);
        write_span(txn, self.unjournaled, &self.node_runs, (l, off), rec, "node file")
    }

    /// The upper record holding `node`'s list at `level` (1..=n_level):
    /// `n_upper_ref + level - 1`, which must lie below `ch_upper_records`.
    pub fn upper_index(&self, s: u32, node: &Node<'_>, level: u8) -> Result<u32> {
        let first = node.header().n_upper_ref.get();
        let records = self.header.ch_upper_records.get();
        match first.checked_add(u32::from(level) - 1) {
            Some(r) if r < records => Ok(r),
            _ => Err(FsError::corrupt(
                "node record",
                self.record_offset(s) + 8,
                "n_upper_ref",
                Expected::Below(records.into()),
                first.into(),
            )),
        }
    }

    /// Upper record `r` (raw, checked against its owner by the caller).
    pub fn upper<'t>(&self, txn: &'t Txn<'_>, r: u32, slot: u32, level: u8) -> Result<Cow<'t, [u8]>> {
        let (l, off) = self.upper_at(r);
        let bytes = read_span(txn, &self.upper_runs, l, off, self.upper_stride(), "upper file")?;
        let u = UpperRecord::ref_from_prefix(&bytes)
            .map_err(|_| FsError::Invalid("short upper record".into()))?
            .0;
        // The record's image offset costs an extent search: only an error
        // report needs it.
        let bad = |o: u64, field, exp, act: u64| {
            let at = map::lookup(&self.upper_runs, l).map_or(0, |(p, _)| p * BLOCK_SIZE_U64 + off as u64);
            FsError::corrupt("upper record", at + o, field, exp, act)
        };
        if let Some(seed) = self.seed {
            let want = csum_skipping(seed, r.into(), &bytes, UPPER_CSUM_AT);
            if u.u_checksum.get() != want {
                return Err(bad(
                    8,
                    "u_checksum",
                    Expected::Eq(want.into()),
                    u.u_checksum.get().into(),
                ));
            }
        }
        if u.u_slot.get() != slot {
            return Err(bad(0, "u_slot", Expected::Eq(slot.into()), u.u_slot.get().into()));
        }
        if u.u_level != level {
            return Err(bad(4, "u_level", Expected::Eq(level.into()), u.u_level.into()));
        }
        if u.u_flags != 1 {
            return Err(bad(5, "u_flags", Expected::Eq(1), u.u_flags.into()));
        }
        if usize::from(u.u_adj_len.get()) > self.upper_stride() - 16 {
            let cap = (self.upper_stride() - 16) as u64;
            return Err(bad(6, "u_adj_len", Expected::AtMost(cap), u.u_adj_len.get().into()));
        }
        Ok(bytes)
    }

    /// Write upper record `r`, sealing its checksum.
    pub fn put_upper(&self, txn: &mut Txn<'_>, r: u32, rec: &mut [u8]) -> Result<()> {
        if let Some(seed) = self.seed {
            let c = csum_skipping(seed, r.into(), rec, UPPER_CSUM_AT);
            rec[UPPER_CSUM_AT..UPPER_CSUM_AT + 4].copy_from_slice(&c.to_le_bytes());
        }
        let (l, off) = self.upper_at(r);
        write_span(txn, self.unjournaled, &self.upper_runs, (l, off), rec, "upper file")
    }

    /// Write the header back (block 0 of the node file).
    pub fn store_header(&self, txn: &mut Txn<'_>) -> Result<()> {
        let phys = block_of(&self.node_runs, 0, "node file")?;
        let blk = txn.writable(phys, self.unjournaled)?;
        blk[..88].copy_from_slice(self.header.as_bytes());
        if let Some(seed) = self.seed {
            let c = crate::format::vector::collection_header_checksum(&blk[..88], self.record.node_ino, seed);
            blk[84..88].copy_from_slice(&c.to_le_bytes());
        }
        Ok(())
    }

    /// A block just added to the node or upper file, zeroed: a private
    /// copy, or the map itself while the files are built unjournaled.
    pub(crate) fn block_new(&self, txn: &mut Txn<'_>, phys: u64) -> Result<()> {
        if self.unjournaled {
            txn.unjournaled_mut(phys)?.fill(0);
        } else {
            txn.block_new(phys)?;
        }
        Ok(())
    }

    /// The logical blocks slot `s`'s record touches, and the first of
    /// them no earlier slot touches (when slots are appended in order,
    /// those are new: grown, not yet written).
    pub(crate) fn slot_blocks(&self, s: u32) -> (std::ops::Range<u64>, u64) {
        let (l, off) = self.slot_at(s);
        let end = l + (off + self.geo.stride as usize).div_ceil(BLOCK_SIZE) as u64;
        let first_new = if off == 0 { l } else { l + 1 };
        (l..end, first_new)
    }

    pub(crate) fn upper_blocks(&self, r: u32) -> (u64, bool) {
        let (l, off) = self.upper_at(r);
        (l, off == 0)
    }
}

/// The record geometry `h` must have (§8.5.1): v1's is fixed by the record;
/// a packed collection's list bytes were chosen at its creation and are
/// read from `ch_adj_capacity` (the caller compares every field).
fn geometry_of(
    h: &CollectionHeader,
    rec: &CollectionRecord,
    elem: ElemType,
    layout: NodeLayout,
    at: u64,
) -> Result<NodeGeometry> {
    if layout == NodeLayout::V1 {
        // The v1 geometry does not depend on the list coding.
        return Ok(node_geometry(rec.dim, elem, rec.m, layout, ListCoding::Varint));
    }
    let cap = h.ch_adj_capacity.get();
    // The stored capacity is the requested one rounded up by at most 3.
    let range = MIN_LIST_BYTES..=MAX_LIST_BYTES + 3;
    if !range.contains(&cap) {
        let exp = Expected::Within((*range.start()).into(), (*range.end()).into());
        return Err(FsError::corrupt(
            "collection header",
            at + 28,
            "ch_adj_capacity",
            exp,
            cap.into(),
        ));
    }
    Ok(packed_geometry(rec.dim, elem, cap))
}

/// An inode that must be a live regular file used as a hidden collection file.
fn hidden_file(txn: &Txn<'_>, g: &Geometry, n: u32) -> Result<InodeNo> {
    let ino = g.inode_no(n).ok_or_else(|| {
        FsError::corrupt(
            "collection catalogue",
            0,
            "node_ino",
            Expected::AtMost(g.inodes_count.into()),
            n.into(),
        )
    })?;
    let b = crate::fs::inode::load(txn, g, ino)?;
    if b.base().is_free() || b.file_type() != Some(FileType::Regular) {
        let at = g.inode_offset(ino);
        return Err(FsError::corrupt(
            "inode",
            at,
            "i_mode",
            Expected::Known,
            b.base().mode().into(),
        ));
    }
    Ok(ino)
}
