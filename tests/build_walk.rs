//! The graph-construction walk (`Walk::for_build`) reads records straight
//! from the map except in blocks with a private copy; it must see exactly
//! what the transaction sees: staged blocks, this transaction's own
//! changes, and the map for the rest.

mod common;

use common::*;
use vexfs::format::vector::{ElemType, Metric};
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::fs::txn::Txn;
use vexfs::layout::Geometry;
use vexfs::vector::distance::Scorer;
use vexfs::vector::search::{Budget, Dist, LiveOnly, Walk};
use vexfs::vector::store::Collection;
use vexfs::vector::CollectionParams;

const ROOT: u64 = 1;
const DIM: usize = 8;
const N: usize = 400;

/// A deterministic spread of vectors (no two equal).
fn vector(i: usize) -> Vec<f32> {
    (0..DIM)
        .map(|d| ((i * 7919 + d * 104_729) % 1000) as f32 / 100.0)
        .collect()
}

fn image_with_vectors(dir: &std::path::Path) -> Fs {
    let path = make_image(dir, "w.img", 64 << 20, false);
    let fs = Fs::open(&path, false).unwrap();
    fs.create_collection(&CollectionParams::new("c", DIM as u32, Metric::L2, ElemType::F32))
        .unwrap();
    let ctx = Ctx::root();
    let d = fs.create(&ctx, ROOT, b"d", 0o755, NewNode::Dir).unwrap();
    for i in 0..N {
        let f = fs
            .create(&ctx, d.ino.into(), format!("f{i}").as_bytes(), 0o644, NewNode::File)
            .unwrap();
        fs.set_vector(&ctx, f.ino.into(), "c", &vector(i)).unwrap();
    }
    fs
}

/// The level-0 search of both walks from the same entry.
fn both_walks(coll: &Collection, txn: &Txn<'_>, q: &[f32]) -> [Vec<(Dist, u32)>; 2] {
    let budget = Budget {
        max_visited: N * 2,
        deadline: None,
    };
    let entry = coll.header.ch_entry_slot.get() as u32;
    let top = coll.header.ch_max_level.get() as u8;
    [Walk::new(coll, txn, budget), Walk::for_build(coll, txn, budget)].map(|mut w| {
        let mut scorer = Scorer::new(coll.space, q).unwrap();
        let start = w.descend(&mut scorer, entry, top, 1).unwrap();
        w.layer(&mut scorer, &[start], 64, 0, &mut LiveOnly).unwrap()
    })
}

fn open_collection(txn: &Txn<'_>, g: &Geometry) -> Collection {
    let cat = vexfs::vector::catalog_io::require(txn, g).unwrap();
    let rec = vexfs::vector::cache::find(&cat, "c").unwrap();
    Collection::load(txn, g, rec).unwrap()
}

/// Give slot 5 the vector `q` in this transaction (a private copy).
fn move_slot_5(coll: &Collection, txn: &mut Txn<'_>, q: &[f32]) {
    let mut rec = coll.record(txn, 5).unwrap().into_owned();
    let mut stored = vec![0u8; coll.space.vector_bytes()];
    coll.space.encode(q, &mut stored);
    let at = coll.geo.vector_offset as usize;
    rec[at..at + stored.len()].copy_from_slice(&stored);
    coll.put_record(txn, 5, &mut rec).unwrap();
}

#[test]
fn build_walks_see_staged_and_private_copies() {
    let dir = tempfile::tempdir().unwrap();
    let fs = image_with_vectors(dir.path());
    // Near slot 5's vector (the walk reaches it) but equal to no stored one.
    let q: Vec<f32> = vector(5).iter().map(|x| x + 0.001).collect();
    for committed in [false, true] {
        if committed {
            fs.sync().unwrap(); // now the map holds everything
        }
        fs.write(|txn, g| {
            let coll = open_collection(txn, g);
            for i in [0, 17, 399] {
                let [through_txn, direct] = both_walks(&coll, txn, &vector(i));
                assert_eq!(through_txn, direct, "query {i}, committed {committed}");
            }
            move_slot_5(&coll, txn, &q);
            let [through_txn, direct] = both_walks(&coll, txn, &q);
            assert_eq!(through_txn, direct, "committed {committed}");
            assert_eq!(direct[0], (Dist(0.0), 5), "the private copy is read, not the map");
            // Roll back: the image keeps its vectors.
            Err::<(), _>(vexfs::error::FsError::Invalid("roll back".into()))
        })
        .unwrap_err();
    }
}
