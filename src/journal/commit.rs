//! Writing transactions into the ring and checkpointing
//! (format-spec/10-journal.md §10.8-10.9, §10.12).

use super::{next_pos, pos_block, region_range, ring_len, tx_blocks, REVOKES_PER_BLOCK};
use crate::error::{FsError, Result};
use crate::format::checksum::structure_csum;
use crate::format::features::INCOMPAT_RECOVER;
use crate::format::journal::{self as fj, JournalHeader, JOURNAL_MAGIC, RECORD_CSUM_OFFSET, TAGS_PER_DESCRIPTOR};
use crate::format::superblock::Superblock;
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64};
use crate::image::Media;
use crate::layout::Geometry;
use std::borrow::Cow;
use std::collections::HashSet;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Staged metadata blocks, by home block number. A hash map: every read
/// of a transaction looks here first, so lookups must be cheap; commit
/// sorts the entries, so the ring's contents stay in block order.
pub type Staged = rustc_hash::FxHashMap<u64, Box<[u8; BLOCK_SIZE]>>;

/// The writer's view of the ring (kept in memory while mounted).
#[derive(Debug, Clone)]
pub struct JournalState {
    seed: u32,
    /// Next ring position to write.
    head: u64,
    next_seq: u64,
    /// `js_start` as on disk (0 = nothing to replay).
    start: u64,
    /// Ring blocks between `start` and `head`.
    used: u64,
    /// Blocks logged since the last checkpoint (they need revokes if freed).
    logged: HashSet<u64>,
}

impl JournalState {
    /// State of a journal with nothing to replay (after recovery).
    pub fn load(media: &dyn Media, g: &Geometry, seed: u32) -> Result<JournalState> {
        let js = super::superblock(media.bytes(), g, seed)?;
        if js.js_start.get() != 0 {
            return Err(FsError::Invalid("the journal needs replay before use".into()));
        }
        Ok(JournalState {
            seed,
            head: 1,
            next_seq: js.js_sequence.get(),
            start: 0,
            used: 0,
            logged: HashSet::new(),
        })
    }

    /// Ring blocks in use (for deciding when to commit or checkpoint).
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Was `block` logged since the last checkpoint?
    pub fn is_logged(&self, block: u64) -> bool {
        self.logged.contains(&block)
    }

    /// The blocks replay could still write (logged since the last
    /// checkpoint and not revoked since).
    pub fn logged(&self) -> &HashSet<u64> {
        &self.logged
    }
}

/// Write whole blocks: `writes` (block number, bytes), each run of
/// consecutive block numbers with one [`Media::write_at`] call (home
/// blocks come sorted; ring blocks in ring order, which breaks a run only
/// where the ring wraps).
fn write_blocks(media: &mut dyn Media, writes: &[(u64, &[u8])]) -> Result<()> {
    let mut rest = writes;
    while let Some(&(first, _)) = rest.first() {
        let run = 1 + rest.windows(2).take_while(|w| w[1].0 == w[0].0 + 1).count();
        let parts: Vec<&[u8]> = rest[..run].iter().map(|&(_, d)| d).collect();
        media.write_at(first * BLOCK_SIZE_U64, &parts)?;
        rest = &rest[run..];
    }
    Ok(())
}

fn header(kind: u32, seq: u64) -> JournalHeader {
    let mut h = JournalHeader::new_zeroed();
    h.jh_magic.set(JOURNAL_MAGIC);
    h.jh_blocktype.set(kind);
    h.jh_sequence.set(seq);
    h
}

/// Seal a record with its ring-position checksum.
fn sealed(seed: u32, pos: u64, mut rec: Vec<u8>) -> Vec<u8> {
    let c = fj::record_checksum(&rec, pos, seed);
    rec[RECORD_CSUM_OFFSET..].copy_from_slice(&c.to_le_bytes());
    rec
}

/// Seal a record with its ring-position checksum and write it.
fn write_record(media: &mut dyn Media, g: &Geometry, seed: u32, pos: u64, rec: Vec<u8>) -> Result<()> {
    let rec = sealed(seed, pos, rec);
    write_blocks(media, &[(pos_block(g, pos), &rec)])
}

/// Rewrite the journal superblock's start and sequence.
pub(super) fn write_js(media: &mut dyn Media, g: &Geometry, seed: u32, start: u64, seq: u64) -> Result<()> {
    // Start from whichever copy is valid, so a damaged primary is rewritten
    // whole rather than patched (and never copied over the backup).
    let mut js = super::superblock(media.bytes(), g, seed)?.clone();
    js.js_start.set(start);
    js.js_sequence.set(seq);
    let at = (g.journal.start * BLOCK_SIZE_U64) as usize;
    let bytes = &mut media.bytes_mut()?[at..at + BLOCK_SIZE];
    bytes[..72].copy_from_slice(js.as_bytes());
    let c = fj::superblock_checksum(bytes, g.journal.start, seed);
    bytes[68..72].copy_from_slice(&c.to_le_bytes());
    // The backup copy (format-spec/10 §10.2) in another sector of the block.
    bytes.copy_within(0..72, fj::BACKUP_OFFSET);
    Ok(())
}

/// Put block 0 into the transaction with `needs_recovery` set (`on`) or
/// cleared. The superblock is never written in place: it reaches home only
/// as a logged block, so a torn superblock write is always repaired by
/// replay (format-spec/10-journal.md §10.12).
pub fn stage_recover_flag(media: &dyn Media, staged: &mut Staged, on: bool) -> Result<()> {
    let b0 = staged.entry(0).or_insert_with(|| {
        let mut copy = Box::new([0u8; BLOCK_SIZE]);
        copy.copy_from_slice(&media.bytes()[..BLOCK_SIZE]);
        copy
    });
    let (sb, _) = Superblock::mut_from_prefix(&mut b0[..]).map_err(|_| FsError::Invalid("superblock view".into()))?;
    let f = sb.s_feature_incompat.get();
    sb.s_feature_incompat.set(if on {
        f | INCOMPAT_RECOVER
    } else {
        f & !INCOMPAT_RECOVER
    });
    sb.update_checksum();
    Ok(())
}

/// Log `staged` (and revokes of freed, previously logged blocks) as one
/// transaction, make it durable, then copy the blocks home. Data blocks
/// already in the map become durable in the same flush as the records,
/// before the commit record (ordered mode). With `clean`, the
/// logged superblock has `needs_recovery` cleared (the last commit before
/// unmount); otherwise set.
pub fn commit(
    media: &mut dyn Media,
    g: &Geometry,
    js: &mut JournalState,
    staged: &mut Staged,
    freed: &[u64],
    clean: bool,
) -> Result<()> {
    commit_ordered(media, g, js, staged, freed, clean, true)
}

/// [`commit`], told whether file data was written since the image was
/// last flushed whole (`data_written`). Without such data the flush before
/// the commit record covers only the journal region: home blocks of
/// earlier commits need not be durable until the checkpoint (which
/// flushes everything), so pages a build rewrites over and over are not
/// written back at every commit.
pub fn commit_ordered(
    media: &mut dyn Media,
    g: &Geometry,
    js: &mut JournalState,
    staged: &mut Staged,
    freed: &[u64],
    clean: bool,
    data_written: bool,
) -> Result<()> {
    stage_recover_flag(media, staged, !clean)?;
    let revokes: Vec<u64> = freed.iter().copied().filter(|b| js.logged.contains(b)).collect();
    let need = tx_blocks(staged.len(), revokes.len());
    if need > ring_len(g) {
        return Err(FsError::NoSpace);
    }
    if js.used + need > ring_len(g) {
        checkpoint(media, g, js)?;
    }
    if js.start == 0 {
        // Written in the same flush epoch as the records: until the commit
        // record below is durable, a ring that starts here holds nothing.
        write_js(media, g, js.seed, js.head, js.next_seq)?;
        js.start = js.head;
    }
    let (seq, seed) = (js.next_seq, js.seed);
    let mut pos = js.head;
    for chunk in revokes.chunks(REVOKES_PER_BLOCK) {
        let mut rec = vec![0u8; BLOCK_SIZE];
        rec[..16].copy_from_slice(header(fj::BLOCKTYPE_REVOKE, seq).as_bytes());
        rec[16..20].copy_from_slice(&(chunk.len() as u32).to_le_bytes());
        for (i, b) in chunk.iter().enumerate() {
            rec[24 + 8 * i..32 + 8 * i].copy_from_slice(&b.to_le_bytes());
        }
        write_record(media, g, seed, pos, rec)?;
        pos = next_pos(g, pos);
    }
    let mut entries: Vec<(&u64, &Box<[u8; BLOCK_SIZE]>)> = staged.iter().collect();
    entries.sort_unstable_by_key(|e| *e.0);
    let mut tag_sums = Vec::with_capacity(entries.len() * 4);
    // Every ring block is gathered first, then written: consecutive
    // positions in one call each.
    // Each descriptor's slot is reserved ahead of its blocks and filled
    // once their tags are known.
    let mut ring: Vec<(u64, Cow<[u8]>)> = Vec::with_capacity(entries.len() + entries.len() / 64 + 1);
    for chunk in entries.chunks(TAGS_PER_DESCRIPTOR) {
        let desc_pos = pos;
        let desc_at = ring.len();
        ring.push((pos_block(g, desc_pos), Cow::Borrowed(&[])));
        pos = next_pos(g, pos);
        let mut desc = vec![0u8; BLOCK_SIZE];
        desc[..16].copy_from_slice(header(fj::BLOCKTYPE_DESCRIPTOR, seq).as_bytes());
        for (i, (&block, data)) in chunk.iter().enumerate() {
            let sum = structure_csum(seed, block, &[&seq.to_le_bytes(), &data[..]]);
            tag_sums.extend_from_slice(&sum.to_le_bytes());
            let escaped = data[..4] == JOURNAL_MAGIC.to_le_bytes();
            let mut tag = fj::JournalTag::new_zeroed();
            tag.t_blocknr.set(block);
            tag.t_flags
                .set((u32::from(escaped) * fj::TAG_ESCAPED) | (u32::from(i + 1 == chunk.len()) * fj::TAG_LAST));
            tag.t_checksum.set(sum);
            desc[16 + 16 * i..32 + 16 * i].copy_from_slice(tag.as_bytes());
            let logged = if escaped {
                let mut copy = data.to_vec();
                copy[..4].fill(0);
                Cow::Owned(copy)
            } else {
                Cow::Borrowed(&data[..])
            };
            ring.push((pos_block(g, pos), logged));
            pos = next_pos(g, pos);
        }
        ring[desc_at].1 = Cow::Owned(sealed(seed, desc_pos, desc));
    }
    let writes: Vec<(u64, &[u8])> = ring.iter().map(|(b, d)| (*b, &d[..])).collect();
    write_blocks(media, &writes)?;
    // One flush for the data blocks already in the map (ordered mode) and
    // the records above: both must be durable before the commit record is
    // written, and neither needs to be before the other. Without new file
    // data, the journal region is enough.
    media.flush(if data_written { None } else { Some(region_range(g)) })?;
    let mut rec = vec![0u8; BLOCK_SIZE];
    rec[..16].copy_from_slice(header(fj::BLOCKTYPE_COMMIT, seq).as_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut body = fj::CommitBody::new_zeroed();
    body.c_commit_sec.set(now.as_secs());
    body.c_commit_nsec.set(now.subsec_nanos());
    body.c_data_blocks.set(entries.len() as u32);
    body.c_data_checksum.set(structure_csum(seed, seq, &[&tag_sums]));
    rec[16..40].copy_from_slice(body.as_bytes());
    write_record(media, g, seed, pos, rec)?;
    media.flush(Some(region_range(g)))?;
    js.head = next_pos(g, pos);
    js.used += need;
    js.next_seq += 1;
    let home: Vec<(u64, &[u8])> = entries.iter().map(|&(&b, d)| (b, &d[..])).collect();
    js.logged.extend(home.iter().map(|&(b, _)| b));
    // A revoked block's older copies are never replayed again: it may be
    // reused outside the journal (file data, a bulk load's files) without
    // another revoke.
    for b in &revokes {
        js.logged.remove(b);
    }
    write_blocks(media, &home)?;
    drop((home, entries));
    staged.clear();
    Ok(())
}

/// Make every home block durable and empty the ring.
pub fn checkpoint(media: &mut dyn Media, g: &Geometry, js: &mut JournalState) -> Result<()> {
    media.flush(None)?;
    write_js(media, g, js.seed, 0, js.next_seq)?;
    media.flush(Some(region_range(g)))?;
    js.start = 0;
    js.used = 0;
    js.head = 1;
    js.logged.clear();
    Ok(())
}
