//! Repair of inodes and the directory tree: `i_blocks`, entry file types,
//! "." and "..", entries naming no usable inode, link counts, and inodes
//! no directory names, reconnected into /lost+found as `#<ino>` (as
//! e2fsck does) so no data is lost.

use super::repair::{Fix, Knowledge, RepairOutcome};
use super::{EntryAt, Kind, Problem};
use crate::error::{FsError, Result};
use crate::events::{Event, Op};
use crate::format::inode::{FileType, InodeNo};
use crate::format::ROOT_INO;
use crate::fs::core::{live, live_dir, Fs};
use crate::fs::dir::{self, Slot};
use crate::fs::inode::{self as ino_io, now, InodeBuf, Time};
use crate::fs::namespace::NewNode;
use crate::fs::perm::Ctx;
use crate::fs::txn::Txn;
use crate::layout::Geometry;
use std::collections::BTreeSet;

/// Name of the directory unreachable inodes are reconnected into.
const LOST_FOUND: &[u8] = b"lost+found";

/// Directory entry code of a directory.
const DIR_TYPE: u8 = 2;

pub(super) fn apply(fs: &Fs, problems: &[&Problem], know: &Knowledge, out: &mut RepairOutcome) {
    // A retargeted ".." moves a reference: link counts wait for the next check.
    let moves_refs = problems.iter().any(|p| matches!(p.kind, Kind::DotEntry { .. }));
    let mut unreachable = Vec::new();
    // A dot entry can be reported twice (wrong inode, and a free one).
    let mut dots = Vec::new();
    for p in problems {
        let r = match p.kind {
            Kind::BlocksCount { ino, sectors } => edit_inode(fs, ino, |b| {
                b.set_blocks_512(sectors);
                Ok(format!("i_blocks set to {sectors}"))
            }),
            Kind::EntryType { at, target, file_type } => on_entry(fs, at, target, |txn, g, d, slot| {
                dir::retarget(txn, g, d, slot, target, file_type)?;
                Ok(format!("file_type set to {file_type}"))
            }),
            Kind::DotEntry { at, .. } if dots.contains(&at) => continue,
            Kind::DotEntry { at, target } => on_entry(fs, at, 0, |txn, g, d, slot| {
                dots.push(at);
                dir::retarget(txn, g, d, slot, target, DIR_TYPE)?;
                Ok(format!("now names inode {target}"))
            }),
            Kind::BadEntry { at, target, .. } => on_entry(fs, at, target, |txn, g, d, slot| {
                dir::remove(txn, g, d, slot)?;
                Ok("removed".to_string())
            }),
            Kind::LinkCount { ino, refs } if know.references && !moves_refs => edit_inode(fs, ino, |b| {
                let n = u16::try_from(refs).map_err(|_| FsError::TooManyLinks)?;
                b.set_links(n);
                Ok(format!("i_links_count set to {refs}"))
            }),
            Kind::Unreachable { ino } if know.references && know.blocks => {
                unreachable.push(ino);
                continue;
            }
            _ => continue,
        };
        match r {
            Ok(what) => out.fixed.push(Fix::new(p.location.clone(), what)),
            Err(e) => out.errors.push(format!("{}: not repaired: {e}", p.location)),
        }
    }
    if !unreachable.is_empty() {
        if let Err(e) = reconnect(fs, &unreachable, out) {
            out.errors.push(format!("/lost+found: reconnection stopped: {e}"));
        }
    }
}

/// Change one inode in its own transaction.
fn edit_inode(fs: &Fs, n: u32, mut f: impl FnMut(&mut InodeBuf) -> Result<String>) -> Result<String> {
    let ino = fs.ino(n.into())?;
    fs.write(|txn, g| {
        let mut b = live(txn, g, ino)?;
        let what = f(&mut b)?;
        ino_io::store(txn, g, &b)?;
        Ok(what)
    })
}

/// Change the entry at `at`, which must still name `target` (any inode
/// when `target` is 0).
fn on_entry(
    fs: &Fs,
    at: EntryAt,
    target: u32,
    mut f: impl FnMut(&mut Txn<'_>, &Geometry, &InodeBuf, Slot) -> Result<String>,
) -> Result<String> {
    let d = fs.ino(at.dir.into())?;
    fs.write(|txn, g| {
        let d = live_dir(txn, g, d)?;
        let slot = dir::scan(txn, g, &d, |s, _| s.block == at.block && s.offset == at.offset)?
            .filter(|s| target == 0 || s.inode == target)
            .ok_or(FsError::NotFound)?;
        f(txn, g, &d, slot)
    })
}

/// Entries of directory `d` other than "." and "..".
fn children(txn: &Txn<'_>, g: &Geometry, d: &InodeBuf) -> Result<Vec<Slot>> {
    let mut out = Vec::new();
    dir::scan(txn, g, d, |s, name| {
        if name != b"." && name != b".." {
            out.push(s);
        }
        false
    })?;
    Ok(out)
}

/// Reconnect the tops of the unreachable subtrees: inodes that no
/// unreachable directory names either (those come back with their parent).
fn reconnect(fs: &Fs, unreachable: &[u32], out: &mut RepairOutcome) -> Result<()> {
    let named: BTreeSet<u32> = fs.read(|txn, g| {
        let mut named = BTreeSet::new();
        for &n in unreachable {
            let Some(ino) = g.inode_no(n) else { continue };
            match live(txn, g, ino) {
                Ok(b) if b.file_type() == Some(FileType::Directory) => {
                    named.extend(children(txn, g, &b)?.iter().map(|s| s.inode));
                }
                _ => {}
            }
        }
        Ok(named)
    })?;
    let tops: Vec<u32> = unreachable.iter().copied().filter(|n| !named.contains(n)).collect();
    if tops.is_empty() {
        return Ok(());
    }
    let lf = lost_and_found(fs, out)?;
    for n in tops {
        let name = format!("#{n}");
        match fs.write(|txn, g| adopt(fs, txn, g, lf, n, name.as_bytes())) {
            Ok(()) => out.fixed.push(Fix::new(
                format!("inode {n}"),
                format!("reconnected as /lost+found/{name}"),
            )),
            Err(e) => out.errors.push(format!("inode {n}: not reconnected: {e}")),
        }
    }
    Ok(())
}

/// /lost+found, created (mode 0700, owned by root) when missing.
fn lost_and_found(fs: &Fs, out: &mut RepairOutcome) -> Result<InodeNo> {
    let root = fs.ino(ROOT_INO.into())?;
    let found = fs.read(|txn, g| {
        let Some(slot) = dir::find(txn, g, &live_dir(txn, g, root)?, LOST_FOUND)? else {
            return Ok(None);
        };
        let ino = g.inode_no(slot.inode).ok_or(FsError::NotFound)?;
        live_dir(txn, g, ino).map(|_| Some(ino))
    })?;
    if let Some(ino) = found {
        return Ok(ino);
    }
    let attr = fs.create(&Ctx::root(), ROOT_INO.into(), LOST_FOUND, 0o700, NewNode::Dir)?;
    out.fixed.push(Fix::new("/lost+found", "created"));
    fs.ino(attr.ino.into())
}

/// Link inode `n` into `lf` as `name`; a directory's ".." follows it.
fn adopt(fs: &Fs, txn: &mut Txn<'_>, g: &Geometry, lf: InodeNo, n: u32, name: &[u8]) -> Result<()> {
    let ino = g.inode_no(n).ok_or(FsError::NotFound)?;
    let mut d = live_dir(txn, g, lf)?;
    let mut b = live(txn, g, ino)?;
    if dir::find(txn, g, &d, name)?.is_some() {
        return Err(FsError::Exists);
    }
    let kind = b.file_type().ok_or(FsError::NotFound)?;
    dir::add(txn, g, &mut d, name, n, kind.dirent_code())?;
    let links = if kind == FileType::Directory {
        if let Some(slot) = dir::find(txn, g, &b, b"..")? {
            dir::retarget(txn, g, &b, slot, lf.get(), DIR_TYPE)?;
        }
        d.set_links(d.links().saturating_add(1));
        let subdirs = children(txn, g, &b)?.iter().filter(|s| s.file_type == DIR_TYPE).count();
        2 + u16::try_from(subdirs).map_err(|_| FsError::TooManyLinks)?
    } else {
        1
    };
    b.set_links(links);
    b.set_parent(lf.get());
    let t = now();
    b.set_time(Time::Change, t);
    d.set_time(Time::Modify, t);
    d.set_time(Time::Change, t);
    ino_io::store(txn, g, &d)?;
    ino_io::store(txn, g, &b)?;
    let ev = Event::new(Op::Link, n.into()).with_name(lf.get().into(), name);
    fs.emit(txn, g, None, ev.with_aux(links.into()))
}
