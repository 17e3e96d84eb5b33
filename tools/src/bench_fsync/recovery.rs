//! Recovery after a crash with a journal full of committed, not yet checkpointed transactions.
//!
//! VexFS checkpoints only when the ring has no room for the next transaction and at unmount
//! (src/journal/commit.rs), so a burst of fsync'd transactions filling most of the ring,
//! followed by SIGKILL of the mount daemon, leaves every one of them in the journal with
//! `js_start` set. A probe run measures how many ring blocks one transaction takes, so that the
//! real burst fills the ring to `--journal-fill` without triggering a checkpoint.
//!
//! ext4 gets the same burst, then `EXT4_IOC_SHUTDOWN` with `NOLOGFLUSH` (what xfstests' shutdown
//! tests use to simulate a crash): the unmount that follows leaves the journal un-checkpointed
//! and `needs_recovery` set, so the next mount replays it.
//!
//! Both timed mounts start with the image's pages (and the loop device's buffers) dropped from
//! the page cache, as after a reboot.

use super::sys::{self, io_err, Ext4Mount, VexMount, WorkDir, R};
use super::workload;
use serde::Serialize;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use vexfs::image::{Image, Mode};

/// What the benchmark needs to know to run the recovery part.
pub struct Setup<'a> {
    pub mount_bin: &'a Path,
    pub mkfs_bin: &'a Path,
    pub fsck_bin: &'a Path,
    pub work: &'a WorkDir,
    pub image_mib: u64,
    pub vexfs_options: &'a str,
    pub ext4_options: &'a str,
    pub payload: &'a [u8],
    /// Fraction of VexFS's ring the burst should fill.
    pub fill: f64,
}

/// What a journal held when the filesystem was left dirty.
#[derive(Clone, Debug, Serialize)]
pub struct JournalContent {
    /// Complete (committed) transactions to replay.
    pub transactions: u64,
    /// Metadata blocks logged in them (what replay writes home).
    pub logged_blocks: u64,
    /// Ring blocks they occupy (descriptors, logged blocks, revokes, commits).
    pub ring_blocks: u64,
    /// Size of the journal ring in blocks.
    pub journal_blocks: u64,
    /// ring_blocks / journal_blocks.
    pub fill: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct VexfsRecovery {
    /// Transactions of the probe run and the ring blocks one took (steady state).
    pub probe_transactions: u64,
    pub ring_blocks_per_transaction: f64,
    /// Fsync'd transactions of the burst before SIGKILL.
    pub burst_transactions: u64,
    pub burst_seconds: f64,
    pub journal: JournalContent,
    /// `vexfs::journal::recover` alone, in this process, on a copy of the dirty image (cold cache).
    pub replay_in_process_ms: f64,
    pub replayed_transactions: u64,
    /// `mount-vexfs IMAGE DIR` of the dirty image until it returned (cold cache): open, replay,
    /// FUSE mount.
    pub mount_dirty_ms: f64,
    /// The same image mounted again after a clean unmount (cold cache).
    pub mount_clean_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Ext4Recovery {
    /// Why this many transactions: the same as VexFS's burst, or a fill of ext4's own journal.
    pub burst: String,
    pub burst_transactions: u64,
    pub burst_seconds: f64,
    /// Whether the journal could be left dirty (EXT4_IOC_SHUTDOWN worked and dumpe2fs showed
    /// needs_recovery); if not, `mount_dirty_ms` is absent.
    pub dirty: bool,
    pub note: String,
    pub journal: Option<JournalContent>,
    /// `mount -t ext4` of the dirty filesystem (cold cache), journal replay included.
    pub mount_dirty_ms: Option<f64>,
    /// `mount -t ext4` after a clean unmount (cold cache).
    pub mount_clean_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn vexfs_err(what: &str, p: &Path) -> impl FnOnce(vexfs::FsError) -> String {
    let p = p.display().to_string();
    let what = what.to_string();
    move |e| format!("{what} {p}: {e}")
}

/// The journal of an unmounted VexFS image, from `vexfs::journal::scan` (read-only).
pub fn vexfs_journal(image: &Path) -> R<JournalContent> {
    let img = Image::open(image, Mode::ReadOnly).map_err(vexfs_err("open", image))?;
    let g = img.geometry();
    let seed = img.superblock().s_checksum_seed.get();
    let s = vexfs::journal::scan(img.file().bytes(), g, seed).map_err(vexfs_err("journal scan of", image))?;
    let ring_len = vexfs::journal::ring_len(g);
    let logged: u64 = s.txs.iter().map(|(_, t)| t.len() as u64).sum();
    let revoke_blocks = s.revoked.len().div_ceil(vexfs::journal::REVOKES_PER_BLOCK) as u64;
    let ring: u64 = s
        .txs
        .iter()
        .map(|(_, t)| vexfs::journal::tx_blocks(t.len(), 0))
        .sum::<u64>()
        + revoke_blocks;
    Ok(JournalContent {
        transactions: s.txs.len() as u64,
        logged_blocks: logged,
        ring_blocks: ring,
        journal_blocks: ring_len,
        fill: ring as f64 / ring_len as f64,
    })
}

/// Ring blocks per transaction over the transactions after the first few (mount, mkdir).
fn vexfs_tx_blocks(image: &Path) -> R<(u64, f64)> {
    let img = Image::open(image, Mode::ReadOnly).map_err(vexfs_err("open", image))?;
    let g = img.geometry();
    let seed = img.superblock().s_checksum_seed.get();
    let s = vexfs::journal::scan(img.file().bytes(), g, seed).map_err(vexfs_err("journal scan of", image))?;
    let tail: Vec<u64> = s
        .txs
        .iter()
        .skip(5)
        .map(|(_, t)| vexfs::journal::tx_blocks(t.len(), 0))
        .collect();
    if tail.is_empty() {
        return Err(format!(
            "the probe left only {} transactions in the journal",
            s.txs.len()
        ));
    }
    let max = *tail.iter().max().unwrap_or(&0) as f64;
    let mean = tail.iter().sum::<u64>() as f64 / tail.len() as f64;
    // Plan with the larger of the mean and a bit less than the largest: directory growth makes
    // some transactions bigger.
    Ok((s.txs.len() as u64, mean.max(max * 0.9)))
}

/// Replay the journal of `image` with `vexfs::journal::recover`; transactions and time.
fn vexfs_replay(image: &Path) -> R<(u64, Duration)> {
    let t0 = Instant::now();
    let img = Image::open(image, Mode::ReadWrite).map_err(vexfs_err("open", image))?;
    let (mut file, g, sb) = img.into_parts();
    let n = vexfs::journal::recover(&mut file, &g, sb.s_checksum_seed.get()).map_err(vexfs_err("replay of", image))?;
    let took = t0.elapsed();
    drop(file);
    Ok((n as u64, took))
}

fn mkfs_vexfs(s: &Setup, image: &Path) -> R<()> {
    sys::run(
        Command::new(s.mkfs_bin)
            .arg("--quiet")
            .arg("--force")
            .arg("--size")
            .arg(format!("{}M", s.image_mib))
            .arg(image),
    )
    .map(drop)
}

/// Mount, make `burst/`, run `n` fsync'd transactions in it, SIGKILL the daemon.
fn vexfs_crash(s: &Setup, image: &Path, mnt: &Path, n: u64) -> R<Duration> {
    mkfs_vexfs(s, image)?;
    let log = s.work.path.join("mount-vexfs.log");
    let m = VexMount::foreground(s.mount_bin, image, mnt, s.vexfs_options, &log)?;
    let dir = mnt.join("burst");
    workload::durable_dir(&dir)?;
    let took = workload::burst(&dir, n, s.payload)?;
    m.kill9()?;
    Ok(took)
}

pub fn vexfs(s: &Setup) -> R<VexfsRecovery> {
    let image = s.work.path.join("vexfs-recovery.img");
    let mnt = s.work.subdir("mnt-vexfs-recovery")?;
    const PROBE: u64 = 60;
    eprintln!("bench-fsync: recovery: VexFS probe ({PROBE} fsync'd transactions, then kill -9)");
    vexfs_crash(s, &image, &mnt, PROBE)?;
    let (probe_txs, per_tx) = vexfs_tx_blocks(&image)?;
    let ring_len = vexfs_journal(&image)?.journal_blocks;
    let n = ((s.fill * ring_len as f64 / per_tx).floor() as u64)
        .saturating_sub(2)
        .max(1);
    eprintln!(
        "bench-fsync: recovery: VexFS burst of {n} fsync'd transactions (~{per_tx:.1} ring blocks each, ring {ring_len} blocks), then kill -9"
    );
    let burst = vexfs_crash(s, &image, &mnt, n)?;
    let journal = vexfs_journal(&image)?;
    if journal.transactions < n {
        eprintln!(
            "bench-fsync: recovery: warning: the journal holds {} transactions, fewer than the {n} of the burst (a checkpoint happened)",
            journal.transactions
        );
    }
    // Replay alone, on a (sparse) copy, cold.
    let copy = s.work.path.join("vexfs-recovery-copy.img");
    sys::run(Command::new("cp").arg("--sparse=always").arg(&image).arg(&copy))?;
    sys::drop_cache(&copy)?;
    let (replayed, replay) = vexfs_replay(&copy)?;
    fs::remove_file(&copy).map_err(io_err("remove", &copy))?;
    if replayed != journal.transactions {
        return Err(format!(
            "replay applied {replayed} transactions, the scan found {}",
            journal.transactions
        ));
    }
    // The mount a user runs after the crash, cold.
    sys::drop_cache(&image)?;
    let (m, dirty) = VexMount::daemon(s.mount_bin, &image, &mnt, s.vexfs_options)?;
    workload::verify_burst(&mnt.join("burst"), n, s.payload)?;
    m.finish()?;
    sys::fsck_vexfs(s.fsck_bin, &image)?;
    sys::drop_cache(&image)?;
    let (m, clean) = VexMount::daemon(s.mount_bin, &image, &mnt, s.vexfs_options)?;
    m.finish()?;
    fs::remove_file(&image).map_err(io_err("remove", &image))?;
    Ok(VexfsRecovery {
        probe_transactions: probe_txs,
        ring_blocks_per_transaction: per_tx,
        burst_transactions: n,
        burst_seconds: burst.as_secs_f64(),
        journal,
        replay_in_process_ms: ms(replay),
        replayed_transactions: replayed,
        mount_dirty_ms: ms(dirty),
        mount_clean_ms: ms(clean),
    })
}

/// `dumpe2fs -h`: (needs_recovery set, journal blocks).
fn ext4_header(dev: &Path) -> R<(bool, u64)> {
    let out = sys::run(Command::new("dumpe2fs").arg("-h").arg(dev))?;
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let needs = field("Filesystem features:").is_some_and(|f| f.split_whitespace().any(|w| w == "needs_recovery"));
    let blocks = field("Total journal blocks:")
        .or_else(|| field("Journal length:"))
        .and_then(|v| v.parse().ok())
        .ok_or("dumpe2fs -h shows no journal length")?;
    Ok((needs, blocks))
}

/// The journal's transactions and blocks, from `debugfs -R logdump`.
fn ext4_journal(dev: &Path, journal_blocks: u64) -> R<JournalContent> {
    let out = sys::run(Command::new("debugfs").arg("-R").arg("logdump").arg(dev))?;
    let (mut start, mut last, mut commits, mut descriptors, mut revokes) = (None, None, 0u64, 0u64, 0u64);
    for l in out.lines() {
        if let Some(r) = l.strip_prefix("Journal starts at block ") {
            start = r.split(',').next().and_then(|b| b.trim().parse::<u64>().ok());
        }
        let Some((_, at)) = l.split_once(") at block ") else {
            continue;
        };
        let Ok(at) = at.trim().trim_end_matches(':').parse::<u64>() else {
            continue;
        };
        if l.contains("(commit block)") {
            commits += 1;
            last = Some(at);
        } else if l.contains("(descriptor block)") {
            descriptors += 1;
        } else if l.contains("(revoke table)") {
            revokes += 1;
        }
    }
    let start = start.ok_or("debugfs logdump shows no journal start")?;
    let ring = match last {
        Some(e) if e >= start => e - start + 1,
        // Wrapped: positions 1 .. journal_blocks - 1 form the ring.
        Some(e) => journal_blocks - start + e,
        None => 0,
    };
    Ok(JournalContent {
        transactions: commits,
        logged_blocks: ring.saturating_sub(commits + descriptors + revokes),
        ring_blocks: ring,
        journal_blocks,
        fill: ring as f64 / journal_blocks as f64,
    })
}

/// Most of its journal ext4 is asked to fill: jbd2 starts checkpointing on its own when a quarter
/// or so of the log is left.
pub const EXT4_MAX_FILL: f64 = 0.7;

/// Transactions that fill `fill` of ext4's journal, from an earlier run's journal content.
pub fn ext4_fill_transactions(j: &JournalContent, fill: f64) -> Option<u64> {
    let per_tx = j.ring_blocks as f64 / j.transactions.max(1) as f64;
    (j.transactions > 0).then(|| ((fill * j.journal_blocks as f64 / per_tx).floor() as u64).max(1))
}

pub fn ext4(s: &Setup, n: u64, burst_label: &str) -> R<Ext4Recovery> {
    let image = s.work.path.join("ext4-recovery.img");
    let mnt = s.work.subdir("mnt-ext4-recovery")?;
    eprintln!("bench-fsync: recovery: ext4 burst of {n} fsync'd transactions, then EXT4_IOC_SHUTDOWN (no log flush)");
    let dev = sys::ext4_image(&image, s.image_mib)?;
    let (m, _) = Ext4Mount::mount(&dev.dev, &mnt, s.ext4_options)?;
    let dir = mnt.join("burst");
    workload::durable_dir(&dir)?;
    let burst = workload::burst(&dir, n, s.payload)?;
    let shutdown = sys::ext4_shutdown(&mnt);
    m.finish()?;
    let (needs, journal_blocks) = ext4_header(&dev.dev)?;
    let (dirty, note, journal, mount_dirty) = match (shutdown, needs) {
        (Ok(()), true) => {
            let j = ext4_journal(&dev.dev, journal_blocks)?;
            dev.flush_buffers()?;
            sys::drop_cache(&image)?;
            let (m, took) = Ext4Mount::mount(&dev.dev, &mnt, s.ext4_options)?;
            workload::verify_burst(&mnt.join("burst"), n, s.payload)?;
            m.finish()?;
            sys::e2fsck(&dev.dev)?;
            (
                true,
                "journal left dirty by EXT4_IOC_SHUTDOWN(NOLOGFLUSH); mount replays it".to_string(),
                Some(j),
                Some(ms(took)),
            )
        }
        (Ok(()), false) => (
            false,
            "EXT4_IOC_SHUTDOWN worked but the unmount left no journal to replay: only a clean mount is timed"
                .to_string(),
            None,
            None,
        ),
        (Err(e), _) => (
            false,
            format!("the journal could not be left dirty ({e}): only a clean mount is timed"),
            None,
            None,
        ),
    };
    dev.flush_buffers()?;
    sys::drop_cache(&image)?;
    let (m, clean) = Ext4Mount::mount(&dev.dev, &mnt, s.ext4_options)?;
    m.finish()?;
    drop(dev);
    fs::remove_file(&image).map_err(io_err("remove", &image))?;
    Ok(Ext4Recovery {
        burst: burst_label.to_string(),
        burst_transactions: n,
        burst_seconds: burst.as_secs_f64(),
        dirty,
        note,
        journal,
        mount_dirty_ms: mount_dirty,
        mount_clean_ms: ms(clean),
    })
}
