//! The owner relation between slots and files (§8.7-8.8), from both sides: a
//! slot's n_owner_ino against the file's references, and each file's
//! references (`i_vector_*`, `vexfs.` xattrs) against the slots they name.

use super::{damage, Env, Graph};
use crate::check::Report;
use crate::format::inode::{FileType, VECTOR_FL};
use crate::format::vector::{CollectionRecord, NODE_LIVE};
use crate::fs::inode::{self as ino_io, InodeBuf};
use crate::fs::txn::Txn;
use crate::vector::refs::{self, VEXFS_INDEX};
use crate::vector::store::Collection;

impl Graph<'_> {
    /// §8.7 from the slot side: a live slot's owner refers to it, a deleted
    /// slot's owner no longer does.
    pub(super) fn check_owners(&self, report: &mut Report) {
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
pub(super) fn check_inode(env: &Env<'_>, b: &InodeBuf, colls: &[Collection], report: &mut Report) {
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
