//! Hashed directories (format-spec/06-directories.md §6.4-6.6): a directory
//! that outgrows one block gets `INDEX_FL`; logical block 0 becomes the
//! index root, names are spread over leaf blocks by hash, and a lookup
//! reads the root, at most one index node, and one leaf.
//!
//! Limits, by design: one level of index nodes (507 x 510 leaves, millions
//! of names); names are never split across leaves inside one hash value (a
//! leaf full of a single hash value gives ENOSPC).

use super::dir::{self as d, Slot};
use super::inode::InodeBuf;
use super::map;
use super::txn::Txn;
use crate::error::{Expected, FsError, Result};
use crate::format::dir::{self as fd, rec_len_for, DirBlockIter};
use crate::format::features::INCOMPAT_DIR_HASH;
use crate::format::inode::INDEX_FL;
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64};
use crate::layout::Geometry;

/// Entry array offsets in the root and in a node.
const ROOT_AT: usize = 32;
const NODE_AT: usize = 8;
/// `..` record length in a root block.
const ROOT_DOTDOT_LEN: u16 = (BLOCK_SIZE - 12) as u16;
/// Deepest index this implementation writes (it reads up to 2).
const MAX_WRITE_LEVELS: u8 = 1;

pub fn is_indexed(dir: &InodeBuf) -> bool {
    dir.base().flags() & INDEX_FL != 0
}

pub fn can_index(g: &Geometry) -> bool {
    g.features.has_incompat(INCOMPAT_DIR_HASH)
}

/// A DxRoot (".." spans the rest of the block) or a DxNode (one empty
/// record spanning the block).
pub fn is_index_block(b: &[u8]) -> bool {
    if b.len() < BLOCK_SIZE {
        return false;
    }
    let le16 = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let root = le16(4) == 12 && b[8] == b'.' && le16(16) == ROOT_DOTDOT_LEN && b[20] == b'.' && b[21] == b'.';
    let node = b[..4] == [0; 4] && le16(4) as usize == BLOCK_SIZE && b[6] == 0;
    root || node
}

fn limit(g: &Geometry, at: usize) -> usize {
    let tail = if g.csum_seed.is_some() { 8 } else { 0 };
    (BLOCK_SIZE - at - 8 - tail) / 8 + 1
}

/// Seal the `DxTail` of an index block (same formula as a leaf tail).
pub fn seal_index(b: &mut [u8], block: u64, dir_ino: u32, seed: u32) {
    b[BLOCK_SIZE - 8..BLOCK_SIZE - 4].fill(0);
    let c = fd::leaf_checksum(b, block, dir_ino, seed);
    b[BLOCK_SIZE - 4..].copy_from_slice(&c.to_le_bytes());
}

/// Verify the `DxTail` of an index block.
pub fn verify_index(b: &[u8], block: u64, dir_ino: u32, seed: u32) -> Result<()> {
    if b.len() < BLOCK_SIZE {
        return Err(FsError::corrupt(
            "directory index block",
            block.saturating_mul(BLOCK_SIZE_U64),
            "size",
            Expected::Eq(BLOCK_SIZE_U64),
            b.len() as u64,
        ));
    }
    let want = fd::leaf_checksum(b, block, dir_ino, seed);
    let got = u32::from_le_bytes([b[4092], b[4093], b[4094], b[4095]]);
    if got != want {
        return Err(FsError::corrupt(
            "directory index block",
            block.saturating_mul(BLOCK_SIZE_U64) + 4092,
            "dt_checksum",
            Expected::Eq(want.into()),
            got.into(),
        ));
    }
    Ok(())
}

/// Slots of an index block: (hash, child logical block); slot 0's hash is 0.
fn read_slots(b: &[u8], at: usize, g: &Geometry, off: u64) -> Result<Vec<(u32, u32)>> {
    let le16 = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let le32 = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let (lim, count) = (le16(at), le16(at + 2));
    if lim != limit(g, at) || count == 0 || count > lim {
        return Err(FsError::corrupt(
            "directory index",
            off + at as u64 + 2,
            "dx_count",
            Expected::Within(1, limit(g, at) as u64),
            count as u64,
        ));
    }
    let mut slots = vec![(0, le32(at + 4))];
    for i in 1..count {
        slots.push((le32(at + 8 * i), le32(at + 8 * i + 4)));
    }
    Ok(slots)
}

fn write_slots(b: &mut [u8], at: usize, g: &Geometry, slots: &[(u32, u32)]) {
    b[at..at + 2].copy_from_slice(&(limit(g, at) as u16).to_le_bytes());
    b[at + 2..at + 4].copy_from_slice(&(slots.len() as u16).to_le_bytes());
    b[at + 4..at + 8].copy_from_slice(&slots[0].1.to_le_bytes());
    for (i, (h, c)) in slots.iter().enumerate().skip(1) {
        b[at + 8 * i..at + 8 * i + 4].copy_from_slice(&h.to_le_bytes());
        b[at + 8 * i + 4..at + 8 * i + 8].copy_from_slice(&c.to_le_bytes());
    }
}

/// One index level on the way down: its logical block, slots, chosen slot.
struct Level {
    logical: u64,
    slots: Vec<(u32, u32)>,
    idx: usize,
}

pub(super) struct Ctx<'t, 'a> {
    txn: &'t Txn<'a>,
    g: &'t Geometry,
    runs: Vec<crate::read::Mapping>,
    dir_ino: u32,
}

impl Ctx<'_, '_> {
    pub(super) fn phys(&self, logical: u64) -> Result<u64> {
        map::lookup(&self.runs, logical).map(|(p, _)| p).ok_or_else(|| {
            FsError::corrupt(
                "directory index",
                0,
                "block",
                Expected::Below(map::mapped_blocks(&self.runs)),
                logical,
            )
        })
    }

    pub(super) fn index(&self, logical: u64) -> Result<(&[u8], u64)> {
        let p = self.phys(logical)?;
        let b = self.txn.block(p)?;
        if let Some(seed) = self.g.csum_seed {
            verify_index(b, p, self.dir_ino, seed)?;
        }
        Ok((b, p))
    }

    /// Walk from the root to the leaf for `hash`.
    fn descend(&self, hash: u32) -> Result<(Vec<Level>, u64)> {
        let (root, p) = self.index(0)?;
        let levels = root[30];
        if levels > 2 {
            return Err(FsError::corrupt(
                "directory index",
                p * BLOCK_SIZE_U64 + 30,
                "dx_indirect_levels",
                Expected::AtMost(2),
                levels.into(),
            ));
        }
        let mut path = Vec::new();
        let mut slots = read_slots(root, ROOT_AT, self.g, p * BLOCK_SIZE_U64)?;
        let mut logical = 0u64;
        for depth in 0..=levels {
            let idx = slots.partition_point(|(h, _)| h & !1 <= hash).max(1) - 1;
            let child = u64::from(slots[idx].1);
            path.push(Level { logical, slots, idx });
            if depth == levels {
                return Ok((path, child));
            }
            let (node, np) = self.index(child)?;
            slots = read_slots(node, NODE_AT, self.g, np * BLOCK_SIZE_U64)?;
            logical = child;
        }
        Err(FsError::NotFound)
    }

    /// Every leaf in index order with the lowest hash it holds. Each index
    /// node may be named once: a node reached twice (a cycle, or slots
    /// sharing a child) is corruption, which also bounds the work by the
    /// directory's size rather than by slots^levels.
    pub(super) fn leaves(&self) -> Result<Vec<(u32, u64)>> {
        let (root, p) = self.index(0)?;
        let levels = root[30].min(2);
        let mut frontier: Vec<(u32, u64)> = read_slots(root, ROOT_AT, self.g, p * BLOCK_SIZE_U64)?
            .into_iter()
            .map(|(h, c)| (h, c.into()))
            .collect();
        let mut seen = std::collections::HashSet::from([0u64]);
        for _ in 0..levels {
            let mut next = Vec::new();
            for (h, child) in frontier {
                if !seen.insert(child) {
                    return Err(FsError::corrupt(
                        "directory index",
                        p * BLOCK_SIZE_U64,
                        "block",
                        Expected::Known,
                        child,
                    ));
                }
                let (node, np) = self.index(child)?;
                let slots = read_slots(node, NODE_AT, self.g, np * BLOCK_SIZE_U64)?;
                next.extend(
                    slots
                        .into_iter()
                        .enumerate()
                        .map(|(i, (sh, c))| (if i == 0 { h } else { sh }, u64::from(c))),
                );
            }
            frontier = next;
        }
        Ok(frontier)
    }
}

pub(super) fn ctx<'t, 'a>(txn: &'t Txn<'a>, g: &'t Geometry, dir: &InodeBuf) -> Result<Ctx<'t, 'a>> {
    Ok(Ctx {
        txn,
        g,
        runs: map::load(txn, g, dir)?.runs,
        dir_ino: dir.ino.get(),
    })
}

/// A leaf entry: (hash, inode, file type, name).
pub(super) type LeafEntry = (u32, u32, u8, Vec<u8>);

/// Live entries of a leaf.
pub(super) fn leaf_entries(g: &Geometry, b: &[u8], p: u64) -> Result<Vec<LeafEntry>> {
    let mut v = Vec::new();
    for e in DirBlockIter::new(b, p * BLOCK_SIZE_U64, d::has_tail(g)) {
        let e = e?;
        if e.inode != 0 {
            v.push((
                fd::name_hash(e.name, g.hash_seed),
                e.inode,
                e.file_type,
                e.name.to_vec(),
            ));
        }
    }
    Ok(v)
}

/// Find a name through the index.
pub fn find(txn: &Txn<'_>, g: &Geometry, dir: &InodeBuf, name: &[u8]) -> Result<Option<Slot>> {
    let c = ctx(txn, g, dir)?;
    let (_, leaf) = c.descend(fd::name_hash(name, g.hash_seed))?;
    let p = c.phys(leaf)?;
    let b = txn.block(p)?;
    if let Some(seed) = g.csum_seed {
        fd::verify_leaf_tail(b, p, dir.ino.get(), seed)?;
    }
    for e in DirBlockIter::new(b, p * BLOCK_SIZE_U64, d::has_tail(g)) {
        let e = e?;
        if e.inode != 0 && e.name == name {
            return Ok(Some(Slot {
                block: p,
                logical: leaf,
                offset: e.offset,
                inode: e.inode,
                file_type: e.file_type,
            }));
        }
    }
    Ok(None)
}

/// Pack entries into a leaf block (the last record spans to the limit).
fn write_leaf(txn: &mut Txn<'_>, g: &Geometry, p: u64, dir_ino: u32, entries: &[LeafEntry]) -> Result<()> {
    let lim = d::limit(g);
    let b = txn.block_new(p)?;
    let mut off = 0;
    if entries.is_empty() {
        fd::write_entry(b, 0, 0, lim as u16, 0, b"");
    }
    for (i, (_, ino, ft, name)) in entries.iter().enumerate() {
        let rl = if i + 1 == entries.len() {
            lim - off
        } else {
            rec_len_for(name.len())
        };
        fd::write_entry(b, off, *ino, rl as u16, *ft, name);
        off += rl;
    }
    d::seal(txn, g, p, dir_ino)
}

/// Turn a full one-block linear directory into a hashed one.
pub fn convert(txn: &mut Txn<'_>, g: &Geometry, dir: &mut InodeBuf) -> Result<()> {
    let (_, p0) = *d::blocks(txn, g, dir)?.first().ok_or(FsError::NotFound)?;
    let mut entries = leaf_entries(g, txn.block(p0)?, p0)?;
    let dot = entries.iter().find(|e| e.3 == b".").map_or(dir.ino.get(), |e| e.1);
    let dotdot = entries.iter().find(|e| e.3 == b"..").map_or(dir.ino.get(), |e| e.1);
    entries.retain(|e| e.3 != b"." && e.3 != b"..");
    entries.sort();
    let leaf_p = d::grow(txn, g, dir)?;
    write_leaf(txn, g, leaf_p, dir.ino.get(), &entries)?;
    let b = txn.block_new(p0)?;
    fd::write_entry(b, 0, dot, 12, 2, b".");
    fd::write_entry(b, 12, dotdot, ROOT_DOTDOT_LEN, 2, b"..");
    b[28] = 1;
    b[29] = 8;
    write_slots(b, ROOT_AT, g, &[(0, 1)]);
    d::seal(txn, g, p0, dir.ino.get())?;
    let flags = dir.base().flags() | INDEX_FL;
    dir.base_mut().i_flags.set(flags);
    Ok(())
}

/// Add a name to a hashed directory, splitting a full leaf once.
pub fn add(txn: &mut Txn<'_>, g: &Geometry, dir: &mut InodeBuf, name: &[u8], ino: u32, ft: u8) -> Result<()> {
    let hash = fd::name_hash(name, g.hash_seed);
    let need = rec_len_for(name.len());
    for attempt in 0..2 {
        let (path, leaf) = {
            let c = ctx(txn, g, dir)?;
            c.descend(hash)?
        };
        let p = ctx(txn, g, dir)?.phys(leaf)?;
        if let Some(off) = d::room_in(txn.block(p)?, p, g, need)? {
            d::insert_at(txn.block_mut(p)?, off, name, ino, ft);
            return d::seal(txn, g, p, dir.ino.get());
        }
        if attempt == 0 {
            split_leaf(txn, g, dir, path, leaf, p)?;
        }
    }
    Err(FsError::NoSpace)
}

fn split_leaf(txn: &mut Txn<'_>, g: &Geometry, dir: &mut InodeBuf, path: Vec<Level>, _leaf: u64, p: u64) -> Result<()> {
    let mut entries = leaf_entries(g, txn.block(p)?, p)?;
    entries.sort();
    let mid = entries.len() / 2;
    let boundary = (mid..entries.len())
        .chain((1..mid).rev())
        .find(|&k| k > 0 && entries[k].0 != entries[k - 1].0)
        .ok_or(FsError::NoSpace)?;
    let split_hash = entries[boundary].0;
    let new_p = d::grow(txn, g, dir)?;
    let new_logical = dir.size() / BLOCK_SIZE_U64 - 1;
    write_leaf(txn, g, p, dir.ino.get(), &entries[..boundary])?;
    write_leaf(txn, g, new_p, dir.ino.get(), &entries[boundary..])?;
    insert_index(txn, g, dir, path, split_hash, new_logical as u32)
}

/// Insert (hash -> child) after the chosen slot of the last level.
fn insert_index(
    txn: &mut Txn<'_>,
    g: &Geometry,
    dir: &mut InodeBuf,
    mut path: Vec<Level>,
    hash: u32,
    child: u32,
) -> Result<()> {
    let mut level = path.pop().ok_or(FsError::NotFound)?;
    level.slots.insert(level.idx + 1, (hash, child));
    let at = if level.logical == 0 { ROOT_AT } else { NODE_AT };
    if level.slots.len() <= limit(g, at) {
        return write_index(txn, g, dir, level.logical, at, &level.slots);
    }
    if level.logical == 0 {
        return push_down(txn, g, dir, level.slots);
    }
    let Some(parent) = path.pop() else {
        return Err(FsError::NoSpace);
    };
    if parent.logical != 0 || path.len() + 1 > usize::from(MAX_WRITE_LEVELS) {
        return Err(FsError::NoSpace);
    }
    let right = level.slots.split_off(level.slots.len() / 2);
    write_index(txn, g, dir, level.logical, NODE_AT, &level.slots)?;
    let new_p = d::grow(txn, g, dir)?;
    let new_logical = (dir.size() / BLOCK_SIZE_U64 - 1) as u32;
    init_node(txn, g, new_p)?;
    write_index(txn, g, dir, new_logical.into(), NODE_AT, &right)?;
    insert_index(txn, g, dir, vec![parent], right[0].0, new_logical)
}

/// The root is full: move its slots into a new node below it.
fn push_down(txn: &mut Txn<'_>, g: &Geometry, dir: &mut InodeBuf, slots: Vec<(u32, u32)>) -> Result<()> {
    let root_p = ctx(txn, g, dir)?.phys(0)?;
    if txn.block(root_p)?[30] >= MAX_WRITE_LEVELS {
        return Err(FsError::NoSpace);
    }
    let node_p = d::grow(txn, g, dir)?;
    let node_logical = (dir.size() / BLOCK_SIZE_U64 - 1) as u32;
    init_node(txn, g, node_p)?;
    write_index(txn, g, dir, node_logical.into(), NODE_AT, &slots)?;
    let root = txn.block_mut(root_p)?;
    root[30] += 1;
    write_index(txn, g, dir, 0, ROOT_AT, &[(0, node_logical)])
}

fn init_node(txn: &mut Txn<'_>, _g: &Geometry, p: u64) -> Result<()> {
    let b = txn.block_new(p)?;
    b[4..6].copy_from_slice(&(BLOCK_SIZE as u16).to_le_bytes());
    Ok(())
}

fn write_index(
    txn: &mut Txn<'_>,
    g: &Geometry,
    dir: &InodeBuf,
    logical: u64,
    at: usize,
    slots: &[(u32, u32)],
) -> Result<()> {
    let p = ctx(txn, g, dir)?.phys(logical)?;
    write_slots(txn.block_mut(p)?, at, g, slots);
    d::seal(txn, g, p, dir.ino.get())
}

/// fsck: every leaf is indexed once and holds only names whose hash falls
/// in its index range. Returns one message per problem.
pub fn verify(txn: &Txn<'_>, g: &Geometry, dir: &InodeBuf) -> Result<Vec<String>> {
    let c = ctx(txn, g, dir)?;
    let leaves = c.leaves()?;
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, &(low, leaf)) in leaves.iter().enumerate() {
        if leaf == 0 || !seen.insert(leaf) {
            problems.push(format!("index names leaf block {leaf} twice (or the root)"));
            continue;
        }
        let high = leaves.get(i + 1).map(|x| x.0 & !1);
        let p = c.phys(leaf)?;
        if let Some(seed) = g.csum_seed {
            fd::verify_leaf_tail(txn.block(p)?, p, dir.ino.get(), seed)?;
        }
        for (h, _, _, name) in leaf_entries(g, txn.block(p)?, p)? {
            if h < low & !1 || high.is_some_and(|hi| h >= hi) {
                problems.push(format!(
                    "'{}' (hash {h:#x}) is in leaf {leaf}, outside its hash range",
                    String::from_utf8_lossy(&name)
                ));
            }
        }
    }
    Ok(problems)
}
