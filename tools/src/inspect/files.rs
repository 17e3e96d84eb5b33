//! `tree` (a recursive listing) and `cat` (a file's bytes).

use super::{
    display_name, hex, mode_octal, resolve_path, type_letter, type_name, write_json, CmdResult, Failure, Status,
};
use serde::Serialize;
use std::collections::HashSet;
use std::io::Write;
use vexfs::format::inode::{FileType, InodeNo};
use vexfs::format::BLOCK_SIZE_U64;
use vexfs::image::Image;
use vexfs::read::{Mapping, MAX_LOGICAL_BLOCKS};

/// Deepest listing: a path of 4096 bytes has at most 2048 components.
pub const MAX_DEPTH: usize = 2048;
/// Bytes `cat` reads at a time.
pub const CHUNK: usize = 1 << 20;
/// Largest file `cat --json` prints (as hex).
pub const MAX_JSON_CAT: u64 = 64 << 10;

/// One listed file.
#[derive(Debug, Serialize)]
pub struct TreeEntry {
    pub path: String,
    pub inode: u32,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub mode: String,
    pub links: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip)]
    letter: char,
    #[serde(skip)]
    depth: usize,
}

struct Frame {
    ino: InodeNo,
    path: String,
    depth: usize,
}

fn join(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Walk from `start` (depth-first, names sorted) with an explicit stack;
/// a visited set of directory inodes stops cycles. Returns the entries
/// and the problems met.
pub fn walk(img: &Image, start: InodeNo, start_path: &str, max_depth: usize) -> (Vec<TreeEntry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut visited = HashSet::new();
    let mut stack = vec![Frame {
        ino: start,
        path: start_path.to_string(),
        depth: 0,
    }];
    while let Some(f) = stack.pop() {
        let view = match img.inode(f.ino) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{} (inode {}): {e}", f.path, f.ino.get()));
                continue;
            }
        };
        let b = view.base;
        let ft = b.file_type();
        let target = (ft == Some(FileType::Symlink)).then(|| match img.read_link(f.ino) {
            Ok(t) => display_name(&t),
            Err(e) => {
                problems.push(format!("{}: cannot read link: {e}", f.path));
                "?".to_string()
            }
        });
        entries.push(TreeEntry {
            path: f.path.clone(),
            inode: f.ino.get(),
            kind: type_name(ft),
            mode: mode_octal(b.mode()),
            links: b.i_links_count.get(),
            uid: b.i_uid.get(),
            gid: b.i_gid.get(),
            size: b.i_size.get(),
            target,
            letter: type_letter(ft),
            depth: f.depth,
        });
        if ft != Some(FileType::Directory) || f.depth >= max_depth.min(MAX_DEPTH) {
            continue;
        }
        if !visited.insert(f.ino.get()) {
            problems.push(format!(
                "{}: directory inode {} was already listed (a cycle or a hard-linked directory); not descending",
                f.path,
                f.ino.get()
            ));
            continue;
        }
        let mut children = match img.read_dir(f.ino) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("{}: cannot read directory: {e}", f.path));
                continue;
            }
        };
        children.retain(|e| e.name != b"." && e.name != b"..");
        children.sort_by(|a, b| a.name.cmp(&b.name));
        for e in children.into_iter().rev() {
            let path = join(&f.path, &display_name(&e.name));
            match img.inode_no(e.inode) {
                Ok(ino) => stack.push(Frame {
                    ino,
                    path,
                    depth: f.depth + 1,
                }),
                Err(err) => problems.push(format!("{path}: {err}")),
            }
        }
    }
    (entries, problems)
}

/// Run `tree`.
pub fn tree(img: &Image, path: &str, max_depth: usize, json: bool, out: &mut dyn Write) -> CmdResult {
    let ino = resolve_path(img, path)?;
    let shown = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let (entries, problems) = walk(img, ino, &shown, max_depth);
    if json {
        write_json(out, &entries)?;
    } else {
        for e in &entries {
            let name = if e.depth == 0 {
                e.path.clone()
            } else {
                e.path.rsplit('/').next().unwrap_or_default().to_string()
            };
            let link = e.target.as_ref().map(|t| format!(" -> {t}")).unwrap_or_default();
            writeln!(
                out,
                "{}{} {:>5} {:>6} {:>6} {:>12} {:>10}  {}{name}{link}",
                e.letter,
                e.mode,
                e.links,
                e.uid,
                e.gid,
                e.size,
                e.inode,
                "  ".repeat(e.depth)
            )?;
        }
    }
    Ok(super::finish(&problems))
}

#[derive(Serialize)]
struct CatJson<'a> {
    path: &'a str,
    size: u64,
    hex: String,
}

/// Fill `buf` with file bytes from `offset`, using the sorted `maps`
/// (holes and unwritten extents read as zeros). `first` is advanced past
/// mappings that end before `offset`, so a sequential read is linear.
fn fill(img: &Image, maps: &[Mapping], first: &mut usize, offset: u64, buf: &mut [u8]) -> Result<(), Failure> {
    buf.fill(0);
    let end = offset + buf.len() as u64;
    while maps
        .get(*first)
        .is_some_and(|m| (m.logical + m.len) * BLOCK_SIZE_U64 <= offset)
    {
        *first += 1;
    }
    for m in &maps[*first..] {
        let (ms, me) = (m.logical * BLOCK_SIZE_U64, (m.logical + m.len) * BLOCK_SIZE_U64);
        if ms >= end {
            break;
        }
        let (s, e) = (ms.max(offset), me.min(end));
        if s >= e || m.unwritten {
            continue;
        }
        let src = img
            .bytes_at(m.physical * BLOCK_SIZE_U64 + (s - ms), (e - s) as usize)
            .map_err(|e| Failure::fs("", e))?;
        buf[(s - offset) as usize..(e - offset) as usize].copy_from_slice(src);
    }
    Ok(())
}

/// Run `cat`: the file's bytes to `out`, 1 MiB at a time.
pub fn cat(img: &Image, path: &str, json: bool, out: &mut dyn Write) -> CmdResult {
    let ino = resolve_path(img, path)?;
    let view = img.inode(ino).map_err(|e| Failure::fs(path, e))?;
    match view.base.file_type() {
        Some(FileType::Regular) => {}
        Some(FileType::Directory) => return Err(Failure::Usage(format!("{path}: is a directory"))),
        t => return Err(Failure::Usage(format!("{path}: not a regular file ({})", type_name(t)))),
    }
    let size = view.base.i_size.get();
    let max = MAX_LOGICAL_BLOCKS * BLOCK_SIZE_U64;
    if size > max {
        return Err(Failure::Corrupt(format!(
            "{path}: i_size {size} exceeds the largest possible file ({max} bytes)"
        )));
    }
    if json && size > MAX_JSON_CAT {
        return Err(Failure::Usage(format!(
            "{path}: {size} bytes; --json prints files of at most {MAX_JSON_CAT} bytes"
        )));
    }
    let maps = img.mappings(ino, &view).map_err(|e| Failure::fs(path, e))?;
    let mut first = 0;
    let mut buf = vec![0u8; CHUNK.min(size as usize)];
    let mut hex_out = String::new();
    let mut offset = 0u64;
    while offset < size {
        let n = (size - offset).min(CHUNK as u64) as usize;
        fill(img, &maps, &mut first, offset, &mut buf[..n])?;
        if json {
            hex_out.push_str(&hex(&buf[..n]));
        } else {
            out.write_all(&buf[..n])?;
        }
        offset += n as u64;
    }
    if json {
        write_json(
            out,
            &CatJson {
                path,
                size,
                hex: hex_out,
            },
        )?;
    }
    out.flush()?;
    Ok(Status::Clean)
}
