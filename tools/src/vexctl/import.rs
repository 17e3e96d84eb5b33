//! `vexctl import`: stream vectors from .npy, .fvecs or CSV files and
//! attach each to a file, with a progress bar and memory bounded by one
//! record (and, for a bulk load, a bit per inode). Into an empty collection
//! of an unmounted image the import is one `Fs::bulk_load`: the graph is
//! built outside the journal and every vector is attached at the end, or
//! none. .npy and .fvecs rows have no paths: row i goes to
//! `DIR/<i / 1000>/<i>` (created), which keeps directories small. CSV
//! rows name their file (created, with its parents, if missing).

use super::{Failure, Outcome, Target};
use crate::vecfile::{VecFormat, VecReader};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::time::Instant;
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::vector::bulk::BulkLoad;

/// Files per import directory (row i lives in DIR/<i / FANOUT>/).
const FANOUT: u64 = 1000;

/// What to import.
pub struct Options<'a> {
    pub collection: &'a str,
    pub file: &'a Path,
    pub format: Option<VecFormat>,
    pub dir: &'a str,
    pub quiet: bool,
    /// `--reorder`: `Fs::reorder_collection` after the import (offline).
    pub reorder: bool,
}

/// Where the vectors go.
enum Sink<'a> {
    /// An unmounted image whose collection is empty: one bulk load (the
    /// graph built outside the journal, all vectors attached at the end).
    Bulk(&'a Fs, Box<BulkLoad<'a>>),
    /// An unmounted image: `Fs::set_vector` per vector.
    Offline(&'a Fs),
    /// A mount point: the xattr per vector.
    Mounted(std::path::PathBuf),
}

impl Sink<'_> {
    fn attach(&mut self, path: &str, collection: &str, v: &[f32]) -> Outcome<()> {
        match self {
            Sink::Bulk(fs, load) => {
                let ino = ensure_file(fs, &Ctx::root(), path)?;
                load.add(ino, v).map_err(Failure::from)
            }
            Sink::Offline(fs) => offline_attach(fs, path, collection, v),
            Sink::Mounted(m) => mounted_attach(m, path, collection, v),
        }
    }

    /// Attach what a bulk load holds (nothing to do otherwise; the core
    /// says when the journal made it attach them one by one).
    fn finish(self) -> Outcome<()> {
        if let Sink::Bulk(_, load) = self {
            load.finish()?;
        }
        Ok(())
    }
}

/// The path (inside the filesystem) a record is attached to.
fn dest(o: &Options<'_>, index: u64, path: Option<&str>) -> String {
    match path {
        Some(p) => format!("/{}", p.trim_start_matches('/')),
        None => format!("{}/{:04}/{index:08}", o.dir.trim_end_matches('/'), index / FANOUT),
    }
}

fn progress(total: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Import every record; prints a summary line.
pub fn run(t: &Target, o: &Options<'_>) -> Outcome<()> {
    let fmt = o
        .format
        .or_else(|| VecFormat::from_path(o.file))
        .ok_or_else(|| Failure::new(format!("{}: give --format (npy, fvecs or csv)", o.file.display())))?;
    let reader = VecReader::open(o.file, fmt).map_err(|e| Failure::new(e.to_string()))?;
    let bar = progress(reader.progress().1, o.quiet);
    let started = Instant::now();
    // Offline, the image stays open after the last vector for the
    // reconnect pass below.
    let offline = match t {
        Target::Image(_) => Some(t.open(false)?),
        Target::Mount(m) if o.reorder => {
            return Err(Failure::new(format!(
                "{}: --reorder works on an unmounted image; unmount it first",
                m.display()
            )))
        }
        Target::Mount(_) => None,
    };
    let mut sink = match (&offline, t) {
        (Some(fs), _) => match fs
            .bulk_load(&Ctx::root(), o.collection)
            .map_err(super::manage::collection_error(o.collection))?
        {
            Some(load) => Sink::Bulk(fs, Box::new(load)),
            None => Sink::Offline(fs),
        },
        // Only a mount point is left without an open image.
        (None, Target::Mount(m) | Target::Image(m)) => Sink::Mounted(m.clone()),
    };
    let all_or_nothing = matches!(sink, Sink::Bulk(..));
    let mut n = 0u64;
    let mut reader = reader;
    while let Some(rec) = reader.next() {
        let undone = match all_or_nothing {
            true => " (no vector was attached: an import into an empty collection is all or nothing)",
            false => "",
        };
        let rec = rec.map_err(|e| Failure::new(format!("{e}{undone}")))?;
        let path = dest(o, rec.index, rec.path.as_deref());
        sink.attach(&path, o.collection, &rec.vector)
            .map_err(|e| Failure::new(format!("{path}: {}{undone}", e.message)))?;
        n += 1;
        if n.is_multiple_of(256) {
            bar.set_position(reader.progress().0);
            bar.set_message(format!("{n} vectors"));
        }
    }
    bar.finish_and_clear();
    sink.finish()?;
    if let (Some(fs), true) = (&offline, n > 0) {
        reconnect(fs, o.collection, o.quiet);
        if o.reorder {
            reorder(fs, o.collection);
        }
    }
    drop(offline); // closes the image: commit, checkpoint, clean unmount
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {n} vectors into {} in {secs:.1} s ({:.0} vectors/s)",
        o.collection,
        n as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// `--reorder`: the nodes renumbered for locality. The vectors are
/// committed by then, so a failure (a journal too small for the last
/// transaction) is a warning, not a failed import.
fn reorder(fs: &Fs, collection: &str) {
    match fs.reorder_collection(collection, &mut |_, _| {}) {
        Ok(r) => println!(
            "reordered {collection}: {} slots, {} files' references moved",
            r.slots, r.references
        ),
        Err(e) => eprintln!(
            "vexctl: warning: the vectors are imported, but the reorder failed ({e}); nothing was \
             renumbered"
        ),
    }
}

/// After a bulk insert, link the nodes the inserts' local checks left
/// reachable only from each other (format-spec/09 §9.2), as fsck -y
/// would. Why here and not only at close (which runs the pass too, for
/// collections changed since): the import reports what it linked; the
/// close then finds this collection done.
/// The vectors are committed by then, so a failure here is a warning, not
/// a failed import.
fn reconnect(fs: &Fs, collection: &str, quiet: bool) {
    let r = match fs.reconnect_collection(collection) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "vexctl: warning: the vectors are imported, but the pass linking unreachable graph nodes \
                 failed: {e}; run `fsck.vexfs -y` on the unmounted image"
            );
            return;
        }
    };
    if r.linked > 0 && !quiet {
        eprintln!("vexctl: linked {} unreachable graph node(s) of {collection}", r.linked);
    }
    if r.stranded > 0 {
        eprintln!(
            "vexctl: warning: {} node(s) of {collection} stay unreachable from the entry point; \
             run `vexctl rebuild` on the unmounted image",
            r.stranded
        );
    }
}

/// Find or create `path` (and its parent directories) in the image.
fn ensure_file(fs: &Fs, ctx: &Ctx, path: &str) -> Outcome<u64> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut ino = u64::from(vexfs::format::ROOT_INO);
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        ino = match fs.lookup(ctx, ino, part.as_bytes()) {
            Ok(a) => a.ino.into(),
            Err(vexfs::FsError::NotFound) => {
                let node = if last { NewNode::File } else { NewNode::Dir };
                let mode = if last { 0o644 } else { 0o755 };
                fs.create(ctx, ino, part.as_bytes(), mode, node)?.ino.into()
            }
            Err(e) => return Err(e.into()),
        };
    }
    Ok(ino)
}

fn offline_attach(fs: &Fs, path: &str, collection: &str, v: &[f32]) -> Outcome<()> {
    let ctx = Ctx::root();
    let ino = ensure_file(fs, &ctx, path)?;
    fs.set_vector(&ctx, ino, collection, v)
        .map_err(super::manage::collection_error(collection))
}

fn mounted_attach(m: &Path, path: &str, collection: &str, v: &[f32]) -> Outcome<()> {
    let full = m.join(path.trim_start_matches('/'));
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if !full.exists() {
        std::fs::File::create(&full)?;
    }
    let bytes = vexfs::vector::vattr::bytes(v);
    xattr::set(&full, format!("user.vexfs.vector.{collection}"), &bytes)?;
    Ok(())
}
