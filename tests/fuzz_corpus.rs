//! The fuzz seed corpora and saved crashes as regression tests.
//!
//! `replay_corpus_and_artifacts` runs every file of `fuzz/corpus/<target>/`
//! (and of `fuzz/artifacts/<target>/`, where cargo-fuzz saves crashing
//! inputs) through the matching `vexfs::fuzzing` entry point, so a crash
//! found once stays fixed (among them an htree whose index node names
//! itself, which once made fsck allocate ~18 GiB). `regenerate_corpus` (ignored; run it with
//! `cargo test --test fuzz_corpus -- --ignored regenerate_corpus`) rebuilds
//! the seed corpora from images made by `vexfs::mkfs` and from structures
//! built with the format module's own writers.

use std::path::{Path, PathBuf};
use vexfs::check::{self, CheckOptions};
use vexfs::format::bitmap::{self, BITS_PER_TAILED_BLOCK, TAILED_BITS_BYTES};
use vexfs::format::dir::{self, rec_len_for, DxRoot};
use vexfs::format::events::{self, EventRecord, EventRingHeader, EVENT_MAGIC, EVENT_RING_MAGIC};
use vexfs::format::extent::{self, Extent, ExtentHeader, ExtentIndex, BLOCK_MAX_ENTRIES, EXTENT_MAGIC, TAIL_OFFSET};
use vexfs::format::hnsw::{self, UpperRecord};
use vexfs::format::inode::{InodeBase, INDEX_FL, S_IFDIR, S_IFLNK, S_IFREG};
use vexfs::format::vector::{self, CollectionHeader, ElemType, NodeHeader, COLLECTION_MAGIC, NODE_LIVE};
use vexfs::format::xattr;
use vexfs::format::{BLOCK_SIZE, BLOCK_SIZE_U64, CATALOG_INO, ROOT_INO};
use vexfs::fuzzing::{self, FUZZ_BLOCK, FUZZ_INO, FUZZ_SEED};
use vexfs::image::{Image, Mode};
use vexfs::mkfs::{self, MkfsOptions, Sizing};
use zerocopy::{FromZeros, IntoBytes};

/// A `vexfs::fuzzing` entry point.
type Entry = fn(&[u8]);

/// Every fuzz target: its name (directory and `[[bin]]` name) and entry point.
const TARGETS: &[(&str, Entry)] = &[
    ("superblock", fuzzing::superblock),
    ("inode", fuzzing::inode),
    ("extent_node", fuzzing::extent_node),
    ("dir_block", fuzzing::dir_block),
    ("xattr_block", fuzzing::xattr_block),
    ("bitmap_block", fuzzing::bitmap_block),
    ("adjacency", fuzzing::adjacency),
    ("journal_superblock", fuzzing::journal_superblock),
    ("event_header", fuzzing::event_header),
    ("catalogue", fuzzing::catalogue),
    ("collection_header", fuzzing::collection_header),
    ("whole_image", fuzzing::whole_image),
    ("search_request", fuzzing::search_request),
    ("event_ring", fuzzing::event_ring),
    ("node_record", fuzzing::node_record),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Regular files of `dir`, sorted (empty when the directory is missing).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file());
    v.sort();
    v
}

#[test]
fn replay_corpus_and_artifacts() {
    let mut replayed = 0;
    for (name, entry) in TARGETS {
        let corpus = files_in(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ is empty or missing");
        let artifacts = files_in(&fuzz_dir().join("artifacts").join(name));
        for path in corpus.iter().chain(&artifacts) {
            let data = std::fs::read(path).unwrap();
            let run = std::panic::catch_unwind(|| entry(&data));
            assert!(run.is_ok(), "vexfs::fuzzing::{name} panicked on {}", path.display());
            replayed += 1;
        }
    }
    println!("{replayed} inputs replayed");
}

#[test]
fn every_target_has_a_fuzz_target_file_and_bin() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        let src = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&src).unwrap_or_default();
        assert!(
            text.contains(&format!("vexfs::fuzzing::{name}(")),
            "{} must call vexfs::fuzzing::{name}",
            src.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
    }
}

// ---------------------------------------------------------------------------
// Corpus generation.

/// Fixed identity, so the corpus is reproducible.
const UUID: [u8; 16] = [0xf0, 0x22, 1, 2, 3, 4, 0x45, 6, 0x87, 8, 9, 10, 11, 12, 13, 14];
const TIME: i64 = 1_700_000_000;

fn mkfs_options(size: u64, kernel: bool, collections: &[&str], sizing: Sizing) -> MkfsOptions {
    MkfsOptions {
        size: Some(size),
        label: "fuzz".into(),
        kernel_layout: kernel,
        collections: collections.iter().map(|c| c.parse().unwrap()).collect(),
        uuid: Some(UUID),
        time: Some(TIME),
        sizing,
        root_owner: Some((0, 0)),
        ..Default::default()
    }
}

fn make(dir: &Path, name: &str, opts: &MkfsOptions) -> PathBuf {
    let p = dir.join(name);
    mkfs::mkfs(&p, opts, &mut |_, _| {}).unwrap();
    p
}

fn assert_clean(path: &Path) {
    let img = Image::open(path, Mode::ReadOnly).unwrap();
    let r = check::check(&img, CheckOptions::default());
    assert!(r.is_clean(), "{}: {:?}", path.display(), r.problems);
}

/// Collects corpus files, then writes them (replacing the old corpus).
#[derive(Default)]
struct Corpus {
    files: Vec<(&'static str, String, Vec<u8>)>,
}

impl Corpus {
    fn add(&mut self, target: &'static str, name: &str, bytes: &[u8]) {
        assert!(TARGETS.iter().any(|(t, _)| *t == target), "unknown target {target}");
        self.files.push((target, name.to_string(), bytes.to_vec()));
    }

    fn write(&self) {
        for (target, _) in TARGETS {
            let d = fuzz_dir().join("corpus").join(target);
            for f in files_in(&d) {
                std::fs::remove_file(f).unwrap();
            }
            std::fs::create_dir_all(&d).unwrap();
        }
        let mut total = 0;
        for (target, name, bytes) in &self.files {
            let p = fuzz_dir().join("corpus").join(target).join(name);
            assert!(!p.exists(), "duplicate corpus file {}", p.display());
            std::fs::write(&p, bytes).unwrap();
            total += bytes.len();
        }
        assert!(total < 2 << 20, "corpus is {total} bytes; keep it under 2 MiB");
        println!("{} corpus files, {total} bytes", self.files.len());
    }
}

fn block(img: &[u8], n: u64) -> &[u8] {
    &img[n as usize * BLOCK_SIZE..(n as usize + 1) * BLOCK_SIZE]
}

/// The first block of a file (its first extent or direct block).
fn first_block(img: &Image, ino: u32) -> u64 {
    let ino = img.inode_no(ino).unwrap();
    let view = img.inode(ino).unwrap();
    img.mappings(ino, &view).unwrap()[0].physical
}

fn inode_bytes(img: &Image, bytes: &[u8], ino: u32) -> Vec<u8> {
    let g = img.geometry();
    let off = g.inode_offset(img.inode_no(ino).unwrap()) as usize;
    bytes[off..off + g.inode_size].to_vec()
}

/// Slices of an 8 MiB v1 image with two collections.
fn from_v1_image(dir: &Path, c: &mut Corpus) {
    let opts = mkfs_options(8 << 20, false, &["docs:8:cosine", "img:3:l2:int8"], Sizing::default());
    let p = make(dir, "v1.img", &opts);
    let bytes = std::fs::read(&p).unwrap();
    let img = Image::open(&p, Mode::ReadOnly).unwrap();
    let g = img.geometry().clone();
    c.add("superblock", "v1_8mib_two_collections.sb", &bytes[..1024]);
    c.add("inode", "v1_root_dir.inode", &inode_bytes(&img, &bytes, ROOT_INO));
    c.add(
        "inode",
        "v1_catalogue_file.inode",
        &inode_bytes(&img, &bytes, CATALOG_INO),
    );
    c.add(
        "inode",
        "v1_node_file_docs.inode",
        &inode_bytes(&img, &bytes, g.first_ino),
    );
    c.add(
        "inode",
        "v1_upper_file_empty.inode",
        &inode_bytes(&img, &bytes, g.first_ino + 1),
    );
    for (name, ino) in [
        ("v1_root_dir_i_block.extroot", ROOT_INO),
        ("v1_catalogue_i_block.extroot", CATALOG_INO),
    ] {
        let i = inode_bytes(&img, &bytes, ino);
        c.add("extent_node", name, &i[40..88]);
    }
    let root_block = first_block(&img, ROOT_INO);
    c.add("dir_block", "v1_root_dir_with_tail.dirblk", block(&bytes, root_block));
    for (name, region) in [
        ("v1_block_summary.bmp", g.block_summary),
        ("v1_block_bitmap_leaf.bmp", g.block_bitmap),
        ("v1_inode_summary.bmp", g.inode_summary),
        ("v1_inode_bitmap_leaf.bmp", g.inode_bitmap),
    ] {
        c.add("bitmap_block", name, block(&bytes, region.start));
    }
    c.add(
        "journal_superblock",
        "v1_fresh_journal.jsb",
        &block(&bytes, g.journal.start)[..72],
    );
    c.add(
        "event_header",
        "v1_fresh_ring.evh",
        &block(&bytes, g.events.start)[..72],
    );
    let cat = img.inode_no(CATALOG_INO).unwrap();
    let cat_bytes = img.read_file(cat, 0, 1 << 20).unwrap();
    c.add("catalogue", "v1_two_collections.cat", &cat_bytes);
    for (name, ino) in [
        ("v1_docs_f32_cosine.colh", g.first_ino),
        ("v1_img_int8_l2.colh", g.first_ino + 2),
    ] {
        let b = first_block(&img, ino);
        c.add("collection_header", name, &block(&bytes, b)[..88]);
    }
}

/// A v1 image with no collections: an empty catalogue.
fn from_v1_without_collections(dir: &Path, c: &mut Corpus) {
    let p = make(dir, "v1e.img", &mkfs_options(8 << 20, false, &[], Sizing::default()));
    let img = Image::open(&p, Mode::ReadOnly).unwrap();
    let cat = img.inode_no(CATALOG_INO).unwrap();
    c.add(
        "catalogue",
        "v1_no_collections.cat",
        &img.read_file(cat, 0, 1 << 20).unwrap(),
    );
}

/// The 1 MiB kernel-layout image exactly as mkfs makes it, and its parts.
fn from_kernel_image(dir: &Path, c: &mut Corpus) {
    let p = make(dir, "k.img", &mkfs_options(1 << 20, true, &[], Sizing::default()));
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(bytes.len(), 1 << 20);
    c.add("whole_image", "kernel_1mib_mkfs.vexfs", &bytes);
    c.add("superblock", "kernel_1mib.sb", &bytes[..1024]);
    c.add(
        "inode",
        "kernel_root_dir.inode",
        &bytes[2 * BLOCK_SIZE..2 * BLOCK_SIZE + 112],
    );
    c.add("dir_block", "kernel_root_dir_fresh.dirblk", block(&bytes, 66));
    c.add("bitmap_block", "kernel_block_bitmap.bmp", block(&bytes, 1));
}

fn kernel_inode(mode: u16, links: u16, size: u64, blocks: &[u32]) -> InodeBase {
    let mut i = InodeBase::new_zeroed();
    i.i_mode.set(mode);
    i.i_links_count.set(links);
    i.i_size.set(size);
    i.i_blocks.set(blocks.len() as u32 * 8);
    for t in [&mut i.i_atime, &mut i.i_ctime, &mut i.i_mtime] {
        t.set(TIME as u32);
    }
    for (slot, b) in i.i_block.iter_mut().zip(blocks) {
        slot.set(*b);
    }
    i
}

/// Entries filling a directory block; the last takes the rest of the block.
fn dir_block_with(entries: &[(u32, u8, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; BLOCK_SIZE];
    let mut off = 0;
    for (i, (ino, ft, name)) in entries.iter().enumerate() {
        let rl = if i + 1 == entries.len() {
            BLOCK_SIZE - off
        } else {
            rec_len_for(name.len())
        };
        dir::write_entry(&mut b, off, *ino, rl as u16, *ft, name);
        off += rl;
    }
    b
}

/// A 72-block kernel-layout image with files, a hashed subdirectory (an
/// htree root in logical block 0, one leaf) and both kinds of symlink, built
/// by hand in the kernel module's layout.
fn kernel_populated(dir: &Path, c: &mut Corpus) {
    const BLOCKS: u64 = 72;
    let p = make(
        dir,
        "kp.img",
        &mkfs_options(BLOCKS * BLOCK_SIZE_U64, true, &[], Sizing::default()),
    );
    let mut bytes = std::fs::read(&p).unwrap();
    let long_target = b"sub/some/deeper/path/that/does/not/fit/in/the/inode/i_block/area.txt";
    let text: Vec<u8> = b"hello, vexfs\n".iter().copied().cycle().take(5000).collect();
    let mut fast = kernel_inode(S_IFLNK | 0o777, 1, 9, &[]);
    let mut hashed_sub = kernel_inode(S_IFDIR | 0o755, 2, 2 * BLOCK_SIZE_U64, &[69, 71]);
    hashed_sub.i_flags.set(INDEX_FL);
    fast.i_block.as_mut_bytes()[..9].copy_from_slice(b"hello.txt");
    let inodes = [
        (ROOT_INO, kernel_inode(S_IFDIR | 0o755, 3, BLOCK_SIZE_U64, &[66])),
        (2, kernel_inode(S_IFREG | 0o644, 2, text.len() as u64, &[67, 68])),
        (3, hashed_sub),
        (4, kernel_inode(S_IFREG | 0o644, 1, 0, &[])),
        (5, fast),
        (6, kernel_inode(S_IFLNK | 0o777, 1, long_target.len() as u64, &[70])),
    ];
    for (n, ino) in &inodes {
        let off = 2 * BLOCK_SIZE + (*n as usize - 1) * 112;
        bytes[off..off + 112].copy_from_slice(ino.as_bytes());
    }
    let root = dir_block_with(&[
        (1, 2, b"."),
        (1, 2, b".."),
        (2, 1, b"hello.txt"),
        (3, 2, b"sub"),
        (5, 7, b"link"),
        (6, 7, b"longlink"),
    ]);
    let sub = htree_root(3, 1, 0, &[(0, 1)]);
    let sub_leaf = dir_block_with(&[(4, 1, b"empty"), (2, 1, b"hello-again")]);
    let put = |bytes: &mut Vec<u8>, n: usize, data: &[u8]| {
        bytes[n * BLOCK_SIZE..n * BLOCK_SIZE + data.len()].copy_from_slice(data);
    };
    put(&mut bytes, 66, &root);
    put(&mut bytes, 67, &text);
    put(&mut bytes, 69, &sub);
    put(&mut bytes, 70, long_target);
    put(&mut bytes, 71, &sub_leaf);
    for b in 67..=71 {
        bitmap::set_bit(&mut bytes[BLOCK_SIZE..2 * BLOCK_SIZE], b, true);
    }
    // Superblock counters (no checksum in the kernel layout).
    let free_blocks = (BLOCKS - 72) as u32;
    bytes[12..16].copy_from_slice(&free_blocks.to_le_bytes());
    let free_inodes = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) - 5;
    bytes[20..24].copy_from_slice(&free_inodes.to_le_bytes());
    std::fs::write(&p, &bytes).unwrap();
    assert_clean(&p);
    c.add("whole_image", "kernel_72blk_files_hashed_dir_symlinks.vexfs", &bytes);
    c.add("dir_block", "kernel_root_dir_populated.dirblk", &root);
    c.add("dir_block", "kernel_hashed_subdir_root_levels0.dirblk", &sub);
    c.add("dir_block", "kernel_hashed_subdir_leaf.dirblk", &sub_leaf);
    for (n, name) in [
        (2usize, "kernel_regular_file_2_blocks.inode"),
        (5, "kernel_fast_symlink.inode"),
        (6, "kernel_slow_symlink.inode"),
    ] {
        let off = 2 * BLOCK_SIZE + (n - 1) * 112;
        c.add("inode", name, &bytes[off..off + 112]);
    }
}

/// A v1 image with collections, shrunk to the blocks mkfs used plus
/// [`V1_COMPACT_SLACK`]: blocks past the new end are marked in use in the
/// bitmap leaf, counters and checksums are recomputed, and the backup
/// superblock (if mkfs wrote one) moves to the new last block. Then the filesystem
/// core fills it: files with data and an xattr, a subdirectory, both kinds
/// of symlink, a fifo, a device, and a hashed directory (hard links, so it
/// needs no more inodes than the compact inode table has). fsck finds it
/// clean.
fn v1_compact(dir: &Path, c: &mut Corpus) {
    let sizing = Sizing {
        inode_ratio: Some(1 << 40),
        ..Default::default()
    };
    let opts = mkfs_options(8 << 20, false, &["docs:8:cosine", "img:3:l2:int8"], sizing);
    let p = make(dir, "v1c.img", &opts);
    let mut bytes = std::fs::read(&p).unwrap();
    let (g, seed) = {
        let img = Image::open(&p, Mode::ReadOnly).unwrap();
        (img.geometry().clone(), img.geometry().csum_seed.unwrap())
    };
    assert_eq!(g.block_bitmap.blocks, 1);
    let leaf_at = g.block_bitmap.start as usize * BLOCK_SIZE;
    let used = bitmap::find_zero(&bytes[leaf_at..leaf_at + TAILED_BITS_BYTES], 0, g.blocks_count).unwrap();
    let blocks = used + V1_COMPACT_SLACK;
    // Newer mkfs keeps a backup superblock in the last block (in use, never
    // rewritten); move it to the new last block when there is one.
    let last = (g.blocks_count - 1) as usize * BLOCK_SIZE;
    let backup = bytes[last..last + 4] == bytes[..4];
    let data_end = if backup { blocks - 1 } else { blocks };
    {
        let leaf = &mut bytes[leaf_at..leaf_at + BLOCK_SIZE];
        for b in data_end..BITS_PER_TAILED_BLOCK {
            bitmap::set_bit(&mut leaf[..TAILED_BITS_BYTES], b, true);
        }
        bitmap::seal_tailed(leaf, g.block_bitmap.start, Some(seed), BITS_PER_TAILED_BLOCK);
    }
    let mut sb = vexfs::format::superblock::Superblock::parse(&bytes[..1024])
        .unwrap()
        .clone();
    sb.set_blocks_count(blocks);
    sb.set_free_blocks(data_end - used);
    sb.update_checksum();
    bytes[..1024].copy_from_slice(sb.as_bytes());
    bytes.truncate(blocks as usize * BLOCK_SIZE);
    if backup {
        let at = (blocks - 1) as usize * BLOCK_SIZE;
        bytes[at..].fill(0);
        bytes[at..at + 1024].copy_from_slice(sb.as_bytes());
    }
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, &bytes).unwrap();
    assert_clean(&p);
    populate_v1(&p);
    assert_clean(&p);
    let bytes = std::fs::read(&p).unwrap();
    let name = format!("v1_{blocks}blk_collections_files_htree_xattr.vexfs");
    c.add("whole_image", &name, &bytes);
    c.add("superblock", "v1_compact.sb", &bytes[..1024]);
    let img = Image::open(&p, Mode::ReadOnly).unwrap();
    let many = img.resolve("/many").unwrap();
    let view = img.inode(many).unwrap();
    let index_block = img.mappings(many, &view).unwrap()[0].physical;
    c.add(
        "dir_block",
        "v1_htree_root_of_hashed_dir.dirblk",
        block(&bytes, index_block),
    );
    let hello = img.resolve("/hello.txt").unwrap();
    let xattr_at = img.inode(hello).unwrap().xattr_block();
    c.add(
        "xattr_block",
        "v1_user_comment_from_fs_core.xattr",
        block(&bytes, xattr_at),
    );
}

/// Free blocks left in the compact v1 image for [`populate_v1`].
const V1_COMPACT_SLACK: u64 = 20;

fn populate_v1(p: &Path) {
    use vexfs::fs::core::Fs;
    use vexfs::fs::namespace::NewNode;
    use vexfs::fs::perm::Ctx;
    const ROOT: u64 = ROOT_INO as u64;
    let fs = Fs::open(p, false).unwrap();
    let ctx = Ctx::root();
    let hello = fs.create(&ctx, ROOT, b"hello.txt", 0o644, NewNode::File).unwrap();
    fs.write_data(hello.ino.into(), 0, b"hello, vexfs\n").unwrap();
    fs.setxattr(&ctx, hello.ino.into(), b"user.comment", b"a seed for the fuzzers", 0)
        .unwrap();
    let data = fs.create(&ctx, ROOT, b"data.bin", 0o600, NewNode::File).unwrap();
    let pattern: Vec<u8> = (0..3 * BLOCK_SIZE).map(|i| (i * 7 % 251) as u8).collect();
    fs.write_data(data.ino.into(), 0, &pattern).unwrap();
    let sub = fs.create(&ctx, ROOT, b"sub", 0o755, NewNode::Dir).unwrap();
    let fast = NewNode::Symlink {
        target: b"../hello.txt",
    };
    fs.create(&ctx, sub.ino.into(), b"link", 0, fast).unwrap();
    let long = [b"sub/".as_slice(); 20].concat();
    let slow = NewNode::Symlink { target: &long };
    fs.create(&ctx, sub.ino.into(), b"longlink", 0, slow).unwrap();
    fs.create(&ctx, ROOT, b"fifo", 0o010644, NewNode::Special { rdev: 0 })
        .unwrap();
    fs.create(&ctx, ROOT, b"null", 0o020666, NewNode::Special { rdev: 0x103 })
        .unwrap();
    // Vectors, so whole_image's searches walk a graph.
    let third = fs.create(&ctx, sub.ino.into(), b"vec", 0o644, NewNode::File).unwrap();
    for (i, ino) in [hello.ino, data.ino, third.ino].into_iter().enumerate() {
        let x = i as f32;
        fs.set_vector(&ctx, ino.into(), "docs", &[1.0, x, 0.5, -x, 0.25, 2.0, x * x, 1.0])
            .unwrap();
        fs.set_vector(&ctx, ino.into(), "img", &[x, 1.0 - x, 0.5]).unwrap();
    }
    let many = fs.create(&ctx, ROOT, b"many", 0o755, NewNode::Dir).unwrap();
    for i in 0..200 {
        let name = format!("hard-link-number-{i:04}");
        fs.link(&ctx, hello.ino.into(), many.ino.into(), name.as_bytes())
            .unwrap();
    }
    fs.sync().unwrap();
}

fn sealed_xattr_block(attrs: &[(u8, &[u8], &[u8])]) -> Vec<u8> {
    let mut b = xattr::encode_block(attrs).expect("seed attributes fit one block");
    let sum = xattr::block_checksum(&b, FUZZ_BLOCK, FUZZ_SEED);
    b[16..20].copy_from_slice(&sum.to_le_bytes());
    b
}

fn extent_block(depth: u16, entries: &[&[u8]]) -> Vec<u8> {
    let mut b = vec![0u8; BLOCK_SIZE];
    let mut h = ExtentHeader::new_zeroed();
    h.eh_magic.set(EXTENT_MAGIC);
    h.eh_entries.set(entries.len() as u16);
    h.eh_max.set(BLOCK_MAX_ENTRIES);
    h.eh_depth.set(depth);
    b[..12].copy_from_slice(h.as_bytes());
    for (i, e) in entries.iter().enumerate() {
        b[12 + i * 12..24 + i * 12].copy_from_slice(e);
    }
    let sum = extent::tree_block_checksum(&b, FUZZ_BLOCK, FUZZ_INO, FUZZ_SEED);
    b[TAIL_OFFSET..].copy_from_slice(&sum.to_le_bytes());
    b
}

/// `ids` as a neighbour list in `coding` (format-spec/09 §9.5).
fn encoded_as(coding: hnsw::ListCoding, ids: &[u32]) -> Vec<u8> {
    let mut buf = vec![0u8; 1 + ids.len() * 12];
    let n = coding.encode(ids, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn encoded(ids: &[u32]) -> Vec<u8> {
    encoded_as(hnsw::ListCoding::Varint, ids)
}

/// A node file: sealed header (node inode FUZZ_INO) and `slots` live
/// records, each linked to the others at level 0.
fn node_file(slots: u32) -> Vec<u8> {
    let geo = vector::node_geometry(8, ElemType::F32, 16, vector::NodeLayout::V1, hnsw::ListCoding::Varint);
    let mut h = CollectionHeader::new_zeroed();
    h.ch_magic.set(COLLECTION_MAGIC);
    h.ch_collection_id.set(1);
    h.ch_dim.set(8);
    h.ch_elem_type = ElemType::F32 as u8;
    h.ch_metric = vector::Metric::Cosine as u8;
    h.ch_m.set(16);
    h.ch_node_stride.set(geo.stride);
    h.ch_vector_offset.set(geo.vector_offset);
    h.ch_adj_offset.set(geo.adj_offset);
    h.ch_adj_capacity.set(geo.adj_capacity);
    h.ch_count.set(slots.into());
    h.ch_slots.set(slots.into());
    h.ch_upper_ino.set(FUZZ_INO + 1);
    let stride = geo.stride as usize;
    let mut b = vec![0u8; BLOCK_SIZE + slots as usize * stride];
    b[..88].copy_from_slice(h.as_bytes());
    let sum = vector::collection_header_checksum(&b[..88], FUZZ_INO, FUZZ_SEED);
    b[84..88].copy_from_slice(&sum.to_le_bytes());
    for s in 0..slots {
        let at = BLOCK_SIZE + s as usize * stride;
        let others: Vec<u32> = (0..slots).filter(|&o| o != s).collect();
        let adj = encoded(&others);
        let mut n = NodeHeader::new_zeroed();
        n.n_owner_ino.set(100 + s);
        n.n_flags = NODE_LIVE;
        n.n_adj_len.set(adj.len() as u16);
        b[at..at + vector::NODE_HEADER_LEN].copy_from_slice(n.as_bytes());
        for (i, x) in (0..8).map(|i| (s * 8 + i) as f32 / 64.0).enumerate() {
            let v = at + geo.vector_offset as usize + i * 4;
            b[v..v + 4].copy_from_slice(&x.to_le_bytes());
        }
        let a = at + geo.adj_offset as usize;
        b[a..a + adj.len()].copy_from_slice(&adj);
    }
    b
}

/// An event ring header (sealed for FUZZ_BLOCK) followed by two records.
fn events_block() -> Vec<u8> {
    let mut h = EventRingHeader::new_zeroed();
    h.er_magic.set(EVENT_RING_MAGIC);
    h.er_version.set(1);
    h.er_ring_blocks.set(events::MIN_EVENT_BLOCKS - 1);
    h.er_next_seq.set(3);
    h.er_oldest_seq.set(1);
    h.er_head_offset.set(200);
    let mut b = h.as_bytes().to_vec();
    let sum = events::header_checksum(&b, FUZZ_BLOCK, FUZZ_SEED);
    b[68..72].copy_from_slice(&sum.to_le_bytes());
    for (seq, op, name, name2) in [(1u64, 1u16, &b"a.txt"[..], &b""[..]), (2, 8, b"a.txt", b"b.txt")] {
        let mut r = EventRecord::new_zeroed();
        let len = (88 + name.len() + name2.len()).next_multiple_of(events::EVENT_ALIGN);
        r.ev_magic.set(EVENT_MAGIC);
        r.ev_len.set(len as u16);
        r.ev_op.set(op);
        r.ev_seq.set(seq);
        r.ev_name_len.set(name.len() as u16);
        r.ev_name2_len.set(name2.len() as u16);
        r.ev_ino.set(12);
        r.ev_parent.set(1);
        let mut rec = r.as_bytes().to_vec();
        rec.extend_from_slice(name);
        rec.extend_from_slice(name2);
        rec.resize(len, 0);
        let sum = events::record_checksum(&rec, seq, FUZZ_SEED);
        rec[80..84].copy_from_slice(&sum.to_le_bytes());
        b.extend_from_slice(&rec);
    }
    b
}

/// An htree root block (no checksum tail): ".", "..", then `dx_limit`,
/// `dx_count` and the slots (hash, logical block); slot 0's hash is unused.
fn htree_root(dot: u32, dotdot: u32, levels: u8, slots: &[(u32, u32)]) -> Vec<u8> {
    let mut dx = DxRoot::new_zeroed();
    dx.dot_inode.set(dot);
    dx.dot_rec_len.set(12);
    dx.dot_name_len = 1;
    dx.dot_file_type = 2;
    dx.dot_name[0] = b'.';
    dx.dotdot_inode.set(dotdot);
    dx.dotdot_rec_len.set((BLOCK_SIZE - 12) as u16);
    dx.dotdot_name_len = 2;
    dx.dotdot_file_type = 2;
    dx.dotdot_name[..2].copy_from_slice(b"..");
    dx.dx_hash_version = 1;
    dx.dx_info_length = 8;
    dx.dx_indirect_levels = levels;
    dx.dx_limit.set(((BLOCK_SIZE - 32 - 8) / 8 + 1) as u16);
    dx.dx_count.set(slots.len() as u16);
    dx.dx_block.set(slots[0].1);
    let mut b = vec![0u8; BLOCK_SIZE];
    b[..40].copy_from_slice(dx.as_bytes());
    for (i, (hash, blk)) in slots.iter().enumerate().skip(1) {
        b[32 + i * 8..36 + i * 8].copy_from_slice(&hash.to_le_bytes());
        b[36 + i * 8..40 + i * 8].copy_from_slice(&blk.to_le_bytes());
    }
    b
}

/// Structures mkfs never writes, built with the format module's writers and
/// sealed for the fuzzing module's seed and locations.
fn hand_built(c: &mut Corpus) {
    c.add(
        "xattr_block",
        "user_comment_and_vexfs_model.xattr",
        &sealed_xattr_block(&[(1, b"comment", b"hello"), (8, b"model", b"minilm-l6-v2")]),
    );
    c.add(
        "xattr_block",
        "security_selinux_label.xattr",
        &sealed_xattr_block(&[(6, b"selinux", b"system_u:object_r:tmp_t:s0\0")]),
    );
    c.add("xattr_block", "header_only_no_entries.xattr", &sealed_xattr_block(&[]));
    let leaf = extent_block(
        0,
        &[
            Extent::new(0, 200, 4, false).as_bytes(),
            Extent::new(10, 0x1_0000_0000, 100, false).as_bytes(),
            Extent::new(200, 300, 8, true).as_bytes(),
        ],
    );
    c.add("extent_node", "leaf_block_three_extents_one_unwritten.extblk", &leaf);
    let mut ix = ExtentIndex::new_zeroed();
    ix.ei_block.set(0);
    ix.ei_leaf_lo.set(500);
    let mut ix2 = ExtentIndex::new_zeroed();
    ix2.ei_block.set(1000);
    ix2.ei_leaf_lo.set(501);
    ix2.ei_leaf_hi.set(1);
    let index = extent_block(1, &[ix.as_bytes(), ix2.as_bytes()]);
    c.add("extent_node", "index_block_depth1_two_children.extblk", &index);
    let mut root = [0u8; 48];
    extent::init_root(&mut root);
    root[2..4].copy_from_slice(&2u16.to_le_bytes());
    root[12..24].copy_from_slice(Extent::new(0, 90, 1, false).as_bytes());
    root[24..36].copy_from_slice(Extent::new(1, 95, 3, false).as_bytes());
    c.add("extent_node", "inode_root_two_extents.extroot", &root);

    // A hashed directory's root block: ".", "..", then the index.
    let b = htree_root(20, 1, 0, &[(0, 1), (0x4000_0000, 2), (0x9000_0000, 3)]);
    c.add("dir_block", "htree_root_three_leaves.dirblk", &b);
    // A leaf with long and odd names, sealed for FUZZ_BLOCK / FUZZ_INO.
    let long = [b'n'; 255];
    let mut leaf = dir_block_with(&[
        (20, 2, b"."),
        (1, 2, b".."),
        (21, 1, &long),
        (0, 0, b"deleted"),
        (22, 7, b"symlink-\xff\xfe"),
    ]);
    // Shorten the last record so a tail fits, then seal it.
    fix_last_record_for_tail(&mut leaf);
    dir::seal_leaf_tail(&mut leaf, FUZZ_BLOCK, FUZZ_INO, FUZZ_SEED);
    c.add("dir_block", "leaf_long_and_non_utf8_names_with_tail.dirblk", &leaf);

    c.add("adjacency", "three_close_ids.adj", &encoded(&[3, 4, 7]));
    c.add(
        "adjacency",
        "wide_gaps_up_to_4e9.adj",
        &encoded(&[0, 127, 128, 16_383, 2_097_151, 4_000_000_000]),
    );
    c.add(
        "adjacency",
        "m16_32_neighbours.adj",
        &encoded(&(0..32).map(|i| i * 37 + 5).collect::<Vec<_>>()),
    );
    c.add(
        "adjacency",
        "max_512_neighbours.adj",
        &encoded(&(0..512).collect::<Vec<_>>()),
    );
    // Rice-coded lists (format-spec/09 §9.5.2): the spec's example, ids
    // spread over a million slots, and a code whose remainder is cut off.
    let rice = |ids: &[u32]| encoded_as(hnsw::ListCoding::Rice, ids);
    c.add(
        "adjacency",
        "rice_spec_example.adj",
        &rice(&[3, 4, 200, 70_000, 1_000_000]),
    );
    let spread: Vec<u32> = (0..30).map(|i| i * 33_331 + (i * i * 97) % 1000).collect();
    c.add("adjacency", "rice_30_ids_over_a_million.adj", &rice(&spread));
    let mut cut = rice(&spread);
    cut.truncate(cut.len() - 2);
    c.add("adjacency", "rice_truncated_remainder.adj", &cut);
    let mut up = UpperRecord::new_zeroed();
    let list = encoded(&[1, 9, 40]);
    up.u_slot.set(5);
    up.u_level = 1;
    up.u_flags = 1;
    up.u_adj_len.set(list.len() as u16);
    let mut rec = up.as_bytes().to_vec();
    rec.extend_from_slice(&list);
    c.add("adjacency", "upper_record_level1.adj", &rec);

    c.add(
        "collection_header",
        "node_file_3_live_slots_f32_cosine.colh",
        &node_file(3),
    );
    c.add(
        "event_header",
        "ring_header_and_create_rename_records.evh",
        &events_block(),
    );
    let mut js = vexfs::format::journal::JournalSuperblock::new_zeroed();
    js.js_magic.set(vexfs::format::journal::JOURNAL_SB_MAGIC);
    js.js_version.set(1);
    js.js_block_size.set(BLOCK_SIZE as u32);
    js.js_max_len.set(64);
    js.js_first.set(1);
    js.js_sequence.set(7);
    js.js_start.set(5);
    let mut b = js.as_bytes().to_vec();
    let sum = vexfs::format::journal::superblock_checksum(&b, FUZZ_BLOCK, FUZZ_SEED);
    b[68..72].copy_from_slice(&sum.to_le_bytes());
    c.add("journal_superblock", "needs_replay_from_ring_block_5.jsb", &b);
}

/// Requests of `/.vexfs/search` in both forms, and a binary reply.
fn search_requests(c: &mut Corpus) {
    use vexfs::vector::control;
    use vexfs::vector::{Hit, SearchRequest, SearchResponse};
    c.add(
        "search_request",
        "json_all_fields.json",
        br#"{"collection":"docs","k":5,"ef":64,"subtree":"/papers","paths":true,"max_visited":500,"vector":[0.1,-2.5,3e38]}
"#,
    );
    c.add(
        "search_request",
        "json_minimal_no_newline.json",
        br#"{"collection":"t","k":1,"vector":[1]}"#,
    );
    c.add(
        "search_request",
        "json_unknown_field.json",
        br#"{"collection":"t","k":1,"vector":[1],"bogus":{"a":[null,true]}}
"#,
    );
    let mut r = SearchRequest::new("docs", vec![0.1, 0.2, 0.3, 0.4], 5);
    r.ef = Some(64);
    r.subtree = Some("/papers/2024".into());
    c.add(
        "search_request",
        "binary_dim4_ef_subtree.vxqb",
        &control::encode_binary(&r),
    );
    c.add(
        "search_request",
        "binary_dim1_minimal.vxqb",
        &control::encode_binary(&SearchRequest::new("t", vec![1.0], 1)),
    );
    let hit = |ino, slot, distance| Hit {
        ino,
        slot,
        distance,
        path: None,
    };
    let reply = SearchResponse {
        hits: vec![hit(12, 0, 0.0), hit(40, 7, 1.5)],
        complete: false,
        visited: 9,
    };
    c.add(
        "search_request",
        "binary_reply_two_hits_incomplete.vxrb",
        &control::format(&reply, true),
    );
}

/// An event ring input for `fuzzing::event_ring`: control byte (bits 6 and
/// 7: recompute header and record checksums; low 6 bits: piece size
/// 64 × (1 + n)), the ring header, then one piece per ring block from the
/// tail block on.
fn ring_input(piece_code: u8, header: &EventRingHeader, pieces: &[Vec<u8>]) -> Vec<u8> {
    let piece = 64 * (1 + usize::from(piece_code));
    let mut b = vec![0xc0 | piece_code];
    b.extend_from_slice(header.as_bytes());
    for (i, p) in pieces.iter().enumerate() {
        assert!(p.len() <= piece);
        b.extend_from_slice(p);
        if i + 1 < pieces.len() {
            b.resize(b.len() + piece - p.len(), 0);
        }
    }
    b
}

fn ring_header(next: u64, oldest: u64, head: (u64, u32), tail: u32, dropped: u64) -> EventRingHeader {
    let mut h = EventRingHeader::new_zeroed();
    h.er_magic.set(EVENT_RING_MAGIC);
    h.er_version.set(1);
    h.er_ring_blocks.set(events::MIN_EVENT_BLOCKS - 1);
    h.er_next_seq.set(next);
    h.er_oldest_seq.set(oldest);
    h.er_head_block.set(head.0);
    h.er_head_offset.set(head.1);
    h.er_tail_block.set(tail);
    h.er_dropped.set(dropped);
    h
}

/// Records sealed with FUZZ_SEED for sequence numbers `seqs`.
fn event_records(seqs: std::ops::Range<u64>) -> Vec<u8> {
    use vexfs::events::{Event, Op};
    let mut out = Vec::new();
    for seq in seqs {
        let mut e = match seq % 3 {
            0 => Event::new(Op::Create, 5).with_name(1, b"a"),
            1 => Event::new(Op::Rename, 12)
                .with_name(1, b"a.txt")
                .with_second(0, 7, b"b.txt"),
            _ => Event::new(Op::Write, 5).with_aux(4096),
        };
        e.seq = seq;
        out.extend_from_slice(&e.encode(FUZZ_SEED));
    }
    out
}

/// Rings for `fuzzing::event_ring` (the harness writes them over the event
/// region of a 16-block ring: header and 15 ring blocks).
fn event_rings(c: &mut Corpus) {
    let recs = event_records(1..3);
    let h = ring_header(3, 1, (0, recs.len() as u32), 0, 0);
    c.add("event_ring", "two_records_in_block0.evr", &ring_input(3, &h, &[recs]));
    let h = ring_header(1, 1, (0, 0), 0, 0);
    c.add("event_ring", "fresh_empty_ring.evr", &ring_input(0, &h, &[]));
    // Wrapped: blocks 13, 14, 0, 1, 2 hold one record each, seq 10..15.
    let pieces: Vec<Vec<u8>> = (10..15).map(|s| event_records(s..s + 1)).collect();
    let last = pieces[4].len() as u32;
    let h = ring_header(15, 10, (2, last), 13, 9);
    c.add(
        "event_ring",
        "wrapped_tail13_head2_seq10.evr",
        &ring_input(1, &h, &pieces),
    );
    // One full ring block: records up to the end of the block.
    let mut full = Vec::new();
    let mut seq = 100;
    while full.len() + 104 <= BLOCK_SIZE {
        full.extend_from_slice(&event_records(seq..seq + 1));
        seq += 1;
    }
    let h = ring_header(seq, 100, (0, full.len() as u32), 0, 99);
    c.add("event_ring", "full_block0_seq100.evr", &ring_input(63, &h, &[full]));
}

/// Inputs for `fuzzing::node_record`, which writes them over the node and
/// upper records of its template (collection "t": 4 f32 dimensions, M 4,
/// 40 vectors). The first byte is the control byte (bit 0: upper file,
/// bit 1: recompute record checksums, bit 2: XOR 52 bytes into the header's
/// counters, bit 3: XOR instead of overwrite), the second a record index.
fn node_records(c: &mut Corpus) {
    c.add("node_record", "template_unchanged.node", &[0]);
    // XOR n_level of slot 3 with 2 (a level its upper records do not have).
    c.add(
        "node_record",
        "slot3_level_xor2_resealed.node",
        &[0x0a, 3, 0, 0, 0, 0, 2],
    );
    // Flip a vector byte of slot 1 without resealing: node() fails, peek() reads.
    let mut stale = vec![0x08, 1];
    stale.extend_from_slice(&[0; 33]);
    stale.push(0x40);
    c.add("node_record", "slot1_vector_flipped_checksum_stale.node", &stale);
    // A new live record over slot 0: level 0, neighbours itself, slot 39,
    // one past the last slot and a huge id (Rice-coded, as the packed
    // template's image codes lists: 11 of its 16 list bytes).
    let rec = live_record(12, &[0, 39, 40, 1_000_000]);
    let mut input = vec![0x02, 0];
    input.extend_from_slice(&rec);
    c.add("node_record", "slot0_live_self_loop_out_of_range_ids.node", &input);
    // Header counters: entry slot XOR 5, max level XOR 1 (checksum resealed).
    let mut overlay = [0u8; 52];
    overlay[56 - 32] = 5;
    overlay[64 - 32] = 1;
    let mut input = vec![0x06, 0];
    input.extend_from_slice(&overlay);
    c.add("node_record", "header_entry_xor5_max_level_xor1.node", &input);
    // Upper record 0: u_adj_len XOR 1, resealed.
    c.add(
        "node_record",
        "upper0_adj_len_xor1_resealed.node",
        &[0x0b, 0, 0, 0, 0, 0, 0, 0, 1],
    );
    // The same damage in the v1 node layout's template (control bit 4).
    c.add("node_record", "v1_template_unchanged.node", &[0x10]);
    c.add(
        "node_record",
        "v1_slot3_level_xor2_resealed.node",
        &[0x1a, 3, 0, 0, 0, 0, 2],
    );
    // Packed records straddle blocks: slot 78 of the 52-byte records (dim
    // 4, M 4: 16 list bytes, Rice) runs from byte 4056 of the first record
    // block into the second, its list from byte 4092. Written over with a
    // 6-byte list, which crosses into the second block, and resealed.
    let rec = live_record(30, &[3, 17, 40, 61, 77, 99]);
    let list_len = usize::from(u16::from_le_bytes([rec[6], rec[7]]));
    assert!(
        78 * rec.len() + 36 + list_len > 4096,
        "the list crosses the block boundary"
    );
    let mut input = vec![0x02, 78];
    input.extend_from_slice(&rec);
    c.add("node_record", "slot78_straddling_list_resealed.node", &input);
}

/// A live level-0 record of the packed node template (dim 4 f32, M 4,
/// Rice lists: 52 bytes) owned by inode `owner`, listing `ids`.
fn live_record(owner: u32, ids: &[u32]) -> Vec<u8> {
    let geo = vector::node_geometry(4, ElemType::F32, 4, vector::NodeLayout::Packed, hnsw::ListCoding::Rice);
    let adj = encoded_as(hnsw::ListCoding::Rice, ids);
    let mut rec = vec![0u8; geo.stride as usize];
    let mut n = NodeHeader::new_zeroed();
    n.n_owner_ino.set(owner);
    n.n_flags = NODE_LIVE;
    n.n_adj_len.set(adj.len() as u16);
    rec[..vector::NODE_HEADER_LEN].copy_from_slice(n.as_bytes());
    for (i, x) in [1.0f32, 2.0, 0.5, 1.2].iter().enumerate() {
        let at = geo.vector_offset as usize + 4 * i;
        rec[at..at + 4].copy_from_slice(&x.to_le_bytes());
    }
    rec[geo.adj_offset as usize..geo.adj_offset as usize + adj.len()].copy_from_slice(&adj);
    rec
}

/// Shrink the last record of a leaf block by the 12-byte tail.
fn fix_last_record_for_tail(block: &mut [u8]) {
    let mut pos = 0;
    loop {
        let rl = usize::from(u16::from_le_bytes([block[pos + 4], block[pos + 5]]));
        if pos + rl >= BLOCK_SIZE {
            let new = (rl - dir::DIR_TAIL_SIZE) as u16;
            block[pos + 4..pos + 6].copy_from_slice(&new.to_le_bytes());
            return;
        }
        pos += rl;
    }
}

/// Rebuild `fuzz/corpus/` from real structures.
#[test]
#[ignore = "rewrites fuzz/corpus/; run explicitly to regenerate the seeds"]
fn regenerate_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Corpus::default();
    from_v1_image(dir.path(), &mut c);
    from_v1_without_collections(dir.path(), &mut c);
    from_kernel_image(dir.path(), &mut c);
    kernel_populated(dir.path(), &mut c);
    v1_compact(dir.path(), &mut c);
    hand_built(&mut c);
    search_requests(&mut c);
    event_rings(&mut c);
    node_records(&mut c);
    c.write();
}
