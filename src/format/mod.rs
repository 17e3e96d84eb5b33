//! The VexFS disk format, one module per chapter of `format-spec/`.
//!
//! Every struct here is a zero-copy view (`FromBytes + KnownLayout +
//! Immutable + Unaligned`, little-endian fields) written exactly once, pinned
//! by compile-time size asserts and by `tests/spec_offsets.rs`, which checks
//! every field offset against the tables in `format-spec/`.

pub mod bitmap;
pub mod checksum;
pub mod cursor;
pub mod dir;
pub mod events;
pub mod extent;
pub mod features;
pub mod hnsw;
pub mod inode;
pub mod ioctl;
pub mod journal;
pub mod superblock;
pub mod vector;
pub mod xattr;

/// Little-endian field types used by every on-disk struct.
pub use zerocopy::little_endian::{I32 as LeI32, U16 as Le16, U32 as Le32, U64 as Le64};

/// Block size of every VexFS image (format-spec/01-overview.md).
pub const BLOCK_SIZE: usize = 4096;
/// `BLOCK_SIZE` as u64, for offset arithmetic.
pub const BLOCK_SIZE_U64: u64 = BLOCK_SIZE as u64;
/// `s_magic`: 0x56455846 ("VEXF" as a number), stored little-endian, so
/// the bytes at offset 0 are `46 58 45 56`.
pub const VEXFS_MAGIC: u32 = 0x5645_5846;
/// Root directory inode number (the kernel module's choice, not ext2's 2).
pub const ROOT_INO: u32 = 1;
/// The collection catalogue's hidden inode (feature images only).
pub const CATALOG_INO: u32 = 2;
/// First inode number handed to users on feature images (2..10 reserved).
pub const FIRST_INO_V1: u32 = 11;
/// First inode number handed to users on kernel-layout images.
pub const FIRST_INO_KERNEL: u32 = 2;
/// Longest name a directory entry can hold (name_len is a u8).
pub const MAX_NAME_LEN: usize = 255;

/// Field layout of a struct for the spec-offset test: (field, offset, size).
pub type FieldLayout = (&'static str, usize, usize);

/// One struct's layout for the spec-offset test.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Name used in the `<!-- layout: NAME -->` marker in format-spec/.
    pub name: &'static str,
    /// `size_of` the struct.
    pub size: usize,
    /// Added to every field offset: the spec's tables give offsets from the
    /// start of the enclosing on-disk object (e.g. the inode for `InodeExt`).
    pub origin: usize,
    pub fields: &'static [FieldLayout],
}

/// Shorthand for a [`Layout`] at origin 0.
pub const fn layout(name: &'static str, size: usize, fields: &'static [FieldLayout]) -> Layout {
    Layout {
        name,
        size,
        origin: 0,
        fields,
    }
}

/// Size of a struct field, for [`layout_of!`].
pub const fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    core::mem::size_of::<F>()
}

/// Lists a struct's fields as [`FieldLayout`]s, for the spec-offset test.
#[macro_export]
macro_rules! layout_of {
    ($ty:ty { $($field:ident),* $(,)? }) => {
        {
            const FIELDS: &[$crate::format::FieldLayout] = &[$( (
                stringify!($field),
                core::mem::offset_of!($ty, $field),
                $crate::format::field_size(|s: &$ty| &s.$field),
            ) ),*];
            FIELDS
        }
    };
}

/// Every struct's layout, keyed by the name used in `<!-- layout: NAME -->`
/// markers in `format-spec/`.
pub fn all_layouts() -> Vec<Layout> {
    let mut v = Vec::new();
    v.extend(superblock::layouts());
    v.extend(bitmap::layouts());
    v.extend(inode::layouts());
    v.extend(extent::layouts());
    v.extend(dir::layouts());
    v.extend(xattr::layouts());
    v.extend(vector::layouts());
    v.extend(hnsw::layouts());
    v.extend(journal::layouts());
    v.extend(events::layouts());
    v.extend(ioctl::layouts());
    v
}
