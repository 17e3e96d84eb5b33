//! The metadata workload (in the manner of fs_mark): create, stat, rename and unlink of many small
//! files in a nested tree of directories, each phase timed on its own and reported in ops/s.
//!
//! Layout: `meta/aNN/bNN/cNN/f<i>`, FANOUT directories at each of three levels and the files
//! spread evenly over the leaves. Between phases (untimed): syncfs, so that one phase's dirty state
//! is not written back during the next; before `stat`, a cold start (remount, caches dropped: see
//! [`super::bed`]), so that stat asks the filesystem rather than the kernel's caches.

use super::bed::Cold;
use super::{Figures, Metric};
use crate::benchsys::{self as sys, io_err, R};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Directories per level (three levels: FANOUT³ leaf directories).
const FANOUT: usize = 10;
const LEAVES: usize = FANOUT * FANOUT * FANOUT;

/// What to run: `files` files of `file_bytes` bytes each.
pub struct Spec {
    pub files: usize,
    pub file_bytes: usize,
}

/// The four phases, in order.
pub const PHASES: [&str; 4] = ["create", "stat", "rename", "unlink"];

fn leaf(root: &Path, i: usize) -> PathBuf {
    let d = i % LEAVES;
    root.join(format!("a{:02}", d / (FANOUT * FANOUT)))
        .join(format!("b{:02}", d / FANOUT % FANOUT))
        .join(format!("c{:02}", d % FANOUT))
}

fn file(root: &Path, i: usize, renamed: bool) -> PathBuf {
    leaf(root, i).join(format!("{}{i}", if renamed { 'r' } else { 'f' }))
}

/// Run one phase; returns its ops/s. `op` is called for every file index.
fn phase(what: &str, files: usize, mut op: impl FnMut(usize) -> R<()>) -> R<f64> {
    let t0 = Instant::now();
    for i in 0..files {
        if i % 1024 == 0 {
            sys::check()?;
        }
        op(i).map_err(|e| format!("metadata {what}: {e}"))?;
    }
    Ok(files as f64 / t0.elapsed().as_secs_f64())
}

/// Run the four phases under `root` (created, and removed at the end); one ops/s figure per phase,
/// in [`PHASES`] order. The leaf directories are made (untimed) before `create`.
pub fn run(root: &Path, spec: &Spec, cold: Cold) -> R<Vec<Figures>> {
    for d in 0..LEAVES.min(spec.files.max(1)) {
        let p = leaf(root, d);
        fs::create_dir_all(&p).map_err(io_err("mkdir", &p))?;
    }
    sys::syncfs(root)?;
    let data: Vec<u8> = (0..spec.file_bytes).map(|i| (i % 251) as u8 + 1).collect();
    let create = phase("create", spec.files, |i| {
        let p = file(root, i, false);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&p)
            .map_err(io_err("create", &p))?;
        f.write_all(&data).map_err(io_err("write", &p))
    })?;
    cold()?;
    let stat = phase("stat", spec.files, |i| {
        let p = file(root, i, false);
        let m = fs::symlink_metadata(&p).map_err(io_err("stat", &p))?;
        if m.len() != spec.file_bytes as u64 {
            return Err(format!(
                "{} has {} bytes, not {}",
                p.display(),
                m.len(),
                spec.file_bytes
            ));
        }
        Ok(())
    })?;
    sys::syncfs(root)?;
    let rename = phase("rename", spec.files, |i| {
        let (from, to) = (file(root, i, false), file(root, i, true));
        fs::rename(&from, &to).map_err(io_err("rename", &from))
    })?;
    sys::syncfs(root)?;
    let unlink = phase("unlink", spec.files, |i| {
        let p = file(root, i, true);
        fs::remove_file(&p).map_err(io_err("unlink", &p))
    })?;
    fs::remove_dir_all(root).map_err(io_err("rm -r", root))?;
    sys::syncfs(root.parent().unwrap_or(root))?;
    let what = [
        format!(
            "create + write {} B + close, {} files in {LEAVES} directories",
            spec.file_bytes, spec.files
        ),
        "stat of every file, cold cache".to_string(),
        "rename of every file within its directory".to_string(),
        "unlink of every file".to_string(),
    ];
    Ok(PHASES
        .iter()
        .zip(what)
        .zip([create, stat, rename, unlink])
        .map(|((phase, what), ops)| Figures {
            name: format!("meta-{phase}"),
            what,
            metrics: vec![Metric::higher("ops/s", ops)],
        })
        .collect())
}
