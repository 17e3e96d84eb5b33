//! Extended attributes in the inode's xattr block
//! (format-spec/07-xattrs.md): get, set (XATTR_CREATE / XATTR_REPLACE),
//! list, remove, with the kernel's namespace rules.

use super::acl;
use super::alloc;
use super::core::{live, Fs};
use super::inode::{self as ino_io, now, InodeBuf, Time};
use super::perm::{self, Ctx, MAY_READ, MAY_WRITE};
use super::txn::Txn;
use crate::error::{FsError, Result};
use crate::events::{Event, Op};
use crate::format::inode::{FileType, InodeNo};
use crate::format::xattr as fx;
use crate::layout::Geometry;
use crate::vector::vattr;

pub const XATTR_CREATE: i32 = 1;
pub const XATTR_REPLACE: i32 = 2;
/// Longest value the VFS passes (XATTR_SIZE_MAX).
pub const MAX_VALUE: usize = 65536;

/// One attribute: (name index, name suffix, value).
pub(crate) type Attr = (u8, Vec<u8>, Vec<u8>);

/// Split a full name into its on-disk index and suffix.
fn split(full: &[u8]) -> Result<(u8, &[u8])> {
    match full {
        b"system.posix_acl_access" => return Ok((2, b"")),
        b"system.posix_acl_default" => return Ok((3, b"")),
        _ => {}
    }
    for (idx, prefix) in [(1u8, &b"user."[..]), (4, b"trusted."), (6, b"security.")] {
        if let Some(rest) = full.strip_prefix(prefix) {
            if rest.is_empty() || rest.len() > 255 {
                return Err(if rest.is_empty() {
                    FsError::Invalid("empty attribute name".into())
                } else {
                    FsError::NameTooLong
                });
            }
            return Ok((idx, rest));
        }
    }
    Err(FsError::NotSupported)
}

fn full_name(index: u8, suffix: &[u8]) -> Vec<u8> {
    let prefix = fx::NAME_INDEX.iter().find(|(i, _)| *i == index).map_or("", |(_, p)| p);
    [prefix.as_bytes(), suffix].concat()
}

/// May `ctx` read (`write` false) or change attributes of `index` on `b`?
fn check_access(ctx: &Ctx, b: &InodeBuf, index: u8, write: bool) -> Result<()> {
    let base = b.base();
    let (mode, uid, gid) = (base.mode(), base.i_uid.get(), base.i_gid.get());
    match index {
        1 => {
            let kind = b.file_type();
            if !matches!(kind, Some(FileType::Regular | FileType::Directory)) {
                return Err(if write { FsError::NotPermitted } else { FsError::NoData });
            }
            if write && kind == Some(FileType::Directory) && mode & 0o1000 != 0 && ctx.uid != uid && ctx.uid != 0 {
                return Err(FsError::NotPermitted);
            }
            perm::check(ctx, mode, uid, gid, if write { MAY_WRITE } else { MAY_READ })
        }
        4 if ctx.uid != 0 => Err(if write { FsError::NotPermitted } else { FsError::NoData }),
        2 | 3 | 6 if write && ctx.uid != 0 && ctx.uid != uid => Err(FsError::NotPermitted),
        _ => Ok(()),
    }
}

pub(crate) fn load_all(txn: &Txn<'_>, g: &Geometry, b: &InodeBuf) -> Result<Vec<Attr>> {
    let blk = b.view().xattr_block();
    if blk == 0 {
        return Ok(Vec::new());
    }
    if !g.is_data_block(blk) {
        return Err(FsError::corrupt(
            "inode",
            g.inode_offset(b.ino) + 160,
            "i_file_acl",
            crate::error::Expected::AtLeast(g.first_data_block),
            blk,
        ));
    }
    let parsed = fx::parse_block(txn.block(blk)?, blk, g.csum_seed)?;
    Ok(parsed
        .into_iter()
        .map(|x| (x.name_index, x.name.to_vec(), x.value.to_vec()))
        .collect())
}

/// Write `attrs` back: a block when any remain, none otherwise.
pub(crate) fn store_all(txn: &mut Txn<'_>, g: &Geometry, b: &mut InodeBuf, mut attrs: Vec<Attr>) -> Result<()> {
    attrs.sort();
    let old = b.view().xattr_block();
    if b.ext().is_none() {
        // Kernel-layout inodes have no i_file_acl.
        return Err(FsError::NotSupported);
    }
    if attrs.is_empty() {
        if old != 0 {
            alloc::free_blocks(txn, g, old, 1)?;
            if let Some(e) = b.ext_mut() {
                e.i_file_acl.set(0);
            }
            b.set_blocks_512(b.blocks_512().saturating_sub(8));
        }
        return Ok(());
    }
    let refs: Vec<(u8, &[u8], &[u8])> = attrs.iter().map(|(i, n, v)| (*i, &n[..], &v[..])).collect();
    let bytes = fx::encode_block(&refs).ok_or(FsError::NoSpace)?;
    let blk = if old != 0 {
        old
    } else {
        let (n, _) = alloc::alloc_blocks(txn, g, g.first_data_block, 1)?;
        if let Some(e) = b.ext_mut() {
            e.i_file_acl.set(n);
        }
        b.set_blocks_512(b.blocks_512() + 8);
        n
    };
    let dst = txn.block_new(blk)?;
    dst.copy_from_slice(&bytes);
    if let Some(seed) = g.csum_seed {
        let c = fx::block_checksum(dst, blk, seed);
        dst[16..20].copy_from_slice(&c.to_le_bytes());
    }
    Ok(())
}

impl Fs {
    /// getxattr: ENODATA when absent.
    pub fn getxattr(&self, ctx: &Ctx, n: u64, name: &[u8]) -> Result<Vec<u8>> {
        if let Some(coll) = vattr::collection_of(name) {
            return self.vector_xattr_get(ctx, n, coll?);
        }
        let ino = self.ino(n)?;
        let (index, suffix) = split(name)?;
        self.read(|txn, g| {
            let b = live(txn, g, ino)?;
            check_access(ctx, &b, index, false)?;
            load_all(txn, g, &b)?
                .into_iter()
                .find(|(i, s, _)| *i == index && s == suffix)
                .map(|(_, _, v)| v)
                .ok_or(FsError::NoData)
        })
    }

    /// listxattr: NUL-terminated full names the caller may see.
    pub fn listxattr(&self, ctx: &Ctx, n: u64) -> Result<Vec<u8>> {
        let ino = self.ino(n)?;
        self.read(|txn, g| {
            let b = live(txn, g, ino)?;
            let mut out = Vec::new();
            for (i, s, _) in load_all(txn, g, &b)? {
                if i == 4 && ctx.uid != 0 || i == 8 {
                    continue;
                }
                out.extend_from_slice(&full_name(i, &s));
                out.push(0);
            }
            Ok(out)
        })
        .and_then(|mut out| {
            out.extend(self.vector_xattr_list(n)?);
            Ok(out)
        })
    }

    /// setxattr with XATTR_CREATE / XATTR_REPLACE.
    pub fn setxattr(&self, ctx: &Ctx, n: u64, name: &[u8], value: &[u8], flags: i32) -> Result<()> {
        if let Some(coll) = vattr::collection_of(name) {
            return self.vector_xattr_set(ctx, n, coll?, value, flags);
        }
        let ino = self.ino(n)?;
        let (index, suffix) = split(name)?;
        if value.len() > MAX_VALUE {
            return Err(FsError::NoSpace);
        }
        if index == acl::ACCESS || index == acl::DEFAULT {
            return self.set_acl(ctx, ino, index, name, value, flags);
        }
        self.write(|txn, g| {
            let mut b = live(txn, g, ino)?;
            check_access(ctx, &b, index, true)?;
            let mut attrs = load_all(txn, g, &b)?;
            let pos = attrs.iter().position(|(i, s, _)| *i == index && s == suffix);
            match (pos, flags & (XATTR_CREATE | XATTR_REPLACE)) {
                (Some(_), XATTR_CREATE) => return Err(FsError::Exists),
                (None, XATTR_REPLACE) => return Err(FsError::NoData),
                (Some(p), _) => attrs[p].2 = value.to_vec(),
                (None, _) => attrs.push((index, suffix.to_vec(), value.to_vec())),
            }
            store_all(txn, g, &mut b, attrs)?;
            b.set_time(Time::Change, now());
            ino_io::store(txn, g, &b)?;
            let ev = Event::new(Op::Setxattr, ino.get().into()).with_name(0, name);
            self.emit(txn, g, Some(ctx), ev.with_aux(value.len() as u64))
        })
    }

    /// Set a POSIX ACL: validated, XATTR_CREATE/REPLACE honoured; an
    /// access ACL sets the mode bits it implies and is not stored when the
    /// mode says it all; a default ACL only on a directory (EACCES).
    fn set_acl(&self, ctx: &Ctx, ino: InodeNo, index: u8, name: &[u8], value: &[u8], flags: i32) -> Result<()> {
        let new = acl::Acl::parse(value)?;
        self.write(|txn, g| {
            let mut b = live(txn, g, ino)?;
            check_access(ctx, &b, index, true)?;
            let exists = load_all(txn, g, &b)?.iter().any(|(i, _, _)| *i == index);
            match (exists, flags & (XATTR_CREATE | XATTR_REPLACE)) {
                (true, XATTR_CREATE) => return Err(FsError::Exists),
                (false, XATTR_REPLACE) => return Err(FsError::NoData),
                _ => {}
            }
            let mut store = Some(&new);
            if index == acl::ACCESS {
                let (bits, minimal) = new.mode_bits();
                let mode = b.base().mode();
                b.base_mut().i_mode.set((mode & !0o777) | bits);
                store = store.filter(|_| !minimal);
            } else if b.file_type() != Some(FileType::Directory) {
                return Err(FsError::Access);
            }
            acl::put(txn, g, &mut b, index, store)?;
            b.set_time(Time::Change, now());
            ino_io::store(txn, g, &b)?;
            let ev = Event::new(Op::Setxattr, ino.get().into()).with_name(0, name);
            self.emit(txn, g, Some(ctx), ev.with_aux(value.len() as u64))
        })
    }

    /// removexattr: ENODATA when absent.
    pub fn removexattr(&self, ctx: &Ctx, n: u64, name: &[u8]) -> Result<()> {
        if let Some(coll) = vattr::collection_of(name) {
            return match self.remove_vector(ctx, n, coll?) {
                Err(FsError::NotFound) if self.ino(n).is_ok() => Err(FsError::NoData),
                r => r,
            };
        }
        let ino = self.ino(n)?;
        let (index, suffix) = split(name)?;
        self.write(|txn, g| {
            let mut b = live(txn, g, ino)?;
            check_access(ctx, &b, index, true)?;
            let mut attrs = load_all(txn, g, &b)?;
            let before = attrs.len();
            attrs.retain(|(i, s, _)| !(*i == index && s == suffix));
            if attrs.len() == before {
                return Err(FsError::NoData);
            }
            store_all(txn, g, &mut b, attrs)?;
            b.set_time(Time::Change, now());
            ino_io::store(txn, g, &b)?;
            self.emit(
                txn,
                g,
                Some(ctx),
                Event::new(Op::Removexattr, ino.get().into()).with_name(0, name),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_indexes() {
        assert_eq!(split(b"user.a").unwrap(), (1, &b"a"[..]));
        assert_eq!(split(b"system.posix_acl_access").unwrap(), (2, &b""[..]));
        assert!(matches!(split(b"os2.x"), Err(FsError::NotSupported)));
        assert!(split(b"user.").is_err());
        assert_eq!(full_name(6, b"selinux"), b"security.selinux");
    }
}
