//! The inode scan: every allocated inode parses, its blocks lie in the data
//! area and belong to it alone, and i_blocks (and a directory's i_size)
//! match what it maps.

use super::{ino_loc, State};
use crate::check::{Kind, Report};
use crate::format::inode::{FileType, InodeNo, S_IFMT};
use crate::format::BLOCK_SIZE_U64;
use crate::read::Mapping;

impl State<'_> {
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
}
