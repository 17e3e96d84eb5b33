//! `blocks`: block and inode usage counted from the bitmaps, next to the
//! superblock's free counts.

use super::superblock::{region_rows, RegionRow};
use super::{kv, write_json, CmdResult};
use serde::Serialize;
use std::io::Write;
use vexfs::format::bitmap::{self, count_zeros, BITS_PER_KERNEL_BLOCK, BITS_PER_TAILED_BLOCK, TAILED_BITS_BYTES};
use vexfs::image::Image;
use vexfs::layout::Region;

/// Used/free counts of one bitmap-tracked resource.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Usage {
    pub total: u64,
    pub used: u64,
    pub free: u64,
}

/// Everything `blocks` shows.
#[derive(Debug, Serialize)]
pub struct BlocksReport {
    pub layout: &'static str,
    pub blocks_count: u64,
    pub first_data_block: u64,
    pub regions: Vec<RegionRow>,
    /// All blocks, from the block bitmap.
    pub blocks: Usage,
    /// Data blocks (first_data_block ..), from the block bitmap.
    pub data_blocks: Usage,
    /// Metadata blocks whose bitmap bit is clear (should be 0).
    pub metadata_marked_free: u64,
    pub superblock_free_blocks: u64,
    /// Inodes, from the inode bitmap (kernel layout: i_mode != 0).
    pub inodes: Usage,
    pub superblock_free_inodes: u32,
}

/// Zero bits among bits `from..to` of `bits`.
fn zeros_between(bits: &[u8], from: u64, to: u64) -> u64 {
    if from >= to {
        return 0;
    }
    count_zeros(bits, to) - count_zeros(bits, from)
}

/// Count free bits of a tailed bitmap region covering `valid` items, and
/// those among items `from..to`. Leaves failing their checks are counted
/// from their raw bits and reported as problems.
fn tailed_free(
    img: &Image,
    leaves: Region,
    valid: u64,
    from: u64,
    to: u64,
    what: &str,
    problems: &mut Vec<String>,
) -> (u64, u64) {
    let per = BITS_PER_TAILED_BLOCK;
    let (mut all, mut range) = (0, 0);
    for i in 0..leaves.blocks {
        let lo = i.saturating_mul(per);
        if lo >= valid {
            break;
        }
        let n = (valid - lo).min(per);
        let block_no = leaves.start + i;
        let block = match img.block(block_no) {
            Ok(b) => b,
            Err(e) => {
                problems.push(format!("{what} bitmap block {block_no}: {e}"));
                continue;
            }
        };
        if let Err(e) = bitmap::parse_tailed(block, block_no, img.geometry().csum_seed, n) {
            problems.push(e.to_string());
        }
        let bits = &block[..TAILED_BITS_BYTES];
        all += count_zeros(bits, n);
        range += zeros_between(bits, from.clamp(lo, lo + n) - lo, to.clamp(lo, lo + n) - lo);
    }
    (all, range)
}

fn usage(total: u64, free: u64) -> Usage {
    Usage {
        total,
        used: total.saturating_sub(free),
        free,
    }
}

/// Build the report.
pub fn report(img: &Image) -> (BlocksReport, Vec<String>) {
    let g = img.geometry();
    let sb = img.superblock();
    let mut problems = Vec::new();
    let (count, fdb) = (g.blocks_count, g.first_data_block);
    let (free_all, free_data, inodes_free) = if g.is_kernel_layout() {
        let (all, data) = match img.block(g.block_bitmap.start) {
            Ok(bits) => (
                count_zeros(bits, count.min(BITS_PER_KERNEL_BLOCK)),
                zeros_between(bits, fdb, count),
            ),
            Err(e) => {
                problems.push(format!("block bitmap: {e}"));
                (0, 0)
            }
        };
        (all, data, kernel_free_inodes(img, &mut problems))
    } else {
        let (all, data) = tailed_free(img, g.block_bitmap, count, fdb, count, "block", &mut problems);
        let inodes = u64::from(g.inodes_count);
        let (ifree, _) = tailed_free(img, g.inode_bitmap, inodes, 0, 0, "inode", &mut problems);
        (all, data, ifree)
    };
    let data_blocks = usage(count.saturating_sub(fdb), free_data);
    let report = BlocksReport {
        layout: if g.is_kernel_layout() { "kernel" } else { "v1" },
        blocks_count: count,
        first_data_block: fdb,
        regions: region_rows(img),
        blocks: usage(count, free_all),
        metadata_marked_free: free_all.saturating_sub(free_data),
        data_blocks,
        superblock_free_blocks: sb.free_blocks(),
        inodes: usage(g.inodes_count.into(), inodes_free),
        superblock_free_inodes: sb.s_free_inodes.get(),
    };
    (report, problems)
}

/// Kernel layout: an inode is free iff its i_mode is 0.
fn kernel_free_inodes(img: &Image, problems: &mut Vec<String>) -> u64 {
    let g = img.geometry();
    let mut free = 0;
    for n in 1..=g.inodes_count {
        let Some(ino) = g.inode_no(n) else { continue };
        match img.bytes_at(g.inode_offset(ino), 2) {
            Ok(m) if m == [0, 0] => free += 1,
            Ok(_) => {}
            Err(e) => problems.push(format!("inode {n}: {e}")),
        }
    }
    free
}

/// Run `blocks`.
pub fn run(img: &Image, json: bool, out: &mut dyn Write) -> CmdResult {
    let (r, mut problems) = report(img);
    if r.metadata_marked_free > 0 {
        problems.push(format!(
            "{} metadata blocks (before block {}) are marked free in the block bitmap",
            r.metadata_marked_free, r.first_data_block
        ));
    }
    if json {
        write_json(out, &r)?;
    } else {
        write_text(&r, out)?;
    }
    Ok(super::finish(&problems))
}

fn write_text(r: &BlocksReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{:<16}{:>14}{:>14}", "region", "start", "blocks")?;
    for reg in &r.regions {
        writeln!(out, "{:<16}{:>14}{:>14}", reg.name, reg.start, reg.blocks)?;
    }
    writeln!(
        out,
        "{:<16}{:>14}{:>14}",
        "data", r.first_data_block, r.data_blocks.total
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<16}{:>14}{:>14}{:>14}{:>16}",
        "", "total", "used", "free", "superblock free"
    )?;
    let row = |out: &mut dyn Write, name: &str, u: &Usage, sb: Option<u64>| {
        let sb = sb.map_or(String::new(), |v| v.to_string());
        writeln!(out, "{name:<16}{:>14}{:>14}{:>14}{sb:>16}", u.total, u.used, u.free)
    };
    row(out, "blocks", &r.blocks, Some(r.superblock_free_blocks))?;
    row(out, "data blocks", &r.data_blocks, None)?;
    row(out, "inodes", &r.inodes, Some(r.superblock_free_inodes.into()))?;
    if r.blocks.free != r.superblock_free_blocks {
        kv(
            out,
            "note",
            format!(
                "the superblock counts {} free blocks, the bitmap {}",
                r.superblock_free_blocks, r.blocks.free
            ),
        )?;
    }
    if r.inodes.free != u64::from(r.superblock_free_inodes) {
        kv(
            out,
            "note",
            format!(
                "the superblock counts {} free inodes, the bitmap {}",
                r.superblock_free_inodes, r.inodes.free
            ),
        )?;
    }
    Ok(())
}
