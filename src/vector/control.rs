//! The search protocol of the control file `/.vexfs/search` (docs/
//! search-protocol in docs/vectors.md): parsing a request, running it,
//! and formatting the reply. No FUSE here; the adapter only moves bytes.
//!
//! JSON form: one object, e.g.
//! `{"collection":"docs","k":5,"ef":64,"subtree":"/papers","vector":[0.1,0.2]}`
//! (`ef`, `subtree`, `paths` and `max_visited` optional). Reply: one JSON
//! line per hit, `{"path":..,"ino":..,"slot":..,"distance":..}`, nearest
//! first, then `{"complete":false,..}` only if the budget ran out.
//!
//! Binary form (little-endian): `"VXQB"`, u32 version (1), u32 k, u32 ef
//! (0 = default), u32 dim, u16 collection length, u16 subtree length, the
//! collection name, the subtree path, then `dim` f32. Reply: `"VXRB"`, u32
//! hit count, u32 flags (bit 0: complete), then per hit u32 ino, u32 slot,
//! f32 distance.

use super::query::{SearchRequest, SearchResponse, MAX_K};
use super::search::Budget;
use crate::error::{FsError, Result};
use crate::format::vector::MAX_DIM;
use crate::fs::core::Fs;
use serde::Deserialize;

/// Largest request accepted. Why: a request is buffered whole; 65,536
/// dimensions of JSON numbers fit comfortably.
pub const MAX_REQUEST: usize = 4 << 20;
const BINARY_MAGIC: &[u8; 4] = b"VXQB";
const BINARY_REPLY: &[u8; 4] = b"VXRB";
const BINARY_HEADER: usize = 24;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRequest {
    collection: String,
    k: usize,
    #[serde(default)]
    ef: Option<usize>,
    #[serde(default)]
    subtree: Option<String>,
    #[serde(default = "yes")]
    paths: bool,
    #[serde(default)]
    max_visited: Option<usize>,
    vector: Vec<f32>,
}

fn yes() -> bool {
    true
}

/// A parsed request and the reply form it wants.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub request: SearchRequest,
    pub binary: bool,
}

/// Whether `buf` holds a whole request yet (JSON: a closing newline or a
/// value that parses; binary: all the bytes its header announces).
pub fn is_complete(buf: &[u8]) -> bool {
    if buf.starts_with(BINARY_MAGIC) {
        return binary_len(buf).is_some_and(|n| buf.len() >= n);
    }
    buf.ends_with(b"\n") || serde_json::from_slice::<serde_json::Value>(buf).is_ok()
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Total length of a binary request, from its header.
fn binary_len(b: &[u8]) -> Option<usize> {
    let dim = u32_at(b, 16)? as usize;
    let names = usize::from(u16_at(b, 20)?) + usize::from(u16_at(b, 22)?);
    Some(BINARY_HEADER + names + dim.min(MAX_DIM as usize + 1) * 4)
}

/// Parse a complete request.
pub fn parse(buf: &[u8]) -> Result<Parsed> {
    if buf.len() > MAX_REQUEST {
        return Err(FsError::Invalid(format!("request longer than {MAX_REQUEST} bytes")));
    }
    if buf.starts_with(BINARY_MAGIC) {
        return parse_binary(buf);
    }
    let j: JsonRequest =
        serde_json::from_slice(buf).map_err(|e| FsError::Invalid(format!("malformed search request: {e}")))?;
    let mut request = SearchRequest::new(&j.collection, j.vector, j.k);
    request.ef = j.ef;
    request.subtree = j.subtree;
    request.with_paths = j.paths;
    if let Some(v) = j.max_visited {
        request.budget = Budget {
            max_visited: v.max(1),
            deadline: None,
        };
    }
    Ok(Parsed { request, binary: false })
}

fn parse_binary(b: &[u8]) -> Result<Parsed> {
    let bad = |why: &str| FsError::Invalid(format!("malformed binary search request: {why}"));
    let version = u32_at(b, 4).ok_or_else(|| bad("short header"))?;
    if version != 1 {
        return Err(bad("version is not 1"));
    }
    let (k, ef, dim) = (
        u32_at(b, 8).ok_or_else(|| bad("short header"))?,
        u32_at(b, 12).ok_or_else(|| bad("short header"))?,
        u32_at(b, 16).ok_or_else(|| bad("short header"))?,
    );
    if dim == 0 || dim > MAX_DIM {
        return Err(bad("dimension outside 1..=65536"));
    }
    let (cl, sl) = (
        usize::from(u16_at(b, 20).ok_or_else(|| bad("short header"))?),
        usize::from(u16_at(b, 22).ok_or_else(|| bad("short header"))?),
    );
    let want = BINARY_HEADER + cl + sl + dim as usize * 4;
    if b.len() != want {
        return Err(bad(&format!("{} bytes, the header announces {want}", b.len())));
    }
    let name = std::str::from_utf8(&b[BINARY_HEADER..BINARY_HEADER + cl]).map_err(|_| bad("collection not UTF-8"))?;
    let subtree =
        std::str::from_utf8(&b[BINARY_HEADER + cl..BINARY_HEADER + cl + sl]).map_err(|_| bad("subtree not UTF-8"))?;
    let vector = super::vattr::floats(&b[BINARY_HEADER + cl + sl..])?;
    let mut request = SearchRequest::new(name, vector, k as usize);
    request.ef = (ef != 0).then_some(ef as usize);
    request.subtree = (!subtree.is_empty()).then(|| subtree.to_string());
    request.with_paths = false;
    Ok(Parsed { request, binary: true })
}

/// Encode a binary request (the Rust client and tests use this).
pub fn encode_binary(r: &SearchRequest) -> Vec<u8> {
    let subtree = r.subtree.as_deref().unwrap_or("");
    let mut out = BINARY_MAGIC.to_vec();
    for v in [1u32, r.k as u32, r.ef.unwrap_or(0) as u32, r.vector.len() as u32] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(r.collection.len() as u16).to_le_bytes());
    out.extend_from_slice(&(subtree.len() as u16).to_le_bytes());
    out.extend_from_slice(r.collection.as_bytes());
    out.extend_from_slice(subtree.as_bytes());
    out.extend(super::vattr::bytes(&r.vector));
    out
}

/// Format a reply.
pub fn format(resp: &SearchResponse, binary: bool) -> Vec<u8> {
    if binary {
        let mut out = BINARY_REPLY.to_vec();
        out.extend_from_slice(&(resp.hits.len() as u32).to_le_bytes());
        out.extend_from_slice(&u32::from(resp.complete).to_le_bytes());
        for h in &resp.hits {
            out.extend_from_slice(&h.ino.to_le_bytes());
            out.extend_from_slice(&h.slot.to_le_bytes());
            out.extend_from_slice(&h.distance.to_le_bytes());
        }
        return out;
    }
    let mut out = Vec::new();
    for h in &resp.hits {
        let line = serde_json::json!({"path": h.path, "ino": h.ino, "slot": h.slot, "distance": h.distance});
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    if !resp.complete {
        let line = serde_json::json!({"complete": false, "visited": resp.visited,
            "note": "search budget exhausted: these are the best results found so far"});
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// One hit of a binary reply: (inode, slot, distance).
pub type BinaryHit = (u32, u32, f32);

/// Decode a binary reply into (hits as (ino, slot, distance), complete).
pub fn decode_binary_reply(b: &[u8]) -> Result<(Vec<BinaryHit>, bool)> {
    let bad = || FsError::Invalid("malformed binary search reply".into());
    if !b.starts_with(BINARY_REPLY) {
        return Err(bad());
    }
    let n = u32_at(b, 4).ok_or_else(bad)? as usize;
    let complete = u32_at(b, 8).ok_or_else(bad)? & 1 == 1;
    if n > MAX_K || b.len() != 12 + n * 12 {
        return Err(bad());
    }
    let hits = b[12..]
        .chunks_exact(12)
        .map(|c| {
            let f = |i: usize| u32::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
            (f(0), f(4), f32::from_bits(f(8)))
        })
        .collect();
    Ok((hits, complete))
}

/// The error reply: one JSON line, so a reader learns why the write failed.
pub fn error_line(e: &FsError) -> Vec<u8> {
    let mut line = serde_json::json!({"error": e.to_string(), "errno": e.errno()})
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}

/// Parse and run a complete request; the reply bytes.
pub fn answer(fs: &Fs, buf: &[u8]) -> Result<Vec<u8>> {
    let p = parse(buf)?;
    let resp = fs.search(&p.request)?;
    Ok(format(&resp, p.binary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_binary_requests_parse_to_the_same_search() {
        let j = br#"{"collection":"docs","k":3,"ef":20,"subtree":"/a","vector":[1.0,2.5]}"#;
        assert!(is_complete(j));
        let a = parse(j).unwrap();
        let bin = encode_binary(&a.request);
        assert!(is_complete(&bin) && !is_complete(&bin[..bin.len() - 1]));
        let b = parse(&bin).unwrap();
        assert!(b.binary && !a.binary);
        assert_eq!(
            (
                a.request.collection,
                a.request.k,
                a.request.ef,
                a.request.subtree,
                a.request.vector
            ),
            (
                b.request.collection,
                b.request.k,
                b.request.ef,
                b.request.subtree,
                b.request.vector
            )
        );
    }

    #[test]
    fn malformed_requests_are_einval() {
        for bad in [
            &br#"{"collection":"d","k":3}"#[..],
            br#"{"collection":"d","k":3,"vector":[1],"bogus":1}"#,
            br#"{"collection":"d","k":-1,"vector":[1]}"#,
            b"not json\n",
            b"VXQB\x02\0\0\0",
        ] {
            assert!(
                matches!(parse(bad), Err(FsError::Invalid(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut bin = encode_binary(&SearchRequest::new("d", vec![1.0], 1));
        bin.push(0);
        assert!(matches!(parse(&bin), Err(FsError::Invalid(_))), "trailing byte");
    }

    #[test]
    fn replies_round_trip() {
        let resp = SearchResponse {
            hits: vec![super::super::query::Hit {
                ino: 12,
                slot: 3,
                distance: 0.5,
                path: Some("/a/b".into()),
            }],
            complete: false,
            visited: 9,
        };
        let (hits, complete) = decode_binary_reply(&format(&resp, true)).unwrap();
        assert_eq!((hits, complete), (vec![(12, 3, 0.5)], false));
        let text = String::from_utf8(format(&resp, false)).unwrap();
        assert!(
            text.starts_with(r#"{"distance":0.5,"ino":12,"path":"/a/b","slot":3}"#),
            "{text}"
        );
        assert!(text.lines().nth(1).unwrap().contains(r#""complete":false"#));
    }
}
