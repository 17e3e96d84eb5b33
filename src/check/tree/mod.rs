//! Inode scan, directory walk, hidden files and link counts: the passes
//! that fill [`State`], which the bitmap and vector checks then read.
//!
//! [`scan`] parses every allocated inode and claims its blocks, [`walk`]
//! follows directories from the root counting references, and [`refs`]
//! adds the hidden files' references and checks every inode's link count.

mod refs;
mod scan;
mod walk;

use super::Kind;
use crate::format::bitmap;
use crate::format::inode::InodeNo;
use crate::format::{CATALOG_INO, ROOT_INO};
use crate::image::Image;

/// fsck may use memory proportional to the image.
pub use crate::bitset::BitSet;

/// What the scan learned, indexed by inode number - 1 or block number.
pub struct State<'a> {
    pub img: &'a Image,
    /// Inodes allocated (bitmap bit, or i_mode != 0 in the kernel layout).
    pub allocated: BitSet,
    /// Inodes whose contents parsed (allocated and valid).
    pub valid: BitSet,
    pub types: Vec<u8>,
    pub links_on_disk: Vec<u16>,
    pub refs: Vec<u32>,
    /// Blocks owned by some file (data, extent tree, xattr).
    pub used_blocks: BitSet,
    pub inodes_in_use: u64,
}

fn ino_loc(n: u32) -> String {
    format!("inode {n}")
}

impl<'a> State<'a> {
    pub fn new(img: &'a Image) -> Self {
        let g = img.geometry();
        let n = u64::from(g.inodes_count);
        State {
            img,
            allocated: BitSet::new(n + 1),
            valid: BitSet::new(n + 1),
            types: vec![0; n as usize + 1],
            links_on_disk: vec![0; n as usize + 1],
            refs: vec![0; n as usize + 1],
            used_blocks: BitSet::new(g.blocks_count),
            inodes_in_use: 0,
        }
    }

    /// Is inode `n` marked allocated on disk?
    fn bitmap_allocated(&self, n: u32) -> bool {
        let g = self.img.geometry();
        let bit = u64::from(n - 1);
        let per = g.bits_per_bitmap_block();
        match self.img.block(g.inode_bitmap.start + bit / per) {
            Ok(block) => bitmap::test_bit(&block[..bitmap::TAILED_BITS_BYTES], bit % per),
            Err(_) => false,
        }
    }

    fn is_reserved(&self, n: u32) -> bool {
        let g = self.img.geometry();
        !g.is_kernel_layout() && n != ROOT_INO && n != CATALOG_INO && n < g.first_ino
    }

    /// The kind of a hidden file found missing: an intact inode whose bit
    /// is clear is [`Kind::UnmarkedInode`], anything else `otherwise`.
    fn missing(&self, n: u32, otherwise: Kind) -> Kind {
        if !self.allocated.get(n.into()) && self.in_use_but_free(n) {
            Kind::UnmarkedInode { ino: n }
        } else {
            otherwise
        }
    }

    /// Whether inode `ino`'s slot is all zeros.
    fn zeroed(&self, ino: InodeNo) -> bool {
        let g = self.img.geometry();
        self.img
            .bytes_at(g.inode_offset(ino), g.inode_size)
            .is_ok_and(|b| b.iter().all(|&x| x == 0))
    }

    /// Inode `n`, marked free, nevertheless parses as an inode in use (a
    /// directory names it): its bitmap bit is what is wrong.
    fn in_use_but_free(&self, n: u32) -> bool {
        let g = self.img.geometry();
        !g.is_kernel_layout()
            && !self.is_reserved(n)
            && g.inode_no(n)
                .and_then(|i| self.img.inode(i).ok())
                .is_some_and(|v| !v.base.is_free() && v.base.file_type().is_some())
    }
}
