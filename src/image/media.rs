//! The [`Media`] trait, the one I/O seam of a mounted image
//! (format-spec/14-media.md), and its implementation for the mapped file.

use super::write::{self, out_of_image};
use super::{Map, MappedFile};
use crate::error::{FsError, Result};
use std::fs::File;

/// Where every write and flush of a mounted image goes: the one I/O seam
/// (format-spec/14-media.md). The mapped file implements it; the crash
/// harness wraps it to record flush points.
pub trait Media {
    fn bytes(&self) -> &[u8];
    fn bytes_mut(&mut self) -> Result<&mut [u8]>;
    /// Make `offset .. offset + len` (or everything, for `None`) durable.
    fn flush(&mut self, range: Option<(u64, u64)>) -> Result<()>;
    /// EIO when the bytes can no longer be trusted (the mapped file
    /// shrank); checked after every operation on them.
    fn check_intact(&self) -> Result<()> {
        Ok(())
    }
    /// From now on access is random (after the journal replay).
    fn advise_random(&self) {}
    /// A descriptor of the file behind a read-write map, to write file
    /// data with pwrite(2) instead of copying it into the map (the page
    /// cache is shared, so both see the same bytes). `None`: copy.
    fn data_file(&self) -> Option<File> {
        None
    }
    /// Write `parts`, one after another, from byte `offset` of the image
    /// (inside it). The default copies into the map; a mapped file writes
    /// with pwritev(2): no page fault per page after a flush cleaned it,
    /// and a full host disk is an error, not a SIGBUS.
    fn write_at(&mut self, offset: u64, parts: &[&[u8]]) -> Result<()> {
        let bytes = self.bytes_mut()?;
        let mut at = usize::try_from(offset).map_err(|_| out_of_image(offset))?;
        for p in parts {
            let end = at.checked_add(p.len()).ok_or_else(|| out_of_image(offset))?;
            bytes
                .get_mut(at..end)
                .ok_or_else(|| out_of_image(offset))?
                .copy_from_slice(p);
            at = end;
        }
        Ok(())
    }
}

impl Media for MappedFile {
    fn bytes(&self) -> &[u8] {
        MappedFile::bytes(self)
    }

    fn bytes_mut(&mut self) -> Result<&mut [u8]> {
        MappedFile::bytes_mut(self)
    }

    fn check_intact(&self) -> Result<()> {
        MappedFile::check_intact(self)
    }

    fn advise_random(&self) {
        MappedFile::advise_random(self)
    }

    fn data_file(&self) -> Option<File> {
        match self.map {
            Map::Rw(_) => self.file.try_clone().ok(),
            Map::Ro(_) => None,
        }
    }

    fn write_at(&mut self, offset: u64, parts: &[&[u8]]) -> Result<()> {
        let Map::Rw(m) = &self.map else {
            return Err(FsError::ReadOnly);
        };
        write::pwrite_parts(&self.file, &self.path, m.len() as u64, offset, parts)
    }

    fn flush(&mut self, range: Option<(u64, u64)>) -> Result<()> {
        let err = |e| FsError::io(format!("flush of {} failed", self.path.display()), e);
        match (&self.map, range) {
            (Map::Ro(_), _) => Ok(()),
            (Map::Rw(m), None) => m.flush().map_err(err),
            (Map::Rw(m), Some((off, len))) => m.flush_range(off as usize, len as usize).map_err(err),
        }
    }
}
