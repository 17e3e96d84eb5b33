//! The vector operations of [`Fs`]: collections, attaching vectors to
//! files, and searching. Each change is one transaction.

use super::build;
use super::cache::find;
use super::catalog_io;
use super::distance::{Scorer, Space};
use super::files::create_hidden;
use super::refs;
use super::store::{space_of, Collection};
use crate::error::{FsError, Result};
use crate::events::{Event, Op};
use crate::format::inode::{FileType, InodeNo};
use crate::format::vector::{
    self as fv, node_geometry, CollectionHeader, CollectionRecord, ElemType, Metric, NodeLayout, MAX_COLLECTIONS,
    MAX_COLLECTION_NAME, MAX_DIM,
};
use crate::fs::core::{live, Fs};
use crate::fs::inode::{self as ino_io, now, InodeBuf, Time};
use crate::fs::perm::{Ctx, MAY_READ, MAY_WRITE};
use crate::fs::txn::Txn;
use crate::layout::Geometry;
use zerocopy::FromZeros;

/// What `create_collection` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionParams {
    pub name: String,
    pub dim: u32,
    pub metric: Metric,
    pub elem: ElemType,
    pub m: u16,
    pub ef_construction: u16,
    /// int8 only: element q means q * scale.
    pub int8_scale: f32,
    /// Bytes of each node's level-0 list area, images with `packed_nodes`
    /// only (format-spec/08 §8.5.1); `None`: `default_list_bytes(m)`.
    pub list_bytes: Option<u32>,
}

impl CollectionParams {
    pub fn new(name: &str, dim: u32, metric: Metric, elem: ElemType) -> Self {
        CollectionParams {
            name: name.into(),
            dim,
            metric,
            elem,
            m: 16,
            ef_construction: 200,
            int8_scale: if elem == ElemType::Int8 { 1.0 / 127.0 } else { 0.0 },
            list_bytes: None,
        }
    }

    fn check(&self) -> Result<()> {
        let n = &self.name;
        if n.is_empty() || n.len() > MAX_COLLECTION_NAME || n.contains(['/', '\0']) {
            return Err(FsError::Invalid(format!(
                "collection name {n:?}: 1-{MAX_COLLECTION_NAME} bytes, no '/' or NUL"
            )));
        }
        if self.dim == 0 || self.dim > MAX_DIM {
            return Err(FsError::Invalid(format!(
                "dimension {} outside 1..={MAX_DIM}",
                self.dim
            )));
        }
        if self.m == 0 || self.m > 256 || self.ef_construction == 0 {
            return Err(FsError::Invalid("M must be 1..=256 and ef_construction >= 1".into()));
        }
        if self.elem == ElemType::Int8 && !(self.int8_scale.is_finite() && self.int8_scale > 0.0) {
            return Err(FsError::Invalid("the int8 scale must be a finite number > 0".into()));
        }
        if let Some(b) = self
            .list_bytes
            .filter(|b| !(fv::MIN_LIST_BYTES..=fv::MAX_LIST_BYTES).contains(b))
        {
            return Err(FsError::Invalid(format!(
                "list bytes {b} outside {}..={}",
                fv::MIN_LIST_BYTES,
                fv::MAX_LIST_BYTES
            )));
        }
        Ok(())
    }
}

/// The event of attaching or detaching `ino`'s vector in `name` at `slot`.
pub(super) fn vector_event(op: Op, ino: InodeNo, name: &str, slot: u32) -> Event {
    Event::new(op, ino.get().into())
        .with_name(0, name.as_bytes())
        .with_aux(slot.into())
}

/// Collection `name` and file `ino` (which the caller may change), opened
/// for a vector change: ENOENT for an unknown collection first, as before.
fn open_for_change(txn: &Txn<'_>, g: &Geometry, ctx: &Ctx, ino: InodeNo, name: &str) -> Result<(InodeBuf, Collection)> {
    let cat = catalog_io::require(txn, g)?;
    let rec = find(&cat, name)?;
    let b = file_for(txn, g, ctx, ino, MAY_WRITE)?;
    Ok((b, Collection::load(txn, g, rec)?))
}

/// A regular file the caller may read or change.
pub(super) fn file_for(txn: &Txn<'_>, g: &Geometry, ctx: &Ctx, ino: InodeNo, mask: u32) -> Result<InodeBuf> {
    let b = live(txn, g, ino)?;
    if b.file_type() != Some(FileType::Regular) {
        return Err(FsError::NotPermitted);
    }
    crate::fs::acl::check(ctx, txn, g, &b, mask)?;
    Ok(b)
}

impl Fs {
    /// The collections in the catalogue (empty for images without vectors).
    pub fn collections(&self) -> Result<Vec<CollectionRecord>> {
        self.read(|txn, g| Ok(catalog_io::read(txn, g)?.map(|c| c.records).unwrap_or_default()))
    }

    /// Open a collection (cached between calls while unchanged).
    pub fn collection(&self, name: &str) -> Result<std::sync::Arc<Collection>> {
        self.read(|txn, g| self.vectors.get(txn, g, name))
    }

    /// Create an empty collection: node file, upper file, catalogue record.
    pub fn create_collection(&self, p: &CollectionParams) -> Result<CollectionRecord> {
        p.check()?;
        self.write(|txn, g| {
            let cat = catalog_io::require(txn, g)?;
            if cat.records.iter().any(|r| r.name == p.name) {
                return Err(FsError::Exists);
            }
            if cat.records.len() >= MAX_COLLECTIONS {
                return Err(FsError::NoSpace);
            }
            let node = create_hidden(txn, g)?;
            let upper = create_hidden(txn, g)?;
            let rec = CollectionRecord {
                id: cat.next_id,
                name: p.name.clone(),
                dim: p.dim,
                metric: p.metric as u8,
                elem_type: p.elem as u8,
                int8_scale: if p.elem == ElemType::Int8 { p.int8_scale } else { 0.0 },
                m: p.m,
                ef_construction: p.ef_construction,
                node_ino: node.get(),
                created: now().sec,
            };
            write_empty_header(txn, g, &rec, (upper.get(), p.list_bytes), false)?;
            let mut records = cat.records.clone();
            records.push(rec.clone());
            catalog_io::write(txn, g, &cat, &records, cat.next_id + 1)?;
            let ev = Event::new(Op::CollectionCreate, node.get().into()).with_name(0, rec.name.as_bytes());
            self.emit(txn, g, None, ev.with_aux(rec.id.into()))?;
            Ok(rec)
        })
    }

    /// Drop a collection: detach every vector, free its files, remove its
    /// record. Detaching runs in batches of transactions (a big collection
    /// does not fit one); each batch leaves a consistent image.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        const BATCH: u32 = 64;
        let mut next = 0u32;
        loop {
            let done = self.write(|txn, g| {
                let cat = catalog_io::require(txn, g)?;
                let rec = find(&cat, name)?;
                let mut coll = Collection::load(txn, g, rec)?;
                let end = (u64::from(next) + u64::from(BATCH)).min(coll.slots()) as u32;
                for s in next..end {
                    detach_slot(txn, g, &mut coll, s)?;
                }
                next = end;
                Ok(u64::from(end) >= coll.slots())
            })?;
            if done {
                break;
            }
        }
        self.write(|txn, g| {
            let cat = catalog_io::require(txn, g)?;
            let rec = find(&cat, name)?.clone();
            let coll = Collection::load(txn, g, &rec)?;
            for ino in [Some(coll.node_ino), coll.upper_ino].into_iter().flatten() {
                let b = ino_io::load(txn, g, ino)?;
                crate::fs::lifecycle::destroy(txn, g, &b)?;
            }
            let records: Vec<_> = cat.records.iter().filter(|r| r.name != name).cloned().collect();
            catalog_io::write(txn, g, &cat, &records, cat.next_id)?;
            let ev = Event::new(Op::CollectionDrop, rec.node_ino.into()).with_name(0, name.as_bytes());
            self.emit(txn, g, None, ev.with_aux(rec.id.into()))
        })
    }

    /// Attach (or replace) the vector of file `n` in collection `name`.
    pub fn set_vector(&self, ctx: &Ctx, n: u64, name: &str, v: &[f32]) -> Result<()> {
        let ino = self.ino(n)?;
        self.attach(ctx, ino, name, &|space| {
            space.check(v)?;
            let mut stored = vec![0u8; space.vector_bytes()];
            space.encode(v, &mut stored);
            Ok(stored)
        })
    }

    /// [`Fs::set_vector`] of the vector `encode` stores in the collection's
    /// element type (checked there: a wrong length or value changes
    /// nothing).
    pub(super) fn attach(
        &self,
        ctx: &Ctx,
        ino: InodeNo,
        name: &str,
        encode: &dyn Fn(Space) -> Result<Vec<u8>>,
    ) -> Result<()> {
        self.write(|txn, g| {
            let (mut b, mut coll) = open_for_change(txn, g, ctx, ino, name)?;
            let rec = coll.record.clone();
            let stored = encode(coll.space)?;
            let slot = match owned_slot(txn, g, &coll, &b, &rec)? {
                Some(slot) => {
                    // Replace in place: detach (repairs the neighbours and
                    // moves the entry point off this node), then reinsert
                    // with the same level and upper records.
                    let node = coll.node(txn, slot)?;
                    let reuse = (node.level(), node.header().n_upper_ref.get());
                    build::delete(&mut coll, txn, slot)?;
                    build::insert(&mut coll, txn, g, slot, ino.get(), &stored, Some(reuse))?;
                    slot
                }
                None => {
                    let slot = coll.alloc_slot(txn, g)?;
                    build::insert(&mut coll, txn, g, slot, ino.get(), &stored, None)?;
                    refs::set(txn, g, &mut b, &rec, slot)?;
                    slot
                }
            };
            self.finish_change(txn, g, ctx, &mut b, vector_event(Op::VectorAttach, ino, name, slot))
        })
        // Marked once the change is made: a failed call (an unknown
        // collection name) adds nothing, and a change made after a
        // reconnect pass started is marked after it.
        .inspect(|()| self.vectors.mark_changed(name))
    }

    /// The vector of file `n` in `name`, as f32 (ENODATA if none).
    pub fn get_vector(&self, ctx: &Ctx, n: u64, name: &str) -> Result<Vec<f32>> {
        let ino = self.ino(n)?;
        self.read(|txn, g| {
            let b = file_for(txn, g, ctx, ino, MAY_READ)?;
            let coll = self.vectors.get(txn, g, name)?;
            let slot = owned_slot(txn, g, &coll, &b, &coll.record)?.ok_or(FsError::NoData)?;
            Ok(coll.space.decode(coll.node(txn, slot)?.vector()))
        })
    }

    /// Detach the vector of file `n` from `name` (ENODATA if none).
    pub fn remove_vector(&self, ctx: &Ctx, n: u64, name: &str) -> Result<()> {
        let ino = self.ino(n)?;
        self.write(|txn, g| {
            let (mut b, mut coll) = open_for_change(txn, g, ctx, ino, name)?;
            let rec = coll.record.clone();
            let slot = owned_slot(txn, g, &coll, &b, &rec)?.ok_or(FsError::NoData)?;
            build::delete(&mut coll, txn, slot)?;
            refs::clear(txn, g, &mut b, &rec)?;
            self.finish_change(txn, g, ctx, &mut b, vector_event(Op::VectorDetach, ino, name, slot))
        })
        .inspect(|()| self.vectors.mark_changed(name))
    }

    /// After a vector change of file `b`: its ctime, the inode, the event.
    pub(super) fn finish_change(
        &self,
        txn: &mut Txn<'_>,
        g: &Geometry,
        ctx: &Ctx,
        b: &mut InodeBuf,
        ev: Event,
    ) -> Result<()> {
        b.set_time(Time::Change, now());
        ino_io::store(txn, g, b)?;
        // The ioctl path changes the file without the kernel knowing.
        self.stale.mark(b.ino.get());
        self.emit(txn, g, Some(ctx), ev)
    }

    /// Names of the collections file `n` has a vector in.
    pub fn vector_names(&self, n: u64) -> Result<Vec<String>> {
        let ino = self.ino(n)?;
        self.read(|txn, g| {
            let b = live(txn, g, ino)?;
            let Some(cat) = catalog_io::read(txn, g)? else {
                return Ok(Vec::new());
            };
            let ids = refs::all(txn, g, &b, &cat.records)?;
            Ok(cat
                .records
                .iter()
                .filter(|r| ids.iter().any(|(id, _)| *id == r.id))
                .map(|r| r.name.clone())
                .collect())
        })
    }

    /// The collection's space and a prepared query (for callers that
    /// search many times with one vector type).
    pub fn scorer(&self, name: &str, v: &[f32]) -> Result<Scorer> {
        let coll = self.collection(name)?;
        Scorer::new(coll.space, v)
    }
}

/// The slot `b` owns in `rec`, checked from both sides (§8.7): a reference
/// to a slot that is not live or names another owner counts as none.
fn owned_slot(
    txn: &Txn<'_>,
    g: &Geometry,
    coll: &Collection,
    b: &InodeBuf,
    rec: &CollectionRecord,
) -> Result<Option<u32>> {
    let Some(slot) = refs::get(txn, g, b, rec)? else {
        return Ok(None);
    };
    Ok(owned_by(txn, coll, slot, b.ino.get())?.then_some(slot))
}

/// Whether `slot` exists, is live and belongs to inode `ino`.
fn owned_by(txn: &Txn<'_>, coll: &Collection, slot: u32, ino: u32) -> Result<bool> {
    if u64::from(slot) >= coll.slots() {
        return Ok(false);
    }
    let node = coll.node(txn, slot)?;
    Ok(node.is_live() && node.header().n_owner_ino.get() == ino)
}

/// Detach slot `s` from its owner (dropping a collection, destroying a file).
fn detach_slot(txn: &mut Txn<'_>, g: &Geometry, coll: &mut Collection, s: u32) -> Result<()> {
    let node = coll.node(txn, s)?;
    if !node.is_live() {
        return Ok(());
    }
    let owner = node.header().n_owner_ino.get();
    build::delete(coll, txn, s)?;
    if let Some(ino) = g.inode_no(owner) {
        let mut b = ino_io::load(txn, g, ino)?;
        if !b.base().is_free() {
            let rec = coll.record.clone();
            refs::clear(txn, g, &mut b, &rec)?;
            ino_io::store(txn, g, &b)?;
        }
    }
    Ok(())
}

/// Detach every vector of an inode that is being freed (same transaction);
/// returns the names of the collections whose graphs lost a node (what
/// the unmount's reconnect pass must visit).
pub fn detach_all(txn: &mut Txn<'_>, g: &Geometry, b: &InodeBuf) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    if b.base().flags() & crate::format::inode::VECTOR_FL == 0 {
        return Ok(changed);
    }
    let Some(cat) = catalog_io::read(txn, g)? else {
        return Ok(changed);
    };
    for (id, slot) in refs::all(txn, g, b, &cat.records)? {
        let Some(rec) = cat.records.iter().find(|r| r.id == id) else {
            continue;
        };
        let mut coll = Collection::load(txn, g, rec)?;
        if owned_by(txn, &coll, slot, b.ino.get())? {
            build::delete(&mut coll, txn, slot)?;
            changed.push(rec.name.clone());
        }
    }
    Ok(changed)
}

/// Block 0 of a new node file: the header of an empty collection (§8.4).
/// `list_bytes`: the level-0 list area of a packed collection (§8.5.1),
/// `None` for the default; an error on an image in the v1 layout, whose
/// records have no such choice. `unjournaled`: the block is written
/// straight to the map, for a node file built outside the journal (see
/// `super::bulk`: a logged copy of it would be replayed over the later
/// unjournaled writes).
pub(crate) fn write_empty_header(
    txn: &mut Txn<'_>,
    g: &Geometry,
    rec: &CollectionRecord,
    (upper, list_bytes): (u32, Option<u32>),
    unjournaled: bool,
) -> Result<()> {
    let space = space_of(rec)?;
    let geo = match (g.features.node_layout(), list_bytes) {
        (NodeLayout::Packed, Some(b)) => fv::packed_geometry(rec.dim, space.elem, b),
        (NodeLayout::V1, Some(_)) => {
            return Err(FsError::Invalid(
                "list bytes can be chosen only on images with packed_nodes (made without --v1-nodes)".into(),
            ))
        }
        (layout, None) => node_geometry(rec.dim, space.elem, rec.m, layout, g.features.list_coding()),
    };
    let mut h = CollectionHeader::new_zeroed();
    h.ch_magic.set(fv::COLLECTION_MAGIC);
    h.ch_collection_id.set(rec.id);
    h.ch_dim.set(rec.dim);
    h.ch_elem_type = rec.elem_type;
    h.ch_metric = rec.metric;
    h.ch_m.set(rec.m);
    h.ch_node_stride.set(geo.stride);
    h.ch_vector_offset.set(geo.vector_offset);
    h.ch_adj_offset.set(geo.adj_offset);
    h.ch_adj_capacity.set(geo.adj_capacity);
    h.ch_upper_ino.set(upper);
    h.ch_upper_stride
        .set(16 + (u32::from(rec.m) * 3 + 8).next_multiple_of(8));
    h.ch_int8_scale.set(rec.int8_scale.to_bits());
    let node = g.inode_no(rec.node_ino).ok_or(FsError::NotFound)?;
    let mut runs = Vec::new();
    super::files::ensure_mapped(txn, g, node, &mut runs, 1)?;
    let coll = Collection {
        record: rec.clone(),
        space,
        node_ino: node,
        upper_ino: g.inode_no(upper),
        geo,
        coding: g.features.list_coding(),
        header: h,
        slot_map: super::store::SlotMap::of(geo),
        node_runs: runs,
        node_index: Default::default(),
        upper_runs: Vec::new(),
        seed: g.csum_seed,
        unjournaled,
    };
    let phys = super::store::block_of(&coll.node_runs, 0, "node file")?;
    coll.block_new(txn, phys)?;
    coll.store_header(txn)
}
