//! Block and inode bitmaps (format-spec/04-allocation.md).
//!
//! Bit `n` of a bitmap is bit `n % 8` (LSB first) of byte `n / 8`; a set bit
//! means "in use". The kernel layout has one 4096-byte block bitmap (block 1)
//! and no inode bitmap. Feature images have multi-block bitmaps whose blocks
//! end in a [`BitmapTail`] (free count and checksum), so each block carries
//! [`BITS_PER_TAILED_BLOCK`] bits, plus summary bitmaps with one bit per leaf
//! block (set = that leaf has no free bit), so an allocator finds space in
//! O(image / 2^30 bytes) reads instead of a full scan.

use super::{checksum, layout, Layout, Le32, BLOCK_SIZE};
use crate::error::{Expected, FsError, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Bits in the kernel layout's single bitmap block.
pub const BITS_PER_KERNEL_BLOCK: u64 = (BLOCK_SIZE * 8) as u64;
/// Bytes of bits before the tail in a feature-image bitmap block.
pub const TAILED_BITS_BYTES: usize = BLOCK_SIZE - core::mem::size_of::<BitmapTail>();
/// Bits in one feature-image bitmap (or summary) block.
pub const BITS_PER_TAILED_BLOCK: u64 = (TAILED_BITS_BYTES * 8) as u64;

/// The last 8 bytes of every feature-image bitmap block,
/// format-spec/04-allocation.md §4.3.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BitmapTail {
    /// Number of zero bits among the block's *valid* bits.
    pub bt_free: Le32,
    /// Checksum of the block (bits and bt_free), seeded by location.
    pub bt_checksum: Le32,
}

const _: () = assert!(core::mem::size_of::<BitmapTail>() == 8);

/// Test bit `n` of `bits` (false when out of range).
pub fn test_bit(bits: &[u8], n: u64) -> bool {
    let byte = usize::try_from(n / 8).ok().and_then(|i| bits.get(i));
    byte.is_some_and(|b| b & (1 << (n % 8)) != 0)
}

/// Set or clear bit `n` of `bits`; returns the previous value. Out-of-range
/// bits are ignored (and reported as already set, so callers never think
/// they allocated them).
pub fn set_bit(bits: &mut [u8], n: u64, value: bool) -> bool {
    let Some(b) = usize::try_from(n / 8).ok().and_then(|i| bits.get_mut(i)) else {
        return true;
    };
    let mask = 1u8 << (n % 8);
    let old = *b & mask != 0;
    if value {
        *b |= mask;
    } else {
        *b &= !mask;
    }
    old
}

/// Count zero bits among the first `valid` bits.
pub fn count_zeros(bits: &[u8], valid: u64) -> u64 {
    let full = ((valid / 8) as usize).min(bits.len());
    // Eight bytes at a time: this runs over a whole leaf at every seal
    // and verification, once per allocation (a byte loop was 15% of a
    // file-create profile).
    let words = bits[..full].chunks_exact(8);
    let tail = words.remainder();
    let whole: u64 = words
        .map(|w| u64::from(u64::from_le_bytes(w.try_into().expect("8 bytes")).count_zeros()))
        .chain(tail.iter().map(|b| u64::from(b.count_zeros())))
        .sum();
    let rest = (full as u64 * 8..valid).filter(|&n| !test_bit(bits, n)).count() as u64;
    whole + rest
}

/// Find the first zero bit at or after `from` among the first `valid` bits.
pub fn find_zero(bits: &[u8], from: u64, valid: u64) -> Option<u64> {
    let mut n = from;
    while n < valid {
        let byte = *bits.get((n / 8) as usize)?;
        if byte == 0xff && n.is_multiple_of(8) {
            n += 8;
            continue;
        }
        if byte & (1 << (n % 8)) == 0 {
            return Some(n);
        }
        n += 1;
    }
    None
}

/// A validated view of one feature-image bitmap block.
#[derive(Debug)]
pub struct TailedBitmap<'a> {
    pub bits: &'a [u8],
    pub tail: &'a BitmapTail,
}

/// Parse a tailed bitmap block at `block_no`, checking the checksum when
/// `seed` is given and that `bt_free` matches the bits.
pub fn parse_tailed(block: &[u8], block_no: u64, seed: Option<u32>, valid: u64) -> Result<TailedBitmap<'_>> {
    let base = block_no.saturating_mul(BLOCK_SIZE as u64);
    let wrong_size = || {
        FsError::corrupt(
            "bitmap block",
            base,
            "size",
            Expected::Eq(BLOCK_SIZE as u64),
            block.len() as u64,
        )
    };
    let (bits, tail_bytes) = block.split_at_checked(TAILED_BITS_BYTES).ok_or_else(wrong_size)?;
    let tail = BitmapTail::ref_from_bytes(tail_bytes).map_err(|_| wrong_size())?;
    if let Some(seed) = seed {
        let want = tailed_checksum(block, block_no, seed);
        if tail.bt_checksum.get() != want {
            return Err(FsError::corrupt(
                "bitmap block",
                base + TAILED_BITS_BYTES as u64 + 4,
                "bt_checksum",
                Expected::Eq(want.into()),
                tail.bt_checksum.get().into(),
            ));
        }
    }
    let zeros = count_zeros(bits, valid.min(BITS_PER_TAILED_BLOCK));
    if u64::from(tail.bt_free.get()) != zeros {
        return Err(FsError::corrupt(
            "bitmap block",
            base + TAILED_BITS_BYTES as u64,
            "bt_free",
            Expected::Eq(zeros),
            tail.bt_free.get().into(),
        ));
    }
    Ok(TailedBitmap { bits, tail })
}

/// Checksum of a tailed bitmap block (everything but `bt_checksum`).
pub fn tailed_checksum(block: &[u8], block_no: u64, seed: u32) -> u32 {
    checksum::csum_skipping(seed, block_no, block, TAILED_BITS_BYTES + 4)
}

/// Recompute `bt_free` (over `valid` bits) and `bt_checksum` of a block.
pub fn seal_tailed(block: &mut [u8], block_no: u64, seed: Option<u32>, valid: u64) {
    let zeros = count_zeros(&block[..TAILED_BITS_BYTES], valid.min(BITS_PER_TAILED_BLOCK));
    block[TAILED_BITS_BYTES..TAILED_BITS_BYTES + 4].copy_from_slice(&(zeros as u32).to_le_bytes());
    let c = seed.map_or(0, |s| tailed_checksum(block, block_no, s));
    block[TAILED_BITS_BYTES + 4..BLOCK_SIZE].copy_from_slice(&c.to_le_bytes());
}

/// Field layouts for the spec-offset test.
pub fn layouts() -> Vec<Layout> {
    vec![layout(
        "BitmapTail",
        core::mem::size_of::<BitmapTail>(),
        crate::layout_of!(BitmapTail { bt_free, bt_checksum }),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_order_is_lsb_first() {
        let mut bits = [0u8; 2];
        set_bit(&mut bits, 0, true);
        set_bit(&mut bits, 9, true);
        assert_eq!(bits, [0x01, 0x02]);
        assert!(test_bit(&bits, 9));
        assert!(!test_bit(&bits, 8));
        assert!(!test_bit(&bits, 1_000_000));
    }

    #[test]
    fn find_zero_skips_full_bytes() {
        let bits = [0xff, 0xff, 0b1110_1111];
        assert_eq!(find_zero(&bits, 0, 24), Some(20));
        assert_eq!(find_zero(&bits, 0, 20), None);
    }

    #[test]
    fn sealed_block_parses_and_flips_are_caught() {
        let mut block = vec![0u8; BLOCK_SIZE];
        set_bit(&mut block, 3, true);
        seal_tailed(&mut block, 7, Some(99), 1000);
        let v = parse_tailed(&block, 7, Some(99), 1000).unwrap();
        assert_eq!(v.tail.bt_free.get(), 999);
        for i in [0usize, 100, TAILED_BITS_BYTES, BLOCK_SIZE - 1] {
            let mut b = block.clone();
            b[i] ^= 0x40;
            assert!(parse_tailed(&b, 7, Some(99), 1000).is_err(), "byte {i}");
        }
        // Same bytes at another block number fail too.
        assert!(parse_tailed(&block, 8, Some(99), 1000).is_err());
    }

    #[test]
    fn wrong_free_count_is_caught_without_checksums() {
        let mut block = vec![0u8; BLOCK_SIZE];
        seal_tailed(&mut block, 1, None, 64);
        block[0] = 1;
        let e = parse_tailed(&block, 1, None, 64).unwrap_err();
        assert_eq!(e.corruption().unwrap().field, "bt_free");
    }
}
