//! What bench-fsync asks of the system: the shared benchmark plumbing
//! ([`vexfs_tools::benchsys`]: commands, signals, mounts, loop devices, disk counters) and the
//! ext4 shutdown ioctl its crash simulation needs.

pub use vexfs_tools::benchsys::*;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// `_IOR('X', 125, __u32)`: EXT4_IOC_SHUTDOWN (the same number as XFS_IOC_GOINGDOWN).
const EXT4_IOC_SHUTDOWN: libc::c_ulong = 0x8004_587D;
/// Stop at once: neither flush the log nor write data (the journal stays as it is on disk).
const EXT4_GOING_FLAGS_NOLOGFLUSH: u32 = 2;

/// Shut the ext4 filesystem mounted at `dir` down as a crash would (xfstests' `godown -f`): every
/// later operation fails, the unmount does not checkpoint the journal, the next mount replays it.
pub fn ext4_shutdown(dir: &Path) -> R<()> {
    let f = File::open(dir).map_err(io_err("open", dir))?;
    let flags = EXT4_GOING_FLAGS_NOLOGFLUSH;
    // SAFETY: a valid descriptor and a pointer to a u32, as EXT4_IOC_SHUTDOWN reads.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), EXT4_IOC_SHUTDOWN as _, &flags as *const u32) };
    if r != 0 {
        return Err(format!(
            "EXT4_IOC_SHUTDOWN on {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
