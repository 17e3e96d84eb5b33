//! Scale: an 8 TiB image (sparse: mkfs writes only the metadata) with a
//! million inodes in nested directories, through the core. Prints the
//! figures (open time, create rate, heap, fsck time); it is a measurement,
//! so it is `#[ignore]`d in the normal run (it needs ~1 GiB of disk and a
//! few minutes):
//!
//! ```sh
//! cargo test --release --test scale -- --ignored --nocapture
//! ```
//!
//! It asserts what must hold at any speed: every file is there with its
//! bytes, the free counts add up, and fsck finds nothing.

mod common;

use std::time::Instant;
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::mkfs::{self, MkfsOptions};

const TIB: u64 = 1 << 40;
const FILES: u32 = 1_000_000;
/// Files per directory (1,000 directories of 1,000: hashed directories).
const PER_DIR: u32 = 1_000;

/// Anonymous memory of this process (kB), from /proc.
fn rss_anon_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture (see the module docs)"]
fn an_8_tib_image_holds_a_million_inodes() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("8t.img");
    let t = Instant::now();
    let opts = MkfsOptions {
        size: Some(8 * TIB),
        ..Default::default()
    };
    mkfs::mkfs(&path, &opts, &mut |_, _| {}).unwrap();
    println!("mkfs 8 TiB: {:.2} s", t.elapsed().as_secs_f64());

    let before = rss_anon_kb();
    let t = Instant::now();
    let fs = Fs::open(&path, false).unwrap();
    println!(
        "open: {:.1} ms, RssAnon +{} kB",
        t.elapsed().as_secs_f64() * 1e3,
        rss_anon_kb() - before
    );
    let free_before = fs.statfs().unwrap();

    let c = Ctx::root();
    let t = Instant::now();
    let mut dirs = Vec::new();
    for d in 0..FILES / PER_DIR {
        let top = fs
            .create(&c, 1, format!("d{d:04}").as_bytes(), 0o755, NewNode::Dir)
            .unwrap();
        dirs.push(u64::from(top.ino));
        for f in 0..PER_DIR {
            let a = fs
                .create(&c, top.ino.into(), format!("f{f:04}").as_bytes(), 0o644, NewNode::File)
                .unwrap();
            if f % 100 == 0 {
                fs.write_data(a.ino.into(), 0, format!("{d}/{f}").as_bytes()).unwrap();
            }
        }
    }
    fs.sync().unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{FILES} files in {} directories: {secs:.1} s ({:.0} creates/s), RssAnon {} kB",
        dirs.len(),
        f64::from(FILES) / secs,
        rss_anon_kb()
    );

    // Spot checks across the tree, then the counts.
    for d in [0u32, 499, 999] {
        let f = fs.lookup(&c, dirs[d as usize], b"f0900").unwrap();
        assert_eq!(
            fs.read_data(f.ino.into(), 0, 64).unwrap(),
            format!("{d}/900").as_bytes()
        );
    }
    let free_after = fs.statfs().unwrap();
    let used = u64::from(FILES) + u64::from(FILES / PER_DIR);
    assert_eq!(free_before.free_files - free_after.free_files, used, "inodes used");
    fs.close().unwrap();
    drop(fs);

    let t = Instant::now();
    let r = common::fsck(&path).unwrap();
    println!(
        "fsck: {:.1} s, {} inodes checked, clean: {}",
        t.elapsed().as_secs_f64(),
        r.inodes_checked,
        r.is_clean()
    );
    assert!(r.is_clean(), "{:#?}", &r.problems[..r.problems.len().min(20)]);
    println!("image blocks allocated on the host: {} MiB", {
        use std::os::unix::fs::MetadataExt;
        (std::fs::metadata(&path).unwrap().blocks() * 512) >> 20
    });
}
