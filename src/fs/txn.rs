//! The transaction: the one seam every metadata change goes through.
//!
//! A transaction collects private copies of the metadata blocks it changes;
//! nothing reaches the shared map until [`Txn::commit`]. That is the rule
//! the journal needs (format-spec/14-media.md: a dirty mapped page may be
//! written back at any time, so a home block must not change in the map
//! before its transaction is durable). Today commit copies the blocks home;
//! the journal issue makes commit write them to the journal ring first.
//! File *data* blocks are written straight to the map before commit
//! (ordered mode: data reaches the media no later than the metadata that
//! points at it).

use crate::error::{Expected, FsError, Result};
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64};
use std::collections::BTreeSet;

/// Metadata blocks changed by committed transactions but not yet home.
pub use crate::journal::Staged;

/// Most metadata blocks one transaction may dirty. Why: bounds the heap a
/// single operation can use (a rename touching two large directories and
/// their inodes needs a few dozen) and the journal space one commit needs.
pub const MAX_TXN_BLOCKS: usize = 4096;

/// The image bytes a transaction works over.
enum MapRef<'a> {
    ReadOnly(&'a [u8]),
    ReadWrite(&'a mut [u8]),
}

impl MapRef<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            MapRef::ReadOnly(b) => b,
            MapRef::ReadWrite(b) => b,
        }
    }
}

/// A set of changed metadata blocks over an image's bytes.
pub struct Txn<'a> {
    map: MapRef<'a>,
    blocks_count: u64,
    /// Committed-but-not-yet-home blocks, read under this transaction's own.
    overlay: Option<&'a Staged>,
    dirty: Staged,
    /// Blocks this transaction freed (the journal may need to revoke them).
    freed: BTreeSet<u64>,
    /// Blocks freed by staged transactions that are not durable yet.
    quarantine: Option<&'a BTreeSet<u64>>,
    /// Blocks with a copy in the journal that replay could write (see
    /// [`Txn::unjournaled_mut`]).
    logged: Option<&'a std::collections::HashSet<u64>>,
    /// The file behind the map, for [`Txn::write_data`].
    data_file: Option<&'a std::fs::File>,
    /// File data was written (straight to the image, ordered mode): the
    /// next commit must flush the whole image, not only the journal.
    wrote_data: bool,
    /// Most blocks this transaction may dirty ([`MAX_TXN_BLOCKS`] unless
    /// the caller allows more, see [`Txn::with_block_limit`]).
    block_limit: usize,
}

impl<'a> Txn<'a> {
    /// Start a transaction over the mapped image.
    pub fn new(map: &'a mut [u8], blocks_count: u64) -> Self {
        Self::build(MapRef::ReadWrite(map), blocks_count, None)
    }

    fn build(map: MapRef<'a>, blocks_count: u64, overlay: Option<&'a Staged>) -> Self {
        Txn {
            map,
            blocks_count,
            overlay,
            dirty: Staged::default(),
            freed: BTreeSet::new(),
            quarantine: None,
            logged: None,
            data_file: None,
            wrote_data: false,
            block_limit: MAX_TXN_BLOCKS,
        }
    }

    /// Allow `limit` dirty blocks instead of [`MAX_TXN_BLOCKS`] (an
    /// administrative change that must be one transaction, bounded by the
    /// journal it has to fit).
    pub fn with_block_limit(mut self, limit: usize) -> Self {
        self.block_limit = limit;
        self
    }

    /// Write file data through this file (pwrite) rather than into the map.
    pub fn with_data_file(mut self, file: Option<&'a std::fs::File>) -> Self {
        self.data_file = file;
        self
    }

    /// Blocks that must not be allocated by this transaction: those freed
    /// by staged transactions whose commit is not durable yet. Until it is,
    /// a crash brings back the state in which they are still in use, so
    /// file data written in place into one of them would show up in the
    /// file (or directory) that owned it (jbd2 has the same rule).
    pub fn with_quarantine(mut self, blocks: &'a BTreeSet<u64>) -> Self {
        self.quarantine = Some(blocks);
        self
    }

    /// The blocks the journal holds copies of that replay could write
    /// home: never written outside the journal (see [`Txn::unjournaled_mut`]).
    pub fn with_logged(mut self, blocks: Option<&'a std::collections::HashSet<u64>>) -> Self {
        self.logged = blocks;
        self
    }

    /// The first block in `from..to` that is not allocatable yet: freed
    /// by this transaction or by a staged one (see [`Txn::with_quarantine`]).
    pub fn first_quarantined(&self, from: u64, to: u64) -> Option<u64> {
        let own = self.freed.range(from..to).next();
        let staged = self.quarantine.and_then(|q| q.range(from..to).next());
        own.into_iter().chain(staged).min().copied()
    }

    /// How many blocks are quarantined (a bound for allocation retries).
    pub fn quarantined_len(&self) -> usize {
        self.freed.len() + self.quarantine.map_or(0, BTreeSet::len)
    }

    /// A read-write transaction over the map with staged blocks on top.
    pub fn with_overlay(map: &'a mut [u8], blocks_count: u64, overlay: &'a Staged) -> Self {
        Self::build(MapRef::ReadWrite(map), blocks_count, Some(overlay))
    }

    /// A read-only transaction over the map with staged blocks on top.
    pub fn read_only_with_overlay(map: &'a [u8], blocks_count: u64, overlay: &'a Staged) -> Self {
        Self::build(MapRef::ReadOnly(map), blocks_count, Some(overlay))
    }

    /// A transaction that can only read (shared lock, read-only mounts);
    /// any attempt to change a block fails with EROFS.
    pub fn read_only(map: &'a [u8], blocks_count: u64) -> Self {
        Self::build(MapRef::ReadOnly(map), blocks_count, None)
    }

    fn check(&self, block: u64) -> Result<usize> {
        if block >= self.blocks_count {
            return Err(FsError::corrupt(
                "block reference",
                block.saturating_mul(BLOCK_SIZE_U64),
                "block",
                Expected::Below(self.blocks_count),
                block,
            ));
        }
        Ok(block as usize * BLOCK_SIZE)
    }

    /// The current contents of a block (this transaction's copy if any).
    pub fn block(&self, block: u64) -> Result<&[u8]> {
        let at = self.check(block)?;
        if let Some(b) = self
            .dirty
            .get(&block)
            .or_else(|| self.overlay.and_then(|o| o.get(&block)))
        {
            return Ok(&b[..]);
        }
        Ok(&self.map.bytes()[at..at + BLOCK_SIZE])
    }

    /// A writable copy of a metadata block, taken from the map on first use.
    pub fn block_mut(&mut self, block: u64) -> Result<&mut [u8]> {
        let at = self.check(block)?;
        if matches!(self.map, MapRef::ReadOnly(_)) {
            return Err(FsError::ReadOnly);
        }
        if !self.dirty.contains_key(&block) {
            if self.dirty.len() >= self.block_limit {
                return Err(FsError::NoSpace);
            }
            let mut copy = Box::new([0u8; BLOCK_SIZE]);
            let current = match self.overlay.and_then(|o| o.get(&block)) {
                Some(b) => &b[..],
                None => &self.map.bytes()[at..at + BLOCK_SIZE],
            };
            copy.copy_from_slice(current);
            self.dirty.insert(block, copy);
        }
        Ok(&mut self.dirty.get_mut(&block).expect("inserted above")[..])
    }

    /// A writable, zeroed metadata block (for freshly allocated blocks,
    /// whose old contents must not be read).
    pub fn block_new(&mut self, block: u64) -> Result<&mut [u8]> {
        self.freed.remove(&block);
        let b = self.block_mut(block)?;
        b.fill(0);
        Ok(b)
    }

    /// File data goes straight to the map (ordered mode, see module docs).
    pub fn data_mut(&mut self, block: u64) -> Result<&mut [u8]> {
        let at = self.check(block)?;
        self.wrote_data = true;
        match &mut self.map {
            MapRef::ReadOnly(_) => Err(FsError::ReadOnly),
            MapRef::ReadWrite(m) => Ok(&mut m[at..at + BLOCK_SIZE]),
        }
    }

    /// A block of a hidden file that is being built on the orphan chain
    /// (a bulk graph build, see `vector::bulk`), written straight to the
    /// map as file data is: nothing committed points at it until the
    /// transaction that adopts the file, and that commit flushes the
    /// whole image first. Refused when the block has a private copy here
    /// or a staged one (that copy would hide the write from every reader),
    /// or a copy in the journal (replay after a crash would write it over
    /// the block).
    pub fn unjournaled_mut(&mut self, block: u64) -> Result<&mut [u8]> {
        if self.has_copy(block) || self.logged.is_some_and(|l| l.contains(&block)) {
            return Err(FsError::Invalid(format!(
                "block {block} of a file built outside the journal has a journaled copy"
            )));
        }
        self.data_mut(block)
    }

    /// [`Txn::unjournaled_mut`] when `unjournaled`, else [`Txn::block_mut`].
    pub fn writable(&mut self, block: u64, unjournaled: bool) -> Result<&mut [u8]> {
        if unjournaled {
            self.unjournaled_mut(block)
        } else {
            self.block_mut(block)
        }
    }

    /// Has this transaction dirtied as many blocks as it may (the ENOSPC
    /// [`Txn::block_mut`] gives then means "too large", not "disk full")?
    pub fn at_block_limit(&self) -> bool {
        self.dirty.len() >= self.block_limit
    }

    /// Write `data` at byte `at` of file data block `block` onwards (the
    /// blocks it covers are consecutive on the image). With the image
    /// file at hand this is one pwrite(2): the host filesystem copies into
    /// its page cache in large folios, where a copy into the map took a
    /// page fault, and a page_mkwrite, for every 4 KiB page (60% of the
    /// daemon's time in a sequential-write profile); and a full host disk
    /// is ENOSPC here rather than SIGBUS.
    pub fn write_data(&mut self, block: u64, at: usize, data: &[u8]) -> Result<()> {
        self.wrote_data = true;
        let blocks = (at + data.len()).div_ceil(BLOCK_SIZE) as u64;
        let span = self.data_span(block, blocks.max(1))?.len();
        if at + data.len() > span {
            return Err(FsError::Invalid("data write past its blocks".into()));
        }
        match (self.data_file, &mut self.map) {
            (_, MapRef::ReadOnly(_)) => Err(FsError::ReadOnly),
            (Some(f), _) => {
                use std::os::unix::fs::FileExt;
                let off = block * BLOCK_SIZE_U64 + at as u64;
                let err = |e| FsError::io(format!("writing file data at byte {off} of the image"), e);
                // A pwrite past the end would grow an image file another
                // process cut short, where a store into the map would fault
                // (and make the mount fail, see image::sigbus).
                let m = f.metadata().map_err(err)?;
                if m.is_file() && m.len() < off + data.len() as u64 {
                    return Err(err(std::io::Error::from_raw_os_error(libc::EIO)));
                }
                f.write_all_at(data, off).map_err(err)
            }
            (None, MapRef::ReadWrite(m)) => {
                let start = block as usize * BLOCK_SIZE + at;
                m[start..start + data.len()].copy_from_slice(data);
                Ok(())
            }
        }
    }

    /// Blocks `first .. first + count` of file data as they are in the map.
    pub fn data_span(&self, first: u64, count: u64) -> Result<&[u8]> {
        let end = first
            .checked_add(count)
            .filter(|&e| e <= self.blocks_count && count > 0);
        let Some(end) = end else {
            return Err(FsError::corrupt(
                "block reference",
                first.saturating_mul(BLOCK_SIZE_U64),
                "block",
                Expected::Below(self.blocks_count),
                first.saturating_add(count),
            ));
        };
        Ok(&self.map.bytes()[first as usize * BLOCK_SIZE..end as usize * BLOCK_SIZE])
    }

    /// Whether this transaction may change blocks (not a read-only one).
    pub fn can_write(&self) -> bool {
        matches!(self.map, MapRef::ReadWrite(_))
    }

    /// The whole map, for reading metadata blocks straight from it, when
    /// no block `owned` claims has a private copy (this transaction's or a
    /// staged one), so the map holds their current contents. `None` when
    /// one has, or when there are more than `max_copies` copies to ask
    /// about. Why: a read-only walk over a large file addresses its
    /// records in the map instead of asking [`Txn::block`] for each.
    pub fn clean_map(&self, max_copies: usize, owned: impl Fn(u64) -> bool) -> Option<&[u8]> {
        let overlay = self.overlay.map_or(0, |o| o.len());
        if self.dirty.len() + overlay > max_copies {
            return None;
        }
        let copied = |b: &u64| owned(*b);
        if self.dirty.keys().any(copied) || self.overlay.is_some_and(|o| o.keys().any(copied)) {
            return None;
        }
        // Only the image's blocks, as `Txn::block` checks.
        let len = usize::try_from(self.blocks_count).ok()?.checked_mul(BLOCK_SIZE)?;
        self.map.bytes().get(..len)
    }

    /// The map (the image's blocks) and every block that has a private
    /// copy (this transaction's or a staged one), for a walk that reads
    /// metadata straight from the map except where a copy supersedes it.
    /// Why: graph construction runs in a writing transaction whose copies
    /// are a small part of the node file; checking a record's block
    /// against a table of the copies is cheaper than [`Txn::block`]'s
    /// lookups for each record.
    pub fn map_and_copies(&self) -> Option<(&[u8], impl Iterator<Item = u64> + '_)> {
        let len = usize::try_from(self.blocks_count).ok()?.checked_mul(BLOCK_SIZE)?;
        let map = self.map.bytes().get(..len)?;
        let staged = self.overlay.into_iter().flat_map(|o| o.keys());
        Some((map, self.dirty.keys().chain(staged).copied()))
    }

    /// Whether `block` has a private copy (this transaction's or a staged
    /// one): contents this filesystem wrote and sealed, not read from the
    /// image since it was opened.
    pub fn has_copy(&self, block: u64) -> bool {
        self.dirty.contains_key(&block) || self.overlay.is_some_and(|o| o.contains_key(&block))
    }

    /// File data as it is in the map.
    pub fn data(&self, block: u64) -> Result<&[u8]> {
        let at = self.check(block)?;
        Ok(&self.map.bytes()[at..at + BLOCK_SIZE])
    }

    /// A block was freed: drop any metadata copy of it (the block may be
    /// reused for file data, which must not be overwritten later) and
    /// remember it for the journal's revoke records.
    pub fn forget(&mut self, block: u64) {
        self.dirty.remove(&block);
        self.freed.insert(block);
    }

    /// Whether file data was written through this transaction (see
    /// `wrote_data`), whether or not it succeeded.
    pub fn wrote_data(&self) -> bool {
        self.wrote_data
    }

    /// Split into the changed blocks and the freed blocks (journaled commit).
    pub fn into_parts(self) -> (Staged, BTreeSet<u64>) {
        (self.dirty, self.freed)
    }

    /// Number of metadata blocks changed so far.
    pub fn len(&self) -> usize {
        self.dirty.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dirty.is_empty()
    }

    /// Make the changes visible: copy every changed block home. Dropping a
    /// transaction without committing discards its changes (an operation
    /// that fails half-way leaves the image as it was).
    pub fn commit(self) {
        let MapRef::ReadWrite(map) = self.map else { return };
        for (block, bytes) in self.dirty {
            let at = block as usize * BLOCK_SIZE;
            map[at..at + BLOCK_SIZE].copy_from_slice(&bytes[..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_stay_private_until_commit() {
        let mut map = vec![0u8; 4 * BLOCK_SIZE];
        let mut t = Txn::new(&mut map, 4);
        t.block_mut(2).unwrap()[0] = 7;
        assert_eq!(t.block(2).unwrap()[0], 7);
        drop(t);
        assert_eq!(map[2 * BLOCK_SIZE], 0, "dropped transaction changed nothing");
        let mut t = Txn::new(&mut map, 4);
        t.block_mut(2).unwrap()[0] = 9;
        t.commit();
        assert_eq!(map[2 * BLOCK_SIZE], 9);
    }

    #[test]
    fn clean_map_is_refused_over_private_copies() {
        let mut map = vec![0u8; 4 * BLOCK_SIZE];
        let mut t = Txn::new(&mut map, 4);
        let in_1_2 = |b: u64| (1..3).contains(&b);
        assert_eq!(t.clean_map(0, in_1_2).map(<[u8]>::len), Some(4 * BLOCK_SIZE));
        t.block_mut(3).unwrap()[0] = 7;
        assert!(t.clean_map(0, in_1_2).is_none(), "more copies than allowed");
        assert!(t.clean_map(1, in_1_2).is_some(), "block 3 is not owned");
        t.block_mut(2).unwrap()[0] = 7;
        assert!(t.clean_map(8, in_1_2).is_none(), "block 2 has a private copy");
        let staged: Staged = [(1u64, Box::new([0u8; BLOCK_SIZE]))].into_iter().collect();
        let t = Txn::read_only_with_overlay(&map, 4, &staged);
        assert!(t.clean_map(8, in_1_2).is_none(), "block 1 is staged");
        assert!(t.clean_map(8, |b| b == 0).is_some());
    }

    #[test]
    fn unjournaled_writes_reach_the_map_unless_a_copy_would_hide_them() {
        let mut map = vec![0u8; 4 * BLOCK_SIZE];
        let staged: Staged = [(1u64, Box::new([0u8; BLOCK_SIZE]))].into_iter().collect();
        let mut t = Txn::with_overlay(&mut map, 4, &staged);
        t.writable(3, true).unwrap()[5] = 7;
        assert!(t.wrote_data(), "the next commit must flush the whole image");
        assert!(t.dirty.is_empty(), "no private copy");
        assert_eq!(t.block(3).unwrap()[5], 7, "readers see it at once");
        let hidden = t.unjournaled_mut(1).unwrap_err().to_string();
        assert!(
            hidden.contains("block 1 of a file built outside the journal"),
            "{hidden}"
        );
        t.writable(2, false).unwrap()[0] = 1;
        assert!(t.unjournaled_mut(2).is_err(), "block 2 has a private copy");
        assert!(t.unjournaled_mut(4).is_err(), "past the image");
        let logged: std::collections::HashSet<u64> = [0u64].into_iter().collect();
        let mut one = [0u8; BLOCK_SIZE];
        let mut t2 = Txn::new(&mut one, 1).with_logged(Some(&logged));
        assert!(t2.unjournaled_mut(0).is_err(), "replay would write block 0");
        drop(t);
        assert_eq!(map[3 * BLOCK_SIZE + 5], 7, "written without a commit");
        assert_eq!(map[2 * BLOCK_SIZE], 0, "the journaled write waits for its commit");
    }

    #[test]
    fn out_of_range_blocks_are_errors() {
        let mut map = vec![0u8; 2 * BLOCK_SIZE];
        let mut t = Txn::new(&mut map, 2);
        assert!(t.block(2).is_err());
        assert!(t.block_mut(u64::MAX).is_err());
    }
}
