//! Streaming readers for the bulk-import input formats (`.npy`, `.fvecs`, `.csv`).
//!
//! Memory is bounded by one record plus fixed buffers, whatever the file size. The `.npy` header is
//! parsed here rather than with `npyz`: that crate streams data fine, but allocates whatever header
//! length a file declares and panics (multiply overflow) on absurd shapes.
//!
//! [`VecReader`] and the shared types live here; `npy` parses the `.npy` header, `binary` decodes
//! the fixed-width records of `.npy` and `.fvecs`, and `csv` splits and parses CSV rows.

mod binary;
mod csv;
mod npy;

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use vexfs::format::vector::MAX_DIM;

/// Input formats for bulk import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VecFormat {
    Npy,
    Fvecs,
    Csv,
}

impl VecFormat {
    /// The format named by the extension (`.npy`, `.fvecs`, `.csv`; case-insensitive).
    pub fn from_path(p: &Path) -> Option<VecFormat> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "npy" => Some(VecFormat::Npy),
            "fvecs" => Some(VecFormat::Fvecs),
            "csv" => Some(VecFormat::Csv),
            _ => None,
        }
    }
}

/// One record read from an input file.
#[derive(Debug, Clone, PartialEq)]
pub struct VecRecord {
    /// 0-based record number.
    pub index: u64,
    /// The `path` column (CSV only).
    pub path: Option<String>,
    pub vector: Vec<f32>,
}

/// Where a record starts: a byte offset (binary formats) or a 1-based line (CSV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Byte(u64),
    Line(u64),
}

/// The record a data error is about; displays as `FILE: record N at byte offset B` (or `at line L`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub file: PathBuf,
    pub index: u64,
    pub loc: Location,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Byte(b) => write!(f, "byte offset {b}"),
            Location::Line(l) => write!(f, "line {l}"),
        }
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: record {} at {}", self.file.display(), self.index, self.loc)
    }
}

fn at(file: &Path, index: u64, loc: Location) -> At {
    let file = file.to_path_buf();
    At { file, index, loc }
}

#[derive(Debug, thiserror::Error)]
pub enum VecFileError {
    #[error("{}: {source}", file.display())]
    Io { file: PathBuf, source: io::Error },
    /// Bad header, unsupported array layout or dtype, dimension out of range, malformed CSV line.
    #[error("{}: {reason}", file.display())]
    Format { file: PathBuf, reason: String },
    #[error("{at} is truncated: expected {expected} bytes, found {actual}")]
    Truncated { at: At, expected: u64, actual: u64 },
    #[error("{at} has dimension {actual}, expected {expected}")]
    DimMismatch { at: At, expected: u64, actual: u64 },
    /// `column` is 1-based and counts the path column.
    #[error("{at}, column {column}: cannot parse {text:?} as a number")]
    BadNumber { at: At, column: u64, text: String },
    #[error("{at}, element {element}: value {value:?} is not a finite f32")]
    NonFinite { at: At, element: u64, value: f64 },
}

fn format_err(file: &Path, reason: impl fmt::Display) -> VecFileError {
    let (file, reason) = (file.to_path_buf(), reason.to_string());
    VecFileError::Format { file, reason }
}

fn io_err(file: &Path) -> impl Fn(io::Error) -> VecFileError + '_ {
    |source| {
        let file = file.to_path_buf();
        VecFileError::Io { file, source }
    }
}

enum Kind {
    Npy { code: usize, big_endian: bool },
    Fvecs,
    Csv { line: u64 },
}

/// A streaming reader: memory bounded by one record (plus a small fixed buffer), never the file size.
/// Iteration ends after the first error.
pub struct VecReader {
    file: PathBuf,
    input: BufReader<File>,
    kind: Kind,
    dim: Option<u32>,
    len_hint: Option<u64>,
    index: u64,
    pos: u64,
    total: u64,
    buf: Vec<u8>,
    /// The first CSV record, read by `open` to learn the dimension.
    pending: Option<VecRecord>,
    done: bool,
}

/// What a format's header tells [`VecReader::open`]: how to read the records, and where they start.
struct Header {
    kind: Kind,
    dim: Option<u32>,
    len_hint: Option<u64>,
    pos: u64,
}

impl VecReader {
    pub fn open(path: &Path, format: VecFormat) -> Result<VecReader, VecFileError> {
        let mut f = File::open(path).map_err(io_err(path))?;
        let total = f.metadata().map_err(io_err(path))?.len();
        let Header {
            kind,
            dim,
            len_hint,
            pos,
        } = match format {
            VecFormat::Npy => npy::read_header(&mut f, path, total)?,
            VecFormat::Fvecs => binary::fvecs_header(&mut f, path, total)?,
            VecFormat::Csv => Header {
                kind: Kind::Csv { line: 0 },
                dim: None,
                len_hint: None,
                pos: 0,
            },
        };
        let mut r = VecReader {
            file: path.to_path_buf(),
            input: BufReader::new(f),
            kind,
            dim,
            len_hint,
            index: 0,
            pos,
            total,
            buf: Vec::new(),
            pending: None,
            done: false,
        };
        if let Kind::Csv { .. } = r.kind {
            r.pending = r.next_csv()?;
            if let Some(rec) = &r.pending {
                r.dim = Some(check_dim(path, rec.vector.len() as u64)?);
            }
        }
        Ok(r)
    }

    /// Dimension if known from the header (npy: shape[1]; fvecs: first record's dim; csv: first row's length).
    pub fn dim(&self) -> Option<u32> {
        self.dim
    }

    /// Number of records if known from the header (npy: shape[0]; fvecs: when the file size is exact).
    pub fn len_hint(&self) -> Option<u64> {
        self.len_hint
    }

    /// Bytes consumed so far and total file size (for a progress bar).
    pub fn progress(&self) -> (u64, u64) {
        (self.pos.min(self.total), self.total)
    }
}

impl Iterator for VecReader {
    type Item = Result<VecRecord, VecFileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = match self.kind {
            Kind::Csv { .. } => self.pending.take().map_or_else(|| self.next_csv(), |rec| Ok(Some(rec))),
            _ => self.next_binary(),
        };
        self.done = !matches!(r, Ok(Some(_)));
        self.index += u64::from(!self.done);
        r.transpose()
    }
}

impl std::iter::FusedIterator for VecReader {}

fn check_dim(file: &Path, dim: u64) -> Result<u32, VecFileError> {
    match u32::try_from(dim) {
        Ok(d) if (1..=MAX_DIM).contains(&d) => Ok(d),
        _ => Err(format_err(file, format!("dimension {dim} outside 1..={MAX_DIM}"))),
    }
}

/// Reads until `buf` is full or end of file; returns the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Recs = Vec<Result<VecRecord, VecFileError>>;

    /// Writes `bytes` to a fresh file and reads it all; an `open` error becomes the only item.
    pub(super) fn read(name: &str, bytes: &[u8]) -> (Option<VecReader>, Recs) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let fmt = VecFormat::from_path(&p).unwrap();
        match VecReader::open(&p, fmt) {
            Ok(mut r) => {
                let recs = r.by_ref().collect();
                (Some(VecReader::open(&p, fmt).unwrap()), recs)
            }
            Err(e) => (None, vec![Err(e)]),
        }
    }

    pub(super) fn vectors(name: &str, bytes: &[u8]) -> Vec<Vec<f32>> {
        read(name, bytes).1.into_iter().map(|r| r.unwrap().vector).collect()
    }

    /// The message of the last item, which must be an error, without the temporary directory.
    pub(super) fn error(name: &str, bytes: &[u8]) -> String {
        let msg = read(name, bytes).1.pop().unwrap().unwrap_err().to_string();
        msg[msg.find(name).unwrap()..].to_owned()
    }

    pub(super) fn f4(vals: &[f32]) -> Vec<u8> {
        vals.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn format_from_path() {
        assert_eq!(VecFormat::from_path(Path::new("a/b.NPY")), Some(VecFormat::Npy));
        assert_eq!(VecFormat::from_path(Path::new("b.fvecs")), Some(VecFormat::Fvecs));
        assert_eq!(VecFormat::from_path(Path::new("b.csv")), Some(VecFormat::Csv));
        assert_eq!(VecFormat::from_path(Path::new("b.txt")), None);
    }
}
