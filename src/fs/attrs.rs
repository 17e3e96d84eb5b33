//! setattr, readdir, readlink, statfs, access.

use super::core::{attr_of, live, live_dir, Attr, Fs};
use super::data;
use super::dir::{self, ListEntry};
use super::inode::{self as ino_io, now, InodeBuf, Time};
use super::perm::{Ctx, MAY_WRITE};
use super::txn::Txn;
use crate::error::{FsError, Result};
use crate::events::{Event, Op};
use crate::format::inode::{FileType, Timestamp};
use crate::format::superblock::Superblock;
use crate::layout::Geometry;
use zerocopy::FromBytes;

/// A time to set: the caller's clock, or a given value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSet {
    Now,
    At(Timestamp),
}

/// The attributes setattr may change (None = leave alone).
#[derive(Debug, Clone, Default)]
pub struct SetAttr {
    pub mode: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeSet>,
    pub mtime: Option<TimeSet>,
}

/// statfs numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFs {
    pub blocks: u64,
    pub free_blocks: u64,
    pub files: u64,
    pub free_files: u64,
    pub block_size: u32,
    pub name_max: u32,
}

fn owner_or_root(ctx: &Ctx, uid: u32) -> Result<()> {
    if ctx.uid == 0 || ctx.uid == uid {
        Ok(())
    } else {
        Err(FsError::NotPermitted)
    }
}

/// Clear setuid, and setgid when the group may execute (a setgid file
/// without group execute is a mandatory-locking mark and keeps it), as
/// the kernel's should_remove_suid does for a write or truncate by a
/// caller without CAP_FSETID.
pub(super) fn kill_suidgid(b: &mut InodeBuf) {
    let mode = b.base().mode();
    let kill = 0o4000 | if mode & 0o010 != 0 { 0o2000 } else { 0 };
    if mode & kill != 0 {
        b.base_mut().i_mode.set(mode & !kill);
    }
}

impl Fs {
    /// chmod, chown, truncate, utimens in one transaction, with the
    /// kernel's ownership rules (only the owner or root changes mode and
    /// times; only root changes the owner; chown clears setuid/setgid).
    pub fn setattr(&self, ctx: &Ctx, n: u64, s: &SetAttr) -> Result<Attr> {
        let ino = self.ino(n)?;
        self.write(|txn, g| {
            let mut b = live(txn, g, ino)?;
            let (uid, gid, mode) = (b.base().i_uid.get(), b.base().i_gid.get(), b.base().mode());
            if let Some(m) = s.mode {
                // Clearing only setuid/setgid is what the kernel asks for
                // when a non-owner writes or truncates such a file
                // (file_remove_privs); anyone who may write may do that.
                let (new, cur) = (m & 0o7777, mode & 0o7777);
                let kills_privs = new != cur && new & !0o6000 == cur & !0o6000 && new & 0o6000 & !cur == 0;
                if !(kills_privs && super::acl::check(ctx, txn, g, &b, MAY_WRITE).is_ok()) {
                    owner_or_root(ctx, uid)?;
                }
                let mut perm = m & 0o7777;
                if ctx.uid != 0 && !ctx.in_group(gid) {
                    perm &= !0o2000;
                }
                b.base_mut().i_mode.set((mode & 0o170000) | perm);
                // The access ACL follows the mode (posix_acl_chmod).
                if let Some(mut acl) = super::acl::get(txn, g, &b, super::acl::ACCESS)? {
                    acl.chmod(perm);
                    super::acl::put(txn, g, &mut b, super::acl::ACCESS, Some(&acl))?;
                }
            }
            if s.uid.is_some() || s.gid.is_some() {
                let new_uid = s.uid.unwrap_or(uid);
                let new_gid = s.gid.unwrap_or(gid);
                let uid_change = new_uid != uid;
                let gid_ok = ctx.uid == uid && ctx.in_group(new_gid);
                if ctx.uid != 0 && (uid_change || (new_gid != gid && !gid_ok)) {
                    return Err(FsError::NotPermitted);
                }
                b.base_mut().i_uid.set(new_uid);
                b.base_mut().i_gid.set(new_gid);
                let cur = b.base().mode();
                if b.file_type() != Some(FileType::Directory) && cur & 0o6000 != 0 {
                    let keep_sgid = cur & 0o2000 != 0 && cur & 0o010 == 0;
                    b.base_mut()
                        .i_mode
                        .set(cur & !0o4000 & if keep_sgid { !0 } else { !0o2000 });
                }
            }
            if let Some(size) = s.size {
                if b.file_type() == Some(FileType::Directory) {
                    return Err(FsError::IsDir);
                }
                if b.file_type() != Some(FileType::Regular) {
                    return Err(FsError::Invalid("truncate of a special file".into()));
                }
                data::truncate(txn, g, &mut b, size)?;
                // The mount handles privilege killing (FUSE_HANDLE_KILLPRIV_V2)
                // but fuser does not pass FATTR_KILL_SUIDGID on: the kernel
                // sets it for callers without CAP_FSETID, taken here to be
                // everyone but root.
                if ctx.uid != 0 {
                    kill_suidgid(&mut b);
                }
            }
            for (which, t) in [(Time::Access, s.atime), (Time::Modify, s.mtime)] {
                match t {
                    None => {}
                    Some(TimeSet::Now) => {
                        if ctx.uid != 0 && ctx.uid != uid {
                            super::acl::check(ctx, txn, g, &b, MAY_WRITE).map_err(|_| FsError::Access)?;
                        }
                        b.set_time(which, now());
                    }
                    Some(TimeSet::At(ts)) => {
                        owner_or_root(ctx, uid)?;
                        b.set_time(which, ts);
                    }
                }
            }
            b.set_time(Time::Change, now());
            ino_io::store(txn, g, &b)?;
            self.emit_setattr(txn, g, ctx, &b, s)?;
            attr_of(&b)
        })
    }

    /// The events of one setattr: `truncate` for a size change, `setattr`
    /// (aux = which of mode/uid/gid/atime/mtime changed) for the rest.
    fn emit_setattr(&self, txn: &mut Txn<'_>, g: &Geometry, ctx: &Ctx, b: &InodeBuf, s: &SetAttr) -> Result<()> {
        let ino = u64::from(b.ino.get());
        if s.size.is_some() {
            self.emit(txn, g, Some(ctx), Event::new(Op::Truncate, ino).with_aux(b.size()))?;
        }
        let mask = [
            s.mode.is_some(),
            s.uid.is_some(),
            s.gid.is_some(),
            s.atime.is_some(),
            s.mtime.is_some(),
        ]
        .iter()
        .enumerate()
        .fold(0u64, |m, (i, on)| m | (u64::from(*on) << i));
        if mask != 0 {
            self.emit(txn, g, Some(ctx), Event::new(Op::Setattr, ino).with_aux(mask))?;
        }
        Ok(())
    }

    /// Up to `max` entries of a directory from cookie `from` (0 = start).
    pub fn readdir(&self, n: u64, from: u64, max: usize) -> Result<Vec<ListEntry>> {
        let ino = self.ino(n)?;
        self.read(|txn, g| dir::list(txn, g, &live_dir(txn, g, ino)?, from, max))
    }

    /// The target of a symlink.
    pub fn readlink(&self, n: u64) -> Result<Vec<u8>> {
        let ino = self.ino(n)?;
        self.read(|txn, g| {
            let b = live(txn, g, ino)?;
            if b.file_type() != Some(FileType::Symlink) {
                return Err(FsError::Invalid("not a symlink".into()));
            }
            let size = b.size() as usize;
            if size > super::namespace::MAX_SYMLINK {
                return Err(FsError::corrupt(
                    "inode",
                    g.inode_offset(ino) + 16,
                    "i_size",
                    crate::error::Expected::AtMost(4095),
                    size as u64,
                ));
            }
            let fm = super::map::load(txn, g, &b)?;
            match fm.runs.first() {
                Some(m) => Ok(txn.data(m.physical)?[..size].to_vec()),
                None => Ok(b.base().i_block_bytes()[..size.min(crate::format::inode::I_BLOCK_BYTES)].to_vec()),
            }
        })
    }

    /// Block and inode totals.
    pub fn statfs(&self) -> Result<StatFs> {
        self.read(|txn, g| {
            let sb = Superblock::ref_from_prefix(txn.block(0)?)
                .map_err(|_| FsError::Invalid("superblock view".into()))?
                .0;
            Ok(StatFs {
                blocks: g.blocks_count - g.first_data_block,
                free_blocks: sb.free_blocks(),
                files: g.inodes_count.into(),
                free_files: sb.s_free_inodes.get().into(),
                block_size: 4096,
                name_max: crate::format::MAX_NAME_LEN as u32,
            })
        })
    }

    /// access(2): check `mask` (MAY_*) for the caller; F_OK is mask 0.
    pub fn access(&self, ctx: &Ctx, n: u64, mask: u32) -> Result<()> {
        let ino = self.ino(n)?;
        self.read(|txn, g| {
            let b = live(txn, g, ino)?;
            super::acl::check(ctx, txn, g, &b, mask)
        })
    }
}
