//! Inodes (format-spec/05-inodes.md).
//!
//! Every image starts from the kernel module's 112-byte inode
//! ([`InodeBase`]). Images with `large_inode` store 256-byte inodes: the same
//! base followed by [`InodeExt`] (nanosecond and 64-bit timestamps, a
//! checksum, the xattr block, the vector-slot reference).

use super::{checksum, FieldLayout, Layout, Le16, Le32, Le64, BLOCK_SIZE};
use crate::error::{Expected, FsError, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Size of a kernel-layout inode.
pub const BASE_INODE_SIZE: usize = 112;
/// Size of a large inode.
pub const LARGE_INODE_SIZE: usize = 256;
/// Kernel layout: inodes per inode-table block (36 * 112 = 4032).
pub const KERNEL_INODES_PER_BLOCK: u64 = (BLOCK_SIZE / BASE_INODE_SIZE) as u64;
/// Large inodes per inode-table block.
pub const LARGE_INODES_PER_BLOCK: u64 = (BLOCK_SIZE / LARGE_INODE_SIZE) as u64;
/// `i_extra_isize` of a v1 large inode.
pub const EXTRA_ISIZE_V1: u16 = (LARGE_INODE_SIZE - BASE_INODE_SIZE) as u16;
/// Bytes of `i_block` (12 le32 slots), used for block maps, extent roots and
/// fast symlinks.
pub const I_BLOCK_BYTES: usize = 48;
/// Number of direct block pointers of a kernel-layout file.
pub const DIRECT_BLOCKS: usize = 12;

/// `i_flags`: append only.
pub const APPEND_FL: u32 = 0x0000_0020;
/// `i_flags`: immutable.
pub const IMMUTABLE_FL: u32 = 0x0000_0010;
/// `i_flags`: directory carries a hash index (format-spec/06).
pub const INDEX_FL: u32 = 0x0000_1000;
/// `i_flags`: `i_block` holds an extent tree root (format-spec/05 §5.5).
pub const EXTENTS_FL: u32 = 0x0008_0000;
/// `i_flags`: the inode has at least one vector attached.
pub const VECTOR_FL: u32 = 0x4000_0000;

/// File type bits of `i_mode`.
pub const S_IFMT: u16 = 0o170000;
pub const S_IFSOCK: u16 = 0o140000;
pub const S_IFLNK: u16 = 0o120000;
pub const S_IFREG: u16 = 0o100000;
pub const S_IFBLK: u16 = 0o060000;
pub const S_IFDIR: u16 = 0o040000;
pub const S_IFCHR: u16 = 0o020000;
pub const S_IFIFO: u16 = 0o010000;

/// The kernel module's inode, format-spec/05-inodes.md §5.2.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct InodeBase {
    pub i_mode: Le16,
    pub i_links_count: Le16,
    pub i_uid: Le32,
    pub i_gid: Le32,
    pub i_pad0: [u8; 4],
    pub i_size: Le64,
    pub i_atime: Le32,
    pub i_ctime: Le32,
    pub i_mtime: Le32,
    pub i_blocks: Le32,
    pub i_block: [Le32; 12],
    pub i_flags: Le32,
    pub i_generation: Le32,
    pub i_reserved: [Le32; 3],
    pub i_pad1: [u8; 4],
}

/// The large-inode extension at byte 112, format-spec/05-inodes.md §5.3.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct InodeExt {
    pub i_extra_isize: Le16,
    pub i_pad2: Le16,
    pub i_checksum: Le32,
    pub i_atime_nsec: Le32,
    pub i_ctime_nsec: Le32,
    pub i_mtime_nsec: Le32,
    pub i_crtime_nsec: Le32,
    pub i_atime_hi: Le32,
    pub i_ctime_hi: Le32,
    pub i_mtime_hi: Le32,
    pub i_crtime_hi: Le32,
    pub i_crtime: Le32,
    pub i_blocks_hi: Le32,
    pub i_file_acl: Le64,
    pub i_vector_slot: Le64,
    pub i_vector_coll: Le32,
    pub i_next_orphan: Le32,
    pub i_projid: Le32,
    pub i_rdev: Le32,
    pub i_parent: Le32,
    pub i_reserved2: [u8; 60],
}

/// A 256-byte inode: base then extension.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct InodeLarge {
    pub base: InodeBase,
    pub ext: InodeExt,
}

const _: () = assert!(core::mem::size_of::<InodeBase>() == BASE_INODE_SIZE);
const _: () = assert!(core::mem::size_of::<InodeLarge>() == LARGE_INODE_SIZE);
const _: () = assert!(core::mem::offset_of!(InodeBase, i_size) == 16);
const _: () = assert!(core::mem::offset_of!(InodeBase, i_block) == 40);
const _: () = assert!(core::mem::offset_of!(InodeBase, i_reserved) == 96);
/// Offset of `i_checksum` within a large inode.
pub const I_CHECKSUM_OFFSET: usize = BASE_INODE_SIZE + core::mem::offset_of!(InodeExt, i_checksum);

/// A validated inode number (1-based, at most `s_inodes_count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InodeNo(u32);

impl InodeNo {
    /// Validate `n` against the image's inode count.
    pub fn new(n: u32, inodes_count: u32) -> Option<InodeNo> {
        (n >= 1 && n <= inodes_count).then_some(InodeNo(n))
    }
    pub fn get(self) -> u32 {
        self.0
    }
    /// The root directory.
    pub const ROOT: InodeNo = InodeNo(super::ROOT_INO);
}

/// The file type encoded in `i_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    Symlink,
}

impl FileType {
    /// Decode the `S_IFMT` bits; `None` for an invalid type.
    pub fn from_mode(mode: u16) -> Option<FileType> {
        Some(match mode & S_IFMT {
            S_IFREG => FileType::Regular,
            S_IFDIR => FileType::Directory,
            S_IFCHR => FileType::CharDevice,
            S_IFBLK => FileType::BlockDevice,
            S_IFIFO => FileType::Fifo,
            S_IFSOCK => FileType::Socket,
            S_IFLNK => FileType::Symlink,
            _ => return None,
        })
    }

    /// The ext2 directory-entry file type code (format-spec/06 §6.2).
    pub fn dirent_code(self) -> u8 {
        match self {
            FileType::Regular => 1,
            FileType::Directory => 2,
            FileType::CharDevice => 3,
            FileType::BlockDevice => 4,
            FileType::Fifo => 5,
            FileType::Socket => 6,
            FileType::Symlink => 7,
        }
    }

    /// One-letter name as `ls -l` prints it.
    pub fn letter(self) -> char {
        match self {
            FileType::Regular => '-',
            FileType::Directory => 'd',
            FileType::CharDevice => 'c',
            FileType::BlockDevice => 'b',
            FileType::Fifo => 'p',
            FileType::Socket => 's',
            FileType::Symlink => 'l',
        }
    }
}

/// Seconds and nanoseconds of a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamp {
    pub sec: i64,
    pub nsec: u32,
}

impl InodeBase {
    pub fn mode(&self) -> u16 {
        self.i_mode.get()
    }
    pub fn file_type(&self) -> Option<FileType> {
        FileType::from_mode(self.mode())
    }
    pub fn flags(&self) -> u32 {
        self.i_flags.get()
    }
    pub fn is_free(&self) -> bool {
        self.i_mode.get() == 0
    }
    /// The `i_block` area as raw bytes (block map, extent root or symlink).
    pub fn i_block_bytes(&self) -> &[u8] {
        self.i_block.as_bytes()
    }
}

/// Join a low u32 and high u32 of seconds into i64 (two's complement).
pub fn join_seconds(lo: u32, hi: u32) -> i64 {
    ((u64::from(hi) << 32) | u64::from(lo)) as i64
}

/// Split i64 seconds into (lo, hi).
pub fn split_seconds(sec: i64) -> (u32, u32) {
    let u = sec as u64;
    (u as u32, (u >> 32) as u32)
}

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

/// Field layouts for the spec-offset test.
pub fn layouts() -> Vec<Layout> {
    vec![
        super::layout(
            "InodeBase",
            core::mem::size_of::<InodeBase>(),
            crate::layout_of!(InodeBase {
                i_mode,
                i_links_count,
                i_uid,
                i_gid,
                i_pad0,
                i_size,
                i_atime,
                i_ctime,
                i_mtime,
                i_blocks,
                i_block,
                i_flags,
                i_generation,
                i_reserved,
                i_pad1
            }),
        ),
        Layout {
            name: "InodeExt",
            size: core::mem::size_of::<InodeExt>(),
            origin: BASE_INODE_SIZE,
            fields: ext_fields(),
        },
    ]
}

fn ext_fields() -> &'static [FieldLayout] {
    crate::layout_of!(InodeExt {
        i_extra_isize,
        i_pad2,
        i_checksum,
        i_atime_nsec,
        i_ctime_nsec,
        i_mtime_nsec,
        i_crtime_nsec,
        i_atime_hi,
        i_ctime_hi,
        i_mtime_hi,
        i_crtime_hi,
        i_crtime,
        i_blocks_hi,
        i_file_acl,
        i_vector_slot,
        i_vector_coll,
        i_next_orphan,
        i_projid,
        i_rdev,
        i_parent,
        i_reserved2
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

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

    #[test]
    fn seconds_round_trip_including_negative() {
        for s in [0i64, 1, -1, i64::from(u32::MAX) + 5, -(1 << 40)] {
            let (lo, hi) = split_seconds(s);
            assert_eq!(join_seconds(lo, hi), s);
        }
    }
}
