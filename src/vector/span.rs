//! Reading and writing byte spans of a hidden collection file through a
//! transaction, by logical block and offset (its extent map resolves the
//! blocks).

use crate::error::{Expected, FsError, Result};
use crate::format::BLOCK_SIZE;
use crate::fs::map;
use crate::fs::txn::Txn;
use crate::read::Mapping;
use std::borrow::Cow;

/// Physical block of logical block `l`, which must be mapped.
pub fn block_of(runs: &[Mapping], l: u64, what: &'static str) -> Result<u64> {
    map::lookup(runs, l)
        .map(|(p, _)| p)
        .ok_or_else(|| FsError::corrupt(what, 0, "logical block", Expected::Known, l))
}

/// The parts of the `len` bytes from byte `off` of logical block `l`:
/// (logical block, offset in it, length), in order. Bound: one part per
/// block the span touches.
pub fn pieces(l: u64, off: usize, len: usize) -> impl Iterator<Item = (u64, usize, usize)> {
    let (mut b, mut at, mut left) = (l, off.min(BLOCK_SIZE), len);
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let n = left.min(BLOCK_SIZE - at);
        let part = (b, at, n);
        (b, at, left) = (b + 1, 0, left - n);
        Some(part)
    })
}

pub fn read_span<'t>(
    txn: &'t Txn<'_>,
    runs: &[Mapping],
    l: u64,
    off: usize,
    len: usize,
    what: &'static str,
) -> Result<Cow<'t, [u8]>> {
    if off + len <= BLOCK_SIZE {
        let blk = txn.block(block_of(runs, l, what)?)?;
        return Ok(Cow::Borrowed(&blk[off..off + len]));
    }
    let mut out = Vec::with_capacity(len);
    assemble(txn, runs, (l, off, len), what, &mut out)?;
    Ok(Cow::Owned(out))
}

/// Append a span straddling blocks (records of a block or more, or packed
/// records, format-spec/08 §8.5.2) to `out`: the tail of the first block
/// and the heads of the next ones.
fn assemble(
    txn: &Txn<'_>,
    runs: &[Mapping],
    (l, off, len): (u64, usize, usize),
    what: &'static str,
    out: &mut Vec<u8>,
) -> Result<()> {
    for (b, at, n) in pieces(l, off, len) {
        let blk = txn.block(block_of(runs, b, what)?)?;
        out.extend_from_slice(&blk[at..at + n]);
    }
    Ok(())
}

/// [`read_span`] without an allocation: a span inside one block is
/// borrowed from it; one straddling blocks is assembled in `buf` (cleared
/// first), which a caller reading many records reuses.
pub fn read_span_in<'a>(
    txn: &'a Txn<'_>,
    runs: &[Mapping],
    (l, off, len): (u64, usize, usize),
    what: &'static str,
    buf: &'a mut Vec<u8>,
) -> Result<&'a [u8]> {
    if off + len <= BLOCK_SIZE {
        let blk = txn.block(block_of(runs, l, what)?)?;
        return Ok(&blk[off..off + len]);
    }
    buf.clear();
    assemble(txn, runs, (l, off, len), what, buf)?;
    Ok(buf)
}

/// Write `bytes` at byte `off` of logical block `l` onwards; `unjournaled`:
/// straight to the map (a file built on the orphan chain, see
/// [`Txn::unjournaled_mut`]).
pub fn write_span(
    txn: &mut Txn<'_>,
    unjournaled: bool,
    runs: &[Mapping],
    (l, off): (u64, usize),
    bytes: &[u8],
    what: &'static str,
) -> Result<()> {
    let mut done = 0;
    for (b, at, n) in pieces(l, off, bytes.len()) {
        let blk = txn.writable(block_of(runs, b, what)?, unjournaled)?;
        blk[at..at + n].copy_from_slice(&bytes[done..done + n]);
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_in_one_block_are_borrowed_and_straddles_assembled_in_the_buffer() {
        // Blocks 0..4 of a map, each filled with its block number; the
        // file's logical 0 and 1 are physical 3 and 1 (not adjacent).
        let map: Vec<u8> = (0..4u8).flat_map(|b| std::iter::repeat_n(b, BLOCK_SIZE)).collect();
        let runs = [
            Mapping {
                logical: 0,
                physical: 3,
                len: 1,
                unwritten: false,
            },
            Mapping {
                logical: 1,
                physical: 1,
                len: 1,
                unwritten: false,
            },
        ];
        let txn = Txn::read_only(&map, 4);
        let mut buf = vec![9u8; 3];
        let one = read_span_in(&txn, &runs, (1, 8, 4), "test", &mut buf).unwrap();
        assert_eq!(one, &[1u8; 4]);
        assert_eq!(buf, [9u8; 3], "a span in one block leaves the buffer alone");
        let across = read_span_in(&txn, &runs, (0, BLOCK_SIZE - 2, 4), "test", &mut buf).unwrap();
        assert_eq!(across, &[3, 3, 1, 1], "the buffer is cleared before assembling");
        let e = read_span_in(&txn, &runs, (2, 0, 4), "test", &mut buf).unwrap_err();
        assert!(e.to_string().contains("logical block"), "{e}");
    }

    #[test]
    fn pieces_split_a_span_at_block_boundaries() {
        let all = |l, off, len| pieces(l, off, len).collect::<Vec<_>>();
        assert_eq!(all(1, 4088, 56), [(1, 4088, 8), (2, 0, 48)]);
        assert_eq!(all(0, 0, 8192), [(0, 0, 4096), (1, 0, 4096)]);
        assert_eq!(all(3, 100, 50), [(3, 100, 50)]);
        assert_eq!(all(3, 4000, 96), [(3, 4000, 96)], "ending exactly at the block's end");
        assert!(all(3, 10, 0).is_empty());
    }
}
