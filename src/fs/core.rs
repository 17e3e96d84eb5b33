//! [`Fs`]: an image opened for the filesystem operations, with the lock
//! discipline (one writer at a time through a transaction, readers in
//! parallel) and the attribute type the adapter replies with.

use super::inode::{self as ino_io, InodeBuf};
use super::txn::Txn;
use crate::error::{FsError, Result};
use crate::format::inode::{FileType, InodeNo, Timestamp};
use crate::image::{Image, Mode};
use crate::layout::Geometry;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::Path;

/// What getattr returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ino: u32,
    pub kind: FileType,
    /// Permission bits including setuid/setgid/sticky (mode & 0o7777).
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// 512-byte sectors.
    pub blocks: u64,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub crtime: Timestamp,
    pub rdev: u32,
    pub generation: u32,
}

/// Attributes of a loaded inode.
pub fn attr_of(b: &InodeBuf) -> Result<Attr> {
    let v = b.view();
    let kind = b.file_type().ok_or(FsError::corrupt(
        "inode",
        0,
        "i_mode",
        crate::error::Expected::Known,
        b.base().mode().into(),
    ))?;
    let [atime, ctime, mtime] = v.times();
    let crtime = v.ext.map_or(ctime, |e| Timestamp {
        sec: crate::format::inode::join_seconds(e.i_crtime.get(), e.i_crtime_hi.get()),
        nsec: e.i_crtime_nsec.get(),
    });
    Ok(Attr {
        ino: b.ino.get(),
        kind,
        perm: b.base().mode() & 0o7777,
        nlink: b.links().into(),
        uid: b.base().i_uid.get(),
        gid: b.base().i_gid.get(),
        size: b.size(),
        blocks: v.blocks_512(),
        atime,
        mtime,
        ctime,
        crtime,
        rdev: if matches!(kind, FileType::CharDevice | FileType::BlockDevice) {
            v.rdev()
        } else {
            0
        },
        generation: b.base().i_generation.get(),
    })
}

/// A mounted image.
pub struct Fs {
    image: RwLock<Image>,
    pub(crate) geometry: Geometry,
    read_only: bool,
    /// Open handles per inode, for open-unlinked files.
    pub(crate) open_counts: Mutex<HashMap<u32, u32>>,
}

impl Fs {
    /// Open an image for the filesystem (exclusive lock when read-write).
    pub fn open(path: &Path, read_only: bool) -> Result<Fs> {
        let image = Image::open(path, if read_only { Mode::ReadOnly } else { Mode::ReadWrite })?;
        let geometry = image.geometry().clone();
        let fs = Fs {
            image: RwLock::new(image),
            geometry,
            read_only,
            open_counts: Mutex::new(HashMap::new()),
        };
        if !read_only {
            fs.reclaim_orphans()?;
        }
        Ok(fs)
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Validate an inode number coming from the kernel.
    pub fn ino(&self, n: u64) -> Result<InodeNo> {
        u32::try_from(n)
            .ok()
            .and_then(|n| self.geometry.inode_no(n))
            .ok_or(FsError::NotFound)
    }

    /// Run `f` over a read-only view (shared lock; parallel with readers).
    pub fn read<R>(&self, f: impl FnOnce(&Txn<'_>, &Geometry) -> Result<R>) -> Result<R> {
        let img = self.image.read();
        let txn = Txn::read_only(img.file().bytes(), self.geometry.blocks_count);
        f(&txn, &self.geometry)
    }

    /// Run `f` in a transaction (exclusive lock); its changes become
    /// visible together when `f` succeeds, and not at all when it fails.
    pub fn write<R>(&self, f: impl FnOnce(&mut Txn<'_>, &Geometry) -> Result<R>) -> Result<R> {
        if self.read_only {
            return Err(FsError::ReadOnly);
        }
        let mut img = self.image.write();
        let mut txn = Txn::new(img.file_mut().bytes_mut()?, self.geometry.blocks_count);
        let r = f(&mut txn, &self.geometry)?;
        txn.commit();
        Ok(r)
    }

    /// Flush the map to the media (fsync, fsyncdir, unmount).
    pub fn sync(&self) -> Result<()> {
        self.image.read().file().flush()
    }

    /// Attributes of inode `n`.
    pub fn getattr(&self, n: u64) -> Result<Attr> {
        let ino = self.ino(n)?;
        self.read(|t, g| attr_of(&live(t, g, ino)?))
    }
}

/// Load an inode that must be in use.
pub fn live(txn: &Txn<'_>, g: &Geometry, ino: InodeNo) -> Result<InodeBuf> {
    let b = ino_io::load(txn, g, ino)?;
    if b.base().is_free() {
        return Err(FsError::NotFound);
    }
    Ok(b)
}

/// Load a directory (ENOTDIR otherwise).
pub fn live_dir(txn: &Txn<'_>, g: &Geometry, ino: InodeNo) -> Result<InodeBuf> {
    let b = live(txn, g, ino)?;
    if b.file_type() != Some(FileType::Directory) {
        return Err(FsError::NotDir);
    }
    Ok(b)
}
