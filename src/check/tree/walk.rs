//! The directory walk from the root: every entry names a valid inode of
//! its type, dots point where they should, no directory is linked twice,
//! and a hashed directory's index leads every name to its leaf.

use super::{BitSet, State};
use crate::check::{EntryAt, Kind, Report};
use crate::format::inode::InodeNo;
use crate::format::ROOT_INO;
use crate::read::OwnedEntry;

impl State<'_> {
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
            let dot_kind = dot_problem(e, expected_dot, at, &loc, report);
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
}

/// Entry `e` against the dot entry expected at its place (`expected`: name
/// and inode, for the first two entries): the kind of the problem reported,
/// if any. A dot entry with the right name but the wrong inode is pointed
/// back; other trouble with dots is not repaired.
fn dot_problem(
    e: &OwnedEntry,
    expected: Option<(&[u8], u32)>,
    at: EntryAt,
    loc: &str,
    report: &mut Report,
) -> Option<Kind> {
    match expected {
        Some((name, target)) if e.name != name || e.inode != target => {
            let kind = if e.name == name {
                Kind::DotEntry { at, target }
            } else {
                Kind::Other
            };
            let msg = format!("expected '{}' -> inode {target}", String::from_utf8_lossy(name));
            report.add_kind(loc, msg, kind.clone());
            Some(kind)
        }
        None if e.name == b"." || e.name == b".." => {
            report.add(loc, "'.' or '..' out of place");
            Some(Kind::Other)
        }
        _ => None,
    }
}
