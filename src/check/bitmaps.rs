//! Bitmaps against what the scan found, free counters, and the ring headers.

use super::tree::State;
use super::{Kind, Report};
use crate::format::bitmap::{self, BITS_PER_TAILED_BLOCK, TAILED_BITS_BYTES};
use crate::format::{events, features, journal};
use crate::image::Image;
use crate::layout::Region;

/// Collapses runs of mismatching bits into one problem line per run.
struct RunReporter<'r> {
    what: &'static str,
    run: Option<(u64, u64, bool)>,
    report: &'r mut Report,
}

impl RunReporter<'_> {
    fn note(&mut self, n: u64, marked: bool) {
        match &mut self.run {
            Some((_, end, m)) if *end == n && *m == marked => *end = n + 1,
            _ => {
                self.flush();
                self.run = Some((n, n + 1, marked));
            }
        }
    }

    fn flush(&mut self) {
        if let Some((s, e, marked)) = self.run.take() {
            let range = if e - s == 1 {
                format!("{} {s}", self.what)
            } else {
                format!("{}s {s}..{}", self.what, e - 1)
            };
            let (msg, kind) = if marked {
                (
                    "marked in use in the bitmap but not used (leaked)",
                    Kind::LeakedBlocks { start: s, end: e },
                )
            } else {
                (
                    "in use but marked free in the bitmap",
                    Kind::UnmarkedBlocks { start: s, end: e },
                )
            };
            self.report.add_kind(range, msg, kind);
        }
    }
}

/// Parse every tailed block of a bitmap region; returns the raw bits of
/// each block (damaged blocks are reported and read anyway).
fn leaves<'a>(img: &'a Image, region: Region, name: &str, report: &mut Report) -> Vec<&'a [u8]> {
    let seed = img.geometry().csum_seed;
    let mut out = Vec::new();
    for i in 0..region.blocks {
        let n = region.start + i;
        let Ok(block) = img.block(n) else { break };
        if let Err(e) = bitmap::parse_tailed(block, n, seed, BITS_PER_TAILED_BLOCK) {
            report.add_err_kind(format!("{name} block {n}"), &e, Kind::BitmapBlock { block: n });
        }
        out.push(&block[..TAILED_BITS_BYTES]);
    }
    out
}

fn bit(leaves: &[&[u8]], per: u64, n: u64) -> bool {
    leaves
        .get((n / per) as usize)
        .is_some_and(|b| bitmap::test_bit(b, n % per))
}

/// Summary bit i is set exactly when leaf i has no free bit.
fn check_summary(leaves: &[&[u8]], summary: &[&[u8]], name: &str, report: &mut Report) {
    let per = BITS_PER_TAILED_BLOCK;
    for (i, leaf) in leaves.iter().enumerate() {
        let full = bitmap::count_zeros(leaf, per) == 0;
        if bit(summary, per, i as u64) != full {
            report.add_kind(
                format!("{name} summary bit {i}"),
                format!(
                    "says {} but the leaf is {}",
                    if full { "free space" } else { "full" },
                    if full { "full" } else { "not full" }
                ),
                Kind::SummaryBit {
                    inodes: name == "inode",
                    leaf: i as u64,
                },
            );
        }
    }
}

/// Compare the block and inode bitmaps with the scan, and the free counters.
pub fn check(img: &Image, state: &State<'_>, report: &mut Report) {
    let g = img.geometry();
    let sb = img.superblock();
    let (bits, per): (Vec<&[u8]>, u64) = if g.is_kernel_layout() {
        (
            img.block(g.block_bitmap.start).map(|b| vec![b]).unwrap_or_default(),
            g.bits_per_bitmap_block(),
        )
    } else {
        let l = leaves(img, g.block_bitmap, "block bitmap", report);
        let s = leaves(img, g.block_summary, "block summary", report);
        check_summary(&l, &s, "block", report);
        (l, BITS_PER_TAILED_BLOCK)
    };
    let mut runs = RunReporter {
        what: "block",
        run: None,
        report,
    };
    let mut free = 0u64;
    for b in 0..g.blocks_count {
        let marked = bit(&bits, per, b);
        let used = b < g.first_data_block || state.used_blocks.get(b) || Some(b) == g.backup_superblock();
        if marked != used {
            runs.note(b, marked);
        }
        free += u64::from(!marked);
    }
    runs.flush();
    if free != sb.free_blocks() {
        report.add_kind(
            "superblock",
            format!(
                "s_free_blocks is {} but the bitmap has {free} free blocks",
                sb.free_blocks()
            ),
            Kind::FreeBlocks,
        );
    }
    report.blocks_in_use = g.blocks_count - free;
    check_inodes(img, state, report);
}

fn check_inodes(img: &Image, state: &State<'_>, report: &mut Report) {
    let g = img.geometry();
    let sb = img.superblock();
    let count = u64::from(g.inodes_count);
    let free = if g.is_kernel_layout() {
        (1..=count).filter(|&n| !state.allocated.get(n)).count() as u64
    } else {
        let l = leaves(img, g.inode_bitmap, "inode bitmap", report);
        let s = leaves(img, g.inode_summary, "inode summary", report);
        check_summary(&l, &s, "inode", report);
        (0..count).filter(|&i| !bit(&l, BITS_PER_TAILED_BLOCK, i)).count() as u64
    };
    if free != u64::from(sb.s_free_inodes.get()) {
        report.add_kind(
            "superblock",
            format!("s_free_inodes is {} but {free} inodes are free", sb.s_free_inodes.get()),
            Kind::FreeInodes,
        );
    }
}

/// The journal superblock and the event ring header.
pub fn check_rings(img: &Image, report: &mut Report) {
    let g = img.geometry();
    let seed = img.superblock().s_checksum_seed.get();
    if g.features.has_compat(features::COMPAT_HAS_JOURNAL) {
        match img.block(g.journal.start).and_then(|b| {
            journal::parse_superblock(b, g.journal.start, seed, g.journal.blocks).map(|j| j.js_start.get())
        }) {
            Ok(0) => {}
            Ok(start) => report.add(
                "journal",
                format!("holds transactions from ring block {start} that need replay"),
            ),
            Err(e) => report.add_err("journal superblock", &e),
        }
    }
    // needs_recovery with an empty journal is harmless: the next logged
    // commit clears it (format-spec/10-journal.md §10.12).
    if g.features.has_ro_compat(features::RO_COMPAT_EVENTS) {
        if let Err(e) = img
            .block(g.events.start)
            .and_then(|b| events::parse_header(b, g.events.start, seed, g.events.blocks).map(|_| ()))
        {
            report.add_err_kind("event ring header", &e, Kind::EventRingHeader);
        }
    }
}

/// A damaged backup is rewritten from the primary, unless the primary is
/// damaged too (then the backup is what the image was read with).
fn backup_kind(img: &Image) -> Kind {
    if img.primary_superblock_error().is_some() {
        Kind::Other
    } else {
        Kind::BackupSuperblock
    }
}

/// Superblock fields that open() tolerates but a clean image must have.
pub fn check_superblock_fields(img: &Image, report: &mut Report) {
    let g = img.geometry();
    let sb = img.superblock();
    let want_first = if g.is_kernel_layout() {
        66
    } else {
        g.first_data_block as u32
    };
    if sb.s_first_data_block.get() != want_first {
        report.add(
            "superblock",
            format!(
                "s_first_data_block is {} but should be {want_first}",
                sb.s_first_data_block.get()
            ),
        );
    }
    if g.features.has_incompat(features::INCOMPAT_DIR_HASH) && sb.s_def_hash_version != 1 {
        report.add(
            "superblock",
            format!(
                "s_def_hash_version is {} (expected 1 with dir_hash)",
                sb.s_def_hash_version
            ),
        );
    }
    if let Some(e) = img.primary_superblock_error() {
        report.add_kind(
            "superblock",
            format!("primary damaged, the backup was used: {e}"),
            Kind::PrimarySuperblock,
        );
    }
    if let Some(b) = g.backup_superblock() {
        match img.block(b).map(crate::format::superblock::Superblock::parse) {
            Ok(Ok(backup)) if backup.s_uuid == sb.s_uuid && backup.blocks_count() == sb.blocks_count() => {}
            Ok(Err(e)) => report.add_kind(
                format!("backup superblock (block {b})"),
                e.at_image_offset(b * crate::format::BLOCK_SIZE_U64).to_string(),
                backup_kind(img),
            ),
            _ => report.add_kind(
                format!("backup superblock (block {b})"),
                "missing or describes another image",
                backup_kind(img),
            ),
        }
    }
    if !g.is_kernel_layout() && (sb.s_vx_flags.get() != 0 || sb.s_vx_reserved.iter().any(|&b| b != 0)) {
        report.add("superblock", "s_vx_flags or s_vx_reserved is not zero");
    }
}
