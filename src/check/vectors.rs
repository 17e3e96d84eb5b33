//! Collections beyond their headers (format-spec/08 §8.4-8.8, 09 §9.2-9.9):
//! counters and entry point, the free-slot chain, every neighbour list,
//! reachability from the entry point, and the owner relation between slots
//! and files, checked from both sides.
//!
//! Memory is proportional to one collection (two bytes and a bit or two
//! per slot, plus a BFS queue); the search path never does this.

use super::tree::{BitSet, State};
use super::{Kind, Report};
use crate::format::features::{RO_COMPAT_HNSW, RO_COMPAT_VECTORS};
use crate::format::inode::{FileType, VECTOR_FL};
use crate::format::vector::{parse_collection_header, CollectionRecord, NODE_DELETED, NODE_LIVE};
use crate::format::BLOCK_SIZE_U64;
use crate::fs::inode::{self as ino_io, InodeBuf};
use crate::fs::txn::Txn;
use crate::image::Image;
use crate::layout::Geometry;
use crate::vector::build::max_degree;
use crate::vector::search::{Budget, Walk};
use crate::vector::store::{Collection, Node};
use crate::vector::{catalog_io, refs};
use std::collections::VecDeque;

/// `n_flags` noted for a slot whose record failed validation: the failure
/// is reported once, and edges to the slot are not judged again.
const UNREADABLE: u8 = 0xff;

/// Unreachable live slots listed one by one per collection. Why: one lost
/// link can strand most of a graph; a few examples and a count say enough
/// without pushing other problems past `MAX_PROBLEMS`.
const MAX_UNREACHABLE_LISTED: usize = 16;

use crate::vector::refs::VEXFS_INDEX;

/// What the scan learned about one slot.
#[derive(Clone, Copy)]
struct Slot {
    flags: u8,
    level: u8,
}

impl Slot {
    fn new(flags: u8, level: u8) -> Slot {
        Slot { flags, level }
    }

    /// Live and deleted nodes have a vector and lists that route (§9.7).
    fn routes(self) -> bool {
        matches!(self.flags, NODE_LIVE | NODE_DELETED)
    }
}

/// What every check reads: the image through a read-only transaction, the
/// inode scan and the catalogue.
struct Env<'a> {
    g: &'a Geometry,
    txn: Txn<'a>,
    state: &'a State<'a>,
    records: Vec<CollectionRecord>,
}

/// Check every collection's graph and slots, then every inode's references.
pub fn check(img: &Image, state: &State<'_>, report: &mut Report) {
    let g = img.geometry();
    if !g.features.has_ro_compat(RO_COMPAT_VECTORS) {
        return;
    }
    let txn = Txn::read_only(img.file().bytes(), g.blocks_count);
    // A damaged catalogue was reported with the hidden files.
    let Ok(Some(cat)) = catalog_io::read(&txn, g) else {
        return;
    };
    let env = Env {
        g,
        txn,
        state,
        records: cat.records,
    };
    let colls: Vec<Collection> = env.records.iter().filter_map(|r| open(img, &env, r, report)).collect();
    for coll in &colls {
        let slots = Vec::new();
        Graph { env: &env, coll, slots }.run(report);
    }
    for n in (1..=g.inodes_count).filter(|&n| state.valid.get(n.into())) {
        let Some(b) = g.inode_no(n).and_then(|i| ino_io::load(&env.txn, g, i).ok()) else {
            continue;
        };
        check_inode(&env, &b, &colls, report);
    }
}

/// Open a collection whose header parsed (header damage was reported with
/// the hidden files) and whose node records lie within the node file.
fn open(img: &Image, env: &Env<'_>, rec: &CollectionRecord, report: &mut Report) -> Option<Collection> {
    let ino = env.g.inode_no(rec.node_ino)?;
    env.state.valid.get(ino.get().into()).then_some(())?;
    let header = img.read_file(ino, 0, 88).ok()?;
    parse_collection_header(&header, 0, rec.node_ino, env.g.csum_seed).ok()?;
    let loc = format!("collection '{}'", rec.name);
    match Collection::load(&env.txn, env.g, rec) {
        Ok(c) => within_files(env, &c, &loc, report).then_some(c),
        Err(e) => {
            let kind = Kind::CollectionDamage {
                collection: rec.name.clone(),
            };
            report.add_kind(loc, format!("graph not checked: {e}"), kind);
            None
        }
    }
}

/// End of record `n - 1` in a file of `stride`-byte records starting at
/// logical block `first`, placed as §8.5.2 and §8.6 say (0 when `n` = 0).
fn records_end(n: u64, stride: u64, first: u64) -> u64 {
    let Some(last) = n.checked_sub(1) else { return 0 };
    if stride <= BLOCK_SIZE_U64 {
        let per = BLOCK_SIZE_U64 / stride;
        (first + last / per) * BLOCK_SIZE_U64 + (last % per) * stride + stride
    } else {
        (first + last * (stride / BLOCK_SIZE_U64)) * BLOCK_SIZE_U64 + stride
    }
}

/// §8.8: node and upper records beyond `i_size`. Returns false when the
/// node records cannot be walked.
fn within_files(env: &Env<'_>, c: &Collection, loc: &str, report: &mut Report) -> bool {
    let size = |ino| ino_io::load(&env.txn, env.g, ino).map_or(0, |b| b.size());
    let (slots, uppers) = (c.slots(), u64::from(c.header.ch_upper_records.get()));
    let (end, have) = (records_end(slots, c.geo.stride.into(), 1), size(c.node_ino));
    if end > have {
        let msg = format!("ch_slots {slots} end at byte {end} of the node file, past i_size {have}");
        report.add_kind(loc, msg, damage(c));
        return false;
    }
    // Collection::load checks ch_upper_stride only when there is an upper file.
    let Some(upper) = c.upper_ino else {
        if uppers > 0 {
            report.add_kind(
                loc,
                format!("ch_upper_records is {uppers} but ch_upper_ino is 0"),
                damage(c),
            );
        }
        return true;
    };
    let (end, have) = (records_end(uppers, c.upper_stride() as u64, 0), size(upper));
    if end > have {
        let msg = format!("ch_upper_records {uppers} end at byte {end} of the upper file, past i_size {have}");
        report.add_kind(loc, msg, damage(c));
    }
    true
}

/// Damage to collection `c` beyond its graph.
fn damage(c: &Collection) -> Kind {
    Kind::CollectionDamage {
        collection: c.record.name.clone(),
    }
}

/// One collection being checked.
struct Graph<'e> {
    env: &'e Env<'e>,
    coll: &'e Collection,
    /// Indexed by slot: flags and level, or `UNREADABLE`.
    slots: Vec<Slot>,
}

impl Graph<'_> {
    fn run(&mut self, report: &mut Report) {
        self.scan(report);
        self.check_header(report);
        self.check_free_chain(report);
        if self.env.g.features.has_ro_compat(RO_COMPAT_HNSW) {
            self.check_lists(report);
            self.check_reachable(report);
        }
        self.check_owners(report);
    }

    /// A problem of the graph alone: rebuilding it repairs it.
    fn graph(&self) -> Kind {
        Kind::Graph {
            collection: self.coll.record.name.clone(),
        }
    }

    /// Damage beyond the graph: the collection is not rebuilt.
    fn damage(&self) -> Kind {
        Kind::CollectionDamage {
            collection: self.coll.record.name.clone(),
        }
    }

    fn loc(&self) -> String {
        format!("collection '{}'", self.coll.record.name)
    }

    fn at(&self, s: u32) -> String {
        format!("collection '{}', slot {s}", self.coll.record.name)
    }

    fn get(&self, s: u32) -> Slot {
        self.slots[s as usize]
    }

    /// Slots that route, in order.
    fn routing(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.slots.len() as u32).filter(|&s| self.get(s).routes())
    }

    /// Routing slots with their records (a record that fails was reported by `scan`).
    fn routing_nodes(&self) -> impl Iterator<Item = (u32, Node<'_>)> + '_ {
        self.routing()
            .filter_map(|s| Some((s, self.coll.node(&self.env.txn, s).ok()?)))
    }

    /// Validate every record (`Collection::node`) and note its flags and level.
    fn scan(&mut self, report: &mut Report) {
        let uppers = u64::from(self.coll.header.ch_upper_records.get());
        // ch_slots < 2^32 (Collection::load) and within the file (within_files).
        for s in 0..self.coll.slots() as u32 {
            let slot = match self.coll.node(&self.env.txn, s) {
                Ok(n) => {
                    let (h, level) = (n.header(), n.level());
                    let r = h.n_upper_ref.get();
                    if h.n_flags != 0 && level > 0 && u64::from(r) + u64::from(level) > uppers {
                        let msg = format!("n_upper_ref {r} + n_level {level} > ch_upper_records {uppers}");
                        report.add_kind(self.at(s), msg, self.graph());
                    }
                    Slot::new(h.n_flags, level)
                }
                Err(e) => {
                    report.add_err_kind(self.at(s), &e, self.damage());
                    Slot::new(UNREADABLE, 0)
                }
            };
            self.slots.push(slot);
        }
    }

    /// ch_count, the entry point and ch_max_level against the slots (§9.2, §9.9).
    fn check_header(&self, report: &mut Report) {
        let h = &self.coll.header;
        let live = || self.slots.iter().filter(|x| x.flags == NODE_LIVE);
        let (count, n_live) = (h.ch_count.get(), live().count() as u64);
        if count != n_live {
            let msg = format!("ch_count is {count} but {n_live} slots are NODE_LIVE");
            report.add_kind(self.loc(), msg, self.graph());
        }
        let (entry, max) = (h.ch_entry_slot.get(), h.ch_max_level.get());
        if count == 0 {
            if entry != 0 || max != 0 {
                let msg = format!("ch_count is 0 but ch_entry_slot is {entry} and ch_max_level {max} (should be 0)");
                report.add_kind(self.loc(), msg, self.graph());
            }
            return;
        }
        // Collection::load rejects ch_entry_slot >= ch_slots when ch_count > 0.
        let e = self.get(entry as u32);
        if e.flags != NODE_LIVE && e.flags != UNREADABLE {
            let msg = format!("ch_entry_slot, but n_flags is {:#x}, not NODE_LIVE", e.flags);
            report.add_kind(self.at(entry as u32), msg, self.graph());
        } else if e.flags == NODE_LIVE && u32::from(e.level) != max {
            let msg = format!("ch_entry_slot with n_level {} but ch_max_level is {max}", e.level);
            report.add_kind(self.at(entry as u32), msg, self.graph());
        }
        if let Some(top) = live().map(|x| x.level).max().filter(|&t| u32::from(t) != max) {
            let msg = format!("ch_max_level is {max} but the highest live n_level is {top}");
            report.add_kind(self.loc(), msg, self.graph());
        }
    }

    /// The free chain (§8.5.4): members free, no cycle, and every free slot on it.
    fn check_free_chain(&self, report: &mut Report) {
        let mut on_chain = BitSet::new(self.slots.len() as u64);
        if !self.walk_free_chain(&mut on_chain, report) {
            return; // a broken chain would make every later free slot look lost
        }
        for s in (0..self.slots.len() as u32).filter(|&s| self.get(s).flags == 0 && !on_chain.get(s.into())) {
            let msg = "n_flags 0 (free) but not on the free-slot chain (ch_free_head)";
            report.add_kind(self.at(s), msg, self.graph());
        }
    }

    /// Walk from ch_free_head; returns whether the chain ended cleanly.
    fn walk_free_chain(&self, on_chain: &mut BitSet, report: &mut Report) -> bool {
        let (mut next, mut from) = (self.coll.header.ch_free_head.get(), self.loc() + ", ch_free_head");
        // At most ch_slots steps: each step sets a new bit of `on_chain` or
        // stops (a slot seen twice is a cycle).
        while next != 0 {
            if next > self.slots.len() as u64 {
                report.add_kind(
                    from,
                    format!("is {next}, past ch_slots {}", self.slots.len()),
                    self.graph(),
                );
                return false;
            }
            let s = (next - 1) as u32;
            if on_chain.set(s.into()) {
                report.add_kind(
                    from,
                    format!("is {next}: slot {s} is already on the chain (a cycle)"),
                    self.graph(),
                );
                return false;
            }
            let flags = self.get(s).flags;
            if flags != 0 {
                if flags != UNREADABLE {
                    report.add_kind(
                        self.at(s),
                        format!("on the free-slot chain but n_flags is {flags:#x}"),
                        self.graph(),
                    );
                }
                return false;
            }
            let Ok(node) = self.coll.node(&self.env.txn, s) else {
                return false;
            };
            next = node.header().n_next_free.get().into();
            from = self.at(s) + ", n_next_free";
        }
        true
    }

    /// Every list of every live or deleted node decodes and names sensible ids.
    fn check_lists(&self, report: &mut Report) {
        let walk = Walk::new(self.coll, &self.env.txn, Budget::default());
        let mut ids = Vec::new();
        for (s, node) in self.routing_nodes() {
            for level in 0..=node.level() {
                match walk.neighbours(s, &node, level, &mut ids) {
                    Ok(()) => self.check_list(s, level, &ids, report),
                    Err(e) => report.add_kind(self.at(s), format!("level-{level} list: {e}"), self.graph()),
                }
            }
        }
    }

    /// The degree bound, and the edges §9.7 calls corruption (self, free,
    /// too low a level).
    fn check_list(&self, s: u32, level: u8, ids: &[u32], report: &mut Report) {
        let max = max_degree(self.coll, level);
        if ids.len() > max {
            let bound = if level == 0 { "2*M" } else { "M" };
            let msg = format!("level-{level} list holds {} ids, more than {bound} = {max}", ids.len());
            report.add_kind(self.at(s), msg, self.graph());
        }
        for &t in ids {
            let to = self.get(t); // the decoder rejects ids >= ch_slots
            let what = if t == s {
                "names the node itself".to_string()
            } else if to.flags == 0 {
                format!("names slot {t}, which is free (n_flags 0)")
            } else if to.flags != UNREADABLE && to.level < level {
                format!("names slot {t}, whose n_level {} is below {level}", to.level)
            } else {
                continue;
            };
            report.add_kind(self.at(s), format!("level-{level} list {what}"), self.graph());
        }
    }

    /// Every live node is reachable from the entry point along level-0
    /// lists (every node is on level 0), routing through deleted nodes.
    fn check_reachable(&self, report: &mut Report) {
        let entry = self.coll.header.ch_entry_slot.get();
        if self.coll.count() == 0 || !self.slots.get(entry as usize).is_some_and(|x| x.routes()) {
            return; // nothing to reach, or the entry point was reported
        }
        let seen = self.reach_from(entry as u32);
        let stranded: Vec<u32> = self
            .routing()
            .filter(|&s| self.get(s).flags == NODE_LIVE && !seen.get(s.into()))
            .collect();
        for &s in stranded.iter().take(MAX_UNREACHABLE_LISTED) {
            let msg = format!("NODE_LIVE but not reachable from ch_entry_slot {entry} along level-0 lists");
            report.add_kind(self.at(s), msg, self.graph());
        }
        if let Some(more) = stranded.len().checked_sub(MAX_UNREACHABLE_LISTED).filter(|&m| m > 0) {
            let msg = format!("{more} more live slots are not reachable from ch_entry_slot");
            report.add_kind(self.loc(), msg, self.graph());
        }
    }

    /// Breadth-first over level-0 lists; the set of slots reached.
    fn reach_from(&self, entry: u32) -> BitSet {
        let walk = Walk::new(self.coll, &self.env.txn, Budget::default());
        let mut seen = BitSet::new(self.slots.len() as u64);
        seen.set(entry.into());
        let mut queue = VecDeque::from([entry]);
        let mut ids = Vec::new();
        // Each slot is queued at most once (its `seen` bit): at most
        // ch_slots expansions.
        while let Some(s) = queue.pop_front() {
            let Ok(node) = self.coll.node(&self.env.txn, s) else {
                continue;
            };
            // A list that fails to decode was reported by check_lists; the
            // ids decoded before the error still route.
            let _ = walk.neighbours(s, &node, 0, &mut ids);
            for &t in &ids {
                if self.get(t).routes() && !seen.set(t.into()) {
                    queue.push_back(t);
                }
            }
        }
        seen
    }

    /// §8.7 from the slot side: a live slot's owner refers to it, a deleted
    /// slot's owner no longer does.
    fn check_owners(&self, report: &mut Report) {
        for (s, node) in self.routing_nodes() {
            if let Some(p) = self.owner_problem(s, node.is_live(), node.header().n_owner_ino.get()) {
                report.add_kind(self.at(s), p, self.damage());
            }
        }
    }

    fn owner_problem(&self, s: u32, live: bool, owner: u32) -> Option<String> {
        let Env { g, txn, state, .. } = self.env;
        let Some(ino) = g.inode_no(owner).filter(|_| owner != 0) else {
            return Some(format!("n_owner_ino {owner} is outside 1..={}", g.inodes_count));
        };
        if !state.valid.get(owner.into()) || state.types[owner as usize] != FileType::Regular.dirent_code() {
            return live.then(|| format!("n_owner_ino {owner} is not an in-use regular file"));
        }
        // An unreadable inode or xattr block is reported from the inode side.
        let b = ino_io::load(txn, g, ino).ok()?;
        let refs = refs::all(txn, g, &b, &self.env.records).ok()?;
        let refers = refs.contains(&(self.coll.record.id, s));
        match (live, refers) {
            (true, false) => Some(format!("NODE_LIVE but n_owner_ino {owner} does not refer to it")),
            (false, true) => Some(format!("NODE_DELETED but n_owner_ino {owner} still refers to it")),
            _ => None,
        }
    }
}

/// One stored reference: the field that holds it, the collection, the slot.
type Reference<'r> = (String, &'r CollectionRecord, u64);

/// The inode's references as stored (§8.7), and how many entries there are
/// counting dangling ones, which are reported (§8.8).
fn stored_refs<'e>(env: &'e Env<'_>, b: &InodeBuf, report: &mut Report) -> (Vec<Reference<'e>>, usize) {
    let loc = format!("inode {}", b.ino.get());
    let (mut out, mut stored) = (Vec::new(), 0);
    if let Some(e) = b.ext() {
        let (c, slot) = (e.i_vector_coll.get(), e.i_vector_slot.get());
        match env.records.iter().find(|r| u64::from(r.id) + 1 == u64::from(c)) {
            Some(r) => out.push(("i_vector_slot".to_string(), r, slot)),
            None if c != 0 => report.add(&loc, format!("i_vector_coll {c} names no collection")),
            None if slot != 0 => report.add(&loc, format!("i_vector_slot is {slot} but i_vector_coll is 0")),
            None => {}
        }
        stored += usize::from(c != 0);
    }
    let attrs = crate::fs::xattr::load_all(&env.txn, env.g, b).unwrap_or_else(|e| {
        report.add_err(&loc, &e);
        Vec::new()
    });
    for (_, name, value) in attrs.iter().filter(|a| a.0 == VEXFS_INDEX) {
        stored += 1;
        let shown = String::from_utf8_lossy(name);
        let rec = env.records.iter().find(|r| r.name.as_bytes() == name.as_slice());
        match (rec, value.len()) {
            (Some(r), 8) => {
                let slot = u64::from_le_bytes(value[..8].try_into().unwrap_or_default());
                out.push((format!("vexfs.{shown} xattr"), r, slot));
            }
            (Some(_), n) => report.add(&loc, format!("vexfs.{shown} xattr value is {n} bytes, not 8")),
            (None, _) => report.add(&loc, format!("vexfs.{shown} xattr names no collection")),
        }
    }
    (out, stored)
}

/// §8.7-8.8 from the inode side: VECTOR_FL, the file type, duplicates, and
/// each reference's slot.
fn check_inode(env: &Env<'_>, b: &InodeBuf, colls: &[Collection], report: &mut Report) {
    let n = b.ino.get();
    let loc = format!("inode {n}");
    let (found, stored) = stored_refs(env, b, report);
    let flagged = b.base().flags() & VECTOR_FL != 0;
    if flagged && stored == 0 {
        report.add(&loc, "VECTOR_FL is set but the inode has no vector attachment");
    } else if !flagged && stored > 0 {
        report.add(&loc, format!("{stored} vector attachment(s) but VECTOR_FL is clear"));
    }
    if stored > 0 && b.file_type() != Some(FileType::Regular) {
        report.add(&loc, "has vector attachments but is not a regular file");
    }
    for (i, (field, rec, slot)) in found.iter().enumerate() {
        if found[..i].iter().any(|r| r.1.id == rec.id) {
            let msg = format!("{field}: a second reference to collection '{}'", rec.name);
            report.add(&loc, msg);
        }
        // A collection that did not open was reported on its own.
        let Some(coll) = colls.iter().find(|c| c.record.id == rec.id) else {
            continue;
        };
        if let Some(p) = reference_problem(&env.txn, coll, n, *slot) {
            report.add_kind(&loc, format!("{field}: {p}"), damage(coll));
        }
    }
}

/// A reference must name a live slot whose n_owner_ino is the inode.
fn reference_problem(txn: &Txn<'_>, coll: &Collection, n: u32, slot: u64) -> Option<String> {
    let at = format!("slot {slot} of collection '{}'", coll.record.name);
    if slot >= coll.slots() {
        return Some(format!("{at} is past ch_slots {}", coll.slots()));
    }
    // A record that fails validation was reported with its collection.
    let node = coll.node(txn, slot as u32).ok()?;
    let (flags, owner) = (node.header().n_flags, node.header().n_owner_ino.get());
    if flags != NODE_LIVE {
        Some(format!("{at} has n_flags {flags:#x}, not NODE_LIVE"))
    } else if owner != n {
        Some(format!("{at} has n_owner_ino {owner}"))
    } else {
        None
    }
}
