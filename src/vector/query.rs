//! `Fs::search`: a k-nearest-neighbour query, optionally restricted to a
//! subtree (filtered during the graph walk, so k results come from the
//! subtree), with a budget.

use super::distance::Scorer;
use super::paths::{path_of, Subtree};
use super::search::{knn, Accept, Budget};
use crate::error::{FsError, Result};
use crate::events::{Event, Op};
use crate::format::inode::{FileType, InodeNo};
use crate::format::vector::{NodeHeader, NODE_LIVE};
use crate::format::ROOT_INO;
use crate::fs::core::{live, Fs};
use crate::fs::dir;
use crate::fs::txn::Txn;
use crate::layout::Geometry;

/// Largest k and ef accepted. Why: the result and candidate heaps are
/// sized by them; this bounds a query's memory whatever a caller asks.
pub const MAX_K: usize = 10_000;

/// One query.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub collection: String,
    pub vector: Vec<f32>,
    pub k: usize,
    /// Beam width; default max(k, 64).
    pub ef: Option<usize>,
    /// Only files below this directory (absolute path in the filesystem).
    pub subtree: Option<String>,
    pub budget: Budget,
    /// Resolve each hit's path (costs a directory scan per hit).
    pub with_paths: bool,
}

impl SearchRequest {
    pub fn new(collection: &str, vector: Vec<f32>, k: usize) -> Self {
        SearchRequest {
            collection: collection.into(),
            vector,
            k,
            ef: None,
            subtree: None,
            budget: Budget::default(),
            with_paths: true,
        }
    }
}

/// One result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub ino: u32,
    pub slot: u32,
    pub distance: f32,
    pub path: Option<String>,
}

/// The answer: nearest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResponse {
    pub hits: Vec<Hit>,
    /// False when the budget ran out: hits are the best found so far.
    pub complete: bool,
    pub visited: usize,
}

struct InSubtree<'t, 'a> {
    txn: &'t Txn<'a>,
    g: &'t Geometry,
    tree: Subtree,
}

impl Accept for InSubtree<'_, '_> {
    fn accept(&mut self, _: u32, node: &NodeHeader) -> Result<bool> {
        if node.n_flags != NODE_LIVE {
            return Ok(false);
        }
        match self.g.inode_no(node.n_owner_ino.get()) {
            // A file whose inode or parent chain is damaged cannot be
            // placed in the subtree: left out, so the rest still answers.
            Some(ino) => self.tree.contains(self.txn, self.g, ino).or_else(damage_is_no),
            None => Ok(false),
        }
    }
}

/// A hit whose path cannot be named because metadata on the way is
/// damaged is returned without a path (and the damage logged), instead of
/// failing the whole search: the rest of the image stays usable.
fn damage_is_none(e: FsError) -> Result<Option<String>> {
    match e {
        FsError::Corrupt(_) => {
            eprintln!("vexfs: search: a hit's path: {e}");
            Ok(None)
        }
        e => Err(e),
    }
}

/// As [`damage_is_none`], for the subtree filter: such a file is left out.
fn damage_is_no(e: FsError) -> Result<bool> {
    damage_is_none(e).map(|_| false)
}

/// The directory at absolute path `p` (components looked up from the root).
pub fn resolve_dir(txn: &Txn<'_>, g: &Geometry, p: &str) -> Result<InodeNo> {
    let mut cur = g.inode_no(ROOT_INO).ok_or(FsError::NotFound)?;
    for part in p.split('/').filter(|s| !s.is_empty() && *s != ".") {
        let d = live(txn, g, cur)?;
        if d.file_type() != Some(FileType::Directory) {
            return Err(FsError::NotDir);
        }
        let slot = dir::find(txn, g, &d, part.as_bytes())?.ok_or(FsError::NotFound)?;
        cur = g.inode_no(slot.inode).ok_or(FsError::NotFound)?;
    }
    if live(txn, g, cur)?.file_type() != Some(FileType::Directory) {
        return Err(FsError::NotDir);
    }
    Ok(cur)
}

impl Fs {
    /// k nearest files to `req.vector` in `req.collection`.
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResponse> {
        if req.k == 0 || req.k > MAX_K || req.ef.is_some_and(|e| e > MAX_K) {
            return Err(FsError::Invalid(format!("k and ef must be 1..={MAX_K}")));
        }
        let resp = self.run_search(req)?;
        if self.logs_searches() && !self.is_read_only() {
            // Logged once it succeeded: a failed search records nothing.
            let ev = Event::new(Op::Search, 0).with_name(0, req.collection.as_bytes());
            self.write(|txn, g| self.emit(txn, g, None, ev.clone().with_aux(req.k as u64)))?;
        }
        Ok(resp)
    }

    fn run_search(&self, req: &SearchRequest) -> Result<SearchResponse> {
        self.read(|txn, g| {
            let coll = self.vectors.get(txn, g, &req.collection)?;
            let mut scorer = Scorer::new(coll.space, &req.vector)?;
            let ef = req.ef.unwrap_or(req.k.max(64)).max(req.k);
            let top = match &req.subtree {
                Some(p) => resolve_dir(txn, g, p)?,
                None => g.inode_no(ROOT_INO).ok_or(FsError::NotFound)?,
            };
            let mut accept = InSubtree {
                txn,
                g,
                tree: Subtree::new(top),
            };
            let r = knn(&coll, txn, &mut scorer, req.k, ef, req.budget, &mut accept)?;
            let mut hits = Vec::with_capacity(r.found.len());
            for (d, slot) in r.found {
                let ino = coll.node(txn, slot)?.header().n_owner_ino.get();
                let path = match (req.with_paths, g.inode_no(ino)) {
                    (true, Some(i)) => path_of(txn, g, i).or_else(damage_is_none)?,
                    _ => None,
                };
                hits.push(Hit {
                    ino,
                    slot,
                    distance: d.0,
                    path,
                });
            }
            Ok(SearchResponse {
                hits,
                complete: !r.exhausted,
                visited: r.visited,
            })
        })
    }
}
