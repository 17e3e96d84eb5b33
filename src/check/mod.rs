//! fsck: checks every invariant of an image that can be checked offline
//! (format-spec chapters 2-11) and reports each problem with its location.
//! Shared by `fsck.vexfs`, the fuzzers and the tests. Each problem carries
//! a [`Kind`] beside its message; [`repair`] is driven by those kinds.
//!
//! Memory is proportional to the image (one bit per block and per inode,
//! a link counter per inode), as in e2fsck; the mount never uses this.

mod bitmaps;
mod events;
mod repair;
mod repair_bitmaps;
mod repair_events;
mod repair_kind;
mod repair_tree;
mod tree;
mod vectors;

pub use repair::{repair, replay_journal, Fix, RepairMode, RepairOutcome, MAX_PASSES};
pub use repair_kind::{EntryAt, Kind};

use crate::error::FsError;
use crate::image::Image;
use std::fmt;

/// One problem: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// e.g. "inode 12", "block 300", "block bitmap".
    pub location: String,
    pub message: String,
    /// What a repair needs to know ([`Kind::Other`]: not repaired).
    pub kind: Kind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// What a check found.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub problems: Vec<Problem>,
    pub inodes_checked: u64,
    pub directories: u64,
    pub files: u64,
    pub blocks_in_use: u64,
}

/// Most problems recorded before the check stops listing (the count of a
/// badly damaged image is still reported as "more").
pub const MAX_PROBLEMS: usize = 10_000;

impl Report {
    pub(crate) fn add(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.add_kind(location, message, Kind::Other);
    }

    pub(crate) fn add_kind(&mut self, location: impl Into<String>, message: impl Into<String>, kind: Kind) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                location: location.into(),
                message: message.into(),
                kind,
            });
        }
    }

    pub(crate) fn add_err(&mut self, location: impl Into<String>, e: &FsError) {
        self.add(location, e.to_string());
    }

    pub(crate) fn add_err_kind(&mut self, location: impl Into<String>, e: &FsError, kind: Kind) {
        self.add_kind(location, e.to_string(), kind);
    }

    /// Whether problems were left off the list ([`MAX_PROBLEMS`]).
    pub fn is_truncated(&self) -> bool {
        self.problems.len() >= MAX_PROBLEMS
    }

    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Progress callback: (phase name, done, total).
pub type ProgressFn<'a> = &'a mut dyn FnMut(&str, u64, u64);

/// Options for a check run.
#[derive(Default)]
pub struct CheckOptions<'a> {
    /// Called as the check progresses.
    pub progress: Option<ProgressFn<'a>>,
}

/// Check an opened image.
pub fn check(img: &Image, opts: CheckOptions<'_>) -> Report {
    let mut report = Report::default();
    let mut progress = opts.progress;
    let mut tick = |phase: &str, done: u64, total: u64| {
        if let Some(p) = progress.as_mut() {
            p(phase, done, total);
        }
    };
    let mut state = tree::State::new(img);
    tick("inodes", 0, 1);
    state.scan_inodes(&mut report, &mut tick);
    tick("directories", 0, 1);
    state.walk_tree(&mut report);
    state.check_hidden(&mut report);
    state.check_links(&mut report);
    tick("vectors", 0, 1);
    vectors::check(img, &state, &mut report);
    tick("bitmaps", 0, 1);
    bitmaps::check(img, &state, &mut report);
    bitmaps::check_rings(img, &mut report);
    events::check(img, &mut report);
    bitmaps::check_superblock_fields(img, &mut report);
    report.inodes_checked = state.inodes_in_use;
    report
}
