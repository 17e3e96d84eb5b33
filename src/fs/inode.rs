//! Loading and storing inodes inside a transaction
//! (format-spec/05-inodes.md).

use super::txn::Txn;
use crate::error::{Expected, FsError, Result};
use crate::format::inode::{
    self, FileType, InodeBase, InodeExt, InodeNo, InodeView, Timestamp, EXTRA_ISIZE_V1, LARGE_INODE_SIZE,
};
use crate::format::BLOCK_SIZE_U64;
use crate::layout::Geometry;
use zerocopy::FromBytes;

/// An owned copy of one inode (112 or 256 bytes), edited then stored.
#[derive(Clone)]
pub struct InodeBuf {
    pub ino: InodeNo,
    bytes: [u8; LARGE_INODE_SIZE],
    size: usize,
}

impl InodeBuf {
    /// A fresh, zeroed inode of this image's size.
    pub fn new(ino: InodeNo, g: &Geometry) -> Self {
        let mut b = InodeBuf {
            ino,
            bytes: [0; LARGE_INODE_SIZE],
            size: g.inode_size,
        };
        if let Some(e) = b.ext_mut() {
            e.i_extra_isize.set(EXTRA_ISIZE_V1);
        }
        b
    }

    pub fn base(&self) -> &InodeBase {
        InodeBase::ref_from_prefix(&self.bytes).expect("256 >= 112 bytes").0
    }

    pub fn base_mut(&mut self) -> &mut InodeBase {
        InodeBase::mut_from_prefix(&mut self.bytes).expect("256 >= 112 bytes").0
    }

    pub fn ext(&self) -> Option<&InodeExt> {
        (self.size == LARGE_INODE_SIZE).then(|| InodeExt::ref_from_bytes(&self.bytes[112..]).expect("144 bytes"))
    }

    pub fn ext_mut(&mut self) -> Option<&mut InodeExt> {
        (self.size == LARGE_INODE_SIZE).then(|| InodeExt::mut_from_bytes(&mut self.bytes[112..]).expect("144 bytes"))
    }

    /// A read-only view, as the read path uses.
    pub fn view(&self) -> InodeView<'_> {
        InodeView {
            base: self.base(),
            ext: self.ext(),
        }
    }

    pub fn file_type(&self) -> Option<FileType> {
        self.base().file_type()
    }

    pub fn size(&self) -> u64 {
        self.base().i_size.get()
    }

    pub fn set_size(&mut self, size: u64) {
        self.base_mut().i_size.set(size);
    }

    pub fn links(&self) -> u16 {
        self.base().i_links_count.get()
    }

    pub fn set_links(&mut self, n: u16) {
        self.base_mut().i_links_count.set(n);
    }

    /// Set one of the times; nanoseconds and 64-bit seconds need large inodes.
    pub fn set_time(&mut self, which: Time, t: Timestamp) {
        let (lo, hi) = inode::split_seconds(t.sec);
        let b = self.base_mut();
        match which {
            Time::Access => b.i_atime.set(lo),
            Time::Change => b.i_ctime.set(lo),
            Time::Modify => b.i_mtime.set(lo),
            Time::Birth => {}
        }
        if let Some(e) = self.ext_mut() {
            let (h, n) = match which {
                Time::Access => (&mut e.i_atime_hi, &mut e.i_atime_nsec),
                Time::Change => (&mut e.i_ctime_hi, &mut e.i_ctime_nsec),
                Time::Modify => (&mut e.i_mtime_hi, &mut e.i_mtime_nsec),
                Time::Birth => {
                    e.i_crtime.set(lo);
                    (&mut e.i_crtime_hi, &mut e.i_crtime_nsec)
                }
            };
            h.set(hi);
            n.set(t.nsec);
        }
    }

    /// Record the directory of the newest link (format-spec §5.3
    /// `i_parent`, a hint; the kernel layout has no field for it).
    pub fn set_parent(&mut self, dir: u32) {
        if let Some(e) = self.ext_mut() {
            e.i_parent.set(dir);
        }
    }

    /// The `i_parent` hint, 0 when unknown.
    pub fn parent_hint(&self) -> u32 {
        self.ext().map_or(0, |e| e.i_parent.get())
    }

    /// 512-byte sectors in use.
    pub fn set_blocks_512(&mut self, n: u64) {
        self.base_mut().i_blocks.set(n as u32);
        if let Some(e) = self.ext_mut() {
            e.i_blocks_hi.set((n >> 32) as u32);
        }
    }

    pub fn blocks_512(&self) -> u64 {
        self.view().blocks_512()
    }
}

/// Which timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    Access,
    Change,
    Modify,
    Birth,
}

/// The current time.
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        sec: d.as_secs() as i64,
        nsec: d.subsec_nanos(),
    }
}

/// Load inode `ino` as the transaction sees it (checksum verified).
pub fn load(txn: &Txn<'_>, g: &Geometry, ino: InodeNo) -> Result<InodeBuf> {
    let off = g.inode_offset(ino);
    let block = txn.block(off / BLOCK_SIZE_U64)?;
    let at = (off % BLOCK_SIZE_U64) as usize;
    let bytes = &block[at..at + g.inode_size];
    inode::parse_inode(bytes, ino.get(), off, g.csum_seed)?;
    check_size(bytes, off, g)?;
    let mut buf = InodeBuf {
        ino,
        bytes: [0; LARGE_INODE_SIZE],
        size: g.inode_size,
    };
    buf.bytes[..g.inode_size].copy_from_slice(bytes);
    Ok(buf)
}

/// Whether inode `ino`'s bytes are all zero (as freeing leaves them).
pub fn is_zeroed(txn: &Txn<'_>, g: &Geometry, ino: InodeNo) -> Result<bool> {
    let off = g.inode_offset(ino);
    let at = (off % BLOCK_SIZE_U64) as usize;
    Ok(txn.block(off / BLOCK_SIZE_U64)?[at..at + g.inode_size]
        .iter()
        .all(|&b| b == 0))
}

/// `i_size` past the largest file the layout can map (§5.11): a file of
/// 2^62 bytes would otherwise read as endless zeros.
fn check_size(bytes: &[u8], off: u64, g: &Geometry) -> Result<()> {
    let at = core::mem::offset_of!(inode::InodeBase, i_size);
    let size = bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    let max = super::data::max_file_size(g);
    if size > max {
        return Err(FsError::corrupt(
            "inode",
            off + at as u64,
            "i_size",
            Expected::AtMost(max),
            size,
        ));
    }
    Ok(())
}

/// Store an inode (checksum resealed).
pub fn store(txn: &mut Txn<'_>, g: &Geometry, buf: &InodeBuf) -> Result<()> {
    let off = g.inode_offset(buf.ino);
    let block = txn.block_mut(off / BLOCK_SIZE_U64)?;
    let at = (off % BLOCK_SIZE_U64) as usize;
    let dst = &mut block[at..at + g.inode_size];
    dst.copy_from_slice(&buf.bytes[..g.inode_size]);
    if let (Some(seed), LARGE_INODE_SIZE) = (g.csum_seed, g.inode_size) {
        inode::seal_inode(dst, buf.ino.get(), seed);
    }
    Ok(())
}

/// Zero an inode slot (on free), so no stale checksum or mode survives.
pub fn clear(txn: &mut Txn<'_>, g: &Geometry, ino: InodeNo) -> Result<()> {
    let off = g.inode_offset(ino);
    let block = txn.block_mut(off / BLOCK_SIZE_U64)?;
    let at = (off % BLOCK_SIZE_U64) as usize;
    block[at..at + g.inode_size].fill(0);
    Ok(())
}
