//! Collection statistics (what `vexctl stats` and `/.vexfs/collections`
//! show): counts, levels, degrees and bytes per vector. A full pass over
//! the slots, so it costs time proportional to the collection, but only a
//! fixed amount of memory.

use super::search::Walk;
use super::store::Collection;
use crate::error::Result;
use crate::format::hnsw::MAX_LEVEL;
use crate::format::BLOCK_SIZE_U64;
use crate::fs::core::Fs;
use serde::Serialize;

/// What a collection holds and costs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CollectionStats {
    pub name: String,
    pub id: u32,
    pub dim: u32,
    pub metric: &'static str,
    pub elem_type: &'static str,
    pub m: u16,
    pub ef_construction: u16,
    /// "packed" or "v1" (format-spec/08 §8.5.1).
    pub node_layout: &'static str,
    /// Bytes of each node's level-0 list area.
    pub list_bytes: u32,
    /// "rice" or "varint" (format-spec/09 §9.5).
    pub list_coding: &'static str,
    pub count: u64,
    pub deleted: u64,
    pub free: u64,
    pub slots: u64,
    pub max_level: u32,
    /// Nodes per level: `nodes_per_level[l]` have a list at level l.
    pub nodes_per_level: Vec<u64>,
    pub avg_degree_level0: f64,
    /// Stored vector payload (dim x element size).
    pub vector_bytes_per_vector: f64,
    /// Graph bytes per live vector as allocated: each slot's record less
    /// its vector (header, level-0 list area, padding), and the upper
    /// records.
    pub graph_bytes_per_vector: f64,
    /// Everything but the vectors, per live vector, in the blocks the
    /// slots and upper records occupy: headers, lists, padding and the
    /// unused tail of each block. Computed as hnswlib's figure is (index
    /// bytes minus vector bytes, per vector), so the two compare.
    pub graph_file_bytes_per_vector: f64,
    /// Graph bytes per live vector actually used by the encoded lists.
    pub graph_used_bytes_per_vector: f64,
    /// Bytes of the node file and the upper file.
    pub node_file_bytes: u64,
    pub upper_file_bytes: u64,
    pub simd: &'static str,
}

/// Gather the statistics of one opened collection.
pub fn gather(coll: &Collection, txn: &crate::fs::txn::Txn<'_>) -> Result<CollectionStats> {
    let walk = Walk::new(coll, txn, Default::default());
    let (mut deleted, mut free, mut degree_sum, mut used) = (0u64, 0u64, 0u64, 0u64);
    let mut per_level = vec![0u64; usize::from(MAX_LEVEL) + 1];
    let mut ids = Vec::new();
    for s in 0..coll.slots() as u32 {
        let node = coll.node(txn, s)?;
        match node.header().n_flags {
            0 => free += 1,
            f if f == crate::format::vector::NODE_DELETED => deleted += 1,
            _ => {
                for l in 0..=node.level() {
                    per_level[usize::from(l)] += 1;
                }
                walk.neighbours(s, &node, 0, &mut ids)?;
                degree_sum += ids.len() as u64;
                used += u64::from(node.header().n_adj_len.get());
                for l in 1..=node.level() {
                    walk.neighbours(s, &node, l, &mut ids)?;
                    used += ids.len() as u64 * 3; // ~3 bytes an id (§9.5)
                }
            }
        }
    }
    while per_level.len() > 1 && per_level.last() == Some(&0) {
        per_level.pop();
    }
    let count = coll.count().max(1) as f64;
    let (node_bytes, upper_bytes) = super::cache::file_bytes(coll);
    let upper_alloc = u64::from(coll.header.ch_upper_records.get()) * coll.upper_stride() as u64;
    let per_node_graph = u64::from(coll.geo.stride).saturating_sub(coll.space.vector_bytes() as u64);
    let slot_blocks = coll.slots_end(coll.slots()).div_ceil(BLOCK_SIZE_U64).saturating_sub(1);
    let upper_blocks = u64::from(coll.header.ch_upper_records.get())
        .div_ceil((BLOCK_SIZE_U64 / coll.upper_stride().max(1) as u64).max(1));
    // Block 0 of the node file is the collection header.
    let occupied = (1 + slot_blocks + upper_blocks) * BLOCK_SIZE_U64;
    let vectors = coll.count() * coll.space.vector_bytes() as u64;
    Ok(CollectionStats {
        name: coll.record.name.clone(),
        id: coll.record.id,
        dim: coll.record.dim,
        metric: coll.space.metric.name(),
        elem_type: coll.space.elem.name(),
        m: coll.record.m,
        ef_construction: coll.record.ef_construction,
        node_layout: match coll.geo.layout {
            crate::format::vector::NodeLayout::Packed => "packed",
            crate::format::vector::NodeLayout::V1 => "v1",
        },
        list_bytes: coll.geo.adj_capacity,
        list_coding: match coll.coding {
            crate::format::hnsw::ListCoding::Rice => "rice",
            crate::format::hnsw::ListCoding::Varint => "varint",
        },
        count: coll.count(),
        deleted,
        free,
        slots: coll.slots(),
        max_level: coll.header.ch_max_level.get(),
        nodes_per_level: per_level,
        avg_degree_level0: degree_sum as f64 / count,
        vector_bytes_per_vector: coll.space.vector_bytes() as f64,
        graph_bytes_per_vector: (per_node_graph * coll.slots() + upper_alloc) as f64 / count,
        graph_file_bytes_per_vector: occupied.saturating_sub(vectors) as f64 / count,
        graph_used_bytes_per_vector: used as f64 / count,
        node_file_bytes: node_bytes,
        upper_file_bytes: upper_bytes,
        simd: super::distance::simd_level(),
    })
}

impl Fs {
    /// Statistics of collection `name`.
    pub fn collection_stats(&self, name: &str) -> Result<CollectionStats> {
        self.read(|txn, g| {
            let coll = self.vectors.get(txn, g, name)?;
            gather(&coll, txn)
        })
    }
}
