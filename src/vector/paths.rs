//! Naming search results and filtering by subtree, from the `i_parent`
//! hint (format-spec/05 §5.3) and the `..` entries of directories.

use crate::error::Result;
use crate::format::inode::{FileType, InodeNo};
use crate::format::ROOT_INO;
use crate::fs::core::live;
use crate::fs::dir;
use crate::fs::txn::Txn;
use crate::layout::Geometry;
use std::collections::HashMap;

/// Deepest path followed upwards. Why: PATH_MAX is 4096 bytes and every
/// component takes at least two ("x/"), so a deeper chain is a cycle or
/// corruption.
const MAX_DEPTH: usize = 2048;
/// Directories whose membership one query remembers (bounds its memory).
const MAX_CACHED_DIRS: usize = 4096;

/// The directory holding `ino` (for a directory its `..`), if known.
fn parent_of(txn: &Txn<'_>, g: &Geometry, ino: InodeNo) -> Result<Option<InodeNo>> {
    let b = live(txn, g, ino)?;
    if b.file_type() == Some(FileType::Directory) {
        let Some(slot) = dir::find(txn, g, &b, b"..")? else {
            return Ok(None);
        };
        return Ok(g.inode_no(slot.inode));
    }
    Ok(g.inode_no(b.parent_hint()))
}

/// The name of `ino` in directory `d`.
fn name_in(txn: &Txn<'_>, g: &Geometry, d: InodeNo, ino: InodeNo) -> Result<Option<String>> {
    let db = live(txn, g, d)?;
    if db.file_type() != Some(FileType::Directory) {
        return Ok(None);
    }
    let mut name = None;
    dir::scan(txn, g, &db, |slot, n| {
        if slot.inode == ino.get() && n != b"." && n != b".." {
            name = Some(String::from_utf8_lossy(n).into_owned());
            return true;
        }
        false
    })?;
    Ok(name)
}

/// An absolute path of `ino`, or `None` when the hint chain is broken.
pub fn path_of(txn: &Txn<'_>, g: &Geometry, ino: InodeNo) -> Result<Option<String>> {
    let mut parts = Vec::new();
    let mut cur = ino;
    for _ in 0..MAX_DEPTH {
        if cur.get() == ROOT_INO {
            parts.reverse();
            return Ok(Some(format!("/{}", parts.join("/"))));
        }
        let Some(p) = parent_of(txn, g, cur)? else {
            return Ok(None);
        };
        let Some(name) = name_in(txn, g, p, cur)? else {
            return Ok(None);
        };
        parts.push(name);
        cur = p;
    }
    Ok(None)
}

/// Answers "is this inode below directory `top`?" for one query.
pub struct Subtree {
    top: InodeNo,
    known: HashMap<u32, bool>,
}

impl Subtree {
    pub fn new(top: InodeNo) -> Self {
        Subtree {
            top,
            known: HashMap::new(),
        }
    }

    pub fn contains(&mut self, txn: &Txn<'_>, g: &Geometry, ino: InodeNo) -> Result<bool> {
        if self.top.get() == ROOT_INO {
            return Ok(true);
        }
        let mut chain = Vec::new();
        let mut cur = ino;
        let mut answer = false;
        for _ in 0..MAX_DEPTH {
            if cur == self.top {
                answer = true;
                break;
            }
            if let Some(&k) = self.known.get(&cur.get()) {
                answer = k;
                break;
            }
            if cur.get() == ROOT_INO {
                break;
            }
            chain.push(cur.get());
            match parent_of(txn, g, cur)? {
                Some(p) => cur = p,
                None => break,
            }
        }
        if self.known.len() > MAX_CACHED_DIRS {
            self.known.clear();
        }
        // Only directories are cached (files are asked about once).
        for d in chain.into_iter().skip(1) {
            self.known.insert(d, answer);
        }
        Ok(answer)
    }
}
