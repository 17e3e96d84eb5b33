//! The collection catalogue as `inspect` shows it: a serialisable copy of
//! what the core's validated reader (`vexfs::catalog`) returns.

use serde::Serialize;
use vexfs::format::vector::{ElemType, Metric};
use vexfs::image::Image;
use vexfs::Result;

/// One collection as `inspect` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Collection {
    pub id: u32,
    pub name: String,
    pub dim: u32,
    pub metric: String,
    pub elem_type: String,
    pub int8_scale: f32,
    pub m: u16,
    pub ef_construction: u16,
    pub node_ino: u32,
    pub created: i64,
}

/// The catalogue: header fields and records.
#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    /// Image byte offset of the header (0 if its block is not mapped).
    pub offset: u64,
    pub version: u32,
    pub len: u32,
    pub generation: u64,
    pub next_id: u32,
    pub checksum: u32,
    pub collections: Vec<Collection>,
}

/// Read the catalogue when the image has vectors and inode 2 has data;
/// `None` otherwise. The checksum is verified when the image has
/// metadata_csum (the `_seed` argument is kept for the callers' symmetry).
pub fn read(img: &Image, _seed: Option<u32>) -> Result<Option<Catalog>> {
    let Some(c) = vexfs::catalog::read_catalogue(img)? else {
        return Ok(None);
    };
    let collections = c
        .records
        .iter()
        .map(|r| Collection {
            id: r.id,
            name: r.name.clone(),
            dim: r.dim,
            metric: Metric::from_code(r.metric).map_or_else(|| format!("unknown({})", r.metric), |m| m.name().into()),
            elem_type: ElemType::from_code(r.elem_type)
                .map_or_else(|| format!("unknown({})", r.elem_type), |t| t.name().into()),
            int8_scale: r.int8_scale,
            m: r.m,
            ef_construction: r.ef_construction,
            node_ino: r.node_ino,
            created: r.created,
        })
        .collect();
    Ok(Some(Catalog {
        offset: c.offset,
        version: c.version,
        len: c.len,
        generation: c.generation,
        next_id: c.next_id,
        checksum: c.checksum,
        collections,
    }))
}
