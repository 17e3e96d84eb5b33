//! Collections beyond their headers (format-spec/08 §8.4-8.8, 09 §9.2-9.9):
//! counters and entry point, the free-slot chain, every neighbour list,
//! reachability from the entry point, and the owner relation between slots
//! and files, checked from both sides.
//!
//! This module opens each collection (its records must lie within the node
//! and upper files) and scans its slots into a [`Graph`]; the checks of the
//! graph live in [`header`] (counters, entry point, free chain), [`edges`]
//! (neighbour lists, reachability) and [`owners`] (slots against files).
//!
//! Memory is proportional to one collection (two bytes and a bit or two
//! per slot, plus a BFS queue); the search path never does this.

mod edges;
mod header;
mod owners;

use super::tree::State;
use super::{Kind, Report};
use crate::format::features::{RO_COMPAT_HNSW, RO_COMPAT_VECTORS};
use crate::format::vector::{parse_collection_header, CollectionRecord, NODE_DELETED, NODE_LIVE};
use crate::format::BLOCK_SIZE_U64;
use crate::fs::inode as ino_io;
use crate::fs::txn::Txn;
use crate::image::Image;
use crate::layout::Geometry;
use crate::vector::catalog_io;
use crate::vector::store::{Collection, Node};
use owners::check_inode;

/// `n_flags` noted for a slot whose record failed validation: the failure
/// is reported once, and edges to the slot are not judged again.
const UNREADABLE: u8 = 0xff;

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
    let (end, have) = (c.slots_end(slots), size(c.node_ino));
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
}
