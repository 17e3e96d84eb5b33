//! `verify`: a checksum pass over every checksummed structure of a
//! metadata_csum image. Each structure counts once; each failure is one
//! problem line with the core's exact error text.

use super::{catalog, write_json, CmdResult, Failure, Status};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use vexfs::format::bitmap::{self, test_bit, BITS_PER_TAILED_BLOCK, TAILED_BITS_BYTES};
use vexfs::format::dir;
use vexfs::format::extent::{self, MAX_EXTENT_DEPTH, ROOT_MAX_ENTRIES};
use vexfs::format::inode::{FileType, InodeNo, InodeView, EXTENTS_FL, INDEX_FL};
use vexfs::format::vector::parse_collection_header;
use vexfs::format::{events, journal, xattr, BLOCK_SIZE, BLOCK_SIZE_U64, CATALOG_INO};
use vexfs::image::{Image, Mode};
use vexfs::layout::Region;
use vexfs::{FsError, Result};

/// One structure that failed its check.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// What was checked, e.g. `directory block 530 of inode 1`.
    pub structure: String,
    /// The core's error text (offset, field, expected and found).
    pub error: String,
}

/// The outcome of `verify`.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// False on images without metadata_csum (nothing to verify).
    pub checksums: bool,
    pub checked: u64,
    pub bad: u64,
    pub problems: Vec<Problem>,
}

/// Walks the image counting checked structures and collecting problems.
struct Verifier<'a> {
    img: &'a Image,
    seed: u32,
    report: VerifyReport,
}

impl<'a> Verifier<'a> {
    /// Count one structure; record `r`'s error against `what()`.
    fn check<T>(&mut self, what: impl FnOnce() -> String, r: Result<T>) -> Option<T> {
        self.report.checked += 1;
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.report.bad += 1;
                self.report.problems.push(Problem {
                    structure: what(),
                    error: e.to_string(),
                });
                None
            }
        }
    }

    /// A problem that is not one checked structure (e.g. a bad reference).
    fn note(&mut self, structure: String, e: FsError) {
        self.report.checked += 1;
        self.report.bad += 1;
        self.report.problems.push(Problem {
            structure,
            error: e.to_string(),
        });
    }

    /// Leaves and summary of one tailed bitmap covering `valid` items.
    fn bitmap(&mut self, name: &str, leaves: Region, summary: Region, valid: u64) {
        let per = BITS_PER_TAILED_BLOCK;
        for (kind, region, items) in [("summary", summary, leaves.blocks), ("bitmap", leaves, valid)] {
            for i in 0..region.blocks {
                let n = items.saturating_sub(i.saturating_mul(per)).min(per);
                let b = region.start + i;
                let r = self
                    .img
                    .block(b)
                    .and_then(|blk| bitmap::parse_tailed(blk, b, Some(self.seed), n).map(|_| ()));
                self.check(|| format!("{name} {kind} block {b}"), r);
            }
        }
    }

    /// Every inode marked in use by the inode bitmap, and what hangs off it.
    fn inodes(&mut self) {
        let g = self.img.geometry().clone();
        let per = BITS_PER_TAILED_BLOCK;
        for leaf in 0..g.inode_bitmap.blocks {
            let Ok(block) = self.img.block(g.inode_bitmap.start + leaf) else {
                continue;
            };
            let bits = &block[..TAILED_BITS_BYTES];
            for (byte_ix, &byte) in bits.iter().enumerate() {
                if byte == 0 {
                    continue;
                }
                for bit in 0..8u64 {
                    let n = leaf * per + byte_ix as u64 * 8 + bit;
                    if n >= u64::from(g.inodes_count) {
                        return;
                    }
                    if test_bit(bits, byte_ix as u64 * 8 + bit) {
                        self.inode(n as u32 + 1);
                    }
                }
            }
        }
    }

    fn inode(&mut self, n: u32) {
        let g = self.img.geometry();
        let Some(ino) = g.inode_no(n) else { return };
        // Reserved inodes (3 .. first_ino) are marked used but never written.
        let reserved = n > CATALOG_INO && n < g.first_ino;
        if reserved
            && self
                .img
                .bytes_at(g.inode_offset(ino), g.inode_size)
                .is_ok_and(|b| b.iter().all(|&x| x == 0))
        {
            return;
        }
        let Some(view) = self.check(|| format!("inode {n}"), self.img.inode(ino)) else {
            return;
        };
        if view.base.is_free() {
            return;
        }
        if view.base.flags() & EXTENTS_FL != 0 {
            self.extent_tree(ino, &view);
        }
        if view.base.file_type() == Some(FileType::Directory) {
            self.directory(ino, &view);
        }
        let xb = view.xattr_block();
        if xb != 0 {
            let r = self
                .img
                .block(xb)
                .and_then(|blk| xattr::parse_block(blk, xb, Some(self.seed)).map(|_| ()));
            self.check(|| format!("xattr block {xb} of inode {n}"), r);
        }
    }

    /// Every interior and leaf block of an extent tree, each checked once;
    /// children of a bad block are skipped. Depth strictly decreases, so
    /// the walk ends within MAX_EXTENT_DEPTH levels.
    fn extent_tree(&mut self, ino: InodeNo, view: &InodeView<'_>) {
        let n = ino.get();
        let root_off = self.img.geometry().inode_offset(ino) + 40;
        let root = match extent::parse_node(view.base.i_block_bytes(), root_off, ROOT_MAX_ENTRIES) {
            Ok(r) => r,
            Err(e) => return self.note(format!("extent root of inode {n}"), e),
        };
        let mut stack: Vec<(u64, u16)> = Vec::new();
        if root.depth() > 0 {
            stack.extend(root.indexes().map(|ix| (ix.leaf(), root.depth() - 1)));
        }
        let limit = self.img.geometry().blocks_count;
        let mut seen = 0u64;
        while let Some((b, depth)) = stack.pop() {
            seen += 1;
            if seen > limit || depth >= MAX_EXTENT_DEPTH {
                break;
            }
            let r = self
                .img
                .block(b)
                .and_then(|blk| extent::parse_tree_block(blk, b, n, Some(self.seed)));
            let Some(node) = self.check(|| format!("extent block {b} of inode {n}"), r) else {
                continue;
            };
            if node.depth() != depth {
                let e = FsError::corrupt(
                    "extent node",
                    b * BLOCK_SIZE_U64 + 6,
                    "eh_depth",
                    vexfs::error::Expected::Eq(depth.into()),
                    node.depth().into(),
                );
                self.note(format!("extent block {b} of inode {n}"), e);
            } else if depth > 0 {
                stack.extend(node.indexes().map(|ix| (ix.leaf(), depth - 1)));
            }
        }
    }

    /// Every leaf block of a directory (hash index blocks carry no leaf
    /// tail and are skipped, as Image::read_dir does).
    fn directory(&mut self, ino: InodeNo, view: &InodeView<'_>) {
        let n = ino.get();
        let maps = match self.img.mappings(ino, view) {
            Ok(m) => m,
            Err(e) => return self.note(format!("block mappings of directory inode {n}"), e),
        };
        let hashed = view.base.flags() & INDEX_FL != 0;
        for m in maps.iter().filter(|m| !m.unwritten) {
            for i in 0..m.len {
                let (logical, b) = (m.logical + i, m.physical + i);
                let Ok(bytes) = self.img.block(b) else { continue };
                if hashed && (logical == 0 || is_dx_node(bytes)) {
                    continue;
                }
                let r = dir::verify_leaf_tail(bytes, b, n, self.seed);
                self.check(|| format!("directory block {b} of inode {n}"), r);
            }
        }
    }

    fn regions(&mut self) {
        let g = self.img.geometry().clone();
        if g.journal.blocks > 0 {
            let r = self
                .img
                .block(g.journal.start)
                .and_then(|b| journal::parse_superblock(b, g.journal.start, self.seed, g.journal.blocks).map(|_| ()));
            self.check(|| format!("journal superblock (block {})", g.journal.start), r);
        }
        if g.events.blocks > 0 {
            let r = self
                .img
                .block(g.events.start)
                .and_then(|b| events::parse_header(b, g.events.start, self.seed, g.events.blocks).map(|_| ()));
            self.check(|| format!("event ring header (block {})", g.events.start), r);
        }
    }

    /// The catalogue header checksum, then each collection's header block.
    fn catalogue(&mut self) {
        if !self
            .img
            .geometry()
            .features
            .has_ro_compat(vexfs::format::features::RO_COMPAT_VECTORS)
        {
            return;
        }
        let cat = match catalog::read(self.img, Some(self.seed)) {
            Ok(Some(cat)) => self.check(String::new, Ok(cat)),
            Ok(None) => None,
            Err(e) => {
                self.note(format!("collection catalogue (inode {CATALOG_INO})"), e);
                None
            }
        };
        let Some(cat) = cat else { return };
        for c in &cat.collections {
            let r = self.collection_header(c.node_ino);
            self.check(
                || format!("collection header of '{}' (node inode {})", c.name, c.node_ino),
                r,
            );
        }
    }

    fn collection_header(&self, node_ino: u32) -> Result<()> {
        let ino = self.img.inode_no(node_ino)?;
        let view = self.img.inode(ino)?;
        let maps = self.img.mappings(ino, &view)?;
        let m = maps.iter().find(|m| m.logical == 0).ok_or(FsError::corrupt(
            "collection node file",
            self.img.geometry().inode_offset(ino) + 40,
            "block 0",
            vexfs::error::Expected::NonZero,
            0,
        ))?;
        let bytes = self.img.block(m.physical)?;
        parse_collection_header(bytes, m.physical * BLOCK_SIZE_U64, node_ino, Some(self.seed)).map(|_| ())
    }
}

/// An interior htree block: one empty entry spanning the whole block.
fn is_dx_node(bytes: &[u8]) -> bool {
    bytes.len() >= 8
        && bytes[..4] == [0, 0, 0, 0]
        && usize::from(u16::from_le_bytes([bytes[4], bytes[5]])) == BLOCK_SIZE
}

/// Verify an open image.
pub fn verify(img: &Image) -> VerifyReport {
    let mut report = VerifyReport {
        checksums: false,
        checked: 0,
        bad: 0,
        problems: Vec::new(),
    };
    let Some(seed) = img.geometry().csum_seed else {
        return report;
    };
    report.checksums = true;
    report.checked = 1; // the superblock, verified at open
    if let Some(e) = img.primary_superblock_error() {
        // The image opened from the backup superblock in its last block.
        report.bad += 1;
        report.problems.push(Problem {
            structure: "superblock (primary; the backup was used)".into(),
            error: e.to_string(),
        });
    }
    let mut v = Verifier { img, seed, report };
    let g = img.geometry().clone();
    v.bitmap("block", g.block_bitmap, g.block_summary, g.blocks_count);
    v.bitmap("inode", g.inode_bitmap, g.inode_summary, g.inodes_count.into());
    v.inodes();
    v.regions();
    v.catalogue();
    v.report
}

/// Run `verify` on the image at `path`. A superblock that fails its
/// checksum is reported as a problem (exit 1); any other reason the image
/// cannot be opened is an open failure (exit 2).
pub fn run(path: &Path, json: bool, out: &mut dyn Write) -> CmdResult {
    let report = match Image::open(path, Mode::ReadOnly) {
        Ok(img) => verify(&img),
        Err(e) if e.corruption().is_some_and(|c| c.field == "s_checksum") => VerifyReport {
            checksums: true,
            checked: 1,
            bad: 1,
            problems: vec![Problem {
                structure: "superblock".into(),
                error: e.to_string(),
            }],
        },
        Err(e) => return Err(Failure::Usage(e.to_string())),
    };
    if json {
        write_json(out, &report)?;
    } else if !report.checksums {
        writeln!(
            out,
            "{}: this image has no metadata checksums (kernel layout or metadata_csum off); nothing to verify",
            path.display()
        )?;
    } else {
        for p in &report.problems {
            writeln!(out, "{}: {}", p.structure, p.error)?;
        }
        writeln!(out, "{} structures checked, {} bad", report.checked, report.bad)?;
    }
    Ok(if report.bad == 0 {
        Status::Clean
    } else {
        Status::Problems
    })
}
