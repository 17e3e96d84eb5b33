//! `Fs::reorder_collection` (`vexctl reorder`): the same graph renumbered
//! for locality. Every answer, every file's vector and fsck must be as
//! before; a reorder that cannot fit the journal changes nothing.

mod common;

use common::data::{clustered, files_with_vectors};
use common::*;
use vexfs::error::FsError;
use vexfs::format::vector::{ElemType, Metric};
use vexfs::fs::core::Fs;
use vexfs::fs::perm::Ctx;
use vexfs::mkfs::MkfsOptions;
use vexfs::vector::{CollectionParams, SearchRequest};

const DIM: usize = 16;

/// An image of `opts` with collection "t" and one file per vector.
fn load(opts: &MkfsOptions, data: &[Vec<f32>]) -> (tempfile::TempDir, std::path::PathBuf, Fs, Vec<u32>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.img");
    vexfs::mkfs::mkfs(&path, opts, &mut |_, _| {}).unwrap();
    let fs = Fs::open(&path, false).unwrap();
    fs.create_collection(&CollectionParams::new("t", DIM as u32, Metric::L2, ElemType::F32))
        .unwrap();
    let inos = files_with_vectors(&fs, "t", data);
    (dir, path, fs, inos)
}

/// Every query's hits (inode, distance bits) and every file's vector.
type Answers = (Vec<Vec<(u32, u32)>>, Vec<Option<Vec<f32>>>);

fn answers(fs: &Fs, queries: &[Vec<f32>], inos: &[u32]) -> Answers {
    let hits = queries
        .iter()
        .map(|q| {
            let mut req = SearchRequest::new("t", q.clone(), 10);
            req.ef = Some(64);
            req.with_paths = false;
            let r = fs.search(&req).unwrap();
            r.hits.iter().map(|h| (h.ino, h.distance.to_bits())).collect()
        })
        .collect();
    let ctx = Ctx::root();
    let vectors = inos.iter().map(|&i| fs.get_vector(&ctx, i.into(), "t").ok()).collect();
    (hits, vectors)
}

/// The mean over `queries` of how many runs of 64 slots the hits lie in:
/// the blocks of the node file a query's nearest nodes take.
fn slot_spread(fs: &Fs, queries: &[Vec<f32>]) -> f64 {
    let total: usize = queries
        .iter()
        .map(|q| {
            let r = fs.search(&SearchRequest::new("t", q.clone(), 10)).unwrap();
            let mut runs: Vec<u32> = r.hits.iter().map(|h| h.slot / 64).collect();
            runs.sort_unstable();
            runs.dedup();
            runs.len()
        })
        .sum();
    total as f64 / queries.len() as f64
}

#[test]
fn a_reorder_keeps_every_answer_and_every_vector() {
    let mut data = clustered(3_000 + 40, DIM, 30, 11);
    let queries = data.split_off(3_000);
    let (_dir, path, fs, inos) = load(&options(64 << 20, false), &data);
    let before = answers(&fs, &queries, &inos);
    let stats = fs.collection_stats("t").unwrap();
    let spread_before = slot_spread(&fs, &queries);
    let r = fs.reorder_collection("t", &mut |_, _| {}).unwrap();
    assert_eq!(r.slots, 3_000);
    // Clusters were inserted interleaved (vector i in cluster i % 30):
    // grouping them moves nearly every slot.
    assert!(r.references > 2_500, "{r:?}");
    assert_eq!(r.dropped, 0, "renumbered lists still fit");
    assert_eq!(
        answers(&fs, &queries, &inos),
        before,
        "same hits, same distances, same vectors"
    );
    let after = fs.collection_stats("t").unwrap();
    assert_eq!(
        (
            after.count,
            after.slots,
            &after.nodes_per_level,
            after.avg_degree_level0
        ),
        (
            stats.count,
            stats.slots,
            &stats.nodes_per_level,
            stats.avg_degree_level0
        )
    );
    // What it is for: a query's hits (one cluster) now lie close together
    // (measured: in 9.6 runs of 64 slots before, 3.1 after).
    let spread_after = slot_spread(&fs, &queries);
    assert!(
        spread_after * 2.5 < spread_before,
        "runs of 64 slots a query's hits lie in: {spread_before} before, {spread_after} after"
    );
    closed_and_clean(fs, &path);
    let fs = Fs::open(&path, false).unwrap();
    assert_eq!(answers(&fs, &queries, &inos), before, "after a remount");
}

#[test]
fn deleted_and_free_slots_survive_a_reorder_and_are_reused() {
    let mut data = clustered(2_000 + 20, DIM, 20, 12);
    let queries = data.split_off(2_000);
    let (_dir, path, fs, inos) = load(&options(64 << 20, false), &data);
    let ctx = Ctx::root();
    // Free slots (deleted, then freed by a rebuild), a few of them
    // reused, and nodes deleted since (still named by lists).
    for i in (0..2_000).step_by(4) {
        fs.remove_vector(&ctx, inos[i].into(), "t").unwrap();
    }
    fs.rebuild_collection("t", &mut |_, _| {}).unwrap();
    for i in (0..200).step_by(4) {
        fs.set_vector(&ctx, inos[i].into(), "t", &data[i]).unwrap();
    }
    for i in (1..2_000).step_by(8) {
        fs.remove_vector(&ctx, inos[i].into(), "t").unwrap();
    }
    let before = answers(&fs, &queries, &inos);
    let stats = fs.collection_stats("t").unwrap();
    assert!(stats.free > 0 && stats.deleted > 0, "{stats:?}");
    fs.reorder_collection("t", &mut |_, _| {}).unwrap();
    assert_eq!(answers(&fs, &queries, &inos), before);
    let after = fs.collection_stats("t").unwrap();
    assert_eq!(
        (after.count, after.deleted, after.free, after.slots),
        (stats.count, stats.deleted, stats.free, stats.slots)
    );
    // The free chain the reorder wrote hands out its slots: no growth.
    for i in (4..400).step_by(4) {
        fs.set_vector(&ctx, inos[i].into(), "t", &data[i]).unwrap();
    }
    assert_eq!(fs.collection_stats("t").unwrap().slots, stats.slots);
    closed_and_clean(fs, &path);
}

#[test]
fn a_reorder_too_large_for_the_journal_changes_nothing() {
    let mut data = clustered(2_500 + 10, DIM, 25, 13);
    let queries = data.split_off(2_500);
    let mut opts = options(64 << 20, false);
    // The smallest ring: the references of 2,500 files (about 160 inode
    // blocks) cannot move in one transaction.
    opts.sizing.journal_blocks = Some(vexfs::format::journal::MIN_JOURNAL_BLOCKS);
    let (_dir, path, fs, inos) = load(&opts, &data);
    let before = answers(&fs, &queries, &inos);
    let space = fs.statfs().unwrap();
    let e = fs.reorder_collection("t", &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, FsError::NoSpace), "{e}");
    assert_eq!(answers(&fs, &queries, &inos), before);
    let after = fs.statfs().unwrap();
    assert_eq!(
        (after.free_blocks, after.free_files),
        (space.free_blocks, space.free_files),
        "the new files were freed"
    );
    closed_and_clean(fs, &path);
}

#[test]
fn every_node_layout_and_list_coding_reorders() {
    for (v1, varint) in [(false, true), (true, true)] {
        let mut data = clustered(1_000 + 10, DIM, 10, 14);
        let queries = data.split_off(1_000);
        let mut opts = options(64 << 20, false);
        (opts.v1_nodes, opts.varint_lists) = (v1, varint);
        let (_dir, path, fs, inos) = load(&opts, &data);
        let before = answers(&fs, &queries, &inos);
        let r = fs.reorder_collection("t", &mut |_, _| {}).unwrap();
        assert!(r.references > 500 && r.dropped == 0, "v1 {v1}: {r:?}");
        assert_eq!(answers(&fs, &queries, &inos), before, "v1 {v1}, varint {varint}");
        closed_and_clean(fs, &path);
    }
}
