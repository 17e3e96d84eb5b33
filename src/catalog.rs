//! Reading the collection catalogue (format-spec/08-vectors.md §8.2-8.3):
//! the header of inode 2, its checksum, and the rkyv archive of
//! `Vec<CollectionRecord>`, validated by rkyv's bytecheck before use.

use crate::error::{Expected, FsError, Result};
use crate::format::cursor::view_at;
use crate::format::features::RO_COMPAT_VECTORS;
use crate::format::inode::{InodeNo, InodeView};
use crate::format::vector::{catalog_checksum, CatalogHeader, CollectionRecord, CATALOG_MAGIC, MAX_COLLECTIONS};
use crate::format::{BLOCK_SIZE_U64, CATALOG_INO};
use crate::image::Image;
use crate::layout::Geometry;
use crate::read::{collect_mappings, read_mapped, BlockSource};

/// Size of [`CatalogHeader`].
const HEADER_LEN: usize = 32;
/// Largest catalogue read: far above MAX_COLLECTIONS records, and a bound
/// on what a hostile `i_size` can make us copy.
pub const MAX_CATALOG_BYTES: u64 = 16 << 20;

/// The catalogue: header fields and records.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// Image byte offset of the header (0 if its block is not mapped).
    pub offset: u64,
    pub version: u32,
    pub len: u32,
    pub generation: u64,
    pub next_id: u32,
    pub checksum: u32,
    pub records: Vec<CollectionRecord>,
}

/// Read the catalogue when the image has vectors and inode 2 has data;
/// `Ok(None)` otherwise. The checksum is verified with metadata_csum.
pub fn read_catalogue(img: &Image) -> Result<Option<Catalog>> {
    if !img.geometry().features.has_ro_compat(RO_COMPAT_VECTORS) {
        return Ok(None);
    }
    let ino = img.inode_no(CATALOG_INO)?;
    read_catalogue_in(img, img.geometry(), ino, &img.inode(ino)?)
}

/// The catalogue held by inode `ino` (`view`), read through any block
/// source: the image, or a transaction that sees uncommitted changes.
pub fn read_catalogue_in(
    src: &impl BlockSource,
    g: &Geometry,
    ino: InodeNo,
    view: &InodeView<'_>,
) -> Result<Option<Catalog>> {
    let size = view.base.i_size.get();
    if view.base.is_free() || size == 0 {
        return Ok(None);
    }
    if size > MAX_CATALOG_BYTES {
        let at = g.inode_offset(ino) + 16;
        return Err(FsError::corrupt(
            "inode",
            at,
            "i_size",
            Expected::AtMost(MAX_CATALOG_BYTES),
            size,
        ));
    }
    let runs = collect_mappings(src, g, ino, view)?;
    let offset = runs
        .iter()
        .find(|m| m.logical == 0 && !m.unwritten)
        .map_or(0, |m| m.physical * BLOCK_SIZE_U64);
    let bytes = read_mapped(src, &runs, 0, size)?;
    parse_catalogue(&bytes, offset, g.csum_seed).map(Some)
}

/// Parse catalogue file bytes whose header lies at image offset `offset`.
pub fn parse_catalogue(bytes: &[u8], offset: u64, seed: Option<u32>) -> Result<Catalog> {
    let h: &CatalogHeader = view_at(bytes, 0, offset, "collection catalogue")?;
    let bad = |off: u64, field, exp, act: u64| FsError::corrupt("collection catalogue", offset + off, field, exp, act);
    if h.cat_magic.get() != CATALOG_MAGIC {
        return Err(bad(
            0,
            "cat_magic",
            Expected::Eq(CATALOG_MAGIC.into()),
            h.cat_magic.get().into(),
        ));
    }
    if h.cat_version.get() != 1 {
        return Err(bad(4, "cat_version", Expected::Eq(1), h.cat_version.get().into()));
    }
    let len = h.cat_len.get();
    let room = bytes.len().saturating_sub(HEADER_LEN);
    let archive = bytes
        .get(HEADER_LEN..HEADER_LEN.saturating_add(len as usize))
        .ok_or_else(|| bad(8, "cat_len", Expected::AtMost(room as u64), len.into()))?;
    if let Some(seed) = seed {
        let want = catalog_checksum(&bytes[..HEADER_LEN], archive, seed);
        if h.cat_checksum.get() != want {
            return Err(bad(
                12,
                "cat_checksum",
                Expected::Eq(want.into()),
                h.cat_checksum.get().into(),
            ));
        }
    }
    let records = decode_records(archive).map_err(|e| match e {
        FsError::Invalid(why) => FsError::Unsupported(format!("collection catalogue at byte {}: {why}", offset + 32)),
        other => other,
    })?;
    if records.len() > MAX_COLLECTIONS {
        return Err(bad(
            8,
            "cat_len",
            Expected::AtMost(MAX_COLLECTIONS as u64),
            records.len() as u64,
        ));
    }
    Ok(Catalog {
        offset,
        version: h.cat_version.get(),
        len,
        generation: h.cat_generation.get(),
        next_id: h.cat_next_id.get(),
        checksum: h.cat_checksum.get(),
        records,
    })
}

/// Validate (bytecheck) and deserialize the archive. The bytes are copied
/// into an aligned buffer first because rkyv requires aligned input and a
/// file's bytes need not be.
pub fn decode_records(archive: &[u8]) -> Result<Vec<CollectionRecord>> {
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(archive.len());
    aligned.extend_from_slice(archive);
    rkyv::from_bytes::<Vec<CollectionRecord>, rkyv::rancor::Error>(&aligned)
        .map_err(|e| FsError::Invalid(format!("the archive does not validate: {e}")))
}

/// Encode records as the catalogue archive (what mkfs and `vexctl` write).
pub fn encode_records(records: &[CollectionRecord]) -> Result<Vec<u8>> {
    rkyv::to_bytes::<rkyv::rancor::Error>(&records.to_vec())
        .map(|v| v.to_vec())
        .map_err(|e| FsError::Invalid(format!("catalogue encoding failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> CollectionRecord {
        CollectionRecord {
            id: 1,
            name: name.into(),
            dim: 8,
            metric: 2,
            elem_type: 1,
            int8_scale: 0.0,
            m: 16,
            ef_construction: 200,
            node_ino: 11,
            created: 5,
        }
    }

    #[test]
    fn records_round_trip_short_and_long_names() {
        let recs = vec![record("a"), record("a-much-longer-collection-name")];
        let bytes = encode_records(&recs).unwrap();
        assert_eq!(decode_records(&bytes).unwrap(), recs);
    }

    #[test]
    fn garbage_archives_are_errors_not_panics() {
        for len in 0..200usize {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert!(decode_records(&junk).is_err() || len >= 8);
            let _ = decode_records(&vec![0xffu8; len]);
        }
        assert!(decode_records(&[]).is_err());
    }
}
