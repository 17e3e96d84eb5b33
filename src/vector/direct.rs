//! Node records addressed straight in the map for one walk (format-spec/08
//! §8.5.2): the record's logical block is found in the node file's extent
//! table, already in memory, and the bytes are sliced from the map,
//! instead of going through the transaction's block lookup for each
//! record. A read-only walk uses it only when no block of the node file
//! has a private copy; a graph-construction walk ([`DirectNodes::over_copies`])
//! skips the blocks that have one, which the caller then reads through
//! the transaction. Either way what the walk reads is exactly what
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

/// A table from logical block ranges of a node file to its extents:
/// logical block `l` is in `runs[first_run[l >> shift]..]`, at most a few
/// extents further. Built once per collection as loaded (see
/// [`Collection::run_index`]), not per walk: building it is a pass over up
/// to [`MAX_BUCKETS`] entries, a few microseconds a query.
#[derive(Debug, Clone)]
pub struct RunIndex {
    shift: u32,
    first_run: Vec<u32>,
    /// Physical block of logical block `b << shift` when all of bucket
    /// `b`'s blocks lie in one written extent, or in one and the next
    /// (see `split`), else [`NO_RUN`]: a record in such a bucket is found
    /// with two loads and an add (the walk looks up every node it scores).
    whole_run: Vec<u64>,
    /// Where in bucket `b` (blocks from its start) a second written
    /// extent takes over from the first: `u64::MAX` for a bucket in one
    /// extent. Why: with about four buckets to an extent, one in four
    /// holds an extent's end; two pieces cover nearly all of them.
    split: Vec<u64>,
    /// The second extent's physical block at `split` (unused where
    /// `split` is `u64::MAX`).
    second_run: Vec<u64>,
    /// Logical blocks the runs cover: `0..end`.
    end: u64,
}

/// Marks a bucket of [`RunIndex::whole_run`] that is not inside one or
/// two written extents.
const NO_RUN: u64 = u64::MAX;

impl RunIndex {
    /// The table for `runs` (sorted by logical block and disjoint, the
    /// extent map's invariant), or `None` if it cannot be indexed.
    pub fn build(runs: &[Mapping]) -> Option<RunIndex> {
        let blocks = runs.last().map_or(0, |m| m.logical.saturating_add(m.len));
        let want = (runs.len() * 4).clamp(1, MAX_BUCKETS) as u64;
        let mut shift = 0;
        while shift < 63 && blocks >> shift >= want {
            shift += 1;
        }
        // One sweep fills the table, the runs being sorted.
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
        // The last bucket usually runs past the file's end: it counts as
        // whole when its blocks up to the end are in one extent (`span`
        // checks a block against `end`).
        let (mut whole_run, mut split, mut second_run) = (Vec::new(), Vec::new(), Vec::new());
        for (b, &i) in first_run.iter().enumerate() {
            let (lo, hi) = ((b as u64) << shift, ((b as u64 + 1) << shift).min(blocks));
            let (first, at, second) = pieces_of(runs, i as usize, lo, hi).unwrap_or((NO_RUN, u64::MAX, 0));
            whole_run.push(first);
            split.push(at);
            second_run.push(second);
        }
        Some(RunIndex {
            shift,
            first_run,
            whole_run,
            split,
            second_run,
            end: blocks,
        })
    }
}

/// How logical blocks `lo..hi` (one bucket) map when one written extent,
/// `runs[i]`, holds them all, or it and the next one do: (physical block
/// of `lo`, blocks from `lo` where the next extent starts (`u64::MAX`
/// for none), physical block there).
fn pieces_of(runs: &[Mapping], i: usize, lo: u64, hi: u64) -> Option<(u64, u64, u64)> {
    let m = runs.get(i).filter(|m| m.logical <= lo && !m.unwritten)?;
    let end = m.logical.saturating_add(m.len);
    let first = m.physical.saturating_add(lo - m.logical);
    if end >= hi {
        return Some((first, u64::MAX, 0));
    }
    let n = runs
        .get(i + 1)
        .filter(|n| n.logical == end && !n.unwritten && n.logical.saturating_add(n.len) >= hi)?;
    Some((first, end - lo, n.physical))
}

/// The map (proven current for the node file) and the collection's
/// [`RunIndex`] over the node file's extents.
pub struct DirectNodes<'c, 't> {
    map: &'t [u8],
    runs: &'c [Mapping],
    index: &'c RunIndex,
    /// Physical blocks `copied_from + i` with bit i set have a private
    /// copy: their records are not served from the map (empty when none
    /// of the node file's blocks has one).
    copied_from: u64,
    copied: Vec<u64>,
    /// Where a block with a private copy is read from (a graph
    /// construction walk's transaction); `None`: such a block is left to
    /// the caller.
    copies: Option<&'t Txn<'t>>,
}

impl<'c, 't> DirectNodes<'c, 't> {
    /// The view for `coll`'s node file, or `None` when a block of it has
    /// a private copy (this transaction changed it, or it is staged).
    pub fn new(coll: &'c Collection, txn: &'t Txn<'t>) -> Option<Self> {
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
        match txn.clean_map(MAX_CHECK_WORK / runs.len().max(1), owned) {
            Some(map) => Self::over(map, coll),
            // Staged changes to the node file (a search soon after inserts
            // through a mount): the copied blocks are read from the copies.
            None => Self::over_copies(coll, txn),
        }
    }

    /// The view for a walk inside a writing transaction (graph
    /// construction): records in blocks with a private copy (this
    /// transaction's or a staged one) are read from the copy, the rest
    /// from the map. One pass over the copies per walk.
    pub fn over_copies(coll: &'c Collection, txn: &'t Txn<'t>) -> Option<Self> {
        let runs = coll.node_runs();
        let (map, copies) = txn.map_and_copies()?;
        let lo = runs.iter().map(|m| m.physical).min()?;
        let hi = runs.iter().map(|m| m.physical.saturating_add(m.len)).max()?;
        let mut view = Self::over(map, coll)?;
        let mut bits = vec![0u64; usize::try_from((hi - lo).div_ceil(64)).ok()?];
        for b in copies.filter(|b| (lo..hi).contains(b)) {
            let i = (b - lo) as usize;
            bits[i / 64] |= 1 << (i % 64);
        }
        if bits.iter().any(|&w| w != 0) {
            view.copied_from = lo;
            view.copied = bits;
            view.copies = Some(txn);
        }
        Some(view)
    }

    /// The view of `coll`'s node file over `map`.
    fn over(map: &'t [u8], coll: &'c Collection) -> Option<Self> {
        Some(DirectNodes {
            map,
            runs: coll.node_runs(),
            index: coll.run_index()?,
            copied_from: 0,
            copied: Vec::new(),
            copies: None,
        })
    }

    /// `len` bytes at byte `off` of logical block `l` (possibly running
    /// into the following blocks), or `None` when they are not all inside
    /// one written extent.
    #[inline]
    pub fn span(&self, l: u64, off: usize, len: usize) -> Option<&'t [u8]> {
        let i = self.index;
        // Blocks inside one bucket that one extent, or two, hold whole: the
        // common case, without the extent search. A packed record (format-spec/08
        // §8.5.2) may run into the next block.
        let last = l.checked_add((off.checked_add(len)?.saturating_sub(1) / BLOCK_SIZE) as u64)?;
        if last < i.end && last >> i.shift == l >> i.shift {
            let b = usize::try_from(l >> i.shift).ok()?;
            let mask = (1u64 << i.shift) - 1;
            let (o, o_last) = (l & mask, last & mask);
            let phys = match (i.whole_run.get(b), i.split.get(b), i.second_run.get(b)) {
                (Some(&first), Some(&at), _) if first != NO_RUN && o_last < at => first.checked_add(o),
                (Some(&first), Some(&at), Some(&second)) if first != NO_RUN && o >= at => second.checked_add(o - at),
                // Across the two pieces (blocks that are not adjacent), or
                // a bucket not in at most two extents.
                _ => None,
            };
            if let Some(phys) = phys {
                return self.serve(phys, last - l + 1, off, len);
            }
        }
        self.span_by_search(l, off, len)
    }

    /// `len` bytes from byte `off` of physical block `phys`, over `blocks`
    /// blocks adjacent in the map: from the private copy when they lie in
    /// one block that has one, `None` when they straddle a block that has
    /// one (the caller assembles the record through the transaction), else
    /// from the map.
    #[inline]
    fn serve(&self, phys: u64, blocks: u64, off: usize, len: usize) -> Option<&'t [u8]> {
        if !self.copied.is_empty() && (phys..phys.checked_add(blocks)?).any(|b| self.is_copied(b)) {
            return match blocks {
                1 => self.copies?.block(phys).ok()?.get(off..off + len),
                _ => None,
            };
        }
        let at = usize::try_from(phys).ok()?.checked_mul(BLOCK_SIZE)?.checked_add(off)?;
        self.map.get(at..at.checked_add(len)?)
    }

    /// [`DirectNodes::span`] by searching the extents from the bucket's
    /// first one.
    fn span_by_search(&self, l: u64, off: usize, len: usize) -> Option<&'t [u8]> {
        let i = self.index;
        let first = *i.first_run.get(usize::try_from(l >> i.shift).ok()?)? as usize;
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
        self.serve(m.physical.checked_add(l - m.logical)?, blocks, off, len)
    }

    /// Whether physical block `b` has a private copy.
    fn is_copied(&self, b: u64) -> bool {
        let Some(i) = b.checked_sub(self.copied_from) else {
            return false;
        };
        let i = i as usize;
        self.copied.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(logical: u64, physical: u64, len: u64, unwritten: bool) -> Mapping {
        Mapping {
            logical,
            physical,
            len,
            unwritten,
        }
    }

    /// Blocks 0..40 of a map, each filled with its block number.
    fn map() -> Vec<u8> {
        (0..40u8).flat_map(|b| std::iter::repeat_n(b, BLOCK_SIZE)).collect()
    }

    fn view<'a>(map: &'a [u8], runs: &'a [Mapping], index: &'a RunIndex) -> DirectNodes<'a, 'a> {
        DirectNodes {
            map,
            runs,
            index,
            copied_from: 0,
            copied: Vec::new(),
            copies: None,
        }
    }

    #[test]
    fn spans_follow_the_extents_and_refuse_what_they_cannot_serve() {
        let runs = [run(0, 10, 2, false), run(2, 20, 3, false), run(5, 30, 1, true)];
        let index = RunIndex::build(&runs).unwrap();
        assert_eq!(index.shift, 0, "one block per bucket: every bucket in one extent");
        assert_eq!(index.whole_run[..6], [10, 11, 20, 21, 22, NO_RUN]);
        assert_eq!(index.end, 6);
        let map = map();
        let v = view(&map, &runs, &index);
        assert_eq!(v.span(0, 100, 8).unwrap(), &[10u8; 8]);
        assert_eq!(v.span(3, 0, 4).unwrap(), &[21u8; 4]);
        // Across two blocks of one extent: served; across two extents: not.
        let across = v.span(2, BLOCK_SIZE - 4, 8).unwrap();
        assert_eq!(across, &[20, 20, 20, 20, 21, 21, 21, 21]);
        assert!(
            v.span(1, BLOCK_SIZE - 4, 8).is_none(),
            "blocks 11 and 20 are not adjacent"
        );
        assert!(v.span(5, 0, 8).is_none(), "unwritten extent");
        assert!(v.span(6, 0, 8).is_none(), "past the last extent");
        assert!(v.span(u64::MAX, 0, 8).is_none());
    }

    #[test]
    fn buckets_across_two_extents_map_both_pieces_and_copied_blocks_are_refused() {
        // 8 extents of 5 blocks, placed in reverse: 32 buckets wanted for
        // 40 blocks, so 2 blocks a bucket, and buckets 2, 7, 12 and 17 span
        // two extents (two pieces) while the others lie in one.
        let runs: Vec<Mapping> = (0..8).map(|i| run(i * 5, (7 - i) * 5, 5, false)).collect();
        let index = RunIndex::build(&runs).unwrap();
        assert_eq!(index.shift, 1);
        assert_eq!(index.whole_run.iter().filter(|&&b| b == NO_RUN).count(), 1, "the end");
        assert_eq!((index.whole_run[2], index.split[2], index.second_run[2]), (39, 1, 30));
        assert_eq!(index.split.iter().filter(|&&s| s != u64::MAX).count(), 4);
        let map = map();
        let mut v = view(&map, &runs, &index);
        for l in 0..40u64 {
            let phys = (7 - l / 5) * 5 + l % 5;
            assert_eq!(v.span(l, 8, 4).unwrap(), &[phys as u8; 4], "logical block {l}");
        }
        assert!(
            v.span(4, BLOCK_SIZE - 4, 8).is_none(),
            "logical 4 and 5 (physical 39 and 30) are not adjacent"
        );
        assert!(v.span(40, 0, 4).is_none());
        v.copied_from = 30;
        v.copied = vec![0b1];
        assert!(v.span(1, 0, 4).is_some(), "logical 1 is physical 36");
        assert!(
            v.span(5, 0, 4).is_none(),
            "logical 5 is physical 30, which has a private copy"
        );
    }

    #[test]
    fn searched_buckets_serve_a_copied_block_from_its_copy_and_refuse_a_straddle() {
        // Three one-block extents, then one of 37: 16 buckets wanted for
        // 40 blocks, so 4 blocks a bucket, and bucket 0 spans 4 extents
        // (searched).
        let mut runs = vec![run(0, 10, 1, false), run(1, 20, 1, false), run(2, 30, 1, false)];
        runs.push(run(3, 0, 37, false));
        let index = RunIndex::build(&runs).unwrap();
        assert_eq!((index.shift, index.whole_run[0]), (2, NO_RUN));
        let map = map();
        let mut staged = crate::fs::txn::Staged::default();
        staged.insert(20, Box::new([0xEE; BLOCK_SIZE]));
        staged.insert(0, Box::new([0xDD; BLOCK_SIZE]));
        let txn = Txn::read_only_with_overlay(&map, 40, &staged);
        let mut v = view(&map, &runs, &index);
        v.copied = vec![1 << 20 | 1];
        v.copies = Some(&txn);
        assert_eq!(v.span(1, 8, 4).unwrap(), &[0xEE; 4], "logical 1 is physical 20, copied");
        assert_eq!(v.span(2, 8, 4).unwrap(), &[30u8; 4]);
        assert!(
            v.span(3, BLOCK_SIZE - 4, 8).is_none(),
            "physical 0 and 1: the caller assembles a span across a copy"
        );
        assert_eq!(v.span(4, 0, 4).unwrap(), &[1u8; 4]);
    }

    #[test]
    fn review_straddling_spans_in_a_bucket_refuse_a_copied_second_block() {
        let runs: Vec<Mapping> = (0..8).map(|i| run(i * 5, (7 - i) * 5, 5, false)).collect();
        let index = RunIndex::build(&runs).unwrap();
        assert_eq!(index.shift, 1);
        let map = map();
        let mut v = view(&map, &runs, &index);
        // Logical 0..2 = physical 35, 36: one bucket, one extent.
        assert_eq!(v.span(0, BLOCK_SIZE - 4, 8).unwrap(), &[35, 35, 35, 35, 36, 36, 36, 36]);
        // Ending exactly at the block end stays in one block.
        assert_eq!(v.span(0, BLOCK_SIZE - 8, 8).unwrap(), &[35u8; 8]);
        v.copied_from = 36;
        v.copied = vec![0b1];
        assert!(v.span(0, BLOCK_SIZE - 4, 8).is_none(), "second block has a copy");
        assert_eq!(v.span(0, BLOCK_SIZE - 8, 8).unwrap(), &[35u8; 8]);
        v.copied_from = 35;
        assert!(v.span(0, BLOCK_SIZE - 4, 8).is_none(), "first block has a copy");
    }

    #[test]
    fn an_index_built_before_the_file_grew_still_answers_right_or_not_at_all() {
        let old = [run(0, 10, 2, false)];
        let index = RunIndex::build(&old).unwrap();
        let grown = [run(0, 10, 3, false), run(3, 20, 2, false)];
        let map = map();
        let v = view(&map, &grown, &index);
        assert_eq!(v.span(1, 0, 4).unwrap(), &[11u8; 4]);
        for l in 2..5 {
            if let Some(bytes) = v.span(l, 0, 4) {
                let want = [10, 11, 12, 20, 21][l as usize];
                assert_eq!(bytes, &[want; 4], "logical block {l}");
            }
        }
    }
}
