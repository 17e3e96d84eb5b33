//! Changing the graph (format-spec/09): insert with the HNSW
//! neighbour-selection heuristic, edge updates with pruning, and delete
//! with neighbour repair (§9.8). Every write goes through the caller's
//! transaction.

use super::connect;
use super::distance::Scorer;
use super::search::{Budget, Dist, LiveOnly, Walk};
use super::store::Collection;
use crate::error::{FsError, Result};
use crate::format::hnsw::{UpperRecord, MAX_LEVEL};
use crate::format::vector::{NodeHeader, NODE_DELETED, NODE_HEADER_LEN, NODE_LIVE};
use crate::fs::txn::Txn;
use crate::layout::Geometry;
use zerocopy::{FromZeros, IntoBytes};

/// Construction searches are not cut short: a budget here would only
/// lower the graph's quality. The bound is the number of slots.
fn build_budget(coll: &Collection) -> Budget {
    Budget {
        max_visited: usize::try_from(coll.slots()).unwrap_or(usize::MAX).saturating_add(1),
        deadline: None,
    }
}

/// Most ids a list at `level` may hold: 2M at level 0, M above (§9.2).
pub fn max_degree(coll: &Collection, level: u8) -> usize {
    let m = usize::from(coll.record.m);
    if level == 0 {
        2 * m
    } else {
        m
    }
}

/// The node's level, drawn as `min(floor(-ln(U) / ln(M)), 16)` (§9.2) from
/// a hash of the collection and slot, so builds are reproducible.
pub fn draw_level(coll_id: u32, slot: u32, m: u16) -> u8 {
    let mut x = (u64::from(coll_id) << 32 | u64::from(slot)) ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let u = ((x >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let l = -u.ln() / f64::from(m.max(2)).ln();
    (l.floor() as u64).min(MAX_LEVEL.into()) as u8
}

/// The ids of `s`'s list at `level`.
pub fn list_of(coll: &Collection, txn: &Txn<'_>, s: u32, level: u8) -> Result<Vec<u32>> {
    let walk = Walk::new(coll, txn, Budget::default());
    let node = coll.node(txn, s)?;
    let mut out = Vec::new();
    walk.neighbours(s, &node, level, &mut out)?;
    Ok(out)
}

/// Write `s`'s list at `level` from candidates ordered nearest first,
/// dropping the farthest until the encoding fits (§9.5). Returns how many
/// of `nearest_first` (from the front) were written.
pub(super) fn write_list(
    coll: &Collection,
    txn: &mut Txn<'_>,
    s: u32,
    level: u8,
    nearest_first: &[u32],
) -> Result<usize> {
    let mut buf = vec![0u8; list_capacity(coll, level)];
    let mut sorted = Vec::with_capacity(nearest_first.len());
    // Bound: one attempt per id dropped; the empty list should always
    // encode (the error below is for a coder that cannot).
    for n in (0..=nearest_first.len().min(max_degree(coll, level))).rev() {
        sorted.clear();
        sorted.extend_from_slice(&nearest_first[..n]);
        sorted.sort_unstable();
        if let Some(len) = encode_into(coll, &sorted, &mut buf) {
            store_list(coll, txn, s, level, &buf, len)?;
            return Ok(n);
        }
    }
    Err(FsError::Invalid("neighbour list".into()))
}

/// Encode sorted, distinct `ids` into `buf` (zeroed first, so the bytes
/// after the encoding are zero as §9.5 wants); the encoded length, or
/// `None` if they do not fit.
fn encode_into(coll: &Collection, ids: &[u32], buf: &mut [u8]) -> Option<usize> {
    buf.fill(0);
    coll.coding.encode(ids, buf)
}

/// Store an encoded list (`buf`, the whole list area, of which `len`
/// bytes are the encoding) as `s`'s list at `level`.
fn store_list(coll: &Collection, txn: &mut Txn<'_>, s: u32, level: u8, buf: &[u8], len: usize) -> Result<()> {
    let cap = buf.len();
    if level == 0 {
        let mut rec = coll.record(txn, s)?.into_owned();
        let at = coll.geo.adj_offset as usize;
        rec[at..at + cap].copy_from_slice(buf);
        rec[6..8].copy_from_slice(&(len as u16).to_le_bytes());
        return coll.put_record(txn, s, &mut rec);
    }
    let node = coll.node(txn, s)?;
    let r = coll.upper_index(s, &node, level)?;
    let mut rec = coll.upper(txn, r, s, level)?.into_owned();
    rec[6..8].copy_from_slice(&(len as u16).to_le_bytes());
    rec[16..16 + cap].copy_from_slice(buf);
    coll.put_upper(txn, r, &mut rec)
}

/// The HNSW heuristic: keep a candidate (nearest first) only if it is
/// closer to the base than to every neighbour already kept. `vectors[i]`
/// is candidate i's stored vector.
fn select(scorer: &mut Scorer, cands: &[(Dist, u32)], vectors: &[&[u8]], max: usize) -> Vec<u32> {
    if cands.len() <= max {
        return cands.iter().map(|c| c.1).collect();
    }
    let mut kept: Vec<usize> = Vec::with_capacity(max);
    for (i, &(d, _)) in cands.iter().enumerate() {
        if kept.len() >= max {
            break;
        }
        if kept.iter().all(|&k| Dist(scorer.between(vectors[i], vectors[k])) >= d) {
            kept.push(i);
        }
    }
    kept.into_iter().map(|i| cands[i].1).collect()
}

/// The heuristic's choice for a list of the node whose vector is `base`,
/// from `ids` (live nodes of level >= `level` only). Vectors are read in
/// place, not copied.
fn choose(coll: &Collection, txn: &Txn<'_>, base: &[u8], ids: &[u32], level: u8) -> Result<Vec<u32>> {
    let mut scorer = Scorer::from_stored(coll.space, base.to_vec());
    let mut all = Vec::with_capacity(ids.len());
    for &id in ids {
        let n = coll.peek(txn, id)?;
        if n.is_live() && n.level() >= level {
            all.push((Dist(scorer.to(n.vector())), id, n));
        }
    }
    all.sort_by_key(|a| a.0);
    let cands: Vec<(Dist, u32)> = all.iter().map(|a| (a.0, a.1)).collect();
    let vectors: Vec<&[u8]> = all.iter().map(|a| a.2.vector()).collect();
    Ok(select(&mut scorer, &cands, &vectors, max_degree(coll, level)))
}

/// Re-select `v`'s list at `level` from `pool` (ids other than `v`);
/// returns the ids written.
fn reselect(coll: &Collection, txn: &mut Txn<'_>, v: u32, level: u8, pool: &[u32]) -> Result<Vec<u32>> {
    let mut ids: Vec<u32> = pool.iter().copied().filter(|&i| i != v).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut keep = {
        let t: &Txn<'_> = txn;
        let base = coll.node(t, v)?;
        choose(coll, t, base.vector(), &ids, level)?
    };
    // What the byte limit would drop is dropped here, before the
    // reachability check, so that the check sees every id the list loses.
    keep.truncate(fitting_prefix(coll, level, &keep));
    let old = list_of(coll, txn, v, level)?;
    connect::protect_dropped(coll, txn, v, level, &old, &mut keep)?;
    let written = write_list(coll, txn, v, level, &keep)?;
    keep.truncate(written);
    Ok(keep)
}

/// Whether `ids` (any order, distinct) encode within the list capacity
/// at `level` (§9.5).
pub(super) fn fits(coll: &Collection, level: u8, ids: &[u32]) -> bool {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    let mut probe = vec![0u8; list_capacity(coll, level)];
    ids.len() <= max_degree(coll, level) && coll.coding.encode(&sorted, &mut probe).is_some()
}

/// How many of `nearest_first` (from the front) fit in a list at `level`.
fn fitting_prefix(coll: &Collection, level: u8, nearest_first: &[u32]) -> usize {
    let mut n = nearest_first.len().min(max_degree(coll, level));
    while n > 0 && !fits(coll, level, &nearest_first[..n]) {
        n -= 1;
    }
    n
}

/// Add the edge `n -> new` at `level`. While `n`'s list has room (in ids
/// and in bytes) the id is simply added, as hnswlib does; a full list is
/// re-selected with the heuristic. True when `n` now lists `new`.
fn add_edge(coll: &Collection, txn: &mut Txn<'_>, n: u32, new: u32, level: u8) -> Result<bool> {
    let mut ids = list_of(coll, txn, n, level)?;
    if ids.contains(&new) {
        return Ok(true);
    }
    ids.push(new);
    if ids.len() <= max_degree(coll, level) && write_exact(coll, txn, n, level, &mut ids)? {
        return Ok(true);
    }
    Ok(reselect(coll, txn, n, level, &ids)?.contains(&new))
}

/// Write exactly `ids` as `s`'s list at `level`; false if they do not fit.
pub(super) fn write_exact(coll: &Collection, txn: &mut Txn<'_>, s: u32, level: u8, ids: &mut [u32]) -> Result<bool> {
    ids.sort_unstable();
    if ids.len() > max_degree(coll, level) {
        return Ok(false);
    }
    let mut buf = vec![0u8; list_capacity(coll, level)];
    match encode_into(coll, ids, &mut buf) {
        Some(len) => store_list(coll, txn, s, level, &buf, len).map(|()| true),
        None => Ok(false),
    }
}

/// Bytes a list at `level` may take (§9.5).
fn list_capacity(coll: &Collection, level: u8) -> usize {
    if level == 0 {
        coll.geo.adj_capacity as usize
    } else {
        coll.upper_stride() - 16
    }
}

/// A fresh record: header (`n_flags` = `flags`), vector, empty level-0
/// list.
pub(super) fn fresh_record(
    coll: &Collection,
    (owner, flags): (u32, u8),
    level: u8,
    upper_ref: u32,
    stored: &[u8],
) -> Vec<u8> {
    let mut rec = vec![0u8; coll.geo.stride as usize];
    let mut h = NodeHeader::new_zeroed();
    h.n_owner_ino.set(owner);
    h.n_level = level;
    h.n_flags = flags;
    h.n_upper_ref.set(upper_ref);
    rec[..NODE_HEADER_LEN].copy_from_slice(h.as_bytes());
    let at = coll.geo.vector_offset as usize;
    rec[at..at + stored.len()].copy_from_slice(stored);
    rec
}

/// Insert the vector `stored` (element encoding) owned by `owner` at
/// `slot`. `reuse` keeps an existing node's level and upper records (a
/// vector replaced in place).
pub fn insert(
    coll: &mut Collection,
    txn: &mut Txn<'_>,
    g: &Geometry,
    slot: u32,
    owner: u32,
    stored: &[u8],
    reuse: Option<(u8, u32)>,
) -> Result<()> {
    let level = reuse.map_or_else(|| draw_level(coll.record.id, slot, coll.record.m), |r| r.0);
    let upper_ref = match reuse {
        Some((_, r)) => r,
        None if level > 0 => coll.alloc_upper(txn, g, level)?,
        None => 0,
    };
    coll.put_record(
        txn,
        slot,
        &mut fresh_record(coll, (owner, NODE_LIVE), level, upper_ref, stored),
    )?;
    for l in 1..=level {
        put_empty_upper(coll, txn, slot, l, upper_ref)?;
    }
    let had = coll.count();
    coll.header.ch_count.set(had + 1);
    if had == 0 {
        set_entry(coll, slot, level);
        return coll.store_header(txn);
    }
    let plan = plan_links(coll, txn, slot, level, stored)?;
    for (l, keep) in plan {
        write_list(coll, txn, slot, l, &keep)?;
        let mut linked = false;
        for &n in &keep {
            linked |= add_edge(coll, txn, n, slot, l)?;
        }
        if !linked {
            connect::adopt_new(coll, txn, slot, l, &keep, slot)?;
        }
    }
    if u32::from(level) > coll.header.ch_max_level.get() {
        set_entry(coll, slot, level);
    }
    coll.store_header(txn)
}

/// Write `slot`'s level-`l` upper record (of those from `upper_ref`)
/// with an empty list.
pub(super) fn put_empty_upper(coll: &Collection, txn: &mut Txn<'_>, slot: u32, l: u8, upper_ref: u32) -> Result<()> {
    let mut rec = vec![0u8; coll.upper_stride()];
    let mut u = UpperRecord::new_zeroed();
    u.u_slot.set(slot);
    u.u_level = l;
    u.u_flags = 1;
    rec[..16].copy_from_slice(u.as_bytes());
    coll.put_upper(txn, upper_ref + u32::from(l) - 1, &mut rec)
}

fn set_entry(coll: &mut Collection, slot: u32, level: u8) {
    coll.header.ch_entry_slot.set(slot.into());
    coll.header.ch_max_level.set(level.into());
}

/// The neighbours a new node gets at each of its levels (read-only phase).
fn plan_links(coll: &Collection, txn: &Txn<'_>, slot: u32, level: u8, stored: &[u8]) -> Result<Vec<(u8, Vec<u32>)>> {
    let mut scorer = Scorer::from_stored(coll.space, stored.to_vec());
    let mut walk = Walk::for_build(coll, txn, build_budget(coll));
    let entry = coll.header.ch_entry_slot.get() as u32;
    let top = coll.header.ch_max_level.get().min(MAX_LEVEL.into()) as u8;
    let mut eps = vec![if top > level {
        walk.descend(&mut scorer, entry, top, level + 1)?
    } else {
        let n = coll.peek(txn, entry)?;
        (Dist(scorer.to(n.vector())), entry)
    }];
    let ef = usize::from(coll.record.ef_construction);
    let mut plan = Vec::new();
    for l in (0..=level.min(top)).rev() {
        let mut found = walk.layer(&mut scorer, &eps, ef, l, &mut LiveOnly)?;
        found.retain(|c| c.1 != slot);
        let mut nodes = Vec::with_capacity(found.len());
        for c in &found {
            // Through the walk's view: straight from the map unless the
            // record's block has a private copy.
            nodes.push(walk.peek(c.1)?);
        }
        let vectors: Vec<&[u8]> = nodes.iter().map(|n| n.vector()).collect();
        // A new node picks M neighbours at every level, as hnswlib does;
        // its level-0 list grows towards 2M through back-edges only.
        plan.push((l, select(&mut scorer, &found, &vectors, usize::from(coll.record.m))));
        if !found.is_empty() {
            eps = found;
        }
    }
    Ok(plan)
}

/// Remove every edge into `d` that `d`'s own lists reveal, re-selecting
/// each such neighbour's list from its old list and `d`'s (§9.8 step 2).
pub fn repair_around(coll: &Collection, txn: &mut Txn<'_>, d: u32) -> Result<()> {
    let level = coll.node(txn, d)?.level();
    for l in 0..=level {
        let around = list_of(coll, txn, d, l)?;
        for &v in &around {
            let vn = coll.peek(txn, v)?;
            if vn.header().n_flags == 0 || vn.level() < l {
                continue;
            }
            let mut pool = list_of(coll, txn, v, l)?;
            if !pool.contains(&d) {
                continue;
            }
            pool.retain(|&x| x != d);
            pool.extend(around.iter().copied().filter(|&x| x != d));
            reselect(coll, txn, v, l, &pool)?;
        }
        // `d` may now be listed by no one, and with it the nodes only `d`
        // reached: each keeps an edge from someone else (§9.2).
        for &x in &around {
            if x != d {
                connect::keep_linked(coll, txn, x, l, d)?;
            }
        }
    }
    Ok(())
}

/// Detach the vector at `d`: mark it deleted, repair its neighbours, move
/// the entry point if needed (§9.8 steps 1-2). The slot is not reused.
pub fn delete(coll: &mut Collection, txn: &mut Txn<'_>, d: u32) -> Result<()> {
    let mut rec = coll.node(txn, d)?.bytes.into_owned();
    if rec[5] != NODE_LIVE {
        return Err(FsError::NoData);
    }
    rec[5] = NODE_DELETED;
    coll.put_record(txn, d, &mut rec)?;
    coll.header.ch_count.set(coll.count().saturating_sub(1));
    repair_around(coll, txn, d)?;
    if coll.header.ch_entry_slot.get() == u64::from(d) {
        pick_entry(coll, txn)?;
    }
    coll.store_header(txn)
}

/// A live node of the highest level present becomes the entry point (a
/// scan of the slots: rare, only when the entry point itself goes).
fn pick_entry(coll: &mut Collection, txn: &Txn<'_>) -> Result<()> {
    let mut best: Option<(u8, u32)> = None;
    if coll.count() > 0 {
        for s in 0..coll.slots() as u32 {
            let n = coll.peek(txn, s)?;
            if n.is_live() && best.is_none_or(|b| n.level() > b.0) {
                best = Some((n.level(), s));
            }
        }
    }
    let (level, slot) = best.unwrap_or((0, 0));
    if best.is_none() {
        coll.header.ch_count.set(0);
    }
    set_entry(coll, slot, level);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_distribution() {
        let n = 100_000u32;
        let above0 = (0..n).filter(|&s| draw_level(1, s, 16) > 0).count() as f64 / f64::from(n);
        assert!((above0 - 1.0 / 16.0).abs() < 0.01, "P(level > 0) = {above0}");
        assert!((0..n).all(|s| draw_level(1, s, 16) <= MAX_LEVEL));
        assert_eq!(draw_level(3, 7, 16), draw_level(3, 7, 16));
    }
}
