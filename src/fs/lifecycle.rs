//! Creating, freeing and orphaning inodes.
//!
//! An inode whose last name goes away while it is still open lives on (its
//! data readable and writable through the open handles) until the last
//! close. On feature images it is kept on the orphan chain
//! (`s_last_orphan` -> `i_next_orphan` -> ...) so that a crash before the
//! last close cannot leak it: the next read-write open frees the chain.

use super::alloc::{self, with_superblock};
use super::core::Fs;
use super::inode::{self as ino_io, InodeBuf};
use super::map;
use super::txn::Txn;
use crate::error::{Expected, FsError, Result};
use crate::format::inode::InodeNo;
use crate::format::superblock::Superblock;
use crate::layout::Geometry;
use zerocopy::FromBytes;

/// Release everything an inode owns and the inode itself.
pub fn destroy(txn: &mut Txn<'_>, g: &Geometry, b: &InodeBuf) -> Result<()> {
    crate::vector::detach_all(txn, g, b)?;
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
    alloc::free_inode(txn, g, b.ino.get())
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
                    destroy(txn, g, &b)?;
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

    /// A handle was closed: the last close of an unlinked inode frees it.
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
        if !last || self.is_read_only() {
            return Ok(());
        }
        self.write(|txn, g| {
            let b = ino_io::load(txn, g, ino)?;
            if b.base().is_free() || b.links() > 0 {
                return Ok(());
            }
            remove_orphan(txn, g, ino)?;
            destroy(txn, g, &b)
        })
    }

    /// Is inode `ino` open anywhere?
    pub(crate) fn is_open(&self, ino: InodeNo) -> bool {
        self.open_counts.lock().get(&ino.get()).is_some_and(|&c| c > 0)
    }
}
