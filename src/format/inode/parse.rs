//! Reading an inode's bytes (format-spec/05-inodes.md §5.2-5.4, §5.11):
//! the base alone in the kernel layout, base and extension in a large inode,
//! whose checksum, `i_extra_isize`, file type and size are validated; and
//! computing the checksum a large inode is sealed with.

use super::{
    join_seconds, InodeBase, InodeExt, InodeLarge, Timestamp, BASE_INODE_SIZE, EXTRA_ISIZE_V1, I_CHECKSUM_OFFSET,
    LARGE_INODE_SIZE,
};
use crate::error::{Expected, FsError, Result};
use crate::format::checksum;
use zerocopy::FromBytes;

/// A parsed inode: the base, and the extension for large inodes.
#[derive(Debug, Clone, Copy)]
pub struct InodeView<'a> {
    pub base: &'a InodeBase,
    pub ext: Option<&'a InodeExt>,
}

impl InodeView<'_> {
    /// Access, change and modification times (nanoseconds with large inodes).
    pub fn times(&self) -> [Timestamp; 3] {
        let b = self.base;
        match self.ext {
            Some(e) => [
                Timestamp {
                    sec: join_seconds(b.i_atime.get(), e.i_atime_hi.get()),
                    nsec: e.i_atime_nsec.get(),
                },
                Timestamp {
                    sec: join_seconds(b.i_ctime.get(), e.i_ctime_hi.get()),
                    nsec: e.i_ctime_nsec.get(),
                },
                Timestamp {
                    sec: join_seconds(b.i_mtime.get(), e.i_mtime_hi.get()),
                    nsec: e.i_mtime_nsec.get(),
                },
            ],
            None => [b.i_atime.get(), b.i_ctime.get(), b.i_mtime.get()].map(|s| Timestamp {
                sec: i64::from(s),
                nsec: 0,
            }),
        }
    }

    /// 512-byte sectors in use (64-bit with large inodes).
    pub fn blocks_512(&self) -> u64 {
        let hi = self.ext.map_or(0, |e| e.i_blocks_hi.get());
        (u64::from(hi) << 32) | u64::from(self.base.i_blocks.get())
    }

    /// The xattr block, if any.
    pub fn xattr_block(&self) -> u64 {
        self.ext.map_or(0, |e| e.i_file_acl.get())
    }

    /// Device number of a char/block device (`i_rdev`, or `i_block[0]` in
    /// the kernel layout).
    pub fn rdev(&self) -> u32 {
        self.ext.map_or(self.base.i_block[0].get(), |e| e.i_rdev.get())
    }
}

/// Parse the inode bytes of inode `ino` found at image offset `offset`.
/// `seed` enables checksum verification (large inodes with metadata_csum).
pub fn parse_inode(bytes: &[u8], ino: u32, offset: u64, seed: Option<u32>) -> Result<InodeView<'_>> {
    let base = InodeBase::ref_from_prefix(bytes)
        .map_err(|_| FsError::corrupt("inode", offset, "size", Expected::AtLeast(112), bytes.len() as u64))?
        .0;
    if bytes.len() < LARGE_INODE_SIZE {
        return Ok(InodeView { base, ext: None });
    }
    let large = InodeLarge::ref_from_prefix(bytes).map_err(|_| {
        FsError::corrupt(
            "inode",
            offset,
            "size",
            Expected::Eq(LARGE_INODE_SIZE as u64),
            bytes.len() as u64,
        )
    })?;
    let ext = &large.0.ext;
    if let Some(seed) = seed {
        let want = inode_checksum(&bytes[..LARGE_INODE_SIZE], ino, seed);
        if ext.i_checksum.get() != want {
            return Err(FsError::corrupt(
                "inode",
                offset + I_CHECKSUM_OFFSET as u64,
                "i_checksum",
                Expected::Eq(want.into()),
                ext.i_checksum.get().into(),
            ));
        }
    }
    if !base.is_free() && ext.i_extra_isize.get() != EXTRA_ISIZE_V1 {
        return Err(FsError::corrupt(
            "inode",
            offset + BASE_INODE_SIZE as u64,
            "i_extra_isize",
            Expected::Eq(EXTRA_ISIZE_V1.into()),
            ext.i_extra_isize.get().into(),
        ));
    }
    if !base.is_free() && base.file_type().is_none() {
        return Err(FsError::corrupt(
            "inode",
            offset,
            "i_mode",
            Expected::Known,
            base.mode().into(),
        ));
    }
    if !base.is_free() && base.i_size.get() > MAX_FILE_SIZE {
        return Err(FsError::corrupt(
            "inode",
            offset + core::mem::offset_of!(InodeBase, i_size) as u64,
            "i_size",
            Expected::AtMost(MAX_FILE_SIZE),
            base.i_size.get(),
        ));
    }
    Ok(InodeView { base, ext: Some(ext) })
}

/// The largest file extents can map: 2^32 logical blocks of 4096 bytes
/// (§5.11; the kernel layout's limit, 12 blocks, is checked with the
/// geometry in `fs::inode::load`).
pub const MAX_FILE_SIZE: u64 = (1 << 32) * 4096;

/// Checksum of a large inode: seeded with the inode number, over all 256
/// bytes except `i_checksum`.
pub fn inode_checksum(bytes: &[u8], ino: u32, seed: u32) -> u32 {
    checksum::csum_skipping(seed, u64::from(ino), bytes, I_CHECKSUM_OFFSET)
}

/// Recompute `i_checksum` of a large inode in place.
pub fn seal_inode(bytes: &mut [u8], ino: u32, seed: u32) {
    let c = inode_checksum(bytes, ino, seed);
    bytes[I_CHECKSUM_OFFSET..I_CHECKSUM_OFFSET + 4].copy_from_slice(&c.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::inode::{FileType, S_IFDIR, S_IFREG};
    use zerocopy::{FromZeros, IntoBytes};

    fn large_dir_inode(seed: u32) -> Vec<u8> {
        let mut ino = InodeLarge::new_zeroed();
        ino.base.i_mode.set(S_IFDIR | 0o755);
        ino.base.i_links_count.set(2);
        ino.ext.i_extra_isize.set(EXTRA_ISIZE_V1);
        let mut b = ino.as_bytes().to_vec();
        seal_inode(&mut b, 5, seed);
        b
    }

    #[test]
    fn every_byte_flip_of_a_large_inode_is_detected() {
        let good = large_dir_inode(42);
        assert!(parse_inode(&good, 5, 0, Some(42)).is_ok());
        for i in 0..LARGE_INODE_SIZE {
            let mut b = good.clone();
            b[i] ^= 0x04;
            assert!(parse_inode(&b, 5, 0, Some(42)).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn checksum_error_names_the_field_and_offset() {
        let mut b = large_dir_inode(42);
        b[0] ^= 1;
        let e = parse_inode(&b, 5, 4096, Some(42)).unwrap_err();
        let c = e.corruption().unwrap();
        assert_eq!((c.field, c.offset), ("i_checksum", 4096 + 116));
    }

    #[test]
    fn a_size_past_the_largest_file_is_rejected() {
        let mut b = large_dir_inode(42);
        b[16..24].copy_from_slice(&(MAX_FILE_SIZE + 1).to_le_bytes());
        seal_inode(&mut b, 5, 42);
        let c = parse_inode(&b, 5, 4096, Some(42))
            .unwrap_err()
            .corruption()
            .cloned()
            .unwrap();
        assert_eq!((c.field, c.offset, c.actual), ("i_size", 4096 + 16, MAX_FILE_SIZE + 1));
        b[16..24].copy_from_slice(&MAX_FILE_SIZE.to_le_bytes());
        seal_inode(&mut b, 5, 42);
        assert!(parse_inode(&b, 5, 4096, Some(42)).is_ok());
    }

    #[test]
    fn kernel_inode_reads_without_extension() {
        let mut ino = InodeBase::new_zeroed();
        ino.i_mode.set(S_IFREG | 0o644);
        ino.i_atime.set(100);
        let v = parse_inode(ino.as_bytes(), 3, 0, None).unwrap();
        assert!(v.ext.is_none());
        assert_eq!(v.times()[0], Timestamp { sec: 100, nsec: 0 });
        assert_eq!(v.base.file_type(), Some(FileType::Regular));
    }
}
