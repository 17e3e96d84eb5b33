//! Smoke tests of `vexfs-inspect` on images made by `vexfs::mkfs`: every
//! subcommand with and without `--json`, exit codes, a few exact facts, a
//! populated image (files added by hand) and corrupted images.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use vexfs::format::bitmap::{seal_tailed, set_bit, BITS_PER_TAILED_BLOCK};
use vexfs::format::checksum::image_seed;
use vexfs::format::dir::{rec_len_for, seal_leaf_tail, write_entry};
use vexfs::format::inode::{seal_inode, InodeNo};
use vexfs::image::{Image, Mode};
use vexfs::mkfs::{mkfs, MkfsOptions};

const UUID: [u8; 16] = [1; 16];
const BIG_LEN: usize = (3 << 19) + 5; // 1.5 MiB + 5: more than one 1 MiB chunk

fn v1_image(dir: &Path) -> PathBuf {
    let path = dir.join("v1.img");
    let opts = MkfsOptions {
        size: Some(64 << 20),
        uuid: Some(UUID),
        time: Some(1_700_000_000),
        collections: vec![
            "docs:8:cosine".parse().unwrap(),
            "a_longer_collection_name:4:l2:int8".parse().unwrap(),
        ],
        ..Default::default()
    };
    holding_images(|| mkfs(&path, &opts, &mut |_, _| {}).unwrap());
    path
}

fn kernel_image(dir: &Path) -> PathBuf {
    let path = dir.join("kernel.img");
    let opts = MkfsOptions {
        size: Some(1 << 20),
        kernel_layout: true,
        time: Some(1_700_000_000),
        ..Default::default()
    };
    holding_images(|| mkfs(&path, &opts, &mut |_, _| {}).unwrap());
    path
}

/// Tests run in parallel threads: a child spawned by one test holds copies
/// of every descriptor of the process until its exec closes them, among
/// them another test's image descriptor with its flock, which can make
/// that test's next open fail with "in use". So image descriptors are held
/// under the write side of this lock, and children spawned under the read
/// side (as tests/fuse_mount.rs does).
static FD_LOCK: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn holding_images<R>(f: impl FnOnce() -> R) -> R {
    let _g = FD_LOCK.write().unwrap_or_else(|e| e.into_inner());
    f()
}

/// Run the tool; (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, Vec<u8>, String) {
    let o = {
        let _g = FD_LOCK.read().unwrap_or_else(|e| e.into_inner());
        Command::new(env!("CARGO_BIN_EXE_vexfs-inspect"))
            .args(args)
            .output()
            .unwrap()
    };
    assert!(o.status.code().is_some(), "killed by a signal: {args:?}");
    (
        o.status.code().unwrap(),
        o.stdout,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn text(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?} failed: {err}");
    String::from_utf8(out).unwrap()
}

fn json(args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&text(&a)).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Physical block of logical block 0 of inode `n`.
fn first_block(path: &Path, n: u32) -> u64 {
    holding_images(|| {
        let img = Image::open(path, Mode::ReadOnly).unwrap();
        let ino = img.inode_no(n).unwrap();
        let view = img.inode(ino).unwrap();
        img.mappings(ino, &view).unwrap()[0].physical
    })
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

/// Write a 256-byte inode with one extent (or a fast symlink target).
fn put_inode(img: &mut [u8], off: usize, n: u32, mode: u16, size: u64, i_block: &[u8], flags: u32) {
    let b = &mut img[off..off + 256];
    b.fill(0);
    b[0..2].copy_from_slice(&mode.to_le_bytes());
    b[2..4].copy_from_slice(&1u16.to_le_bytes());
    b[16..24].copy_from_slice(&size.to_le_bytes());
    for t in [24, 28, 32] {
        b[t..t + 4].copy_from_slice(&1_700_000_123u32.to_le_bytes());
    }
    b[36..40].copy_from_slice(&((size.div_ceil(4096) * 8) as u32).to_le_bytes());
    b[40..40 + i_block.len()].copy_from_slice(i_block);
    b[88..92].copy_from_slice(&flags.to_le_bytes());
    b[112..114].copy_from_slice(&144u16.to_le_bytes());
    b[120..124].copy_from_slice(&42u32.to_le_bytes()); // i_atime_nsec
    seal_inode(b, n, image_seed(&UUID));
}

fn extent_root(start: u64, len: u16) -> Vec<u8> {
    let mut r = vec![0x0a, 0xf3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0];
    r.extend_from_slice(&0u32.to_le_bytes());
    r.extend_from_slice(&len.to_le_bytes());
    r.extend_from_slice(&((start >> 32) as u16).to_le_bytes());
    r.extend_from_slice(&(start as u32).to_le_bytes());
    r
}

/// Add /hello.txt (inode 20), /big.bin (21) and /link -> hello.txt (22),
/// checksums sealed, so the image still verifies clean.
fn populate(path: &Path) {
    let g = holding_images(|| Image::open(path, Mode::ReadOnly).unwrap().geometry().clone());
    let root = first_block(path, 1);
    let seed = image_seed(&UUID);
    let mut bytes = std::fs::read(path).unwrap();
    let (hello_blk, big_blk) = (g.blocks_count - 2, g.blocks_count - 400);
    let off = |n: u32| g.inode_offset(InodeNo::new(n, g.inodes_count).unwrap()) as usize;
    bytes[hello_blk as usize * 4096..][..12].copy_from_slice(b"hello world\n");
    for (i, b) in bytes[big_blk as usize * 4096..][..BIG_LEN].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    put_inode(
        &mut bytes,
        off(20),
        20,
        0o100644,
        12,
        &extent_root(hello_blk, 1),
        0x80000,
    );
    put_inode(
        &mut bytes,
        off(21),
        21,
        0o100600,
        BIG_LEN as u64,
        &extent_root(big_blk, BIG_LEN.div_ceil(4096) as u16),
        0x80000,
    );
    put_inode(&mut bytes, off(22), 22, 0o120777, 9, b"hello.txt", 0);
    let blk = &mut bytes[root as usize * 4096..][..4096];
    write_entry(blk, 12, 1, 12, 2, b"..");
    write_entry(blk, 24, 20, rec_len_for(9) as u16, 1, b"hello.txt");
    write_entry(blk, 44, 21, rec_len_for(7) as u16, 1, b"big.bin");
    write_entry(blk, 60, 22, (4084 - 60) as u16, 7, b"link");
    seal_leaf_tail(blk, root, 1, seed);
    let leaf = g.inode_bitmap.start;
    let bm = &mut bytes[leaf as usize * 4096..][..4096];
    for bit in [19, 20, 21] {
        set_bit(bm, bit, true);
    }
    seal_tailed(bm, leaf, Some(seed), BITS_PER_TAILED_BLOCK);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn super_shows_geometry_features_and_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let img = v1_image(dir.path());
    let j = json(&["super", s(&img)]);
    assert_eq!(j["blocks_count"], 16384);
    assert_eq!(j["layout"], "v1");
    assert_eq!(j["magic"], "0x56455846");
    assert_eq!(j["uuid"], "01010101-0101-0101-0101-010101010101");
    assert_eq!(j["mkfs_time"], 1_700_000_000);
    assert!(j["features"].as_array().unwrap().iter().any(|f| f == "metadata_csum"));
    assert_eq!(j["regions"][0]["name"], "superblock");
    assert_eq!(j["journal"]["sequence"], 1);
    assert_eq!(j["events"]["next_seq"], 1);
    let cols = j["catalog"]["collections"].as_array().unwrap();
    assert_eq!(cols.len(), 2);
    assert_eq!(
        (&cols[0]["name"], &cols[0]["dim"], &cols[0]["metric"]),
        (&"docs".into(), &8.into(), &"cosine".into())
    );
    assert_eq!(cols[0]["node_ino"], 11);
    assert_eq!(
        (&cols[1]["name"], &cols[1]["elem_type"], &cols[1]["id"]),
        (&"a_longer_collection_name".into(), &"int8".into(), &2.into())
    );
    let t = text(&["superblock", s(&img)]);
    assert!(t.contains("2023-11-14 22:13:20 UTC"), "{t}");
    assert!(t.contains("docs") && t.contains("journal (block"), "{t}");

    let k = kernel_image(dir.path());
    let j = json(&["super", s(&k)]);
    assert_eq!(
        (&j["layout"], &j["blocks_count"], &j["first_data_block"]),
        (&"kernel".into(), &256.into(), &66.into())
    );
    assert!(j["journal"].is_null() && j["catalog"].is_null());
    assert!(text(&["super", s(&k)]).contains("kernel"));
}

#[test]
fn tree_inode_and_cat_on_a_populated_image() {
    let dir = tempfile::tempdir().unwrap();
    let img = v1_image(dir.path());
    populate(&img);
    let j = json(&["tree", s(&img)]);
    let list = j.as_array().unwrap();
    assert_eq!(
        (&list[0]["path"], &list[0]["inode"], &list[0]["type"]),
        (&"/".into(), &1.into(), &"directory".into())
    );
    let paths: Vec<&str> = list.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/", "/big.bin", "/hello.txt", "/link"]);
    assert_eq!(list[3]["target"], "hello.txt");
    let t = text(&["tree", s(&img)]);
    assert!(t.contains("link -> hello.txt"), "{t}");
    assert!(t.lines().next().unwrap().ends_with("1  /"), "{t}");

    let j = json(&["inode", s(&img), "/hello.txt"]);
    assert_eq!(
        (&j["inode"], &j["size"], &j["mode"]),
        (&20.into(), &12.into(), &"0644".into())
    );
    assert_eq!(j["atime"]["nsec"], 42);
    assert_eq!(j["mappings"][0]["len"], 1);
    assert_eq!(json(&["inode", s(&img), "1"])["type"], "directory");
    assert!(text(&["inode", s(&img), "22"]).contains("hello.txt"));
    assert_eq!(json(&["inode", s(&img), "100"])["free"], true); // never written: free, not corrupt

    let (code, out, err) = run(&["cat", s(&img), "/hello.txt"]);
    assert_eq!((code, out.as_slice()), (0, &b"hello world\n"[..]), "{err}");
    let (code, out, _) = run(&["cat", s(&img), "big.bin"]);
    assert_eq!((code, out.len()), (0, BIG_LEN));
    assert!(out.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    let j = json(&["cat", s(&img), "/hello.txt"]);
    assert_eq!(
        (&j["size"], &j["hex"]),
        (&12.into(), &"68656c6c6f20776f726c640a".into())
    );
    let (code, _, err) = run(&["--json", "cat", s(&img), "/big.bin"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(run(&["cat", s(&img), "/"]).0, 2);
    assert_eq!(run(&["cat", s(&img), "/nope"]).0, 2);

    let v = text(&["verify", s(&img)]);
    assert!(v.ends_with(" 0 bad\n"), "{v}");
}

#[test]
fn blocks_counts_match_the_superblock() {
    let dir = tempfile::tempdir().unwrap();
    let img = v1_image(dir.path());
    let j = json(&["blocks", s(&img)]);
    assert_eq!(j["blocks_count"], 16384);
    assert_eq!(j["blocks"]["free"], j["superblock_free_blocks"]);
    assert_eq!(j["inodes"]["free"], j["superblock_free_inodes"]);
    assert_eq!(j["metadata_marked_free"], 0);
    assert!(j["data_blocks"]["used"].as_u64().unwrap() >= 4);
    assert!(text(&["blocks", s(&img)]).contains("data blocks"));

    let k = kernel_image(dir.path());
    let j = json(&["blocks", s(&k)]);
    assert_eq!(
        (&j["blocks"]["total"], &j["blocks"]["used"], &j["inodes"]["used"]),
        (&256.into(), &67.into(), &1.into())
    );
    assert_eq!(j["blocks"]["free"], j["superblock_free_blocks"]);
    assert!(text(&["tree", s(&k)]).contains("1  /"));
    assert_eq!(json(&["inode", s(&k), "/"])["mappings"][0]["physical"], 66);
}

#[test]
fn verify_is_clean_then_names_the_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    let img = v1_image(dir.path());
    let v = text(&["verify", s(&img)]);
    assert!(v.ends_with(" 0 bad\n"), "{v}");
    let j = json(&["verify", s(&img)]);
    assert_eq!((&j["checksums"], &j["bad"]), (&true.into(), &0.into()));
    assert!(j["checked"].as_u64().unwrap() > 10);

    flip(&img, first_block(&img, 1) * 4096 + 100);
    let (code, out, _) = run(&["verify", s(&img)]);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("det_checksum") && out.contains("directory block"), "{out}");
    assert!(out.ends_with(" 1 bad\n"), "{out}");
    assert_eq!(run(&["--json", "verify", s(&img)]).0, 1);

    flip(&img, 200); // primary superblock: checksum fails, the backup is used
    let (code, out, _) = run(&["verify", s(&img)]);
    assert_eq!(code, 1);
    assert!(String::from_utf8(out).unwrap().contains("s_checksum"));
    let (code, _, err) = run(&["super", s(&img)]);
    assert_eq!(code, 0);
    assert!(err.contains("primary superblock is damaged; using the backup"), "{err}");

    let k = kernel_image(dir.path());
    let (code, out, _) = run(&["verify", s(&k)]);
    assert_eq!(code, 0);
    assert!(String::from_utf8(out).unwrap().contains("no metadata checksums"));
}

#[test]
fn bad_arguments_and_missing_images_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.img");
    let (code, _, err) = run(&["super", s(&missing)]);
    assert_eq!(code, 2);
    assert!(err.starts_with("vexfs-inspect: cannot open"), "{err}");
    let junk = dir.path().join("junk.img");
    std::fs::write(&junk, vec![0x5au8; 8192]).unwrap();
    assert_eq!(run(&["blocks", s(&junk)]).0, 2);
    let img = v1_image(dir.path());
    assert_eq!(run(&["tree", s(&img), "/no/such"]).0, 2);
    assert_eq!(run(&["inode", s(&img), "99999999"]).0, 2);
    assert_eq!(run(&["frobnicate", s(&img)]).0, 2);
    assert_eq!(run(&["--help"]).0, 0);
}

/// Flipped bytes anywhere in the metadata never crash a command: every
/// exit is 0, 1 or 2 (a panic would exit 101).
#[test]
fn corrupt_images_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let img = v1_image(dir.path());
    populate(&img);
    let pristine = std::fs::read(&img).unwrap();
    let data_end = (first_block(&img, 1) + 8) * 4096;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..12 {
        let mut bytes = pristine.clone();
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x % (data_end - 1024)) as usize + 1024; // keep the superblock valid
            bytes[at] ^= 1 << (x >> 60 & 7);
        }
        std::fs::write(&img, &bytes).unwrap();
        for cmd in [
            &["super"][..],
            &["tree"],
            &["inode", "1"],
            &["inode", "2"],
            &["cat", "/big.bin"],
            &["blocks"],
            &["verify"],
        ] {
            for json in [false, true] {
                let mut args: Vec<&str> = if json { vec!["--json"] } else { vec![] };
                args.push(cmd[0]);
                args.push(s(&img));
                args.extend_from_slice(&cmd[1..]);
                let (code, _, err) = run(&args);
                assert!(matches!(code, 0..=2), "round {round} {args:?} exited {code}: {err}");
            }
        }
    }
}
