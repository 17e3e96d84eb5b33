//! HNSW search over the map (format-spec/09 §9.7): iterative loops, one
//! visited set per query, candidate and result heaps bounded by ef, and a
//! budget (visited nodes, deadline) after which the best results so far
//! are returned and marked incomplete.

use super::direct::DirectNodes;
use super::distance::Scorer;
use super::store::{Collection, Node};
use super::visited::Visited;
use crate::error::Result;
use crate::format::hnsw::{UpperRecord, MAX_LEVEL};
use crate::format::vector::{NodeHeader, NODE_LIVE};
use crate::fs::txn::Txn;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Instant;
use zerocopy::FromBytes;

/// Default cap on nodes scored per query. Why: bounds the visited set
/// (at most 16 bytes a node) and the time of one query, whatever the
/// collection's size or a filter's selectivity.
pub const DEFAULT_MAX_VISITED: usize = 200_000;

/// Cache lines of neighbour records a walk keeps loading at once. Why:
/// the walk is bound by the lines in flight; prefetching every fresh
/// neighbour's record at once (the first way) oversubscribes the line-fill
/// buffers at large dimensions (384: 12 records of 25 lines), so records
/// are prefetched this many lines ahead of the one being scored. Measured
/// at 100,000 vectors, ef 48: d=384 +31-36% QPS against all at once,
/// d=128 +1-4% (9-line records, 7 ahead, about what all-at-once loads).
const PREFETCH_LINES: usize = 64;

/// Bytes of a record a score reads: the header and the vector after it.
fn scored_bytes(coll: &Collection) -> usize {
    coll.geo.vector_offset as usize + coll.space.vector_bytes()
}

/// Limits on one query's work.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max_visited: usize,
    pub deadline: Option<Instant>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_visited: DEFAULT_MAX_VISITED,
            deadline: None,
        }
    }
}

/// A distance with a total order (NaN never occurs: inputs are finite,
/// and kernels that fail report +inf).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dist(pub f32);

impl Eq for Dist {}
impl PartialOrd for Dist {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Dist {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Which nodes may be results (all nodes route).
pub trait Accept {
    fn accept(&mut self, slot: u32, node: &NodeHeader) -> Result<bool>;
}

/// Live nodes only (the default, and what graph construction links to).
pub struct LiveOnly;

impl Accept for LiveOnly {
    fn accept(&mut self, _: u32, node: &NodeHeader) -> Result<bool> {
        Ok(node.n_flags == NODE_LIVE)
    }
}

/// State of one query: the visited set and the budget.
pub struct Walk<'c, 't, 'a> {
    pub coll: &'c Collection,
    pub txn: &'t Txn<'a>,
    /// The node file addressed straight in the map, when nothing in it has
    /// a private copy (read-only searches); else records go through `txn`.
    direct: Option<DirectNodes<'c, 't>>,
    visited: Visited,
    /// Records prefetched ahead of the one being scored (see
    /// [`PREFETCH_LINES`]).
    ahead: usize,
    /// Bytes of a record a score reads (header and vector).
    scored_bytes: usize,
    /// Nodes scored over all levels of this query (charged to the budget).
    total: usize,
    budget: Budget,
    /// Set when the budget ran out: results are the best found so far.
    pub exhausted: bool,
}

impl<'c, 't, 'a> Walk<'c, 't, 'a> {
    pub fn new(coll: &'c Collection, txn: &'t Txn<'a>, budget: Budget) -> Self {
        Walk {
            coll,
            txn,
            direct: DirectNodes::new(coll, txn),
            visited: Visited::default(),
            ahead: (PREFETCH_LINES / scored_bytes(coll).div_ceil(64)).max(2),
            scored_bytes: scored_bytes(coll),
            total: 0,
            budget,
            exhausted: false,
        }
    }

    /// A walk for graph construction inside a writing transaction:
    /// records are read from the map except those in blocks with a
    /// private copy (see [`DirectNodes::over_copies`]). Why not in
    /// [`Walk::new`]: building the view costs a pass over the copies,
    /// which only pays for a walk that scores many nodes.
    pub fn for_build(coll: &'c Collection, txn: &'t Txn<'a>, budget: Budget) -> Self {
        Walk {
            direct: DirectNodes::over_copies(coll, txn),
            ..Self::new(coll, txn, budget)
        }
    }

    pub fn visited(&self) -> usize {
        self.total
    }

    /// First visit of `s` in this layer search? Also charges the budget.
    #[inline]
    fn first_visit(&mut self, s: u32) -> bool {
        if self.total >= self.budget.max_visited {
            self.exhausted = true;
            return false;
        }
        if self.total % 256 == 255 && self.budget.deadline.is_some_and(|d| Instant::now() >= d) {
            self.exhausted = true;
            return false;
        }
        let first = self.visited.insert(s);
        self.total += usize::from(first);
        first
    }

    /// Slot `s` checked as [`Collection::peek`] does.
    pub fn peek(&self, s: u32) -> Result<Node<'t>> {
        self.coll.peek_in(self.txn, self.direct.as_ref(), s)
    }

    /// Slot `s`'s record from the direct view (not validated), if it
    /// holds it; `None` sends the check that follows through the
    /// transaction.
    #[inline]
    fn record_of(&self, s: u32) -> Option<&'t [u8]> {
        self.direct.as_ref().and_then(|d| self.coll.direct_record(d, s))
    }

    /// [`Walk::peek`] of slot `n`, whose record `mark_fresh` found (or
    /// did not find) in the direct view; a record read through the
    /// transaction that straddles blocks is assembled in `buf`.
    #[inline]
    fn peek_found<'b>(&self, n: u32, rec: Option<&'t [u8]>, buf: &'b mut Vec<u8>) -> Result<Node<'b>>
    where
        't: 'b,
    {
        match rec {
            Some(bytes) => self.coll.peek_record(bytes, n),
            None => self.coll.peek_in_buf(self.txn, n, buf),
        }
    }

    /// [`Walk::peek`], assembling a straddling record read through the
    /// transaction in `buf` (what the walks use: a 100,000-vector build's
    /// walks read 7 million straddling records through the transaction,
    /// and a new allocation for each was a measurable part of the build).
    #[inline]
    fn peek_buf<'b>(&self, s: u32, buf: &'b mut Vec<u8>) -> Result<Node<'b>>
    where
        't: 'b,
    {
        self.peek_found(s, self.record_of(s), buf)
    }

    /// Start loading a record's header and vector into the cache.
    #[inline]
    fn prefetch(&self, rec: &[u8]) {
        crate::image::prefetch(&rec[..self.scored_bytes.min(rec.len())]);
    }

    /// [`Walk::prefetch`] of slot `s`, found in `rec` or else through the
    /// transaction (a walk without the direct view).
    #[inline]
    fn prefetch_slot(&self, s: u32, rec: Option<&[u8]>) {
        match rec {
            Some(r) => self.prefetch(r),
            None => {
                if let Some(r) = self.coll.record_in_one_block(self.txn, s) {
                    self.prefetch(r);
                }
            }
        }
    }

    /// The unvisited neighbours among `ids` (not `s` itself) into `fresh`,
    /// with their records, the first [`Walk::ahead`] of them prefetched.
    fn mark_fresh(&mut self, s: u32, ids: &[u32], fresh: &mut Vec<(u32, Option<&'t [u8]>)>) {
        fresh.clear();
        for &n in ids {
            if n != s && self.first_visit(n) {
                let rec = self.record_of(n);
                if fresh.len() < self.ahead {
                    self.prefetch_slot(n, rec);
                }
                fresh.push((n, rec));
            }
        }
    }

    /// While `fresh[i]` is scored, start loading the record
    /// [`Walk::ahead`] places further.
    #[inline]
    fn prefetch_ahead(&self, fresh: &[(u32, Option<&'t [u8]>)], i: usize) {
        if let Some(&(n, rec)) = fresh.get(i + self.ahead) {
            self.prefetch_slot(n, rec);
        }
    }

    /// Start loading slot `s`'s level-0 list (direct view only).
    fn prefetch_list(&self, s: u32) {
        if let Some(rec) = self.record_of(s) {
            let at = self.coll.geo.adj_offset as usize;
            let end = at + self.coll.geo.adj_capacity as usize;
            if let Some(list) = rec.get(at..end) {
                crate::image::prefetch(list);
            }
        }
    }

    /// Neighbour ids of `node` (slot `s`) at `level`, appended to `out`.
    pub fn neighbours(&self, s: u32, node: &Node<'_>, level: u8, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        let slots = self.coll.slots();
        if level == 0 {
            // Decoded without the record's image offset, which only an
            // error report needs (and which costs an extent lookup).
            if !self.coll.coding.decode_all(node.adjacency(), slots, out) {
                return Err(self.adjacency_error(s, node));
            }
            return Ok(());
        }
        if level > node.level() {
            return Ok(());
        }
        let r = self.coll.upper_index(s, node, level)?;
        let rec = self.coll.upper(self.txn, r, s, level)?;
        let len = UpperRecord::ref_from_prefix(&rec).map_or(0, |(u, _)| usize::from(u.u_adj_len.get()));
        let list = &rec[16..16 + len];
        if !self.coll.coding.decode_all(list, slots, out) {
            out.clear();
            for id in self.coll.coding.iter(list, slots, 0) {
                out.push(id?);
            }
        }
        Ok(())
    }

    /// The error decoding `s`'s level-0 list gives, at its image offset.
    #[cold]
    fn adjacency_error(&self, s: u32, node: &Node<'_>) -> crate::error::FsError {
        let base = self.coll.record_offset(s) + u64::from(self.coll.geo.adj_offset);
        self.coll
            .coding
            .iter(node.adjacency(), self.coll.slots(), base)
            .find_map(|r| r.err())
            .unwrap_or_else(|| crate::error::FsError::Invalid("adjacency list".into()))
    }

    /// The beam search of one level (HNSW "SEARCH-LAYER"): returns up to
    /// `ef` accepted nodes, nearest first. Nodes that are not accepted
    /// (deleted, filtered out) still route.
    pub fn layer(
        &mut self,
        scorer: &mut Scorer,
        entries: &[(Dist, u32)],
        ef: usize,
        level: u8,
        accept: &mut dyn Accept,
    ) -> Result<Vec<(Dist, u32)>> {
        self.visited.clear();
        let ef = ef.max(1);
        let mut candidates: BinaryHeap<Reverse<(Dist, u32)>> = BinaryHeap::with_capacity(ef * 2);
        let mut results: BinaryHeap<(Dist, u32)> = BinaryHeap::with_capacity(ef + 1);
        for &(d, s) in entries {
            // Entries were scored (and charged) by the level above: they
            // seed the level even when the budget just ran out, so a tiny
            // budget still returns the nearest node found.
            if !self.visited.insert(s) {
                continue;
            }
            let node = self.peek(s)?;
            candidates.push(Reverse((d, s)));
            if node.header().n_flags != 0 && accept.accept(s, node.header())? {
                results.push((d, s));
            }
        }
        let (mut ids, mut fresh) = (Vec::with_capacity(64), Vec::with_capacity(64));
        // Where records read through the transaction are assembled (see
        // `peek_buf`): the expanded node's, and each scored one's.
        let (mut node_buf, mut score_buf) = (Vec::new(), Vec::new());
        while let Some(Reverse((d, s))) = candidates.pop() {
            if results.len() >= ef && results.peek().is_some_and(|w| d > w.0) {
                break;
            }
            // The next candidate's list is likely expanded next: start
            // loading it now (its header and vector are cached already,
            // from its scoring; the list sits after the vector).
            if let Some(Reverse((_, next))) = candidates.peek() {
                self.prefetch_list(*next);
            }
            let node = self.peek_buf(s, &mut node_buf)?;
            self.neighbours(s, &node, level, &mut ids)?;
            // Mark every unvisited neighbour and start loading the first
            // records' headers and vectors, then check and score each while
            // the ones `ahead` of it load: the memory loads overlap instead
            // of stalling one after another.
            self.mark_fresh(s, &ids, &mut fresh);
            for (i, &(n, rec)) in fresh.iter().enumerate() {
                self.prefetch_ahead(&fresh, i);
                let slow;
                let (h, vector) = match rec.and_then(|r| self.coll.quick(r)) {
                    Some(q) => q,
                    None => {
                        slow = self.peek_found(n, rec, &mut score_buf)?;
                        (slow.header(), slow.vector())
                    }
                };
                if h.n_flags == 0 || (level > 0 && h.n_level < level) {
                    continue; // a dangling edge (§9.7): skip it
                }
                let dn = Dist(scorer.to(vector));
                let worst = results.peek().map(|w| w.0);
                if results.len() < ef || worst.is_some_and(|w| dn < w) {
                    candidates.push(Reverse((dn, n)));
                    if accept.accept(n, h)? {
                        results.push((dn, n));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
            self.prune_candidates(&mut candidates, &results, ef);
            if self.exhausted {
                break;
            }
        }
        Ok(results.into_sorted_vec())
    }

    /// Keep the candidate heap bounded by ef: once ef results are held, a
    /// candidate farther than the worst can never be expanded, so drop it.
    fn prune_candidates(&self, c: &mut BinaryHeap<Reverse<(Dist, u32)>>, r: &BinaryHeap<(Dist, u32)>, ef: usize) {
        if c.len() <= 4 * ef || r.len() < ef {
            return;
        }
        if let Some(&(w, _)) = r.peek() {
            c.retain(|Reverse((d, _))| *d <= w);
        }
    }

    /// Greedy descent from the entry point through levels `top..=1`,
    /// returning the entry for level 0 (the nearest node found).
    pub fn descend(&mut self, scorer: &mut Scorer, entry: u32, top: u8, to: u8) -> Result<(Dist, u32)> {
        let node = self.peek(entry)?;
        let mut best = (Dist(scorer.to(node.vector())), entry);
        let (mut ids, mut fresh) = (Vec::with_capacity(32), Vec::with_capacity(32));
        let (mut node_buf, mut score_buf) = (Vec::new(), Vec::new());
        // One visited set for all the levels descended: a node scored on
        // a level above is at least as far as `best` (which is the nearest
        // scored so far), so scoring it again could never move the walk.
        self.visited.clear();
        for level in (to.max(1)..=top.min(MAX_LEVEL)).rev() {
            // Each step moves to a strictly closer node, so a level ends
            // after at most ch_slots steps; the budget bounds it further.
            loop {
                let node = self.peek_buf(best.1, &mut node_buf)?;
                self.neighbours(best.1, &node, level, &mut ids)?;
                // Neighbours marked and prefetched as in `layer`, so their
                // loads overlap.
                self.mark_fresh(best.1, &ids, &mut fresh);
                let mut moved = false;
                for (i, &(n, rec)) in fresh.iter().enumerate() {
                    self.prefetch_ahead(&fresh, i);
                    let slow;
                    let (h, vector) = match rec.and_then(|r| self.coll.quick(r)) {
                        Some(q) => q,
                        None => {
                            slow = self.peek_found(n, rec, &mut score_buf)?;
                            (slow.header(), slow.vector())
                        }
                    };
                    if h.n_flags == 0 || h.n_level < level {
                        continue;
                    }
                    let d = Dist(scorer.to(vector));
                    if d < best.0 {
                        best = (d, n);
                        moved = true;
                    }
                }
                if !moved || self.exhausted {
                    break;
                }
            }
        }
        Ok(best)
    }
}

/// What [`knn`] found.
pub struct Knn {
    /// Nearest first.
    pub found: Vec<(Dist, u32)>,
    /// The budget ran out: `found` is the best so far.
    pub exhausted: bool,
    pub visited: usize,
}

/// The k nearest accepted nodes.
pub fn knn(
    coll: &Collection,
    txn: &Txn<'_>,
    scorer: &mut Scorer,
    k: usize,
    ef: usize,
    budget: Budget,
    accept: &mut dyn Accept,
) -> Result<Knn> {
    if coll.count() == 0 || k == 0 {
        return Ok(Knn {
            found: Vec::new(),
            exhausted: false,
            visited: 0,
        });
    }
    let mut walk = Walk::new(coll, txn, budget);
    let entry = coll.header.ch_entry_slot.get() as u32;
    let top = coll.header.ch_max_level.get().min(MAX_LEVEL.into()) as u8;
    let start = walk.descend(scorer, entry, top, 1)?;
    let mut found = walk.layer(scorer, &[start], ef.max(k), 0, accept)?;
    found.truncate(k);
    Ok(Knn {
        found,
        exhausted: walk.exhausted,
        visited: walk.visited(),
    })
}
