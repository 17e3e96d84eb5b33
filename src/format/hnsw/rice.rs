//! Rice-coded neighbour lists (format-spec/09 §9.5.2, images with the
//! `rice_lists` feature): byte 0 holds the Rice parameter k, then a bit
//! stream (least significant bit of each byte first) of one code per id:
//! q zero bits, a one bit, and the k low bits of the value, where value =
//! q·2^k + low. The first id is its value, each later id the previous + 1
//! + its value (as with varints). The list ends where no one bit is left.
//!
//! Why: slot ids in a list are spread over the whole collection, so the
//! gaps between sorted ids are about geometric, for which a Rice code is
//! within a few percent of the entropy; LEB128 spends whole bytes (two
//! bytes from gaps of 128, three from 16,384: a million-vector collection
//! pays 2.6 bytes an id where this code pays 2.1).

use super::MAX_NEIGHBOURS;
use crate::error::{Expected, FsError, Result};

/// Largest Rice parameter: gaps are below 2^32.
pub const MAX_K: u8 = 31;
/// Longest unary part (zero bits before the one). Why 56: a code's unary
/// part then always lies in one 8-byte load from its first byte, whatever
/// the bit offset in that byte (64 − 7 = 57 bits, the one bit included).
pub const MAX_UNARY: u32 = 56;

/// 64 stream bits from bit `bit` of `data` (bits past the end read as 0).
#[inline(always)]
fn window(data: &[u8], bit: usize) -> u64 {
    let (b, shift) = (bit / 8, bit % 8);
    let word = match data.get(b..b + 8) {
        Some(w) => u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]),
        None => {
            let mut w = [0u8; 8];
            let tail = data.get(b..).unwrap_or(&[]);
            w[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(w)
        }
    };
    word >> shift
}

/// Why one code could not be read at stream bit `bit`.
enum Stop {
    /// No one bit left: the list ended.
    End,
    /// More than [`MAX_UNARY`] zero bits before a one bit.
    Unary,
    /// The stream ends inside the k low bits.
    Remainder,
}

/// The value of the code at stream bit `*bit` (advanced past it).
/// Inlined into [`decode_all`]'s loop: as a call it was 6.5% of a
/// search's time, mostly the call's own register saves and restores.
#[inline(always)]
fn next_value(data: &[u8], bit: &mut usize, k: u32) -> std::result::Result<u64, Stop> {
    let w = window(data, *bit);
    if w == 0 {
        // The one bit is not in this load: either none is left (the end)
        // or the unary part is too long.
        let rest = data.get(*bit / 8 + 8..).unwrap_or(&[]);
        return Err(if rest.iter().all(|&b| b == 0) {
            Stop::End
        } else {
            Stop::Unary
        });
    }
    let q = w.trailing_zeros();
    if q > MAX_UNARY {
        return Err(Stop::Unary);
    }
    let start = *bit + q as usize + 1;
    if start + k as usize > data.len() * 8 {
        return Err(Stop::Remainder);
    }
    let mask = (1u64 << k) - 1;
    // The low bits are in the same load unless the code is long.
    let low = if q + 1 + k <= 64 - (*bit % 8) as u32 {
        (w >> (q + 1)) & mask
    } else {
        window(data, start) & mask
    };
    *bit = start + k as usize;
    Ok((u64::from(q) << k) | low)
}

/// The bits `ids` (sorted, distinct) take with parameter `k`, or `None`
/// when a unary part would exceed [`MAX_UNARY`].
fn cost(values: impl Iterator<Item = u64>, k: u32) -> Option<u64> {
    let mut bits = 0u64;
    for v in values {
        let q = v >> k;
        if q > u64::from(MAX_UNARY) {
            return None;
        }
        bits += q + 1 + u64::from(k);
    }
    Some(bits)
}

/// The values the ids are coded as: the first id, then each gap minus one.
fn values(sorted: &[u32]) -> impl Iterator<Item = u64> + Clone + '_ {
    let prev = std::iter::once(None).chain(sorted.iter().map(|&p| Some(p)));
    sorted.iter().zip(prev).map(|(&id, p)| match p {
        None => u64::from(id),
        Some(p) => u64::from(id).wrapping_sub(u64::from(p) + 1),
    })
}

/// The parameter giving the fewest bits among those near log2 of the
/// mean value, where the optimum for geometric gaps lies (writers encode
/// a list at every change of it, so not all 32 are tried); else the
/// smallest larger one whose unary parts fit.
fn best_k(sorted: &[u32]) -> Option<u32> {
    let n = sorted.len() as u64;
    let mean = values(sorted).sum::<u64>() / n.max(1);
    let centre = 63u32.saturating_sub(mean.max(1).leading_zeros());
    let (lo, hi) = (centre.saturating_sub(2), (centre + 1).min(u32::from(MAX_K)));
    let near = (lo..=hi).filter_map(|k| cost(values(sorted), k).map(|c| (c, k))).min();
    near.map(|(_, k)| k)
        .or_else(|| (hi + 1..=u32::from(MAX_K)).find(|&k| cost(values(sorted), k).is_some()))
}

/// Appends bits to a byte buffer, least significant first.
struct BitWriter<'o> {
    out: &'o mut [u8],
    pos: usize,
    acc: u64,
    nbits: u32,
}

impl BitWriter<'_> {
    /// Append the low `n` bits of `v` (`n` ≤ 57); `None` when `out` is full.
    fn put(&mut self, v: u64, n: u32) -> Option<()> {
        self.acc |= v << self.nbits;
        self.nbits += n;
        while self.nbits >= 8 {
            *self.out.get_mut(self.pos)? = self.acc as u8;
            self.pos += 1;
            self.acc >>= 8;
            self.nbits -= 8;
        }
        Some(())
    }

    /// Write the last partial byte; the bytes written.
    fn finish(mut self) -> Option<usize> {
        if self.nbits > 0 {
            *self.out.get_mut(self.pos)? = self.acc as u8;
            self.pos += 1;
        }
        Some(self.pos)
    }
}

/// Encode sorted, distinct ids into `out`; the bytes written, or `None`
/// if they are not strictly increasing or do not fit.
pub fn encode(sorted: &[u32], out: &mut [u8]) -> Option<usize> {
    if sorted.is_empty() {
        return Some(0);
    }
    if sorted.windows(2).any(|w| w[0] >= w[1]) {
        return None;
    }
    let k = best_k(sorted)?;
    *out.first_mut()? = k as u8;
    let mut w = BitWriter {
        out: out.get_mut(1..)?,
        pos: 0,
        acc: 0,
        nbits: 0,
    };
    for v in values(sorted) {
        let q = (v >> k) as u32;
        w.put(1 << q, q + 1)?;
        w.put(v & ((1u64 << k) - 1), k)?;
    }
    w.finish().map(|n| n + 1)
}

/// Decode every id into `out` (cleared first); `false` where
/// [`RiceIter`] would yield an error (the caller runs it for the error).
#[inline]
pub fn decode_all(bytes: &[u8], slots: u64, out: &mut Vec<u32>) -> bool {
    out.clear();
    let Some((&k, data)) = bytes.split_first() else {
        return true;
    };
    if k > MAX_K {
        return false;
    }
    let limit = slots.min(1 << 32);
    let (mut bit, mut next_min) = (0usize, 0u64);
    loop {
        let v = match next_value(data, &mut bit, k.into()) {
            Ok(v) => v,
            Err(Stop::End) => return true,
            Err(_) => return false,
        };
        let id = next_min + v;
        if id >= limit || out.len() >= MAX_NEIGHBOURS {
            return false;
        }
        out.push(id as u32);
        next_min = id + 1;
    }
}

/// Iterates the ids of a Rice-coded list; yields an error (with the image
/// offset of the byte where it was found) and stops on a bad parameter, a
/// unary part past [`MAX_UNARY`], a truncated code, an id past `slots`, or
/// more than [`MAX_NEIGHBOURS`] ids.
pub struct RiceIter<'a> {
    bytes: &'a [u8],
    bit: usize,
    next_min: u64,
    count: usize,
    slots: u64,
    base: u64,
    done: bool,
}

impl<'a> RiceIter<'a> {
    pub fn new(bytes: &'a [u8], slots: u64, base: u64) -> Self {
        RiceIter {
            bytes,
            bit: 0,
            next_min: 0,
            count: 0,
            slots,
            base,
            done: bytes.is_empty(),
        }
    }

    fn bad(&mut self, at: u64, field: &'static str, exp: Expected, act: u64) -> Option<Result<u32>> {
        self.done = true;
        Some(Err(FsError::corrupt("adjacency list", self.base + at, field, exp, act)))
    }
}

impl Iterator for RiceIter<'_> {
    type Item = Result<u32>;

    fn next(&mut self) -> Option<Result<u32>> {
        if self.done {
            return None;
        }
        let (&k, data) = self.bytes.split_first()?;
        if k > MAX_K {
            return self.bad(0, "rice parameter", Expected::AtMost(MAX_K.into()), k.into());
        }
        let at = 1 + (self.bit / 8) as u64;
        let v = match next_value(data, &mut self.bit, k.into()) {
            Ok(v) => v,
            Err(Stop::End) => {
                self.done = true;
                return None;
            }
            Err(Stop::Unary) => return self.bad(at, "unary run", Expected::AtMost(MAX_UNARY.into()), 0),
            Err(Stop::Remainder) => return self.bad(at, "remainder", Expected::Known, 0),
        };
        if self.count >= MAX_NEIGHBOURS {
            return self.bad(
                at,
                "count",
                Expected::AtMost(MAX_NEIGHBOURS as u64),
                self.count as u64 + 1,
            );
        }
        let id = self.next_min + v;
        // Slot ids are u32 on disk, whatever a (corrupt) ch_slots says.
        let limit = self.slots.min(1 << 32);
        if id >= limit {
            return self.bad(at, "neighbour id", Expected::Below(limit), id);
        }
        self.next_min = id + 1;
        self.count += 1;
        Some(Ok(id as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids_of(bytes: &[u8], slots: u64) -> Result<Vec<u32>> {
        RiceIter::new(bytes, slots, 0).collect()
    }

    /// Deterministic sorted sets: `n` ids below `universe`.
    fn set(seed: u64, n: usize, universe: u64) -> Vec<u32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut v: Vec<u32> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % universe) as u32
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn round_trips_and_beats_varints_on_spread_ids() {
        let (mut rice_bytes, mut varint_bytes) = (0, 0);
        for seed in 0..300 {
            let universe = [40u64, 5_000, 100_000, 1_000_000, 1 << 32][seed as usize % 5];
            let ids = set(seed, 1 + seed as usize % 40, universe);
            let mut buf = [0u8; 512];
            let n = encode(&ids, &mut buf).unwrap();
            assert_eq!(ids_of(&buf[..n], 1 << 32).unwrap(), ids, "seed {seed}");
            let mut fast = Vec::new();
            assert!(decode_all(&buf[..n], 1 << 32, &mut fast) && fast == ids);
            if universe == 1_000_000 {
                rice_bytes += n;
                varint_bytes += super::super::encode_neighbours(&ids, &mut [0u8; 512]).unwrap();
            }
        }
        assert!(
            rice_bytes * 10 < varint_bytes * 9,
            "rice {rice_bytes} vs varint {varint_bytes}"
        );
    }

    #[test]
    fn the_spec_example_encodes_as_written() {
        // format-spec/09 §9.5.2: ids {3, 4, 200, 70000, 1000000}.
        let mut buf = [0u8; 32];
        let n = encode(&[3, 4, 200, 70_000, 1_000_000], &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            &[0x11, 0x07, 0x00, 0x04, 0x00, 0x70, 0x18, 0xc0, 0x53, 0x88, 0x80, 0xcf, 0x30, 0x00]
        );
    }

    #[test]
    fn writers_refuse_unsorted_ids_and_full_buffers() {
        let mut buf = [0u8; 128];
        assert_eq!(encode(&[5, 5], &mut buf), None);
        assert_eq!(encode(&[6, 5], &mut buf), None);
        assert_eq!(encode(&[], &mut buf), Some(0));
        let ids = set(7, 40, 1_000_000);
        let need = encode(&ids, &mut buf).unwrap();
        assert_eq!(encode(&ids, &mut buf[..need - 1]), None);
        assert_eq!(
            encode(&[0, u32::MAX], &mut buf).map(|n| ids_of(&buf[..n], 1 << 32).unwrap()),
            Some(vec![0, u32::MAX])
        );
    }

    #[test]
    fn each_bad_input_is_an_error_at_its_byte() {
        let field = |bytes: &[u8], slots: u64| {
            let e = RiceIter::new(bytes, slots, 100)
                .find_map(|r| r.err())
                .expect("an error");
            let c = e.corruption().unwrap().clone();
            (c.field, c.offset)
        };
        assert_eq!(field(&[32, 0xff], 1 << 32), ("rice parameter", 100));
        // 57 zero bits, then a one: a unary part past 56.
        assert_eq!(field(&[0, 0, 0, 0, 0, 0, 0, 0, 0x02], 1 << 32), ("unary run", 101));
        // k = 8: the one bit, then only 7 bits of the remainder.
        assert_eq!(field(&[8, 0x01], 1 << 32), ("remainder", 101));
        // k = 0: ids 0, 1, 2; slots = 2.
        assert_eq!(field(&[0, 0b0000_0111], 2), ("neighbour id", 101));
        let too_many = vec![0xffu8; MAX_NEIGHBOURS / 8 + 2];
        let mut many = vec![0u8];
        many.extend(&too_many);
        assert_eq!(field(&many, 1 << 32).0, "count");
        // Trailing zero bytes and an empty stream end the list cleanly.
        assert_eq!(ids_of(&[0, 0x01, 0, 0], 10).unwrap(), vec![0]);
        assert_eq!(ids_of(&[5], 10).unwrap(), Vec::<u32>::new());
        assert_eq!(ids_of(&[], 10).unwrap(), Vec::<u32>::new());
    }

    /// `decode_all` gives the iterator's ids, and `false` wherever the
    /// iterator yields an error, over every short string of a few values.
    #[test]
    fn decode_all_agrees_with_the_iterator() {
        let vals = [0x00u8, 0x01, 0x02, 0x80, 0xff, 0x1f];
        for len in 0..=4 {
            for code in 0..vals.len().pow(len as u32) {
                let bytes: Vec<u8> = (0..len)
                    .map(|i| vals[code / vals.len().pow(i as u32) % vals.len()])
                    .collect();
                for slots in [3, 300, u64::MAX] {
                    let mut fast = Vec::new();
                    let ok = decode_all(&bytes, slots, &mut fast);
                    match ids_of(&bytes, slots) {
                        Ok(ids) => assert!(ok && fast == ids, "{bytes:02x?} slots {slots}"),
                        Err(_) => assert!(!ok, "{bytes:02x?} slots {slots}"),
                    }
                }
            }
        }
    }
}
