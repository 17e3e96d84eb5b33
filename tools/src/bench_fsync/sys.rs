//! What bench-fsync asks of the system: the shared benchmark plumbing
//! ([`crate::benchsys`]: commands, signals, mounts, loop devices, disk counters) and the
//! ext4 shutdown its crash simulation needs.

pub use crate::benchsys::*;

use std::path::Path;
use std::process::Command;

/// Shut the ext4 filesystem mounted at `dir` down as a crash would (xfstests' `godown -f`): every
/// later operation fails, the unmount does not checkpoint the journal, the next mount replays it.
/// `xfs_io -x -c shutdown` issues EXT4_IOC_SHUTDOWN (XFS_IOC_GOINGDOWN, the same number) with
/// NOLOGFLUSH (without `-f`): the journal stays as it is on disk.
pub fn ext4_shutdown(dir: &Path) -> R<()> {
    ensure_tool("xfs_io", "-V", "xfsprogs")?;
    run(Command::new("xfs_io").args(["-x", "-c", "shutdown"]).arg(dir))
        .map(drop)
        .map_err(|e| format!("shutdown of {}: {e}", dir.display()))
}
