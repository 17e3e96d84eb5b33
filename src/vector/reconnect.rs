//! A whole-collection pass that links every live node the entry point
//! cannot reach (format-spec/09 §9.2). The writers' own check is local (a
//! node counts as linked when one of its neighbours lists it), so a few
//! nodes can end up listing only each other; fsck reports them, and its
//! repair calls this before falling back to rebuilding the graph, as do a
//! rebuild, an offline import and closing an image whose vectors changed
//! (`Fs::close`). A maintenance pass, not a search: it keeps a bit per
//! slot.

use super::build::{list_of, write_exact};
use super::cache::find;
use super::catalog_io;
use super::connect::linkable;
use super::store::Collection;
use crate::bitset::BitSet;
use crate::error::Result;
use crate::fs::core::Fs;
use crate::fs::txn::Txn;
use std::collections::VecDeque;

/// What [`reconnect`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnected {
    /// Unreachable nodes given an edge from a reachable one.
    pub linked: u64,
    /// Live nodes still unreachable (no reachable neighbour had room).
    pub stranded: u64,
}

/// Mark everything `from` reaches along level-0 lists, routing through
/// deleted nodes as searches do. Bound: each slot is queued at most once.
fn spread(coll: &Collection, txn: &Txn<'_>, reached: &mut BitSet, from: u32) -> Result<()> {
    let mut queue = VecDeque::from([from]);
    reached.set(from.into());
    while let Some(s) = queue.pop_front() {
        for n in list_of(coll, txn, s, 0)? {
            if !reached.set(n.into()) {
                queue.push_back(n);
            }
        }
    }
    Ok(())
}

/// Give every live node the entry point does not reach an edge from a
/// reached node with room: one of its own out-neighbours, or else one of
/// theirs. Each link makes the node's whole island reachable.
pub fn reconnect(coll: &Collection, txn: &mut Txn<'_>) -> Result<Reconnected> {
    let mut done = Reconnected { linked: 0, stranded: 0 };
    if coll.count() == 0 {
        return Ok(done);
    }
    let slots = coll.slots() as u32;
    let mut reached = BitSet::new(slots.into());
    spread(coll, txn, &mut reached, coll.header.ch_entry_slot.get() as u32)?;
    for x in 0..slots {
        if reached.get(x.into()) || !coll.peek(txn, x)?.is_live() {
            continue;
        }
        if link_from_reached(coll, txn, &reached, x)? {
            done.linked += 1;
            spread(coll, txn, &mut reached, x)?;
        } else {
            done.stranded += 1;
        }
    }
    Ok(done)
}

/// Append `x` to the level-0 list of a reached, live node near it that has
/// room. Bound: `x`'s list and each of those nodes' lists, at most
/// max_degree² lists read.
fn link_from_reached(coll: &Collection, txn: &mut Txn<'_>, reached: &BitSet, x: u32) -> Result<bool> {
    let near = list_of(coll, txn, x, 0)?;
    let mut second = Vec::new();
    for round in 0..2 {
        let candidates = if round == 0 {
            near.clone()
        } else {
            std::mem::take(&mut second)
        };
        for y in candidates {
            if y == x || !linkable(coll, txn, y, 0)? {
                continue;
            }
            let mut ids = list_of(coll, txn, y, 0)?;
            if round == 0 {
                second.extend(ids.iter().copied());
            }
            if !reached.get(y.into()) {
                continue;
            }
            ids.push(x);
            if write_exact(coll, txn, y, 0, &mut ids)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

impl Fs {
    /// At unmount, after vectors changed: [`reconnect`] every collection
    /// whose vectors changed since open (or since its last pass), so that
    /// an image leaves the mount (or a bulk build) with every live node
    /// reachable, which fsck checks. A failure is reported, not returned:
    /// the changes themselves are committed, and fsck -y (or a rebuild)
    /// can still link what stays stranded.
    pub(crate) fn reconnect_changed(&self) {
        let changed = self.vectors.take_changed();
        if changed.is_empty() {
            return;
        }
        let listed = match self.read(catalog_io::read) {
            Ok(cat) => cat.map_or_else(Vec::new, |c| c.records.into_iter().map(|r| r.name).collect()),
            Err(e) => {
                eprintln!("vexfs: unmount: reading the collection catalogue for the reconnect pass: {e}");
                // Kept for a retried close.
                changed.iter().for_each(|n| self.vectors.mark_changed(n));
                return;
            }
        };
        // Those named as changed that still exist.
        for name in changed.into_iter().filter(|n| listed.contains(n)) {
            match self.reconnect_collection(&name) {
                Ok(r) if r.stranded > 0 => eprintln!(
                    "vexfs: unmount: collection {name}: linked {} unreachable graph node(s); {} stay unreachable \
                     (fsck.vexfs -y or vexctl rebuild links them)",
                    r.linked, r.stranded
                ),
                Ok(r) if r.linked > 0 => {
                    eprintln!(
                        "vexfs: unmount: collection {name}: linked {} unreachable graph node(s)",
                        r.linked
                    )
                }
                Ok(_) => {}
                Err(e) => eprintln!("vexfs: unmount: collection {name}: reconnect pass failed: {e}"),
            }
        }
    }

    /// [`reconnect`] collection `name`, in one transaction. A change to
    /// it committed after the pass is marked again (writers mark theirs
    /// once made), so the close's pass covers it.
    pub fn reconnect_collection(&self, name: &str) -> Result<Reconnected> {
        self.vectors.clear_changed(name);
        let r = self.write(|txn, g| {
            let cat = catalog_io::require(txn, g)?;
            let coll = Collection::load(txn, g, find(&cat, name)?)?;
            reconnect(&coll, txn)
        });
        if r.is_err() {
            self.vectors.mark_changed(name);
        }
        r
    }
}
