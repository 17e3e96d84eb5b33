//! A crash anywhere in `Fs::reorder_collection` leaves the old numbering
//! or the new one, never a mix: every crash state of every flush (the
//! crash harness's recording media, `tests/crash_support`) recovers to an
//! image that answers every query as before, gives every file its vector
//! and passes fsck.

mod common;
mod crash_support;

use common::data::{clustered, files_with_vectors};
use common::*;
use crash_support::*;
use vexfs::format::vector::{ElemType, Metric};
use vexfs::fs::core::Fs;
use vexfs::vector::CollectionParams;

const DIM: usize = 4;
const FILES: usize = 300;

/// An 8 MiB image with collection "t" and one file per vector, closed.
fn base(dir: &std::path::Path, data: &[Vec<f32>]) -> (Vec<u8>, Vec<u32>) {
    let p = make_image(dir, "base.img", 8 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    fs.create_collection(&CollectionParams::new("t", DIM as u32, Metric::L2, ElemType::F32))
        .unwrap();
    let inos = files_with_vectors(&fs, "t", data);
    fs.close().unwrap();
    drop(fs);
    (std::fs::read(&p).unwrap(), inos)
}

/// Every query's hits (inode, distance bits) and every file's vector.
fn answers(fs: &Fs, queries: &[Vec<f32>], inos: &[u32]) -> Result<String, String> {
    Ok(hits_text(fs, "t", queries, 5)? + &vectors_text(fs, "t", inos)?)
}

#[test]
fn a_crash_anywhere_in_a_reorder_leaves_the_old_numbering_or_the_new() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = clustered(FILES + 5, DIM, 6, 21);
    let queries = data.split_off(FILES);
    let (img, inos) = base(dir.path(), &data);

    // The reorder over a recording media, committing after every batch so
    // that the copy's states are crash points too.
    let (media, shared) = RecMedia::new(img.clone(), true);
    let fs = Fs::from_media(Box::new(media), false).unwrap();
    let want = answers(&fs, &queries, &inos).unwrap();
    let r = fs.reorder_collection("t", &mut |_, _| fs.sync().unwrap()).unwrap();
    assert!(r.references > 200, "{r:?}");
    assert_eq!(answers(&fs, &queries, &inos).unwrap(), want);
    fs.close().unwrap();
    drop(fs);

    let epochs = std::mem::take(&mut *shared.epochs.lock().unwrap());
    assert!(
        epochs.len() >= 6,
        "{} flush epochs: the batches' commits are crash points",
        epochs.len()
    );
    let (states, _, failures) = check_crash_states(img, &epochs, (12, dir.path()), |fs| {
        let got = answers(fs, &queries, &inos)?;
        (got == want)
            .then_some(String::new())
            .ok_or("answers differ".to_string())
    });
    assert!(
        failures.is_empty(),
        "{} of {states} crash states: {:#?}",
        failures.len(),
        failures
    );
    println!(
        "{} epochs, {states} crash states, all recovered with the same answers",
        epochs.len()
    );
}
