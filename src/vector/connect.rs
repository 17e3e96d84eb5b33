//! Keeping every live node reachable (format-spec/09 §9.2, "Reachability"). The
//! neighbour-selection heuristic may drop a node from the last list that
//! named it; the node then still finds its own neighbours but no search
//! reaches it, so its file would never be a result and fsck reports it.
//! Before a list loses an id, or when a new node was kept by no
//! neighbour, the writer makes sure the node keeps one incoming edge.
//!
//! Incoming edges are not indexed, so "has an incoming edge" is tested on
//! the node's own out-neighbours (most edges are mutual, §9.2): a false
//! "no" only costs an extra edge, never a lost one.

use super::build::{fits, list_of, max_degree, write_exact};
use super::distance::Scorer;
use super::search::Dist;
use super::store::Collection;
use crate::error::Result;
use crate::fs::txn::Txn;

/// True when `y` is a live node with a list at `level`.
pub(super) fn linkable(coll: &Collection, txn: &Txn<'_>, y: u32, level: u8) -> Result<bool> {
    let n = coll.peek(txn, y)?;
    Ok(n.is_live() && n.level() >= level)
}

/// Whether one of `x`'s out-neighbours other than `except` lists `x` at
/// `level`. Bound: `x`'s list, at most `max_degree` lists read.
pub fn has_in_edge(coll: &Collection, txn: &Txn<'_>, x: u32, level: u8, except: u32) -> Result<bool> {
    for y in list_of(coll, txn, x, level)? {
        if y == except || y == x || !linkable(coll, txn, y, level)? {
            continue;
        }
        if list_of(coll, txn, y, level)?.contains(&x) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Add `x` to the list of one of its out-neighbours (not `except`) that
/// has room for it, in ids and in bytes. False when none has.
pub fn link_from_neighbour(coll: &Collection, txn: &mut Txn<'_>, x: u32, level: u8, except: u32) -> Result<bool> {
    let max = max_degree(coll, level);
    for y in list_of(coll, txn, x, level)? {
        if y == except || y == x || !linkable(coll, txn, y, level)? {
            continue;
        }
        let mut ids = list_of(coll, txn, y, level)?;
        if ids.contains(&x) {
            return Ok(true);
        }
        if ids.len() < max {
            ids.push(x);
            if write_exact(coll, txn, y, level, &mut ids)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// `v`'s new list `keep` (nearest first) is about to replace `old`. Every
/// live id of `old` that `keep` drops and that would be left without an
/// incoming edge is linked from one of its own neighbours, or else kept
/// in `v`'s list in place of the farthest kept ids that have another
/// incoming edge, as many as it takes to fit the degree and byte limits.
/// `keep` fits those limits on entry and still does on return; rescued
/// ids go first.
pub fn protect_dropped(
    coll: &Collection,
    txn: &mut Txn<'_>,
    v: u32,
    level: u8,
    old: &[u32],
    keep: &mut Vec<u32>,
) -> Result<()> {
    for &x in old {
        if x == v || keep.contains(&x) || !linkable(coll, txn, x, level)? {
            continue;
        }
        if has_in_edge(coll, txn, x, level, v)? || link_from_neighbour(coll, txn, x, level, v)? {
            continue;
        }
        let mut with_x = keep.clone();
        with_x.insert(0, x);
        if make_fit(coll, txn, v, level, &mut with_x)? {
            *keep = with_x;
            continue;
        }
        // Every id `v` keeps depends on `v`: one of x's own neighbours
        // (not `v`, whose list is being replaced) gives way instead.
        adopt_elsewhere(coll, txn, x, level, v)?;
    }
    Ok(())
}

/// `x` is losing its edge from `lost` (deleted, or replacing its list):
/// make sure another node lists it at `level`, linking it from one of its
/// own neighbours other than `lost` if none does.
pub fn keep_linked(coll: &Collection, txn: &mut Txn<'_>, x: u32, level: u8, lost: u32) -> Result<()> {
    if !linkable(coll, txn, x, level)? || has_in_edge(coll, txn, x, level, lost)? {
        return Ok(());
    }
    if link_from_neighbour(coll, txn, x, level, lost)? {
        return Ok(());
    }
    adopt_elsewhere(coll, txn, x, level, lost)
}

/// [`adopt_new`] of `x` by its out-neighbours other than `not`.
fn adopt_elsewhere(coll: &Collection, txn: &mut Txn<'_>, x: u32, level: u8, not: u32) -> Result<()> {
    let others: Vec<u32> = list_of(coll, txn, x, level)?
        .into_iter()
        .filter(|&y| y != not)
        .collect();
    adopt_new(coll, txn, x, level, &others, not)
}

/// Evict from `ids` (nearest first, the first one protected) the farthest
/// ids that have an incoming edge besides `v`'s until the list fits the
/// degree and byte limits at `level`. False when it cannot be made to fit.
/// Bound: one eviction per id of the list.
fn make_fit(coll: &Collection, txn: &Txn<'_>, v: u32, level: u8, ids: &mut Vec<u32>) -> Result<bool> {
    while !fits(coll, level, ids) {
        match evictable(coll, txn, v, level, &ids[1..])? {
            Some(i) => {
                ids.remove(i + 1);
            }
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// The index in `keep` (nearest first) of the farthest id that has an
/// incoming edge besides `v`'s.
fn evictable(coll: &Collection, txn: &Txn<'_>, v: u32, level: u8, keep: &[u32]) -> Result<Option<usize>> {
    for i in (0..keep.len()).rev() {
        if has_in_edge(coll, txn, keep[i], level, v)? {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// The new node `x` was kept by none of the neighbours it linked to at
/// `level` (`linked`, nearest first; never `except`): link it from one with
/// room, or else from the nearest, in place of that node's farthest
/// neighbours that have another incoming edge, or else from a neighbour of
/// theirs with room (short packed lists are often all full and all
/// depended on).
pub fn adopt_new(coll: &Collection, txn: &mut Txn<'_>, x: u32, level: u8, linked: &[u32], except: u32) -> Result<()> {
    if linked.is_empty() || link_from_neighbour(coll, txn, x, level, except)? {
        return Ok(());
    }
    for &y in linked {
        if y == x || y == except || !linkable(coll, txn, y, level)? {
            continue;
        }
        let mut ids = by_distance(coll, txn, y, level)?;
        if ids.contains(&x) {
            return Ok(());
        }
        ids.insert(0, x);
        if make_fit(coll, txn, y, level, &mut ids)? && write_exact(coll, txn, y, level, &mut ids)? {
            return Ok(());
        }
    }
    // Bound: |linked| lists, each naming at most max_degree nodes.
    for &y in linked {
        if y == x || y == except || !linkable(coll, txn, y, level)? {
            continue;
        }
        for z in list_of(coll, txn, y, level)? {
            if z == x || z == except || !linkable(coll, txn, z, level)? {
                continue;
            }
            let mut ids = list_of(coll, txn, z, level)?;
            if ids.contains(&x) {
                return Ok(());
            }
            ids.push(x);
            if write_exact(coll, txn, z, level, &mut ids)? {
                return Ok(());
            }
        }
    }
    Ok(()) // nothing near can take it; fsck will say so
}

/// `y`'s list at `level`, nearest to `y` first.
fn by_distance(coll: &Collection, txn: &Txn<'_>, y: u32, level: u8) -> Result<Vec<u32>> {
    let base = coll.node(txn, y)?;
    let mut scorer = Scorer::from_stored(coll.space, base.vector().to_vec());
    let mut all = Vec::new();
    for id in list_of(coll, txn, y, level)? {
        let n = coll.peek(txn, id)?;
        all.push((Dist(scorer.to(n.vector())), id));
    }
    all.sort_by_key(|a| a.0);
    Ok(all.into_iter().map(|a| a.1).collect())
}
