//! The whole stack under a daemon crash: `kill -9` of the mount daemon in
//! the middle of fsx-style random file I/O and of a metadata-heavy
//! workload, running together. After a remount (which replays the journal)
//! fsck is clean, every fsync'd change is there, and the fsx file holds
//! only bytes it was given: at each offset, its content at the last fsync
//! or a value written there (or a hole's zero) since.

mod common;

use common::fuse::{fuse_usable, mount, unmount, wait};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const MIB: u64 = 1 << 20;
/// The fsx file never grows past this (so a check is a few million steps).
const FSX_MAX_LEN: u64 = MIB;
/// Operations between two fsyncs of the fsx file.
const FSX_SYNC_EVERY: u64 = 8;

/// One fsx operation, as issued (recorded before it is sent).
#[derive(Clone, Debug)]
enum Op {
    Write { off: u64, byte: u8, len: u64 },
    Truncate { len: u64 },
    Punch { off: u64, len: u64 },
}

/// The fsx file's content at its last acknowledged fsync, and the
/// operations issued since (any of which may or may not have landed).
#[derive(Default)]
struct FsxModel {
    synced: Vec<u8>,
    since: Vec<Op>,
}

impl FsxModel {
    fn apply(content: &mut Vec<u8>, op: &Op) {
        match *op {
            Op::Write { off, byte, len } => {
                let end = (off + len) as usize;
                if content.len() < end {
                    content.resize(end, 0);
                }
                content[off as usize..end].fill(byte);
            }
            Op::Truncate { len } => content.resize(len as usize, 0),
            Op::Punch { off, len } => {
                let end = ((off + len) as usize).min(content.len());
                if (off as usize) < end {
                    content[off as usize..end].fill(0);
                }
            }
        }
    }

    /// Why `actual` cannot be the file after a crash, if it cannot.
    ///
    /// A write that had not been fsync'd may have landed in part (the
    /// kernel sends a large write as several requests), so its length may
    /// be anything between the lengths before and after it.
    fn explain(&self, actual: &[u8]) -> Result<(), String> {
        let mut state = self.synced.clone();
        let mut lengths = vec![(state.len(), state.len())];
        for op in &self.since {
            let before = state.len();
            Self::apply(&mut state, op);
            lengths.push(match op {
                Op::Write { .. } => (before, state.len()),
                _ => (state.len(), state.len()),
            });
        }
        if !lengths.iter().any(|&(lo, hi)| (lo..=hi).contains(&actual.len())) {
            return Err(format!("length {} is in none of {lengths:?}", actual.len()));
        }
        let min_len = lengths.iter().map(|l| l.0).min().unwrap();
        for (p, &b) in actual.iter().enumerate() {
            let synced = self.synced.get(p).copied().unwrap_or(0);
            let zero_ok = p >= min_len || p >= self.synced.len();
            let ok = b == synced || (b == 0 && zero_ok) || self.since.iter().any(|op| op.may_put(p as u64, b));
            if !ok {
                return Err(format!(
                    "byte {p} is {b:#x}; synced {synced:#x}; ops since: {:?}",
                    self.since
                ));
            }
        }
        Ok(())
    }
}

impl Op {
    fn may_put(&self, p: u64, b: u8) -> bool {
        match *self {
            Op::Write { off, byte, len } => byte == b && (off..off + len).contains(&p),
            Op::Truncate { .. } => false,
            Op::Punch { off, len } => b == 0 && (off..off + len).contains(&p),
        }
    }
}

/// xorshift: the workload is the same on every run.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn punch(f: &File, off: u64, len: u64) -> io::Result<()> {
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: a valid open descriptor; fallocate reads no memory of ours.
    match unsafe { libc::fallocate(f.as_raw_fd(), mode, off as i64, len as i64) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

fn fsx_step(x: &mut u64, i: u64) -> Op {
    let off = next(x) % FSX_MAX_LEN;
    let len = 1 + next(x) % (64 * 1024).min(FSX_MAX_LEN - off);
    match next(x) % 8 {
        0 => Op::Truncate { len: off },
        1 => Op::Punch { off, len },
        _ => Op::Write {
            off,
            byte: 1 + (i % 251) as u8,
            len,
        },
    }
}

fn run_op(f: &File, op: &Op) -> io::Result<()> {
    match *op {
        Op::Write { off, byte, len } => f.write_all_at(&vec![byte; len as usize], off),
        Op::Truncate { len } => f.set_len(len),
        Op::Punch { off, len } => punch(f, off, len),
    }
}

/// fsx-style random I/O until the mount goes away.
fn fsx(path: PathBuf, model: Arc<Mutex<FsxModel>>, ops: Arc<AtomicU64>, seed: u64) {
    let Ok(f) = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
    else {
        return;
    };
    let mut x = 0x5eed_f5c0_u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for i in 1u64.. {
        let op = fsx_step(&mut x, i);
        model.lock().unwrap().since.push(op.clone());
        if run_op(&f, &op).is_err() {
            return;
        }
        if i % FSX_SYNC_EVERY == 0 {
            if f.sync_all().is_err() {
                return;
            }
            let mut m = model.lock().unwrap();
            let since = std::mem::take(&mut m.since);
            for op in &since {
                FsxModel::apply(&mut m.synced, op);
            }
        }
        ops.store(i, Ordering::Relaxed);
    }
}

/// Files whose contents and names were fsync'd (file and directory).
type Acked = Arc<Mutex<Vec<(PathBuf, Vec<u8>)>>>;

/// Create, rename and unlink small files in nested directories, fsyncing
/// every tenth, until the mount goes away.
fn metadata(root: PathBuf, acked: Acked) {
    let mut batch = Vec::new();
    let mut x = 0xabcd_u64;
    for i in 0u64.. {
        let dir = root.join(format!("d{}", i % 7)).join(format!("e{}", i % 3));
        let name = dir.join(format!("f{i:05}"));
        let data: Vec<u8> = (0..200 + next(&mut x) % 9000).map(|_| next(&mut x) as u8).collect();
        let ok = (|| -> io::Result<()> {
            fs::create_dir_all(&dir)?;
            fs::write(&name, &data)?;
            if i % 4 == 0 {
                fs::rename(&name, dir.join(format!("r{i}")))?;
                fs::remove_file(dir.join(format!("r{i}")))?;
            } else {
                batch.push((name.clone(), data));
            }
            if i % 10 == 9 {
                for (n, _) in &batch {
                    File::open(n)?.sync_all()?;
                    File::open(n.parent().unwrap())?.sync_all()?;
                }
                acked.lock().unwrap().append(&mut batch);
            }
            Ok(())
        })();
        if ok.is_err() {
            return;
        }
    }
}

fn fsck_clean(image: &Path) {
    let r = common::fsck(image).expect("fsck opens the image");
    assert!(r.is_clean(), "fsck: {:#?}", r.problems);
}

/// One round: load, kill -9 after `ops_before_kill` fsx operations, remount, check.
fn round(image: &Path, mnt: &Path, n: u64, ops_before_kill: u64) {
    let mut m = mount(image, mnt);
    let (model, ops, acked) = (Arc::default(), Arc::new(AtomicU64::new(0)), Acked::default());
    let file = mnt.join(format!("fsx.{n}"));
    let workers = [
        {
            let (p, model, ops) = (file.clone(), Arc::clone(&model), Arc::clone(&ops));
            std::thread::spawn(move || fsx(p, model, ops, n))
        },
        {
            let (root, acked) = (mnt.join(format!("meta{n}")), Arc::clone(&acked));
            std::thread::spawn(move || metadata(root, acked))
        },
    ];
    wait("load", || {
        ops.load(Ordering::Relaxed) >= ops_before_kill && acked.lock().unwrap().len() >= 60
    });
    m.kill9();
    for w in workers {
        w.join().unwrap();
    }
    drop(m);

    let m = mount(image, mnt);
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    for (name, data) in &acked {
        assert_eq!(&fs::read(name).unwrap_or_default(), data, "{name:?} was fsync'd");
    }
    let actual = fs::read(&file).unwrap();
    if let Err(why) = model.lock().unwrap().explain(&actual) {
        panic!("round {n}: the fsx file after kill -9: {why}");
    }
    println!(
        "round {n}: killed after {} fsx operations and {} fsync'd files; all present",
        ops.load(Ordering::Relaxed),
        acked.len()
    );
    unmount(m);
    fsck_clean(image);
}

#[test]
fn kill_9_during_fsx_and_metadata_load_keeps_every_fsynced_change() {
    if !fuse_usable() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = common::make_image(tmp.path(), "fs.img", 256 * MIB, false);
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    for (n, ops) in [(1, 300), (2, 1500), (3, 4000)] {
        round(&image, &mnt, n, ops);
    }
}

#[test]
fn the_model_rejects_what_was_never_written() {
    let mut m = FsxModel::default();
    FsxModel::apply(
        &mut m.synced,
        &Op::Write {
            off: 0,
            byte: 7,
            len: 100,
        },
    );
    m.since.push(Op::Write {
        off: 50,
        byte: 9,
        len: 100,
    });
    m.since.push(Op::Punch { off: 10, len: 5 });
    let mut ok = vec![7u8; 150];
    ok[50..150].fill(9);
    ok[10..15].fill(0);
    assert_eq!(m.explain(&ok), Ok(()));
    assert_eq!(m.explain(&[7u8; 100]), Ok(()), "nothing since the fsync landed");
    let mut shifted = ok.clone();
    shifted[20] = 9; // a written value at an offset it was never written to
    assert!(m.explain(&shifted).unwrap_err().contains("byte 20"));
    let mut lost = ok.clone();
    lost[30] = 0; // a synced byte lost
    assert!(m.explain(&lost).unwrap_err().contains("byte 30"));
    assert_eq!(m.explain(&ok[..120]), Ok(()), "the write landed in part");
    m.since.push(Op::Truncate { len: 40 });
    assert!(m.explain(&ok[..30]).unwrap_err().contains("length 30"));
}
