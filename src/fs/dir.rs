//! Directory mutations inside a transaction (format-spec/06-directories.md).
//!
//! Linear directories: entries never move once written, so a readdir
//! cookie (logical block * 4096 + byte offset) stays valid while other
//! names are added and removed. A removed entry is merged into the record
//! before it (or, first in its block, has its inode set to 0).
//!
//! Byte-offset cookies are used only on images that cannot index (kernel
//! layout), where a directory never changes shape. On images with
//! `dir_hash` every directory, linear or hashed, lists in hash order with
//! hash cookies (`listing::list`), because `htree::convert` rewrites the
//! block a listing may be walking: a byte cookie from before the
//! conversion would mean nothing after it.

use super::alloc;
use super::htree;
use super::inode::InodeBuf;
use super::map;
use super::txn::Txn;
use crate::error::{FsError, Result};
use crate::format::dir::{self, rec_len_for, DirBlockIter, DIR_TAIL_SIZE};
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64};
use crate::layout::Geometry;
use crate::read::Mapping;

/// Where an entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub block: u64,
    pub logical: u64,
    pub offset: usize,
    pub inode: u32,
    pub file_type: u8,
}

pub(super) fn has_tail(g: &Geometry) -> bool {
    g.csum_seed.is_some()
}

pub(super) fn limit(g: &Geometry) -> usize {
    if has_tail(g) {
        BLOCK_SIZE - DIR_TAIL_SIZE
    } else {
        BLOCK_SIZE
    }
}

/// Every (logical, physical) directory block in order.
pub(super) fn blocks(txn: &Txn<'_>, g: &Geometry, d: &InodeBuf) -> Result<Vec<(u64, u64)>> {
    let runs = map::load(txn, g, d)?.runs;
    Ok(runs
        .iter()
        .flat_map(|m| (0..m.len).map(move |i| (m.logical + i, m.physical + i)))
        .collect())
}

/// Reseal a changed directory block: a leaf gets its `DirTail`, an index
/// block (hashed directories) its `DxTail`.
pub(super) fn seal(txn: &mut Txn<'_>, g: &Geometry, block: u64, dir_ino: u32) -> Result<()> {
    if let Some(seed) = g.csum_seed {
        let b = txn.block_mut(block)?;
        if htree::is_index_block(b) {
            htree::seal_index(b, block, dir_ino, seed);
        } else {
            dir::seal_leaf_tail(b, block, dir_ino, seed);
        }
    }
    Ok(())
}

/// Visit every live entry: `f` returns true to stop.
pub fn scan(txn: &Txn<'_>, g: &Geometry, d: &InodeBuf, mut f: impl FnMut(Slot, &[u8]) -> bool) -> Result<Option<Slot>> {
    let indexed = htree::is_indexed(d);
    for (logical, block) in blocks(txn, g, d)? {
        let bytes = txn.block(block)?;
        let index = indexed && htree::is_index_block(bytes);
        if let Some(seed) = g.csum_seed {
            if index {
                htree::verify_index(bytes, block, d.ino.get(), seed)?;
            } else {
                dir::verify_leaf_tail(bytes, block, d.ino.get(), seed)?;
            }
        }
        if index && logical != 0 {
            continue;
        }
        for e in DirBlockIter::new(bytes, block * BLOCK_SIZE_U64, has_tail(g) && !index) {
            let e = e?;
            if e.inode == 0 {
                continue;
            }
            let slot = Slot {
                block,
                logical,
                offset: e.offset,
                inode: e.inode,
                file_type: e.file_type,
            };
            if f(slot, e.name) {
                return Ok(Some(slot));
            }
        }
    }
    Ok(None)
}

/// Find `name`.
pub fn find(txn: &Txn<'_>, g: &Geometry, d: &InodeBuf, name: &[u8]) -> Result<Option<Slot>> {
    if htree::is_indexed(d) && name != b"." && name != b".." {
        return htree::find(txn, g, d, name);
    }
    scan(txn, g, d, |_, n| n == name)
}

/// True when the directory holds only "." and "..".
pub fn is_empty(txn: &Txn<'_>, g: &Geometry, d: &InodeBuf) -> Result<bool> {
    Ok(scan(txn, g, d, |_, n| n != b"." && n != b"..")?.is_none())
}

/// Add `name -> ino`; grows the directory by a block when every block is
/// full (the kernel layout allows one block: ENOSPC past it).
pub fn add(txn: &mut Txn<'_>, g: &Geometry, d: &mut InodeBuf, name: &[u8], ino: u32, file_type: u8) -> Result<()> {
    dir::check_name(name)?;
    if htree::is_indexed(d) {
        return htree::add(txn, g, d, name, ino, file_type);
    }
    let need = rec_len_for(name.len());
    if htree::can_index(g) && d.size() >= BLOCK_SIZE_U64 {
        let (_, block) = *blocks(txn, g, d)?.first().ok_or(FsError::NotFound)?;
        if let Some(off) = room_in(txn.block(block)?, block, g, need)? {
            insert_at(txn.block_mut(block)?, off, name, ino, file_type);
            return seal(txn, g, block, d.ino.get());
        }
        htree::convert(txn, g, d)?;
        return htree::add(txn, g, d, name, ino, file_type);
    }
    for (_, block) in blocks(txn, g, d)? {
        if let Some(off) = room_in(txn.block(block)?, block, g, need)? {
            insert_at(txn.block_mut(block)?, off, name, ino, file_type);
            return seal(txn, g, block, d.ino.get());
        }
    }
    let block = grow(txn, g, d)?;
    insert_at(txn.block_mut(block)?, 0, name, ino, file_type);
    seal(txn, g, block, d.ino.get())
}

/// Offset of an entry whose record has `need` spare bytes.
pub(super) fn room_in(bytes: &[u8], block: u64, g: &Geometry, need: usize) -> Result<Option<usize>> {
    for e in DirBlockIter::new(bytes, block * BLOCK_SIZE_U64, has_tail(g)) {
        let e = e?;
        let used = if e.inode == 0 { 0 } else { rec_len_for(e.name.len()) };
        if e.rec_len - used >= need {
            return Ok(Some(e.offset));
        }
    }
    Ok(None)
}

/// Put the new entry into the record at `off`: reuse a free record, or
/// split a live one keeping its name.
pub(super) fn insert_at(block: &mut [u8], off: usize, name: &[u8], ino: u32, file_type: u8) {
    let rec_len = u16::from_le_bytes([block[off + 4], block[off + 5]]) as usize;
    let cur_ino = u32::from_le_bytes([block[off], block[off + 1], block[off + 2], block[off + 3]]);
    if cur_ino == 0 {
        dir::write_entry(block, off, ino, rec_len as u16, file_type, name);
        return;
    }
    let used = rec_len_for(usize::from(block[off + 6]));
    block[off + 4..off + 6].copy_from_slice(&(used as u16).to_le_bytes());
    dir::write_entry(block, off + used, ino, (rec_len - used) as u16, file_type, name);
}

/// Append an empty block to the directory.
pub(super) fn grow(txn: &mut Txn<'_>, g: &Geometry, d: &mut InodeBuf) -> Result<u64> {
    let mut fm = map::load(txn, g, d)?;
    let next_logical = d.size() / BLOCK_SIZE_U64;
    if g.is_kernel_layout() && next_logical >= 1 {
        return Err(FsError::NoSpace);
    }
    let goal = fm.runs.last().map_or(g.first_data_block, |m| m.physical + m.len);
    let (block, _) = alloc::alloc_blocks(txn, g, goal, 1)?;
    let lim = limit(g);
    let bytes = txn.block_new(block)?;
    dir::write_entry(bytes, 0, 0, lim as u16, 0, b"");
    map::insert(
        &mut fm.runs,
        Mapping {
            logical: next_logical,
            physical: block,
            len: 1,
            unwritten: false,
        },
    );
    map::store(txn, g, d, &fm)?;
    d.set_size((next_logical + 1) * BLOCK_SIZE_U64);
    Ok(block)
}

/// Remove the entry at `slot`.
pub fn remove(txn: &mut Txn<'_>, g: &Geometry, d: &InodeBuf, slot: Slot) -> Result<()> {
    let bytes = txn.block(slot.block)?;
    let mut prev = None;
    for e in DirBlockIter::new(bytes, slot.block * BLOCK_SIZE_U64, has_tail(g)) {
        let e = e?;
        if e.offset == slot.offset {
            break;
        }
        prev = Some((e.offset, e.rec_len));
    }
    let block = txn.block_mut(slot.block)?;
    let rec_len = u16::from_le_bytes([block[slot.offset + 4], block[slot.offset + 5]]) as usize;
    match prev {
        Some((p, plen)) => block[p + 4..p + 6].copy_from_slice(&((plen + rec_len) as u16).to_le_bytes()),
        None => block[slot.offset..slot.offset + 4].fill(0),
    }
    seal(txn, g, slot.block, d.ino.get())
}

/// Point the entry at `slot` to another inode (rename over a name, "..").
pub fn retarget(txn: &mut Txn<'_>, g: &Geometry, d: &InodeBuf, slot: Slot, ino: u32, file_type: u8) -> Result<()> {
    let block = txn.block_mut(slot.block)?;
    block[slot.offset..slot.offset + 4].copy_from_slice(&ino.to_le_bytes());
    block[slot.offset + 7] = file_type;
    seal(txn, g, slot.block, d.ino.get())
}

/// Write "." and ".." into a new directory's first block.
pub fn init(txn: &mut Txn<'_>, g: &Geometry, d: &mut InodeBuf, parent: u32) -> Result<()> {
    let block = grow(txn, g, d)?;
    let lim = limit(g);
    let bytes = txn.block_mut(block)?;
    let dot = rec_len_for(1);
    dir::write_entry(bytes, 0, d.ino.get(), dot as u16, 2, b".");
    dir::write_entry(bytes, dot, parent, (lim - dot) as u16, 2, b"..");
    seal(txn, g, block, d.ino.get())
}

/// One entry for readdir, with the cookie of the entry after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub inode: u32,
    pub file_type: u8,
    pub name: Vec<u8>,
    pub next: u64,
}

/// Entries whose cookie is >= `from`, at most `max` (see the module note
/// for which cookies a directory uses).
pub fn list(txn: &Txn<'_>, g: &Geometry, d: &InodeBuf, from: u64, max: usize) -> Result<Vec<ListEntry>> {
    if htree::is_indexed(d) || htree::can_index(g) {
        return super::listing::list(txn, g, d, from, max);
    }
    let mut out = Vec::new();
    scan(txn, g, d, |s, name| {
        let cookie = s.logical * BLOCK_SIZE_U64 + s.offset as u64;
        if cookie >= from {
            out.push(ListEntry {
                inode: s.inode,
                file_type: s.file_type,
                name: name.to_vec(),
                next: cookie + 1,
            });
        }
        out.len() >= max
    })?;
    Ok(out)
}
