//! The files of a new v1 image: the root directory, each collection's node
//! and upper files, and the catalogue, placed by a bump allocator.

use super::{block_mut, write_dot_entries};
use crate::error::{FsError, Result};
use crate::format::dir;
use crate::format::inode::{self, InodeLarge, EXTENTS_FL, EXTRA_ISIZE_V1, S_IFDIR, S_IFREG};
use crate::format::vector::{self, CatalogHeader, CollectionHeader, CollectionRecord};
use crate::format::{extent, BLOCK_SIZE, BLOCK_SIZE_U64, CATALOG_INO, ROOT_INO};
use crate::mkfs::{CollectionSpec, Plan};
use zerocopy::{FromZeros, IntoBytes};

/// The stored int8 scale: 1.0 for int8 collections (a later rescale may
/// change it), 0.0 for the others (format-spec/08-vectors.md §8.3).
fn int8_scale(spec: &CollectionSpec) -> f32 {
    if spec.elem == vector::ElemType::Int8 {
        1.0
    } else {
        0.0
    }
}

/// State of a v1 build: a bump allocator over data blocks and inodes.
pub(super) struct Builder<'a> {
    pub(super) img: &'a mut [u8],
    pub(super) plan: &'a Plan,
    pub(super) seed: u32,
    pub(super) time: i64,
    pub(super) owner: (u32, u32),
    pub(super) next_block: u64,
    pub(super) next_ino: u32,
    pub(super) node_layout: vector::NodeLayout,
    pub(super) list_coding: crate::format::hnsw::ListCoding,
}

impl Builder<'_> {
    fn alloc_blocks(&mut self, n: u64) -> Result<u64> {
        let b = self.next_block;
        if b + n > self.plan.blocks {
            return Err(FsError::NoSpace);
        }
        self.next_block += n;
        Ok(b)
    }

    fn new_inode(&self, mode: u16, links: u16) -> InodeLarge {
        let mut i = InodeLarge::new_zeroed();
        i.base.i_mode.set(mode);
        i.base.i_links_count.set(links);
        i.base.i_uid.set(self.owner.0);
        i.base.i_gid.set(self.owner.1);
        let (lo, hi) = inode::split_seconds(self.time);
        for t in [&mut i.base.i_atime, &mut i.base.i_ctime, &mut i.base.i_mtime] {
            t.set(lo);
        }
        for t in [
            &mut i.ext.i_atime_hi,
            &mut i.ext.i_ctime_hi,
            &mut i.ext.i_mtime_hi,
            &mut i.ext.i_crtime_hi,
        ] {
            t.set(hi);
        }
        i.ext.i_crtime.set(lo);
        i.ext.i_extra_isize.set(EXTRA_ISIZE_V1);
        i.base.i_flags.set(EXTENTS_FL);
        extent::init_root(i.base.i_block.as_mut_bytes());
        i
    }

    /// Map `blocks` blocks at `start` as the file's only extent.
    fn map_single_extent(ino: &mut InodeLarge, start: u64, blocks: u64, size: u64) {
        let root = ino.base.i_block.as_mut_bytes();
        if blocks > 0 {
            root[2..4].copy_from_slice(&1u16.to_le_bytes());
            root[12..24].copy_from_slice(extent::Extent::new(0, start, blocks as u16, false).as_bytes());
        }
        ino.base.i_size.set(size);
        ino.base.i_blocks.set((blocks * 8) as u32);
    }

    fn put_inode(&mut self, n: u32, ino: &InodeLarge) {
        let off = (self.plan.inode_table.start * BLOCK_SIZE_U64 + u64::from(n - 1) * 256) as usize;
        let bytes = &mut self.img[off..off + 256];
        bytes.copy_from_slice(ino.as_bytes());
        inode::seal_inode(bytes, n, self.seed);
    }

    pub(super) fn root_dir(&mut self) -> Result<()> {
        let b = self.alloc_blocks(1)?;
        let blk = block_mut(self.img, b);
        write_dot_entries(blk, ROOT_INO, ROOT_INO, true);
        dir::seal_leaf_tail(blk, b, ROOT_INO, self.seed);
        let mut ino = self.new_inode(S_IFDIR | 0o755, 2);
        Self::map_single_extent(&mut ino, b, 1, BLOCK_SIZE_U64);
        self.put_inode(ROOT_INO, &ino);
        Ok(())
    }

    /// Node file (header block) and empty upper file for one collection.
    pub(super) fn collection(&mut self, id: u32, spec: &CollectionSpec) -> Result<CollectionRecord> {
        let (node_ino, upper_ino) = (self.next_ino, self.next_ino + 1);
        self.next_ino += 2;
        let geo = vector::node_geometry(spec.dim, spec.elem, spec.m, self.node_layout, self.list_coding);
        let mut h = CollectionHeader::new_zeroed();
        h.ch_magic.set(vector::COLLECTION_MAGIC);
        h.ch_collection_id.set(id);
        h.ch_dim.set(spec.dim);
        h.ch_elem_type = spec.elem as u8;
        h.ch_metric = spec.metric as u8;
        h.ch_m.set(spec.m);
        h.ch_node_stride.set(geo.stride);
        h.ch_vector_offset.set(geo.vector_offset);
        h.ch_adj_offset.set(geo.adj_offset);
        h.ch_adj_capacity.set(geo.adj_capacity);
        // Empty collection: free chain empty (0), entry point unset (0).
        h.ch_free_head.set(0);
        h.ch_entry_slot.set(0);
        h.ch_upper_ino.set(upper_ino);
        h.ch_upper_stride
            .set(16 + (u32::from(spec.m) * 3 + 8).next_multiple_of(8));
        h.ch_int8_scale.set(int8_scale(spec).to_bits());
        let b = self.alloc_blocks(1)?;
        let blk = block_mut(self.img, b);
        blk.fill(0);
        blk[..88].copy_from_slice(h.as_bytes());
        let c = vector::collection_header_checksum(&blk[..88], node_ino, self.seed);
        blk[84..88].copy_from_slice(&c.to_le_bytes());
        let mut node = self.new_inode(S_IFREG | 0o600, 1);
        Self::map_single_extent(&mut node, b, 1, BLOCK_SIZE_U64);
        self.put_inode(node_ino, &node);
        let upper = self.new_inode(S_IFREG | 0o600, 1);
        self.put_inode(upper_ino, &upper);
        Ok(CollectionRecord {
            id,
            name: spec.name.clone(),
            dim: spec.dim,
            metric: spec.metric as u8,
            elem_type: spec.elem as u8,
            int8_scale: int8_scale(spec),
            m: spec.m,
            ef_construction: spec.ef_construction,
            node_ino,
            created: self.time,
        })
    }

    /// The catalogue file (inode 2): header + rkyv archive of the records.
    pub(super) fn catalogue(&mut self, records: &[CollectionRecord]) -> Result<()> {
        let archived = crate::catalog::encode_records(records)?;
        let mut h = CatalogHeader::new_zeroed();
        h.cat_magic.set(vector::CATALOG_MAGIC);
        h.cat_version.set(1);
        h.cat_len.set(archived.len() as u32);
        h.cat_generation.set(1);
        h.cat_next_id.set(records.len() as u32 + 1);
        h.cat_checksum
            .set(vector::catalog_checksum(h.as_bytes(), &archived, self.seed));
        let size = 32 + archived.len() as u64;
        let blocks = size.div_ceil(BLOCK_SIZE_U64);
        let b = self.alloc_blocks(blocks)?;
        let start = b as usize * BLOCK_SIZE;
        self.img[start..start + blocks as usize * BLOCK_SIZE].fill(0);
        self.img[start..start + 32].copy_from_slice(h.as_bytes());
        self.img[start + 32..start + size as usize].copy_from_slice(&archived);
        let mut ino = self.new_inode(S_IFREG | 0o600, 1);
        Self::map_single_extent(&mut ino, b, blocks, size);
        self.put_inode(CATALOG_INO, &ino);
        Ok(())
    }
}
