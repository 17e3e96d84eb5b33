//! rename(2) and renameat2's RENAME_NOREPLACE / RENAME_EXCHANGE, across
//! directories and over existing targets, directories included; all in
//! one transaction.

use super::core::{live, live_dir, Fs};
use super::dir::{self, Slot};
use super::inode::{self as ino_io, now, InodeBuf, Time};
use super::perm::{self, Ctx, MAY_EXEC, MAY_WRITE};
use super::txn::Txn;
use crate::error::{FsError, Result};
use crate::events::{Event, Op};
use crate::format::inode::{FileType, InodeNo};
use crate::format::ROOT_INO;
use crate::layout::Geometry;

pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 2;

/// Is `dir` equal to `ancestor` or below it? (walks "..", bounded)
fn is_within(txn: &Txn<'_>, g: &Geometry, dir_ino: InodeNo, ancestor: InodeNo) -> Result<bool> {
    let mut cur = dir_ino;
    for _ in 0..=g.inodes_count {
        if cur == ancestor {
            return Ok(true);
        }
        if cur.get() == ROOT_INO {
            return Ok(false);
        }
        let d = live_dir(txn, g, cur)?;
        let up = dir::find(txn, g, &d, b"..")?.ok_or(FsError::NotFound)?;
        cur = g.inode_no(up.inode).ok_or(FsError::NotFound)?;
    }
    Err(FsError::corrupt(
        "directory tree",
        0,
        "..",
        crate::error::Expected::AtMost(g.inodes_count.into()),
        g.inodes_count.into(),
    ))
}

fn kind(b: &InodeBuf) -> u8 {
    b.file_type().map_or(0, FileType::dirent_code)
}

fn is_dir(b: &InodeBuf) -> bool {
    b.file_type() == Some(FileType::Directory)
}

fn touch(txn: &mut Txn<'_>, g: &Geometry, n: InodeNo, dlinks: i32) -> Result<()> {
    let mut d = ino_io::load(txn, g, n)?;
    d.set_links((i32::from(d.links()) + dlinks).max(0) as u16);
    let t = now();
    d.set_time(Time::Modify, t);
    d.set_time(Time::Change, t);
    ino_io::store(txn, g, &d)
}

/// Point a moved directory's ".." at its new parent.
fn reparent(txn: &mut Txn<'_>, g: &Geometry, moved: InodeNo, new_parent: InodeNo) -> Result<()> {
    let d = live_dir(txn, g, moved)?;
    let slot = dir::find(txn, g, &d, b"..")?.ok_or(FsError::NotFound)?;
    dir::retarget(txn, g, &d, slot, new_parent.get(), 2)
}

impl Fs {
    /// Rename `parent/name` to `newparent/newname`.
    pub fn rename(
        &self,
        ctx: &Ctx,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        flags: u32,
    ) -> Result<()> {
        crate::format::dir::check_name(newname)?;
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 || flags == RENAME_NOREPLACE | RENAME_EXCHANGE {
            return Err(FsError::Invalid("unsupported rename flags".into()));
        }
        if [name, newname].iter().any(|n| *n == b"." || *n == b"..") {
            return Err(FsError::Invalid("cannot rename '.' or '..'".into()));
        }
        let (p, np) = (self.ino(parent)?, self.ino(newparent)?);
        self.write(|txn, g| {
            let sd = live_dir(txn, g, p)?;
            let dd = live_dir(txn, g, np)?;
            for d in [&sd, &dd] {
                super::acl::check(ctx, txn, g, d, MAY_WRITE | MAY_EXEC)?;
            }
            let src_slot = dir::find(txn, g, &sd, name)?.ok_or(FsError::NotFound)?;
            let src = live(txn, g, g.inode_no(src_slot.inode).ok_or(FsError::NotFound)?)?;
            let dst_slot = dir::find(txn, g, &dd, newname)?;
            let dst = match dst_slot {
                Some(s) => Some(live(txn, g, g.inode_no(s.inode).ok_or(FsError::NotFound)?)?),
                None => None,
            };
            if flags == RENAME_NOREPLACE && dst.is_some() {
                return Err(FsError::Exists);
            }
            // The ancestry checks come before permission and type checks,
            // as in Linux's do_renameat2.
            if is_dir(&src) && p != np && is_within(txn, g, np, src.ino)? {
                return Err(FsError::Invalid("cannot move a directory into itself".into()));
            }
            if let Some(d) = dst.as_ref().filter(|d| is_dir(d) && p != np) {
                if is_within(txn, g, p, d.ino)? {
                    // The target is an ancestor of the source: an exchange
                    // would move it into itself; a plain rename would
                    // replace a directory that is not empty.
                    return Err(match flags {
                        RENAME_EXCHANGE => FsError::Invalid("cannot move a directory into itself".into()),
                        _ => FsError::NotEmpty,
                    });
                }
            }
            perm::check_sticky(ctx, sd.base().mode(), sd.base().i_uid.get(), src.base().i_uid.get())?;
            if let Some(d) = &dst {
                perm::check_sticky(ctx, dd.base().mode(), dd.base().i_uid.get(), d.base().i_uid.get())?;
            }
            let replaced = dst.as_ref().map_or(0, |d| u64::from(d.ino.get()));
            let ev = Event::new(Op::Rename, src.ino.get().into())
                .with_name(p.get().into(), name)
                .with_second(replaced, np.get().into(), newname)
                .with_aux(flags.into());
            match (flags, dst, dst_slot) {
                (RENAME_EXCHANGE, Some(dst), Some(ds)) => self.exchange(txn, g, (p, src_slot, &src), (np, ds, &dst)),
                (RENAME_EXCHANGE, _, _) => Err(FsError::NotFound),
                (_, Some(dst), Some(ds)) => self.replace(txn, g, (p, src_slot, src), (np, ds, dst)),
                _ => self.move_to_new_name(txn, g, (p, src_slot, &src), np, newname),
            }?;
            self.emit(txn, g, Some(ctx), ev)
        })
    }

    fn move_to_new_name(
        &self,
        txn: &mut Txn<'_>,
        g: &Geometry,
        (p, slot, src): (InodeNo, Slot, &InodeBuf),
        np: InodeNo,
        newname: &[u8],
    ) -> Result<()> {
        let mut dd = live_dir(txn, g, np)?;
        dir::add(txn, g, &mut dd, newname, src.ino.get(), kind(src))?;
        ino_io::store(txn, g, &dd)?;
        let sd = live_dir(txn, g, p)?;
        dir::remove(txn, g, &sd, slot)?;
        self.finish_move(txn, g, src.ino, p, np)
    }

    /// Link counts, ".." and times after `moved` went from `p` to `np`.
    fn finish_move(&self, txn: &mut Txn<'_>, g: &Geometry, moved: InodeNo, p: InodeNo, np: InodeNo) -> Result<()> {
        let m = live(txn, g, moved)?;
        let dir_moved = is_dir(&m) && p != np;
        if dir_moved {
            reparent(txn, g, moved, np)?;
        }
        touch(txn, g, p, if dir_moved { -1 } else { 0 })?;
        if p != np {
            touch(txn, g, np, if dir_moved { 1 } else { 0 })?;
        }
        let mut m = live(txn, g, moved)?;
        m.set_parent(np.get());
        m.set_time(Time::Change, now());
        ino_io::store(txn, g, &m)
    }

    fn replace(
        &self,
        txn: &mut Txn<'_>,
        g: &Geometry,
        (p, slot, src): (InodeNo, Slot, InodeBuf),
        (np, ds, mut dst): (InodeNo, Slot, InodeBuf),
    ) -> Result<()> {
        if src.ino == dst.ino {
            return Ok(());
        }
        match (is_dir(&src), is_dir(&dst)) {
            (true, false) => return Err(FsError::NotDir),
            (false, true) => return Err(FsError::IsDir),
            (true, true) if !dir::is_empty(txn, g, &dst)? => return Err(FsError::NotEmpty),
            _ => {}
        }
        let dd = live_dir(txn, g, np)?;
        dir::retarget(txn, g, &dd, ds, src.ino.get(), kind(&src))?;
        let sd = live_dir(txn, g, p)?;
        let slot = dir::find(txn, g, &sd, &name_at(txn, g, &sd, slot)?)?.ok_or(FsError::NotFound)?;
        dir::remove(txn, g, &sd, slot)?;
        let dst_was_dir = is_dir(&dst);
        if dst_was_dir {
            touch(txn, g, np, -1)?;
        }
        self.drop_link(txn, g, &mut dst, dst_was_dir, np)?;
        self.finish_move(txn, g, src.ino, p, np)
    }

    fn exchange(
        &self,
        txn: &mut Txn<'_>,
        g: &Geometry,
        (p, ss, src): (InodeNo, Slot, &InodeBuf),
        (np, ds, dst): (InodeNo, Slot, &InodeBuf),
    ) -> Result<()> {
        if src.ino == dst.ino {
            return Ok(());
        }
        let sd = live_dir(txn, g, p)?;
        dir::retarget(txn, g, &sd, ss, dst.ino.get(), kind(dst))?;
        let dd = live_dir(txn, g, np)?;
        dir::retarget(txn, g, &dd, ds, src.ino.get(), kind(src))?;
        if p != np {
            for (moved, to) in [(src, np), (dst, p)] {
                if is_dir(moved) {
                    reparent(txn, g, moved.ino, to)?;
                }
            }
            let delta = i32::from(is_dir(src)) - i32::from(is_dir(dst));
            touch(txn, g, p, -delta)?;
            touch(txn, g, np, delta)?;
        } else {
            touch(txn, g, p, 0)?;
        }
        for (n, dir) in [(src.ino, np), (dst.ino, p)] {
            let mut b = live(txn, g, n)?;
            b.set_parent(dir.get());
            b.set_time(Time::Change, now());
            ino_io::store(txn, g, &b)?;
        }
        Ok(())
    }
}

/// The name stored at a slot (re-found after other edits of the block).
fn name_at(txn: &Txn<'_>, g: &Geometry, d: &InodeBuf, slot: Slot) -> Result<Vec<u8>> {
    let mut name = None;
    dir::scan(txn, g, d, |s, n| {
        if s.block == slot.block && s.offset == slot.offset {
            name = Some(n.to_vec());
            true
        } else {
            false
        }
    })?;
    name.ok_or(FsError::NotFound)
}
