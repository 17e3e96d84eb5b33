//! Conversions between core types and fuser types: attributes, times,
//! file types, errno values and the caller's credentials.

use crate::error::FsError;
use crate::format::inode::{FileType, Timestamp};
use crate::fs::core::Attr;
use crate::fs::perm::Ctx;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Block size reported in `st_blksize`.
pub const BLKSIZE: u32 = 4096;

/// The errno for a core error: `FsError::errno()`, except the "past the
/// end" cases of SEEK_DATA/SEEK_HOLE, which the core reports as
/// `FsError::Invalid` with "ENXIO" in the text and lseek(2) reports as ENXIO.
pub fn errno(e: &FsError) -> fuser::Errno {
    if let FsError::Invalid(text) = e {
        if text.contains("ENXIO") {
            return fuser::Errno::from_i32(libc::ENXIO);
        }
    }
    fuser::Errno::from_i32(e.errno())
}

/// A core file type as fuser spells it.
pub fn file_type(k: FileType) -> fuser::FileType {
    match k {
        FileType::Regular => fuser::FileType::RegularFile,
        FileType::Directory => fuser::FileType::Directory,
        FileType::CharDevice => fuser::FileType::CharDevice,
        FileType::BlockDevice => fuser::FileType::BlockDevice,
        FileType::Fifo => fuser::FileType::NamedPipe,
        FileType::Socket => fuser::FileType::Socket,
        FileType::Symlink => fuser::FileType::Symlink,
    }
}

/// The file type of an ext2 directory-entry type code (0 and unknown
/// codes: `None`, the caller asks the inode).
pub fn dirent_type(code: u8) -> Option<fuser::FileType> {
    Some(match code {
        1 => fuser::FileType::RegularFile,
        2 => fuser::FileType::Directory,
        3 => fuser::FileType::CharDevice,
        4 => fuser::FileType::BlockDevice,
        5 => fuser::FileType::NamedPipe,
        6 => fuser::FileType::Socket,
        7 => fuser::FileType::Symlink,
        _ => return None,
    })
}

/// An on-disk timestamp as a `SystemTime` (seconds may be negative;
/// nanoseconds always count forwards from the second).
pub fn system_time(t: Timestamp) -> SystemTime {
    let nsec = Duration::from_nanos(u64::from(t.nsec.min(999_999_999)));
    let base = if t.sec >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(t.sec.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(t.sec.unsigned_abs()))
    };
    base.and_then(|b| b.checked_add(nsec)).unwrap_or(UNIX_EPOCH)
}

/// A time the kernel sent in a setattr request, back to (sec, nsec).
///
/// fuser 0.18 turns a negative `(sec, nsec)` from the kernel into
/// `UNIX_EPOCH - Duration::new(-sec, nsec)` (its own TODO in
/// `time::system_time_from_time`), i.e. it *subtracts* the nanoseconds.
/// That mapping is one-to-one, so it is undone exactly here: a time before
/// the epoch at distance `d` came from `(-d.secs, d.nanos)`.
pub fn timestamp_from_kernel(t: SystemTime) -> Timestamp {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timestamp {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nsec: d.subsec_nanos(),
        },
        Err(e) => {
            let d = e.duration();
            Timestamp {
                sec: i64::try_from(d.as_secs()).map_or(i64::MIN, |s| -s),
                nsec: d.subsec_nanos(),
            }
        }
    }
}

/// Core attributes as fuser's `FileAttr`.
pub fn file_attr(a: &Attr) -> fuser::FileAttr {
    fuser::FileAttr {
        ino: fuser::INodeNo(a.ino.into()),
        size: a.size,
        blocks: a.blocks,
        atime: system_time(a.atime),
        mtime: system_time(a.mtime),
        ctime: system_time(a.ctime),
        crtime: system_time(a.crtime),
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: BLKSIZE,
        flags: 0,
    }
}

/// The supplementary groups of process `pid`, from the "Groups:" line of
/// /proc/<pid>/status (empty when it cannot be read: the process may be
/// gone already, or live in another pid namespace).
pub fn groups_of(pid: u32) -> Vec<u32> {
    if pid == 0 {
        return Vec::new();
    }
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    parse_groups(&status)
}

/// The numbers on the "Groups:" line of a /proc status file.
pub fn parse_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|rest| rest.split_whitespace().filter_map(|g| g.parse().ok()).collect())
        .unwrap_or_default()
}

/// The caller of a request. Supplementary groups only matter to the
/// permission checks of non-root callers, so root skips reading /proc.
pub fn ctx(uid: u32, gid: u32, pid: u32) -> Ctx {
    Ctx {
        uid,
        gid,
        pid,
        groups: if uid == 0 { Vec::new() } else { groups_of(pid) },
        umask: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_the_epoch_keep_forward_nanoseconds() {
        let t = Timestamp {
            sec: -2,
            nsec: 500_000_000,
        };
        let st = system_time(t);
        assert_eq!(UNIX_EPOCH.duration_since(st).unwrap(), Duration::from_millis(1500));
        let t = Timestamp {
            sec: 1_700_000_000,
            nsec: 7,
        };
        assert_eq!(
            system_time(t).duration_since(UNIX_EPOCH).unwrap(),
            Duration::new(1_700_000_000, 7)
        );
    }

    #[test]
    fn kernel_times_undo_fusers_negative_mapping() {
        // fuser maps kernel (-2, 500_000_000) to EPOCH - 2.5 s.
        let from_fuser = UNIX_EPOCH - Duration::new(2, 500_000_000);
        assert_eq!(
            timestamp_from_kernel(from_fuser),
            Timestamp {
                sec: -2,
                nsec: 500_000_000
            }
        );
        let pos = UNIX_EPOCH + Duration::new(5, 9);
        assert_eq!(timestamp_from_kernel(pos), Timestamp { sec: 5, nsec: 9 });
    }

    #[test]
    fn groups_line_is_parsed() {
        let s = "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 27 1000 \nNgid:\t0\n";
        assert_eq!(parse_groups(s), vec![4, 24, 27, 1000]);
        assert!(parse_groups("Groups:\t\n").is_empty());
        assert!(parse_groups("Name:\tx\n").is_empty());
    }

    #[test]
    fn enxio_text_maps_to_enxio() {
        let e = FsError::Invalid("offset past end of file (ENXIO)".into());
        assert_eq!(i32::from(errno(&e)), libc::ENXIO);
        assert_eq!(i32::from(errno(&FsError::Invalid("x".into()))), libc::EINVAL);
        assert_eq!(i32::from(errno(&FsError::NoSpace)), libc::ENOSPC);
    }
}
