//! fsck repair (`fsck.vexfs -y` and `-p`), driven by the check's findings.
//!
//! A pass checks the image read-only, then opens it with the core
//! ([`Fs::open`], which replays the journal) and makes every change in
//! [`Fs::write`] transactions before [`Fs::close`]: a crash during repair
//! is recovered like any other crash. Each change is derived from the
//! [`Kind`] the check recorded beside a problem. Passes repeat (at most
//! [`MAX_PASSES`]) while they change something, because one repair can
//! reveal the next (a reconnected directory's subtree gets its link counts
//! on the following pass); the last check decides the verdict, so "all
//! corrected" is never claimed for an image a check would not pass.
//!
//! Repairs that free blocks, allocate (lost+found, a graph rebuild) or
//! judge reachability only run when the check saw every block and every
//! reference: a damaged inode or directory blocks them ([`Kind::hides_blocks`],
//! [`Kind::hides_references`]), so a repair never destroys data it could
//! not see.

use super::{check, CheckOptions, Kind, Problem, Report};
use crate::error::{FsError, Result};
use crate::format::features::INCOMPAT_RECOVER;
use crate::format::superblock::{Superblock, STATE_DIRTY, STATE_VALID, SUPERBLOCK_SIZE};
use crate::fs::core::Fs;
use crate::image::{Image, Mode};
use crate::layout::Geometry;
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use zerocopy::FromBytes;

/// Most check-and-repair passes. Why: every repair kind settles in at
/// most two passes (reconnect, then the link counts below it); the bound
/// keeps a repair that does not take from looping.
pub const MAX_PASSES: usize = 4;

/// How much fsck may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairMode {
    /// `-p`/`-a`: only what is safe without a human ([`Kind::preen_safe`]);
    /// anything else stops the repair before it changes anything.
    Preen,
    /// `-y`: every repair fsck has.
    Yes,
}

/// One change made to the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub location: String,
    pub what: String,
}

impl Fix {
    pub(crate) fn new(location: impl Into<String>, what: impl Into<String>) -> Fix {
        Fix {
            location: location.into(),
            what: what.into(),
        }
    }
}

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.what)
    }
}

/// What a repair did.
#[derive(Debug, Clone, Default)]
pub struct RepairOutcome {
    /// Journal transactions replayed before the first check.
    pub replayed: usize,
    /// The first check.
    pub found: Report,
    /// Every change, in order.
    pub fixed: Vec<Fix>,
    /// The last check: the problems left uncorrected.
    pub remaining: Report,
    /// `-p` met a problem it may not fix (listed in `remaining`).
    pub refused: bool,
    /// Repairs that could not be made, and why.
    pub errors: Vec<String>,
    pub inodes_count: u32,
    pub blocks_count: u64,
}

impl RepairOutcome {
    /// e2fsck's exit status: 0 clean, 1 errors corrected, 4 errors left.
    pub fn exit_code(&self) -> u8 {
        if self.found.is_clean() && self.fixed.is_empty() {
            0
        } else if self.remaining.is_clean() {
            1
        } else {
            4
        }
    }
}

/// Replay the journal's committed transactions (read-write open), as
/// e2fsck does before checking; returns how many were replayed.
pub fn replay_journal(path: &Path) -> Result<usize> {
    let mut img = Image::open(path, Mode::ReadWrite)?;
    let g = img.geometry().clone();
    if !crate::journal::enabled(&g) {
        return Ok(0);
    }
    let seed = img.superblock().s_checksum_seed.get();
    crate::journal::recover(img.file_mut(), &g, seed)
}

/// What a read-only check of the image found, with what the repair needs
/// to know about the superblock.
struct Seen {
    report: Report,
    geometry: Geometry,
    orphans: bool,
    primary_damaged: bool,
}

fn look(path: &Path, opts: CheckOptions<'_>, out: &mut RepairOutcome) -> Result<Seen> {
    let img = Image::open(path, Mode::ReadOnly)?;
    out.inodes_count = img.geometry().inodes_count;
    out.blocks_count = img.geometry().blocks_count;
    Ok(Seen {
        report: check(&img, opts),
        geometry: img.geometry().clone(),
        orphans: img.superblock().s_last_orphan.get() != 0,
        primary_damaged: img.primary_superblock_error().is_some(),
    })
}

/// Replay the journal, check, and repair what `mode` allows until the
/// image is clean, nothing more can be done, or [`MAX_PASSES`] passes ran.
/// Err: the image could not be opened or checked (an operational error).
pub fn repair(path: &Path, mode: RepairMode, opts: CheckOptions<'_>) -> Result<RepairOutcome> {
    let mut out = RepairOutcome {
        // A journal that cannot be replayed is an operational error (as
        // e2fsck's): the image cannot be checked as the next mount sees it.
        replayed: replay_journal(path)?,
        ..Default::default()
    };
    let mut seen = look(path, opts, &mut out)?;
    out.found = seen.report.clone();
    for _ in 0..MAX_PASSES {
        let report = &seen.report;
        if report.is_clean() {
            break;
        }
        if mode == RepairMode::Preen && report.problems.iter().any(|p| !p.kind.preen_safe()) {
            out.refused = true;
            break;
        }
        let know = Knowledge::of(report, &seen.geometry);
        if !has_work(report, &know, &seen.geometry) {
            break;
        }
        let fs = match Fs::open(path, false) {
            Ok(fs) => fs,
            Err(e) => {
                out.errors.push(format!("cannot open the image for repair: {e}"));
                break;
            }
        };
        let before = out.fixed.len();
        if seen.primary_damaged {
            // The read-write open copied the backup over it (as a mount does).
            out.fixed.push(Fix::new(
                "superblock",
                "the damaged primary was rewritten from the backup, free counts from the bitmaps",
            ));
        }
        if seen.orphans {
            // The open released the orphan chain: what the check saw is stale.
            out.fixed.push(Fix::new(
                "orphan chain",
                "the unlinked inodes on it were released (as a mount does)",
            ));
        } else {
            apply(&fs, report, &know, &mut out);
        }
        fs.close()?;
        drop(fs);
        let changed = out.fixed.len() > before;
        let previous = std::mem::take(&mut seen.report);
        seen = look(path, CheckOptions::default(), &mut out)?;
        if !changed || same_problems(&previous, &seen.report) {
            break;
        }
    }
    if !out.refused {
        explain(&seen.report, &Knowledge::of(&seen.report, &seen.geometry), &mut out);
    }
    out.remaining = seen.report;
    Ok(out)
}

/// Whether `apply` would change anything for this report.
fn has_work(report: &Report, know: &Knowledge, g: &Geometry) -> bool {
    let damaged = |c: &String| {
        report
            .problems
            .iter()
            .any(|q| matches!(&q.kind, Kind::CollectionDamage { collection } if collection == c))
    };
    report.problems.iter().any(|p| match &p.kind {
        Kind::LeakedBlocks { .. } => know.blocks,
        Kind::LinkCount { .. } => know.references,
        Kind::Unreachable { .. } => know.blocks && know.references,
        Kind::Graph { collection } => know.blocks && !damaged(collection),
        Kind::LeakedInode { .. } | Kind::UnmarkedInode { .. } => !g.is_kernel_layout(),
        k => k.repairable(),
    })
}

/// Say why repairable problems were left: what the check could not see.
fn explain(report: &Report, know: &Knowledge, out: &mut RepairOutcome) {
    let any = |f: &dyn Fn(&Kind) -> bool| report.problems.iter().any(|p| f(&p.kind));
    if !know.blocks
        && any(&|k| {
            matches!(
                k,
                Kind::LeakedBlocks { .. } | Kind::Unreachable { .. } | Kind::Graph { .. }
            )
        })
    {
        out.errors.push(
            "leaked blocks are not freed, and nothing is allocated (lost+found, graph rebuilds), while some \
             blocks in use may be unseen (a damaged inode or inode bitmap, an inode in use marked free)"
                .into(),
        );
    }
    if !know.references && any(&|k| matches!(k, Kind::LinkCount { .. } | Kind::Unreachable { .. })) {
        out.errors.push(
            "link counts are not changed and unreachable inodes not reconnected while some references may be \
             uncounted (a damaged inode or directory, the catalogue, the orphan chain)"
                .into(),
        );
    }
}

fn same_problems(a: &Report, b: &Report) -> bool {
    a.problems == b.problems
}

/// Whether the check saw every block in use and every reference.
pub(super) struct Knowledge {
    pub blocks: bool,
    pub references: bool,
}

impl Knowledge {
    fn of(report: &Report, g: &Geometry) -> Knowledge {
        let complete = !report.is_truncated();
        let any = |f: &dyn Fn(&Kind) -> bool| report.problems.iter().any(|p| f(&p.kind));
        // A damaged inode bitmap may hide inodes in use from the scan.
        let inodes_known = !any(&|k| matches!(k, Kind::BitmapBlock { block } if g.inode_bitmap.contains(*block)));
        Knowledge {
            blocks: complete && inodes_known && !any(&Kind::hides_blocks),
            references: complete && inodes_known && !any(&Kind::hides_references),
        }
    }
}

/// Make every change the report calls for, in an order that keeps each
/// step safe: the ring and the bitmaps first (so later allocations see
/// exact bitmaps), then inode fields and entries, then the tree, then
/// the graphs.
fn apply(fs: &Fs, report: &Report, know: &Knowledge, out: &mut RepairOutcome) {
    let problems: Vec<&Problem> = report.problems.iter().collect();
    super::repair_events::apply(fs, &problems, out);
    restore_backup(fs, &problems, out);
    super::repair_bitmaps::apply(fs, &problems, know, out);
    super::repair_tree::apply(fs, &problems, know, out);
    if know.blocks {
        rebuild_graphs(fs, &problems, out);
    }
}

/// Rewrite a damaged backup superblock from the primary, marked clean and
/// without needs_recovery or orphans (as mkfs leaves it).
fn restore_backup(fs: &Fs, problems: &[&Problem], out: &mut RepairOutcome) {
    let Some(p) = problems.iter().find(|p| p.kind == Kind::BackupSuperblock) else {
        return;
    };
    let r = fs.write(|txn, g| {
        let at = g
            .backup_superblock()
            .ok_or(FsError::Invalid("no backup superblock".into()))?;
        let mut copy = [0u8; SUPERBLOCK_SIZE];
        copy.copy_from_slice(&txn.block(0)?[..SUPERBLOCK_SIZE]);
        let (sb, _) =
            Superblock::mut_from_prefix(&mut copy[..]).map_err(|_| FsError::Invalid("superblock view".into()))?;
        sb.s_state.set((sb.s_state.get() & !STATE_DIRTY) | STATE_VALID);
        sb.s_feature_incompat
            .set(sb.s_feature_incompat.get() & !INCOMPAT_RECOVER);
        sb.s_last_orphan.set(0);
        sb.update_checksum();
        let block = txn.block_mut(at)?;
        block.fill(0);
        block[..SUPERBLOCK_SIZE].copy_from_slice(&copy);
        Ok(())
    });
    match r {
        Ok(()) => out
            .fixed
            .push(Fix::new(p.location.clone(), "rewritten from the primary")),
        Err(e) => out.errors.push(format!("{}: not rewritten: {e}", p.location)),
    }
}

/// Rebuild each collection whose only problems are in its graph.
fn rebuild_graphs(fs: &Fs, problems: &[&Problem], out: &mut RepairOutcome) {
    let mut graphs = BTreeSet::new();
    let mut damaged = BTreeSet::new();
    for p in problems {
        match &p.kind {
            Kind::Graph { collection } => graphs.insert(collection.as_str()),
            Kind::CollectionDamage { collection } => damaged.insert(collection.as_str()),
            _ => false,
        };
    }
    for name in graphs.difference(&damaged) {
        // Only unreachable nodes: linking them is enough, and far cheaper
        // than reinserting every vector.
        let only_stranded = problems.iter().all(|p| match &p.kind {
            Kind::Graph { collection } if collection == name => p.message.contains("not reachable from ch_entry_slot"),
            _ => true,
        });
        if only_stranded {
            if let Ok(r) = fs.reconnect_collection(name) {
                if r.stranded == 0 {
                    out.fixed.push(Fix::new(
                        format!("collection '{name}'"),
                        format!("{} unreachable node(s) linked from reachable neighbours", r.linked),
                    ));
                    continue;
                }
            }
        }
        match fs.rebuild_collection(name, &mut |_, _| {}) {
            Ok(r) => out.fixed.push(Fix::new(
                format!("collection '{name}'"),
                format!("graph rebuilt ({} live vectors reinserted)", r.live),
            )),
            Err(e) => out.errors.push(format!("collection '{name}': rebuild failed: {e}")),
        }
    }
}
