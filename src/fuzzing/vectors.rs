//! Vector metadata and the search protocol: the catalogue file, a
//! collection's node file (header and node records), and the requests and
//! replies of `/.vexfs/search`.

use super::{sealed, FUZZ_INO, FUZZ_SEED, SEEDS};
use crate::format::hnsw::CODINGS;
use crate::format::vector::{self, CollectionHeader, ElemType, Metric, NodeHeader, NodeLayout, MAX_DIM};
use crate::vector::{control, Hit, SearchResponse};
use zerocopy::FromBytes;

/// Most node records [`collection_header`] decodes.
const MAX_NODE_RECORDS: u64 = 64;

/// Catalogue file bytes (header + rkyv archive):
/// [`crate::catalog::parse_catalogue`] with and without checksums and on a
/// copy with `cat_checksum` recomputed; [`crate::catalog::decode_records`]
/// on the bytes after the header; every record's codes and node geometry,
/// and an encode/decode round trip of the records.
pub fn catalogue(data: &[u8]) {
    for seed in SEEDS {
        catalogue_once(data, seed);
    }
    let copy = sealed(data, 12, |b| {
        let len = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
        let archive = b.get(32..32usize.saturating_add(len)).unwrap_or(&[]);
        vector::catalog_checksum(&b[..32.min(b.len())], archive, FUZZ_SEED)
    });
    if let Some(copy) = copy {
        catalogue_once(&copy, Some(FUZZ_SEED));
    }
    if let Ok(records) = crate::catalog::decode_records(data.get(32..).unwrap_or(&[])) {
        collection_records(&records);
    }
}

fn catalogue_once(data: &[u8], seed: Option<u32>) {
    if let Ok(cat) = crate::catalog::parse_catalogue(data, 0, seed) {
        let _ = (
            cat.offset,
            cat.version,
            cat.len,
            cat.generation,
            cat.next_id,
            cat.checksum,
        );
        collection_records(&cat.records);
        if let Ok(bytes) = crate::catalog::encode_records(&cat.records) {
            let _ = crate::catalog::decode_records(&bytes);
        }
    }
}

pub(super) fn collection_records(records: &[vector::CollectionRecord]) {
    for r in records {
        let _ = (
            r.id,
            r.name.len(),
            r.int8_scale,
            r.ef_construction,
            r.node_ino,
            r.created,
        );
        let _ = Metric::from_code(r.metric).map(Metric::name);
        if let Some(elem) = ElemType::from_code(r.elem_type) {
            if (1..=MAX_DIM).contains(&r.dim) {
                for (layout, coding) in LAYOUTS.into_iter().zip(CODINGS) {
                    let _ = vector::node_geometry(r.dim, elem, r.m, layout, coding);
                }
            }
        }
    }
}

/// A collection's node file bytes (block 0 = header, node records from
/// byte 4096): [`vector::parse_collection_header`] with and without
/// checksums and on a copy with `ch_checksum` recomputed for node inode
/// [`FUZZ_INO`]; the header's codes and geometry; then up to 64 node records
/// placed as format-spec/08 §8.5.2 says, each record's level-0 list decoded
/// in both codings (format-spec/09 §9.5).
pub fn collection_header(data: &[u8]) {
    for seed in SEEDS {
        collection_once(data, seed);
    }
    let copy = (data.len() >= 88).then(|| {
        let mut c = data.to_vec();
        let sum = vector::collection_header_checksum(&c[..88], FUZZ_INO, FUZZ_SEED);
        c[84..88].copy_from_slice(&sum.to_le_bytes());
        c
    });
    if let Some(c) = copy {
        collection_once(&c, Some(FUZZ_SEED));
    }
}

fn collection_once(data: &[u8], seed: Option<u32>) {
    let Ok(h) = vector::parse_collection_header(data, 0, FUZZ_INO, seed) else {
        return;
    };
    let _ = Metric::from_code(h.ch_metric).map(Metric::name);
    if let Some(elem) = ElemType::from_code(h.ch_elem_type) {
        for (layout, coding) in LAYOUTS.into_iter().zip(CODINGS) {
            let _ = vector::node_geometry(h.ch_dim.get(), elem, h.ch_m.get(), layout, coding);
        }
        let cap = h.ch_adj_capacity.get().min(vector::MAX_LIST_BYTES + 3);
        let _ = vector::packed_geometry(h.ch_dim.get(), elem, cap);
        let _ = elem.name();
    }
    for layout in LAYOUTS {
        node_records(h, data, layout);
    }
}

/// Both node-record layouts (format-spec/08 §8.5.1): a header does not say
/// which one its image uses (the superblock does).
const LAYOUTS: [NodeLayout; 2] = [NodeLayout::V1, NodeLayout::Packed];

fn node_records(h: &CollectionHeader, data: &[u8], layout: NodeLayout) {
    let stride = u64::from(h.ch_node_stride.get());
    let (adj_off, adj_cap) = (h.ch_adj_offset.get() as usize, h.ch_adj_capacity.get() as usize);
    let slots = h.ch_slots.get();
    for s in 0..slots.min(MAX_NODE_RECORDS) {
        let Some(at) = vector::slot_offset(layout, stride, s).and_then(|o| usize::try_from(o).ok()) else {
            return;
        };
        let Some(record) = data.get(at..).and_then(|r| r.get(..stride as usize)) else {
            return;
        };
        let Ok((n, _)) = NodeHeader::ref_from_prefix(record) else {
            return;
        };
        let _ = (
            n.n_owner_ino.get(),
            n.n_level,
            n.n_flags,
            n.n_upper_ref.get(),
            n.n_next_free.get(),
        );
        let len = usize::from(n.n_adj_len.get()).min(adj_cap);
        if let Some(list) = record.get(adj_off..).and_then(|r| r.get(..len)) {
            for coding in CODINGS {
                coding.iter(list, slots, at as u64 + adj_off as u64).for_each(drop);
            }
        }
    }
}

/// The request and reply parsers of `/.vexfs/search` ([`control`]):
/// [`control::is_complete`] on the input and on its first half,
/// [`control::parse`] (JSON or binary), and for a parsed request its binary
/// encoding parsed again; [`control::decode_binary_reply`] and, for a reply
/// that decodes, both reply formats of it; the error line of every error.
pub fn search_request(data: &[u8]) {
    let _ = control::is_complete(data);
    let _ = control::is_complete(&data[..data.len() / 2]);
    match control::parse(data) {
        Ok(p) => {
            let r = &p.request;
            let _ = (p.binary, r.collection.len(), r.vector.len(), r.k, r.ef, r.with_paths);
            let _ = (r.subtree.as_deref().map(str::len), r.budget.max_visited);
            let bin = control::encode_binary(r);
            let _ = control::is_complete(&bin);
            if let Err(e) = control::parse(&bin) {
                let _ = control::error_line(&e);
            }
        }
        Err(e) => {
            let _ = control::error_line(&e);
        }
    }
    match control::decode_binary_reply(data) {
        Ok((hits, complete)) => {
            let resp = SearchResponse {
                hits: hits
                    .iter()
                    .map(|&(ino, slot, distance)| Hit {
                        ino,
                        slot,
                        distance,
                        path: None,
                    })
                    .collect(),
                complete,
                visited: hits.len(),
            };
            let _ = control::decode_binary_reply(&control::format(&resp, true));
            let _ = control::format(&resp, false);
        }
        Err(e) => {
            let _ = control::error_line(&e);
        }
    }
}
