//! Inodes (format-spec/05-inodes.md).
//!
//! Every image starts from the kernel module's 112-byte inode
//! ([`InodeBase`]). Images with `large_inode` store 256-byte inodes: the same
//! base followed by [`InodeExt`] (nanosecond and 64-bit timestamps, a
//! checksum, the xattr block, the vector-slot reference).
//!
//! This module holds the byte layout, constants and field accessors;
//! `parse` reads an inode's bytes into an [`InodeView`] (validated, with
//! its checksum verified) and seals a large inode's checksum.

mod parse;

pub use parse::{inode_checksum, parse_inode, seal_inode, InodeView, MAX_FILE_SIZE};

use super::{FieldLayout, Layout, Le16, Le32, Le64, BLOCK_SIZE};
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

    #[test]
    fn seconds_round_trip_including_negative() {
        for s in [0i64, 1, -1, i64::from(u32::MAX) + 5, -(1 << 40)] {
            let (lo, hi) = split_seconds(s);
            assert_eq!(join_seconds(lo, hi), s);
        }
    }
}
