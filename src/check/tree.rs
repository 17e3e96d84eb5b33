//! Inode scan, directory walk, hidden files and link counts.

use super::Report;
use crate::format::inode::{FileType, InodeNo, S_IFMT};
use crate::format::vector::{self, CollectionRecord};
use crate::format::{bitmap, features, BLOCK_SIZE_U64, CATALOG_INO, ROOT_INO};
use crate::image::Image;
use crate::read::Mapping;

/// A plain bitset (fsck may use memory proportional to the image).
pub struct BitSet(Vec<u64>);

impl BitSet {
    pub fn new(n: u64) -> Self {
        BitSet(vec![0; n.div_ceil(64) as usize])
    }
    pub fn get(&self, i: u64) -> bool {
        self.0.get((i / 64) as usize).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    /// Set bit `i`; returns whether it was already set.
    pub fn set(&mut self, i: u64) -> bool {
        let Some(w) = self.0.get_mut((i / 64) as usize) else {
            return true;
        };
        let old = *w & (1 << (i % 64)) != 0;
        *w |= 1 << (i % 64);
        old
    }
}

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

    /// Parse every allocated inode and claim its blocks.
    pub fn scan_inodes(&mut self, report: &mut Report, tick: &mut dyn FnMut(&str, u64, u64)) {
        let g = self.img.geometry().clone();
        for n in 1..=g.inodes_count {
            if n % 65536 == 0 {
                tick("inodes", n.into(), g.inodes_count.into());
            }
            let Some(ino) = g.inode_no(n) else { continue };
            let allocated = if g.is_kernel_layout() {
                self.img.inode(ino).is_ok_and(|v| !v.base.is_free())
            } else {
                self.bitmap_allocated(n)
            };
            if !allocated || self.is_reserved(n) {
                if allocated {
                    self.allocated.set(n.into());
                }
                continue;
            }
            self.allocated.set(n.into());
            self.scan_one(ino, report);
        }
    }

    fn scan_one(&mut self, ino: InodeNo, report: &mut Report) {
        let n = ino.get();
        let view = match self.img.inode(ino) {
            Ok(v) => v,
            Err(e) => return report.add_err(ino_loc(n), &e),
        };
        if view.base.is_free() {
            return report.add(ino_loc(n), "marked in use in the inode bitmap but i_mode is 0");
        }
        let Some(ft) = view.base.file_type() else {
            return report.add(
                ino_loc(n),
                format!("invalid file type in i_mode {:#o}", view.base.mode() & S_IFMT),
            );
        };
        self.inodes_in_use += 1;
        self.types[n as usize] = ft.dirent_code();
        self.links_on_disk[n as usize] = view.base.i_links_count.get();
        let mappings = match self.img.mappings(ino, &view) {
            Ok(m) => m,
            Err(e) => return report.add_err(ino_loc(n), &e),
        };
        let tree = match self.img.extent_tree_blocks(ino, &view) {
            Ok(t) => t,
            Err(e) => return report.add_err(ino_loc(n), &e),
        };
        let mut owned = self.claim(n, &mappings, &tree, report);
        let xattr = view.xattr_block();
        if xattr != 0 {
            owned += 1;
            self.claim_block(n, xattr, report);
        }
        if view.blocks_512() != owned * (BLOCK_SIZE_U64 / 512) {
            report.add(
                ino_loc(n),
                format!(
                    "i_blocks is {} but the inode owns {} blocks ({} sectors)",
                    view.blocks_512(),
                    owned,
                    owned * 8
                ),
            );
        }
        if ft == FileType::Directory {
            let mapped: u64 = mappings.iter().map(|m| m.len).sum();
            if view.base.i_size.get() != mapped * BLOCK_SIZE_U64 {
                report.add(
                    ino_loc(n),
                    format!(
                        "directory i_size {} does not match its {mapped} mapped blocks",
                        view.base.i_size.get()
                    ),
                );
            }
        }
        self.valid.set(n.into());
    }

    fn claim(&mut self, n: u32, mappings: &[Mapping], tree: &[u64], report: &mut Report) -> u64 {
        let mut owned = 0;
        for m in mappings {
            for b in m.physical..m.physical + m.len {
                self.claim_block(n, b, report);
                owned += 1;
            }
        }
        for &b in tree {
            self.claim_block(n, b, report);
            owned += 1;
        }
        owned
    }

    fn claim_block(&mut self, n: u32, b: u64, report: &mut Report) {
        let g = self.img.geometry();
        if !g.is_data_block(b) {
            report.add(
                ino_loc(n),
                format!(
                    "block {b} is outside the data area ({}..{})",
                    g.first_data_block, g.blocks_count
                ),
            );
        } else if self.used_blocks.set(b) {
            report.add(
                format!("block {b}"),
                format!("claimed by inode {n} and by another inode"),
            );
        }
    }

    /// Walk the tree from the root, counting references to every inode.
    pub fn walk_tree(&mut self, report: &mut Report) {
        if !self.valid.get(ROOT_INO.into()) || self.types[ROOT_INO as usize] != 2 {
            return report.add("inode 1", "the root directory is missing or not a directory");
        }
        let mut visited = BitSet::new(u64::from(self.img.geometry().inodes_count) + 1);
        visited.set(ROOT_INO.into());
        let mut queue = std::collections::VecDeque::from([(ROOT_INO, ROOT_INO)]);
        while let Some((dir, parent)) = queue.pop_front() {
            self.walk_dir(dir, parent, &mut visited, &mut queue, report);
        }
    }

    fn walk_dir(
        &mut self,
        dir: u32,
        parent: u32,
        visited: &mut BitSet,
        queue: &mut std::collections::VecDeque<(u32, u32)>,
        report: &mut Report,
    ) {
        let Some(ino) = self.img.geometry().inode_no(dir) else {
            return;
        };
        let entries = match self.img.read_dir(ino) {
            Ok(e) => e,
            Err(e) => return report.add_err(format!("directory inode {dir}"), &e),
        };
        self.check_index(ino, report);
        for (i, e) in entries.iter().enumerate() {
            let loc = format!(
                "directory inode {dir}, entry '{}' (block {}, offset {})",
                String::from_utf8_lossy(&e.name),
                e.block,
                e.offset
            );
            let expected_dot = match i {
                0 => Some((b".".as_slice(), dir)),
                1 => Some((b"..".as_slice(), parent)),
                _ => None,
            };
            if let Some((name, target)) = expected_dot {
                if e.name != name || e.inode != target {
                    report.add(
                        &loc,
                        format!("expected '{}' -> inode {target}", String::from_utf8_lossy(name)),
                    );
                }
            } else if e.name == b"." || e.name == b".." {
                report.add(&loc, "'.' or '..' out of place");
            }
            let Some(t) = self.img.geometry().inode_no(e.inode) else {
                report.add(&loc, format!("inode number {} out of range", e.inode));
                continue;
            };
            let t = t.get();
            if !self.valid.get(t.into()) {
                report.add(&loc, format!("points to inode {t}, which is free or damaged"));
                continue;
            }
            self.refs[t as usize] += 1;
            if e.file_type != self.types[t as usize] {
                report.add(
                    &loc,
                    format!(
                        "file_type {} but inode {t} has type {}",
                        e.file_type, self.types[t as usize]
                    ),
                );
            }
            if i >= 2 && self.types[t as usize] == 2 {
                if visited.set(t.into()) {
                    report.add(
                        &loc,
                        format!("directory inode {t} is linked more than once (hard link or cycle)"),
                    );
                } else {
                    queue.push_back((t, dir));
                }
            }
        }
    }

    /// A hashed directory's index must lead every name to its leaf.
    fn check_index(&self, ino: InodeNo, report: &mut Report) {
        let g = self.img.geometry();
        let txn = crate::fs::txn::Txn::read_only(self.img.file().bytes(), g.blocks_count);
        let loc = format!("directory inode {}", ino.get());
        let result = crate::fs::inode::load(&txn, g, ino).and_then(|d| {
            if crate::fs::htree::is_indexed(&d) {
                crate::fs::htree::verify(&txn, g, &d)
            } else {
                Ok(Vec::new())
            }
        });
        match result {
            Ok(problems) => problems.into_iter().for_each(|p| report.add(&loc, p)),
            Err(e) => report.add_err(loc, &e),
        }
    }

    /// The catalogue and the collections' hidden files.
    pub fn check_hidden(&mut self, report: &mut Report) {
        let g = self.img.geometry();
        if !g.features.has_ro_compat(features::RO_COMPAT_VECTORS) {
            return;
        }
        if !self.valid.get(CATALOG_INO.into()) {
            return report.add("inode 2", "the collection catalogue inode is missing");
        }
        self.refs[CATALOG_INO as usize] += 1;
        let Some(records) = self.read_catalogue(report) else {
            return;
        };
        for r in records {
            self.check_collection(&r, report);
        }
    }

    fn read_catalogue(&self, report: &mut Report) -> Option<Vec<CollectionRecord>> {
        match crate::catalog::read_catalogue(self.img) {
            Ok(Some(c)) => Some(c.records),
            Ok(None) => {
                report.add("collection catalogue", "inode 2 holds no catalogue");
                None
            }
            Err(e) => {
                report.add_err("collection catalogue", &e);
                None
            }
        }
    }

    fn check_collection(&mut self, r: &CollectionRecord, report: &mut Report) {
        let loc = format!("collection '{}'", r.name);
        let Some(node) = self
            .img
            .geometry()
            .inode_no(r.node_ino)
            .filter(|i| self.valid.get(i.get().into()))
        else {
            return report.add(loc, format!("node file inode {} is missing", r.node_ino));
        };
        self.refs[node.get() as usize] += 1;
        let bytes = match self.img.read_file(node, 0, 88) {
            Ok(b) => b,
            Err(e) => return report.add_err(loc, &e),
        };
        match vector::parse_collection_header(&bytes, 0, r.node_ino, self.img.geometry().csum_seed) {
            Ok(h) => {
                if h.ch_dim.get() != r.dim || h.ch_collection_id.get() != r.id {
                    report.add(&loc, "header dim/id differ from the catalogue");
                }
                let upper = h.ch_upper_ino.get();
                match self
                    .img
                    .geometry()
                    .inode_no(upper)
                    .filter(|i| self.valid.get(i.get().into()))
                {
                    Some(u) => self.refs[u.get() as usize] += 1,
                    None => report.add(&loc, format!("upper-level file inode {upper} is missing")),
                }
            }
            Err(e) => report.add_err(loc, &e),
        }
    }

    /// Inodes on the orphan chain (unlinked while open; the next
    /// read-write mount frees them), walked with a bound and a cycle check.
    fn orphans(&self, report: &mut Report) -> BitSet {
        let g = self.img.geometry();
        let mut set = BitSet::new(u64::from(g.inodes_count) + 1);
        let mut cur = self.img.superblock().s_last_orphan.get();
        while cur != 0 {
            let Some(ino) = g.inode_no(cur) else {
                report.add("orphan chain", format!("inode number {cur} out of range"));
                break;
            };
            if set.set(cur.into()) {
                report.add("orphan chain", format!("cycle at inode {cur}"));
                break;
            }
            cur = match self.img.inode(ino) {
                Ok(v) => v.ext.map_or(0, |e| e.i_next_orphan.get()),
                Err(e) => {
                    report.add_err("orphan chain", &e);
                    break;
                }
            };
        }
        set
    }

    /// Every valid inode is referenced exactly i_links_count times
    /// (orphans: zero links and no references).
    pub fn check_links(&mut self, report: &mut Report) {
        let orphans = self.orphans(report);
        for n in 1..self.refs.len() {
            if !self.valid.get(n as u64) {
                continue;
            }
            let (refs, links) = (self.refs[n], u32::from(self.links_on_disk[n]));
            if orphans.get(n as u64) {
                if refs != 0 || links != 0 {
                    report.add(
                        ino_loc(n as u32),
                        format!("on the orphan chain but has {links} links and {refs} references"),
                    );
                }
                continue;
            }
            if refs == 0 {
                report.add(ino_loc(n as u32), "in use but not linked from any directory");
            } else if refs != links {
                report.add(
                    ino_loc(n as u32),
                    format!("i_links_count is {links} but {refs} references were found"),
                );
            }
        }
    }
}
