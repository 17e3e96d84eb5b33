//! Keeping every node reachable when a list is re-selected (format-spec/09
//! §9.2), on hand-made lists. Regression (found in review): the last resort
//! of `protect_dropped` (adopt `x` from one of its own neighbours) counted
//! the edge from `v`, whose list is being replaced, as the rescue of `x`.
mod common;

use common::*;
use vexfs::format::vector::{ElemType, Metric};
use vexfs::format::ROOT_INO;
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::vector::build::list_of;
use vexfs::vector::catalog_io;
use vexfs::vector::connect::protect_dropped;
use vexfs::vector::store::Collection;
use vexfs::vector::CollectionParams;

fn set_list(coll: &Collection, txn: &mut vexfs::fs::txn::Txn<'_>, s: u32, ids: &[u32]) {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    let mut rec = coll.record(txn, s).unwrap().into_owned();
    let (at, cap) = (coll.geo.adj_offset as usize, coll.geo.adj_capacity as usize);
    rec[at..at + cap].fill(0);
    let len = coll.coding.encode(&sorted, &mut rec[at..at + cap]).expect("fits");
    rec[6..8].copy_from_slice(&(len as u16).to_le_bytes());
    coll.put_record(txn, s, &mut rec).unwrap();
}

/// An image with collection "t" (2 f32 dimensions, M = `m`) and six files
/// /f0../f5 whose vectors take slots 0..=5.
fn six_nodes(m: u16) -> (tempfile::TempDir, std::path::PathBuf, Fs) {
    let dir = tempfile::tempdir().unwrap();
    let path = make_image(dir.path(), "v.img", 32 << 20, false);
    let fs = Fs::open(&path, false).unwrap();
    let mut p = CollectionParams::new("t", 2, Metric::L2, ElemType::F32);
    p.m = m;
    fs.create_collection(&p).unwrap();
    let ctx = Ctx::root();
    for i in 0..6u32 {
        let name = format!("f{i}");
        let f = fs
            .create(&ctx, u64::from(ROOT_INO), name.as_bytes(), 0o644, NewNode::File)
            .unwrap();
        fs.set_vector(&ctx, f.ino.into(), "t", &[i as f32, 0.0]).unwrap();
    }
    (dir, path, fs)
}

#[test]
fn last_resort_adoption_does_not_count_the_list_being_replaced() {
    let (_dir, _path, fs) = six_nodes(1); // max degree 2 at level 0
    let (v, x, y) = (0u32, 1u32, 2u32);
    let rescued = fs
        .write(|txn, g| {
            let cat = catalog_io::read(txn, g)?.unwrap();
            let rec = cat.records.iter().find(|r| r.name == "t").unwrap().clone();
            let coll = Collection::load(txn, g, &rec)?;
            assert_eq!(coll.slots(), 6);
            // x lists v and y; v's old list names x; y's list is full and
            // does not name x; nobody else names x. 4 and 5 depend on v.
            set_list(&coll, txn, v, &[x, 3]);
            set_list(&coll, txn, x, &[v, y]);
            set_list(&coll, txn, y, &[3, 4]);
            set_list(&coll, txn, 3, &[v]);
            set_list(&coll, txn, 4, &[v]);
            set_list(&coll, txn, 5, &[v]);
            let old = list_of(&coll, txn, v, 0)?;
            let mut keep = vec![4, 5]; // v's new list drops x
            protect_dropped(&coll, txn, v, 0, &old, &mut keep)?;
            let by_other = (0..6u32)
                .filter(|&s| s != v && s != x)
                .any(|s| list_of(&coll, txn, s, 0).unwrap().contains(&x));
            Ok(keep.contains(&x) || by_other)
        })
        .unwrap();
    assert!(rescued, "x is left with no incoming edge once v's list is written");
}

/// Two nodes that list only each other, named by no one: the whole-graph
/// pass links one of them from a reachable neighbour with room, which makes
/// both reachable; `fsck -y` does the same instead of rebuilding the graph.
#[test]
fn an_island_is_linked_by_reconnect_and_by_fsck_repair() {
    use vexfs::check::{self, CheckOptions, RepairMode};
    let (_dir, path, fs) = six_nodes(2); // max degree 4 at level 0
    make_island(&fs);
    let r = fs.reconnect_collection("t").unwrap();
    assert_eq!((r.linked, r.stranded), (1, 0));
    make_island(&fs);
    fs.close().unwrap();
    drop(fs);
    assert!(!fsck(&path).unwrap().is_clean(), "the island is reported");
    let o = check::repair(&path, RepairMode::Yes, CheckOptions::default()).unwrap();
    let fixed: Vec<String> = o.fixed.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        fixed,
        ["collection 't': 1 unreachable node(s) linked from reachable neighbours"]
    );
    let r = fsck(&path).unwrap();
    assert!(r.is_clean(), "{:#?}", r.problems);
}

/// Makes 4 and 5 list only each other and 3, with 0..=3 a ring without
/// them (the entry point may be in either part; either way one part is an
/// island).
fn make_island(fs: &Fs) {
    fs.write(|txn, g| {
        let cat = catalog_io::read(txn, g)?.unwrap();
        let rec = cat.records.iter().find(|r| r.name == "t").unwrap().clone();
        let coll = Collection::load(txn, g, &rec)?;
        for s in 0..4u32 {
            set_list(&coll, txn, s, &[(s + 1) % 4, (s + 3) % 4]);
        }
        set_list(&coll, txn, 4, &[5, 3]);
        set_list(&coll, txn, 5, &[4]);
        Ok(())
    })
    .unwrap();
}

/// A mount (or a bulk build) that attached vectors ends with the reconnect
/// pass: the image it leaves has every live node reachable, which fsck
/// checks, without `fsck -y`. Islands made after the last pass, with no
/// vector change since, are left to fsck (the test above).
#[test]
fn unmount_after_vector_changes_links_islands() {
    let (_dir, path, fs) = six_nodes(2);
    make_island(&fs);
    fs.close().unwrap();
    drop(fs);
    let r = fsck(&path).unwrap();
    assert!(r.is_clean(), "{:#?}", r.problems);
}

/// A file /extra with a vector in collection `coll`, then "t" reconnected
/// (its marks cleared) and given an island, then /extra unlinked (freed).
fn island_then_free_a_vector_file(fs: &Fs, coll: &str) {
    let ctx = Ctx::root();
    let extra = fs
        .create(&ctx, u64::from(ROOT_INO), b"extra", 0o644, NewNode::File)
        .unwrap();
    fs.set_vector(&ctx, extra.ino.into(), coll, &[9.0, 9.0]).unwrap();
    assert_eq!(fs.reconnect_collection("t").unwrap().stranded, 0);
    make_island(fs);
    fs.unlink(&ctx, u64::from(ROOT_INO), b"extra").unwrap();
}

/// The same after a file with a vector was freed (the unlink names the
/// collections the file's vectors were in).
#[test]
fn unmount_after_a_vector_file_is_freed_links_islands() {
    let (_dir, path, fs) = six_nodes(2);
    // Slot 6's node goes; its repair touches only the lists naming it.
    island_then_free_a_vector_file(&fs, "t");
    fs.close().unwrap();
    drop(fs);
    let r = fsck(&path).unwrap();
    assert!(r.is_clean(), "{:#?}", r.problems);
}

/// Freeing a file marks only the collections it had vectors in: an
/// island left in another collection after its last pass stays for fsck
/// (no pass over a collection whose vectors did not change).
#[test]
fn freeing_a_vector_file_marks_only_its_collections() {
    let (_dir, path, fs) = six_nodes(2);
    fs.create_collection(&CollectionParams::new("u", 2, Metric::L2, ElemType::F32))
        .unwrap();
    island_then_free_a_vector_file(&fs, "u");
    fs.close().unwrap();
    drop(fs);
    let r = fsck(&path).unwrap();
    assert!(
        !r.is_clean()
            && r.problems
                .iter()
                .all(|p| p.location.starts_with("collection 't'") && p.message.contains("not reachable")),
        "only t's island, left for fsck: {:#?}",
        r.problems
    );
}
