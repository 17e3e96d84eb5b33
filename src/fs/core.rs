//! [`Fs`]: an image opened for the filesystem operations, with the lock
//! discipline (one writer at a time through a transaction, readers in
//! parallel) and the attribute type the adapter replies with.

use super::inode::{self as ino_io, InodeBuf};
use super::txn::{Staged, Txn, MAX_TXN_BLOCKS};
use crate::error::{FsError, Result};
use crate::events::{Event, Op};
use crate::format::inode::{FileType, InodeNo, Timestamp};
use crate::format::superblock::{Superblock, STATE_DIRTY, STATE_VALID, SUPERBLOCK_SIZE};
use crate::image::{Image, Media, Mode};
use crate::journal::{self, JournalState};
use crate::layout::Geometry;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use zerocopy::{FromBytes, IntoBytes};

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

/// Everything behind the image lock.
struct State {
    /// The image's bytes and flushes: the mapped file, or a test harness.
    media: Box<dyn Media + Send + Sync>,
    /// Committed transactions' blocks not yet logged (journaled images).
    staged: Staged,
    /// Blocks freed by staged transactions: revoke candidates, and not to
    /// be allocated again before those transactions are durable.
    freed: BTreeSet<u64>,
    journal: Option<JournalState>,
    /// The image file, for writing file data with pwrite (see
    /// [`Media::data_file`]).
    data_file: Option<std::fs::File>,
    /// File data was written since the image was last flushed whole: the
    /// next commit flushes everything (ordered mode), not only the ring.
    data_written: bool,
}

/// Seconds after which staged changes are committed by [`Fs::tick`].
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(5);

/// A mounted image.
pub struct Fs {
    state: RwLock<State>,
    pub(crate) geometry: Geometry,
    read_only: bool,
    /// Set when a flush failed: the filesystem refuses further writes.
    failed: AtomicBool,
    /// Set once `close` has completed, so later calls (the adapter's
    /// destroy, the daemon, Drop) do not commit and checkpoint again.
    closed: AtomicBool,
    last_commit: Mutex<Instant>,
    /// Open handles per inode, for open-unlinked files.
    pub(crate) open_counts: Mutex<HashMap<u32, u32>>,
    /// Unlinked inodes the kernel still holds (see [`super::lifecycle::Forgets`]).
    pub(crate) forgets: super::lifecycle::Forgets,
    /// Collections opened by searches, reused while unchanged.
    pub(crate) vectors: crate::vector::Cache,
    /// Structures kept by VEXFS_IOC_SET_VECTOR_META, per inode, until
    /// unmount (format-spec/12 §12.4; never written to the image).
    pub(crate) ioctl_meta: Mutex<HashMap<u32, [u8; 40]>>,
    /// `s_checksum_seed` (event records are always checksummed).
    pub(crate) seed: u32,
    /// Event recording and readers' positions (format-spec/11).
    pub(crate) events: crate::events::follow::EventState,
    /// Inodes changed behind the kernel's attribute cache.
    pub stale: super::stale::Stale,
}

impl Fs {
    /// Open an image for the filesystem (exclusive lock when read-write),
    /// replaying the journal first when it holds committed transactions.
    pub fn open(path: &Path, read_only: bool) -> Result<Fs> {
        let image = Image::open(path, if read_only { Mode::ReadOnly } else { Mode::ReadWrite })?;
        let from_backup = image.primary_superblock_error().is_some();
        let (file, geometry, sb) = image.into_parts();
        Self::from_parts(
            Box::new(file),
            geometry,
            (sb.s_checksum_seed.get(), from_backup.then_some(&sb)),
            read_only,
            &path.display().to_string(),
        )
    }

    /// Open an image held by any [`Media`] (the crash harness uses an
    /// in-memory one); the superblock and geometry are validated first.
    pub fn from_media(media: Box<dyn Media + Send + Sync>, read_only: bool) -> Result<Fs> {
        let bytes = media.bytes();
        let read = |off: u64, n: usize| {
            bytes
                .get(off as usize..(off as usize).checked_add(n)?)
                .map(<[u8]>::to_vec)
        };
        let (sb, _) = crate::format::superblock::Superblock::find(bytes.len() as u64, &read)?;
        let geometry = Geometry::new(&sb, bytes.len() as u64)?;
        if !read_only && geometry.access == crate::format::features::Access::ReadOnlyOnly {
            return Err(FsError::Unsupported(
                "unknown ro_compat features: read-only only".into(),
            ));
        }
        Self::from_parts(media, geometry, (sb.s_checksum_seed.get(), None), read_only, "image")
    }

    /// `sb`: s_checksum_seed of the validated superblock, and that
    /// superblock when it is the backup (the primary is damaged).
    fn from_parts(
        mut media: Box<dyn Media + Send + Sync>,
        geometry: Geometry,
        (seed, backup): (u32, Option<&Superblock>),
        read_only: bool,
        name: &str,
    ) -> Result<Fs> {
        let journal = if !journal::enabled(&geometry) {
            None
        } else if read_only {
            if journal::scan(media.bytes(), &geometry, seed)?.needed {
                return Err(FsError::Unsupported(
                    "the journal holds transactions to replay: mount read-write once (or run fsck.vexfs)".into(),
                ));
            }
            None
        } else {
            let n = journal::recover(&mut *media, &geometry, seed)?;
            if n > 0 {
                eprintln!("vexfs: {name}: replayed {n} journal transaction(s)");
            }
            Some(JournalState::load(&*media, &geometry, seed)?)
        };
        media.advise_random();
        let data_file = if read_only { None } else { media.data_file() };
        let state = State {
            data_file,
            data_written: false,
            media,
            staged: Staged::default(),
            freed: BTreeSet::new(),
            journal,
        };
        let fs = Fs {
            state: RwLock::new(state),
            geometry,
            read_only,
            failed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            last_commit: Mutex::new(Instant::now()),
            open_counts: Mutex::new(HashMap::new()),
            forgets: Default::default(),
            vectors: if read_only {
                crate::vector::Cache::frozen()
            } else {
                crate::vector::Cache::default()
            },
            ioctl_meta: Mutex::new(HashMap::new()),
            seed,
            events: Default::default(),
            stale: Default::default(),
        };
        if let (Some(sb), false) = (backup, read_only) {
            // Before anything edits block 0 in place (and reseals it).
            fs.restore_primary_superblock(sb, name)?;
        }
        fs.init_events(true)?;
        if !read_only {
            fs.reclaim_orphans()?;
            fs.mark_mounted(true)?;
        }
        Ok(fs)
    }

    /// The primary superblock was damaged and the image opened with the
    /// backup (format-spec/02 §2.5): write the backup's copy over it, with
    /// free counts taken from the bitmaps (the backup's date from mkfs),
    /// unless the journal replay already restored it.
    fn restore_primary_superblock(&self, backup: &Superblock, name: &str) -> Result<()> {
        let primary_ok = self.read(|txn, _| Ok(Superblock::parse(txn.block(0)?).is_ok()))?;
        if primary_ok {
            return Ok(());
        }
        self.write(|txn, g| {
            txn.block_mut(0)?[..SUPERBLOCK_SIZE].copy_from_slice(backup.as_bytes());
            super::alloc::recount_free(txn, g)
        })?;
        self.sync()?;
        eprintln!("vexfs: {name}: the primary superblock was rewritten from the backup copy");
        Ok(())
    }

    /// Record events or not (mount option `events=off`; the ring must exist).
    pub fn set_events(&self, on: bool) -> Result<()> {
        self.init_events(on)
    }

    /// Superblock bookkeeping: mounted (state "not clean", mount count and
    /// time) or cleanly unmounted (state "clean", write time).
    fn mark_mounted(&self, mounted: bool) -> Result<()> {
        let now = super::inode::now().sec;
        self.write(|txn, g| {
            let op = if mounted { Op::Mount } else { Op::Unmount };
            let count = crate::format::superblock::Superblock::ref_from_prefix(txn.block(0)?)
                .map_or(0, |(sb, _)| u64::from(sb.s_mnt_count.get()));
            let aux = if mounted { count + 1 } else { 0 };
            self.emit(txn, g, None, Event::new(op, 0).with_aux(aux))?;
            super::alloc::with_superblock(txn, |sb| {
                let state = sb.s_state.get() & !(STATE_VALID | STATE_DIRTY);
                if mounted {
                    sb.s_state.set(state | STATE_DIRTY);
                    sb.s_mnt_count.set(sb.s_mnt_count.get().wrapping_add(1));
                    sb.s_mtime.set(now as u32);
                    sb.s_mtime_hi = (now >> 32) as u8;
                } else {
                    sb.s_state.set(state | STATE_VALID);
                }
                sb.s_wtime.set(now as u32);
                sb.s_wtime_hi = (now >> 32) as u8;
            })
        })
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only || self.failed.load(Ordering::Relaxed)
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
        let st = self.state.read();
        let txn = Txn::read_only_with_overlay(st.media.bytes(), self.geometry.blocks_count, &st.staged);
        let r = f(&txn, &self.geometry);
        // Whatever `f` made of a page that vanished, the answer is EIO.
        self.check_intact(&*st.media)?;
        r
    }

    /// EIO, and read-only from now on, once the image shrank under the map.
    fn check_intact(&self, media: &(dyn Media + Send + Sync)) -> Result<()> {
        media.check_intact().inspect_err(|e| {
            if !self.failed.swap(true, Ordering::Relaxed) {
                eprintln!("vexfs: {e}; the filesystem is now read-only");
            }
        })
    }

    /// Run `f` in a transaction (exclusive lock); its changes become
    /// visible together when `f` succeeds, and not at all when it fails.
    /// On journaled images they are staged and logged at the next commit.
    pub fn write<R>(&self, f: impl FnMut(&mut Txn<'_>, &Geometry) -> Result<R>) -> Result<R> {
        self.write_with_limit(MAX_TXN_BLOCKS, f)
    }

    /// [`Fs::write`] for one administrative change too large for
    /// [`MAX_TXN_BLOCKS`] (a collection's reorder): it may dirty as many
    /// blocks as the journal ring holds (an image without a journal: 16
    /// times the usual limit). Past that it fails with ENOSPC, nothing
    /// changed.
    pub fn write_large<R>(&self, f: impl FnMut(&mut Txn<'_>, &Geometry) -> Result<R>) -> Result<R> {
        let limit = match self.state.read().journal {
            Some(_) => usize::try_from(journal::ring_len(&self.geometry)).unwrap_or(usize::MAX),
            None => MAX_TXN_BLOCKS * 16,
        };
        self.write_with_limit(limit.max(MAX_TXN_BLOCKS), f)
    }

    fn write_with_limit<R>(&self, limit: usize, mut f: impl FnMut(&mut Txn<'_>, &Geometry) -> Result<R>) -> Result<R> {
        if self.is_read_only() {
            return Err(FsError::ReadOnly);
        }
        let mut guard = self.state.write();
        let blocks = self.geometry.blocks_count;
        if guard.journal.is_none() {
            let st = &mut *guard;
            let mut txn = Txn::new(st.media.bytes_mut()?, blocks)
                .with_data_file(st.data_file.as_ref())
                .with_block_limit(limit);
            let r = f(&mut txn, &self.geometry);
            if r.is_ok() {
                txn.commit();
            }
            self.check_intact(&*st.media)?;
            let r = r?;
            // Without a journal a change is in place at once: so are its events.
            if let Some(next) = self.staged_next_event(&guard) {
                self.events_committed(next);
            }
            return Ok(r);
        }
        let mut retried = false;
        let (r, dirty, txn_freed) = loop {
            let State {
                media,
                staged,
                freed,
                data_file,
                data_written,
                journal,
                ..
            } = &mut *guard;
            let logged = journal.as_ref().map(|j| j.logged());
            let mut txn = Txn::with_overlay(media.bytes_mut()?, blocks, staged)
                .with_quarantine(freed)
                .with_logged(logged)
                .with_data_file(data_file.as_ref())
                .with_block_limit(limit);
            let r = f(&mut txn, &self.geometry);
            // Even a failed operation may have written data blocks.
            *data_written |= txn.wrote_data();
            let (d, fr) = txn.into_parts();
            self.check_intact(&**media)?;
            match r {
                // The space freed by staged transactions becomes usable
                // once they are durable: commit them and try once more.
                Err(FsError::NoSpace) if !retried && !freed.is_empty() => {
                    retried = true;
                    self.commit_locked(&mut guard)?;
                }
                r => break (r?, d, fr),
            }
        };
        self.make_room(&mut guard, dirty.len(), txn_freed.len())?;
        let State { staged, freed, .. } = &mut *guard;
        for b in &txn_freed {
            staged.remove(b);
        }
        freed.extend(txn_freed);
        staged.extend(dirty);
        let readers_wait = self.events.pending.load(Ordering::Relaxed) && self.followers_active();
        if staged.len() >= self.stage_limit() || readers_wait {
            self.commit_locked(&mut guard)?;
        }
        Ok(r)
    }

    /// Every commit must fit the journal ring, or it could only be written
    /// home without the journal (not atomically). An operation that alone
    /// needs more blocks than the ring holds is refused (ENOSPC; nothing of
    /// it is applied); one that does not fit beside the staged changes
    /// has those committed first.
    fn make_room(&self, st: &mut State, blocks: usize, freed: usize) -> Result<()> {
        let ring = journal::ring_len(&self.geometry);
        if journal::tx_blocks(blocks, freed) > ring {
            eprintln!(
                "vexfs: an operation changing {blocks} metadata blocks does not fit the journal ({ring} blocks); refused"
            );
            return Err(FsError::NoSpace);
        }
        // The commit adds block 0 (needs_recovery) if it is not staged yet.
        let sb = usize::from(!st.staged.contains_key(&0));
        if journal::tx_blocks(st.staged.len() + blocks + sb, st.freed.len() + freed) > ring {
            self.commit_locked(st)?;
        }
        Ok(())
    }

    /// Most staged blocks before a commit is forced: at most 2048 (8 MiB
    /// of heap). Below that, a smaller ring is filled by one commit
    /// (`make_room` commits before an operation that would overflow it).
    /// Why not less: every commit costs two flushes, and one that finds
    /// the ring in use a checkpoint with two more, while a bulk build
    /// changes the same blocks again and again; the fewer and larger the
    /// commits, the fewer flushes and the fewer copies of each block are
    /// written (half the ring, the earlier limit, checkpointed before
    /// every commit and took twice as many).
    fn stage_limit(&self) -> usize {
        journal::ring_len(&self.geometry).clamp(1, 2048) as usize
    }

    fn commit_locked(&self, st: &mut State) -> Result<()> {
        let next_event = self.staged_next_event(st);
        let r = self.commit_staged(st);
        if let (Ok(()), Some(next)) = (&r, next_event) {
            self.events_committed(next);
        }
        r
    }

    /// The ring's next sequence number as staged, when events are kept.
    fn staged_next_event(&self, st: &State) -> Option<u64> {
        if !crate::events::ring::enabled(&self.geometry) {
            return None;
        }
        let txn = Txn::read_only_with_overlay(st.media.bytes(), self.geometry.blocks_count, &st.staged);
        self.staged_event_seq(&txn).ok()
    }

    fn commit_staged(&self, st: &mut State) -> Result<()> {
        let State {
            media,
            staged,
            freed,
            journal,
            data_written,
            ..
        } = st;
        let Some(js) = journal.as_mut() else {
            return media.flush(None);
        };
        let revocable: Vec<u64> = freed.iter().copied().collect();
        // Fits the ring: `make_room` keeps every staged set within it, so
        // nothing is ever written home before it is durable in the journal.
        let r = journal::commit_ordered(
            &mut **media,
            &self.geometry,
            js,
            staged,
            &revocable,
            false,
            *data_written,
        );
        if r.is_ok() {
            // Flushed whole just now, or nothing was written to flush.
            *data_written = false;
        }
        let r = r.and_then(|()| media.check_intact());
        if let Err(e) = &r {
            eprintln!("vexfs: commit failed ({e}); the filesystem is now read-only");
            self.failed.store(true, Ordering::Relaxed);
        }
        freed.clear();
        *self.last_commit.lock() = Instant::now();
        r
    }

    /// A durability point (fsync, fsyncdir, syncfs): when it returns, every
    /// change made so far survives a crash.
    ///
    /// Once a flush has failed nothing written since can be vouched for:
    /// every later sync fails too (EIO), and the filesystem is read-only.
    pub fn sync(&self) -> Result<()> {
        let mut st = self.state.write();
        if self.failed.load(Ordering::Relaxed) {
            return Err(FsError::io(
                "an earlier write to the image failed; the filesystem is read-only",
                std::io::Error::from_raw_os_error(libc::EIO),
            ));
        }
        if st.journal.is_some() {
            // Nothing staged: every change is in a commit that is durable
            // already (file data is flushed before each commit). This is
            // also the group commit: fsyncs that waited for the lock while
            // another one committed their changes return at once.
            return match st.staged.is_empty() {
                true => Ok(()),
                false => self.commit_locked(&mut st),
            };
        }
        st.media.flush(None).inspect_err(|e| {
            eprintln!("vexfs: flush failed ({e}); the filesystem is now read-only");
            self.failed.store(true, Ordering::Relaxed);
        })
    }

    /// Commit staged changes older than [`COMMIT_INTERVAL`] (the daemon
    /// calls this periodically, like jbd2's commit timer).
    pub fn tick(&self) -> Result<()> {
        let due = self.last_commit.lock().elapsed() >= COMMIT_INTERVAL;
        let pending = !self.state.read().staged.is_empty();
        if due && pending {
            self.sync()?;
        }
        Ok(())
    }

    /// Unmount: commit, checkpoint, and leave the journal empty and the
    /// image clean.
    pub fn close(&self) -> Result<()> {
        if self.read_only || self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        if !self.is_read_only() {
            // Unmounted: the kernel holds nothing any more (and sends no
            // FORGET for what it held). Should that fail, the inodes stay
            // on the orphan chain and the next mount frees them.
            if let Err(e) = self.forget_all() {
                eprintln!("vexfs: freeing unlinked inodes at unmount: {e}");
            }
            // After vector changes, link any graph island the writers'
            // local checks left (format-spec/09 §9.2), so the image leaves
            // the mount as fsck wants it.
            if !self.failed.load(Ordering::Relaxed) {
                self.reconnect_changed();
            }
            self.mark_mounted(false)?;
        }
        self.sync()?;
        let mut guard = self.state.write();
        let State {
            media,
            journal,
            staged,
            freed,
            ..
        } = &mut *guard;
        let r = match journal.as_mut() {
            Some(js) => {
                // A last logged transaction clears needs_recovery.
                let revocable: Vec<u64> = freed.iter().copied().collect();
                journal::commit(&mut **media, &self.geometry, js, staged, &revocable, true)
                    .and_then(|()| journal::checkpoint(&mut **media, &self.geometry, js))
            }
            None => media.flush(None),
        };
        freed.clear();
        if r.is_ok() {
            self.closed.store(true, Ordering::Release);
        }
        r
    }

    /// Attributes of inode `n`.
    pub fn getattr(&self, n: u64) -> Result<Attr> {
        let ino = self.ino(n)?;
        self.read(|t, g| attr_of(&live(t, g, ino)?))
    }
}

impl Drop for Fs {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            eprintln!("vexfs: unmount did not complete cleanly: {e}");
        }
    }
}

/// Load an inode that must be in use.
pub fn live(txn: &Txn<'_>, g: &Geometry, ino: InodeNo) -> Result<InodeBuf> {
    let b = match ino_io::load(txn, g, ino) {
        // A freed inode is all zeros (checksum 0 included): not there,
        // not damaged. The kernel asks about one when, with the writeback
        // cache, it writes back the times of a file unlinked meanwhile.
        Err(FsError::Corrupt(_)) if ino_io::is_zeroed(txn, g, ino)? => return Err(FsError::NotFound),
        r => r?,
    };
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
