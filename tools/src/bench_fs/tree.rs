//! The source-tree workloads: `tar x` of a large tree, a walk that stats every file (what
//! `git status` does first), and `git status` itself on a committed copy of the tree.
//!
//! The tarball is made once per run from a tree already on the machine (by default the sources
//! cargo unpacked under ~/.cargo/registry/src), deterministically: names sorted, owner 0, mtime 0,
//! GNU format; its file count, bytes and SHA-256 go into the report, since the tree differs
//! between machines.

use super::bed::Cold;
use super::{Figures, Metric};
use crate::benchsys::{self as sys, io_err, R};
use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Deepest directory the walk descends into (a guard against loops; source trees are far
/// shallower).
const MAX_DEPTH: usize = 64;

/// What a walk found.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Census {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Bytes in regular files.
    pub bytes: u64,
}

/// Readdir every directory under `root` and lstat every entry.
pub fn walk(root: &Path) -> R<Census> {
    let mut c = Census::default();
    walk_into(root, 0, &mut c)?;
    Ok(c)
}

fn walk_into(dir: &Path, depth: usize, c: &mut Census) -> R<()> {
    if depth > MAX_DEPTH {
        return Err(format!("{} is more than {MAX_DEPTH} directories deep", dir.display()));
    }
    for e in fs::read_dir(dir).map_err(io_err("readdir", dir))? {
        let p = e.map_err(io_err("readdir", dir))?.path();
        let m = fs::symlink_metadata(&p).map_err(io_err("stat", &p))?;
        if m.is_dir() {
            c.dirs += 1;
            walk_into(&p, depth + 1, c)?;
        } else if m.is_symlink() {
            c.symlinks += 1;
        } else {
            c.files += 1;
            c.bytes += m.len();
        }
    }
    Ok(())
}

/// The tarball and what went into it.
#[derive(Debug, Serialize)]
pub struct Tarball {
    pub source: PathBuf,
    pub path: PathBuf,
    pub census: Census,
    pub tar_bytes: u64,
    pub sha256: String,
}

/// `tar -c` of `source` into `out`, with everything that varies between runs fixed.
pub fn make_tarball(source: &Path, out: &Path) -> R<Tarball> {
    let census = walk(source)?;
    sys::run(
        Command::new("tar")
            .arg("--sort=name")
            .arg("--mtime=@0")
            .arg("--owner=0")
            .arg("--group=0")
            .arg("--numeric-owner")
            .arg("--format=gnu")
            .arg("-C")
            .arg(source)
            .arg("-cf")
            .arg(out)
            .arg("."),
    )?;
    let tar_bytes = fs::metadata(out).map_err(io_err("stat", out))?.len();
    let sum = sys::run(Command::new("sha256sum").arg(out))?;
    Ok(Tarball {
        source: source.to_path_buf(),
        path: out.to_path_buf(),
        census,
        tar_bytes,
        sha256: sum.split_whitespace().next().unwrap_or_default().to_string(),
    })
}

fn timed<T>(f: impl FnOnce() -> R<T>) -> R<(T, f64)> {
    let t0 = Instant::now();
    let v = f()?;
    Ok((v, t0.elapsed().as_secs_f64()))
}

fn seconds_row(name: &str, what: String, s: f64, per_s: Option<(&'static str, f64)>) -> Figures {
    let mut metrics = vec![Metric::lower("s", s)];
    if let Some((unit, n)) = per_s {
        metrics.push(Metric::higher(unit, n / s));
    }
    Figures {
        name: name.into(),
        what,
        metrics,
    }
}

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(dir)
        .args(["-c", "user.name=bench-fs", "-c", "user.email=bench-fs@localhost"])
        .args(["-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false"]);
    c
}

/// tar x into `root/tree`, walk it cold and warm, then (when git is installed) commit it and time
/// `git status` cold and warm. Every cold step starts with a remount (see [`super::bed`]).
pub fn run(root: &Path, t: &Tarball, with_git: bool, cold: Cold) -> R<Vec<Figures>> {
    let dest = root.join("tree");
    fs::create_dir_all(&dest).map_err(io_err("mkdir", &dest))?;
    cold()?;
    let ((), s) = timed(|| {
        sys::run(Command::new("tar").arg("-xf").arg(&t.path).arg("-C").arg(&dest))?;
        sys::syncfs(&dest)
    })?;
    let what = format!(
        "tar x of {} files, {} MiB, then syncfs",
        t.census.files,
        t.census.bytes >> 20
    );
    let mut out = vec![seconds_row("tar-x", what, s, Some(("files/s", t.census.files as f64)))];
    cold()?;
    for (name, what) in [
        ("walk-cold", "readdir + lstat of every entry, cold cache"),
        ("walk-warm", "the same walk again"),
    ] {
        sys::check()?;
        let (c, s) = timed(|| walk(&dest))?;
        if c != t.census {
            return Err(format!(
                "{name}: found {c:?} under {}, the tarball holds {:?}",
                dest.display(),
                t.census
            ));
        }
        let entries = (c.files + c.dirs + c.symlinks) as f64;
        out.push(seconds_row(name, what.into(), s, Some(("entries/s", entries))));
    }
    if with_git {
        sys::run(git(&dest).args(["init", "-q"]))?;
        let ((), s) = timed(|| {
            sys::run(git(&dest).args(["add", "-A"]))?;
            sys::run(git(&dest).args(["commit", "-q", "-m", "tree"])).map(drop)
        })?;
        out.push(seconds_row(
            "git-add-commit",
            "git add -A and git commit of the tree".into(),
            s,
            None,
        ));
        cold()?;
        for (name, what) in [
            ("git-status-cold", "git status on the committed tree, cold cache"),
            ("git-status-warm", "git status again"),
        ] {
            sys::check()?;
            let (st, s) = timed(|| sys::run(git(&dest).args(["status", "--porcelain"])))?;
            if !st.trim().is_empty() {
                return Err(format!(
                    "{name}: the committed tree is not clean: {}",
                    st.lines().next().unwrap_or("")
                ));
            }
            out.push(seconds_row(name, what.into(), s, None));
        }
    }
    fs::remove_dir_all(&dest).map_err(io_err("rm -r", &dest))?;
    sys::syncfs(root)?;
    Ok(out)
}
