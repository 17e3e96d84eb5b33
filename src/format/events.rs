//! The semantic event ring (format-spec/11-events.md).
//!
//! Region `s_vx_event_start .. + s_vx_event_blocks`: block 0 is the
//! [`EventRingHeader`], blocks 1.. hold variable-length records, each an
//! [`EventRecord`] header followed by up to two names, padded to 8 bytes. A
//! record never straddles a block; the unused end of a block is zero. The
//! ring drops the oldest whole block when it needs space, and the header
//! records exactly which sequence numbers remain.

use super::{checksum, layout, Layout, Le16, Le32, Le64, BLOCK_SIZE};
use crate::error::{Expected, FsError, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `er_magic`: "VXEV".
pub const EVENT_RING_MAGIC: u32 = 0x5645_5856;
/// `ev_magic` of every record.
pub const EVENT_MAGIC: u16 = 0xE5E7;
/// Record alignment.
pub const EVENT_ALIGN: usize = 8;
/// Largest record: header + two 255-byte names, aligned.
pub const MAX_EVENT_LEN: usize = (core::mem::size_of::<EventRecord>() + 510).div_ceil(8) * 8;
/// Most records a ring block can hold (bounds per-block loops).
pub const MAX_EVENTS_PER_BLOCK: usize = BLOCK_SIZE / core::mem::size_of::<EventRecord>();
/// Smallest event region mkfs creates.
pub const MIN_EVENT_BLOCKS: u64 = 16;

/// Operation codes (`ev_op`), format-spec/11 §11.4.
pub const OPS: &[(u16, &str)] = &[
    (1, "create"),
    (2, "mkdir"),
    (3, "mknod"),
    (4, "symlink"),
    (5, "link"),
    (6, "unlink"),
    (7, "rmdir"),
    (8, "rename"),
    (9, "write"),
    (10, "truncate"),
    (11, "setattr"),
    (12, "setxattr"),
    (13, "removexattr"),
    (14, "vector_attach"),
    (15, "vector_detach"),
    (16, "collection_create"),
    (17, "collection_drop"),
    (18, "search"),
    (19, "mount"),
    (20, "unmount"),
];

/// Block 0 of the event region, format-spec/11 §11.2.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct EventRingHeader {
    pub er_magic: Le32,
    pub er_version: Le32,
    pub er_ring_blocks: Le64,
    pub er_next_seq: Le64,
    pub er_oldest_seq: Le64,
    pub er_head_block: Le64,
    pub er_head_offset: Le32,
    pub er_tail_block: Le32,
    pub er_dropped: Le64,
    pub er_reserved: [u8; 12],
    pub er_checksum: Le32,
}

/// Header of one event record, format-spec/11 §11.3.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct EventRecord {
    pub ev_magic: Le16,
    pub ev_len: Le16,
    pub ev_op: Le16,
    pub ev_flags: Le16,
    pub ev_seq: Le64,
    pub ev_time_sec: Le64,
    pub ev_time_nsec: Le32,
    pub ev_uid: Le32,
    pub ev_pid: Le32,
    pub ev_name_len: Le16,
    pub ev_name2_len: Le16,
    pub ev_ino: Le64,
    pub ev_parent: Le64,
    pub ev_ino2: Le64,
    pub ev_parent2: Le64,
    pub ev_aux: Le64,
    pub ev_checksum: Le32,
    pub ev_reserved: Le32,
}

const _: () = assert!(core::mem::size_of::<EventRingHeader>() == 72);
const _: () = assert!(core::mem::size_of::<EventRecord>() == 88);
const _: () = assert!(MAX_EVENT_LEN <= BLOCK_SIZE);

/// Checksum of the ring header (seed, block number, all but er_checksum).
pub fn header_checksum(bytes: &[u8], block_no: u64, seed: u32) -> u32 {
    checksum::csum_skipping(seed, block_no, bytes.get(..72).unwrap_or(bytes), 68)
}

/// Checksum of a record: seed, its sequence number, then its `ev_len` bytes
/// without `ev_checksum`.
pub fn record_checksum(record: &[u8], seq: u64, seed: u32) -> u32 {
    checksum::csum_skipping(seed, seq, record, 80)
}

/// Parse and verify the ring header at `block_no`.
pub fn parse_header(block: &[u8], block_no: u64, seed: u32, region_blocks: u64) -> Result<&EventRingHeader> {
    let base = block_no.saturating_mul(BLOCK_SIZE as u64);
    let (h, _) = EventRingHeader::ref_from_prefix(block).map_err(|_| {
        FsError::corrupt(
            "event ring header",
            base,
            "size",
            Expected::AtLeast(72),
            block.len() as u64,
        )
    })?;
    let bad = |off: u64, field, exp, act: u64| FsError::corrupt("event ring header", base + off, field, exp, act);
    if h.er_magic.get() != EVENT_RING_MAGIC {
        return Err(bad(
            0,
            "er_magic",
            Expected::Eq(EVENT_RING_MAGIC.into()),
            h.er_magic.get().into(),
        ));
    }
    let want = header_checksum(block, block_no, seed);
    if h.er_checksum.get() != want {
        return Err(bad(
            68,
            "er_checksum",
            Expected::Eq(want.into()),
            h.er_checksum.get().into(),
        ));
    }
    let ring = region_blocks.saturating_sub(1);
    if h.er_ring_blocks.get() != ring {
        return Err(bad(8, "er_ring_blocks", Expected::Eq(ring), h.er_ring_blocks.get()));
    }
    if h.er_oldest_seq.get() > h.er_next_seq.get() {
        return Err(bad(
            24,
            "er_oldest_seq",
            Expected::AtMost(h.er_next_seq.get()),
            h.er_oldest_seq.get(),
        ));
    }
    if h.er_head_block.get() >= ring {
        return Err(bad(32, "er_head_block", Expected::Below(ring), h.er_head_block.get()));
    }
    if u64::from(h.er_tail_block.get()) >= ring {
        return Err(bad(
            44,
            "er_tail_block",
            Expected::Below(ring),
            h.er_tail_block.get().into(),
        ));
    }
    if h.er_head_offset.get() as usize > BLOCK_SIZE {
        return Err(bad(
            40,
            "er_head_offset",
            Expected::AtMost(BLOCK_SIZE as u64),
            h.er_head_offset.get().into(),
        ));
    }
    Ok(h)
}

/// Name of an operation code.
pub fn op_name(op: u16) -> &'static str {
    OPS.iter().find(|(c, _)| *c == op).map_or("unknown", |(_, n)| n)
}

/// Field layouts for the spec-offset test.
pub fn layouts() -> Vec<Layout> {
    vec![
        layout(
            "EventRingHeader",
            72,
            crate::layout_of!(EventRingHeader {
                er_magic,
                er_version,
                er_ring_blocks,
                er_next_seq,
                er_oldest_seq,
                er_head_block,
                er_head_offset,
                er_tail_block,
                er_dropped,
                er_reserved,
                er_checksum
            }),
        ),
        layout(
            "EventRecord",
            88,
            crate::layout_of!(EventRecord {
                ev_magic,
                ev_len,
                ev_op,
                ev_flags,
                ev_seq,
                ev_time_sec,
                ev_time_nsec,
                ev_uid,
                ev_pid,
                ev_name_len,
                ev_name2_len,
                ev_ino,
                ev_parent,
                ev_ino2,
                ev_parent2,
                ev_aux,
                ev_checksum,
                ev_reserved
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn header_checks_sequence_order_and_checksum() {
        let mut h = EventRingHeader::new_zeroed();
        h.er_magic.set(EVENT_RING_MAGIC);
        h.er_ring_blocks.set(15);
        h.er_next_seq.set(1);
        h.er_oldest_seq.set(1);
        let mut b = vec![0u8; BLOCK_SIZE];
        b[..72].copy_from_slice(h.as_bytes());
        let c = header_checksum(&b, 9, 4);
        b[68..72].copy_from_slice(&c.to_le_bytes());
        parse_header(&b, 9, 4, 16).unwrap();
        for i in 0..72 {
            let mut x = b.clone();
            x[i] ^= 0x01;
            assert!(parse_header(&x, 9, 4, 16).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn op_names_are_known() {
        assert_eq!(op_name(8), "rename");
        assert_eq!(op_name(999), "unknown");
    }
}
