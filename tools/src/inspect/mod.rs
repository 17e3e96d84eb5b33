//! `vexfs-inspect`: read-only views of a VexFS image.
//!
//! Every command opens the image read-only (shared lock), builds one report
//! and prints it either as text or, with `--json`, as one JSON document.
//! Problems met on the way (corrupt metadata) go to stderr as
//! `vexfs-inspect: ...` lines and make the command exit 1; `verify` prints
//! its problems as its output instead.

pub mod blocks;
pub mod catalog;
pub mod files;
pub mod inode;
pub mod superblock;
pub mod verify;

use serde::Serialize;
use std::io::{self, Write};
use std::path::Path;
use vexfs::format::inode::{FileType, InodeNo};
use vexfs::image::{Image, Mode};
use vexfs::FsError;

/// Program name used as the prefix of every message on stderr.
pub const PROG: &str = "vexfs-inspect";

/// How a command ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything asked for was shown and nothing was wrong.
    Clean,
    /// The output is complete, but problems were found (exit 1).
    Problems,
}

/// Why a command could not finish.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments, a path or inode that does not exist, or an image that
    /// cannot be opened (exit 2).
    Usage(String),
    /// Corrupt metadata stopped the command (exit 1).
    Corrupt(String),
    /// stdout was closed under us (e.g. piped into `head`): stop quietly.
    Closed,
}

impl Failure {
    /// Classify a core error met while doing `what`.
    pub fn fs(what: &str, e: FsError) -> Failure {
        let msg = if what.is_empty() {
            e.to_string()
        } else {
            format!("{what}: {e}")
        };
        match e {
            FsError::Corrupt(_) | FsError::Truncated { .. } => Failure::Corrupt(msg),
            _ => Failure::Usage(msg),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::Closed
        } else {
            Failure::Usage(format!("cannot write output: {e}"))
        }
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        match e.io_error_kind() {
            Some(io::ErrorKind::BrokenPipe) => Failure::Closed,
            _ => Failure::Usage(format!("cannot write JSON output: {e}")),
        }
    }
}

/// Result of one command.
pub type CmdResult = Result<Status, Failure>;

/// The process exit code for a command result, printing the failure.
pub fn exit_code(r: &CmdResult) -> u8 {
    match r {
        Ok(Status::Clean) | Err(Failure::Closed) => 0,
        Ok(Status::Problems) => 1,
        Err(Failure::Corrupt(m)) => {
            warn(m);
            1
        }
        Err(Failure::Usage(m)) => {
            warn(m);
            2
        }
    }
}

/// Print `vexfs-inspect: msg` to stderr (ignoring a closed stderr).
pub fn warn(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "{PROG}: {msg}");
}

/// Print each problem on stderr; the command's status follows from them.
pub fn finish(problems: &[String]) -> Status {
    for p in problems {
        warn(p);
    }
    if problems.is_empty() {
        Status::Clean
    } else {
        Status::Problems
    }
}

/// Open `path` read-only with a shared lock.
pub fn open(path: &Path) -> Result<Image, Failure> {
    Image::open(path, Mode::ReadOnly).map_err(|e| Failure::Usage(e.to_string()))
}

/// Write `value` as one pretty-printed JSON document.
pub fn write_json<T: Serialize>(out: &mut dyn Write, value: &T) -> Result<(), Failure> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Resolve a command-line argument naming an inode: a decimal inode
/// number, or a path from the root (a leading `/` is optional).
pub fn resolve_target(img: &Image, arg: &str) -> Result<InodeNo, Failure> {
    if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
        let n: u32 = arg
            .parse()
            .map_err(|_| Failure::Usage(format!("inode number {arg} is too large")))?;
        return img
            .geometry()
            .inode_no(n)
            .ok_or_else(|| Failure::Usage(format!("inode {n} is outside 1..={}", img.geometry().inodes_count)));
    }
    resolve_path(img, arg)
}

/// Resolve a path from the root without following symlinks.
pub fn resolve_path(img: &Image, path: &str) -> Result<InodeNo, Failure> {
    img.resolve(path).map_err(|e| Failure::fs(path, e))
}

/// Lower-case name of a file type, as used in JSON output.
pub fn type_name(t: Option<FileType>) -> &'static str {
    match t {
        Some(FileType::Regular) => "regular",
        Some(FileType::Directory) => "directory",
        Some(FileType::CharDevice) => "char_device",
        Some(FileType::BlockDevice) => "block_device",
        Some(FileType::Fifo) => "fifo",
        Some(FileType::Socket) => "socket",
        Some(FileType::Symlink) => "symlink",
        None => "unknown",
    }
}

/// `ls -l` letter of a file type (`?` for an invalid type).
pub fn type_letter(t: Option<FileType>) -> char {
    t.map_or('?', FileType::letter)
}

/// Permission bits (with setuid/setgid/sticky) as four octal digits.
pub fn mode_octal(mode: u16) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// A name from disk, lossily decoded, with control characters escaped so
/// a hostile image cannot drive the terminal.
pub fn display_name(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .flat_map(|c| -> Box<dyn Iterator<Item = char>> {
            if c.is_control() {
                Box::new(c.escape_default())
            } else {
                Box::new(std::iter::once(c))
            }
        })
        .collect()
}

/// Seconds since the epoch as `YYYY-MM-DD hh:mm:ss UTC` (proleptic
/// Gregorian calendar; years outside 0..=9999 are shown as plain numbers).
pub fn utc(sec: i64) -> String {
    let days = sec.div_euclid(86_400);
    let rem = sec.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return format!("{sec} s");
    }
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day); H. Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era.saturating_mul(400) + i64::from(m <= 2);
    (y, m, d)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One `key: value` line of a text report, keys aligned.
pub fn kv(out: &mut dyn Write, key: &str, value: impl std::fmt::Display) -> io::Result<()> {
    writeln!(out, "{:<22}{value}", format!("{key}:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(i64::MAX), format!("{} s", i64::MAX));
    }

    #[test]
    fn names_escape_control_characters() {
        assert_eq!(display_name(b"a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(display_name("é".as_bytes()), "é");
        assert_eq!(mode_octal(0o104755), "4755");
    }
}
