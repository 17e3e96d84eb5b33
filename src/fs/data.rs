//! File contents: read, write, truncate, fallocate, SEEK_DATA/SEEK_HOLE.

use super::alloc;
use super::core::{live, Fs};
use super::inode::{self as ino_io, now, InodeBuf, Time};
use super::map::{self, FileMap};
use super::perm::Ctx;
use super::txn::Txn;
use crate::error::{FsError, Result};
use crate::format::inode::FileType;
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64};
use crate::layout::Geometry;
use crate::read::{Mapping, MAX_LOGICAL_BLOCKS};

/// fallocate mode bits (linux/falloc.h).
pub const FALLOC_FL_KEEP_SIZE: i32 = 0x01;
pub const FALLOC_FL_PUNCH_HOLE: i32 = 0x02;

/// Largest file size the image's layout allows.
pub fn max_file_size(g: &Geometry) -> u64 {
    if g.is_kernel_layout() {
        crate::format::inode::DIRECT_BLOCKS as u64 * BLOCK_SIZE_U64
    } else {
        MAX_LOGICAL_BLOCKS * BLOCK_SIZE_U64
    }
}

fn regular(txn: &Txn<'_>, g: &Geometry, n: crate::format::inode::InodeNo) -> Result<InodeBuf> {
    let b = live(txn, g, n)?;
    match b.file_type() {
        Some(FileType::Regular) => Ok(b),
        Some(FileType::Directory) => Err(FsError::IsDir),
        _ => Err(FsError::Invalid("not a regular file".into())),
    }
}

/// Reads at least this long ask the kernel to read their blocks ahead
/// (one madvise per run): smaller ones would spend more on the call.
const READ_AHEAD_MIN: u64 = 32 * 1024;

/// How many further requests of the same size a large read starts
/// loading (see `read_data`). Why 4: with 1 MiB requests the disk keeps
/// 4 MiB in flight, about what the kernel's own read-ahead reaches.
const READ_AHEAD_FACTOR: u64 = 4;

/// Start reading the written blocks of `off..end` from the media, run by
/// run, so the copy below does not fault them in one page at a time.
fn read_ahead(txn: &Txn<'_>, fm: &FileMap, off: u64, end: u64) {
    let (first, last) = (off / BLOCK_SIZE_U64, (end - 1) / BLOCK_SIZE_U64);
    for m in fm.runs.iter().filter(|m| !m.unwritten) {
        let (s, e) = (m.logical.max(first), (m.logical + m.len).min(last + 1));
        if s < e {
            if let Ok(span) = txn.data_span(m.physical + (s - m.logical), e - s) {
                crate::image::will_need(span);
            }
        }
    }
}

impl Fs {
    /// Read up to `size` bytes at `off` (holes read as zeros).
    pub fn read_data(&self, n: u64, off: u64, size: usize) -> Result<Vec<u8>> {
        let ino = self.ino(n)?;
        self.read(|txn, g| {
            let b = regular(txn, g, ino)?;
            let end = off.saturating_add(size as u64).min(b.size());
            if off >= end {
                return Ok(Vec::new());
            }
            let fm = map::load(txn, g, &b)?;
            if end - off >= READ_AHEAD_MIN {
                // Also the next READ_AHEAD_FACTOR requests' worth: a large
                // read is usually one of a sequential series, and the map
                // gets no read-ahead of its own (MADV_RANDOM).
                let ahead = (end - off).saturating_mul(READ_AHEAD_FACTOR);
                read_ahead(txn, &fm, off, end.saturating_add(ahead).min(b.size()));
            }
            // Filled run by run: written blocks copied from the map in one
            // piece per run, holes and unwritten runs as zeros (no zeroing
            // of what is then overwritten).
            let mut out = Vec::with_capacity((end - off) as usize);
            let mut pos = off;
            while pos < end {
                let l = pos / BLOCK_SIZE_U64;
                let seg_end = end.min(next_boundary(&fm.runs, l).saturating_mul(BLOCK_SIZE_U64));
                let n = (seg_end - pos) as usize;
                match map::lookup(&fm.runs, l) {
                    Some((phys, false)) => {
                        let in_block = (pos % BLOCK_SIZE_U64) as usize;
                        let blocks = (in_block + n).div_ceil(BLOCK_SIZE) as u64;
                        out.extend_from_slice(&txn.data_span(phys, blocks)?[in_block..in_block + n]);
                    }
                    _ => out.resize(out.len() + n, 0),
                }
                pos = seg_end;
            }
            Ok(out)
        })
    }

    /// Write `data` at `off`; returns the bytes written.
    pub fn write_data(&self, n: u64, off: u64, data: &[u8]) -> Result<usize> {
        self.write_as(None, n, off, data)
    }

    /// [`Fs::write_data`] on behalf of `ctx` (recorded in the event).
    pub fn write_as(&self, ctx: Option<&Ctx>, n: u64, off: u64, data: &[u8]) -> Result<usize> {
        self.write_killing_privs(ctx, n, off, data, false)
    }

    /// [`Fs::write_as`] that also clears setuid (and setgid, when the
    /// group may execute) if `kill_suidgid`: what the kernel asks for with
    /// FUSE_WRITE_KILL_SUIDGID when the writer lacks CAP_FSETID, once the
    /// mount handles that itself (FUSE_HANDLE_KILLPRIV_V2).
    pub fn write_killing_privs(
        &self,
        ctx: Option<&Ctx>,
        n: u64,
        off: u64,
        data: &[u8],
        kill_suidgid: bool,
    ) -> Result<usize> {
        let ino = self.ino(n)?;
        self.write(|txn, g| {
            let mut b = regular(txn, g, ino)?;
            // A write crossing the largest file size writes what fits
            // (short count), as generic_write_check_limits does.
            let max = max_file_size(g);
            if off >= max && !data.is_empty() {
                return Err(FsError::FileTooBig);
            }
            let data = &data[..data.len().min((max - off.min(max)) as usize)];
            let end = off + data.len() as u64;
            if data.is_empty() {
                return Ok(0);
            }
            zero_past_eof(txn, g, &mut b, off)?;
            let mut fm = map::load(txn, g, &b)?;
            let first = off / BLOCK_SIZE_U64;
            let last = (end - 1) / BLOCK_SIZE_U64;
            let changed = ensure_written(txn, g, &mut fm, first, last + 1, (off, end))?;
            copy_in(txn, &fm, off, data)?;
            if changed {
                map::store(txn, g, &mut b, &fm)?;
            }
            if end > b.size() {
                b.set_size(end);
            }
            if kill_suidgid {
                super::attrs::kill_suidgid(&mut b);
            }
            let t = now();
            b.set_time(Time::Modify, t);
            b.set_time(Time::Change, t);
            ino_io::store(txn, g, &b)?;
            self.emit_write(txn, g, ctx, ino.get().into(), b.size())?;
            Ok(data.len())
        })
    }

    /// fallocate: allocate (mode 0 or KEEP_SIZE) or punch a hole
    /// (PUNCH_HOLE | KEEP_SIZE). Other modes: EOPNOTSUPP.
    pub fn fallocate(&self, n: u64, mode: i32, off: u64, len: u64) -> Result<()> {
        let ino = self.ino(n)?;
        let end = off.checked_add(len).ok_or(FsError::FileTooBig)?;
        if len == 0 {
            return Err(FsError::Invalid("fallocate length 0".into()));
        }
        self.write(|txn, g| {
            let mut b = regular(txn, g, ino)?;
            if end > max_file_size(g) {
                return Err(FsError::FileTooBig);
            }
            if mode == 0 {
                zero_past_eof(txn, g, &mut b, end)?;
            }
            let mut fm = map::load(txn, g, &b)?;
            match mode {
                0 | FALLOC_FL_KEEP_SIZE => {
                    preallocate(txn, g, &mut fm, off / BLOCK_SIZE_U64, end.div_ceil(BLOCK_SIZE_U64))?;
                    if mode == 0 && end > b.size() {
                        b.set_size(end);
                    }
                }
                m if m == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE => punch(txn, g, &mut fm, off, end)?,
                _ => return Err(FsError::NotSupported),
            }
            map::store(txn, g, &mut b, &fm)?;
            b.set_time(Time::Change, now());
            ino_io::store(txn, g, &b)?;
            self.emit_write(txn, g, None, ino.get().into(), b.size())
        })
    }

    /// SEEK_DATA (`data` true) or SEEK_HOLE from `off`.
    pub fn seek_data_hole(&self, n: u64, off: u64, data: bool) -> Result<u64> {
        let ino = self.ino(n)?;
        self.read(|txn, g| {
            let b = regular(txn, g, ino)?;
            let size = b.size();
            if off >= size {
                return Err(FsError::Invalid("offset past end of file (ENXIO)".into()));
            }
            let fm = map::load(txn, g, &b)?;
            let mut l = off / BLOCK_SIZE_U64;
            loop {
                let pos = (l * BLOCK_SIZE_U64).max(off);
                if pos >= size {
                    return if data {
                        Err(FsError::Invalid("no data after offset (ENXIO)".into()))
                    } else {
                        Ok(size)
                    };
                }
                let is_data = matches!(map::lookup(&fm.runs, l), Some((_, false)));
                if is_data == data {
                    return Ok(pos);
                }
                l = next_boundary(&fm.runs, l);
            }
        })
    }
}

/// First logical block after `l` where mapped-ness may change.
fn next_boundary(runs: &[Mapping], l: u64) -> u64 {
    let i = runs.partition_point(|m| m.logical + m.len <= l);
    match runs.get(i) {
        Some(m) if m.logical <= l => m.logical + m.len,
        Some(m) => m.logical,
        None => MAX_LOGICAL_BLOCKS,
    }
}

/// Make logical blocks `from..to` mapped and written; newly allocated or
/// unwritten blocks are zeroed except the part `write` covers. Returns
/// whether the map changed.
fn ensure_written(
    txn: &mut Txn<'_>,
    g: &Geometry,
    fm: &mut FileMap,
    from: u64,
    to: u64,
    write: (u64, u64),
) -> Result<bool> {
    let mut changed = false;
    let mut l = from;
    while l < to {
        match map::lookup(&fm.runs, l) {
            Some((_, false)) => l += 1,
            Some((phys, true)) => {
                zero_outside(txn, phys, l, write)?;
                map::mark_written(&mut fm.runs, l, l + 1);
                changed = true;
                l += 1;
            }
            None => {
                let (phys, got) = map_gap(txn, g, fm, l, to, false)?;
                for i in 0..got {
                    zero_outside(txn, phys + i, l + i, write)?;
                }
                changed = true;
                l += got;
            }
        }
    }
    Ok(changed)
}

/// Allocation goal: right after the block mapped just before `l`.
fn goal_for(runs: &[Mapping], l: u64, g: &Geometry) -> u64 {
    let i = runs.partition_point(|m| m.logical < l);
    match i.checked_sub(1).and_then(|j| runs.get(j)) {
        Some(m) => m.physical + (l - m.logical),
        None => runs.first().map_or(g.first_data_block, |m| m.physical),
    }
}

/// Zero the parts of block `phys` (logical `l`) the write does not cover.
fn zero_outside(txn: &mut Txn<'_>, phys: u64, l: u64, (ws, we): (u64, u64)) -> Result<()> {
    let bs = l * BLOCK_SIZE_U64;
    let data = txn.data_mut(phys)?;
    let cover_s = ws.saturating_sub(bs).min(BLOCK_SIZE_U64) as usize;
    let cover_e = we.saturating_sub(bs).min(BLOCK_SIZE_U64) as usize;
    data[..cover_s].fill(0);
    data[cover_e.max(cover_s)..].fill(0);
    Ok(())
}

fn copy_in(txn: &mut Txn<'_>, fm: &FileMap, off: u64, data: &[u8]) -> Result<()> {
    let mut done = 0usize;
    while done < data.len() {
        let pos = off + done as u64;
        let l = pos / BLOCK_SIZE_U64;
        let in_block = (pos % BLOCK_SIZE_U64) as usize;
        // One piece per run of consecutive blocks (one pwrite, see
        // `Txn::write_data`).
        let run_end = next_boundary(&fm.runs, l).saturating_mul(BLOCK_SIZE_U64);
        let n = ((run_end - pos) as usize).min(data.len() - done);
        let (phys, _) = map::lookup(&fm.runs, l).ok_or(FsError::NoSpace)?;
        txn.write_data(phys, in_block, &data[done..done + n])?;
        done += n;
    }
    Ok(())
}

/// Map unmapped blocks of `from..to` as unwritten (reads as zeros; the
/// kernel layout has no unwritten extents, so it zeroes them instead).
fn preallocate(txn: &mut Txn<'_>, g: &Geometry, fm: &mut FileMap, from: u64, to: u64) -> Result<()> {
    let mut l = from;
    while l < to {
        if map::lookup(&fm.runs, l).is_some() {
            l += 1;
            continue;
        }
        let unwritten = !g.is_kernel_layout();
        let (phys, got) = map_gap(txn, g, fm, l, to, unwritten)?;
        if !unwritten {
            for i in 0..got {
                txn.data_mut(phys + i)?.fill(0);
            }
        }
        l += got;
    }
    Ok(())
}

/// Allocate blocks for the unmapped logical blocks starting at `l` (up to
/// the next mapped block or `to`, near the block mapped before `l`) and map
/// them; returns (first physical block, count >= 1).
fn map_gap(txn: &mut Txn<'_>, g: &Geometry, fm: &mut FileMap, l: u64, to: u64, unwritten: bool) -> Result<(u64, u64)> {
    let gap_end = next_boundary(&fm.runs, l).min(to);
    // Unwritten extents hold at most 32767 blocks.
    let cap = u64::from(alloc::MAX_RUN) - u64::from(unwritten);
    let (phys, got) = alloc::alloc_blocks(txn, g, goal_for(&fm.runs, l, g), (gap_end - l).min(cap) as u32)?;
    let len = u64::from(got);
    map::insert(
        &mut fm.runs,
        Mapping {
            logical: l,
            physical: phys,
            len,
            unwritten,
        },
    );
    Ok((phys, len))
}

/// Zero `off..end`: whole blocks are unmapped and freed, partial ones zeroed.
pub(crate) fn punch(txn: &mut Txn<'_>, g: &Geometry, fm: &mut FileMap, off: u64, end: u64) -> Result<()> {
    let first_full = off.div_ceil(BLOCK_SIZE_U64);
    let last_full = end / BLOCK_SIZE_U64;
    for (s, e) in [
        (off, (first_full * BLOCK_SIZE_U64).min(end)),
        ((last_full * BLOCK_SIZE_U64).max(off), end),
    ] {
        if s < e {
            if let Some((phys, false)) = map::lookup(&fm.runs, s / BLOCK_SIZE_U64) {
                let at = (s % BLOCK_SIZE_U64) as usize;
                txn.data_mut(phys)?[at..at + (e - s) as usize].fill(0);
            }
        }
    }
    if first_full < last_full {
        for (p, n) in map::punch(&mut fm.runs, first_full, last_full) {
            alloc::free_blocks(txn, g, p, n)?;
        }
    }
    Ok(())
}

/// Change a file's size: shrinking frees the blocks past the end; growing
/// leaves a hole. The cut tail of the last block is not zeroed here but
/// when the file grows over it again ([`zero_past_eof`]): zeroing it in
/// place now would show through the old size if a crash lost the
/// truncate's transaction, while bytes past the end are never read.
pub(crate) fn truncate(txn: &mut Txn<'_>, g: &Geometry, b: &mut InodeBuf, size: u64) -> Result<()> {
    if size > max_file_size(g) {
        return Err(FsError::FileTooBig);
    }
    let old = b.size();
    if size < old {
        let mut fm = map::load(txn, g, b)?;
        let keep = size.div_ceil(BLOCK_SIZE_U64);
        for (p, n) in map::punch(&mut fm.runs, keep, MAX_LOGICAL_BLOCKS) {
            alloc::free_blocks(txn, g, p, n)?;
        }
        map::store(txn, g, b, &fm)?;
    } else if size > old {
        zero_past_eof(txn, g, b, size)?;
    }
    b.set_size(size);
    let t = now();
    b.set_time(Time::Modify, t);
    b.set_time(Time::Change, t);
    Ok(())
}

/// Before the file grows to `new_end`: make what lies past the current end
/// in its last block read as zeros (a shrink left those bytes as they
/// were). Not in place: if the shrink is not durable yet, a crash brings
/// back the old size and those bytes with it. So the block is copied, up to
/// the end, into a new block that takes its place in the same transaction
/// (the old one is freed, and not reused before the commit). Nothing to do
/// when the tail is zero already, as it is unless the file was cut.
pub(crate) fn zero_past_eof(txn: &mut Txn<'_>, g: &Geometry, b: &mut InodeBuf, new_end: u64) -> Result<()> {
    let old = b.size();
    if old.is_multiple_of(BLOCK_SIZE_U64) || new_end <= old {
        return Ok(());
    }
    let mut fm = map::load(txn, g, b)?;
    let l = old / BLOCK_SIZE_U64;
    let Some((phys, false)) = map::lookup(&fm.runs, l) else {
        return Ok(());
    };
    let keep = (old % BLOCK_SIZE_U64) as usize;
    let mut copy = [0u8; BLOCK_SIZE];
    copy[..keep].copy_from_slice(&txn.data(phys)?[..keep]);
    if txn.data(phys)?[keep..].iter().all(|&x| x == 0) {
        return Ok(());
    }
    let (fresh, _) = alloc::alloc_blocks(txn, g, phys, 1)?;
    txn.data_mut(fresh)?.copy_from_slice(&copy);
    for (p, n) in map::punch(&mut fm.runs, l, l + 1) {
        alloc::free_blocks(txn, g, p, n)?;
    }
    let m = Mapping {
        logical: l,
        physical: fresh,
        len: 1,
        unwritten: false,
    };
    map::insert(&mut fm.runs, m);
    map::store(txn, g, b, &fm)
}
