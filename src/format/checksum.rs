//! Metadata checksums (format-spec/13-checksums.md).
//!
//! CRC-32 (IEEE 802.3 polynomial, as computed by crc32fast). The superblock
//! is summed with the standard initial value; every other structure is
//! summed starting from the per-image seed `s_checksum_seed`
//! (= CRC-32 of `s_uuid`), then the structure's location (block or inode
//! number, little-endian u64), then its bytes with the checksum field left
//! out. Seeding with the location means a block copied to the wrong place
//! fails its check.

/// CRC-32 of the superblock bytes before `s_checksum`.
pub fn superblock_csum(bytes_before_checksum: &[u8]) -> u32 {
    crc32fast::hash(bytes_before_checksum)
}

/// The per-image seed: CRC-32 of the 16-byte UUID.
pub fn image_seed(uuid: &[u8; 16]) -> u32 {
    crc32fast::hash(uuid)
}

/// Checksum of a structure at `location`, over `parts` in order.
pub fn structure_csum(seed: u32, location: u64, parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(&location.to_le_bytes());
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// Checksum of a whole structure whose checksum field spans
/// `csum_at..csum_at + 4`; the field's bytes are skipped.
pub fn csum_skipping(seed: u32, location: u64, bytes: &[u8], csum_at: usize) -> u32 {
    let before = bytes.get(..csum_at).unwrap_or(bytes);
    let after = bytes.get(csum_at.saturating_add(4)..).unwrap_or(&[]);
    structure_csum(seed, location, &[before, after])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_changes_the_checksum() {
        let data = [7u8; 64];
        assert_ne!(csum_skipping(1, 10, &data, 60), csum_skipping(1, 11, &data, 60));
    }

    #[test]
    fn checksum_field_is_skipped() {
        let mut a = [7u8; 64];
        let b = a;
        a[60] = 0xff;
        assert_eq!(csum_skipping(1, 1, &a, 60), csum_skipping(1, 1, &b, 60));
        a[0] = 0;
        assert_ne!(csum_skipping(1, 1, &a, 60), csum_skipping(1, 1, &b, 60));
    }

    #[test]
    fn crc32_is_the_ieee_polynomial() {
        // The well-known check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }
}
