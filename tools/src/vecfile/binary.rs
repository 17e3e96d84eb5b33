//! Fixed-width records: the `.fvecs` header, and the record decoder shared by `.npy` (any dtype, either
//! byte order) and `.fvecs` (a little-endian dimension word, then f32s).

use super::npy::f16_to_f32;
use super::{at, check_dim, io_err, read_full, Header, Kind, Location, VecFileError, VecReader, VecRecord};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;

/// Learns the dimension from the first record and the record count from the file size, then rewinds.
pub(super) fn fvecs_header(f: &mut File, path: &Path, total: u64) -> Result<Header, VecFileError> {
    // A file shorter than one dimension word is reported as truncated by the first `next()`.
    let (mut dim, mut len_hint) = (None, None);
    let mut hdr = [0u8; 4];
    if read_full(f, &mut hdr).map_err(io_err(path))? == 4 {
        let d = check_dim(path, u64::from(u32::from_le_bytes(hdr)))?;
        let rec = 4 + 4 * u64::from(d);
        (dim, len_hint) = (Some(d), total.is_multiple_of(rec).then_some(total / rec));
    }
    len_hint = len_hint.or((total == 0).then_some(0));
    f.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    let kind = Kind::Fvecs;
    Ok(Header {
        kind,
        dim,
        len_hint,
        pos: 0,
    })
}

impl VecReader {
    pub(super) fn next_binary(&mut self) -> Result<Option<VecRecord>, VecFileError> {
        let (file, index, dim) = (&self.file, self.index, self.dim.unwrap_or(0));
        let at = || at(file, index, Location::Byte(self.pos));
        let (code, big_endian, hlen) = match self.kind {
            Kind::Npy { .. } if self.len_hint.is_some_and(|n| index >= n) => return Ok(None),
            Kind::Npy { code, big_endian } => (code, big_endian, 0),
            Kind::Fvecs | Kind::Csv { .. } => (2, false, 4),
        };
        let (mut hdr, mut got) = ([0u8; 4], 0);
        if hlen == 4 {
            got = read_full(&mut self.input, &mut hdr).map_err(io_err(file))?;
            let actual = u32::from_le_bytes(hdr);
            if got == 0 {
                return Ok(None);
            } else if got == 4 && actual != dim {
                let (at, expected, actual) = (at(), dim.into(), actual.into());
                return Err(VecFileError::DimMismatch { at, expected, actual });
            }
        }
        let width = 1 << code;
        self.buf.resize(dim as usize * width, 0);
        if got == hlen {
            got += read_full(&mut self.input, &mut self.buf).map_err(io_err(file))?;
        }
        let (expected, actual) = ((hlen + self.buf.len()) as u64, got as u64);
        if actual < expected {
            let at = at();
            return Err(VecFileError::Truncated { at, expected, actual });
        }
        let mut vector = Vec::with_capacity(dim as usize);
        for (element, c) in (0u64..).zip(self.buf.chunks_exact(width)) {
            let mut a = [0u8; 8];
            a[..width].copy_from_slice(c);
            if big_endian {
                a[..width].reverse();
            }
            let x = u64::from_le_bytes(a);
            let value = match code {
                0 => f64::from(x as u8 as i8),
                1 => f64::from(f16_to_f32(x as u16)),
                2 => f64::from(f32::from_bits(x as u32)),
                _ => f64::from_bits(x),
            };
            if !(value as f32).is_finite() {
                let at = at();
                return Err(VecFileError::NonFinite { at, element, value });
            }
            vector.push(value as f32);
        }
        self.pos += expected;
        let path = None;
        Ok(Some(VecRecord { index, path, vector }))
    }
}

#[cfg(test)]
mod tests {
    use crate::vecfile::tests::{error, f4, read, vectors};
    use crate::vecfile::{At, VecFileError};

    fn fvecs(recs: &[&[f32]]) -> Vec<u8> {
        recs.iter()
            .flat_map(|r| [(r.len() as u32).to_le_bytes().to_vec(), f4(r)].concat())
            .collect()
    }

    #[test]
    fn fvecs_round_trip_and_errors() {
        let (r, _) = read("a.fvecs", &fvecs(&[&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]]));
        assert_eq!(r.as_ref().map(|r| (r.dim(), r.len_hint())), Some((Some(3), Some(2))));
        assert_eq!(
            vectors("a.fvecs", &fvecs(&[&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]])),
            [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
        );
        let (r, recs) = read("e.fvecs", &[]);
        assert_eq!(r.map(|r| (r.dim(), r.len_hint(), recs.len())), Some((None, Some(0), 0)));

        let mut bytes = fvecs(&[&[1.0, 2.0], &[3.0, 4.0]]);
        bytes.truncate(bytes.len() - 3);
        assert_eq!(read("t.fvecs", &bytes).0.unwrap().len_hint(), None);
        let e = error("t.fvecs", &bytes);
        assert_eq!(
            e,
            "t.fvecs: record 1 at byte offset 12 is truncated: expected 12 bytes, found 9"
        );
        let e = error("t.fvecs", &[2, 0]);
        assert_eq!(
            e,
            "t.fvecs: record 0 at byte offset 0 is truncated: expected 4 bytes, found 2"
        );
        let (_, recs) = read("m.fvecs", &fvecs(&[&[1.0, 2.0], &[3.0, 4.0], &[5.0, 6.0, 7.0]]));
        assert_eq!(recs.len(), 3);
        let e = recs[2].as_ref().unwrap_err();
        assert!(matches!(
            e,
            VecFileError::DimMismatch {
                at: At { index: 2, .. },
                expected: 2,
                actual: 3
            }
        ));
        assert!(e
            .to_string()
            .ends_with("m.fvecs: record 2 at byte offset 24 has dimension 3, expected 2"));
        let e = error("n.fvecs", &fvecs(&[&[1.0, 2.0], &[1.0, f32::NAN]]));
        assert_eq!(
            e,
            "n.fvecs: record 1 at byte offset 12, element 1: value NaN is not a finite f32"
        );
        assert!(error("z.fvecs", &fvecs(&[&[]])).ends_with("dimension 0 outside 1..=65536"));
    }
}
