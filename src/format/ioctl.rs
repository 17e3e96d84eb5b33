//! The ioctl interface (format-spec/12-ioctl.md).
//!
//! The kernel module's flat vector-metadata ioctls, which FUSE can carry
//! because their argument is a fixed 40-byte struct without pointers.

use super::{layout, Layout, Le32, Le64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `_IOW('V', 1, struct vexfs_vector_file_info)`.
pub const VEXFS_IOC_SET_VECTOR_META: u32 = 0x4028_5601;
/// `_IOR('V', 2, struct vexfs_vector_file_info)`.
pub const VEXFS_IOC_GET_VECTOR_META: u32 = 0x8028_5602;

/// `struct vexfs_vector_file_info`, format-spec/12 §12.2.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VectorFileInfo {
    pub dimensions: Le32,
    pub element_type: Le32,
    pub vector_count: Le32,
    pub storage_format: Le32,
    pub data_offset: Le64,
    pub index_offset: Le64,
    pub compression_type: Le32,
    pub alignment_bytes: Le32,
}

const _: () = assert!(core::mem::size_of::<VectorFileInfo>() == 40);

/// Encode `_IOC(dir, type, nr, size)` as Linux does on x86-64.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: u32) -> u32 {
    (dir << 30) | (size << 16) | ((ty as u32) << 8) | nr as u32
}

const _: () = assert!(ioc(1, b'V', 1, 40) == VEXFS_IOC_SET_VECTOR_META);
const _: () = assert!(ioc(2, b'V', 2, 40) == VEXFS_IOC_GET_VECTOR_META);

/// Field layouts for the spec-offset test.
pub fn layouts() -> Vec<Layout> {
    vec![layout(
        "VectorFileInfo",
        40,
        crate::layout_of!(VectorFileInfo {
            dimensions,
            element_type,
            vector_count,
            storage_format,
            data_offset,
            index_offset,
            compression_type,
            alignment_bytes
        }),
    )]
}
