//! Inode scan, directory walk, hidden files and link counts.

use super::{EntryAt, Kind, Report};
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
        let damaged = Kind::DamagedInode { ino: n };
        let view = match self.img.inode(ino) {
            Ok(v) => v,
            // An all-zero slot (as a freed inode is left) owns nothing:
            // only its bitmap bit is wrong.
            Err(e) if self.zeroed(ino) => return report.add_err_kind(ino_loc(n), &e, Kind::LeakedInode { ino: n }),
            Err(e) => return report.add_err_kind(ino_loc(n), &e, damaged),
        };
        if view.base.is_free() {
            let msg = "marked in use in the inode bitmap but i_mode is 0";
            return report.add_kind(ino_loc(n), msg, Kind::LeakedInode { ino: n });
        }
        let Some(ft) = view.base.file_type() else {
            return report.add_kind(
                ino_loc(n),
                format!("invalid file type in i_mode {:#o}", view.base.mode() & S_IFMT),
                damaged,
            );
        };
        self.inodes_in_use += 1;
        self.types[n as usize] = ft.dirent_code();
        self.links_on_disk[n as usize] = view.base.i_links_count.get();
        let mappings = match self.img.mappings(ino, &view) {
            Ok(m) => m,
            Err(e) => return report.add_err_kind(ino_loc(n), &e, damaged),
        };
        let tree = match self.img.extent_tree_blocks(ino, &view) {
            Ok(t) => t,
            Err(e) => return report.add_err_kind(ino_loc(n), &e, damaged),
        };
        let mut owned = self.claim(n, &mappings, &tree, report);
        let xattr = view.xattr_block();
        if xattr != 0 {
            owned += 1;
            self.claim_block(n, xattr, report);
        }
        let sectors = owned * (BLOCK_SIZE_U64 / 512);
        if view.blocks_512() != sectors {
            report.add_kind(
                ino_loc(n),
                format!(
                    "i_blocks is {} but the inode owns {} blocks ({} sectors)",
                    view.blocks_512(),
                    owned,
                    owned * 8
                ),
                Kind::BlocksCount { ino: n, sectors },
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
            let msg = "the root directory is missing or not a directory";
            let kind = self.missing(ROOT_INO, Kind::DamagedDir { ino: ROOT_INO });
            return report.add_kind("inode 1", msg, kind);
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
            Err(e) => return report.add_err_kind(format!("directory inode {dir}"), &e, Kind::DamagedDir { ino: dir }),
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
            let at = EntryAt {
                dir,
                block: e.block,
                offset: e.offset,
            };
            // A dot entry with the right name but the wrong inode is
            // pointed back; other trouble with dots is not repaired.
            let dot_kind = match expected_dot {
                Some((name, target)) if e.name != name || e.inode != target => {
                    let kind = if e.name == name {
                        Kind::DotEntry { at, target }
                    } else {
                        Kind::Other
                    };
                    let msg = format!("expected '{}' -> inode {target}", String::from_utf8_lossy(name));
                    report.add_kind(&loc, msg, kind.clone());
                    Some(kind)
                }
                None if e.name == b"." || e.name == b".." => {
                    report.add(&loc, "'.' or '..' out of place");
                    Some(Kind::Other)
                }
                _ => None,
            };
            let bad_entry = |damaged| {
                let target = e.inode;
                dot_kind.clone().unwrap_or(Kind::BadEntry { at, target, damaged })
            };
            let Some(t) = self.img.geometry().inode_no(e.inode) else {
                report.add_kind(&loc, format!("inode number {} out of range", e.inode), bad_entry(false));
                continue;
            };
            let t = t.get();
            if !self.valid.get(t.into()) {
                let kind = if self.allocated.get(t.into()) {
                    bad_entry(true)
                } else if dot_kind.is_none() && self.in_use_but_free(t) {
                    Kind::UnmarkedInode { ino: t }
                } else {
                    bad_entry(false)
                };
                report.add_kind(&loc, format!("points to inode {t}, which is free or damaged"), kind);
                continue;
            }
            self.refs[t as usize] += 1;
            let file_type = self.types[t as usize];
            if e.file_type != file_type {
                let msg = format!("file_type {} but inode {t} has type {file_type}", e.file_type);
                report.add_kind(
                    &loc,
                    msg,
                    Kind::EntryType {
                        at,
                        target: t,
                        file_type,
                    },
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
            let kind = self.missing(CATALOG_INO, Kind::Catalogue);
            return report.add_kind("inode 2", "the collection catalogue inode is missing", kind);
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
                report.add_kind("collection catalogue", "inode 2 holds no catalogue", Kind::Catalogue);
                None
            }
            Err(e) => {
                report.add_err_kind("collection catalogue", &e, Kind::Catalogue);
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
            let kind = self.missing(r.node_ino, Kind::Catalogue);
            return report.add_kind(loc, format!("node file inode {} is missing", r.node_ino), kind);
        };
        self.refs[node.get() as usize] += 1;
        let bytes = match self.img.read_file(node, 0, 88) {
            Ok(b) => b,
            Err(e) => return report.add_err_kind(loc, &e, Kind::Catalogue),
        };
        let damage = Kind::CollectionDamage {
            collection: r.name.clone(),
        };
        match vector::parse_collection_header(&bytes, 0, r.node_ino, self.img.geometry().csum_seed) {
            Ok(h) => {
                if h.ch_dim.get() != r.dim || h.ch_collection_id.get() != r.id {
                    report.add_kind(&loc, "header dim/id differ from the catalogue", damage.clone());
                }
                let upper = h.ch_upper_ino.get();
                match self
                    .img
                    .geometry()
                    .inode_no(upper)
                    .filter(|i| self.valid.get(i.get().into()))
                {
                    Some(u) => self.refs[u.get() as usize] += 1,
                    None => {
                        let kind = self.missing(upper, damage);
                        report.add_kind(&loc, format!("upper-level file inode {upper} is missing"), kind);
                    }
                }
            }
            Err(e) => report.add_err_kind(loc, &e, Kind::Catalogue),
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
                report.add_kind(
                    "orphan chain",
                    format!("inode number {cur} out of range"),
                    Kind::OrphanChain,
                );
                break;
            };
            if set.set(cur.into()) {
                report.add_kind("orphan chain", format!("cycle at inode {cur}"), Kind::OrphanChain);
                break;
            }
            cur = match self.img.inode(ino) {
                Ok(v) => v.ext.map_or(0, |e| e.i_next_orphan.get()),
                Err(e) => {
                    report.add_err_kind("orphan chain", &e, Kind::OrphanChain);
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
            let ino = n as u32;
            if refs == 0 {
                let msg = "in use but not linked from any directory";
                report.add_kind(ino_loc(ino), msg, Kind::Unreachable { ino });
            } else if refs != links {
                report.add_kind(
                    ino_loc(ino),
                    format!("i_links_count is {links} but {refs} references were found"),
                    Kind::LinkCount { ino, refs },
                );
            }
        }
    }
}
