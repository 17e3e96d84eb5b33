//! `Fs::bulk_load` (what `vexctl import` uses on an unmounted image): the
//! graph built outside the journal as orphan files and swapped in by one
//! transaction. It must give the very graph `set_vector` one by one gives,
//! refuse bad rows without losing the good ones, attach nothing when
//! dropped, and still work (one by one) when the journal is too small.

mod common;

use common::data::{clustered, empty_files, files_with_vectors};
use common::*;
use vexfs::error::FsError;
use vexfs::events::{Filter, Op};
use vexfs::format::vector::{ElemType, Metric};
use vexfs::fs::core::Fs;
use vexfs::fs::perm::Ctx;
use vexfs::mkfs::MkfsOptions;
use vexfs::vector::search::Walk;
use vexfs::vector::{Budget, CollectionParams, SearchRequest};

const DIM: usize = 16;

/// A fresh image of `opts` with the empty collection "t".
fn image(opts: &MkfsOptions) -> (tempfile::TempDir, std::path::PathBuf, Fs) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.img");
    vexfs::mkfs::mkfs(&path, opts, &mut |_, _| {}).unwrap();
    let fs = Fs::open(&path, false).unwrap();
    fs.create_collection(&CollectionParams::new("t", DIM as u32, Metric::L2, ElemType::F32))
        .unwrap();
    (dir, path, fs)
}

/// `data` bulk-loaded into "t", one file each; the files' inodes.
fn bulk_loaded(fs: &Fs, data: &[Vec<f32>]) -> Vec<u32> {
    let inos = empty_files(fs, data.len());
    let mut load = fs.bulk_load(&Ctx::root(), "t").unwrap().expect("an empty collection");
    for (&i, v) in inos.iter().zip(data) {
        load.add(i.into(), v).unwrap();
    }
    let r = load.finish().unwrap();
    assert_eq!((r.attached, r.one_by_one), (data.len() as u64, false));
    inos
}

/// Every query's hits (row of the file, distance bits) and every file's
/// vector: comparable across images whose inode numbers differ.
type Answers = (Vec<Vec<(usize, u32)>>, Vec<Option<Vec<f32>>>);

fn answers(fs: &Fs, queries: &[Vec<f32>], inos: &[u32]) -> Answers {
    let row = |ino: u32| inos.iter().position(|&i| i == ino).expect("a hit is one of the files");
    let hits = queries
        .iter()
        .map(|q| {
            let mut req = SearchRequest::new("t", q.clone(), 10);
            req.ef = Some(64);
            req.with_paths = false;
            let r = fs.search(&req).unwrap();
            r.hits.iter().map(|h| (row(h.ino), h.distance.to_bits())).collect()
        })
        .collect();
    let ctx = Ctx::root();
    let vectors = inos.iter().map(|&i| fs.get_vector(&ctx, i.into(), "t").ok()).collect();
    (hits, vectors)
}

/// Every slot's neighbour lists, level by level, as stored.
fn lists(fs: &Fs) -> Vec<Vec<Vec<u32>>> {
    let coll = fs.collection("t").unwrap();
    fs.read(|txn, _| {
        let walk = Walk::new(&coll, txn, Budget::default());
        let mut out = Vec::new();
        for s in 0..coll.slots() as u32 {
            let node = coll.node(txn, s)?;
            let mut levels = Vec::new();
            for l in 0..=node.level() {
                let mut ids = Vec::new();
                walk.neighbours(s, &node, l, &mut ids)?;
                levels.push(ids);
            }
            out.push(levels);
        }
        Ok(out)
    })
    .unwrap()
}

/// Graph shape: count, slots, nodes per level, mean level-0 degree.
fn shape(fs: &Fs) -> (u64, u64, Vec<u64>, String) {
    let s = fs.collection_stats("t").unwrap();
    (
        s.count,
        s.slots,
        s.nodes_per_level,
        format!("{:.6}", s.avg_degree_level0),
    )
}

#[test]
fn a_bulk_load_builds_the_graph_set_vector_builds() {
    let mut data = clustered(2_000 + 30, DIM, 20, 31);
    let queries = data.split_off(2_000);
    let (_d1, p1, one_by_one) = image(&options(64 << 20, false));
    let inos1 = files_with_vectors(&one_by_one, "t", &data);
    let mut opts = options(64 << 20, false);
    // A ring that holds every event of the test.
    opts.sizing.event_blocks = Some(1024);
    let (_d2, p2, bulk) = image(&opts);
    bulk.set_events(true).unwrap();
    let first_event = bulk.event_range().unwrap().1;
    let inos2 = bulk_loaded(&bulk, &data);

    let want = answers(&one_by_one, &queries, &inos1);
    assert!(want.1.iter().all(Option::is_some));
    assert_eq!(answers(&bulk, &queries, &inos2), want, "same hits, distances, vectors");
    assert_eq!(shape(&bulk), shape(&one_by_one));
    assert_eq!(lists(&bulk), lists(&one_by_one), "the same graph: every list");

    // One attach event per file, in slot order, committed with the swap.
    bulk.sync().unwrap();
    let filter = Filter {
        ops: vec![Op::VectorAttach as u16],
        subtree: None,
    };
    let (mut w, mut missed, mut attached) = (first_event, 0, Vec::new());
    while w < bulk.event_range().unwrap().1 {
        let batch = bulk.events_since(w, 4096, &filter).unwrap();
        missed += batch.missed;
        attached.extend(batch.events.iter().map(|e| e.ino));
        w = batch.next;
    }
    let want_inos: Vec<u64> = inos2.iter().map(|&i| u64::from(i)).collect();
    assert_eq!((missed, attached), (0, want_inos));

    closed_and_clean(one_by_one, &p1);
    closed_and_clean(bulk, &p2);
    let bulk = Fs::open(&p2, false).unwrap();
    assert_eq!(answers(&bulk, &queries, &inos2), want, "after a remount");
}

#[test]
fn a_bad_row_is_refused_and_the_load_goes_on() {
    let data = clustered(300, DIM, 5, 32);
    let (_dir, path, fs) = image(&options(32 << 20, false));
    let inos = empty_files(&fs, data.len());
    let ctx = Ctx::root();
    let dir = fs.lookup(&ctx, 1, b"v").unwrap().ino;
    let mut load = fs.bulk_load(&ctx, "t").unwrap().unwrap();
    for (&i, v) in inos.iter().zip(&data).take(100) {
        load.add(i.into(), v).unwrap();
    }
    let short = load.add(inos[100].into(), &data[100][..DIM - 1]).unwrap_err();
    assert!(matches!(short, FsError::Invalid(_)), "{short}");
    let mut nan = data[100].clone();
    nan[3] = f32::NAN;
    assert!(load.add(inos[100].into(), &nan).is_err(), "a NaN");
    let twice = load.add(inos[5].into(), &data[5]).unwrap_err();
    assert!(twice.to_string().contains("earlier in this bulk load"), "{twice}");
    let not_file = load.add(dir.into(), &data[100]).unwrap_err();
    assert!(matches!(not_file, FsError::NotPermitted), "{not_file}");
    for (&i, v) in inos.iter().zip(&data).skip(100) {
        load.add(i.into(), v).unwrap();
    }
    assert_eq!(load.added(), 300);
    load.finish().unwrap();
    for (&i, v) in inos.iter().zip(&data) {
        assert_eq!(&fs.get_vector(&ctx, i.into(), "t").unwrap(), v);
    }
    closed_and_clean(fs, &path);
}

#[test]
fn a_dropped_load_attaches_nothing_and_frees_its_files() {
    let data = clustered(500, DIM, 5, 33);
    let (_dir, path, fs) = image(&options(32 << 20, false));
    let inos = empty_files(&fs, data.len());
    let space = fs.statfs().unwrap();
    let mut load = fs.bulk_load(&Ctx::root(), "t").unwrap().unwrap();
    for (&i, v) in inos.iter().zip(&data) {
        load.add(i.into(), v).unwrap();
    }
    drop(load);
    let after = fs.statfs().unwrap();
    assert_eq!(
        (after.free_blocks, after.free_files),
        (space.free_blocks, space.free_files),
        "the built files were freed"
    );
    assert_eq!(fs.collection_stats("t").unwrap().count, 0);
    let ctx = Ctx::root();
    let none = fs.get_vector(&ctx, inos[0].into(), "t").unwrap_err();
    assert!(matches!(none, FsError::NoData), "{none}");
    // Still empty: a second load may start.
    assert!(fs.bulk_load(&ctx, "t").unwrap().is_some());
    closed_and_clean(fs, &path);
}

#[test]
fn a_load_too_large_for_the_journal_attaches_one_by_one() {
    let mut data = clustered(2_500 + 10, DIM, 25, 34);
    let queries = data.split_off(2_500);
    let mut opts = options(64 << 20, false);
    // The smallest ring: 2,500 files' references (about 160 inode blocks)
    // and their events do not fit one transaction.
    opts.sizing.journal_blocks = Some(vexfs::format::journal::MIN_JOURNAL_BLOCKS);
    let (_d1, p1, one_by_one) = image(&opts);
    let inos1 = files_with_vectors(&one_by_one, "t", &data);
    let (_d2, p2, fs) = image(&opts);
    let inos2 = empty_files(&fs, data.len());
    let space = fs.statfs().unwrap();
    let mut load = fs.bulk_load(&Ctx::root(), "t").unwrap().unwrap();
    for (&i, v) in inos2.iter().zip(&data) {
        load.add(i.into(), v).unwrap();
    }
    let r = load.finish().unwrap();
    assert_eq!((r.attached, r.one_by_one), (2_500, true));
    assert_eq!(answers(&fs, &queries, &inos2), answers(&one_by_one, &queries, &inos1));
    assert_eq!(shape(&fs), shape(&one_by_one));
    assert_eq!(lists(&fs), lists(&one_by_one));
    assert_eq!(
        fs.statfs().unwrap().free_files,
        space.free_files,
        "the built files were freed"
    );
    closed_and_clean(one_by_one, &p1);
    closed_and_clean(fs, &p2);
}

#[test]
fn only_an_empty_collection_is_bulk_loaded() {
    let data = clustered(10, DIM, 2, 35);
    let (_dir, path, fs) = image(&options(32 << 20, false));
    let ctx = Ctx::root();
    files_with_vectors(&fs, "t", &data[..1]);
    assert!(fs.bulk_load(&ctx, "t").unwrap().is_none(), "it has a slot");
    let e = fs.bulk_load(&ctx, "nope").err().expect("unknown collection");
    assert!(matches!(e, FsError::NotFound), "{e}");
    closed_and_clean(fs, &path);
}
