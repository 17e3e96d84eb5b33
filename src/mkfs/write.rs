//! Writing the metadata of a new image into the mapped bytes.

use super::{MkfsOptions, MkfsSummary, Plan, Progress};
use crate::error::{FsError, Result};
use crate::format::bitmap::{self, BITS_PER_KERNEL_BLOCK, BITS_PER_TAILED_BLOCK};
use crate::format::dir::{self, rec_len_for};
use crate::format::features::{self, Features, V1_DEFAULT};
use crate::format::inode::{self, InodeBase, InodeLarge, EXTENTS_FL, EXTRA_ISIZE_V1, S_IFDIR, S_IFREG};
use crate::format::superblock::{self, Superblock};
use crate::format::vector::{self, CatalogHeader, CollectionHeader, CollectionRecord};
use crate::format::{
    checksum, events, extent, journal, BLOCK_SIZE, BLOCK_SIZE_U64, CATALOG_INO, FIRST_INO_KERNEL, FIRST_INO_V1,
    ROOT_INO,
};
use crate::layout::{Region, KERNEL_INODES, KERNEL_ROOT_DIR_BLOCK};
use zerocopy::{FromZeros, IntoBytes};

/// The stored int8 scale: 1.0 for int8 collections (a later rescale may
/// change it), 0.0 for the others (format-spec/08-vectors.md §8.3).
fn int8_scale(spec: &super::CollectionSpec) -> f32 {
    if spec.elem == vector::ElemType::Int8 {
        1.0
    } else {
        0.0
    }
}

fn block_mut(img: &mut [u8], n: u64) -> &mut [u8] {
    let s = n as usize * BLOCK_SIZE;
    &mut img[s..s + BLOCK_SIZE]
}

fn fill_common(sb: &mut Superblock, opts: &MkfsOptions, uuid: [u8; 16], time: i64) {
    sb.s_magic.set(crate::format::VEXFS_MAGIC);
    sb.s_block_size.set(BLOCK_SIZE as u32);
    sb.s_log_block_size.set(2);
    sb.s_max_mnt_count.set(0xFFFF);
    sb.s_state.set(superblock::STATE_VALID);
    sb.s_errors.set(2);
    sb.s_rev_level.set(1);
    sb.s_uuid = uuid;
    let label = opts.label.as_bytes();
    sb.s_volume_name[..label.len().min(16)].copy_from_slice(&label[..label.len().min(16)]);
    sb.s_mkfs_time.set(time as u32);
    sb.s_mkfs_time_hi = (time >> 32) as u8;
    sb.s_wtime.set(time as u32);
    sb.s_wtime_hi = (time >> 32) as u8;
    sb.s_lastcheck.set(time as u32);
}

/// Write a kernel-layout image: the VexFS kernel module's fixed layout.
pub fn kernel(img: &mut [u8], blocks: u64, opts: &MkfsOptions, uuid: [u8; 16], time: i64) -> Result<MkfsSummary> {
    img[..(KERNEL_ROOT_DIR_BLOCK as usize + 1) * BLOCK_SIZE].fill(0);
    let bits = block_mut(img, 1);
    set_range(bits, 0, KERNEL_ROOT_DIR_BLOCK + 1);
    set_range(bits, blocks, BITS_PER_KERNEL_BLOCK);
    let mut root = InodeBase::new_zeroed();
    root.i_mode.set(S_IFDIR | 0o755);
    root.i_links_count.set(2);
    root.i_size.set(BLOCK_SIZE_U64);
    root.i_blocks.set(8);
    for t in [&mut root.i_atime, &mut root.i_ctime, &mut root.i_mtime] {
        t.set(time as u32);
    }
    root.i_block[0].set(KERNEL_ROOT_DIR_BLOCK as u32);
    let off = 2 * BLOCK_SIZE;
    img[off..off + inode::BASE_INODE_SIZE].copy_from_slice(root.as_bytes());
    write_dot_entries(block_mut(img, KERNEL_ROOT_DIR_BLOCK), ROOT_INO, ROOT_INO, false);
    let mut sb = Superblock::zeroed();
    fill_common(&mut sb, opts, uuid, time);
    let free_blocks = blocks - (KERNEL_ROOT_DIR_BLOCK + 1);
    sb.s_blocks_count.set(blocks as u32);
    sb.s_free_blocks.set(free_blocks as u32);
    sb.s_inodes_count.set(KERNEL_INODES as u32);
    sb.s_free_inodes.set(KERNEL_INODES as u32 - 1);
    sb.s_first_data_block.set(KERNEL_ROOT_DIR_BLOCK as u32);
    sb.s_blocks_per_group.set(BITS_PER_KERNEL_BLOCK as u32);
    sb.s_inodes_per_group.set(KERNEL_INODES as u32);
    sb.s_first_ino.set(FIRST_INO_KERNEL);
    sb.s_inode_size.set(inode::BASE_INODE_SIZE as u16);
    sb.update_checksum();
    img[..superblock::SUPERBLOCK_SIZE].copy_from_slice(sb.as_bytes());
    Ok(MkfsSummary {
        blocks,
        inodes: KERNEL_INODES as u32,
        free_blocks,
        free_inodes: KERNEL_INODES as u32 - 1,
        first_data_block: KERNEL_ROOT_DIR_BLOCK,
        journal_blocks: 0,
        event_blocks: 0,
        uuid,
        features: Vec::new(),
    })
}

/// Set bits `from..to` (LSB first) of a bitmap, whole bytes at a time.
fn set_range(bits: &mut [u8], from: u64, to: u64) {
    let to = to.min(bits.len() as u64 * 8);
    let mut n = from;
    while n < to {
        if n.is_multiple_of(8) && n + 8 <= to {
            let (a, b) = ((n / 8) as usize, (to / 8) as usize);
            bits[a..b].fill(0xff);
            n = to / 8 * 8;
        } else {
            bitmap::set_bit(bits, n, true);
            n += 1;
        }
    }
}

/// "." and ".." filling a fresh directory block (with a tail when checksummed).
fn write_dot_entries(block: &mut [u8], ino: u32, parent: u32, tail: bool) {
    block.fill(0);
    let end = if tail {
        BLOCK_SIZE - dir::DIR_TAIL_SIZE
    } else {
        BLOCK_SIZE
    };
    let dot = rec_len_for(1);
    dir::write_entry(block, 0, ino, dot as u16, 2, b".");
    dir::write_entry(block, dot, parent, (end - dot) as u16, 2, b"..");
}

/// State of a v1 build: a bump allocator over data blocks and inodes.
struct Builder<'a> {
    img: &'a mut [u8],
    plan: &'a Plan,
    seed: u32,
    time: i64,
    owner: (u32, u32),
    next_block: u64,
    next_ino: u32,
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

    fn root_dir(&mut self) -> Result<()> {
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
    fn collection(&mut self, id: u32, spec: &super::CollectionSpec) -> Result<CollectionRecord> {
        let (node_ino, upper_ino) = (self.next_ino, self.next_ino + 1);
        self.next_ino += 2;
        let geo = vector::node_geometry(spec.dim, spec.elem, spec.m);
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
    fn catalogue(&mut self, records: &[CollectionRecord]) -> Result<()> {
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

/// Write a tailed bitmap region and its summary: bits below `used` and at or
/// past `valid` are set. Returns the number of free bits.
fn write_bitmaps(
    img: &mut [u8],
    leaves: Region,
    summary: Region,
    valid: u64,
    used: u64,
    seed: u32,
    progress: &mut dyn FnMut(),
) -> u64 {
    let per = BITS_PER_TAILED_BLOCK;
    let mut free = 0;
    let mut full_leaves = Vec::new();
    for i in 0..leaves.blocks {
        let (lo, hi) = (i * per, (i + 1) * per);
        let blk = block_mut(img, leaves.start + i);
        blk.fill(0);
        let bits = &mut blk[..bitmap::TAILED_BITS_BYTES];
        set_range(bits, 0, used.clamp(lo, hi) - lo);
        set_range(bits, valid.clamp(lo, hi) - lo, per);
        bitmap::seal_tailed(blk, leaves.start + i, Some(seed), per);
        let leaf_free = u64::from(u32::from_le_bytes(
            blk[bitmap::TAILED_BITS_BYTES..bitmap::TAILED_BITS_BYTES + 4]
                .try_into()
                .unwrap_or_default(),
        ));
        free += leaf_free;
        if leaf_free == 0 {
            full_leaves.push(i);
        }
        progress();
    }
    for j in 0..summary.blocks {
        let blk = block_mut(img, summary.start + j);
        blk.fill(0);
        let bits = &mut blk[..bitmap::TAILED_BITS_BYTES];
        for &leaf in full_leaves.iter().filter(|&&l| l / per == j) {
            bitmap::set_bit(bits, leaf % per, true);
        }
        set_range(bits, leaves.blocks.clamp(j * per, (j + 1) * per) - j * per, per);
        bitmap::seal_tailed(blk, summary.start + j, Some(seed), per);
    }
    free
}

fn v1_superblock(plan: &Plan, opts: &MkfsOptions, uuid: [u8; 16], time: i64, feats: Features) -> Superblock {
    let mut sb = Superblock::zeroed();
    fill_common(&mut sb, opts, uuid, time);
    sb.s_feature_compat.set(feats.compat);
    sb.s_feature_incompat.set(feats.incompat);
    sb.s_feature_ro_compat.set(feats.ro_compat);
    sb.set_blocks_count(plan.blocks);
    sb.s_inodes_count.set(plan.inodes);
    sb.s_first_data_block.set(plan.first_data_block as u32);
    sb.s_blocks_per_group.set(BITS_PER_TAILED_BLOCK as u32);
    sb.s_inodes_per_group.set(plan.inodes);
    sb.s_first_ino.set(FIRST_INO_V1);
    sb.s_inode_size.set(inode::LARGE_INODE_SIZE as u16);
    sb.s_min_extra_isize.set(EXTRA_ISIZE_V1);
    sb.s_want_extra_isize.set(EXTRA_ISIZE_V1);
    sb.s_checksum_type = superblock::CSUM_TYPE_CRC32;
    sb.s_checksum_seed.set(checksum::image_seed(&uuid));
    sb.s_def_hash_version = superblock::HASH_CRC32;
    for (i, s) in sb.s_hash_seed.iter_mut().enumerate() {
        s.set(checksum::structure_csum(0x6861_7368, i as u64, &[&uuid]));
    }
    sb.s_vx_layout_version.set(superblock::LAYOUT_VERSION_1);
    let regions = [
        (
            &mut sb.s_vx_block_summary_start,
            &mut sb.s_vx_block_summary_blocks,
            plan.block_summary,
        ),
        (
            &mut sb.s_vx_block_bitmap_start,
            &mut sb.s_vx_block_bitmap_blocks,
            plan.block_bitmap,
        ),
        (
            &mut sb.s_vx_inode_summary_start,
            &mut sb.s_vx_inode_summary_blocks,
            plan.inode_summary,
        ),
        (
            &mut sb.s_vx_inode_bitmap_start,
            &mut sb.s_vx_inode_bitmap_blocks,
            plan.inode_bitmap,
        ),
        (
            &mut sb.s_vx_inode_table_start,
            &mut sb.s_vx_inode_table_blocks,
            plan.inode_table,
        ),
        (&mut sb.s_vx_journal_start, &mut sb.s_vx_journal_blocks, plan.journal),
        (&mut sb.s_vx_event_start, &mut sb.s_vx_event_blocks, plan.events),
    ];
    for (start, blocks, r) in regions {
        start.set(r.start);
        blocks.set(r.blocks);
    }
    sb.s_vx_first_data_block.set(plan.first_data_block);
    sb.s_vx_catalog_ino.set(CATALOG_INO);
    sb
}

fn journal_superblock(img: &mut [u8], plan: &Plan, uuid: [u8; 16], seed: u32) {
    let mut js = journal::JournalSuperblock::new_zeroed();
    js.js_magic.set(journal::JOURNAL_SB_MAGIC);
    js.js_version.set(1);
    js.js_block_size.set(BLOCK_SIZE as u32);
    js.js_max_len.set(plan.journal.blocks as u32);
    js.js_first.set(1);
    js.js_sequence.set(1);
    js.js_uuid = uuid;
    let blk = block_mut(img, plan.journal.start);
    blk.fill(0);
    blk[..72].copy_from_slice(js.as_bytes());
    let c = journal::superblock_checksum(blk, plan.journal.start, seed);
    blk[68..72].copy_from_slice(&c.to_le_bytes());
    blk.copy_within(0..72, journal::BACKUP_OFFSET);
}

fn event_header(img: &mut [u8], plan: &Plan, seed: u32) {
    let mut h = events::EventRingHeader::new_zeroed();
    h.er_magic.set(events::EVENT_RING_MAGIC);
    h.er_version.set(1);
    h.er_ring_blocks.set(plan.events.blocks - 1);
    h.er_next_seq.set(1);
    h.er_oldest_seq.set(1);
    let blk = block_mut(img, plan.events.start);
    blk.fill(0);
    blk[..72].copy_from_slice(h.as_bytes());
    let c = events::header_checksum(blk, plan.events.start, seed);
    blk[68..72].copy_from_slice(&c.to_le_bytes());
}

/// Write a v1 image with the default feature set.
pub fn v1(
    img: &mut [u8],
    plan: &Plan,
    opts: &MkfsOptions,
    uuid: [u8; 16],
    time: i64,
    progress: Progress<'_>,
) -> Result<MkfsSummary> {
    let seed = checksum::image_seed(&uuid);
    img[..BLOCK_SIZE].fill(0);
    let mut b = Builder {
        img,
        plan,
        seed,
        time,
        owner: opts_owner(opts),
        next_block: plan.first_data_block,
        next_ino: FIRST_INO_V1,
    };
    b.root_dir()?;
    let mut records = Vec::new();
    for (i, spec) in opts.collections.iter().enumerate() {
        records.push(b.collection(i as u32 + 1, spec)?);
    }
    b.catalogue(&records)?;
    let (used_blocks, used_inodes) = (b.next_block, b.next_ino - 1);
    let total = plan.block_bitmap.blocks + plan.inode_bitmap.blocks;
    let mut done = 0;
    let mut tick = || {
        done += 1;
        if done % 64 == 0 || done == total {
            progress(done, total);
        }
    };
    let free_blocks = write_bitmaps(
        img,
        plan.block_bitmap,
        plan.block_summary,
        plan.blocks - 1,
        used_blocks,
        seed,
        &mut tick,
    );
    let free_inodes = write_bitmaps(
        img,
        plan.inode_bitmap,
        plan.inode_summary,
        plan.inodes.into(),
        used_inodes.into(),
        seed,
        &mut tick,
    );
    journal_superblock(img, plan, uuid, seed);
    event_header(img, plan, seed);
    let mut sb = v1_superblock(plan, opts, uuid, time, V1_DEFAULT);
    sb.set_free_blocks(free_blocks);
    sb.s_free_inodes.set(free_inodes as u32);
    sb.update_checksum();
    img[..superblock::SUPERBLOCK_SIZE].copy_from_slice(sb.as_bytes());
    // The backup superblock in the last block, never written again.
    let backup = block_mut(img, plan.blocks - 1);
    backup.fill(0);
    backup[..superblock::SUPERBLOCK_SIZE].copy_from_slice(sb.as_bytes());
    debug_assert!(V1_DEFAULT.has_incompat(features::INCOMPAT_REGIONS));
    Ok(MkfsSummary {
        blocks: plan.blocks,
        inodes: plan.inodes,
        free_blocks,
        free_inodes: free_inodes as u32,
        first_data_block: plan.first_data_block,
        journal_blocks: plan.journal.blocks,
        event_blocks: plan.events.blocks,
        uuid,
        features: V1_DEFAULT.names(),
    })
}

fn opts_owner(opts: &MkfsOptions) -> (u32, u32) {
    opts.root_owner.unwrap_or((0, 0))
}
