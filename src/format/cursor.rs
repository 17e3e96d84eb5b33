//! A bounds-checked cursor over untrusted bytes (format-spec/13-checksums.md
//! and every variable-length structure). Every read returns `Result` and
//! reports the absolute image offset of the bytes it could not read.

use crate::error::{Expected, FsError, Result};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

/// Reads typed values from a byte slice, never indexing unchecked.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Image offset of `bytes[0]`, so errors point into the image.
    base: u64,
    structure: &'static str,
}

impl<'a> Cursor<'a> {
    /// A cursor over `bytes`, which start at image offset `base`.
    pub fn new(bytes: &'a [u8], base: u64, structure: &'static str) -> Self {
        Cursor {
            bytes,
            pos: 0,
            base,
            structure,
        }
    }

    /// Current position relative to the start of the slice.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Image offset of the current position.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Move to `pos` (relative), which must lie within the slice.
    pub fn seek(&mut self, pos: usize, field: &'static str) -> Result<()> {
        if pos > self.bytes.len() {
            return Err(self.overrun(field, pos as u64));
        }
        self.pos = pos;
        Ok(())
    }

    fn overrun(&self, field: &'static str, wanted_end: u64) -> FsError {
        FsError::corrupt(
            self.structure,
            self.offset(),
            field,
            Expected::AtMost(self.bytes.len() as u64),
            wanted_end,
        )
    }

    /// Take the next `len` bytes.
    pub fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| self.overrun(field, (self.pos as u64).saturating_add(len as u64)))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// Read a zero-copy view of `T` at the current position.
    pub fn view<T>(&mut self, field: &'static str) -> Result<&'a T>
    where
        T: FromBytes + KnownLayout + Immutable + Unaligned,
    {
        let bytes = self.take(core::mem::size_of::<T>(), field)?;
        T::ref_from_bytes(bytes).map_err(|_| self.overrun(field, bytes.len() as u64))
    }

    /// Read a single byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8> {
        Ok(self.take(1, field)?[0])
    }
}

/// Read a zero-copy view of `T` at `off` within `bytes` (image offset `base`).
pub fn view_at<'a, T>(bytes: &'a [u8], off: usize, base: u64, structure: &'static str) -> Result<&'a T>
where
    T: FromBytes + KnownLayout + Immutable + Unaligned,
{
    let mut c = Cursor::new(bytes, base, structure);
    c.seek(off, "offset")?;
    c.view::<T>("struct")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Le32;

    #[test]
    fn reads_within_bounds_and_reports_overrun_with_offset() {
        let bytes = [1u8, 0, 0, 0, 2];
        let mut c = Cursor::new(&bytes, 100, "test");
        assert_eq!(c.view::<Le32>("a").unwrap().get(), 1);
        let err = c.view::<Le32>("b").unwrap_err();
        let corr = err.corruption().unwrap();
        assert_eq!(corr.offset, 104);
        assert_eq!(corr.field, "b");
        assert_eq!(c.u8("c").unwrap(), 2);
        assert!(c.u8("d").is_err());
    }

    #[test]
    fn take_never_overflows() {
        let bytes = [0u8; 4];
        let mut c = Cursor::new(&bytes, 0, "test");
        c.seek(2, "x").unwrap();
        assert!(c.take(usize::MAX, "huge").is_err());
        assert!(c.seek(5, "past").is_err());
    }
}
