//! References beyond the directory tree and the link counts they add up
//! to: the catalogue and each collection's hidden files, the orphan chain,
//! and i_links_count against the references found.

use super::{ino_loc, BitSet, State};
use crate::check::{Kind, Report};
use crate::format::vector::{self, CollectionRecord};
use crate::format::{features, CATALOG_INO};

impl State<'_> {
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
