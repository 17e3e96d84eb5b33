//! One image, one lock, whichever path opens it: a loop device and the file
//! behind it are two inodes, so an flock on one does not conflict with an
//! flock on the other, and a mount through `/dev/loopN` and another through
//! its file (or through two loop devices over one file) both succeeded,
//! each writing over the other's changes. Opening a loop device therefore
//! also locks its backing file, in the same mode: every path to one file
//! meets at that file's lock.

use super::Mode;
use crate::error::{FsError, Result};
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The file behind the loop device `meta` describes, if it is one with a
/// file attached (sysfs: /sys/dev/block/MAJOR:MINOR/loop/backing_file).
fn backing_file(meta: &Metadata) -> Option<PathBuf> {
    if !meta.file_type().is_block_device() {
        return None;
    }
    let (major, minor) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
    let sysfs = format!("/sys/dev/block/{major}:{minor}/loop/backing_file");
    let text = std::fs::read_to_string(sysfs).ok()?;
    let path = text.trim_end_matches('\n');
    // A file deleted while attached is shown with this suffix; nothing else
    // can open it by name, so there is nothing to lock.
    (!path.is_empty() && !path.ends_with(" (deleted)")).then(|| PathBuf::from(path))
}

/// When `device` is a loop device, open and lock its backing file in `mode`
/// and return it (the lock lasts as long as the returned file). Refused
/// with `Locked` naming both paths when another opener holds the file.
pub fn lock_backing_file(device: &File, path: &Path, mode: Mode) -> Result<Option<File>> {
    let meta = device
        .metadata()
        .map_err(|e| FsError::io(format!("cannot stat {}", path.display()), e))?;
    let Some(backing) = backing_file(&meta) else {
        return Ok(None);
    };
    // Read access is enough for an flock, whatever the mode.
    let file = File::open(&backing).map_err(|e| {
        FsError::io(
            format!("cannot open {} (behind {})", backing.display(), path.display()),
            e,
        )
    })?;
    let shown = format!("{} (the file behind {})", backing.display(), path.display());
    super::lock(&file, Path::new(&shown), mode)?;
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_has_no_backing_file() {
        let f = tempfile::tempfile().unwrap();
        assert!(lock_backing_file(&f, Path::new("x"), Mode::ReadWrite)
            .unwrap()
            .is_none());
    }
}
