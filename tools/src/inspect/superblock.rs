//! `super`: the superblock, the region table, and on v1 images the journal
//! superblock, the event ring header and the collection catalogue.

use super::catalog::{self, Catalog};
use super::{kv, utc, write_json, CmdResult};
use serde::Serialize;
use std::io::Write;
use vexfs::format::cursor::view_at;
use vexfs::format::events::{self, EventRingHeader};
use vexfs::format::journal::{self, JournalSuperblock};
use vexfs::format::superblock::{Superblock, STATE_DIRTY, STATE_ERROR, STATE_VALID};
use vexfs::format::BLOCK_SIZE_U64;
use vexfs::image::Image;
use vexfs::layout::Region;
use vexfs::mkfs::format_uuid;

/// One metadata region.
#[derive(Debug, Serialize)]
pub struct RegionRow {
    pub name: &'static str,
    pub start: u64,
    pub blocks: u64,
}

/// The regions of `img` in disk order (Geometry::regions()).
pub fn region_rows(img: &Image) -> Vec<RegionRow> {
    img.geometry()
        .regions()
        .into_iter()
        .map(|(name, Region { start, blocks })| RegionRow { name, start, blocks })
        .collect()
}

/// Block 0 of the journal region.
#[derive(Debug, Serialize)]
pub struct JournalInfo {
    pub block: u64,
    pub region_blocks: u64,
    pub version: u32,
    pub max_len: u32,
    pub first: u32,
    pub start: u64,
    pub sequence: u64,
    pub errno: i32,
    pub uuid: String,
}

/// Block 0 of the event region.
#[derive(Debug, Serialize)]
pub struct EventInfo {
    pub block: u64,
    pub region_blocks: u64,
    pub version: u32,
    pub ring_blocks: u64,
    pub next_seq: u64,
    pub oldest_seq: u64,
    pub dropped: u64,
    pub head_block: u64,
    pub head_offset: u32,
    pub tail_block: u32,
}

/// Everything `super` shows.
#[derive(Debug, Serialize)]
pub struct SuperReport {
    pub magic: String,
    pub label: String,
    pub uuid: String,
    pub layout: &'static str,
    pub layout_version: u32,
    pub block_size: u32,
    pub blocks_count: u64,
    pub free_blocks: u64,
    pub inodes_count: u32,
    pub free_inodes: u32,
    pub first_data_block: u64,
    pub first_ino: u32,
    pub inode_size: u16,
    pub state: u16,
    pub state_names: Vec<&'static str>,
    pub errors_behaviour: u16,
    pub mount_count: u16,
    pub max_mount_count: u16,
    pub rev_level: u32,
    pub mkfs_time: i64,
    pub write_time: i64,
    pub mount_time: i64,
    pub last_check: i64,
    pub features: Vec<String>,
    pub feature_compat: u32,
    pub feature_incompat: u32,
    pub feature_ro_compat: u32,
    pub checksum_type: u8,
    pub checksum_seed: Option<u32>,
    pub checksum: u32,
    pub hash_seed: u32,
    pub hash_version: u8,
    pub catalog_ino: u32,
    pub regions: Vec<RegionRow>,
    pub journal: Option<JournalInfo>,
    pub events: Option<EventInfo>,
    pub catalog: Option<Catalog>,
}

fn hi_time(lo: u32, hi: u8) -> i64 {
    (i64::from(hi) << 32) | i64::from(lo)
}

fn state_names(state: u16) -> Vec<&'static str> {
    [(STATE_VALID, "clean"), (STATE_ERROR, "errors"), (STATE_DIRTY, "dirty")]
        .into_iter()
        .filter(|(bit, _)| state & bit != 0)
        .map(|(_, n)| n)
        .collect()
}

/// Build the report; structures that fail their checks are still shown
/// raw when possible, and the failures are returned as problems.
pub fn report(img: &Image) -> (SuperReport, Vec<String>) {
    let sb: &Superblock = img.superblock();
    let g = img.geometry();
    let f = g.features;
    let mut problems = Vec::new();
    let mut r = SuperReport {
        magic: format!("{:#010x}", sb.s_magic.get()),
        label: sb.volume_name(),
        uuid: format_uuid(&sb.s_uuid),
        layout: if g.is_kernel_layout() { "kernel" } else { "v1" },
        layout_version: sb.s_vx_layout_version.get(),
        block_size: sb.s_block_size.get(),
        blocks_count: g.blocks_count,
        free_blocks: sb.free_blocks(),
        inodes_count: g.inodes_count,
        free_inodes: sb.s_free_inodes.get(),
        first_data_block: g.first_data_block,
        first_ino: g.first_ino,
        inode_size: sb.s_inode_size.get(),
        state: sb.s_state.get(),
        state_names: state_names(sb.s_state.get()),
        errors_behaviour: sb.s_errors.get(),
        mount_count: sb.s_mnt_count.get(),
        max_mount_count: sb.s_max_mnt_count.get(),
        rev_level: sb.s_rev_level.get(),
        mkfs_time: sb.mkfs_time(),
        write_time: hi_time(sb.s_wtime.get(), sb.s_wtime_hi),
        mount_time: hi_time(sb.s_mtime.get(), sb.s_mtime_hi),
        last_check: hi_time(sb.s_lastcheck.get(), sb.s_lastcheck_hi),
        features: f.names(),
        feature_compat: f.compat,
        feature_incompat: f.incompat,
        feature_ro_compat: f.ro_compat,
        checksum_type: sb.s_checksum_type,
        checksum_seed: g.csum_seed,
        checksum: sb.s_checksum.get(),
        hash_seed: g.hash_seed,
        hash_version: sb.s_def_hash_version,
        catalog_ino: sb.s_vx_catalog_ino.get(),
        regions: region_rows(img),
        journal: None,
        events: None,
        catalog: None,
    };
    if !g.is_kernel_layout() {
        r.journal = journal_info(img, &mut problems);
        r.events = event_info(img, &mut problems);
        match catalog::read(img, g.csum_seed) {
            Ok(c) => r.catalog = c,
            Err(e) => problems.push(format!("collection catalogue: {e}")),
        }
    }
    (r, problems)
}

fn journal_info(img: &Image, problems: &mut Vec<String>) -> Option<JournalInfo> {
    let region = img.geometry().journal;
    if region.blocks == 0 {
        return None;
    }
    let block = match img.block(region.start) {
        Ok(b) => b,
        Err(e) => {
            problems.push(format!("journal superblock: {e}"));
            return None;
        }
    };
    if let Some(seed) = img.geometry().csum_seed {
        if let Err(e) = journal::parse_superblock(block, region.start, seed, region.blocks) {
            problems.push(e.to_string());
        }
    }
    let js: &JournalSuperblock = view_at(block, 0, region.start * BLOCK_SIZE_U64, "journal superblock").ok()?;
    Some(JournalInfo {
        block: region.start,
        region_blocks: region.blocks,
        version: js.js_version.get(),
        max_len: js.js_max_len.get(),
        first: js.js_first.get(),
        start: js.js_start.get(),
        sequence: js.js_sequence.get(),
        errno: js.js_errno.get(),
        uuid: format_uuid(&js.js_uuid),
    })
}

fn event_info(img: &Image, problems: &mut Vec<String>) -> Option<EventInfo> {
    let region = img.geometry().events;
    if region.blocks == 0 {
        return None;
    }
    let block = match img.block(region.start) {
        Ok(b) => b,
        Err(e) => {
            problems.push(format!("event ring header: {e}"));
            return None;
        }
    };
    if let Some(seed) = img.geometry().csum_seed {
        if let Err(e) = events::parse_header(block, region.start, seed, region.blocks) {
            problems.push(e.to_string());
        }
    }
    let h: &EventRingHeader = view_at(block, 0, region.start * BLOCK_SIZE_U64, "event ring header").ok()?;
    Some(EventInfo {
        block: region.start,
        region_blocks: region.blocks,
        version: h.er_version.get(),
        ring_blocks: h.er_ring_blocks.get(),
        next_seq: h.er_next_seq.get(),
        oldest_seq: h.er_oldest_seq.get(),
        dropped: h.er_dropped.get(),
        head_block: h.er_head_block.get(),
        head_offset: h.er_head_offset.get(),
        tail_block: h.er_tail_block.get(),
    })
}

/// Run `super`.
pub fn run(img: &Image, json: bool, out: &mut dyn Write) -> CmdResult {
    let (r, problems) = report(img);
    if json {
        write_json(out, &r)?;
    } else {
        write_text(&r, out)?;
    }
    Ok(super::finish(&problems))
}

fn write_text(r: &SuperReport, out: &mut dyn Write) -> std::io::Result<()> {
    kv(out, "magic", &r.magic)?;
    kv(out, "label", format!("\"{}\"", super::display_name(r.label.as_bytes())))?;
    kv(out, "uuid", &r.uuid)?;
    let version = if r.layout == "v1" {
        format!(" (layout version {})", r.layout_version)
    } else {
        String::new()
    };
    kv(out, "layout", format!("{}{version}", r.layout))?;
    kv(out, "block size", r.block_size)?;
    kv(out, "blocks", format!("{} ({} free)", r.blocks_count, r.free_blocks))?;
    kv(out, "inodes", format!("{} ({} free)", r.inodes_count, r.free_inodes))?;
    kv(out, "first data block", r.first_data_block)?;
    kv(out, "first inode", r.first_ino)?;
    kv(out, "inode size", r.inode_size)?;
    kv(out, "state", format!("{:#06x} ({})", r.state, r.state_names.join(", ")))?;
    kv(out, "errors behaviour", r.errors_behaviour)?;
    kv(
        out,
        "mount count",
        format!("{} (max {})", r.mount_count, r.max_mount_count),
    )?;
    kv(out, "revision", r.rev_level)?;
    for (k, t) in [
        ("created", r.mkfs_time),
        ("last write", r.write_time),
        ("last mount", r.mount_time),
        ("last check", r.last_check),
    ] {
        kv(
            out,
            k,
            if t == 0 {
                "never".to_string()
            } else {
                format!("{} ({t})", utc(t))
            },
        )?;
    }
    let names = if r.features.is_empty() {
        "(none)".to_string()
    } else {
        r.features.join(" ")
    };
    kv(out, "features", names)?;
    kv(
        out,
        "feature words",
        format!(
            "compat {:#x}, incompat {:#x}, ro_compat {:#x}",
            r.feature_compat, r.feature_incompat, r.feature_ro_compat
        ),
    )?;
    match r.checksum_seed {
        Some(s) => kv(
            out,
            "checksums",
            format!(
                "crc32 (type {}), seed {s:#010x}, superblock {:#010x}",
                r.checksum_type, r.checksum
            ),
        )?,
        None => kv(out, "checksums", "none")?,
    }
    if r.layout == "v1" {
        kv(
            out,
            "dir hash",
            format!("version {}, seed {:#010x}", r.hash_version, r.hash_seed),
        )?;
        kv(out, "catalogue inode", r.catalog_ino)?;
    }
    writeln!(out, "\n{:<16}{:>14}{:>14}", "region", "start", "blocks")?;
    for reg in &r.regions {
        writeln!(out, "{:<16}{:>14}{:>14}", reg.name, reg.start, reg.blocks)?;
    }
    writeln!(
        out,
        "{:<16}{:>14}{:>14}",
        "data",
        r.first_data_block,
        r.blocks_count.saturating_sub(r.first_data_block)
    )?;
    if let Some(j) = &r.journal {
        writeln!(out, "\njournal (block {}, {} blocks)", j.block, j.region_blocks)?;
        kv(out, "  version", j.version)?;
        kv(out, "  max_len", j.max_len)?;
        kv(out, "  first", j.first)?;
        kv(
            out,
            "  start",
            format!("{}{}", j.start, if j.start == 0 { " (empty)" } else { "" }),
        )?;
        kv(out, "  sequence", j.sequence)?;
        kv(out, "  errno", j.errno)?;
    }
    if let Some(e) = &r.events {
        writeln!(out, "\nevent ring (block {}, {} blocks)", e.block, e.region_blocks)?;
        kv(out, "  ring blocks", e.ring_blocks)?;
        kv(out, "  next_seq", e.next_seq)?;
        kv(out, "  oldest_seq", e.oldest_seq)?;
        kv(out, "  dropped", e.dropped)?;
        kv(
            out,
            "  head",
            format!("block {} offset {}", e.head_block, e.head_offset),
        )?;
        kv(out, "  tail block", e.tail_block)?;
    }
    if let Some(c) = &r.catalog {
        writeln!(
            out,
            "\ncollection catalogue (version {}, generation {}, next id {}, {} bytes)",
            c.version, c.generation, c.next_id, c.len
        )?;
        let w = c
            .collections
            .iter()
            .map(|col| col.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(4)
            + 2;
        writeln!(
            out,
            "  {:>4} {:<w$}{:>7} {:<8}{:<6}{:>5}{:>8}{:>10}",
            "id", "name", "dim", "metric", "type", "M", "ef_c", "node ino"
        )?;
        for col in &c.collections {
            writeln!(
                out,
                "  {:>4} {:<w$}{:>7} {:<8}{:<6}{:>5}{:>8}{:>10}",
                col.id, col.name, col.dim, col.metric, col.elem_type, col.m, col.ef_construction, col.node_ino
            )?;
        }
        if c.collections.is_empty() {
            writeln!(out, "  (no collections)")?;
        }
    }
    Ok(())
}
