//! Bulk loading an empty collection (`vexctl import` on an unmounted
//! image, `bench-ann`): many vectors inserted as fast as the graph walks
//! allow, all or none of them attached (but see the fallback below).
//!
//! Why: attaching vectors one by one journals every node block an insert
//! changes (the new record and a dozen neighbours' lists), so a bulk build
//! logged each block again and again: 8 GB of ring and home writes for
//! 100,000 vectors of 128 dimensions, a third of the build. Here the graph
//! is built in new node and upper files on the orphan chain (as a rebuild
//! builds them, [`super::rebuild`]), whose blocks are written straight to
//! the map like file data ([`Txn::unjournaled_mut`]): no live structure
//! points at them (only the orphan chain), so a crash leaves the
//! collection as it was and the next mount frees the partial files. One last transaction sets every
//! file's reference, emits the attach events and swaps the files in; its
//! commit flushes the whole image first, so the graph is durable before
//! anything names it (ordered mode).
//!
//! The last transaction changes about one inode block per 16 files (and
//! the event ring's blocks) and must fit the journal. When it does not,
//! the vectors are attached one by one from the built files instead
//! (slower, the same graph), so a small journal costs time, not the load;
//! but that fallback is not all or nothing: an error part-way leaves the
//! vectors attached so far (as `set_vector` calls would), and it needs
//! room for the graph twice until the built files are freed. Any other
//! failure of the last transaction (a full disk) fails the load cleanly.
//!
//! The caller is the only writer (an unmounted image): a change made to
//! the collection meanwhile is detected at the end and fails the load.

use super::api::{file_for, vector_event};
use super::build;
use super::cache::find;
use super::catalog_io;
use super::distance::Space;
use super::rebuild::{new_files, swap_in};
use super::refs;
use super::store::Collection;
use crate::bitset::BitSet;
use crate::error::{FsError, Result};
use crate::events::Op;
use crate::format::inode::InodeNo;
use crate::format::vector::CollectionRecord;
use crate::fs::core::{live, Fs};
use crate::fs::perm::{Ctx, MAY_WRITE};
use crate::fs::txn::Txn;
use crate::layout::Geometry;

/// What a bulk load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkReport {
    /// Vectors attached.
    pub attached: u64,
    /// The last transaction did not fit the journal: the vectors were
    /// attached one by one instead.
    pub one_by_one: bool,
}

/// A bulk load in progress ([`Fs::bulk_load`]). Dropped without
/// [`BulkLoad::finish`], it frees its files and attaches nothing.
pub struct BulkLoad<'f> {
    fs: &'f Fs,
    ctx: Ctx,
    name: String,
    /// The collection as it was (empty).
    rec: CollectionRecord,
    /// The same collection over the new node file (an orphan).
    new_rec: CollectionRecord,
    new_upper: InodeNo,
    space: Space,
    /// Files given a vector by this load (a second one is refused).
    seen: BitSet,
    added: u64,
    /// An insert failed, perhaps after writing some of its blocks outside
    /// the journal: the built files may not be a graph any more, and the
    /// load can only be dropped.
    broken: bool,
    done: bool,
}

impl Fs {
    /// Start a bulk load of collection `name`, which must have no slots
    /// yet (never had a vector); `Ok(None)` when it has some (use
    /// [`Fs::set_vector`]). For an unmounted image: see the module docs.
    pub fn bulk_load(&self, ctx: &Ctx, name: &str) -> Result<Option<BulkLoad<'_>>> {
        let started = self.write(|txn, g| {
            let cat = catalog_io::require(txn, g)?;
            let rec = find(&cat, name)?.clone();
            let old = Collection::load(txn, g, &rec)?;
            if old.slots() > 0 {
                return Ok(None);
            }
            let (new_rec, upper) = new_files(txn, g, &old, true)?;
            Ok(Some((rec, new_rec, upper, old.space)))
        })?;
        let Some((rec, new_rec, new_upper, space)) = started else {
            return Ok(None);
        };
        let load = BulkLoad {
            fs: self,
            ctx: ctx.clone(),
            name: name.to_string(),
            rec,
            new_rec,
            new_upper,
            space,
            seen: BitSet::new(u64::from(self.geometry().inodes_count) + 1),
            added: 0,
            broken: false,
            done: false,
        };
        Ok(Some(load))
    }
}

impl BulkLoad<'_> {
    /// Vectors added so far.
    pub fn added(&self) -> u64 {
        self.added
    }

    /// Add file `n`'s vector (attached at [`BulkLoad::finish`]). A wrong
    /// length or value, a file that is not a regular one the caller may
    /// change, or one already added, is refused and the load goes on; any
    /// later failure ends it (only dropping it is left).
    pub fn add(&mut self, n: u64, v: &[f32]) -> Result<()> {
        if self.broken {
            return Err(FsError::Invalid("an earlier insert of this bulk load failed".into()));
        }
        let ino = self.fs.ino(n)?;
        if self.seen.get(ino.get().into()) {
            return Err(FsError::Invalid(format!(
                "inode {n} was given a vector earlier in this bulk load"
            )));
        }
        self.space.check(v)?;
        self.fs.read(|txn, g| file_for(txn, g, &self.ctx, ino, MAY_WRITE))?;
        let mut stored = vec![0u8; self.space.vector_bytes()];
        self.space.encode(v, &mut stored);
        let mut tried = false;
        let r = self.fs.write(|txn, g| {
            // Fs::write runs this again after an ENOSPC that committing
            // frees space for; the first try's writes to the map stay.
            if std::mem::replace(&mut tried, true) {
                return Err(FsError::NoSpace);
            }
            let mut coll = Collection::load(txn, g, &self.new_rec)?;
            coll.unjournaled = true;
            let slot = coll.append_slot(txn, g)?;
            build::insert(&mut coll, txn, g, slot, ino.get(), &stored, None)
        });
        self.broken = r.is_err();
        r?;
        self.seen.set(ino.get().into());
        self.added += 1;
        Ok(())
    }

    /// Attach every vector added: one transaction, or one by one when that
    /// does not fit the journal (see the module docs).
    pub fn finish(mut self) -> Result<BulkReport> {
        if self.broken {
            return Err(FsError::Invalid("an earlier insert of this bulk load failed".into()));
        }
        // ENOSPC means "larger than the journal" when the swap filled the
        // transaction, or when it was complete (then the journal refused
        // it); else the disk is full and nothing is retried.
        let too_large = std::cell::Cell::new(false);
        let swapped = self.fs.write_large(|txn, g| {
            let r = self.swap(txn, g);
            too_large.set(match &r {
                Ok(()) => true,
                Err(FsError::NoSpace) => txn.at_block_limit(),
                Err(_) => false,
            });
            r
        });
        let one_by_one = match swapped {
            Ok(()) => false,
            Err(FsError::NoSpace) if too_large.get() => {
                eprintln!(
                    "vexfs: bulk load of {}: the files' references do not fit the journal as one \
                     transaction (about one block per 16 files); attaching the vectors one by one \
                     instead (slower, and an error part-way leaves those attached so far; a larger \
                     journal: mkfs.vexfs --journal-blocks)",
                    self.name
                );
                self.attach_one_by_one()?;
                self.fs.discard_orphans(&[self.new_rec.node_ino, self.new_upper.get()]);
                true
            }
            Err(e) => return Err(e),
        };
        self.done = true;
        // Inserts keep reachability the writers' local way: the unmount
        // (or the caller) links any island they left (format-spec/09 §9.2).
        self.fs.vectors.mark_changed(&self.name);
        Ok(BulkReport {
            attached: self.added,
            one_by_one,
        })
    }

    /// The last transaction: references, events, the files swapped in.
    fn swap(&self, txn: &mut Txn<'_>, g: &Geometry) -> Result<()> {
        let cat = catalog_io::require(txn, g)?;
        let cur = find(&cat, &self.name)?;
        if *cur != self.rec || Collection::load(txn, g, cur)?.slots() > 0 {
            return Err(FsError::Invalid(format!(
                "collection {} changed during its bulk load",
                self.name
            )));
        }
        let new = Collection::load(txn, g, &self.new_rec)?;
        if new.slots() != self.added {
            return Err(FsError::Invalid(format!(
                "bulk load of {}: {} slots built for {} vectors",
                self.name,
                new.slots(),
                self.added
            )));
        }
        for s in 0..self.added as u32 {
            let ino = self.owner(txn, g, &new, s)?;
            let mut b = live(txn, g, ino)?;
            refs::set(txn, g, &mut b, &self.rec, s)?;
            let ev = vector_event(Op::VectorAttach, ino, &self.name, s);
            self.fs.finish_change(txn, g, &self.ctx, &mut b, ev)?;
        }
        swap_in(txn, g, &self.name, &self.new_rec, self.new_upper)
    }

    /// The file slot `s` of the built files belongs to.
    fn owner(&self, txn: &Txn<'_>, g: &Geometry, coll: &Collection, s: u32) -> Result<InodeNo> {
        let owner = coll.node(txn, s)?.header().n_owner_ino.get();
        g.inode_no(owner)
            .ok_or_else(|| FsError::Invalid(format!("bulk load: slot {s} has no owner")))
    }

    /// Each built slot's vector attached with [`Fs::set_vector`]'s
    /// transaction, in slot order: the same slots and the same graph.
    fn attach_one_by_one(&self) -> Result<()> {
        for s in 0..self.added as u32 {
            let (ino, stored) = self.fs.read(|txn, g| {
                let new = Collection::load(txn, g, &self.new_rec)?;
                Ok((self.owner(txn, g, &new, s)?, new.node(txn, s)?.vector().to_vec()))
            })?;
            self.fs.attach(&self.ctx, ino, &self.name, &|_| Ok(stored.clone()))?;
        }
        Ok(())
    }
}

impl Drop for BulkLoad<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.fs.discard_orphans(&[self.new_rec.node_ino, self.new_upper.get()]);
        }
    }
}
