//! The `.npy` header: magic, version, header length and the Python dict literal (`descr`,
//! `fortran_order`, `shape`), checked against what the reader supports; and the `f2` conversion.

use super::{check_dim, format_err, io_err, read_full, Header, Kind, VecFileError};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// `.npy` element types; the element size is `1 << index`.
const DTYPES: [&str; 4] = ["i1", "f2", "f4", "f8"];

/// Largest `.npy` header accepted (numpy itself refuses more than 10 000 bytes by default).
const MAX_NPY_HEADER: u64 = 64 * 1024;

/// Reads and checks the preamble and header dict; the data starts right after the header.
pub(super) fn read_header(f: &mut File, path: &Path, total: u64) -> Result<Header, VecFileError> {
    macro_rules! bail {
        ($($arg:tt)*) => { return Err(format_err(path, format!($($arg)*))) };
    }
    let mut pre = [0u8; 12];
    let got = read_full(f, &mut pre).map_err(io_err(path))?;
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
    let (dim, len_hint, pos) = (Some(check_dim(path, d)?), Some(n), off + hlen);
    let big_endian = order == ">";
    let kind = Kind::Npy { code, big_endian };
    Ok(Header {
        kind,
        dim,
        len_hint,
        pos,
    })
}

pub(super) fn f16_to_f32(h: u16) -> f32 {
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

#[cfg(test)]
mod tests {
    use crate::vecfile::tests::{error, f4, read, vectors};
    use crate::vecfile::{At, Location, VecFileError, VecRecord};

    fn npy(version: u8, descr: &str, fortran: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}").into_bytes();
        let pre = if version == 1 { 10 } else { 12 };
        h.resize((pre + h.len() + 1).div_ceil(64) * 64 - pre - 1, b' ');
        h.push(b'\n');
        let mut v = [b"\x93NUMPY".as_slice(), &[version, 0]].concat();
        v.extend_from_slice(&(h.len() as u32).to_le_bytes()[..pre - 8]);
        [v, h, data.to_vec()].concat()
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
}
