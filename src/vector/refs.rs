//! How a file points at its vectors (format-spec/08 §8.7): the first
//! attachment in `i_vector_coll`/`i_vector_slot`, further ones as `vexfs.`
//! xattr entries (name = collection name, value = slot as le64), and
//! `VECTOR_FL` set exactly when there is at least one.

use crate::error::Result;
use crate::format::inode::VECTOR_FL;
use crate::format::vector::CollectionRecord;
use crate::fs::inode::InodeBuf;
use crate::fs::txn::Txn;
use crate::fs::xattr::{load_all, store_all};
use crate::layout::Geometry;

/// Name index of the internal `vexfs.` xattr namespace (chapter 7).
pub const VEXFS_INDEX: u8 = 8;

/// The slot in a `vexfs.` entry's le64 value (None if not 8 bytes or
/// past 32 bits: dangling).
fn slot_value(v: &[u8]) -> Option<u32> {
    u32::try_from(u64::from_le_bytes(v.try_into().ok()?)).ok()
}

/// The slot `b` has in collection `rec`, if attached.
pub fn get(txn: &Txn<'_>, g: &Geometry, b: &InodeBuf, rec: &CollectionRecord) -> Result<Option<u32>> {
    if b.base().flags() & VECTOR_FL == 0 {
        return Ok(None);
    }
    if let Some(e) = b.ext() {
        if e.i_vector_coll.get() == rec.id + 1 {
            // A slot past 32 bits is dangling (§8.8), not slot mod 2^32.
            return Ok(u32::try_from(e.i_vector_slot.get()).ok());
        }
    }
    Ok(load_all(txn, g, b)?
        .into_iter()
        .find(|(i, n, v)| *i == VEXFS_INDEX && n == rec.name.as_bytes() && v.len() == 8)
        .and_then(|(_, _, v)| slot_value(&v)))
}

/// Every (collection id, slot) attached to `b`; entries naming no
/// collection in `records` are dangling and skipped (§8.8).
pub fn all(txn: &Txn<'_>, g: &Geometry, b: &InodeBuf, records: &[CollectionRecord]) -> Result<Vec<(u32, u32)>> {
    let mut out = Vec::new();
    if b.base().flags() & VECTOR_FL == 0 {
        return Ok(out);
    }
    if let Some(e) = b.ext() {
        let c = e.i_vector_coll.get();
        if let (true, Ok(slot)) = (
            c != 0 && records.iter().any(|r| r.id + 1 == c),
            u32::try_from(e.i_vector_slot.get()),
        ) {
            out.push((c - 1, slot));
        }
    }
    for (i, n, v) in load_all(txn, g, b)? {
        if i != VEXFS_INDEX || v.len() != 8 {
            continue;
        }
        if let (Some(r), Some(slot)) = (records.iter().find(|r| r.name.as_bytes() == n), slot_value(&v)) {
            out.push((r.id, slot));
        }
    }
    Ok(out)
}

/// Record that `b` has `slot` in `rec` (the caller stores the inode).
pub fn set(txn: &mut Txn<'_>, g: &Geometry, b: &mut InodeBuf, rec: &CollectionRecord, slot: u32) -> Result<()> {
    let inode_free = b
        .ext()
        .is_some_and(|e| e.i_vector_coll.get() == 0 || e.i_vector_coll.get() == rec.id + 1);
    if inode_free {
        if let Some(e) = b.ext_mut() {
            e.i_vector_coll.set(rec.id + 1);
            e.i_vector_slot.set(slot.into());
        }
    } else {
        let mut attrs = load_all(txn, g, b)?;
        attrs.retain(|(i, n, _)| !(*i == VEXFS_INDEX && n == rec.name.as_bytes()));
        attrs.push((
            VEXFS_INDEX,
            rec.name.as_bytes().to_vec(),
            u64::from(slot).to_le_bytes().to_vec(),
        ));
        store_all(txn, g, b, attrs)?;
    }
    let f = b.base().flags();
    b.base_mut().i_flags.set(f | VECTOR_FL);
    Ok(())
}

/// Forget `b`'s attachment to `rec` (the caller stores the inode).
pub fn clear(txn: &mut Txn<'_>, g: &Geometry, b: &mut InodeBuf, rec: &CollectionRecord) -> Result<()> {
    let in_inode = b.ext().is_some_and(|e| e.i_vector_coll.get() == rec.id + 1);
    if in_inode {
        if let Some(e) = b.ext_mut() {
            e.i_vector_coll.set(0);
            e.i_vector_slot.set(0);
        }
    }
    let mut attrs = load_all(txn, g, b)?;
    let before = attrs.len();
    attrs.retain(|(i, n, _)| !(*i == VEXFS_INDEX && n == rec.name.as_bytes()));
    let others = attrs.iter().any(|(i, _, _)| *i == VEXFS_INDEX);
    if attrs.len() != before {
        store_all(txn, g, b, attrs)?;
    }
    let still = others || b.ext().is_some_and(|e| e.i_vector_coll.get() != 0);
    if !still {
        let f = b.base().flags();
        b.base_mut().i_flags.set(f & !VECTOR_FL);
    }
    Ok(())
}
