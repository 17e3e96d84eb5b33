//! Feature flags and compatibility (format-spec/03-features.md).
//!
//! As in ext4: an unknown `incompat` bit refuses the image, an unknown
//! `ro_compat` bit allows a read-only mount, an unknown `compat` bit is
//! ignored. A kernel-layout image has all three words zero.

use crate::error::{FsError, Result};

/// `s_feature_compat`: the journal region exists (format-spec/10-journal.md).
pub const COMPAT_HAS_JOURNAL: u32 = 0x0001;
/// `s_feature_compat`: inodes may point to an xattr block (i_file_acl).
pub const COMPAT_EXT_ATTR: u32 = 0x0002;
/// Every compat bit this implementation knows.
pub const COMPAT_KNOWN: u32 = COMPAT_HAS_JOURNAL | COMPAT_EXT_ATTR;

/// `s_feature_incompat`: region table in the superblock (`s_vx_*`), with
/// multi-block bitmaps, an inode bitmap and summary bitmaps.
pub const INCOMPAT_REGIONS: u32 = 0x0001;
/// `s_feature_incompat`: 64-bit block numbers (`s_blocks_count_hi`, 48-bit
/// extent starts).
pub const INCOMPAT_64BIT: u32 = 0x0002;
/// `s_feature_incompat`: inodes with `EXTENTS_FL` map data with extents.
pub const INCOMPAT_EXTENTS: u32 = 0x0004;
/// `s_feature_incompat`: 256-byte inodes (`s_inode_size` = 256).
pub const INCOMPAT_LARGE_INODE: u32 = 0x0008;
/// `s_feature_incompat`: directories with `INDEX_FL` carry a hash index.
pub const INCOMPAT_DIR_HASH: u32 = 0x0010;
/// `s_feature_incompat`: the journal holds transactions not yet replayed.
pub const INCOMPAT_RECOVER: u32 = 0x0020;
/// `s_feature_incompat`: collections' node records use the packed
/// geometry (format-spec/08 §8.5.1), back to back across blocks.
pub const INCOMPAT_PACKED_NODES: u32 = 0x0040;
/// `s_feature_incompat`: neighbour lists are Rice-coded (format-spec/09
/// §9.5.2) instead of varint-coded.
pub const INCOMPAT_RICE_LISTS: u32 = 0x0080;
/// Every incompat bit this implementation knows.
pub const INCOMPAT_KNOWN: u32 = INCOMPAT_REGIONS
    | INCOMPAT_64BIT
    | INCOMPAT_EXTENTS
    | INCOMPAT_LARGE_INODE
    | INCOMPAT_DIR_HASH
    | INCOMPAT_RECOVER
    | INCOMPAT_PACKED_NODES
    | INCOMPAT_RICE_LISTS;

/// `s_feature_ro_compat`: CRC-32 checksums on all metadata.
pub const RO_COMPAT_METADATA_CSUM: u32 = 0x0001;
/// `s_feature_ro_compat`: vector collections (catalogue inode 2).
pub const RO_COMPAT_VECTORS: u32 = 0x0002;
/// `s_feature_ro_compat`: HNSW graphs in the collections' node files.
pub const RO_COMPAT_HNSW: u32 = 0x0004;
/// `s_feature_ro_compat`: the semantic event ring region exists.
pub const RO_COMPAT_EVENTS: u32 = 0x0008;
/// Every ro_compat bit this implementation knows.
pub const RO_COMPAT_KNOWN: u32 = RO_COMPAT_METADATA_CSUM | RO_COMPAT_VECTORS | RO_COMPAT_HNSW | RO_COMPAT_EVENTS;

/// The feature words of one image, with the rules between them checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features {
    pub compat: u32,
    pub incompat: u32,
    pub ro_compat: u32,
}

/// How an image may be opened given its features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Unknown ro_compat bits: read-only only.
    ReadOnlyOnly,
}

/// Names of the known bits, for inspect and error messages.
pub const NAMES: &[(&str, u32, &str)] = &[
    ("compat", COMPAT_HAS_JOURNAL, "has_journal"),
    ("compat", COMPAT_EXT_ATTR, "ext_attr"),
    ("incompat", INCOMPAT_REGIONS, "regions"),
    ("incompat", INCOMPAT_64BIT, "64bit"),
    ("incompat", INCOMPAT_EXTENTS, "extents"),
    ("incompat", INCOMPAT_LARGE_INODE, "large_inode"),
    ("incompat", INCOMPAT_DIR_HASH, "dir_hash"),
    ("incompat", INCOMPAT_RECOVER, "needs_recovery"),
    ("incompat", INCOMPAT_PACKED_NODES, "packed_nodes"),
    ("incompat", INCOMPAT_RICE_LISTS, "rice_lists"),
    ("ro_compat", RO_COMPAT_METADATA_CSUM, "metadata_csum"),
    ("ro_compat", RO_COMPAT_VECTORS, "vectors"),
    ("ro_compat", RO_COMPAT_HNSW, "hnsw"),
    ("ro_compat", RO_COMPAT_EVENTS, "events"),
];

/// The v1 features mkfs enables by default.
pub const V1_DEFAULT: Features = Features {
    compat: COMPAT_HAS_JOURNAL | COMPAT_EXT_ATTR,
    incompat: INCOMPAT_REGIONS
        | INCOMPAT_64BIT
        | INCOMPAT_EXTENTS
        | INCOMPAT_LARGE_INODE
        | INCOMPAT_DIR_HASH
        | INCOMPAT_PACKED_NODES
        | INCOMPAT_RICE_LISTS,
    ro_compat: RO_COMPAT_METADATA_CSUM | RO_COMPAT_VECTORS | RO_COMPAT_HNSW | RO_COMPAT_EVENTS,
};

impl Features {
    /// The node-record layout of the image's collections (§8.5.1).
    pub fn node_layout(&self) -> crate::format::vector::NodeLayout {
        if self.has_incompat(INCOMPAT_PACKED_NODES) {
            crate::format::vector::NodeLayout::Packed
        } else {
            crate::format::vector::NodeLayout::V1
        }
    }

    /// How the image's neighbour lists are coded (format-spec/09 §9.5).
    pub fn list_coding(&self) -> crate::format::hnsw::ListCoding {
        if self.has_incompat(INCOMPAT_RICE_LISTS) {
            crate::format::hnsw::ListCoding::Rice
        } else {
            crate::format::hnsw::ListCoding::Varint
        }
    }

    /// True when no feature bit is set: the kernel module's layout.
    pub fn is_kernel_layout(&self) -> bool {
        self.compat == 0 && self.incompat == 0 && self.ro_compat == 0
    }

    pub fn has_incompat(&self, bit: u32) -> bool {
        self.incompat & bit != 0
    }

    pub fn has_ro_compat(&self, bit: u32) -> bool {
        self.ro_compat & bit != 0
    }

    pub fn has_compat(&self, bit: u32) -> bool {
        self.compat & bit != 0
    }

    /// Checks the compatibility rules and the dependencies between bits.
    pub fn check(&self) -> Result<Access> {
        let unknown = self.incompat & !INCOMPAT_KNOWN;
        if unknown != 0 {
            return Err(FsError::Unsupported(format!(
                "unknown incompatible feature bits {unknown:#x} in s_feature_incompat; \
                 this VexFS cannot read the image"
            )));
        }
        self.check_dependencies()?;
        if self.ro_compat & !RO_COMPAT_KNOWN != 0 {
            return Ok(Access::ReadOnlyOnly);
        }
        Ok(Access::ReadWrite)
    }

    fn check_dependencies(&self) -> Result<()> {
        let needs_regions = (self.incompat & !INCOMPAT_REGIONS != 0) || self.ro_compat != 0 || self.compat != 0;
        if needs_regions && !self.has_incompat(INCOMPAT_REGIONS) {
            return Err(FsError::Unsupported(
                "feature bits set without the 'regions' layout (s_feature_incompat bit 0x1)".into(),
            ));
        }
        let pairs = [
            (
                self.has_incompat(INCOMPAT_RECOVER),
                self.has_compat(COMPAT_HAS_JOURNAL),
                "needs_recovery requires has_journal",
            ),
            (
                self.has_ro_compat(RO_COMPAT_HNSW),
                self.has_ro_compat(RO_COMPAT_VECTORS),
                "hnsw requires vectors",
            ),
            (
                self.has_incompat(INCOMPAT_PACKED_NODES),
                self.has_ro_compat(RO_COMPAT_VECTORS),
                "packed_nodes requires vectors",
            ),
            (
                self.has_incompat(INCOMPAT_RICE_LISTS),
                self.has_ro_compat(RO_COMPAT_HNSW),
                "rice_lists requires hnsw",
            ),
            (
                self.has_ro_compat(RO_COMPAT_VECTORS),
                self.has_incompat(INCOMPAT_EXTENTS),
                "vectors requires extents",
            ),
            (
                self.has_ro_compat(RO_COMPAT_VECTORS),
                self.has_incompat(INCOMPAT_LARGE_INODE),
                "vectors requires large_inode",
            ),
            (
                self.has_compat(COMPAT_EXT_ATTR),
                self.has_incompat(INCOMPAT_LARGE_INODE),
                "ext_attr requires large_inode",
            ),
            (
                self.has_ro_compat(RO_COMPAT_METADATA_CSUM),
                self.has_incompat(INCOMPAT_LARGE_INODE),
                "metadata_csum requires large_inode",
            ),
        ];
        for (has, needs, why) in pairs {
            if has && !needs {
                return Err(FsError::Unsupported(format!("inconsistent features: {why}")));
            }
        }
        Ok(())
    }

    /// Names of the set bits, e.g. `["has_journal", "regions", ...]`;
    /// unknown bits are shown as `compat:0x100`.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (word, value) in [
            ("compat", self.compat),
            ("incompat", self.incompat),
            ("ro_compat", self.ro_compat),
        ] {
            for bit in 0..32 {
                let b = 1u32 << bit;
                if value & b == 0 {
                    continue;
                }
                match NAMES.iter().find(|(w, v, _)| *w == word && *v == b) {
                    Some((_, _, n)) => out.push((*n).to_string()),
                    None => out.push(format!("{word}:{b:#x}")),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_incompat_refuses() {
        let f = Features {
            incompat: INCOMPAT_REGIONS | 0x8000,
            ..Default::default()
        };
        assert!(matches!(f.check(), Err(FsError::Unsupported(_))));
    }

    #[test]
    fn unknown_ro_compat_is_read_only() {
        let f = Features {
            incompat: INCOMPAT_REGIONS,
            ro_compat: 0x100,
            ..Default::default()
        };
        assert_eq!(f.check().unwrap(), Access::ReadOnlyOnly);
    }

    #[test]
    fn unknown_compat_is_ignored() {
        let f = Features {
            incompat: INCOMPAT_REGIONS,
            compat: 0x100,
            ..Default::default()
        };
        assert_eq!(f.check().unwrap(), Access::ReadWrite);
    }

    #[test]
    fn kernel_layout_and_v1_default_are_valid() {
        assert_eq!(Features::default().check().unwrap(), Access::ReadWrite);
        assert!(Features::default().is_kernel_layout());
        assert_eq!(V1_DEFAULT.check().unwrap(), Access::ReadWrite);
    }

    #[test]
    fn rice_lists_need_hnsw_and_pick_the_coding() {
        use crate::format::hnsw::ListCoding;
        assert_eq!(V1_DEFAULT.list_coding(), ListCoding::Rice);
        let mut f = V1_DEFAULT;
        f.incompat &= !INCOMPAT_RICE_LISTS;
        assert_eq!(
            (f.check().unwrap(), f.list_coding()),
            (Access::ReadWrite, ListCoding::Varint)
        );
        let mut f = V1_DEFAULT;
        f.ro_compat &= !RO_COMPAT_HNSW;
        let e = f.check().unwrap_err().to_string();
        assert!(e.contains("rice_lists requires hnsw"), "{e}");
    }

    #[test]
    fn features_without_regions_are_refused() {
        let f = Features {
            incompat: INCOMPAT_EXTENTS,
            ..Default::default()
        };
        assert!(f.check().is_err());
    }
}
