//! The journal: committed transactions survive a crash at any flush point,
//! uncommitted ones leave no trace, revokes protect reused blocks, and
//! replay is idempotent. The image lives in memory behind the `Media` seam,
//! which records the durable state at every flush.

mod common;

use common::*;
use vexfs::format::superblock::Superblock;
use vexfs::fs::txn::Staged;
use vexfs::image::Media;
use vexfs::journal::{self, JournalState};
use vexfs::layout::Geometry;
use zerocopy::FromBytes;

/// An image in memory; `durable` is what a crash right now would leave.
struct MemMedia {
    bytes: Vec<u8>,
    /// Durable image after each flush (whole-image snapshots).
    flushes: Vec<Vec<u8>>,
}

impl Media for MemMedia {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    fn bytes_mut(&mut self) -> vexfs::Result<&mut [u8]> {
        Ok(&mut self.bytes)
    }
    fn flush(&mut self, _range: Option<(u64, u64)>) -> vexfs::Result<()> {
        self.flushes.push(self.bytes.clone());
        Ok(())
    }
}

fn setup() -> (MemMedia, Geometry, u32) {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "j.img", 8 << 20, false);
    let bytes = std::fs::read(&p).unwrap();
    let sb = Superblock::ref_from_prefix(&bytes).unwrap().0;
    let g = Geometry::new(sb, bytes.len() as u64).unwrap();
    let seed = sb.s_checksum_seed.get();
    (
        MemMedia {
            bytes,
            flushes: Vec::new(),
        },
        g,
        seed,
    )
}

fn block(m: &[u8], b: u64) -> &[u8] {
    &m[b as usize * 4096..(b as usize + 1) * 4096]
}

fn staged(blocks: &[(u64, u8)]) -> Staged {
    blocks.iter().map(|&(b, v)| (b, Box::new([v; 4096]))).collect()
}

#[test]
fn a_committed_transaction_is_replayed_after_a_crash() {
    let (mut m, g, seed) = setup();
    let original = m.bytes.clone();
    let mut js = JournalState::load(&m, &g, seed).unwrap();
    let targets = [(g.first_data_block + 100, 0xA1), (g.first_data_block + 101, 0xB2)];
    let mut s = staged(&targets);
    journal::commit(&mut m, &g, &mut js, &mut s, &[], false).unwrap();
    // Every flush point of the commit is a possible crash state.
    let states = m.flushes.clone();
    let last = states.len() - 1;
    for (i, state) in states.into_iter().enumerate() {
        let mut crashed = MemMedia {
            bytes: state,
            flushes: Vec::new(),
        };
        let applied = journal::recover(&mut crashed, &g, seed).unwrap();
        let committed = i == last;
        assert_eq!(applied, usize::from(committed), "flush point {i}");
        for &(b, v) in &targets {
            let want = if committed {
                [v; 4096].to_vec()
            } else {
                block(&original, b).to_vec()
            };
            assert_eq!(block(&crashed.bytes, b), &want[..], "flush point {i}, block {b}");
        }
        // Idempotent: a second recovery changes nothing.
        let before = crashed.bytes.clone();
        assert_eq!(journal::recover(&mut crashed, &g, seed).unwrap(), 0);
        assert_eq!(crashed.bytes, before);
        assert!(Geometry::new(
            Superblock::ref_from_prefix(&crashed.bytes).unwrap().0,
            crashed.bytes.len() as u64
        )
        .is_ok());
    }
}

#[test]
fn a_damaged_commit_record_discards_its_transaction() {
    let (mut m, g, seed) = setup();
    let mut js = JournalState::load(&m, &g, seed).unwrap();
    let t = g.first_data_block + 7;
    let original = block(&m.bytes, t).to_vec();
    journal::commit(&mut m, &g, &mut js, &mut staged(&[(t, 1)]), &[], false).unwrap();
    let mut crashed = m.flushes.last().unwrap().clone();
    // Ring: position 1 descriptor, 2 data, 3 commit.
    let commit_at = ((g.journal.start + 3) * 4096 + 100) as usize;
    crashed[commit_at] ^= 0xff;
    let mut c = MemMedia {
        bytes: crashed,
        flushes: Vec::new(),
    };
    assert_eq!(journal::recover(&mut c, &g, seed).unwrap(), 0);
    assert_eq!(block(&c.bytes, t), &original[..]);
}

#[test]
fn revoked_blocks_are_not_replayed_over_newer_data() {
    let (mut m, g, seed) = setup();
    let mut js = JournalState::load(&m, &g, seed).unwrap();
    let b = g.first_data_block + 50;
    // T1 logs b as metadata; T2 frees it (revoke); then b holds file data.
    journal::commit(&mut m, &g, &mut js, &mut staged(&[(b, 0x11)]), &[], false).unwrap();
    let other = g.first_data_block + 51;
    journal::commit(&mut m, &g, &mut js, &mut staged(&[(other, 0x22)]), &[b], false).unwrap();
    m.bytes[b as usize * 4096..(b as usize + 1) * 4096].fill(0x33);
    m.flush(None).unwrap();
    let mut c = MemMedia {
        bytes: m.flushes.last().unwrap().clone(),
        flushes: Vec::new(),
    };
    assert_eq!(journal::recover(&mut c, &g, seed).unwrap(), 2);
    assert_eq!(block(&c.bytes, b), &[0x33; 4096][..], "the revoke kept the newer data");
    assert_eq!(block(&c.bytes, other), &[0x22; 4096][..]);
    // Revoked, b may be written outside the journal; `other` may not.
    assert!(!js.is_logged(b) && !js.logged().contains(&b));
    assert!(js.is_logged(other));
}

#[test]
fn the_ring_wraps_through_checkpoints() {
    let (mut m, g, seed) = setup();
    let mut js = JournalState::load(&m, &g, seed).unwrap();
    let ring = g.journal.blocks - 1;
    // Far more transactions than the ring holds; each needs 3 blocks.
    for i in 0..(ring * 2) {
        let b = g.first_data_block + (i % 40);
        journal::commit(&mut m, &g, &mut js, &mut staged(&[(b, i as u8)]), &[], false).unwrap();
        let mut c = MemMedia {
            bytes: m.flushes.last().unwrap().clone(),
            flushes: Vec::new(),
        };
        journal::recover(&mut c, &g, seed).unwrap();
        assert_eq!(block(&c.bytes, b), &[i as u8; 4096][..], "transaction {i}");
    }
}

#[test]
fn blocks_starting_with_the_journal_magic_are_escaped() {
    let (mut m, g, seed) = setup();
    let mut js = JournalState::load(&m, &g, seed).unwrap();
    let b = g.first_data_block + 9;
    let mut s = Staged::default();
    let mut data = Box::new([7u8; 4096]);
    data[..4].copy_from_slice(&vexfs::format::journal::JOURNAL_MAGIC.to_le_bytes());
    s.insert(b, data.clone());
    journal::commit(&mut m, &g, &mut js, &mut s, &[], false).unwrap();
    let mut c = MemMedia {
        bytes: m.flushes.last().unwrap().clone(),
        flushes: Vec::new(),
    };
    assert_eq!(journal::recover(&mut c, &g, seed).unwrap(), 1);
    assert_eq!(block(&c.bytes, b), &data[..]);
}

#[test]
fn a_garbage_journal_superblock_sector_falls_back_to_the_backup_copy() {
    let (m, g, seed) = setup();
    let mut bytes = m.bytes.clone();
    let at = (g.journal.start * 4096) as usize;
    for (j, b) in bytes[at..at + 512].iter_mut().enumerate() {
        *b = (j as u8).wrapping_mul(31);
    }
    assert!(journal::superblock(&bytes, &g, seed).is_ok());
    let fs = vexfs::fs::core::Fs::from_media(
        Box::new(MemMedia {
            bytes,
            flushes: Vec::new(),
        }),
        false,
    );
    assert!(fs.is_ok(), "{:?}", fs.err());
}

/// Regression (found by tests/kill9.rs): a block freed by a transaction
/// that is not durable yet was allocated again and file data was written
/// into it in place, so a crash brought back the old file showing the new
/// data. Freed blocks now wait for their transaction's commit.
#[test]
fn a_block_freed_by_an_uncommitted_transaction_is_not_reused_for_data() {
    use vexfs::fs::core::Fs;
    use vexfs::fs::namespace::NewNode;
    use vexfs::fs::perm::Ctx;
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "fs.img", 8 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    let a = fs.create(&Ctx::root(), 1, b"A", 0o644, NewNode::File).unwrap();
    let a = u64::from(a.ino);
    fs.write_data(a, 0, &[0x11; 8192]).unwrap();
    fs.sync().unwrap();
    // Not synced: cuts A inside its first block and frees the second, then
    // writes past the new end (over the cut tail and the freed block).
    let size = vexfs::fs::attrs::SetAttr {
        size: Some(1000),
        ..Default::default()
    };
    fs.setattr(&Ctx::root(), a, &size).unwrap();
    fs.write_data(a, 5000, &[0x22; 3000]).unwrap();
    // The state a crash leaves now: the map as it is (data written in
    // place), without the staged metadata.
    let crashed = dir.path().join("crashed.img");
    std::fs::write(&crashed, std::fs::read(&p).unwrap()).unwrap();
    let after = Fs::open(&crashed, false).unwrap();
    // A exactly as last synced: the truncate's cut tail is zeroed only when
    // the file grows over it again, and the freed block kept its data.
    let got = after.read_data(a, 0, 8192).unwrap();
    assert_eq!(got[..4096], [0x11; 4096], "the truncate left the last block alone");
    assert_eq!(got[4096..], [0x11; 4096], "the freed block kept A's old data");
    drop(after);
    fs.sync().unwrap();
    let mut want = vec![0x11; 1000];
    want.resize(5000, 0);
    want.extend([0x22; 3000]);
    assert_eq!(fs.read_data(a, 0, 8192).unwrap(), want, "A as written");
    fs.close().unwrap();
    drop(fs);
    assert!(fsck(&p).unwrap().is_clean());
}

/// Space freed by a transaction that is not durable yet is usable at once:
/// an allocation that finds only such blocks commits and tries again
/// (rather than ENOSPC right after `rm` of a large file).
#[test]
fn space_freed_but_not_yet_committed_is_reused_after_a_forced_commit() {
    use vexfs::error::FsError;
    use vexfs::fs::core::Fs;
    use vexfs::fs::namespace::NewNode;
    use vexfs::fs::perm::Ctx;
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "fs.img", 8 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    let c = Ctx::root();
    let big = u64::from(fs.create(&c, 1, b"big", 0o644, NewNode::File).unwrap().ino);
    let chunk = vec![0x5a; 64 << 10];
    let mut size = 0u64;
    loop {
        match fs.write_data(big, size, &chunk) {
            Ok(n) => size += n as u64,
            Err(FsError::NoSpace) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(size >= 2 << 20, "filled {size} bytes");
    fs.sync().unwrap();
    fs.unlink(&c, 1, b"big").unwrap();
    let again = u64::from(fs.create(&c, 1, b"again", 0o644, NewNode::File).unwrap().ino);
    for off in (0..size / 2).step_by(chunk.len()) {
        fs.write_data(again, off, &chunk).unwrap();
    }
    fs.close().unwrap();
    drop(fs);
    assert!(fsck(&p).unwrap().is_clean());
}

/// A media whose flushes fail while `fail` is set (EIO from msync), and
/// that counts the flushes asked of it.
struct FailingMedia {
    bytes: Vec<u8>,
    fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FailingMedia {
    fn new(bytes: Vec<u8>) -> FailingMedia {
        FailingMedia {
            bytes,
            fail: Default::default(),
            count: Default::default(),
        }
    }
}

impl Media for FailingMedia {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    fn bytes_mut(&mut self) -> vexfs::Result<&mut [u8]> {
        Ok(&mut self.bytes)
    }
    fn flush(&mut self, _range: Option<(u64, u64)>) -> vexfs::Result<()> {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(vexfs::FsError::io(
                "msync",
                std::io::Error::from_raw_os_error(libc::EIO),
            ));
        }
        Ok(())
    }
}

/// A failed flush is never swallowed: the fsync that asked fails, the
/// filesystem turns read-only, and a later fsync fails too even when the
/// media works again (what was lost cannot be vouched for) - on a journaled
/// image (the commit path) and on a kernel-layout one (a plain flush).
#[test]
fn a_failed_flush_fails_the_fsync_and_every_later_one() {
    use std::sync::atomic::Ordering;
    use vexfs::fs::core::Fs;
    use vexfs::fs::namespace::NewNode;
    use vexfs::fs::perm::Ctx;
    for kernel in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let p = make_image(dir.path(), "fs.img", 8 << 20, kernel);
        let media = FailingMedia::new(std::fs::read(&p).unwrap());
        let fail = media.fail.clone();
        let fs = Fs::from_media(Box::new(media), false).unwrap();
        let c = Ctx::root();
        let a = fs.create(&c, 1, b"a", 0o644, NewNode::File).unwrap();
        fs.write_data(a.ino.into(), 0, b"acknowledged?").unwrap();
        fail.store(true, Ordering::SeqCst);
        let e = fs.sync().unwrap_err();
        assert_eq!(e.errno(), libc::EIO, "kernel layout {kernel}: {e}");
        assert!(fs.is_read_only(), "kernel layout {kernel}");
        let w = fs.create(&c, 1, b"b", 0o644, NewNode::File).unwrap_err();
        assert_eq!(w.errno(), libc::EROFS, "kernel layout {kernel}: {w}");
        fail.store(false, Ordering::SeqCst);
        let again = fs.sync().unwrap_err();
        assert_eq!(again.errno(), libc::EIO, "kernel layout {kernel}: still failed");
    }
}

/// An fsync with nothing staged since the last commit has nothing to make
/// durable: it returns without a flush (and so concurrent fsyncs share one
/// commit, the group commit).
#[test]
fn an_fsync_with_nothing_new_does_not_flush() {
    use vexfs::fs::core::Fs;
    use vexfs::fs::namespace::NewNode;
    use vexfs::fs::perm::Ctx;
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "fs.img", 8 << 20, false);
    let media = FailingMedia::new(std::fs::read(&p).unwrap());
    let count = media.count.clone();
    let fs = Fs::from_media(Box::new(media), false).unwrap();
    let a = fs.create(&Ctx::root(), 1, b"a", 0o644, NewNode::File).unwrap();
    fs.write_data(a.ino.into(), 0, b"x").unwrap();
    let flushes = || count.load(std::sync::atomic::Ordering::SeqCst);
    fs.sync().unwrap();
    let after_commit = flushes();
    assert!(after_commit > 0);
    fs.sync().unwrap();
    fs.sync().unwrap();
    assert_eq!(flushes(), after_commit, "no flush without a change");
}

/// A commit that needs no checkpoint makes exactly two flushes: one for
/// the file data and the journal records together (ordered mode needs both
/// before the commit record, not one before the other), one for the commit
/// record. A third (the old separate data flush) cost a third of the fsync
/// rate on a real disk.
#[test]
fn an_fsync_commit_makes_two_flushes() {
    use vexfs::fs::core::Fs;
    use vexfs::fs::namespace::NewNode;
    use vexfs::fs::perm::Ctx;
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "fs.img", 8 << 20, false);
    let media = FailingMedia::new(std::fs::read(&p).unwrap());
    let count = media.count.clone();
    let fs = Fs::from_media(Box::new(media), false).unwrap();
    let flushes = || count.load(std::sync::atomic::Ordering::SeqCst);
    for (round, name) in [b"a", b"b", b"c"].iter().enumerate() {
        let a = fs.create(&Ctx::root(), 1, *name, 0o644, NewNode::File).unwrap();
        fs.write_data(a.ino.into(), 0, &[7u8; 4096]).unwrap();
        let before = flushes();
        fs.sync().unwrap();
        assert_eq!(flushes() - before, 2, "round {round}");
    }
}

/// Every commit fits the journal ring, so nothing is ever written home
/// unjournaled: an operation changing more metadata blocks than the ring
/// holds is refused whole (ENOSPC, nothing applied, the filesystem still
/// writable), and operations that fit stage and commit as usual however
/// many there are.
#[test]
fn an_operation_larger_than_the_journal_is_refused_whole() {
    use vexfs::error::FsError;
    use vexfs::fs::core::Fs;
    use vexfs::fs::namespace::NewNode;
    use vexfs::fs::perm::Ctx;
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "fs.img", 8 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    let g = fs.geometry().clone();
    let ring = vexfs::journal::ring_len(&g) as usize;
    // Blocks of the data area, used as metadata blocks by this operation.
    let table = g.first_data_block + 64;
    assert!(table + ring as u64 <= g.blocks_count);
    let before = std::fs::read(&p).unwrap();
    let r = fs.write(|txn, _| {
        for b in table..table + ring as u64 {
            txn.block_mut(b)?[0] ^= 0xff;
        }
        Ok(())
    });
    assert!(matches!(r, Err(FsError::NoSpace)), "{r:?}");
    assert!(!fs.is_read_only());
    fs.sync().unwrap();
    let after = std::fs::read(&p).unwrap();
    let at = (table * 4096) as usize;
    assert_eq!(
        after[at..at + ring * 4096],
        before[at..at + ring * 4096],
        "nothing of it applied"
    );
    // Many operations that fit: staged, committed in pieces, all there.
    let c = Ctx::root();
    for i in 0..300 {
        fs.create(&c, 1, format!("f{i}").as_bytes(), 0o644, NewNode::File)
            .unwrap();
    }
    fs.close().unwrap();
    drop(fs);
    assert!(fsck(&p).unwrap().is_clean());
    let fs = Fs::open(&p, true).unwrap();
    assert!(fs.lookup(&c, 1, b"f299").is_ok());
}
