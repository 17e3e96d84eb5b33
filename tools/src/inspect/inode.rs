//! `inode`: every field of one inode, its block mappings, its extent tree
//! blocks and its extended attributes.

use super::{
    display_name, kv, mode_octal, resolve_target, type_name, utc, warn, write_json, CmdResult, Failure, Status,
};
use serde::Serialize;
use std::io::Write;
use vexfs::format::inode::{
    join_seconds, parse_inode, FileType, InodeNo, InodeView, Timestamp, APPEND_FL, EXTENTS_FL, IMMUTABLE_FL, INDEX_FL,
    VECTOR_FL,
};
use vexfs::format::xattr;
use vexfs::image::Image;

/// Known `i_flags` bits and their names.
const FLAG_NAMES: &[(u32, &str)] = &[
    (IMMUTABLE_FL, "immutable"),
    (APPEND_FL, "append"),
    (INDEX_FL, "index"),
    (EXTENTS_FL, "extents"),
    (VECTOR_FL, "vector"),
];

/// A timestamp with its UTC rendering.
#[derive(Debug, Serialize)]
pub struct Time {
    pub sec: i64,
    pub nsec: u32,
    pub utc: String,
}

impl From<Timestamp> for Time {
    fn from(t: Timestamp) -> Self {
        Time {
            sec: t.sec,
            nsec: t.nsec,
            utc: utc(t.sec),
        }
    }
}

/// The large-inode extension fields.
#[derive(Debug, Serialize)]
pub struct ExtFields {
    pub extra_isize: u16,
    pub checksum: u32,
    pub crtime: Time,
    pub blocks_hi: u32,
    pub vector_slot: u64,
    /// `i_vector_coll`: collection id + 1 (0 = no vector).
    pub vector_coll: u32,
    pub next_orphan: u32,
    pub projid: u32,
}

/// One mapped run of the file.
#[derive(Debug, Serialize)]
pub struct MappingRow {
    pub logical: u64,
    pub physical: u64,
    pub len: u64,
    pub unwritten: bool,
}

/// One extended attribute (value shown by length only).
#[derive(Debug, Serialize)]
pub struct XattrRow {
    pub name: String,
    pub value_len: usize,
}

/// Everything `inode` shows.
#[derive(Debug, Serialize)]
pub struct InodeReport {
    pub inode: u32,
    pub offset: u64,
    pub free: bool,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub mode: String,
    pub mode_raw: u16,
    pub links: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub blocks_512: u64,
    pub flags: u32,
    pub flag_names: Vec<String>,
    pub generation: u32,
    pub atime: Time,
    pub ctime: Time,
    pub mtime: Time,
    pub xattr_block: u64,
    pub rdev: u32,
    pub i_block: Vec<u32>,
    pub ext: Option<ExtFields>,
    pub symlink_target: Option<String>,
    pub mappings: Vec<MappingRow>,
    pub extent_tree_blocks: Vec<u64>,
    pub xattrs: Vec<XattrRow>,
}

fn flag_names(flags: u32) -> Vec<String> {
    let mut names: Vec<String> = FLAG_NAMES
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let unknown = FLAG_NAMES.iter().fold(flags, |f, (b, _)| f & !b);
    if unknown != 0 {
        names.push(format!("{unknown:#x}"));
    }
    names
}

/// Build the report for `ino`; parts that cannot be read become problems.
pub fn report(img: &Image, ino: InodeNo, view: &InodeView<'_>) -> (InodeReport, Vec<String>) {
    let b = view.base;
    let mut problems = Vec::new();
    let [atime, ctime, mtime] = view.times();
    let ext = view.ext.map(|e| ExtFields {
        extra_isize: e.i_extra_isize.get(),
        checksum: e.i_checksum.get(),
        crtime: Timestamp {
            sec: join_seconds(e.i_crtime.get(), e.i_crtime_hi.get()),
            nsec: e.i_crtime_nsec.get(),
        }
        .into(),
        blocks_hi: e.i_blocks_hi.get(),
        vector_slot: e.i_vector_slot.get(),
        vector_coll: e.i_vector_coll.get(),
        next_orphan: e.i_next_orphan.get(),
        projid: e.i_projid.get(),
    });
    let mut r = InodeReport {
        inode: ino.get(),
        offset: img.geometry().inode_offset(ino),
        free: b.is_free(),
        kind: type_name(b.file_type()),
        mode: mode_octal(b.mode()),
        mode_raw: b.mode(),
        links: b.i_links_count.get(),
        uid: b.i_uid.get(),
        gid: b.i_gid.get(),
        size: b.i_size.get(),
        blocks_512: view.blocks_512(),
        flags: b.flags(),
        flag_names: flag_names(b.flags()),
        generation: b.i_generation.get(),
        atime: atime.into(),
        ctime: ctime.into(),
        mtime: mtime.into(),
        xattr_block: view.xattr_block(),
        rdev: view.rdev(),
        i_block: b.i_block.iter().map(|w| w.get()).collect(),
        ext,
        symlink_target: None,
        mappings: Vec::new(),
        extent_tree_blocks: Vec::new(),
        xattrs: Vec::new(),
    };
    if r.free {
        return (r, problems);
    }
    if b.file_type() == Some(FileType::Symlink) {
        match img.read_link(ino) {
            Ok(t) => r.symlink_target = Some(display_name(&t)),
            Err(e) => problems.push(format!("symlink target: {e}")),
        }
    }
    match img.mappings(ino, view) {
        Ok(maps) => {
            r.mappings = maps
                .iter()
                .map(|m| MappingRow {
                    logical: m.logical,
                    physical: m.physical,
                    len: m.len,
                    unwritten: m.unwritten,
                })
                .collect()
        }
        Err(e) => problems.push(format!("mappings: {e}")),
    }
    match img.extent_tree_blocks(ino, view) {
        Ok(blocks) => r.extent_tree_blocks = blocks,
        Err(e) => problems.push(format!("extent tree: {e}")),
    }
    if r.xattr_block != 0 {
        let parsed = img.block(r.xattr_block).and_then(|blk| {
            let list = xattr::parse_block(blk, r.xattr_block, img.geometry().csum_seed)?;
            Ok(list
                .iter()
                .map(|x| XattrRow {
                    name: display_name(x.full_name().as_bytes()),
                    value_len: x.value.len(),
                })
                .collect())
        });
        match parsed {
            Ok(rows) => r.xattrs = rows,
            Err(e) => problems.push(format!("xattr block: {e}")),
        }
    }
    (r, problems)
}

/// Parse inode `ino`. A never-written (all-zero) inode is shown as free
/// instead of failing its checksum.
fn read_inode(img: &Image, ino: InodeNo) -> Result<InodeView<'_>, Failure> {
    let g = img.geometry();
    let off = g.inode_offset(ino);
    let zeroed = img.bytes_at(off, g.inode_size).is_ok_and(|b| b.iter().all(|&x| x == 0));
    let r = if zeroed {
        img.bytes_at(off, g.inode_size)
            .and_then(|b| parse_inode(b, ino.get(), off, None))
    } else {
        img.inode(ino)
    };
    r.map_err(|e| Failure::fs(&format!("inode {}", ino.get()), e))
}

/// Run `inode`.
pub fn run(img: &Image, target: &str, json: bool, out: &mut dyn Write) -> CmdResult {
    let ino = resolve_target(img, target)?;
    let view = read_inode(img, ino)?;
    let (r, problems) = report(img, ino, &view);
    if json {
        write_json(out, &r)?;
    } else {
        write_text(&r, out)?;
    }
    for p in &problems {
        warn(&format!("inode {}: {p}", ino.get()));
    }
    Ok(if problems.is_empty() {
        Status::Clean
    } else {
        Status::Problems
    })
}

fn time_line(t: &Time) -> String {
    format!("{}.{:09} ({})", t.sec, t.nsec, t.utc)
}

fn write_text(r: &InodeReport, out: &mut dyn Write) -> std::io::Result<()> {
    kv(out, "inode", format!("{} (image byte {})", r.inode, r.offset))?;
    if r.free {
        kv(out, "state", "free (i_mode 0)")?;
    }
    kv(out, "type", r.kind)?;
    kv(out, "mode", format!("{} ({:#o})", r.mode, r.mode_raw))?;
    kv(out, "links", r.links)?;
    kv(out, "uid / gid", format!("{} / {}", r.uid, r.gid))?;
    kv(out, "size", r.size)?;
    kv(out, "blocks (512 B)", r.blocks_512)?;
    kv(out, "flags", format!("{:#x} [{}]", r.flags, r.flag_names.join(" ")))?;
    kv(out, "generation", r.generation)?;
    kv(out, "atime", time_line(&r.atime))?;
    kv(out, "ctime", time_line(&r.ctime))?;
    kv(out, "mtime", time_line(&r.mtime))?;
    if let Some(e) = &r.ext {
        kv(out, "crtime", time_line(&e.crtime))?;
        kv(out, "extra isize", e.extra_isize)?;
        kv(out, "checksum", format!("{:#010x}", e.checksum))?;
        let coll = match e.vector_coll {
            0 => "none".to_string(),
            c => format!("collection id {} slot {}", c - 1, e.vector_slot),
        };
        kv(out, "vector", coll)?;
        kv(out, "next orphan", e.next_orphan)?;
        kv(out, "project id", e.projid)?;
    }
    kv(out, "xattr block", r.xattr_block)?;
    if matches!(r.kind, "char_device" | "block_device") {
        kv(out, "rdev", format!("{:#x}", r.rdev))?;
    }
    if r.flags & EXTENTS_FL == 0 {
        let words: Vec<String> = r.i_block.iter().map(u32::to_string).collect();
        kv(out, "i_block", words.join(" "))?;
    }
    if let Some(t) = &r.symlink_target {
        kv(out, "symlink target", t)?;
    }
    if !r.free {
        writeln!(out, "mappings ({}):", r.mappings.len())?;
        writeln!(out, "  {:>12} {:>14} {:>10}", "logical", "physical", "blocks")?;
        for m in &r.mappings {
            writeln!(
                out,
                "  {:>12} {:>14} {:>10}{}",
                m.logical,
                m.physical,
                m.len,
                if m.unwritten { "  unwritten" } else { "" }
            )?;
        }
        let tree: Vec<String> = r.extent_tree_blocks.iter().map(u64::to_string).collect();
        kv(
            out,
            "extent tree blocks",
            if tree.is_empty() {
                "(none)".to_string()
            } else {
                tree.join(" ")
            },
        )?;
    }
    for x in &r.xattrs {
        kv(out, "xattr", format!("{} ({} bytes)", x.name, x.value_len))?;
    }
    Ok(())
}
