//! Names: lookup, create (files, directories, nodes, symlinks), link,
//! unlink, rmdir.

use super::acl;
use super::alloc;
use super::core::{attr_of, live, live_dir, Attr, Fs};
use super::dir;
use super::inode::{self as ino_io, now, InodeBuf, Time};
use super::lifecycle;
use super::map;
use super::perm::{self, Ctx, MAY_EXEC, MAY_WRITE};
use super::txn::Txn;
use crate::error::{FsError, Result};
use crate::events::{Event, Op};
use crate::format::extent;
use crate::format::inode::{FileType, InodeNo, EXTENTS_FL, I_BLOCK_BYTES, S_IFDIR, S_IFMT};
use crate::format::BLOCK_SIZE_U64;
use crate::layout::Geometry;
use crate::read::Mapping;
use zerocopy::IntoBytes;

/// Most hard links to one inode (i_links_count is a u16).
pub const MAX_LINKS: u16 = 65_000;
/// Longest symlink target.
pub const MAX_SYMLINK: usize = 4095;

/// What kind of node to create.
pub enum NewNode<'a> {
    File,
    Dir,
    Special { rdev: u32 },
    Symlink { target: &'a [u8] },
}

fn may_change_dir(ctx: &Ctx, txn: &Txn<'_>, g: &Geometry, d: &InodeBuf) -> Result<()> {
    acl::check(ctx, txn, g, d, MAY_WRITE | MAY_EXEC)
}

fn touch_dir(txn: &mut Txn<'_>, g: &Geometry, d: &mut InodeBuf) -> Result<()> {
    let t = now();
    d.set_time(Time::Modify, t);
    d.set_time(Time::Change, t);
    ino_io::store(txn, g, d)
}

impl Fs {
    /// Find `name` in directory `parent`.
    pub fn lookup(&self, ctx: &Ctx, parent: u64, name: &[u8]) -> Result<Attr> {
        let p = self.ino(parent)?;
        self.read(|t, g| {
            let d = live_dir(t, g, p)?;
            acl::check(ctx, t, g, &d, MAY_EXEC)?;
            if name.len() > crate::format::MAX_NAME_LEN {
                return Err(FsError::NameTooLong);
            }
            let slot = dir::find(t, g, &d, name)?.ok_or(FsError::NotFound)?;
            let ino = g.inode_no(slot.inode).ok_or(FsError::NotFound)?;
            attr_of(&live(t, g, ino)?)
        })
    }

    /// Create `name` in `parent` with permission bits `mode` (already
    /// masked by the umask) owned by the caller.
    pub fn create(&self, ctx: &Ctx, parent: u64, name: &[u8], mode: u16, node: NewNode<'_>) -> Result<Attr> {
        crate::format::dir::check_name(name)?;
        if let NewNode::Symlink { target } = node {
            if target.len() > MAX_SYMLINK {
                return Err(FsError::NameTooLong);
            }
            if target.is_empty() {
                return Err(FsError::NotFound);
            }
        }
        let p = self.ino(parent)?;
        self.write(|txn, g| {
            let mut d = live_dir(txn, g, p)?;
            may_change_dir(ctx, txn, g, &d)?;
            if dir::find(txn, g, &d, name)?.is_some() {
                return Err(FsError::Exists);
            }
            let default_acl = match node {
                NewNode::Symlink { .. } => None,
                _ => acl::get(txn, g, &d, acl::DEFAULT)?,
            };
            // A default ACL replaces the umask (posix_acl_create).
            let mode = match &default_acl {
                Some(def) => def.create_masq(mode).1,
                None => mode & !ctx.umask,
            };
            let mut b = new_inode(txn, g, ctx, &d, mode, &node)?;
            let kind = b.file_type().ok_or(FsError::Invalid("mode has no file type".into()))?;
            if let Some(def) = &default_acl {
                inherit_acl(txn, g, &mut b, def, mode, kind)?;
            }
            dir::add(txn, g, &mut d, name, b.ino.get(), kind.dirent_code())?;
            if kind == FileType::Directory {
                d.set_links(d.links() + 1);
            }
            touch_dir(txn, g, &mut d)?;
            self.emit(txn, g, Some(ctx), creation_event(&node, &b, p, name))?;
            attr_of(&b)
        })
    }

    /// Add another name for `ino`.
    pub fn link(&self, ctx: &Ctx, ino: u64, parent: u64, name: &[u8]) -> Result<Attr> {
        crate::format::dir::check_name(name)?;
        let (i, p) = (self.ino(ino)?, self.ino(parent)?);
        self.write(|txn, g| {
            let mut b = live(txn, g, i)?;
            let mut d = live_dir(txn, g, p)?;
            if dir::find(txn, g, &d, name)?.is_some() {
                return Err(FsError::Exists);
            }
            may_change_dir(ctx, txn, g, &d)?;
            if b.file_type() == Some(FileType::Directory) {
                return Err(FsError::NotPermitted);
            }
            if b.links() >= MAX_LINKS {
                return Err(FsError::TooManyLinks);
            }
            if b.links() == 0 {
                // Unlinked (open, or not yet forgotten by the kernel): it
                // stays on the orphan chain, so it cannot get a name back.
                return Err(FsError::NotFound);
            }
            let kind = b.file_type().map_or(0, FileType::dirent_code);
            dir::add(txn, g, &mut d, name, i.get(), kind)?;
            touch_dir(txn, g, &mut d)?;
            b.set_links(b.links() + 1);
            b.set_parent(p.get());
            b.set_time(Time::Change, now());
            ino_io::store(txn, g, &b)?;
            let ev = Event::new(Op::Link, i.get().into()).with_name(p.get().into(), name);
            self.emit(txn, g, Some(ctx), ev.with_aux(b.links().into()))?;
            attr_of(&b)
        })
    }

    /// Remove a non-directory name.
    pub fn unlink(&self, ctx: &Ctx, parent: u64, name: &[u8]) -> Result<()> {
        self.remove_name(ctx, parent, name, false)
    }

    /// Remove an empty directory.
    pub fn rmdir(&self, ctx: &Ctx, parent: u64, name: &[u8]) -> Result<()> {
        if name == b"." {
            return Err(FsError::Invalid("cannot remove '.'".into()));
        }
        if name == b".." {
            return Err(FsError::NotEmpty);
        }
        self.remove_name(ctx, parent, name, true)
    }

    fn remove_name(&self, ctx: &Ctx, parent: u64, name: &[u8], want_dir: bool) -> Result<()> {
        let p = self.ino(parent)?;
        self.write(|txn, g| {
            let mut d = live_dir(txn, g, p)?;
            may_change_dir(ctx, txn, g, &d)?;
            let slot = dir::find(txn, g, &d, name)?.ok_or(FsError::NotFound)?;
            let victim = g.inode_no(slot.inode).ok_or(FsError::NotFound)?;
            let mut b = live(txn, g, victim)?;
            perm::check_sticky(ctx, d.base().mode(), d.base().i_uid.get(), b.base().i_uid.get())?;
            let is_dir = b.file_type() == Some(FileType::Directory);
            match (want_dir, is_dir) {
                (true, false) => return Err(FsError::NotDir),
                (false, true) => return Err(FsError::IsDir),
                (true, true) if !dir::is_empty(txn, g, &b)? => return Err(FsError::NotEmpty),
                _ => {}
            }
            dir::remove(txn, g, &d, slot)?;
            if is_dir {
                d.set_links(d.links().saturating_sub(1));
            }
            touch_dir(txn, g, &mut d)?;
            let (op, left) = if is_dir {
                (Op::Rmdir, 0)
            } else {
                (Op::Unlink, b.links().saturating_sub(1))
            };
            let ev = Event::new(op, victim.get().into()).with_name(p.get().into(), name);
            self.emit(txn, g, Some(ctx), ev.with_aux(left.into()))?;
            self.drop_link(txn, g, &mut b, is_dir, p)
        })
    }

    /// One name of `b` is gone: free it when that was the last (and it is
    /// neither open nor held by the kernel), or keep it as an orphan until
    /// the last close and the kernel's FORGET (see [`lifecycle`]).
    pub(crate) fn drop_link(
        &self,
        txn: &mut Txn<'_>,
        g: &Geometry,
        b: &mut InodeBuf,
        is_dir: bool,
        dir: InodeNo,
    ) -> Result<()> {
        let links = if is_dir { 0 } else { b.links().saturating_sub(1) };
        b.set_links(links);
        if b.parent_hint() == dir.get() {
            // The hint must name a directory that holds a link, or nothing.
            b.set_parent(0);
        }
        b.set_time(Time::Change, now());
        if links > 0 {
            return ino_io::store(txn, g, b);
        }
        // Both checked: an open inode is marked for the kernel too.
        let held = self.unlinked_while_held(b.ino);
        if self.is_open(b.ino) || held {
            ino_io::store(txn, g, b)?;
            return lifecycle::add_orphan(txn, g, b);
        }
        self.destroy_inode(txn, g, b)
    }
}

/// The event of a new name: create, mkdir, mknod or symlink (§11.4).
fn creation_event(node: &NewNode<'_>, b: &InodeBuf, dir: InodeNo, name: &[u8]) -> Event {
    let (op, aux) = match node {
        NewNode::File => (Op::Create, b.base().mode().into()),
        NewNode::Dir => (Op::Mkdir, b.base().mode().into()),
        NewNode::Special { .. } => (Op::Mknod, b.base().mode().into()),
        NewNode::Symlink { target } => (Op::Symlink, target.len() as u64),
    };
    let ev = Event::new(op, b.ino.get().into()).with_name(dir.get().into(), name);
    match node {
        NewNode::Symlink { target } => ev.with_second(0, 0, target),
        _ => ev,
    }
    .with_aux(aux)
}

/// Allocate and initialise a new inode (not yet linked anywhere).
/// Give a new node the access ACL its parent's default ACL implies (and a
/// directory the default ACL itself).
fn inherit_acl(
    txn: &mut Txn<'_>,
    g: &Geometry,
    b: &mut InodeBuf,
    def: &acl::Acl,
    mode: u16,
    kind: FileType,
) -> Result<()> {
    let (access, _) = def.create_masq(mode);
    if !access.mode_bits().1 {
        acl::put(txn, g, b, acl::ACCESS, Some(&access))?;
    }
    if kind == FileType::Directory {
        acl::put(txn, g, b, acl::DEFAULT, Some(def))?;
    }
    ino_io::store(txn, g, b)
}

fn new_inode(
    txn: &mut Txn<'_>,
    g: &Geometry,
    ctx: &Ctx,
    parent: &InodeBuf,
    mode: u16,
    node: &NewNode<'_>,
) -> Result<InodeBuf> {
    let n = alloc::alloc_inode(txn, g, parent.ino.get())?;
    let ino = InodeNo::new(n, g.inodes_count).ok_or(FsError::NoSpace)?;
    let mut b = InodeBuf::new(ino, g);
    let type_bits = match node {
        NewNode::File => 0o100000,
        NewNode::Dir => S_IFDIR,
        NewNode::Special { .. } => mode & S_IFMT,
        NewNode::Symlink { .. } => 0o120000,
    };
    if matches!(node, NewNode::Special { .. }) && crate::format::inode::FileType::from_mode(type_bits).is_none() {
        return Err(FsError::Invalid("mknod needs a file type".into()));
    }
    let mut perm = if matches!(node, NewNode::Symlink { .. }) {
        0o777
    } else {
        mode & 0o7777
    };
    let parent_setgid = parent.base().mode() & 0o2000 != 0;
    let gid = if parent_setgid {
        parent.base().i_gid.get()
    } else {
        ctx.gid
    };
    if parent_setgid && matches!(node, NewNode::Dir) {
        perm |= 0o2000;
    }
    b.set_parent(parent.ino.get());
    let base = b.base_mut();
    base.i_mode.set(type_bits | perm);
    base.i_uid.set(ctx.uid);
    base.i_gid.set(gid);
    base.i_links_count.set(if matches!(node, NewNode::Dir) { 2 } else { 1 });
    let t = now();
    base.i_generation.set(t.nsec ^ (t.sec as u32));
    for w in [Time::Access, Time::Change, Time::Modify, Time::Birth] {
        b.set_time(w, t);
    }
    if !g.is_kernel_layout() && !matches!(node, NewNode::Special { .. }) {
        b.base_mut().i_flags.set(EXTENTS_FL);
        extent::init_root(b.base_mut().i_block.as_mut_bytes());
    }
    match node {
        NewNode::Dir => dir::init(txn, g, &mut b, parent.ino.get())?,
        NewNode::Special { rdev } => set_rdev(&mut b, *rdev),
        NewNode::Symlink { target } => write_symlink(txn, g, &mut b, target)?,
        NewNode::File => {}
    }
    ino_io::store(txn, g, &b)?;
    Ok(b)
}

fn set_rdev(b: &mut InodeBuf, rdev: u32) {
    match b.ext_mut() {
        Some(e) => e.i_rdev.set(rdev),
        None => b.base_mut().i_block[0].set(rdev),
    }
}

/// Short targets live in i_block (fast symlink); longer ones in a block.
fn write_symlink(txn: &mut Txn<'_>, g: &Geometry, b: &mut InodeBuf, target: &[u8]) -> Result<()> {
    b.set_size(target.len() as u64);
    if target.len() < I_BLOCK_BYTES {
        let base = b.base_mut();
        base.i_flags.set(0);
        let area = base.i_block.as_mut_bytes();
        area.fill(0);
        area[..target.len()].copy_from_slice(target);
        return Ok(());
    }
    let (blk, _) = alloc::alloc_blocks(txn, g, g.first_data_block, 1)?;
    let data = txn.data_mut(blk)?;
    data.fill(0);
    data[..target.len()].copy_from_slice(target);
    let mut fm = map::FileMap {
        runs: Vec::new(),
        tree_blocks: Vec::new(),
    };
    map::insert(
        &mut fm.runs,
        Mapping {
            logical: 0,
            physical: blk,
            len: 1,
            unwritten: false,
        },
    );
    map::store(txn, g, b, &fm)?;
    debug_assert!(b.size() <= BLOCK_SIZE_U64);
    Ok(())
}
