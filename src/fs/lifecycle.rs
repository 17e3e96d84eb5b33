//! Creating, freeing and orphaning inodes.
//!
//! An inode whose last name goes away while it is still open lives on (its
//! data readable and writable through the open handles) until the last
//! close. On feature images it is kept on the orphan chain
//! (`s_last_orphan` -> `i_next_orphan` -> ...) so that a crash before the
//! last close cannot leak it: the next read-write open frees the chain.
//!
//! Under FUSE the kernel also holds every inode it has looked up, until it
//! forgets it (FORGET), and may still send requests for an unlinked one
//! meanwhile: with the writeback cache it writes back its times (SETATTR)
//! after the unlink. Freed at the unlink, the inode number could already
//! belong to a new file when they arrive, and they would land on it. So
//! when the adapter says so ([`Fs::set_kernel_forgets`]) an inode whose
//! last link goes is kept on the orphan chain too, until the kernel has
//! forgotten it ([`Fs::forgotten`]) *and* its last handle is closed.
//!
//! Why one flag per unlinked inode is enough, not a lookup count per inode
//! the kernel holds: the kernel holds the inode at its unlink (it looked
//! the name up to get there: LOOKUP, CREATE, READDIRPLUS and the like all
//! give it a reference, and a rename over a name looks the target up
//! too), and it cannot take a new reference afterwards: no name leads to
//! the inode any more (readdirplus lists names, the virtual `/.vexfs`
//! entries are never unlinked, open by handle is not offered, and the
//! kernel refuses to link an inode with no links). So after the unlink
//! there is exactly one kernel inode for it, whose eviction sends one
//! FORGET with its whole lookup count. The only other FORGET that can
//! still come is a late one from an earlier kernel inode of the same file
//! (evicted while it had links, its FORGET queued or handled after the
//! unlink of the next one); the adapter tells the two apart by asking the
//! kernel whether it still caches the node (`Invalidator::kernel_holds`).

use super::alloc::{self, with_superblock};
use super::core::Fs;
use super::inode::{self as ino_io, InodeBuf};
use super::map;
use super::txn::Txn;
use crate::error::{Expected, FsError, Result};
use crate::format::inode::InodeNo;
use crate::format::superblock::Superblock;
use crate::layout::Geometry;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use zerocopy::FromBytes;

/// The unlinked inodes the kernel still holds (see the module docs): as
/// many as the kernel keeps unlinked inodes cached, which it evicts at
/// their last close (a few; a process's deleted working directory, say).
#[derive(Default)]
pub struct Forgets {
    /// Set by the FUSE adapter: the kernel holds the inodes it looked up.
    on: AtomicBool,
    /// Unlinked to no links while the kernel held them, not forgotten yet.
    pending: Mutex<HashSet<u32>>,
}

impl Forgets {
    fn is_pending(&self, ino: InodeNo) -> bool {
        self.pending.lock().contains(&ino.get())
    }
}

/// Release everything an inode owns and the inode itself; returns the
/// names of the collections it had vectors in (see
/// [`crate::vector::detach_all`]).
pub fn destroy(txn: &mut Txn<'_>, g: &Geometry, b: &InodeBuf) -> Result<Vec<String>> {
    let detached = crate::vector::detach_all(txn, g, b)?;
    let fm = map::load(txn, g, b)?;
    for m in &fm.runs {
        alloc::free_blocks(txn, g, m.physical, m.len)?;
    }
    for &t in &fm.tree_blocks {
        alloc::free_blocks(txn, g, t, 1)?;
    }
    let xattr = b.view().xattr_block();
    if xattr != 0 {
        alloc::free_blocks(txn, g, xattr, 1)?;
    }
    ino_io::clear(txn, g, b.ino)?;
    alloc::free_inode(txn, g, b.ino.get())?;
    Ok(detached)
}

fn last_orphan(txn: &Txn<'_>) -> Result<u32> {
    let sb = Superblock::ref_from_prefix(txn.block(0)?)
        .map_err(|_| FsError::Invalid("superblock view".into()))?
        .0;
    Ok(sb.s_last_orphan.get())
}

/// Put an unlinked-but-open inode on the orphan chain.
pub fn add_orphan(txn: &mut Txn<'_>, g: &Geometry, b: &mut InodeBuf) -> Result<()> {
    let head = last_orphan(txn)?;
    let Some(ext) = b.ext_mut() else { return Ok(()) };
    ext.i_next_orphan.set(head);
    ino_io::store(txn, g, b)?;
    with_superblock(txn, |sb| sb.s_last_orphan.set(b.ino.get()))
}

/// Take an inode off the orphan chain (walk bounded by the inode count).
pub fn remove_orphan(txn: &mut Txn<'_>, g: &Geometry, ino: InodeNo) -> Result<()> {
    let mut cur = last_orphan(txn)?;
    let mut prev: Option<InodeNo> = None;
    for _ in 0..=g.inodes_count {
        if cur == 0 {
            return Ok(());
        }
        let cur_no = g.inode_no(cur).ok_or_else(|| {
            FsError::corrupt(
                "orphan chain",
                228,
                "s_last_orphan",
                Expected::AtMost(g.inodes_count.into()),
                cur.into(),
            )
        })?;
        let b = ino_io::load(txn, g, cur_no)?;
        let next = b.ext().map_or(0, |e| e.i_next_orphan.get());
        if cur_no == ino {
            match prev {
                None => with_superblock(txn, |sb| sb.s_last_orphan.set(next))?,
                Some(p) => {
                    let mut pb = ino_io::load(txn, g, p)?;
                    if let Some(e) = pb.ext_mut() {
                        e.i_next_orphan.set(next);
                    }
                    ino_io::store(txn, g, &pb)?;
                }
            }
            return Ok(());
        }
        prev = Some(cur_no);
        cur = next;
    }
    Err(FsError::corrupt(
        "orphan chain",
        228,
        "i_next_orphan",
        Expected::AtMost(g.inodes_count.into()),
        u64::from(g.inodes_count) + 1,
    ))
}

impl Fs {
    /// Free every inode left on the orphan chain by a crash or an unclean
    /// unmount (run at read-write open).
    pub(crate) fn reclaim_orphans(&self) -> Result<()> {
        self.write(|txn, g| {
            let mut cur = last_orphan(txn)?;
            for _ in 0..=g.inodes_count {
                let Some(ino) = g.inode_no(cur) else { break };
                let b = ino_io::load(txn, g, ino)?;
                cur = b.ext().map_or(0, |e| e.i_next_orphan.get());
                if !b.base().is_free() && b.links() == 0 {
                    self.destroy_inode(txn, g, &b)?;
                }
            }
            with_superblock(txn, |sb| sb.s_last_orphan.set(0))
        })
    }

    /// A handle to inode `n` was opened.
    pub fn opened(&self, n: u64) -> Result<()> {
        let ino = self.ino(n)?;
        *self.open_counts.lock().entry(ino.get()).or_insert(0) += 1;
        Ok(())
    }

    /// Keep unlinked inodes until [`Fs::forgotten`] (the FUSE adapter; a
    /// kernel holds the inodes it has looked up until it forgets them).
    /// Off, an inode is freed at its unlink or its last close.
    pub fn set_kernel_forgets(&self, on: bool) {
        self.forgets.on.store(on, Ordering::Relaxed);
    }

    /// Does a FORGET of inode `n` free something? (Cheap: most do not.)
    pub fn awaits_forget(&self, n: u64) -> bool {
        self.ino(n).is_ok_and(|ino| self.forgets.is_pending(ino))
    }

    /// Inode `ino` lost its last link: kept for the kernel, or not.
    /// Called inside the unlinking transaction; should that transaction
    /// fail, the mark stays on an inode with links, where it does nothing
    /// until [`Fs::forgotten`] drops it.
    pub(crate) fn unlinked_while_held(&self, ino: InodeNo) -> bool {
        if !self.forgets.on.load(Ordering::Relaxed) {
            return false;
        }
        self.forgets.pending.lock().insert(ino.get());
        true
    }

    /// The kernel forgot inodes `ns` (FUSE FORGET or BATCH_FORGET): those
    /// unlinked and no longer open are freed, in one transaction.
    pub fn forgotten(&self, ns: &[u64]) -> Result<()> {
        let mut free: Vec<InodeNo> = {
            let mut pending = self.forgets.pending.lock();
            ns.iter()
                .filter_map(|&n| self.ino(n).ok())
                .filter(|i| pending.remove(&i.get()))
                .collect()
        };
        free.retain(|&i| !self.is_open(i));
        if free.is_empty() || self.is_read_only() {
            return Ok(());
        }
        self.write(|txn, g| {
            for &ino in &free {
                self.free_if_unused(txn, g, ino)?;
            }
            Ok(())
        })
    }

    /// Unmount: the kernel holds nothing any more (and sends no FORGET for
    /// what it still held), so every pending inode is forgotten.
    pub(crate) fn forget_all(&self) -> Result<()> {
        let all: Vec<u64> = self.forgets.pending.lock().iter().map(|&i| i.into()).collect();
        self.forgotten(&all)
    }

    /// Free inode `ino` if it has no links, no open handle and no kernel
    /// reference (checked under the transaction: a release and a FORGET
    /// may race to free it, or it may be a new file by now).
    fn free_if_unused(&self, txn: &mut Txn<'_>, g: &Geometry, ino: InodeNo) -> Result<()> {
        let b = ino_io::load(txn, g, ino)?;
        if b.base().is_free() || b.links() > 0 || self.is_open(ino) || self.forgets.is_pending(ino) {
            return Ok(());
        }
        remove_orphan(txn, g, ino)?;
        self.destroy_inode(txn, g, &b)
    }

    /// [`destroy`], noting the collections that lost a vector for the
    /// unmount's reconnect pass (a delete repairs its neighbours locally
    /// only). Noted inside the transaction, unlike the vector calls'
    /// marks: should it fail to commit, the cost is one needless pass at
    /// unmount, where a missed mark would leave an island.
    pub(crate) fn destroy_inode(&self, txn: &mut Txn<'_>, g: &Geometry, b: &InodeBuf) -> Result<()> {
        for name in destroy(txn, g, b)? {
            self.vectors.mark_changed(&name);
        }
        Ok(())
    }

    /// A handle was closed: the last close of an unlinked inode frees it
    /// (unless the kernel still holds it: then its FORGET does).
    pub fn released(&self, n: u64) -> Result<()> {
        let ino = self.ino(n)?;
        let last = {
            let mut counts = self.open_counts.lock();
            let c = counts.entry(ino.get()).or_insert(1);
            *c = c.saturating_sub(1);
            let last = *c == 0;
            if last {
                counts.remove(&ino.get());
            }
            last
        };
        if !last || self.is_read_only() || self.forgets.is_pending(ino) {
            return Ok(());
        }
        self.write(|txn, g| self.free_if_unused(txn, g, ino))
    }

    /// Is inode `ino` open anywhere?
    pub(crate) fn is_open(&self, ino: InodeNo) -> bool {
        self.open_counts.lock().get(&ino.get()).is_some_and(|&c| c > 0)
    }
}
