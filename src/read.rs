//! Read-only access to files and directories of an [`Image`]: the shared
//! core of `vexfs-inspect`, `fsck.vexfs` and (later) the mount's read path.
//! Everything reads straight from the map; nothing is cached.

use crate::error::{Expected, FsError, Result};
use crate::format::dir::{self, DirBlockIter, DirEntry};
use crate::format::extent::{self, ROOT_MAX_ENTRIES};
use crate::format::inode::{self, FileType, InodeNo, InodeView, DIRECT_BLOCKS, EXTENTS_FL, INDEX_FL};
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64};
use crate::image::Image;
use crate::layout::Geometry;

/// One mapped run of a file: logical block, physical block, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub logical: u64,
    pub physical: u64,
    pub len: u64,
    pub unwritten: bool,
}

/// Largest logical block a file can have (32-bit `ee_block`).
pub const MAX_LOGICAL_BLOCKS: u64 = 1 << 32;

/// Anything that can hand out metadata blocks: the image itself, or a
/// transaction (which sees its own uncommitted changes).
pub trait BlockSource {
    fn meta_block(&self, n: u64) -> Result<&[u8]>;
}

impl BlockSource for Image {
    fn meta_block(&self, n: u64) -> Result<&[u8]> {
        self.block(n)
    }
}

impl BlockSource for crate::fs::txn::Txn<'_> {
    fn meta_block(&self, n: u64) -> Result<&[u8]> {
        self.block(n)
    }
}

/// Every mapped run of a file, in logical order, with each physical block
/// checked to be a data block of this image (see [`Image::mappings`]).
pub fn collect_mappings(
    src: &impl BlockSource,
    g: &Geometry,
    ino: InodeNo,
    view: &InodeView<'_>,
) -> Result<Vec<Mapping>> {
    let mut out = Vec::new();
    if view.base.flags() & EXTENTS_FL != 0 {
        walk_extents(src, g, ino, view, &mut out)?;
    } else if uses_block_map(view) {
        for (i, b) in view.base.i_block.iter().enumerate().take(DIRECT_BLOCKS) {
            if b.get() != 0 {
                out.push(Mapping {
                    logical: i as u64,
                    physical: b.get().into(),
                    len: 1,
                    unwritten: false,
                });
            }
        }
    }
    for m in &out {
        let end = m.physical.checked_add(m.len);
        if !g.is_data_block(m.physical) || end.is_none_or(|e| e > g.blocks_count) {
            return Err(FsError::corrupt(
                "file mapping",
                g.inode_offset(ino),
                "block",
                Expected::Within(g.first_data_block, g.blocks_count - 1),
                m.physical,
            ));
        }
    }
    Ok(out)
}

/// Regular files, directories and slow symlinks without extents use the
/// kernel layout's 12 direct block numbers.
fn uses_block_map(view: &InodeView<'_>) -> bool {
    match view.base.file_type() {
        Some(FileType::Regular | FileType::Directory) => true,
        Some(FileType::Symlink) => view.base.i_size.get() >= inode::I_BLOCK_BYTES as u64,
        _ => false,
    }
}

/// Depth-first walk with an explicit stack. Child depth must be exactly
/// parent depth - 1, so the walk ends within MAX_EXTENT_DEPTH levels and
/// a cycle shows up as a depth mismatch.
fn walk_extents(
    src: &impl BlockSource,
    g: &Geometry,
    ino: InodeNo,
    view: &InodeView<'_>,
    out: &mut Vec<Mapping>,
) -> Result<()> {
    let root_off = g.inode_offset(ino) + 40;
    let root = extent::parse_node(view.base.i_block_bytes(), root_off, ROOT_MAX_ENTRIES)?;
    let mut stack: Vec<(u64, u16)> = Vec::new();
    visit_node(g, &root, root_off, u16::MAX, out, &mut stack)?;
    // Every tree block may appear once: a block named twice (shared
    // subtrees, cycles) is corruption, and the walk's work stays bounded by
    // the tree's size.
    let mut seen = std::collections::HashSet::new();
    while let Some((block, want_depth)) = stack.pop() {
        if !seen.insert(block) {
            return Err(FsError::corrupt(
                "extent tree",
                root_off,
                "ei_leaf_lo",
                Expected::Known,
                block,
            ));
        }
        let bytes = src.meta_block(block)?;
        let node = extent::parse_tree_block(bytes, block, ino.get(), g.csum_seed)?;
        visit_node(g, &node, block * BLOCK_SIZE_U64, want_depth, out, &mut stack)?;
    }
    out.sort_by_key(|m| m.logical);
    for w in out.windows(2) {
        if w[0].logical + w[0].len > w[1].logical {
            return Err(FsError::corrupt(
                "extent tree",
                root_off,
                "ee_block",
                Expected::AtLeast(w[0].logical + w[0].len),
                w[1].logical,
            ));
        }
    }
    Ok(())
}

fn visit_node(
    g: &Geometry,
    node: &extent::ExtentNode<'_>,
    offset: u64,
    want_depth: u16,
    out: &mut Vec<Mapping>,
    stack: &mut Vec<(u64, u16)>,
) -> Result<()> {
    let depth = node.depth();
    if want_depth != u16::MAX && depth != want_depth {
        return Err(FsError::corrupt(
            "extent node",
            offset + 6,
            "eh_depth",
            Expected::Eq(want_depth.into()),
            depth.into(),
        ));
    }
    if depth == 0 {
        for e in node.extents() {
            if e.is_empty() || u64::from(e.ee_block.get()) + u64::from(e.len()) > MAX_LOGICAL_BLOCKS {
                return Err(FsError::corrupt(
                    "extent",
                    offset,
                    "ee_len",
                    Expected::Within(1, 32768),
                    e.len().into(),
                ));
            }
            out.push(Mapping {
                logical: e.ee_block.get().into(),
                physical: e.start(),
                len: e.len().into(),
                unwritten: e.is_unwritten(),
            });
        }
        return Ok(());
    }
    for ix in node.indexes() {
        if !g.is_data_block(ix.leaf()) {
            return Err(FsError::corrupt(
                "extent index",
                offset,
                "ei_leaf_lo",
                Expected::Within(g.first_data_block, g.blocks_count - 1),
                ix.leaf(),
            ));
        }
        stack.push((ix.leaf(), depth - 1));
    }
    Ok(())
}

/// Extent tree blocks (interior and leaf blocks, not data) of a file.
pub fn collect_tree_blocks(
    src: &impl BlockSource,
    g: &Geometry,
    ino: InodeNo,
    view: &InodeView<'_>,
) -> Result<Vec<u64>> {
    let mut blocks = Vec::new();
    if view.base.flags() & EXTENTS_FL == 0 {
        return Ok(blocks);
    }
    let root_off = g.inode_offset(ino) + 40;
    let root = extent::parse_node(view.base.i_block_bytes(), root_off, ROOT_MAX_ENTRIES)?;
    let mut stack: Vec<(u64, u16)> = if root.depth() > 0 {
        root.indexes().map(|i| (i.leaf(), root.depth() - 1)).collect()
    } else {
        Vec::new()
    };
    let mut seen = std::collections::HashSet::new();
    while let Some((b, want_depth)) = stack.pop() {
        if !seen.insert(b) {
            return Err(FsError::corrupt(
                "extent tree",
                root_off,
                "ei_leaf_lo",
                Expected::Known,
                b,
            ));
        }
        blocks.push(b);
        let node = extent::parse_tree_block(src.meta_block(b)?, b, ino.get(), g.csum_seed)?;
        if node.depth() != want_depth {
            let at = b.saturating_mul(BLOCK_SIZE_U64) + 6;
            return Err(FsError::corrupt(
                "extent node",
                at,
                "eh_depth",
                Expected::Eq(want_depth.into()),
                node.depth().into(),
            ));
        }
        if node.depth() > 0 {
            stack.extend(node.indexes().map(|i| (i.leaf(), node.depth() - 1)));
        }
    }
    Ok(blocks)
}

/// Bytes `offset..end` of a file mapped by `runs`, read through `src`
/// (holes and unwritten extents read as zeros).
pub fn read_mapped(src: &impl BlockSource, runs: &[Mapping], offset: u64, end: u64) -> Result<Vec<u8>> {
    if offset >= end {
        return Ok(Vec::new());
    }
    let mut out = vec![0u8; (end - offset) as usize];
    for m in runs.iter().filter(|m| !m.unwritten) {
        let (ms, me) = (m.logical * BLOCK_SIZE_U64, (m.logical + m.len) * BLOCK_SIZE_U64);
        let (mut s, e) = (ms.max(offset), me.min(end));
        // Block by block: a source hands out one block at a time.
        while s < e {
            let in_block = s % BLOCK_SIZE_U64;
            let n = (BLOCK_SIZE_U64 - in_block).min(e - s);
            let block = src.meta_block(m.physical + (s - ms) / BLOCK_SIZE_U64)?;
            out[(s - offset) as usize..(s - offset + n) as usize]
                .copy_from_slice(&block[in_block as usize..(in_block + n) as usize]);
            s += n;
        }
    }
    Ok(out)
}

impl Image {
    /// Parse inode `ino` (checksum verified when metadata_csum is on).
    pub fn inode(&self, ino: InodeNo) -> Result<InodeView<'_>> {
        let g = self.geometry();
        let off = g.inode_offset(ino);
        let bytes = self.bytes_at(off, g.inode_size)?;
        inode::parse_inode(bytes, ino.get(), off, g.csum_seed)
    }

    /// Validate a raw inode number from disk.
    pub fn inode_no(&self, n: u32) -> Result<InodeNo> {
        self.geometry().inode_no(n).ok_or_else(|| {
            FsError::corrupt(
                "inode reference",
                0,
                "inode",
                Expected::Within(1, self.geometry().inodes_count.into()),
                n.into(),
            )
        })
    }

    /// Every mapped run of a file's data, in logical order, with each
    /// physical block checked to be a data block of this image.
    pub fn mappings(&self, ino: InodeNo, view: &InodeView<'_>) -> Result<Vec<Mapping>> {
        collect_mappings(self, self.geometry(), ino, view)
    }

    /// Extent tree blocks (interior and leaf blocks, not data) of a file.
    pub fn extent_tree_blocks(&self, ino: InodeNo, view: &InodeView<'_>) -> Result<Vec<u64>> {
        collect_tree_blocks(self, self.geometry(), ino, view)
    }

    /// Read up to `len` bytes of a file from `offset` (holes and unwritten
    /// extents read as zeros), stopping at i_size.
    pub fn read_file(&self, ino: InodeNo, offset: u64, len: usize) -> Result<Vec<u8>> {
        let view = self.inode(ino)?;
        let end = offset.saturating_add(len as u64).min(view.base.i_size.get());
        if offset >= end {
            return Ok(Vec::new());
        }
        read_mapped(self, &self.mappings(ino, &view)?, offset, end)
    }

    /// The target of a symlink.
    pub fn read_link(&self, ino: InodeNo) -> Result<Vec<u8>> {
        let view = self.inode(ino)?;
        if view.base.file_type() != Some(FileType::Symlink) {
            return Err(FsError::Invalid("not a symlink".into()));
        }
        let size = view.base.i_size.get();
        if size < inode::I_BLOCK_BYTES as u64 && view.base.flags() & EXTENTS_FL == 0 {
            return Ok(view.base.i_block_bytes()[..size as usize].to_vec());
        }
        if size > 4095 {
            return Err(FsError::corrupt(
                "inode",
                self.geometry().inode_offset(ino) + 16,
                "i_size",
                Expected::AtMost(4095),
                size,
            ));
        }
        self.read_file(ino, 0, size as usize)
    }

    /// Every live entry of a directory (free records skipped), with the
    /// checksum of every leaf block verified when metadata_csum is on.
    pub fn read_dir(&self, ino: InodeNo) -> Result<Vec<OwnedEntry>> {
        let view = self.inode(ino)?;
        if view.base.file_type() != Some(FileType::Directory) {
            return Err(FsError::NotDir);
        }
        let hashed = view.base.flags() & INDEX_FL != 0;
        let mut out = Vec::new();
        for m in self.mappings(ino, &view)? {
            for i in 0..m.len {
                let (logical, block) = (m.logical + i, m.physical + i);
                let bytes = self.block(block)?;
                let index_block = hashed && (logical == 0 || is_dx_node(bytes));
                self.read_dir_block(ino, block, bytes, index_block, &mut out)?;
            }
        }
        Ok(out)
    }

    fn read_dir_block(
        &self,
        ino: InodeNo,
        block: u64,
        bytes: &[u8],
        index_block: bool,
        out: &mut Vec<OwnedEntry>,
    ) -> Result<()> {
        let seed = self.geometry().csum_seed;
        if let (Some(seed), false) = (seed, index_block) {
            dir::verify_leaf_tail(bytes, block, ino.get(), seed)?;
        }
        let limit_tail = seed.is_some() && !index_block;
        let bytes = if index_block { dx_visible_part(bytes) } else { bytes };
        for e in DirBlockIter::new(bytes, block * BLOCK_SIZE_U64, limit_tail) {
            let e = e?;
            if e.inode != 0 {
                out.push(OwnedEntry::from(&e, block));
            }
        }
        Ok(())
    }

    /// Find `name` in directory `dir` (linear scan).
    pub fn lookup(&self, dir: InodeNo, name: &[u8]) -> Result<InodeNo> {
        let e = self
            .read_dir(dir)?
            .into_iter()
            .find(|e| e.name == name)
            .ok_or(FsError::NotFound)?;
        self.inode_no(e.inode)
    }

    /// Resolve an absolute path ("/a/b") without following symlinks.
    pub fn resolve(&self, path: &str) -> Result<InodeNo> {
        let mut cur = InodeNo::ROOT;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur = self.lookup(cur, part.as_bytes())?;
        }
        Ok(cur)
    }
}

/// In an htree root only "." and ".." are entries; the rest is the index.
fn dx_visible_part(bytes: &[u8]) -> &[u8] {
    if is_dx_node(bytes) {
        &bytes[..0]
    } else {
        &bytes[..BLOCK_SIZE.min(bytes.len())]
    }
}

/// An interior htree block: one empty entry spanning the whole block.
fn is_dx_node(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == [0, 0, 0, 0] && u16::from_le_bytes([bytes[4], bytes[5]]) as usize == BLOCK_SIZE
}

/// A directory entry copied out of the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedEntry {
    pub inode: u32,
    pub file_type: u8,
    pub name: Vec<u8>,
    pub block: u64,
    pub offset: usize,
}

impl OwnedEntry {
    fn from(e: &DirEntry<'_>, block: u64) -> Self {
        OwnedEntry {
            inode: e.inode,
            file_type: e.file_type,
            name: e.name.to_vec(),
            block,
            offset: e.offset,
        }
    }
}
