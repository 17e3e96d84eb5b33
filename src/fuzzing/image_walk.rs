//! A whole image: fsck, the catalogue, a read-only walk of the tree,
//! queries through a read-only [`Fs`], and the repair property.

use super::vectors::collection_records;
use super::{temp_image_path, TempImage, FUZZ_BUDGET, MAX_FILE_READ, MAX_WALK_ENTRIES};
use crate::check::{self, CheckOptions};
use crate::events::Filter;
use crate::format::inode::FileType;
use crate::format::vector::MAX_DIM;
use crate::format::{CATALOG_INO, ROOT_INO};
use crate::fs::core::Fs;
use crate::image::{Image, Mode};
use crate::vector::SearchRequest;
use std::collections::HashSet;

/// A whole image: writes the bytes to a temp file, opens it read-only with
/// [`Image::open`] and, if it opens, runs fsck ([`check::check`]), reads the
/// catalogue ([`crate::catalog::read_catalogue`]) and walks the tree from
/// the root (explicit stack, visited set, at most [`MAX_WALK_ENTRIES`]
/// entries), reading every regular file (at most [`MAX_FILE_READ`] bytes
/// each) and every symlink target. Then, if the image mounts read-only as
/// an [`Fs`], each collection is searched (budget 2000 nodes) and its
/// statistics gathered, and the first 100 events are read. Last, the
/// repair property ([`repair_settles`]) on the same temp copy. The temp
/// file is removed afterwards.
pub fn whole_image(data: &[u8]) {
    let tmp = TempImage(temp_image_path());
    if std::fs::write(&tmp.0, data).is_err() {
        return;
    }
    let Ok(img) = Image::open(&tmp.0, Mode::ReadOnly) else {
        return;
    };
    let report = check::check(&img, CheckOptions::default());
    for p in &report.problems {
        let _ = p.to_string();
    }
    if let Ok(Some(cat)) = crate::catalog::read_catalogue(&img) {
        collection_records(&cat.records);
    }
    walk(&img);
    drop(img);
    if let Ok(fs) = Fs::open(&tmp.0, true) {
        fs_queries(&fs);
    }
    if data.len() <= MAX_REPAIR_BYTES {
        repair_settles(&tmp.0);
    }
}

/// Largest image [`whole_image`] repairs. Why: a repair may rebuild every
/// collection's graph; bounding the image bounds that work per input.
const MAX_REPAIR_BYTES: usize = 64 << 20;

/// The repair property: `fsck -y` on the (writable, temp) image either
/// leaves some problem uncorrected (and lists it), or a second, read-only
/// check without journal replay (`fsck -n`) finds the image clean. Panics
/// otherwise. The repair itself runs at most [`check::MAX_PASSES`] passes.
fn repair_settles(path: &std::path::Path) {
    let Ok(outcome) = check::repair(path, check::RepairMode::Yes, CheckOptions::default()) else {
        return; // could not be opened or checked: an operational error
    };
    for f in &outcome.fixed {
        let _ = f.to_string();
    }
    if outcome.exit_code() != 1 {
        return; // clean from the start, or problems left uncorrected (listed)
    }
    let again = match Image::open(path, Mode::ReadOnly) {
        Ok(img) => check::check(&img, CheckOptions::default()),
        Err(e) => panic!("fsck -y reported every problem corrected, but the image no longer opens: {e}"),
    };
    assert!(
        again.is_clean(),
        "fsck -y reported every problem corrected ({:?}), but a second check finds {:?}",
        outcome.fixed.iter().map(ToString::to_string).collect::<Vec<_>>(),
        again.problems.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
}

/// Read-only walk of the tree from the root.
fn walk(img: &Image) {
    let mut stack = vec![ROOT_INO];
    let mut visited: HashSet<u32> = HashSet::from([ROOT_INO]);
    let mut entries_seen = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(dir_ino) = img.inode_no(dir) else { continue };
        let Ok(entries) = img.read_dir(dir_ino) else { continue };
        if let Some(first) = entries.first() {
            let _ = img.lookup(dir_ino, &first.name);
        }
        for e in entries {
            entries_seen += 1;
            if entries_seen > MAX_WALK_ENTRIES {
                return;
            }
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let Ok(ino) = img.inode_no(e.inode) else { continue };
            let Ok(view) = img.inode(ino) else { continue };
            let _ = img.extent_tree_blocks(ino, &view);
            match view.base.file_type() {
                Some(FileType::Directory) if visited.insert(e.inode) => stack.push(e.inode),
                Some(FileType::Regular) => {
                    let _ = img.read_file(ino, 0, MAX_FILE_READ);
                }
                Some(FileType::Symlink) => {
                    let _ = img.read_link(ino);
                }
                _ => {}
            }
        }
    }
    // The hidden catalogue inode, read as a file like any other.
    if let Ok(ino) = img.inode_no(CATALOG_INO) {
        let _ = img.read_file(ino, 0, MAX_FILE_READ);
    }
    let _ = img.resolve("/");
}

/// A mounted image's vector and event queries, read-only: every collection
/// (at most 8) searched with a query of its dimension (budget 2000 nodes)
/// and its statistics gathered; the first 100 events.
fn fs_queries(fs: &Fs) {
    if let Ok(colls) = fs.collections() {
        for rec in colls.iter().take(8) {
            let dim = rec.dim.min(MAX_DIM) as usize;
            let v = (0..dim).map(|i| (i % 7) as f32 * 0.25 + 0.5).collect();
            let mut req = SearchRequest::new(&rec.name, v, 5);
            req.budget = FUZZ_BUDGET;
            let _ = fs.search(&req);
            let _ = fs.collection_stats(&rec.name);
        }
    }
    let _ = fs.event_range();
    if let Ok(batch) = fs.events_since(0, 100, &Filter::default()) {
        for e in &batch.events {
            let _ = e.to_json();
        }
    }
}
