//! Node records addressed straight in the map for one read-only walk
//! (format-spec/08 §8.5.2): the record's logical block is found in the
//! node file's extent table, already in memory, and the bytes are sliced
//! from the map, instead of going through the transaction's block lookup
//! for each record. Only used when no block of the node file has a
//! private copy, so what the walk reads is exactly what
//! [`crate::fs::txn::Txn::block`] would return.

use super::store::Collection;
use crate::format::BLOCK_SIZE;
use crate::fs::txn::Txn;
use crate::read::Mapping;

/// Most (private copies × node file extents) compared when a walk starts.
/// Why: the check runs once per search; past this, reading through the
/// transaction is cheaper than proving the map current.
const MAX_CHECK_WORK: usize = 1 << 14;

/// Most entries of the block-to-extent table. Why: bounds the memory and
/// the set-up time of a walk; with at least four buckets per extent (up
/// to 256 extents) a lookup compares one or two extents.
const MAX_BUCKETS: usize = 1024;

/// The map (proven current for the node file) and a table from logical
/// block ranges to the node file's extents.
pub struct DirectNodes<'c, 't> {
    map: &'t [u8],
    runs: &'c [Mapping],
    /// Logical block `l` is in `runs[first_run[l >> shift]..]`, at most a
    /// few extents further.
    shift: u32,
    first_run: Vec<u32>,
}

impl<'c, 't> DirectNodes<'c, 't> {
    /// The view for `coll`'s node file, or `None` when a block of it has
    /// a private copy (this transaction changed it, or it is staged).
    pub fn new(coll: &'c Collection, txn: &'t Txn<'_>) -> Option<Self> {
        // Graph changes run many short walks in a transaction that holds
        // copies of node blocks: proving each walk's blocks clean would
        // cost more than it saves, so they read through the transaction.
        if txn.can_write() {
            return None;
        }
        let runs = coll.node_runs();
        let owned = |b: u64| {
            runs.iter()
                .any(|m| (m.physical..m.physical.saturating_add(m.len)).contains(&b))
        };
        let map = txn.clean_map(MAX_CHECK_WORK / runs.len().max(1), owned)?;
        let blocks = runs.last().map_or(0, |m| m.logical.saturating_add(m.len));
        let want = (runs.len() * 4).clamp(1, MAX_BUCKETS) as u64;
        let mut shift = 0;
        while shift < 63 && blocks >> shift >= want {
            shift += 1;
        }
        // Runs are sorted by logical block and disjoint (the extent map's
        // invariant), so one sweep fills the table.
        let mut first_run = Vec::with_capacity((blocks >> shift) as usize + 1);
        let mut i = 0;
        for b in 0..=(blocks >> shift) {
            while runs
                .get(i)
                .is_some_and(|m| m.logical.saturating_add(m.len) <= b << shift)
            {
                i += 1;
            }
            first_run.push(u32::try_from(i).ok()?);
        }
        Some(DirectNodes {
            map,
            runs,
            shift,
            first_run,
        })
    }

    /// `len` bytes at byte `off` of logical block `l` (possibly running
    /// into the following blocks), or `None` when they are not all inside
    /// one written extent.
    pub fn span(&self, l: u64, off: usize, len: usize) -> Option<&'t [u8]> {
        let first = *self.first_run.get(usize::try_from(l >> self.shift).ok()?)? as usize;
        let m = self
            .runs
            .get(first..)?
            .iter()
            .find(|m| m.logical.saturating_add(m.len) > l)?;
        if m.logical > l || m.unwritten {
            return None;
        }
        let blocks = off.checked_add(len)?.div_ceil(BLOCK_SIZE) as u64;
        if l.checked_add(blocks)? > m.logical.saturating_add(m.len) {
            return None;
        }
        let at = usize::try_from(m.physical.checked_add(l - m.logical)?)
            .ok()?
            .checked_mul(BLOCK_SIZE)?
            .checked_add(off)?;
        self.map.get(at..at.checked_add(len)?)
    }
}
