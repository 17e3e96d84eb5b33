//! Replay after a crash (format-spec/10-journal.md §10.10): scan from
//! `js_start`, keep every complete transaction, honour revokes, write the
//! blocks home, then mark the journal empty. Idempotent: a crash during
//! replay is replayed again by the next mount. Its cost grows with the
//! journal, not the image.

use super::{next_pos, pos_block, region_range, ring_len, REVOKES_PER_BLOCK};
use crate::error::{Expected, FsError, Result};
use crate::format::checksum::structure_csum;
use crate::format::journal::{
    self as fj, JournalHeader, JournalTag, JOURNAL_MAGIC, RECORD_CSUM_OFFSET, TAGS_PER_DESCRIPTOR,
};
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64};
use crate::image::Media;
use crate::layout::Geometry;
use std::collections::HashMap;
use zerocopy::FromBytes;

/// One logged block: home block number, ring position of its copy, escaped.
pub type Tag = (u64, u64, bool);

/// What a scan found.
#[derive(Debug, Default, Clone)]
pub struct Scan {
    /// Complete transactions, in order: (sequence, tags).
    pub txs: Vec<(u64, Vec<Tag>)>,
    /// Highest revoking sequence per block.
    pub revoked: HashMap<u64, u64>,
    /// Sequence the journal continues with.
    pub next_seq: u64,
    /// Whether replay is needed at all (`js_start` != 0).
    pub needed: bool,
}

fn record<'a>(bytes: &'a [u8], g: &Geometry, seed: u32, pos: u64, seq: u64) -> Option<(&'a [u8], u32)> {
    let at = (pos_block(g, pos) * BLOCK_SIZE_U64) as usize;
    let b = bytes.get(at..at + BLOCK_SIZE)?;
    let (h, _) = JournalHeader::ref_from_prefix(b).ok()?;
    let stored = u32::from_le_bytes(b[RECORD_CSUM_OFFSET..].try_into().ok()?);
    let ok = h.jh_magic.get() == JOURNAL_MAGIC
        && (1..=3).contains(&h.jh_blocktype.get())
        && h.jh_sequence.get() == seq
        && fj::record_checksum(b, pos, seed) == stored;
    ok.then_some((b, h.jh_blocktype.get()))
}

/// The home content of a logged block (un-escaped).
fn data_block(bytes: &[u8], g: &Geometry, pos: u64, escaped: bool) -> [u8; BLOCK_SIZE] {
    let at = (pos_block(g, pos) * BLOCK_SIZE_U64) as usize;
    let mut out = [0u8; BLOCK_SIZE];
    out.copy_from_slice(&bytes[at..at + BLOCK_SIZE]);
    if escaped {
        out[..4].copy_from_slice(&JOURNAL_MAGIC.to_le_bytes());
    }
    out
}

fn bad(g: &Geometry, pos: u64, off: u64, field: &'static str, exp: Expected, act: u64) -> FsError {
    FsError::corrupt(
        "journal record",
        pos_block(g, pos) * BLOCK_SIZE_U64 + off,
        field,
        exp,
        act,
    )
}

/// Scan the ring without changing anything.
pub fn scan(bytes: &[u8], g: &Geometry, seed: u32) -> Result<Scan> {
    let js = super::superblock(bytes, g, seed)?;
    let mut out = Scan {
        next_seq: js.js_sequence.get(),
        needed: js.js_start.get() != 0,
        ..Scan::default()
    };
    if !out.needed {
        return Ok(out);
    }
    let (mut pos, mut seq, mut seen) = (js.js_start.get(), js.js_sequence.get(), 0u64);
    let mut discarded_seen = false;
    'tx: loop {
        let (mut tags, mut sums, mut revokes) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            seen += 1;
            if seen > ring_len(g) {
                break 'tx;
            }
            let Some((b, kind)) = record(bytes, g, seed, pos, seq) else {
                break 'tx;
            };
            discarded_seen = true;
            match kind {
                fj::BLOCKTYPE_DESCRIPTOR => {
                    for k in 0..TAGS_PER_DESCRIPTOR {
                        let t = JournalTag::ref_from_bytes(&b[16 + 16 * k..32 + 16 * k])
                            .map_err(|_| bad(g, pos, 16, "t_blocknr", Expected::Known, 0))?;
                        let (home, flags) = (t.t_blocknr.get(), t.t_flags.get());
                        if home >= g.blocks_count || g.journal.contains(home) {
                            return Err(bad(
                                g,
                                pos,
                                16 + 16 * k as u64,
                                "t_blocknr",
                                Expected::Below(g.blocks_count),
                                home,
                            ));
                        }
                        if flags & !(fj::TAG_ESCAPED | fj::TAG_LAST) != 0 {
                            return Err(bad(
                                g,
                                pos,
                                24 + 16 * k as u64,
                                "t_flags",
                                Expected::AtMost(3),
                                flags.into(),
                            ));
                        }
                        pos = next_pos(g, pos);
                        seen += 1;
                        let data = data_block(bytes, g, pos, flags & fj::TAG_ESCAPED != 0);
                        if structure_csum(seed, home, &[&seq.to_le_bytes(), &data]) != t.t_checksum.get() {
                            break 'tx;
                        }
                        sums.extend_from_slice(&t.t_checksum.get().to_le_bytes());
                        tags.push((home, pos, flags & fj::TAG_ESCAPED != 0));
                        if flags & fj::TAG_LAST != 0 {
                            break;
                        }
                    }
                }
                fj::BLOCKTYPE_REVOKE => {
                    let n = u32::from_le_bytes(b[16..20].try_into().unwrap_or_default()) as usize;
                    if n > REVOKES_PER_BLOCK {
                        return Err(bad(
                            g,
                            pos,
                            16,
                            "r_count",
                            Expected::AtMost(REVOKES_PER_BLOCK as u64),
                            n as u64,
                        ));
                    }
                    revokes.extend(
                        (0..n).map(|i| u64::from_le_bytes(b[24 + 8 * i..32 + 8 * i].try_into().unwrap_or_default())),
                    );
                }
                _ => {
                    let blocks = u32::from_le_bytes(b[28..32].try_into().unwrap_or_default()) as usize;
                    let sum = u32::from_le_bytes(b[32..36].try_into().unwrap_or_default());
                    if blocks != tags.len() || sum != structure_csum(seed, seq, &[&sums]) {
                        break 'tx;
                    }
                    for r in revokes {
                        let e = out.revoked.entry(r).or_insert(seq);
                        *e = (*e).max(seq);
                    }
                    out.txs.push((seq, tags));
                    seq += 1;
                    pos = next_pos(g, pos);
                    discarded_seen = false;
                    continue 'tx;
                }
            }
            pos = next_pos(g, pos);
        }
    }
    out.next_seq = seq + u64::from(discarded_seen);
    Ok(out)
}

/// Replay the journal into the image; returns the transactions applied.
pub fn recover(media: &mut dyn Media, g: &Geometry, seed: u32) -> Result<usize> {
    let s = scan(media.bytes(), g, seed)?;
    if !s.needed {
        return Ok(0);
    }
    for (seq, tags) in &s.txs {
        for &(home, pos, escaped) in tags {
            if s.revoked.get(&home).is_some_and(|r| r >= seq) {
                continue;
            }
            let data = data_block(media.bytes(), g, pos, escaped);
            let at = (home * BLOCK_SIZE_U64) as usize;
            media.bytes_mut()?[at..at + BLOCK_SIZE].copy_from_slice(&data);
        }
    }
    media.flush(None)?;
    super::commit::write_js(media, g, seed, 0, s.next_seq)?;
    media.flush(Some(region_range(g)))?;
    // needs_recovery stays set until the next logged commit clears it
    // (the superblock is never written in place).
    Ok(s.txs.len())
}
