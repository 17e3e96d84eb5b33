//! `bench-events` (tools/src/bin/bench_events.rs): what VexFS's semantic events cost. The
//! shared types live here; `workload` is the metadata workload (through a mount or against the
//! core), `runs` sets up images and mounts and times one throughput run, `latency` follows
//! `/.vexfs/events` and times how soon an event is seen, and `report` summarises and prints the
//! figures. See docs/bench-events.md.

pub mod latency;
pub mod report;
pub mod runs;
mod workload;

use serde::Serialize;
use std::path::Path;

pub type R<T> = Result<T, String>;

/// The root directory's inode.
const ROOT: u64 = 1;
/// Bytes written to every file.
const PAYLOAD: [u8; 100] = [b'x'; 100];
/// Largest throughput slowdown the issue accepts (on/off at least 0.90).
pub const TARGET_SLOWDOWN: f64 = 0.10;
/// Largest p99 latency (and median) the issue accepts, in ms.
pub const TARGET_LATENCY_MS: f64 = 5.0;
/// A follower stops when it sees this name created.
const STOP: &str = "bench-stop";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// Through a FUSE mount served by mount-vexfs.
    Fuse,
    /// vexfs::fs::core::Fs in this process.
    Core,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Fuse => "FUSE mount",
            Backend::Core => "core, in-process",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Off,
    On,
    /// Events on and a follower blocked on `.vexfs/events`.
    OnFollowed,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Off => "events=off",
            Mode::On => "events=on",
            Mode::OnFollowed => "on+follower",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Phase {
    /// Create a file and write 100 bytes (two operations).
    CreateWrite,
    Stat,
    Rename,
    Unlink,
}

pub const PHASES: [Phase; 4] = [Phase::CreateWrite, Phase::Stat, Phase::Rename, Phase::Unlink];

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::CreateWrite => "create+write",
            Phase::Stat => "stat",
            Phase::Rename => "rename",
            Phase::Unlink => "unlink",
        }
    }

    pub fn ops_per_file(self) -> usize {
        match self {
            Phase::CreateWrite => 2,
            _ => 1,
        }
    }
}

/// An io::Error as "`what` `p`: error".
pub fn io_err<'a>(what: &'a str, p: &'a Path) -> impl FnOnce(std::io::Error) -> String + 'a {
    move |e| format!("{what} {}: {e}", p.display())
}
