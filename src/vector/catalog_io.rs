//! Reading and rewriting the collection catalogue (inode 2,
//! format-spec/08 §8.2) inside a transaction.

use crate::catalog::{encode_records, read_catalogue_in, Catalog};
use crate::error::{FsError, Result};
use crate::format::features::RO_COMPAT_VECTORS;
use crate::format::vector::{catalog_checksum, CatalogHeader, CollectionRecord, CATALOG_MAGIC};
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64, CATALOG_INO};
use crate::fs::inode as ino_io;
use crate::fs::map;
use crate::fs::txn::Txn;
use crate::layout::Geometry;
use zerocopy::{FromZeros, IntoBytes};

/// The catalogue, or `None` when the image has no vector support.
pub fn read(txn: &Txn<'_>, g: &Geometry) -> Result<Option<Catalog>> {
    if !g.features.has_ro_compat(RO_COMPAT_VECTORS) {
        return Ok(None);
    }
    let ino = g.inode_no(CATALOG_INO).ok_or(FsError::NotFound)?;
    let b = ino_io::load(txn, g, ino)?;
    read_catalogue_in(txn, g, ino, &b.view())
}

/// The catalogue, or ENOTSUP when the image cannot hold collections.
pub fn require(txn: &Txn<'_>, g: &Geometry) -> Result<Catalog> {
    read(txn, g)?.ok_or_else(|| {
        FsError::Unsupported("this image has no vector support (made with --kernel-layout or without vectors)".into())
    })
}

/// Rewrite the catalogue with `records` (generation + 1).
pub fn write(txn: &mut Txn<'_>, g: &Geometry, old: &Catalog, records: &[CollectionRecord], next_id: u32) -> Result<()> {
    let archive = encode_records(records)?;
    let mut h = CatalogHeader::new_zeroed();
    h.cat_magic.set(CATALOG_MAGIC);
    h.cat_version.set(1);
    h.cat_len.set(archive.len() as u32);
    h.cat_generation.set(old.generation + 1);
    h.cat_next_id.set(next_id);
    if let Some(seed) = g.csum_seed {
        h.cat_checksum.set(catalog_checksum(h.as_bytes(), &archive, seed));
    }
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend_from_slice(&archive);
    let ino = g.inode_no(CATALOG_INO).ok_or(FsError::NotFound)?;
    let b = ino_io::load(txn, g, ino)?;
    let mut runs = map::load(txn, g, &b)?.runs;
    let blocks = (bytes.len() as u64).div_ceil(BLOCK_SIZE_U64);
    super::files::ensure_mapped(txn, g, ino, &mut runs, blocks)?;
    let mapped = runs.last().map_or(0, |m| m.logical + m.len);
    for l in 0..mapped {
        let phys = super::store::block_of(&runs, l, "collection catalogue")?;
        let blk = txn.block_new(phys)?;
        let from = (l * BLOCK_SIZE_U64) as usize;
        if let Some(part) = bytes.get(from..) {
            let n = part.len().min(BLOCK_SIZE);
            blk[..n].copy_from_slice(&part[..n]);
        }
    }
    let mut b = ino_io::load(txn, g, ino)?;
    b.set_size(bytes.len() as u64);
    ino_io::store(txn, g, &b)
}
