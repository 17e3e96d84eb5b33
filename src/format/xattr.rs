//! Extended attribute blocks (format-spec/07-xattrs.md).
//!
//! The ext2 xattr block: a 32-byte header, then entries growing down from
//! byte 32 (each 16 bytes + name padded to 4), ended by 4 zero bytes; values
//! are packed up from the end of the block, each padded to 4 bytes.

use super::{checksum, layout, Layout, Le16, Le32, BLOCK_SIZE};
use crate::error::{Expected, FsError, Result};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `h_magic`.
pub const XATTR_MAGIC: u32 = 0xEA02_0000;
/// Offset of the first entry.
pub const FIRST_ENTRY: usize = 32;
/// Most entries a block can hold (16-byte minimum entries). Bounds loops.
pub const MAX_ENTRIES: usize = (BLOCK_SIZE - FIRST_ENTRY) / 16;

/// Name prefixes by `e_name_index`, format-spec/07 §7.3.
pub const NAME_INDEX: &[(u8, &str)] = &[
    (1, "user."),
    (2, "system.posix_acl_access"),
    (3, "system.posix_acl_default"),
    (4, "trusted."),
    (6, "security."),
    (7, "system."),
    (8, "vexfs."),
];

/// Block header, format-spec/07 §7.2.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct XattrHeader {
    pub h_magic: Le32,
    pub h_refcount: Le32,
    pub h_blocks: Le32,
    pub h_hash: Le32,
    pub h_checksum: Le32,
    pub h_reserved: [u8; 12],
}

/// Entry, format-spec/07 §7.3.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct XattrEntry {
    pub e_name_len: u8,
    pub e_name_index: u8,
    pub e_value_offs: Le16,
    pub e_value_inum: Le32,
    pub e_value_size: Le32,
    pub e_hash: Le32,
}

const _: () = assert!(core::mem::size_of::<XattrHeader>() == 32);
const _: () = assert!(core::mem::size_of::<XattrEntry>() == 16);

/// One decoded attribute.
#[derive(Debug, Clone, Copy)]
pub struct Xattr<'a> {
    pub name_index: u8,
    pub name: &'a [u8],
    pub value: &'a [u8],
}

impl Xattr<'_> {
    /// Full name with its prefix, e.g. `user.comment`.
    pub fn full_name(&self) -> String {
        let prefix = NAME_INDEX
            .iter()
            .find(|(i, _)| *i == self.name_index)
            .map_or("unknown.", |(_, p)| p);
        format!("{prefix}{}", String::from_utf8_lossy(self.name))
    }
}

/// Checksum of an xattr block (seed, block number, all but `h_checksum`).
pub fn block_checksum(block: &[u8], block_no: u64, seed: u32) -> u32 {
    checksum::csum_skipping(seed, block_no, block, 16)
}

/// Parse every entry of the xattr block at `block_no`.
pub fn parse_block(block: &[u8], block_no: u64, seed: Option<u32>) -> Result<Vec<Xattr<'_>>> {
    let base = block_no.saturating_mul(BLOCK_SIZE as u64);
    let bad = |off: usize, field, exp, act: u64| FsError::corrupt("xattr block", base + off as u64, field, exp, act);
    let (h, _) = XattrHeader::ref_from_prefix(block)
        .map_err(|_| bad(0, "size", Expected::Eq(BLOCK_SIZE as u64), block.len() as u64))?;
    if h.h_magic.get() != XATTR_MAGIC {
        return Err(bad(
            0,
            "h_magic",
            Expected::Eq(XATTR_MAGIC.into()),
            h.h_magic.get().into(),
        ));
    }
    if h.h_blocks.get() != 1 {
        return Err(bad(8, "h_blocks", Expected::Eq(1), h.h_blocks.get().into()));
    }
    if let Some(seed) = seed {
        let want = block_checksum(block, block_no, seed);
        if h.h_checksum.get() != want {
            return Err(bad(
                16,
                "h_checksum",
                Expected::Eq(want.into()),
                h.h_checksum.get().into(),
            ));
        }
    }
    let mut out = Vec::new();
    let mut pos = FIRST_ENTRY;
    for _ in 0..MAX_ENTRIES {
        let Some(rest) = block.get(pos..) else { break };
        if rest.len() < 4 || rest[..4] == [0, 0, 0, 0] {
            return Ok(out);
        }
        let (e, tail) = XattrEntry::ref_from_prefix(rest)
            .map_err(|_| bad(pos, "e_name_len", Expected::AtLeast(16), rest.len() as u64))?;
        let name = tail.get(..usize::from(e.e_name_len)).ok_or_else(|| {
            bad(
                pos,
                "e_name_len",
                Expected::AtMost(tail.len() as u64),
                e.e_name_len.into(),
            )
        })?;
        let (off, size) = (usize::from(e.e_value_offs.get()), e.e_value_size.get() as usize);
        let value = block
            .get(off..off.saturating_add(size))
            .filter(|_| off >= FIRST_ENTRY)
            .ok_or_else(|| {
                bad(
                    pos + 2,
                    "e_value_offs",
                    Expected::Within(FIRST_ENTRY as u64, (BLOCK_SIZE - size.min(BLOCK_SIZE)) as u64),
                    off as u64,
                )
            })?;
        out.push(Xattr {
            name_index: e.e_name_index,
            name,
            value,
        });
        pos += (16 + name.len() + 3) & !3;
    }
    Err(bad(
        pos,
        "entries",
        Expected::AtMost(MAX_ENTRIES as u64),
        out.len() as u64,
    ))
}

/// Build an (unsealed) xattr block holding `attrs` = (name index, name
/// suffix, value): entries from byte 32 in the given order, values packed
/// down from the end of the block, each padded to 4 bytes. `None` when
/// they do not fit in one block. The caller sets `h_checksum`.
pub fn encode_block(attrs: &[(u8, &[u8], &[u8])]) -> Option<Vec<u8>> {
    let mut block = vec![0u8; BLOCK_SIZE];
    let mut h = XattrHeader::new_zeroed();
    h.h_magic.set(XATTR_MAGIC);
    h.h_refcount.set(1);
    h.h_blocks.set(1);
    block[..32].copy_from_slice(h.as_bytes());
    let (mut pos, mut value_end) = (FIRST_ENTRY, BLOCK_SIZE);
    for (index, name, value) in attrs {
        let entry_len = (16 + name.len() + 3) & !3;
        let vstart = value_end.checked_sub((value.len() + 3) & !3)?;
        if name.len() > 255 || pos + entry_len + 4 > vstart {
            return None;
        }
        let mut e = XattrEntry::new_zeroed();
        e.e_name_len = name.len() as u8;
        e.e_name_index = *index;
        e.e_value_offs.set(vstart as u16);
        e.e_value_size.set(value.len() as u32);
        block[pos..pos + 16].copy_from_slice(e.as_bytes());
        block[pos + 16..pos + 16 + name.len()].copy_from_slice(name);
        block[vstart..vstart + value.len()].copy_from_slice(value);
        pos += entry_len;
        value_end = vstart;
    }
    Some(block)
}

/// Field layouts for the spec-offset test.
pub fn layouts() -> Vec<Layout> {
    vec![
        layout(
            "XattrHeader",
            32,
            crate::layout_of!(XattrHeader {
                h_magic,
                h_refcount,
                h_blocks,
                h_hash,
                h_checksum,
                h_reserved
            }),
        ),
        layout(
            "XattrEntry",
            16,
            crate::layout_of!(XattrEntry {
                e_name_len,
                e_name_index,
                e_value_offs,
                e_value_inum,
                e_value_size,
                e_hash
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_with_one(seed: u32) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK_SIZE];
        let mut h = XattrHeader::new_zeroed();
        h.h_magic.set(XATTR_MAGIC);
        h.h_refcount.set(1);
        h.h_blocks.set(1);
        b[..32].copy_from_slice(h.as_bytes());
        let mut e = XattrEntry::new_zeroed();
        e.e_name_len = 7;
        e.e_name_index = 1;
        e.e_value_offs.set((BLOCK_SIZE - 8) as u16);
        e.e_value_size.set(5);
        b[32..48].copy_from_slice(e.as_bytes());
        b[48..55].copy_from_slice(b"comment");
        b[BLOCK_SIZE - 8..BLOCK_SIZE - 3].copy_from_slice(b"hello");
        let c = block_checksum(&b, 3, seed);
        b[16..20].copy_from_slice(&c.to_le_bytes());
        b
    }

    #[test]
    fn decodes_name_and_value() {
        let b = block_with_one(9);
        let xs = parse_block(&b, 3, Some(9)).unwrap();
        assert_eq!(xs.len(), 1);
        assert_eq!(xs[0].full_name(), "user.comment");
        assert_eq!(xs[0].value, b"hello");
    }

    #[test]
    fn encoded_blocks_parse_back() {
        let block = encode_block(&[(1, b"a", b"1"), (4, b"bb", &[9; 100])]).unwrap();
        let parsed = parse_block(&block, 0, None).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].value, &[9; 100][..]);
        assert!(encode_block(&[(1, b"x", &[0; 4100])]).is_none());
    }

    #[test]
    fn value_offset_out_of_block_is_rejected() {
        let mut b = block_with_one(9);
        b[34..36].copy_from_slice(&4095u16.to_le_bytes());
        let e = parse_block(&b, 3, None).unwrap_err();
        assert_eq!(e.corruption().unwrap().field, "e_value_offs");
    }

    #[test]
    fn flips_are_detected_with_checksums() {
        let b = block_with_one(9);
        for i in (0..BLOCK_SIZE).step_by(61) {
            let mut c = b.clone();
            c[i] ^= 0x20;
            assert!(parse_block(&c, 3, Some(9)).is_err(), "flip at {i}");
        }
    }
}
