//! Node records through the collection code and the search, over an image
//! mkfs made and the filesystem core filled (built once per process).

use super::{geometry_of, temp_image_path, template_options, TempImage, FUZZ_BUDGET};
use crate::format::vector;
use crate::format::{BLOCK_SIZE, ROOT_INO};
use crate::fs::core::Fs;
use crate::fs::namespace::NewNode;
use crate::fs::perm::Ctx;
use crate::fs::txn::Txn;
use crate::image::Media;
use crate::layout::Geometry;
use crate::mkfs::Sizing;
use crate::vector::distance::Scorer;
use crate::vector::search::{knn, LiveOnly, Walk};
use crate::vector::store::Collection;
use crate::vector::{catalog_io, control, stats, SearchRequest};
use std::sync::{Mutex, OnceLock};

/// Files with a vector in the [`node_record`] template's collection: enough
/// that packed records straddle a block (slot 73 of 56-byte records).
const TEMPLATE_VECTORS: u32 = 100;
/// Collection of the [`node_record`] template: 4 f32 dimensions, L2.
const TEMPLATE_COLLECTION: &str = "t";
/// HNSW M of the [`node_record`] template's collection.
const TEMPLATE_M: u16 = 4;
/// Most slots [`node_record`] reads one by one.
const MAX_SLOTS_READ: u32 = 256;

fn template_vector(i: u32) -> [f32; 4] {
    let f = i as f32;
    [
        (i % 5) as f32,
        (i / 5) as f32,
        (i * 7 % 11) as f32 / 10.0,
        1.0 + f / 40.0,
    ]
}

/// An 8 MiB image with collection "t" (4 f32 dimensions, L2) holding the
/// vectors of [`TEMPLATE_VECTORS`] files, half of them in `/d`, and where
/// its node file, upper file and header lie.
struct NodeTemplate {
    image: Vec<u8>,
    geometry: Geometry,
    coll: Collection,
    /// Physical blocks of the node file's logical blocks 1.. (slot records).
    node_blocks: Vec<u64>,
    /// Physical blocks of the upper file, logical block 0 on.
    upper_blocks: Vec<u64>,
    /// Physical block of the collection header.
    header_block: u64,
}

impl NodeTemplate {
    /// Put the blocks [`node_record`] changes back as they were.
    fn restore(&self, bytes: &mut [u8]) {
        let blocks = self.node_blocks.iter().chain(&self.upper_blocks);
        for &b in blocks.chain(std::iter::once(&self.header_block)) {
            let r = b as usize * BLOCK_SIZE..(b as usize + 1) * BLOCK_SIZE;
            bytes[r.clone()].copy_from_slice(&self.image[r]);
        }
    }
}

/// Physical blocks of logical blocks `from..` of a file, in order, up to
/// the first hole (at most 64).
fn file_blocks(runs: &[crate::read::Mapping], from: u64) -> Vec<u64> {
    (from..from + 64)
        .map_while(|l| crate::fs::map::lookup(runs, l).map(|(p, _)| p))
        .collect()
}

/// The template in the packed node layout with Rice-coded lists (`v1`
/// false, mkfs's default) or as older VexFS made images: the v1 layout
/// and varint lists (format-spec/08 §8.5.1, 09 §9.5).
fn node_template(v1: bool) -> Option<&'static NodeTemplate> {
    static T: [OnceLock<Option<NodeTemplate>>; 2] = [OnceLock::new(), OnceLock::new()];
    T[usize::from(v1)].get_or_init(|| build_node_template(v1)).as_ref()
}

fn build_node_template(v1: bool) -> Option<NodeTemplate> {
    let tmp = TempImage(temp_image_path());
    let mut opts = template_options(&["t:4:l2"], Sizing::default())?;
    opts.v1_nodes = v1;
    opts.varint_lists = v1;
    // M = 4 instead of 16: about a quarter of the nodes get upper levels,
    // so the template's graph has several levels and upper records.
    opts.collections[0].m = TEMPLATE_M;
    crate::mkfs::mkfs(&tmp.0, &opts, &mut |_, _| {}).ok()?;
    {
        let fs = Fs::open(&tmp.0, false).ok()?;
        let ctx = Ctx::root();
        let root = u64::from(ROOT_INO);
        let sub = fs.create(&ctx, root, b"d", 0o755, NewNode::Dir).ok()?;
        for i in 0..TEMPLATE_VECTORS {
            let parent = if i % 2 == 0 { root } else { sub.ino.into() };
            let name = format!("v{i:02}");
            let f = fs.create(&ctx, parent, name.as_bytes(), 0o644, NewNode::File).ok()?;
            fs.set_vector(&ctx, f.ino.into(), TEMPLATE_COLLECTION, &template_vector(i))
                .ok()?;
        }
        fs.close().ok()?;
    }
    let image = std::fs::read(&tmp.0).ok()?;
    let geometry = geometry_of(&image)?;
    let coll = {
        let txn = Txn::read_only(&image, geometry.blocks_count);
        let cat = catalog_io::read(&txn, &geometry).ok()??;
        let rec = cat.records.iter().find(|r| r.name == TEMPLATE_COLLECTION)?;
        Collection::load(&txn, &geometry, rec).ok()?
    };
    if coll.count() != u64::from(TEMPLATE_VECTORS) {
        return None;
    }
    Some(NodeTemplate {
        node_blocks: file_blocks(&coll.node_runs, 1),
        upper_blocks: file_blocks(&coll.upper_runs, 0),
        header_block: crate::fs::map::lookup(&coll.node_runs, 0)?.0,
        image,
        geometry,
        coll,
    })
}

/// Working copies of the template image, so an input costs a few block
/// copies rather than an 8 MiB one. A copy is put back only as the template
/// (every block [`node_record`] changes restored).
/// One pool per template (index: `v1`).
static NODE_POOL: [Mutex<Vec<Vec<u8>>>; 2] = [Mutex::new(Vec::new()), Mutex::new(Vec::new())];

/// An image in memory for a read-only [`Fs`]; returns its bytes, restored,
/// to [`NODE_POOL`] when the filesystem drops it. `.1`: the v1 template's.
struct PooledImage(Vec<u8>, bool);

impl Media for PooledImage {
    fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn bytes_mut(&mut self) -> crate::Result<&mut [u8]> {
        // Read-only mounts never write; refusing keeps the pool pristine.
        Err(crate::FsError::ReadOnly)
    }

    fn flush(&mut self, _: Option<(u64, u64)>) -> crate::Result<()> {
        Ok(())
    }
}

impl Drop for PooledImage {
    fn drop(&mut self) {
        let Some(t) = node_template(self.1) else { return };
        let mut bytes = std::mem::take(&mut self.0);
        t.restore(&mut bytes);
        if let Ok(mut pool) = NODE_POOL[usize::from(self.1)].lock() {
            if pool.len() < 4 {
                pool.push(bytes);
            }
        }
    }
}

/// Write `payload` over (or, with `xor`, into) the bytes of `blocks` seen as
/// one run, from byte `at` of the run.
fn splice(bytes: &mut [u8], blocks: &[u64], at: usize, payload: &[u8], xor: bool) {
    for (i, &p) in payload.iter().enumerate() {
        let lin = at + i;
        let Some(&b) = blocks.get(lin / BLOCK_SIZE) else {
            return;
        };
        let byte = &mut bytes[b as usize * BLOCK_SIZE + lin % BLOCK_SIZE];
        *byte = if xor { *byte ^ p } else { p };
    }
}

/// Byte offset of upper record `i` of `stride` bytes in a run of blocks
/// holding `BLOCK_SIZE / stride` records each (format-spec/08 §8.6).
fn record_at(i: usize, stride: usize) -> usize {
    let per = (BLOCK_SIZE / stride.clamp(1, BLOCK_SIZE)).max(1);
    i / per * BLOCK_SIZE + i % per * stride
}

/// Byte offset of slot `i` from the node file's logical block 1 (§8.5.2).
fn slot_at(coll: &Collection, i: usize) -> usize {
    let off = vector::slot_offset(coll.geo.layout, coll.geo.stride.into(), i as u64);
    off.map_or(usize::MAX, |o| o as usize - BLOCK_SIZE)
}

/// Recompute the checksums of every node and upper record the template's
/// files can hold (as [`Collection::put_record`] and
/// [`Collection::put_upper`] do), the records as they are.
fn seal_node_records(t: &NodeTemplate, bytes: &mut [u8]) {
    let coll = &t.coll;
    let mut txn = Txn::new(bytes, t.geometry.blocks_count);
    let stride = coll.geo.stride as usize;
    let slots = t.node_blocks.len() * BLOCK_SIZE / stride.max(1);
    for s in 0..slots as u32 {
        let Ok(rec) = coll.record(&txn, s) else { break };
        let mut rec = rec.into_owned();
        if coll.put_record(&mut txn, s, &mut rec).is_err() {
            break;
        }
    }
    let ustride = coll.upper_stride();
    if (24..=BLOCK_SIZE).contains(&ustride) {
        for r in 0..(t.upper_blocks.len() * (BLOCK_SIZE / ustride)) as u32 {
            let at = record_at(r as usize, ustride);
            let Some(&b) = t.upper_blocks.get(at / BLOCK_SIZE) else {
                break;
            };
            let Ok(blk) = txn.block(b) else { break };
            let mut rec = blk[at % BLOCK_SIZE..at % BLOCK_SIZE + ustride].to_vec();
            if coll.put_upper(&mut txn, r, &mut rec).is_err() {
                break;
            }
        }
    }
    txn.commit();
}

/// Query vectors: near the template's data, far from it, and degenerate.
const QUERIES: [[f32; 4]; 4] = [
    [1.0, 2.0, 0.5, 1.2],
    [40.0, -3.0, 8.0, 0.0],
    [0.0, 0.0, 0.0, 0.0],
    [f32::MAX, f32::MIN, 1e-38, -0.0],
];

/// Node records through the collection code and the search, over an image
/// mkfs made and the filesystem core filled (collection "t", 4 f32
/// dimensions, 100 vectors; built once per process).
///
/// The input is a control byte (bit 4: the template in the v1 node layout
/// with varint lists instead of the packed one with Rice lists), a record index, then (control bit 2) 52
/// bytes XORed into the collection header's counters (bytes 32..84:
/// `ch_count` to `ch_int8_scale`; its checksum is then recomputed), then a
/// payload written over the slot records of the node file (control bit 0:
/// over the upper file's records) from the record with that index on;
/// control bit 3 XORs the payload in instead. Control bit 1 recomputes the
/// checksums of every node and upper record afterwards.
///
/// Then, read-only: [`Collection::load`], for every slot (at most 256)
/// [`Collection::node`], [`Collection::peek`] and [`Walk::neighbours`] at
/// levels 0, 1 and 2; [`knn`] for a few queries, k and ef (budget 2000
/// nodes); [`stats::gather`]; and through a read-only [`Fs`] on the image
/// [`Fs::search`] (whole tree and subtree `/d`, budget 2000 nodes) and
/// [`Fs::collection_stats`].
pub fn node_record(data: &[u8]) {
    let v1 = data.first().is_some_and(|c| c & 16 != 0);
    let Some(t) = node_template(v1) else { return };
    let Some((&control, rest)) = data.split_first() else {
        run_node_record(t, t.image.clone(), v1);
        return;
    };
    let (index, mut rest) = rest.split_first().map_or((0, &[][..]), |(&i, r)| (usize::from(i), r));
    let mut bytes = NODE_POOL[usize::from(v1)]
        .lock()
        .ok()
        .and_then(|mut p| p.pop())
        .unwrap_or_else(|| t.image.clone());
    if control & 4 != 0 {
        let (overlay, after) = rest.split_at(rest.len().min(52));
        rest = after;
        let at = t.header_block as usize * BLOCK_SIZE;
        splice(&mut bytes, &[t.header_block], 32, overlay, true);
        if let Some(seed) = t.geometry.csum_seed {
            let sum = vector::collection_header_checksum(&bytes[at..at + 88], t.coll.record.node_ino, seed);
            bytes[at + 84..at + 88].copy_from_slice(&sum.to_le_bytes());
        }
    }
    let xor = control & 8 != 0;
    if control & 1 == 0 {
        let at = slot_at(&t.coll, index);
        splice(&mut bytes, &t.node_blocks, at, rest, xor);
    } else {
        let at = record_at(index, t.coll.upper_stride());
        splice(&mut bytes, &t.upper_blocks, at, rest, xor);
    }
    if control & 2 != 0 {
        seal_node_records(t, &mut bytes);
    }
    run_node_record(t, bytes, v1);
}

fn run_node_record(t: &NodeTemplate, bytes: Vec<u8>, v1: bool) {
    collection_walks(t, &bytes);
    let Ok(fs) = Fs::from_media(Box::new(PooledImage(bytes, v1)), true) else {
        return;
    };
    for (q, subtree) in QUERIES.iter().zip([None, Some("/d")]) {
        let mut req = SearchRequest::new(TEMPLATE_COLLECTION, q.to_vec(), 5);
        req.budget = FUZZ_BUDGET;
        req.subtree = subtree.map(String::from);
        if let Ok(resp) = fs.search(&req) {
            let _ = control::format(&resp, false);
        }
    }
    let _ = fs.collection_stats(TEMPLATE_COLLECTION);
}

fn collection_walks(t: &NodeTemplate, bytes: &[u8]) {
    let txn = Txn::read_only(bytes, t.geometry.blocks_count);
    let Ok(coll) = Collection::load(&txn, &t.geometry, &t.coll.record) else {
        return;
    };
    let _ = (coll.slots(), coll.count(), coll.upper_stride());
    let walk = Walk::new(&coll, &txn, FUZZ_BUDGET);
    let mut ids = Vec::new();
    for s in 0..coll.slots().min(u64::from(MAX_SLOTS_READ)) as u32 {
        let _ = coll.record_offset(s);
        if let Ok(n) = coll.node(&txn, s) {
            let _ = (n.vector().len(), n.adjacency().len(), n.is_live(), n.level());
        }
        let Ok(n) = coll.peek(&txn, s) else { continue };
        for level in 0..=2 {
            let _ = walk.neighbours(s, &n, level, &mut ids);
        }
    }
    for (q, (k, ef)) in QUERIES.iter().zip([(5, 16), (1, 1), (40, 64), (3, 3)]) {
        let Ok(mut scorer) = Scorer::new(coll.space, q) else {
            continue;
        };
        if let Ok(r) = knn(&coll, &txn, &mut scorer, k, ef, FUZZ_BUDGET, &mut LiveOnly) {
            let _ = (r.found.len(), r.exhausted, r.visited);
        }
    }
    let _ = stats::gather(&coll, &txn);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_templates_build_in_both_layouts() {
        for (v1, layout) in [(false, vector::NodeLayout::Packed), (true, vector::NodeLayout::V1)] {
            let n = node_template(v1).expect("node record template");
            assert!(!n.node_blocks.is_empty() && !n.upper_blocks.is_empty());
            assert!(n.coll.header.ch_upper_records.get() > 0, "the graph has upper levels");
            assert_eq!(n.coll.geo.layout, layout);
        }
        // The corpus's straddling input assumes slot 78 of 52-byte records.
        let packed = node_template(false).expect("packed template");
        assert_eq!((packed.coll.geo.stride, packed.coll.slots()), (52, 100));
        assert_eq!(packed.coll.coding, crate::format::hnsw::ListCoding::Rice);
        let old = node_template(true).expect("v1 template");
        assert_eq!(old.coll.coding, crate::format::hnsw::ListCoding::Varint);
    }
}
