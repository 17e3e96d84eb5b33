//! A crash anywhere in `Fs::bulk_load` leaves the collection empty or
//! holding every vector, never a part: every crash state of every flush
//! (the crash harness's recording media, `tests/crash_support`) recovers to
//! an image that answers as the finished load does or has no vector at
//! all, and passes fsck. The graph's blocks are written outside the
//! journal, so this is the test of the ordered-mode argument in
//! `src/vector/bulk.rs`.

mod common;
mod crash_support;

use common::data::clustered;
use common::*;
use crash_support::*;
use vexfs::format::vector::{ElemType, Metric};
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::vector::{CollectionParams, SearchRequest};

const DIM: usize = 4;
const FILES: usize = 300;

/// A 16 MiB image with the empty collection "t" and the directory /v,
/// closed. Its journal (4 MiB) holds the whole load's commits: no
/// checkpoint flushes the graph's blocks by the way, so only the
/// ordered-mode flushes of the commits make them durable in time.
fn base(dir: &std::path::Path) -> Vec<u8> {
    let p = dir.join("base.img");
    let mut opts = options(16 << 20, false);
    opts.sizing.journal_blocks = Some(1024);
    vexfs::mkfs::mkfs(&p, &opts, &mut |_, _| {}).unwrap();
    let fs = Fs::open(&p, false).unwrap();
    fs.create_collection(&CollectionParams::new("t", DIM as u32, Metric::L2, ElemType::F32))
        .unwrap();
    fs.create(&Ctx::root(), 1, b"v", 0o755, NewNode::Dir).unwrap();
    fs.close().unwrap();
    drop(fs);
    std::fs::read(&p).unwrap()
}

/// Every query's hits and every file's vector; "empty" when no file has
/// one and searches find nothing.
fn answers(fs: &Fs, queries: &[Vec<f32>], inos: &[u32]) -> Result<String, String> {
    let ctx = Ctx::root();
    // Files created after the crash point are missing: they have no vector.
    let attached = inos
        .iter()
        .filter(|&&i| fs.get_vector(&ctx, i.into(), "t").is_ok())
        .count();
    if attached == 0 {
        let hits = fs.search(&SearchRequest::new("t", queries[0].clone(), 5));
        return match hits {
            Ok(r) if r.hits.is_empty() => Ok("empty".into()),
            other => Err(format!("no file has a vector, yet the search gives {other:?}")),
        };
    }
    Ok(hits_text(fs, "t", queries, 5)? + &vectors_text(fs, "t", inos)?)
}

#[test]
fn a_crash_anywhere_in_a_bulk_load_leaves_no_vector_or_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = clustered(FILES + 5, DIM, 6, 41);
    let queries = data.split_off(FILES);
    let img = base(dir.path());

    // The load over a recording media, each file created just before its
    // row is added (as `vexctl import` does: those transactions commit
    // between the adds), and a commit every 25 rows, but none after the
    // last: the swap's own commit must flush the graph's last blocks.
    let (media, shared) = RecMedia::new(img.clone(), true);
    let fs = Fs::from_media(Box::new(media), false).unwrap();
    let ctx = Ctx::root();
    let dir_ino = fs.lookup(&ctx, 1, b"v").unwrap().ino;
    let mut load = fs.bulk_load(&ctx, "t").unwrap().unwrap();
    let mut inos = Vec::new();
    for (n, v) in data.iter().enumerate() {
        let name = format!("f{n}");
        let f = fs
            .create(&ctx, dir_ino.into(), name.as_bytes(), 0o644, NewNode::File)
            .unwrap();
        load.add(f.ino.into(), v).unwrap();
        inos.push(f.ino);
        if n % 25 == 12 {
            fs.sync().unwrap();
        }
    }
    load.finish().unwrap();
    let want = answers(&fs, &queries, &inos).unwrap();
    assert_ne!(want, "empty");
    fs.close().unwrap();
    drop(fs);

    let epochs = std::mem::take(&mut *shared.epochs.lock().unwrap());
    assert!(epochs.len() >= 6, "{} flush epochs", epochs.len());
    let (states, labels, failures) = check_crash_states(img, &epochs, (12, dir.path()), |fs| {
        let got = answers(fs, &queries, &inos)?;
        match got == want || got == "empty" {
            true => Ok(got),
            false => Err("answers differ".to_string()),
        }
    });
    let empty = labels.iter().filter(|l| *l == "empty").count();
    assert!(
        failures.is_empty(),
        "{} of {states} crash states: {:#?}",
        failures.len(),
        failures
    );
    assert!(
        empty > 0 && empty < states,
        "{empty} of {states} states empty: both outcomes are crash states"
    );
    println!(
        "{} epochs, {states} crash states ({empty} empty), all recovered to no vector or every one",
        epochs.len()
    );
}
