//! Streaming readers for the bulk-import input formats (`.npy`, `.fvecs`, `.csv`).
//!
//! Memory is bounded by one record plus fixed buffers, whatever the file size. The `.npy` header is
//! parsed here rather than with `npyz`: that crate streams data fine, but allocates whatever header
//! length a file declares and panics (multiply overflow) on absurd shapes.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
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

/// `.npy` element types; the element size is `1 << index`.
const DTYPES: [&str; 4] = ["i1", "f2", "f4", "f8"];

/// Largest `.npy` header accepted (numpy itself refuses more than 10 000 bytes by default).
const MAX_NPY_HEADER: u64 = 64 * 1024;

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

impl VecReader {
    pub fn open(path: &Path, format: VecFormat) -> Result<VecReader, VecFileError> {
        macro_rules! bail {
            ($($arg:tt)*) => { return Err(format_err(path, format!($($arg)*))) };
        }
        let mut f = File::open(path).map_err(io_err(path))?;
        let total = f.metadata().map_err(io_err(path))?.len();
        let (mut dim, mut len_hint, mut pos) = (None, None, 0);
        let kind = match format {
            VecFormat::Npy => {
                let mut pre = [0u8; 12];
                let got = read_full(&mut f, &mut pre).map_err(io_err(path))?;
                if got < 12 || &pre[..6] != b"\x93NUMPY" {
                    bail!("not a .npy file (bad magic or too short)");
                }
                let (hlen, off) = match pre[6] {
                    1 => (u64::from(u16::from_le_bytes([pre[8], pre[9]])), 10),
                    2 | 3 => (u64::from(u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]])), 12),
                    v => bail!("unsupported .npy format version {v}.{}", pre[7]),
                };
                if hlen > MAX_NPY_HEADER || off + hlen > total {
                    bail!("bad .npy header length {hlen} (file is {total} bytes)");
                }
                let mut text = vec![0u8; hlen as usize];
                f.seek(SeekFrom::Start(off)).map_err(io_err(path))?;
                f.read_exact(&mut text).map_err(io_err(path))?;
                let (descr, fortran, shape) = match parse_npy_header(&text) {
                    Ok(h) => h,
                    Err(e) => bail!("bad .npy header: {e}"),
                };
                if fortran {
                    bail!("fortran_order arrays are not supported; save in C order");
                }
                let (order, ty) = descr.split_at_checked(1).unwrap_or_default();
                let code = match (order, DTYPES.iter().position(|t| *t == ty)) {
                    ("<" | ">", Some(c)) | ("|", Some(c @ 0)) => c,
                    _ => bail!("unsupported dtype '{descr}' (use <f4, <f8, <f2 or i1)"),
                };
                let (n, d) = match shape[..] {
                    [d] => (1, d),
                    [n, d] => (n, d),
                    _ => bail!("expected a 1-D or 2-D array, not shape {shape:?}"),
                };
                (dim, len_hint, pos) = (Some(check_dim(path, d)?), Some(n), off + hlen);
                let big_endian = order == ">";
                Kind::Npy { code, big_endian }
            }
            VecFormat::Fvecs => {
                // A file shorter than one dimension word is reported as truncated by the first `next()`.
                let mut hdr = [0u8; 4];
                if read_full(&mut f, &mut hdr).map_err(io_err(path))? == 4 {
                    let d = check_dim(path, u64::from(u32::from_le_bytes(hdr)))?;
                    let rec = 4 + 4 * u64::from(d);
                    (dim, len_hint) = (Some(d), (total % rec == 0).then_some(total / rec));
                }
                len_hint = len_hint.or((total == 0).then_some(0));
                f.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
                Kind::Fvecs
            }
            VecFormat::Csv => Kind::Csv { line: 0 },
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

    fn next_binary(&mut self) -> Result<Option<VecRecord>, VecFileError> {
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

    fn next_csv(&mut self) -> Result<Option<VecRecord>, VecFileError> {
        let Kind::Csv { line } = &mut self.kind else {
            return Ok(None);
        };
        loop {
            self.buf.clear();
            let n = self
                .input
                .read_until(b'\n', &mut self.buf)
                .map_err(io_err(&self.file))?;
            if n == 0 {
                return Ok(None);
            }
            (self.pos, *line) = (self.pos + n as u64, *line + 1);
            let bad = |reason| format_err(&self.file, format!("line {line}: {reason}"));
            let text = std::str::from_utf8(&self.buf).map_err(|_| bad("not valid UTF-8"))?;
            let text = text.strip_prefix('\u{feff}').unwrap_or(text).trim();
            if !text.is_empty() && !text.starts_with('#') {
                let fields = split_csv(text).map_err(bad)?;
                return parse_csv_row(&at(&self.file, self.index, Location::Line(*line)), &fields, self.dim).map(Some);
            }
        }
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

fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let (exp, man) = (u32::from((h >> 10) & 0x1f), u32::from(h & 0x3ff));
    match exp {
        0 => sign * man as f32 / 16_777_216.0, // zero or subnormal: man * 2^-24
        0x1f if man == 0 => sign * f32::INFINITY,
        0x1f => f32::NAN,
        e => sign * f32::from_bits(((e + 112) << 23) | (man << 13)),
    }
}

/// Parses the Python dict literal of an `.npy` header into (descr, fortran_order, shape).
fn parse_npy_header(text: &[u8]) -> Result<(String, bool, Vec<u64>), String> {
    let mut p = Lit { s: text, i: 0 };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    if !p.eat(b'{') {
        return Err("expected a dict".into());
    }
    while !p.eat(b'}') {
        let key = p.string()?;
        if !p.eat(b':') {
            return Err(format!("expected ':' after '{key}'"));
        }
        match key.as_str() {
            "descr" => descr = Some(p.string()?),
            "fortran_order" => match p.word() {
                b"True" => fortran = Some(true),
                b"False" => fortran = Some(false),
                w => return Err(format!("fortran_order is {:?}, not a bool", String::from_utf8_lossy(w))),
            },
            "shape" => shape = Some(p.tuple()?),
            k => return Err(format!("unexpected key '{k}'")),
        }
        if p.eat(b'}') {
            break;
        } else if !p.eat(b',') {
            return Err(format!("expected ',' or '}}' at byte {}", p.i));
        }
    }
    if p.s[p.i..].iter().any(|c| !c.is_ascii_whitespace() && *c != 0) {
        return Err("trailing characters after the dict".into());
    }
    let missing = |k| format!("missing '{k}'");
    Ok((
        descr.ok_or(missing("descr"))?,
        fortran.ok_or(missing("fortran_order"))?,
        shape.ok_or(missing("shape"))?,
    ))
}

/// A cursor over a Python literal.
struct Lit<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lit<'_> {
    fn eat(&mut self, c: u8) -> bool {
        self.i += self.s[self.i..].iter().take_while(|c| c.is_ascii_whitespace()).count();
        let hit = self.s.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn word(&mut self) -> &[u8] {
        self.eat(b' ');
        let len = self.s[self.i..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        self.i += len;
        &self.s[self.i - len..self.i]
    }

    fn string(&mut self) -> Result<String, String> {
        let Some(q) = [b'\'', b'"'].into_iter().find(|q| self.eat(*q)) else {
            return Err("expected a string".into());
        };
        let len = self.s[self.i..]
            .iter()
            .position(|c| *c == q)
            .ok_or("unterminated string")?;
        self.i += len + 1;
        match std::str::from_utf8(&self.s[self.i - len - 1..self.i - 1]) {
            Ok(s) if !s.contains('\\') => Ok(s.to_owned()),
            _ => Err("unsupported string literal".into()),
        }
    }

    fn tuple(&mut self) -> Result<Vec<u64>, String> {
        let mut out = Vec::new();
        if !self.eat(b'(') {
            return Err("shape is not a tuple".into());
        }
        while !self.eat(b')') {
            let w = self.word();
            let n = std::str::from_utf8(w.strip_suffix(b"L").unwrap_or(w))
                .ok()
                .and_then(|d| d.parse().ok());
            out.push(n.ok_or_else(|| format!("bad shape entry {:?}", String::from_utf8_lossy(w)))?);
            if self.eat(b')') {
                break;
            } else if !self.eat(b',') {
                return Err("expected ',' or ')' in shape".into());
            }
        }
        Ok(out)
    }
}

/// Splits one CSV line into trimmed fields; a field may be double-quoted, with `""` for a literal quote.
fn split_csv(mut rest: &str) -> Result<Vec<Cow<'_, str>>, &'static str> {
    let mut out = Vec::new();
    loop {
        let t = rest.trim_start();
        let (field, after) = if let Some(mut q) = t.strip_prefix('"') {
            let mut field = String::new();
            loop {
                let end = q.find('"').ok_or("unterminated quoted field")?;
                field.push_str(&q[..end]);
                q = &q[end + 1..];
                let Some(r) = q.strip_prefix('"') else { break };
                field.push('"');
                q = r;
            }
            let q = q.trim_start();
            if !q.is_empty() && !q.starts_with(',') {
                return Err("text after a closing quote");
            }
            (Cow::Owned(field), q.strip_prefix(','))
        } else {
            let (f, r) = t.split_once(',').map_or((t, None), |(f, r)| (f, Some(r)));
            (Cow::Borrowed(f.trim_end()), r)
        };
        out.push(field);
        let Some(r) = after else { return Ok(out) };
        rest = r;
    }
}

/// Parses `path,v1,...,vN` or `path,"[v1, ..., vN]"` (brackets may also be unquoted, values space-separated).
fn parse_csv_row(at: &At, row: &[Cow<str>], dim: Option<u32>) -> Result<VecRecord, VecFileError> {
    let bad = |reason| format_err(&at.file, format!("{}: {reason}", at.loc));
    if row.len() < 2 {
        return Err(bad("expected `path,v1,...,vN` or `path,\"[v1, ..., vN]\"`"));
    }
    let (bracket, mut vector) = (row[1].starts_with('['), Vec::new());
    for (column, f) in (1u64..).zip(row).skip(1) {
        let mut f = f.trim();
        if bracket {
            f = f.strip_prefix('[').filter(|_| column == 2).unwrap_or(f);
            if column as usize == row.len() {
                f = f
                    .strip_suffix(']')
                    .ok_or_else(|| bad("'[' vector has no closing ']'"))?;
            }
        }
        let sep = |c: char| bracket && (c == ',' || c.is_whitespace());
        for text in f.split(sep).filter(|t| !bracket || !t.is_empty()) {
            let Ok(v) = text.parse::<f32>() else {
                let (at, text) = (at.clone(), text.to_owned());
                return Err(VecFileError::BadNumber { at, column, text });
            };
            if !v.is_finite() {
                let (at, element, value) = (at.clone(), vector.len() as u64, text.parse().unwrap_or(f64::from(v)));
                return Err(VecFileError::NonFinite { at, element, value });
            }
            vector.push(v);
        }
    }
    match dim {
        Some(d) if d as usize != vector.len() => {
            let (at, expected, actual) = (at.clone(), d.into(), vector.len() as u64);
            Err(VecFileError::DimMismatch { at, expected, actual })
        }
        _ => {
            let (index, path) = (at.index, Some(row[0].to_string()));
            Ok(VecRecord { index, path, vector })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Recs = Vec<Result<VecRecord, VecFileError>>;

    /// Writes `bytes` to a fresh file and reads it all; an `open` error becomes the only item.
    fn read(name: &str, bytes: &[u8]) -> (Option<VecReader>, Recs) {
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

    fn vectors(name: &str, bytes: &[u8]) -> Vec<Vec<f32>> {
        read(name, bytes).1.into_iter().map(|r| r.unwrap().vector).collect()
    }

    /// The message of the last item, which must be an error, without the temporary directory.
    fn error(name: &str, bytes: &[u8]) -> String {
        let msg = read(name, bytes).1.pop().unwrap().unwrap_err().to_string();
        msg[msg.find(name).unwrap()..].to_owned()
    }

    fn npy(version: u8, descr: &str, fortran: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}").into_bytes();
        let pre = if version == 1 { 10 } else { 12 };
        h.resize((pre + h.len() + 1).div_ceil(64) * 64 - pre - 1, b' ');
        h.push(b'\n');
        let mut v = [b"\x93NUMPY".as_slice(), &[version, 0]].concat();
        v.extend_from_slice(&(h.len() as u32).to_le_bytes()[..pre - 8]);
        [v, h, data.to_vec()].concat()
    }

    fn f4(vals: &[f32]) -> Vec<u8> {
        vals.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn fvecs(recs: &[&[f32]]) -> Vec<u8> {
        recs.iter()
            .flat_map(|r| [(r.len() as u32).to_le_bytes().to_vec(), f4(r)].concat())
            .collect()
    }

    #[test]
    fn format_from_path() {
        assert_eq!(VecFormat::from_path(Path::new("a/b.NPY")), Some(VecFormat::Npy));
        assert_eq!(VecFormat::from_path(Path::new("b.fvecs")), Some(VecFormat::Fvecs));
        assert_eq!(VecFormat::from_path(Path::new("b.csv")), Some(VecFormat::Csv));
        assert_eq!(VecFormat::from_path(Path::new("b.txt")), None);
    }

    #[test]
    fn npy_v1_v2_v3_round_trip() {
        let vals: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        for version in [1, 2, 3] {
            let bytes = npy(version, "<f4", "False", "(3, 4)", &f4(&vals));
            let (r, recs) = read("a.npy", &bytes);
            let r = r.unwrap();
            assert_eq!(
                (r.dim(), r.len_hint(), r.progress()),
                (Some(4), Some(3), (128, bytes.len() as u64))
            );
            let recs: Vec<VecRecord> = recs.into_iter().map(Result::unwrap).collect();
            assert_eq!(recs.len(), 3);
            assert_eq!(
                recs[2],
                VecRecord {
                    index: 2,
                    path: None,
                    vector: vals[8..].to_vec()
                }
            );
        }
        assert_eq!(
            vectors("b.npy", &npy(1, "<f4", "False", "(2,)", &f4(&[1.0, 2.0]))),
            [[1.0, 2.0]]
        );
        let (r, recs) = read("c.npy", &npy(1, "<f4", "False", "(0, 8)", &[]));
        assert_eq!((r.unwrap().len_hint(), recs.len()), (Some(0), 0));
        let be: Vec<u8> = [1.5f32, -3.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(vectors("d.npy", &npy(1, ">f4", "False", "(1, 2)", &be)), [[1.5, -3.0]]);
        // Header variations numpy has written: double quotes, no trailing comma, Python 2 longs.
        let mut bytes = npy(1, "<f4", "False", "(1, 2)", &f4(&[1.0, 2.0]));
        let text = b"{\"descr\":\"<f4\",\"shape\":(1L,2L),\"fortran_order\":False}";
        bytes[10..10 + text.len()].copy_from_slice(text);
        let end = bytes.len() - 9;
        bytes[10 + text.len()..end].fill(b' ');
        assert_eq!(vectors("e.npy", &bytes), [[1.0, 2.0]]);
    }

    #[test]
    fn npy_conversions() {
        let f8: Vec<u8> = [1.5f64, -2.25].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            vectors("f8.npy", &npy(1, "<f8", "False", "(1, 2)", &f8)),
            [[1.5, -2.25]]
        );
        let f2: Vec<u8> = [0x3c00u16, 0xc000, 0x3800, 0x0001, 0x7bff]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let got = vectors("f2.npy", &npy(2, "<f2", "False", "(1, 5)", &f2));
        assert_eq!(got, [[1.0, -2.0, 0.5, 2f32.powi(-24), 65504.0]]);
        for descr in ["|i1", "<i1"] {
            let got = vectors("i1.npy", &npy(1, descr, "False", "(2, 2)", &[0x80, 0x7f, 0xff, 0]));
            assert_eq!(got, [[-128.0, 127.0], [-1.0, 0.0]]);
        }
        let big = npy(
            1,
            "<f8",
            "False",
            "(1, 2)",
            &[0f64.to_le_bytes(), 1e300f64.to_le_bytes()].concat(),
        );
        let e = error("big.npy", &big);
        assert_eq!(
            e,
            "big.npy: record 0 at byte offset 128, element 1: value 1e300 is not a finite f32"
        );
        let inf = npy(1, "<f2", "False", "(1, 1)", &0x7c00u16.to_le_bytes());
        assert!(error("inf.npy", &inf).ends_with("element 0: value inf is not a finite f32"));
    }

    #[test]
    fn npy_rejections() {
        let e = error("a.npy", &npy(1, "<f4", "True", "(2, 2)", &f4(&[0.0; 4])));
        assert_eq!(e, "a.npy: fortran_order arrays are not supported; save in C order");
        let e = error("a.npy", &npy(1, "<i8", "False", "(2, 2)", &[0; 32]));
        assert!(e.contains("unsupported dtype '<i8'"), "{e}");
        assert!(error("a.npy", &npy(1, "<f4", "False", "(2, 2, 2)", &[])).contains("1-D or 2-D"));
        let e = error("a.npy", &npy(2, "<f4", "False", "(99999999999999999999, 4)", &[]));
        assert!(e.contains("bad shape entry"), "{e}");
        let e = error("a.npy", &npy(2, "<f4", "False", "(4294967296, 4294967296)", &[]));
        assert!(e.contains("dimension 4294967296 outside 1..=65536"), "{e}");
        let e = error("a.npy", &npy(1, "<f4", "False", "(2, 0)", &[]));
        assert!(e.contains("dimension 0 outside"), "{e}");
        assert!(error("a.npy", b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}").contains("bad .npy header length 4294967295"));
        assert_eq!(
            error("a.npy", b"PK\x03\x04 not npy"),
            "a.npy: not a .npy file (bad magic or too short)"
        );
        let mut bytes = npy(1, "<f4", "False", "(1, 1)", &f4(&[1.0]));
        bytes[10] = b'[';
        assert!(error("a.npy", &bytes).contains("bad .npy header: expected a dict"));
    }

    #[test]
    fn npy_truncated() {
        let (_, recs) = read("t.npy", &npy(1, "<f4", "False", "(3, 4)", &f4(&[1.0; 10])));
        assert_eq!(recs.len(), 3);
        assert!(recs[1].is_ok());
        let e = recs[2].as_ref().unwrap_err();
        assert!(matches!(
            e,
            VecFileError::Truncated {
                at: At {
                    index: 2,
                    loc: Location::Byte(160),
                    ..
                },
                expected: 16,
                actual: 8
            }
        ));
        let e = error("t.npy", &npy(1, "<f4", "False", "(3, 4)", &f4(&[1.0; 10])));
        assert_eq!(
            e,
            "t.npy: record 2 at byte offset 160 is truncated: expected 16 bytes, found 8"
        );
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

    #[test]
    fn csv_rows() {
        let text =
            "\u{feff}# comment\n/a,1,2,3\r\n\n\"/b,c\"\"q\"\" \", \" 4.5\" ,5,6\n   \n/d,\"[7, 8.0, -9e0]\"\n/e,[1 2 3]";
        let (r, recs) = read("a.csv", text.as_bytes());
        let r = r.unwrap();
        assert_eq!((r.dim(), r.len_hint()), (Some(3), None));
        let recs: Vec<VecRecord> = recs.into_iter().map(Result::unwrap).collect();
        let paths: Vec<_> = recs.iter().map(|x| x.path.as_deref().unwrap()).collect();
        assert_eq!(paths, ["/a", "/b,c\"q\" ", "/d", "/e"]);
        assert_eq!(recs[1].vector, [4.5, 5.0, 6.0]);
        assert_eq!(
            recs[2],
            VecRecord {
                index: 2,
                path: Some("/d".into()),
                vector: vec![7.0, 8.0, -9.0]
            }
        );
        assert_eq!(recs[3].vector, [1.0, 2.0, 3.0]);
        let mut r = r;
        assert_eq!(r.by_ref().count(), 4);
        assert_eq!(r.progress(), (text.len() as u64, text.len() as u64));
        let (r, recs) = read("e.csv", b"# only a comment\n");
        assert_eq!((r.unwrap().dim(), recs.len()), (None, 0));
    }

    #[test]
    fn csv_errors() {
        let e = error("e.csv", b"/a,1,2\n#c\n/b,1,x2\n");
        assert_eq!(
            e,
            "e.csv: record 1 at line 3, column 3: cannot parse \"x2\" as a number"
        );
        let e = error("e.csv", b"/a,1,2\n/b,1,2,3\n");
        assert_eq!(e, "e.csv: record 1 at line 2 has dimension 3, expected 2");
        let e = error("e.csv", b"/a,1,2\n/b,NaN,2\n");
        assert_eq!(e, "e.csv: record 1 at line 2, element 0: value NaN is not a finite f32");
        assert!(error("e.csv", b"/a,\"[1, inf]\"\n").ends_with("line 1, element 1: value inf is not a finite f32"));
        assert_eq!(
            error("e.csv", b"/a,\"[1, 2\"\n"),
            "e.csv: line 1: '[' vector has no closing ']'"
        );
        assert!(error("e.csv", b"/only-a-path\n").starts_with("e.csv: line 1: expected `path,v1"));
        assert_eq!(
            error("e.csv", b"\"/a,1,2\n"),
            "e.csv: line 1: unterminated quoted field"
        );
        assert_eq!(error("e.csv", b"/a,[]\n"), "e.csv: dimension 0 outside 1..=65536");
    }
}
