//! CSV rows: `path,v1,...,vN` or `path,"[v1, ..., vN]"`, one per line; blank lines and `#` comments
//! are skipped.

use super::{at, format_err, io_err, At, Kind, Location, VecFileError, VecReader, VecRecord};
use std::borrow::Cow;
use std::io::BufRead;

impl VecReader {
    pub(super) fn next_csv(&mut self) -> Result<Option<VecRecord>, VecFileError> {
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
    use crate::vecfile::tests::{error, read};
    use crate::vecfile::VecRecord;

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
