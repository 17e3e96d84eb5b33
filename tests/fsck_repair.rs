//! fsck repair (`src/check/repair*.rs`): each repairable kind of damage,
//! made at an exact place through the core, is reported, fixed with the
//! exact fix list, and leaves an image a second check finds clean with
//! every file's data intact; `-p` refuses what it must not fix without
//! changing a byte, and `-n` changes nothing.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use vexfs::check::{self, CheckOptions, Kind, RepairMode, RepairOutcome};
use vexfs::format::inode::InodeNo;
use vexfs::format::vector::{ElemType, Metric};
use vexfs::format::BLOCK_SIZE_U64;
use vexfs::fs::core::{live, live_dir, Fs};
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::fs::txn::Txn;
use vexfs::fs::{alloc, dir, inode as ino_io};
use vexfs::image::{Image, Mode};
use vexfs::layout::Geometry;
use vexfs::vector::store::Collection;
use vexfs::vector::{catalog_io, CollectionParams, SearchRequest};

const ROOT: u64 = 1;

/// Deterministic file contents.
fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(31) ^ seed) as u8).collect()
}

/// The files every image holds: (path, contents).
fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("/d/a", pattern(1, 20_000)),
        ("/b", pattern(2, 9_000)),
        ("/d/sub/c", pattern(3, 100)),
    ]
}

struct Img {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

/// A v1 (or kernel-layout) image holding [`files`], clean.
fn build(kernel: bool) -> Img {
    let dir = tempfile::tempdir().unwrap();
    let path = make_image(dir.path(), "r.img", if kernel { 4 << 20 } else { 16 << 20 }, kernel);
    let fs = Fs::open(&path, false).unwrap();
    let ctx = Ctx::root();
    let d = fs.create(&ctx, ROOT, b"d", 0o755, NewNode::Dir).unwrap().ino;
    fs.create(&ctx, d.into(), b"sub", 0o755, NewNode::Dir).unwrap();
    for (p, data) in files() {
        let ino = create_file(&fs, p);
        fs.write_data(ino.into(), 0, &data).unwrap();
    }
    fs.close().unwrap();
    drop(fs);
    assert_clean(&path);
    Img { _dir: dir, path }
}

/// Create the regular file at absolute path `p` (parents must exist).
fn create_file(fs: &Fs, p: &str) -> u32 {
    let (parent, name) = p.rsplit_once('/').unwrap();
    let dir = resolve_fs(fs, parent);
    fs.create(&Ctx::root(), dir.into(), name.as_bytes(), 0o644, NewNode::File)
        .unwrap()
        .ino
}

fn resolve_fs(fs: &Fs, p: &str) -> u32 {
    let mut cur = ROOT as u32;
    for part in p.split('/').filter(|s| !s.is_empty()) {
        cur = fs.lookup(&Ctx::root(), cur.into(), part.as_bytes()).unwrap().ino;
    }
    cur
}

/// Inode number of `p` in the image (read-only).
fn ino_of(path: &Path, p: &str) -> u32 {
    Image::open(path, Mode::ReadOnly).unwrap().resolve(p).unwrap().get()
}

/// Damage the image through the core: `f` runs in one transaction.
fn damage<R>(path: &Path, mut f: impl FnMut(&mut Txn<'_>, &Geometry) -> vexfs::Result<R>) -> R {
    let fs = Fs::open(path, false).unwrap();
    let r = fs.write(|txn, g| f(txn, g)).unwrap();
    fs.close().unwrap();
    r
}

fn ino(g: &Geometry, n: u32) -> InodeNo {
    g.inode_no(n).unwrap()
}

fn lines(r: &check::Report) -> Vec<String> {
    r.problems.iter().map(|p| p.to_string()).collect()
}

fn assert_clean(path: &Path) {
    let r = fsck(path).unwrap();
    assert!(r.is_clean(), "{:#?}", lines(&r));
}

fn repair(path: &Path, mode: RepairMode) -> RepairOutcome {
    check::repair(path, mode, CheckOptions::default()).unwrap()
}

/// The fix list as `fsck.vexfs` prints it (without "fixed: ").
fn fixed(o: &RepairOutcome) -> Vec<String> {
    o.fixed.iter().map(|f| f.to_string()).collect()
}

/// Repair with -y: exactly `found` reported, exactly `fixes` made, exit 1,
/// a second check clean and every file's data intact.
fn assert_repairs(img: &Img, mode: RepairMode, found: &[String], fixes: &[String]) -> RepairOutcome {
    assert_eq!(lines(&fsck(&img.path).unwrap()), found, "the check before the repair");
    let o = repair(&img.path, mode);
    assert_eq!(lines(&o.found), found);
    assert_eq!(fixed(&o), fixes, "errors: {:?}", o.errors);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(o.exit_code(), 1, "remaining: {:#?}", lines(&o.remaining));
    assert_clean(&img.path);
    assert_data_intact(&img.path);
    o
}

fn assert_data_intact(path: &Path) {
    let img = Image::open(path, Mode::ReadOnly).unwrap();
    for (p, data) in files() {
        let Ok(ino) = img.resolve(p) else { continue };
        assert_eq!(img.read_file(ino, 0, data.len() + 1).unwrap(), data, "{p}");
    }
}

fn first_data_block(path: &Path, p: &str) -> u64 {
    let img = Image::open(path, Mode::ReadOnly).unwrap();
    let ino = img.resolve(p).unwrap();
    img.mappings(ino, &img.inode(ino).unwrap()).unwrap()[0].physical
}

#[test]
fn a_leaked_block_is_freed() {
    let img = build(false);
    let (b, _) = damage(&img.path, |txn, g| alloc::alloc_blocks(txn, g, g.first_data_block, 1));
    assert_repairs(
        &img,
        RepairMode::Yes,
        &[format!("block {b}: marked in use in the bitmap but not used (leaked)")],
        &[format!("block {b}: marked free in the bitmap")],
    );
}

#[test]
fn a_block_in_use_but_marked_free_is_marked() {
    let img = build(false);
    let b = first_data_block(&img.path, "/b");
    damage(&img.path, |txn, g| alloc::free_blocks(txn, g, b, 1));
    assert_repairs(
        &img,
        RepairMode::Yes,
        &[format!("block {b}: in use but marked free in the bitmap")],
        &[format!("block {b}: marked in use in the bitmap")],
    );
}

#[test]
fn wrong_free_counts_are_recounted() {
    let img = build(false);
    let (blocks, inodes) = damage(&img.path, |txn, _| {
        alloc::with_superblock(txn, |sb| {
            let before = (sb.free_blocks(), sb.s_free_inodes.get());
            sb.set_free_blocks(before.0 + 5);
            sb.s_free_inodes.set(before.1 - 3);
            before
        })
    });
    assert_repairs(
        &img,
        RepairMode::Preen,
        &[
            format!(
                "superblock: s_free_blocks is {} but the bitmap has {blocks} free blocks",
                blocks + 5
            ),
            format!(
                "superblock: s_free_inodes is {} but {inodes} inodes are free",
                inodes - 3
            ),
        ],
        &[
            format!("superblock: s_free_blocks set to {blocks}"),
            format!("superblock: s_free_inodes set to {inodes}"),
        ],
    );
}

#[test]
fn a_bitmap_block_with_a_stale_checksum_is_resealed() {
    let img = build(false);
    let g = Image::open(&img.path, Mode::ReadOnly).unwrap().geometry().clone();
    // Mark a free block used by hand: the leaf's bt_free and checksum go stale.
    let (leaf, b) = (g.block_bitmap.start, g.blocks_count - 2);
    flip(&img.path, leaf * BLOCK_SIZE_U64 + b / 8, 1 << (b % 8));
    let r = fsck(&img.path).unwrap();
    assert_eq!(r.problems.len(), 3, "{:#?}", lines(&r));
    assert_eq!(r.problems[0].kind, Kind::BitmapBlock { block: leaf });
    assert_eq!(
        r.problems[1].to_string(),
        format!("block {b}: marked in use in the bitmap but not used (leaked)")
    );
    assert_eq!(r.problems[2].kind, Kind::FreeBlocks);
    let o = repair(&img.path, RepairMode::Preen);
    // Freeing the block set the free count right again: no counter change.
    assert_eq!(
        fixed(&o),
        [
            format!("block bitmap block {leaf}: resealed (bt_free and checksum recomputed)"),
            format!("block {b}: marked free in the bitmap"),
        ]
    );
    assert_eq!(o.exit_code(), 1);
    assert_clean(&img.path);
}

#[test]
fn a_damaged_inode_bitmap_block_is_rebuilt_from_the_inode_table() {
    let img = build(false);
    let g = Image::open(&img.path, Mode::ReadOnly).unwrap().geometry().clone();
    let n = ino_of(&img.path, "/b");
    // Clear /b's bit by hand: the leaf's checksum goes stale, /b looks free
    // and its blocks leaked, which must not be freed.
    let leaf = g.inode_bitmap.start;
    flip(
        &img.path,
        leaf * BLOCK_SIZE_U64 + u64::from(n - 1) / 8,
        1 << ((n - 1) % 8),
    );
    let r = fsck(&img.path).unwrap();
    assert!(
        r.problems.iter().any(|p| p.kind == Kind::UnmarkedInode { ino: n }),
        "{:#?}",
        lines(&r)
    );
    assert!(
        r.problems.iter().any(|p| matches!(p.kind, Kind::LeakedBlocks { .. })),
        "{:#?}",
        lines(&r)
    );
    let o = repair(&img.path, RepairMode::Preen);
    assert_eq!(
        fixed(&o),
        [
            format!("inode {n}: marked in use in the inode bitmap"),
            format!("inode bitmap block {leaf}: rebuilt from the inode table"),
        ]
    );
    assert_eq!(o.exit_code(), 1, "{:#?}", lines(&o.remaining));
    assert_clean(&img.path);
    assert_data_intact(&img.path);
}

#[test]
fn a_wrong_link_count_is_set_to_the_references() {
    let img = build(false);
    let n = ino_of(&img.path, "/b");
    damage(&img.path, |txn, g| {
        let mut b = live(txn, g, ino(g, n))?;
        b.set_links(3);
        ino_io::store(txn, g, &b)
    });
    assert_repairs(
        &img,
        RepairMode::Preen,
        &[format!("inode {n}: i_links_count is 3 but 1 references were found")],
        &[format!("inode {n}: i_links_count set to 1")],
    );
}

#[test]
fn i_blocks_and_entry_file_types_are_set_by_preen() {
    let img = build(false);
    let n = ino_of(&img.path, "/d/a");
    let (b, o) = damage(&img.path, |txn, g| {
        let mut f = live(txn, g, ino(g, n))?;
        let sectors = f.blocks_512();
        f.set_blocks_512(sectors + 8);
        ino_io::store(txn, g, &f)?;
        let root = live_dir(txn, g, ino(g, ROOT as u32))?;
        let slot = dir::find(txn, g, &root, b"b")?.unwrap();
        dir::retarget(txn, g, &root, slot, slot.inode, 7)?;
        Ok((slot.block, slot.offset))
    });
    let f = ino_of(&img.path, "/b");
    let sectors = 5 * 8;
    let at = format!("directory inode 1, entry 'b' (block {b}, offset {o})");
    assert_repairs(
        &img,
        RepairMode::Preen,
        &[
            format!(
                "inode {n}: i_blocks is {} but the inode owns 5 blocks ({sectors} sectors)",
                sectors + 8
            ),
            format!("{at}: file_type 7 but inode {f} has type 1"),
        ],
        &[
            format!("inode {n}: i_blocks set to {sectors}"),
            format!("{at}: file_type set to 1"),
        ],
    );
}

/// Add entry `name -> target` to directory `d` (no inode is touched).
fn add_entry(path: &Path, d: u32, name: &[u8], target: u32, file_type: u8) -> (u64, usize) {
    damage(path, |txn, g| {
        let mut dd = live_dir(txn, g, ino(g, d))?;
        dir::add(txn, g, &mut dd, name, target, file_type)?;
        ino_io::store(txn, g, &dd)?;
        let slot = dir::find(txn, g, &dd, name)?.unwrap();
        Ok((slot.block, slot.offset))
    })
}

#[test]
fn dangling_entries_are_removed() {
    let img = build(false);
    let g = Image::open(&img.path, Mode::ReadOnly).unwrap().geometry().clone();
    let d = ino_of(&img.path, "/d");
    let free = g.inodes_count - 1;
    let far = g.inodes_count + 5;
    let (b1, o1) = add_entry(&img.path, ROOT as u32, b"ghost", free, 1);
    let (b2, o2) = add_entry(&img.path, d, b"far", far, 1);
    let at1 = format!("directory inode 1, entry 'ghost' (block {b1}, offset {o1})");
    let at2 = format!("directory inode {d}, entry 'far' (block {b2}, offset {o2})");
    assert_repairs(
        &img,
        RepairMode::Yes,
        &[
            format!("{at1}: points to inode {free}, which is free or damaged"),
            format!("{at2}: inode number {far} out of range"),
        ],
        &[format!("{at1}: removed"), format!("{at2}: removed")],
    );
}

#[test]
fn a_wrong_dot_dot_is_pointed_back_before_link_counts_are_judged() {
    let img = build(false);
    let (d, sub) = (ino_of(&img.path, "/d"), ino_of(&img.path, "/d/sub"));
    let (block, offset) = damage(&img.path, |txn, g| {
        let s = live_dir(txn, g, ino(g, sub))?;
        let slot = dir::find(txn, g, &s, b"..")?.unwrap();
        dir::retarget(txn, g, &s, slot, ROOT as u32, 2)?;
        Ok((slot.block, slot.offset))
    });
    let at = format!("directory inode {sub}, entry '..' (block {block}, offset {offset})");
    let root_links = Image::open(&img.path, Mode::ReadOnly)
        .unwrap()
        .inode(InodeNo::ROOT)
        .unwrap()
        .base
        .i_links_count
        .get();
    // The moved reference shows in both link counts; pointing ".." back
    // settles them, so they are not changed.
    assert_repairs(
        &img,
        RepairMode::Yes,
        &[
            format!("{at}: expected '..' -> inode {d}"),
            format!(
                "inode 1: i_links_count is {root_links} but {} references were found",
                root_links + 1
            ),
            format!("inode {d}: i_links_count is 3 but 2 references were found"),
        ],
        &[format!("{at}: now names inode {d}")],
    );
}

/// Remove the entry `name` of directory `d` without touching its inode.
fn drop_entry(path: &Path, d: u32, name: &[u8]) {
    damage(path, |txn, g| {
        let dd = live_dir(txn, g, ino(g, d))?;
        let slot = dir::find(txn, g, &dd, name)?.unwrap();
        dir::remove(txn, g, &dd, slot)
    });
}

#[test]
fn an_orphan_file_with_data_is_reconnected_into_lost_found() {
    let img = build(false);
    let n = ino_of(&img.path, "/b");
    drop_entry(&img.path, ROOT as u32, b"b");
    let o = assert_repairs(
        &img,
        RepairMode::Yes,
        &[format!("inode {n}: in use but not linked from any directory")],
        &[
            "/lost+found: created".to_string(),
            format!("inode {n}: reconnected as /lost+found/#{n}"),
        ],
    );
    assert_eq!(o.remaining.problems.len(), 0);
    let image = Image::open(&img.path, Mode::ReadOnly).unwrap();
    let found = image.resolve(&format!("/lost+found/#{n}")).unwrap();
    assert_eq!(found.get(), n);
    assert_eq!(image.read_file(found, 0, 10_000).unwrap(), pattern(2, 9_000));
}

#[test]
fn an_orphan_directory_comes_back_with_its_subtree() {
    let img = build(false);
    let (d, sub, c) = (
        ino_of(&img.path, "/d"),
        ino_of(&img.path, "/d/sub"),
        ino_of(&img.path, "/d/sub/c"),
    );
    drop_entry(&img.path, d, b"sub");
    // /d keeps the link of the ".." it lost; /d/sub/c was only named from /d/sub.
    assert_repairs(
        &img,
        RepairMode::Yes,
        &[
            format!("inode {d}: i_links_count is 3 but 2 references were found"),
            format!("inode {sub}: in use but not linked from any directory"),
            format!("inode {c}: in use but not linked from any directory"),
        ],
        &[
            format!("inode {d}: i_links_count set to 2"),
            "/lost+found: created".to_string(),
            format!("inode {sub}: reconnected as /lost+found/#{sub}"),
        ],
    );
    let image = Image::open(&img.path, Mode::ReadOnly).unwrap();
    let c_now = image.resolve(&format!("/lost+found/#{sub}/c")).unwrap();
    assert_eq!(image.read_file(c_now, 0, 200).unwrap(), pattern(3, 100));
    let lf = image.resolve("/lost+found").unwrap();
    assert_eq!(image.lookup(image.inode_no(sub).unwrap(), b"..").unwrap(), lf);
}

#[test]
fn a_damaged_event_ring_header_is_reinitialised() {
    let img = build(false);
    let (start, next) = {
        let image = Image::open(&img.path, Mode::ReadOnly).unwrap();
        let g = image.geometry();
        let txn = Txn::read_only(image.file().bytes(), g.blocks_count);
        let seed = image.superblock().s_checksum_seed.get();
        let h = vexfs::events::ring::header(&txn, g, seed).unwrap();
        (g.events.start, h.er_next_seq.get())
    };
    flip(&img.path, start * BLOCK_SIZE_U64 + 16, 0x01);
    let r = fsck(&img.path).unwrap();
    assert_eq!(r.problems.len(), 1, "{:#?}", lines(&r));
    assert!(r.problems[0].to_string().starts_with("event ring header: "));
    assert!(r.problems[0].message.contains("er_checksum"), "{}", r.problems[0]);
    let o = repair(&img.path, RepairMode::Preen);
    assert_eq!(
        fixed(&o),
        [format!(
            "event ring header: reinitialised as an empty ring (next sequence {next})"
        )]
    );
    assert_eq!(o.exit_code(), 1);
    assert_clean(&img.path);
    // The ring records again, numbered on from where it was.
    let fs = Fs::open(&img.path, false).unwrap();
    let (oldest, end) = fs.event_range().unwrap();
    assert!(oldest >= next && end > oldest, "{oldest}..{end}");
    fs.close().unwrap();
    drop(fs);
    assert_clean(&img.path);
    assert_data_intact(&img.path);
}

#[test]
fn a_damaged_backup_superblock_is_rewritten_from_the_primary() {
    let img = build(false);
    let b = Image::open(&img.path, Mode::ReadOnly).unwrap().geometry().blocks_count - 1;
    flip(&img.path, b * BLOCK_SIZE_U64 + 40, 0x01);
    let r = fsck(&img.path).unwrap();
    assert_eq!(r.problems.len(), 1, "{:#?}", lines(&r));
    assert_eq!(r.problems[0].kind, Kind::BackupSuperblock);
    let o = repair(&img.path, RepairMode::Yes);
    assert_eq!(
        fixed(&o),
        [format!("backup superblock (block {b}): rewritten from the primary")]
    );
    assert_eq!(o.exit_code(), 1);
    assert_clean(&img.path);
}

/// A damaged backup is reported at its byte offset in the image.
#[test]
fn a_damaged_backup_superblock_is_located_in_the_image() {
    let img = build(false);
    let b = Image::open(&img.path, Mode::ReadOnly).unwrap().geometry().blocks_count - 1;
    flip(&img.path, b * BLOCK_SIZE_U64 + 56, 0x01);
    let r = fsck(&img.path).unwrap();
    // The flip breaks the checksum, reported at s_checksum (byte 1020).
    let want = format!("at byte {} ", b * BLOCK_SIZE_U64 + 1020);
    assert!(r.problems[0].message.contains(&want), "{:#?}", lines(&r));
}

/// A damaged primary superblock: the check reads the image through the
/// backup, `-y` copies the backup over the primary (as a read-write mount
/// does; it was refused), `-p` leaves it to the administrator.
#[test]
fn a_damaged_primary_superblock_is_rewritten_from_the_backup() {
    let img = build(false);
    flip(&img.path, 40, 0x01);
    // The backup is mkfs's: its free counts are stale too.
    let r = fsck(&img.path).unwrap();
    let kinds: Vec<_> = r.problems.iter().map(|p| p.kind.clone()).collect();
    assert_eq!(
        kinds,
        [Kind::FreeBlocks, Kind::FreeInodes, Kind::PrimarySuperblock],
        "{:#?}",
        lines(&r)
    );
    assert!(repair(&img.path, RepairMode::Preen).refused);
    let o = repair(&img.path, RepairMode::Yes);
    assert!(
        fixed(&o).contains(
            &"superblock: the damaged primary was rewritten from the backup, free counts from the bitmaps".to_string()
        ),
        "{:?}",
        fixed(&o)
    );
    assert_eq!(o.exit_code(), 1);
    assert_clean(&img.path);
}

/// The i-th test vector.
fn vector(i: usize) -> Vec<f32> {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..4)
        .map(|_| {
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (x >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

/// Collection "t" of the image, as loaded.
fn collection(path: &Path) -> Collection {
    let image = Image::open(path, Mode::ReadOnly).unwrap();
    let g = image.geometry();
    let txn = Txn::read_only(image.file().bytes(), g.blocks_count);
    let cat = catalog_io::read(&txn, g).unwrap().unwrap();
    Collection::load(&txn, g, cat.records.iter().find(|r| r.name == "t").unwrap()).unwrap()
}

#[test]
fn a_broken_graph_edge_is_repaired_by_a_rebuild() {
    const N: usize = 60;
    let img = build(false);
    let fs = Fs::open(&img.path, false).unwrap();
    fs.create_collection(&CollectionParams::new("t", 4, Metric::L2, ElemType::F32))
        .unwrap();
    let inos: Vec<u32> = (0..N)
        .map(|i| {
            let f = create_file(&fs, &format!("/v{i}"));
            fs.set_vector(&Ctx::root(), f.into(), "t", &vector(i)).unwrap();
            f
        })
        .collect();
    fs.close().unwrap();
    drop(fs);
    assert_clean(&img.path);
    // A self edge in slot x's level-0 list, resealed so only the graph rule sees it.
    let c = collection(&img.path);
    let x = (0..N as u32)
        .find(|&s| s != c.header.ch_entry_slot.get() as u32)
        .unwrap();
    // Patched as one range of the file: slot x must not straddle a block.
    assert_eq!(c.record_pieces(x).len(), 1, "slot {x} straddles a block");
    let (off, stride) = (c.record_offset(x), c.geo.stride as usize);
    let (at, cap) = (c.geo.adj_offset as usize, c.geo.adj_capacity as usize);
    patch_bytes(&img.path, off, stride, |rec| {
        let len = usize::from(u16::from_le_bytes([rec[6], rec[7]]));
        let mut ids: Vec<u32> = c
            .coding
            .iter(&rec[at..at + len], c.slots(), 0)
            .map(|r| r.unwrap())
            .collect();
        ids.push(x);
        ids.sort_unstable();
        rec[at..at + cap].fill(0);
        let len = c.coding.encode(&ids, &mut rec[at..at + cap]).unwrap();
        rec[6..8].copy_from_slice(&(len as u16).to_le_bytes());
        if let Some(seed) = Image::open(&img.path, Mode::ReadOnly).unwrap().geometry().csum_seed {
            let sum = vexfs::format::checksum::csum_skipping(seed, x.into(), rec, 16);
            rec[16..20].copy_from_slice(&sum.to_le_bytes());
        }
    });
    assert_repairs(
        &img,
        RepairMode::Yes,
        &[format!("collection 't', slot {x}: level-0 list names the node itself")],
        &[format!("collection 't': graph rebuilt ({N} live vectors reinserted)")],
    );
    // Every vector is still attached and found first for itself.
    let fs = Fs::open(&img.path, true).unwrap();
    for (i, &f) in inos.iter().enumerate() {
        assert_eq!(fs.get_vector(&Ctx::root(), f.into(), "t").unwrap(), vector(i));
        let hits = fs.search(&SearchRequest::new("t", vector(i), 1)).unwrap().hits;
        assert_eq!(hits[0].ino, f, "vector {i}");
    }
}

#[test]
fn kernel_layout_bitmap_and_counter_are_repaired() {
    let img = build(true);
    let (b, _) = damage(&img.path, |txn, g| alloc::alloc_blocks(txn, g, g.first_data_block, 1));
    let n = ino_of(&img.path, "/d/a");
    damage(&img.path, |txn, g| {
        let mut f = live(txn, g, ino(g, n))?;
        f.set_links(2);
        ino_io::store(txn, g, &f)
    });
    assert_repairs(
        &img,
        RepairMode::Preen,
        &[
            format!("inode {n}: i_links_count is 2 but 1 references were found"),
            format!("block {b}: marked in use in the bitmap but not used (leaked)"),
        ],
        &[
            format!("block {b}: marked free in the bitmap"),
            format!("inode {n}: i_links_count set to 1"),
        ],
    );
}

#[test]
fn preen_refuses_what_needs_a_human_and_changes_nothing() {
    let img = build(false);
    damage(&img.path, |txn, g| alloc::alloc_blocks(txn, g, g.first_data_block, 1));
    let free = Image::open(&img.path, Mode::ReadOnly).unwrap().geometry().inodes_count - 1;
    add_entry(&img.path, ROOT as u32, b"ghost", free, 1);
    let before = std::fs::read(&img.path).unwrap();
    let o = repair(&img.path, RepairMode::Preen);
    assert!(o.refused);
    assert_eq!(o.exit_code(), 4);
    assert!(o.fixed.is_empty());
    assert_eq!(lines(&o.remaining), lines(&o.found));
    assert_eq!(o.found.problems.len(), 2);
    assert!(std::fs::read(&img.path).unwrap() == before, "-p changed the image");
    // -y does it all.
    let o = repair(&img.path, RepairMode::Yes);
    assert_eq!(o.fixed.len(), 2, "{:?}", fixed(&o));
    assert_eq!(o.exit_code(), 1);
    assert_clean(&img.path);
}

#[test]
fn what_is_not_repaired_is_left_and_reported() {
    let img = build(false);
    // A bad inode checksum: left uncorrected, and it keeps fsck from
    // freeing the "leaked" blocks it may own.
    let n = ino_of(&img.path, "/d/a");
    let g = Image::open(&img.path, Mode::ReadOnly).unwrap().geometry().clone();
    flip(&img.path, g.inode_offset(ino(&g, n)) + 2, 0x07);
    let before = lines(&fsck(&img.path).unwrap());
    let o = repair(&img.path, RepairMode::Yes);
    assert_eq!(o.exit_code(), 4, "{:?}", fixed(&o));
    assert!(lines(&o.remaining)
        .iter()
        .any(|l| l.starts_with(&format!("inode {n}: "))));
    assert!(
        o.errors.iter().any(|e| e.starts_with("leaked blocks are not freed")),
        "{:?}",
        o.errors
    );
    assert!(
        !fixed(&o).iter().any(|f| f.contains("marked free")),
        "{:?} (found {before:#?})",
        fixed(&o)
    );
}

#[test]
fn check_only_changes_nothing() {
    let img = build(false);
    damage(&img.path, |txn, g| alloc::alloc_blocks(txn, g, g.first_data_block, 1));
    let n = ino_of(&img.path, "/b");
    drop_entry(&img.path, ROOT as u32, b"b");
    let before = std::fs::read(&img.path).unwrap();
    // What `fsck.vexfs -n` runs: a read-only open, no journal replay, the
    // check. (No child process here: a fork while another test holds an
    // image's flock would hold that lock too.)
    let r = fsck(&img.path).unwrap();
    assert_eq!(r.problems.len(), 2);
    assert_eq!(
        r.problems[0].to_string(),
        format!("inode {n}: in use but not linked from any directory")
    );
    assert!(r.problems.iter().all(|p| p.kind.repairable()));
    assert!(std::fs::read(&img.path).unwrap() == before, "-n changed the image");
}
