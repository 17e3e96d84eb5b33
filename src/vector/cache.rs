//! Opened collections kept between searches, so a query does not re-read
//! the catalogue and the node file's extent map. An entry is used only
//! while the catalogue generation, the hidden files' sizes and the
//! collection header are what they were when it was loaded.

use super::store::Collection;
use crate::catalog::Catalog;
use crate::error::Result;
use crate::format::vector::CollectionRecord;
use crate::format::{BLOCK_SIZE_U64, CATALOG_INO};
use crate::fs::txn::Txn;
use crate::fs::{inode as ino_io, map};
use crate::layout::Geometry;
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use zerocopy::IntoBytes;

/// Most collections cached. Why: bounds the heap (each entry holds two
/// extent maps) however many collections an image has.
const MAX_ENTRIES: usize = 64;

struct Entry {
    generation: u64,
    sizes: (u64, u64),
    coll: Arc<Collection>,
}

#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<String, Entry>>,
    /// The image cannot change while it is open (a read-only open holds a
    /// shared lock that keeps writers out): a cached collection is used
    /// without re-reading the catalogue and file sizes on every query.
    frozen: bool,
    /// Graphs changed since the image was opened and not reconnected
    /// since: the unmount runs the reconnect pass over them.
    changed: Mutex<BTreeSet<String>>,
}

/// The catalogue's generation, read from its first block only.
pub fn generation(txn: &Txn<'_>, g: &Geometry) -> Result<u64> {
    let Some(ino) = g.inode_no(CATALOG_INO) else {
        return Ok(0);
    };
    let b = ino_io::load(txn, g, ino)?;
    let runs = map::load(txn, g, &b)?.runs;
    let Some((phys, _)) = map::lookup(&runs, 0) else {
        return Ok(0);
    };
    let blk = txn.block(phys)?;
    Ok(u64::from_le_bytes(blk[16..24].try_into().unwrap_or_default()))
}

fn sizes(txn: &Txn<'_>, g: &Geometry, c: &Collection) -> Result<(u64, u64)> {
    let node = ino_io::load(txn, g, c.node_ino)?.size();
    let upper = match c.upper_ino {
        Some(u) => ino_io::load(txn, g, u)?.size(),
        None => 0,
    };
    Ok((node, upper))
}

fn header_unchanged(txn: &Txn<'_>, c: &Collection) -> Result<bool> {
    let phys = super::store::block_of(&c.node_runs, 0, "node file")?;
    Ok(txn.block(phys)?[..88] == *c.header.as_bytes())
}

impl Cache {
    /// A cache for a read-only filesystem (see `frozen`).
    pub fn frozen() -> Cache {
        Cache {
            frozen: true,
            ..Cache::default()
        }
    }

    /// A vector of collection `name` was attached, replaced or detached.
    /// Bounded by the collections the image has: a name is added only
    /// after a vector of it changed.
    pub fn mark_changed(&self, name: &str) {
        self.changed.lock().insert(name.to_string());
    }

    /// Forget that `name` changed (its reconnect pass is starting).
    pub fn clear_changed(&self, name: &str) {
        self.changed.lock().remove(name);
    }

    /// Which collections changed, and forget it.
    pub fn take_changed(&self) -> Vec<String> {
        std::mem::take(&mut *self.changed.lock()).into_iter().collect()
    }

    /// The collection named `name`, from the cache when still current.
    pub fn get(&self, txn: &Txn<'_>, g: &Geometry, name: &str) -> Result<Arc<Collection>> {
        if self.frozen {
            if let Some(e) = self.entries.lock().get(name) {
                return Ok(e.coll.clone());
            }
        }
        let gen = generation(txn, g)?;
        if let Some(e) = self.entries.lock().get(name) {
            if e.generation == gen && sizes(txn, g, &e.coll)? == e.sizes && header_unchanged(txn, &e.coll)? {
                return Ok(e.coll.clone());
            }
        }
        let cat = super::catalog_io::require(txn, g)?;
        let rec = find(&cat, name)?;
        let coll = Arc::new(Collection::load(txn, g, rec)?);
        let sizes = sizes(txn, g, &coll)?;
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            name.to_string(),
            Entry {
                generation: cat.generation,
                sizes,
                coll: coll.clone(),
            },
        );
        Ok(coll)
    }
}

/// The record named `name` (ENOENT when there is none).
pub fn find<'c>(cat: &'c Catalog, name: &str) -> Result<&'c CollectionRecord> {
    cat.records
        .iter()
        .find(|r| r.name == name)
        .ok_or(crate::error::FsError::NotFound)
}

/// Bytes of the node file and the upper file (for stats).
pub fn file_bytes(c: &Collection) -> (u64, u64) {
    let blocks = |runs: &[crate::read::Mapping]| runs.iter().map(|m| m.len).sum::<u64>() * BLOCK_SIZE_U64;
    (blocks(&c.node_runs), blocks(&c.upper_runs))
}
