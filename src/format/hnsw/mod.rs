//! The HNSW graph's compressed adjacency (format-spec/09-hnsw.md).
//!
//! A neighbour list is the sorted slot ids, written as a LEB128 varint of
//! the first id then varint deltas, or, in images with the `rice_lists`
//! feature, Rice-coded ([`rice`]; [`ListCoding`] picks). Level-0 lists live in the node record
//! (`n_adj_len` bytes at `ch_adj_offset`); upper-level lists live in the
//! collection's upper file in fixed-size [`UpperRecord`]s. Decoding reads
//! straight from the map, is bounded by [`MAX_NEIGHBOURS`] and by the byte
//! length, and rejects overlong varints and ids past `ch_slots`.

use super::{layout, Layout, Le16, Le32};
use crate::error::{Expected, FsError, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub mod rice;

/// How an image's neighbour lists are coded (format-spec/09 §9.5): chosen
/// for the whole image by the `rice_lists` incompat feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListCoding {
    /// LEB128 varints of the first id and the gaps (§9.5.1).
    Varint,
    /// A Rice code of the same values (§9.5.2).
    Rice,
}

/// Both codings, for tools and fuzzers that read lists without an image.
pub const CODINGS: [ListCoding; 2] = [ListCoding::Varint, ListCoding::Rice];

impl ListCoding {
    /// Encode sorted, distinct ids into `out`: the bytes written, or
    /// `None` if they are not strictly increasing or do not fit.
    pub fn encode(self, sorted: &[u32], out: &mut [u8]) -> Option<usize> {
        match self {
            ListCoding::Varint => encode_neighbours(sorted, out),
            ListCoding::Rice => rice::encode(sorted, out),
        }
    }

    /// Every id of `bytes` into `out`, or `false` where [`ListCoding::iter`]
    /// would yield an error.
    #[inline]
    pub fn decode_all(self, bytes: &[u8], slots: u64, out: &mut Vec<u32>) -> bool {
        match self {
            ListCoding::Varint => decode_all(bytes, slots, out),
            ListCoding::Rice => rice::decode_all(bytes, slots, out),
        }
    }

    /// The ids of `bytes` (found at image offset `base`), each checked.
    pub fn iter(self, bytes: &[u8], slots: u64, base: u64) -> Box<dyn Iterator<Item = Result<u32>> + '_> {
        match self {
            ListCoding::Varint => Box::new(NeighbourIter::new(bytes, slots, base)),
            ListCoding::Rice => Box::new(rice::RiceIter::new(bytes, slots, base)),
        }
    }
}

/// Most neighbours a list may hold (2 * the largest M, 256).
pub const MAX_NEIGHBOURS: usize = 512;
/// Highest level a node may have. Why 16: with M >= 4 the expected number of
/// nodes at level 16 is n / 4^16, i.e. none below 4 billion nodes.
pub const MAX_LEVEL: u8 = 16;
/// Longest LEB128 encoding of a u32.
pub const MAX_VARINT: usize = 5;

/// One upper-level list, format-spec/09 §9.4.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct UpperRecord {
    pub u_slot: Le32,
    pub u_level: u8,
    pub u_flags: u8,
    pub u_adj_len: Le16,
    pub u_checksum: Le32,
    pub u_reserved: Le32,
}

const _: () = assert!(core::mem::size_of::<UpperRecord>() == 16);

/// Encode sorted, distinct ids into `out`; returns the bytes written, or
/// `None` if they do not fit (the caller keeps fewer neighbours).
pub fn encode_neighbours(sorted: &[u32], out: &mut [u8]) -> Option<usize> {
    let mut pos = 0;
    let mut prev = 0u32;
    for (i, &id) in sorted.iter().enumerate() {
        let delta = if i == 0 {
            id
        } else {
            id.checked_sub(prev)?.checked_sub(1)?
        };
        let mut v = delta;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            *out.get_mut(pos)? = if v == 0 { byte } else { byte | 0x80 };
            pos += 1;
            if v == 0 {
                break;
            }
        }
        prev = id;
    }
    Some(pos)
}

/// Decode every id of `bytes` into `out` (cleared first), as
/// [`NeighbourIter`] would yield them. Returns `false` where the iterator
/// would yield an error; the caller then runs [`NeighbourIter`] for the
/// error with its offset. Why a second decoder: a search decodes one list
/// per expanded node, and the iterator's `Result` items (which carry a
/// whole error) cost more than the decoding itself.
#[inline]
pub fn decode_all(bytes: &[u8], slots: u64, out: &mut Vec<u32>) -> bool {
    out.clear();
    let limit = slots.min(1 << 32);
    let (mut pos, mut next_min) = (0usize, 0u64);
    while pos < bytes.len() {
        if out.len() >= MAX_NEIGHBOURS {
            return false;
        }
        let (mut v, mut shift) = (0u64, 0u32);
        loop {
            let Some(&b) = bytes.get(pos) else {
                return false;
            };
            pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift >= 7 * MAX_VARINT as u32 {
                return false;
            }
        }
        // The first id is written as is, each later one as the gap minus one.
        let id = next_min + v;
        if id >= limit {
            return false;
        }
        out.push(id as u32);
        next_min = id + 1;
    }
    true
}

/// Iterates the ids of an encoded list; yields an error and stops on a bad
/// varint, an id past `slots`, or more than [`MAX_NEIGHBOURS`] ids.
pub struct NeighbourIter<'a> {
    bytes: &'a [u8],
    pos: usize,
    prev: Option<u32>,
    count: usize,
    slots: u64,
    base: u64,
}

impl<'a> NeighbourIter<'a> {
    /// Decode `bytes` (found at image offset `base`); ids must be < `slots`.
    pub fn new(bytes: &'a [u8], slots: u64, base: u64) -> Self {
        NeighbourIter {
            bytes,
            pos: 0,
            prev: None,
            count: 0,
            slots,
            base,
        }
    }

    fn bad(&mut self, field: &'static str, exp: Expected, act: u64) -> Option<Result<u32>> {
        let at = self.base + self.pos as u64;
        self.pos = self.bytes.len();
        Some(Err(FsError::corrupt("adjacency list", at, field, exp, act)))
    }
}

impl Iterator for NeighbourIter<'_> {
    type Item = Result<u32>;

    fn next(&mut self) -> Option<Result<u32>> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        if self.count >= MAX_NEIGHBOURS {
            return self.bad("count", Expected::AtMost(MAX_NEIGHBOURS as u64), self.count as u64 + 1);
        }
        let mut v: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                return self.bad("varint", Expected::Known, 0);
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift >= 7 * MAX_VARINT as u32 {
                return self.bad("varint", Expected::AtMost(MAX_VARINT as u64), u64::from(shift / 7 + 1));
            }
        }
        let id = match self.prev {
            None => v,
            Some(p) => u64::from(p) + 1 + v,
        };
        // Slot ids are u32 on disk: nothing at or past 2^32 is valid, even
        // when a (corrupt) ch_slots says there are more slots.
        let limit = self.slots.min(1 << 32);
        if id >= limit {
            return self.bad("neighbour id", Expected::Below(limit), id);
        }
        self.prev = Some(id as u32);
        self.count += 1;
        Some(Ok(id as u32))
    }
}

/// Field layouts for the spec-offset test.
pub fn layouts() -> Vec<Layout> {
    vec![layout(
        "UpperRecord",
        16,
        crate::layout_of!(UpperRecord {
            u_slot,
            u_level,
            u_flags,
            u_adj_len,
            u_checksum,
            u_reserved
        }),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_compression() {
        let ids = [3u32, 4, 200, 70_000, 1_000_000];
        let mut buf = [0u8; 64];
        let n = encode_neighbours(&ids, &mut buf).unwrap();
        assert!(n < ids.len() * 4);
        let back: Vec<u32> = NeighbourIter::new(&buf[..n], 2_000_000, 0)
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(back, ids);
    }

    #[test]
    fn unsorted_or_too_long_input_is_refused() {
        let mut buf = [0u8; 4];
        assert_eq!(encode_neighbours(&[5, 5], &mut buf), None);
        assert_eq!(encode_neighbours(&[1, 2, 3, 4, 5], &mut buf), None);
    }

    /// `decode_all` answers exactly as the iterator: the same ids, and
    /// `false` wherever the iterator yields an error.
    fn agrees(bytes: &[u8], slots: u64) {
        let mut fast = Vec::new();
        let ok = decode_all(bytes, slots, &mut fast);
        let slow: Result<Vec<u32>> = NeighbourIter::new(bytes, slots, 0).collect();
        match slow {
            Ok(ids) => assert!(ok && fast == ids, "{bytes:02x?} slots {slots}"),
            Err(_) => assert!(!ok, "{bytes:02x?} slots {slots}: iterator failed, decode_all did not"),
        }
    }

    #[test]
    fn decode_all_agrees_with_the_iterator() {
        let mut buf = [0u8; 64];
        let n = encode_neighbours(&[3, 4, 200, 70_000, 1_000_000], &mut buf).unwrap();
        for slots in [0, 5, 200, 201, 1_000_000, 1_000_001, u64::MAX] {
            agrees(&buf[..n], slots);
        }
        agrees(&[0xff; 8], u64::MAX);
        agrees(&[0x80], u64::MAX);
        agrees(&[0xff, 0xff, 0xff, 0xff, 0x0f], u64::MAX);
        agrees(&[0xff, 0xff, 0xff, 0xff, 0x10], u64::MAX);
        agrees(&vec![0u8; MAX_NEIGHBOURS], u64::MAX);
        agrees(&vec![0u8; MAX_NEIGHBOURS + 1], u64::MAX);
        // Every short byte string over a few interesting values.
        let vals = [0x00u8, 0x01, 0x7f, 0x80, 0xff];
        for len in 0..=4 {
            for code in 0..vals.len().pow(len as u32) {
                let bytes: Vec<u8> = (0..len)
                    .map(|i| vals[code / vals.len().pow(i as u32) % vals.len()])
                    .collect();
                agrees(&bytes, 300);
                agrees(&bytes, u64::MAX);
            }
        }
    }

    #[test]
    fn ids_past_slots_and_overlong_varints_are_errors() {
        let mut buf = [0u8; 8];
        let n = encode_neighbours(&[10], &mut buf).unwrap();
        assert!(NeighbourIter::new(&buf[..n], 10, 0).next().unwrap().is_err());
        let bad = [0xffu8; 8];
        let e = NeighbourIter::new(&bad, u64::MAX, 50).next().unwrap().unwrap_err();
        assert_eq!(e.corruption().unwrap().field, "varint");
    }
}
