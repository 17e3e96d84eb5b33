//! Rebuilding a collection's graph (`vexctl rebuild`): every live vector
//! is inserted again, at the same slot, into new node and upper files;
//! deleted slots become free (format-spec/08 §8.5.4) and are reused by
//! later inserts. The new files sit on the orphan chain while they are
//! built, in batches of transactions, so a crash leaves the old graph in
//! place and the next mount frees the partial one; one last transaction
//! swaps them in. Slots keep their numbers, so no file's reference moves.

use super::api::write_empty_header;
use super::build;
use super::cache::find;
use super::catalog_io;
use super::files::create_hidden;
use super::store::Collection;
use crate::error::{FsError, Result};
use crate::format::inode::InodeNo;
use crate::format::vector::{CollectionRecord, NodeLayout};
use crate::fs::core::Fs;
use crate::fs::inode as ino_io;
use crate::fs::lifecycle::{add_orphan, destroy, remove_orphan};
use crate::fs::txn::Txn;
use crate::layout::Geometry;

/// Slots copied per transaction. Why: one insert dirties a few dozen
/// blocks; 64 keeps a transaction well under the journal's half.
const BATCH: u32 = 64;

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub live: u64,
    pub freed: u64,
}

/// A new hidden file, unlinked and on the orphan chain until the swap.
pub(super) fn orphan_file(txn: &mut Txn<'_>, g: &Geometry) -> Result<InodeNo> {
    let ino = create_hidden(txn, g)?;
    let mut b = ino_io::load(txn, g, ino)?;
    b.set_links(0);
    ino_io::store(txn, g, &b)?;
    add_orphan(txn, g, &mut b)?;
    Ok(ino)
}

/// New, empty node and upper files for collection `old`, on the orphan
/// chain: `old`'s record naming the new node file, and the upper file.
/// `unjournaled`: for files built outside the journal (see
/// [`write_empty_header`]).
pub(super) fn new_files(
    txn: &mut Txn<'_>,
    g: &Geometry,
    old: &Collection,
    unjournaled: bool,
) -> Result<(CollectionRecord, InodeNo)> {
    // A packed collection keeps the list bytes it was created with.
    let list_bytes = (old.geo.layout == NodeLayout::Packed).then_some(old.geo.adj_capacity);
    let (node, upper) = (orphan_file(txn, g)?, orphan_file(txn, g)?);
    let new_rec = CollectionRecord {
        node_ino: node.get(),
        ..old.record.clone()
    };
    write_empty_header(txn, g, &new_rec, (upper.get(), list_bytes), unjournaled)?;
    Ok((new_rec, upper))
}

/// Link a rebuilt file for good.
fn adopt(txn: &mut Txn<'_>, g: &Geometry, ino: InodeNo) -> Result<()> {
    remove_orphan(txn, g, ino)?;
    let mut b = ino_io::load(txn, g, ino)?;
    b.set_links(1);
    if let Some(e) = b.ext_mut() {
        e.i_next_orphan.set(0);
    }
    ino_io::store(txn, g, &b)
}

/// Make `new_rec` (its node file, and `new_upper`) collection `name`'s:
/// the new files adopted, the old ones freed, the catalogue rewritten.
pub(super) fn swap_in(
    txn: &mut Txn<'_>,
    g: &Geometry,
    name: &str,
    new_rec: &CollectionRecord,
    new_upper: InodeNo,
) -> Result<()> {
    let cat = catalog_io::require(txn, g)?;
    let old = Collection::load(txn, g, find(&cat, name)?)?;
    for ino in [g.inode_no(new_rec.node_ino), Some(new_upper)].into_iter().flatten() {
        adopt(txn, g, ino)?;
    }
    for ino in [Some(old.node_ino), old.upper_ino].into_iter().flatten() {
        let b = ino_io::load(txn, g, ino)?;
        destroy(txn, g, &b)?;
    }
    let records: Vec<_> = cat
        .records
        .iter()
        .map(|r| if r.name == name { new_rec.clone() } else { r.clone() })
        .collect();
    catalog_io::write(txn, g, &cat, &records, cat.next_id)
}

/// Copy slots `from..to` of `old` into `new` (live ones reinserted,
/// others freed).
fn copy_batch(
    txn: &mut Txn<'_>,
    g: &Geometry,
    old: &Collection,
    new: &mut Collection,
    from: u32,
    to: u32,
) -> Result<u64> {
    let mut live = 0;
    for s in from..to {
        let slot = new.append_slot(txn, g)?;
        if slot != s {
            return Err(FsError::Invalid(format!("rebuild: slot {slot} appended, {s} expected")));
        }
        let node = old.node(txn, s)?;
        if node.is_live() {
            let (owner, vector) = (node.header().n_owner_ino.get(), node.vector().to_vec());
            build::insert(new, txn, g, s, owner, &vector, None)?;
            live += 1;
        } else {
            new.free_slot(txn, s)?;
        }
    }
    new.store_header(txn)?;
    Ok(live)
}

impl Fs {
    /// Free the unfinished new files now rather than at the next mount
    /// (best effort: if this fails too, the mount's orphan pass does it).
    pub(super) fn discard_orphans(&self, inos: &[u32]) {
        let _ = self.write(|txn, g| {
            for ino in inos.iter().filter_map(|&n| g.inode_no(n)) {
                remove_orphan(txn, g, ino)?;
                let b = ino_io::load(txn, g, ino)?;
                destroy(txn, g, &b)?;
            }
            Ok(())
        });
    }

    /// Rebuild collection `name`'s graph; `progress(done, total)` after
    /// each batch.
    pub fn rebuild_collection(&self, name: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<RebuildReport> {
        let (rec, new_rec, new_upper, slots) = self.write(|txn, g| {
            let cat = catalog_io::require(txn, g)?;
            let rec = find(&cat, name)?.clone();
            let old = Collection::load(txn, g, &rec)?;
            let (new_rec, upper) = new_files(txn, g, &old, false)?;
            Ok((rec, new_rec, upper, old.slots()))
        })?;
        let mut report = RebuildReport { live: 0, freed: 0 };
        let mut next = 0u32;
        while u64::from(next) < slots {
            let end = (u64::from(next) + u64::from(BATCH)).min(slots) as u32;
            let live = self.write(|txn, g| {
                let old = Collection::load(txn, g, &rec)?;
                let mut new = Collection::load(txn, g, &new_rec)?;
                copy_batch(txn, g, &old, &mut new, next, end)
            })?;
            report.live += live;
            report.freed += u64::from(end - next) - live;
            next = end;
            progress(next.into(), slots);
        }
        self.write(|txn, g| swap_in(txn, g, name, &new_rec, new_upper))?;
        // Reinsertion keeps reachability the writers' local way; one pass
        // links any island it left (format-spec/09 §9.2).
        self.reconnect_collection(name)?;
        Ok(report)
    }
}
