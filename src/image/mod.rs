//! Opening, locking and mapping an image file or block device.
//!
//! This is the only module of the crate with `unsafe`: creating a memory map
//! is unsafe because the mapped file could change underneath us. We reduce
//! that to what the OS guarantees: the image is locked (exclusive flock for
//! read-write, shared for read-only), so no cooperating VexFS process writes
//! it concurrently, and its size is checked against the superblock *before*
//! mapping, so a truncated image is refused instead of raising SIGBUS. An
//! image truncated *after* it was mapped is caught by [`sigbus`]: the fault
//! becomes a zero page and the next check of the map reports EIO.

mod hints;
mod loopdev;
mod media;
mod sigbus;
mod write;

pub use hints::{prefetch, will_need};
pub use media::Media;

use crate::error::{FsError, Result};
use crate::format::superblock::Superblock;
use crate::format::{BLOCK_SIZE, BLOCK_SIZE_U64};
use crate::layout::Geometry;
use memmap2::{Mmap, MmapMut, MmapOptions};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};

/// Read-only or read-write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ReadOnly,
    ReadWrite,
}

enum Map {
    Ro(Mmap),
    Rw(MmapMut),
}

/// A locked, mapped file: no validation of its contents (mkfs uses this).
pub struct MappedFile {
    // Declared before `map` so that it unregisters before the unmap.
    region: sigbus::Region,
    map: Map,
    len: u64,
    path: PathBuf,
    is_device: bool,
    // Keeps the lock (flock) for the lifetime of the map.
    file: File,
    // For a loop device, the file behind it, locked too (see loopdev.rs).
    _backing: Option<File>,
}

fn open_file(path: &Path, mode: Mode, create: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(mode == Mode::ReadWrite)
        .create(create && mode == Mode::ReadWrite)
        .truncate(false)
        .open(path)
        .map_err(|e| FsError::io(format!("cannot open {}", path.display()), e))
}

fn lock(file: &File, path: &Path, mode: Mode) -> Result<()> {
    let r = match mode {
        Mode::ReadWrite => file.try_lock(),
        Mode::ReadOnly => file.try_lock_shared(),
    };
    match r {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(FsError::Locked(path.display().to_string())),
        Err(TryLockError::Error(e)) => Err(FsError::io(format!("cannot lock {}", path.display()), e)),
    }
}

/// Size of a regular file or block device (seeking to the end works for both).
fn size_of(file: &mut File, path: &Path) -> Result<u64> {
    file.seek(SeekFrom::End(0))
        .map_err(|e| FsError::io(format!("cannot size {}", path.display()), e))
}

impl MappedFile {
    /// Open and lock `path`; with `create_len`, create or resize a regular
    /// file to that many bytes first (block devices keep their size).
    pub fn open(path: &Path, mode: Mode, create_len: Option<u64>) -> Result<MappedFile> {
        let mut file = open_file(path, mode, create_len.is_some())?;
        lock(&file, path, mode)?;
        let backing = loopdev::lock_backing_file(&file, path, mode)?;
        let meta = file
            .metadata()
            .map_err(|e| FsError::io(format!("cannot stat {}", path.display()), e))?;
        let is_device = meta.file_type().is_block_device();
        if let (Some(len), false) = (create_len, is_device) {
            file.set_len(len)
                .map_err(|e| FsError::io(format!("cannot resize {}", path.display()), e))?;
        }
        let len = size_of(&mut file, path)?;
        Self::map((file, backing), path, mode, len, is_device)
    }

    /// Map `file` (locked, with the lock on its backing file for a loop
    /// device).
    fn map(
        (file, backing): (File, Option<File>),
        path: &Path,
        mode: Mode,
        len: u64,
        is_device: bool,
    ) -> Result<MappedFile> {
        if len < BLOCK_SIZE_U64 {
            return Err(FsError::Truncated {
                needed: BLOCK_SIZE_U64,
                actual: len,
            });
        }
        let map_len =
            usize::try_from(len).map_err(|_| FsError::Invalid("image larger than the address space".into()))?;
        let err = |e| FsError::io(format!("cannot map {}", path.display()), e);
        let map = match mode {
            // SAFETY: the file is flocked (shared) for the map's lifetime, so
            // no cooperating writer changes it; its length was read just
            // before and the map covers exactly that length.
            Mode::ReadOnly => Map::Ro(unsafe { MmapOptions::new().len(map_len).map(&file) }.map_err(err)?),
            // SAFETY: the file is flocked exclusively for the map's lifetime;
            // the map covers exactly the length read just before.
            Mode::ReadWrite => Map::Rw(unsafe { MmapOptions::new().len(map_len).map_mut(&file) }.map_err(err)?),
        };
        let region = match &map {
            Map::Ro(m) => sigbus::Region::register(m.as_ptr(), map_len),
            Map::Rw(m) => sigbus::Region::register(m.as_ptr(), map_len),
        };
        Ok(MappedFile {
            region,
            map,
            len,
            path: path.to_path_buf(),
            is_device,
            file,
            _backing: backing,
        })
    }

    /// The whole image.
    pub fn bytes(&self) -> &[u8] {
        match &self.map {
            Map::Ro(m) => m,
            Map::Rw(m) => m,
        }
    }

    /// The whole image, writable (read-write opens only).
    pub fn bytes_mut(&mut self) -> Result<&mut [u8]> {
        match &mut self.map {
            Map::Ro(_) => Err(FsError::ReadOnly),
            Map::Rw(m) => Ok(m),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for a zero-length image (never: open refuses those).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_device(&self) -> bool {
        self.is_device
    }

    /// Switch the map to random access (MADV_RANDOM): the kernel then reads
    /// (and, after msync, writes back) only the pages touched, instead of
    /// read-ahead building large folios of which one dirty 4 KiB block
    /// sends the whole folio to disk at the next flush (2 MiB per small
    /// fsync'd transaction was measured). Done after the journal replay,
    /// which reads the ring in order and gains from read-ahead; reads of
    /// file data ask for theirs ([`will_need`]).
    pub fn advise_random(&self) {
        let advised = match &self.map {
            Map::Ro(m) => m.advise(memmap2::Advice::Random),
            Map::Rw(m) => m.advise(memmap2::Advice::Random),
        };
        if let Err(e) = advised {
            log::debug!("madvise(MADV_RANDOM) on {}: {e}", self.path.display());
        }
    }

    /// EIO once the file was found shorter than the map (truncated by
    /// another process while mapped): what was read from the missing
    /// pages was zeros, and what was written there went nowhere.
    pub fn check_intact(&self) -> Result<()> {
        self.region.check()
    }

    /// Write every dirty page of the map to the media and wait (a
    /// durability point, format-spec/14-media.md).
    pub fn flush(&self) -> Result<()> {
        match &self.map {
            Map::Ro(_) => Ok(()),
            Map::Rw(m) => m
                .flush()
                .map_err(|e| FsError::io(format!("flush of {} failed", self.path.display()), e)),
        }
    }
}

/// A validated image: a mapped file whose superblock and geometry checked out.
pub struct Image {
    file: MappedFile,
    geometry: Geometry,
    /// The superblock validated at open (primary, or the backup).
    sb: Superblock,
    /// Why the primary superblock was not used, when the backup was.
    primary_error: Option<FsError>,
}

impl Image {
    /// Open, lock, validate the superblock and size, then map.
    pub fn open(path: &Path, mode: Mode) -> Result<Image> {
        let mut file = open_file(path, mode, false)?;
        lock(&file, path, mode)?;
        let backing = loopdev::lock_backing_file(&file, path, mode)?;
        let len = size_of(&mut file, path)?;
        let read = |off: u64, n: usize| -> Option<Vec<u8>> {
            let mut buf = vec![0u8; n];
            let got = file.read_at(&mut buf, off).ok()?;
            buf.truncate(got);
            Some(buf)
        };
        let (sb, primary_error) = Superblock::find(len, &read)?;
        if primary_error.is_some() {
            eprintln!(
                "vexfs: {}: the primary superblock is damaged; using the backup in the last block",
                path.display()
            );
        }
        let geometry = Geometry::new(&sb, len)?;
        if mode == Mode::ReadWrite && geometry.access == crate::format::features::Access::ReadOnlyOnly {
            return Err(FsError::Unsupported(
                "unknown ro_compat features: the image can only be opened read-only".into(),
            ));
        }
        let is_device = file
            .metadata()
            .map(|m| m.file_type().is_block_device())
            .unwrap_or(false);
        let file = MappedFile::map((file, backing), path, mode, len, is_device)?;
        Ok(Image {
            file,
            geometry,
            sb,
            primary_error,
        })
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// The superblock (validated at open).
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// What is wrong with the primary superblock, when the backup was used.
    pub fn primary_superblock_error(&self) -> Option<&FsError> {
        self.primary_error.as_ref()
    }

    /// Block `n` (checked against s_blocks_count).
    pub fn block(&self, n: u64) -> Result<&[u8]> {
        self.block_range(n, 1)
    }

    /// Blocks `n .. n + count` as one slice (checked).
    pub fn block_range(&self, n: u64, count: u64) -> Result<&[u8]> {
        let end = n.checked_add(count).filter(|&e| e <= self.geometry.blocks_count);
        let Some(end) = end else {
            return Err(FsError::corrupt(
                "block reference",
                n.saturating_mul(BLOCK_SIZE_U64),
                "block",
                crate::error::Expected::Below(self.geometry.blocks_count),
                n,
            ));
        };
        Ok(&self.file.bytes()[n as usize * BLOCK_SIZE..end as usize * BLOCK_SIZE])
    }

    /// Bytes at an image offset (checked).
    pub fn bytes_at(&self, offset: u64, len: usize) -> Result<&[u8]> {
        let bytes = self.file.bytes();
        usize::try_from(offset)
            .ok()
            .and_then(|o| bytes.get(o..o.checked_add(len)?))
            .ok_or(FsError::corrupt(
                "image",
                offset,
                "offset",
                crate::error::Expected::Below(bytes.len() as u64),
                offset,
            ))
    }

    /// The underlying mapped file.
    pub fn file(&self) -> &MappedFile {
        &self.file
    }

    /// Split into the mapped file (which keeps the lock) and the geometry.
    pub fn into_parts(self) -> (MappedFile, Geometry, Superblock) {
        (self.file, self.geometry, self.sb)
    }

    /// The underlying mapped file, mutable (tools that repair or mkfs).
    pub fn file_mut(&mut self) -> &mut MappedFile {
        &mut self.file
    }
}
