//! Several threads create, write, rename, link and delete in shared
//! directories at once through one `Fs`; afterwards every acknowledged
//! write is present, the image survives a remount, and fsck is clean.

mod common;

use common::*;
use std::sync::Arc;
use vexfs::error::FsError;
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;

const THREADS: u32 = 8;
const ROUNDS: u32 = 150;

/// What one thread leaves behind: (final name, expected content).
fn worker(fs: &Fs, t: u32, shared: [u64; 2]) -> Vec<(String, u64, Vec<u8>)> {
    let c = Ctx::root();
    let mut kept = Vec::new();
    for r in 0..ROUNDS {
        let dir = shared[(r % 2) as usize];
        let name = format!("t{t}-r{r}");
        let f = fs
            .create(&c, dir, name.as_bytes(), 0o644, NewNode::File)
            .expect("create");
        let data: Vec<u8> = (0..(r % 7 + 1) * 1500).map(|i| (i ^ t ^ r) as u8).collect();
        fs.write_data(f.ino.into(), 0, &data).expect("write");
        let other = shared[((r + 1) % 2) as usize];
        let renamed = format!("m-{name}");
        fs.rename(&c, dir, name.as_bytes(), other, renamed.as_bytes(), 0)
            .expect("rename");
        match r % 3 {
            0 => fs.unlink(&c, other, renamed.as_bytes()).expect("unlink"),
            1 => {
                let link = format!("l-{name}");
                fs.link(&c, f.ino.into(), dir, link.as_bytes()).expect("link");
                fs.unlink(&c, other, renamed.as_bytes()).expect("unlink");
                kept.push((link, dir, data));
            }
            _ => kept.push((renamed, other, data)),
        }
        if r % 50 == 0 {
            fs.sync().expect("fsync");
        }
    }
    kept
}

#[test]
fn parallel_namespace_and_data_changes_stay_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "c.img", 64 << 20, false);
    let fs = Arc::new(Fs::open(&p, false).unwrap());
    let c = Ctx::root();
    let shared = [
        1u64,
        fs.create(&c, 1, b"shared", 0o755, NewNode::Dir).unwrap().ino.into(),
    ];
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let fs = fs.clone();
            std::thread::spawn(move || worker(&fs, t, shared))
        })
        .collect();
    let kept: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("worker panicked"))
        .collect();
    let check = |fs: &Fs| {
        for (name, d, data) in &kept {
            let a = fs
                .lookup(&c, *d, name.as_bytes())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&fs.read_data(a.ino.into(), 0, 1 << 20).unwrap(), data, "{name}");
        }
        let listed = fs.readdir(1, 0, usize::MAX).unwrap().len() + fs.readdir(shared[1], 0, usize::MAX).unwrap().len();
        assert_eq!(
            listed,
            kept.len() + 1 + 4,
            "entries: kept files, 'shared', and '.'/'..' twice"
        );
    };
    check(&fs);
    assert!(matches!(fs.lookup(&c, 1, b"t0-r0"), Err(FsError::NotFound)));
    let fs = Arc::into_inner(fs).expect("threads are done");
    fs.close().unwrap();
    drop(fs);
    let r = fsck(&p).unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
    let fs = Fs::open(&p, false).unwrap();
    check(&fs);
}
