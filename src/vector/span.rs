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
    // Straddling blocks (records of a block or more, or packed records,
    // format-spec/08 §8.5.2): assembled from the tail of the first block
    // and the heads of the next ones.
    let mut out = Vec::with_capacity(len);
    let (mut b, mut at) = (l, off.min(BLOCK_SIZE));
    while out.len() < len {
        let blk = txn.block(block_of(runs, b, what)?)?;
        let n = (len - out.len()).min(BLOCK_SIZE - at);
        out.extend_from_slice(&blk[at..at + n]);
        b += 1;
        at = 0;
    }
    Ok(Cow::Owned(out))
}

pub fn write_span(
    txn: &mut Txn<'_>,
    runs: &[Mapping],
    l: u64,
    off: usize,
    bytes: &[u8],
    what: &'static str,
) -> Result<()> {
    let mut done = 0;
    let (mut b, mut at) = (l, off);
    while done < bytes.len() {
        let n = (bytes.len() - done).min(BLOCK_SIZE - at);
        let blk = txn.block_mut(block_of(runs, b, what)?)?;
        blk[at..at + n].copy_from_slice(&bytes[done..done + n]);
        done += n;
        b += 1;
        at = 0;
    }
    Ok(())
}
