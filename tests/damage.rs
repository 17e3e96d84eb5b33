//! Hostile images (issue 7): mount images carrying one class of damage
//! each. Whole-image damage must make the mount fail with the core's exact
//! message; damage to one object must give EIO for that object while the
//! rest of the image stays readable through the same mount. The image and
//! its helpers: `common::Hostile`.
//!
//! Needs /dev/fuse and root; prints SKIPPED without them, except under CI
//! (the CI variable set), where it fails.

mod common;

use common::fuse::{fuse_usable, serial, unmount};
use common::{corrupt_at as corrupt, dir_names as names, flip, hostile_pattern as pattern, make_image};
use common::{os_errno as errno, Hostile, HOSTILE_OK_LEN as OK_LEN};
use std::fs;
use std::os::unix::fs::FileExt;
use std::sync::MutexGuard;
use vexfs::error::{Expected, FsError};
use vexfs::fs::core::Fs;
use vexfs::fs::perm::Ctx;

const B: u64 = 4096;
const EIO: i32 = libc::EIO;

/// One test at a time (a daemon spawned by one test holds, until its exec,
/// the flocked descriptor of another test's image), FUSE usable, and a
/// fresh image to damage.
fn setup() -> Option<(MutexGuard<'static, ()>, Hostile)> {
    let guard = serial();
    fuse_usable().then(|| (guard, Hostile::build()))
}

fn bad_magic() -> FsError {
    FsError::corrupt("superblock", 0, "s_magic", Expected::Eq(0x5645_5846), 0x5645_5847)
}

// ------------------------------------------------------ whole-image damage

#[test]
fn bad_superblock_magic_mounts_from_the_backup_and_is_refused_in_both_copies() {
    let Some((_s, img)) = setup() else { return };
    // The primary alone: the backup in the last block takes over (§2.5).
    flip(&img.path, 0, 0x01);
    let m = img.mount();
    img.assert_rest_readable();
    unmount(m);
    let used_backup = "the primary superblock is damaged; using the backup in the last block";
    assert!(img.log().contains(used_backup), "{}", img.log());
    // Both copies (the primary written whatever the mount left there).
    img.edit(0, 4, |b| b.copy_from_slice(&0x5645_5847u32.to_le_bytes()));
    flip(&img.path, (img.g.blocks_count - 1) * B, 0x01);
    img.assert_refused(bad_magic());
    // A kernel-layout image has no backup: the primary alone is enough.
    let k = Hostile {
        path: make_image(img.tmp.path(), "k.img", 1 << 20, true),
        ..img
    };
    flip(&k.path, 0, 0x01);
    k.assert_refused(bad_magic());
}

#[test]
fn damaged_primary_superblock_mounts_from_the_backup_and_is_repaired() {
    let Some((_s, img)) = setup() else { return };
    flip(&img.path, 0, 0x01);
    let m = img.mount();
    img.assert_rest_readable();
    fs::write(img.at("new"), b"new").unwrap();
    unmount(m);
    // §2.5: after a clean unmount the primary is whole and its counters current.
    let r = common::fsck(&img.path).unwrap();
    assert!(r.is_clean(), "{:#?}", r.problems);
}

#[test]
fn bad_superblock_checksum_in_both_copies_refuses_the_mount() {
    let Some((_s, img)) = setup() else { return };
    let want = img.read_u32(1020);
    flip(&img.path, 1020, 0x01);
    flip(&img.path, (img.g.blocks_count - 1) * B + 1020, 0x01);
    img.assert_refused(FsError::corrupt(
        "superblock",
        1020,
        "s_checksum",
        Expected::Eq(want.into()),
        (want ^ 1).into(),
    ));
}

#[test]
fn unknown_incompat_feature_refuses_the_mount() {
    let Some((_s, img)) = setup() else { return };
    img.edit(0, 1024, |sb| {
        sb[93] |= 0x01;
        let c = vexfs::format::checksum::superblock_csum(&sb[..1020]);
        sb[1020..].copy_from_slice(&c.to_le_bytes());
    });
    img.assert_refused(FsError::Unsupported(
        "unknown incompatible feature bits 0x100 in s_feature_incompat; this VexFS cannot read the image".into(),
    ));
}

#[test]
fn truncated_image_refuses_the_mount() {
    let Some((_s, img)) = setup() else { return };
    let f = fs::OpenOptions::new().write(true).open(&img.path).unwrap();
    for (len, needed) in [(8 << 20, 16 << 20), (512, 1024)] {
        f.set_len(len).unwrap();
        img.assert_refused(FsError::Truncated { needed, actual: len });
    }
}

#[test]
fn bad_journal_superblock_refuses_the_mount_once_its_backup_is_bad_too() {
    let Some((_s, img)) = setup() else { return };
    let js = img.g.journal.start * B;
    // The primary alone: its backup copy in the same block takes over.
    flip(&img.path, js + 68, 0x01);
    let m = img.mount();
    img.assert_rest_readable();
    unmount(m);
    // The mount rewrote the journal superblock; now damage both copies.
    let want = img.read_u32(js + 68);
    flip(&img.path, js + 68, 0x01);
    flip(&img.path, js + 2048 + 68, 0x01);
    let e = FsError::corrupt(
        "journal superblock",
        js + 68,
        "js_checksum",
        Expected::Eq(want.into()),
        (want ^ 1).into(),
    );
    img.assert_refused(e);
}

// ------------------------------------------------- damage to one object

#[test]
fn inode_checksum_mismatch_gives_eio_for_that_file_only() {
    let Some((_s, img)) = setup() else { return };
    let off = img.inode_at("/victim");
    flip(&img.path, off + 24, 0x01);
    let m = img.mount();
    assert_eq!(errno(fs::metadata(img.at("victim"))), EIO);
    assert_eq!(errno(fs::read(img.at("victim"))), EIO);
    img.assert_rest_readable();
    unmount(m);
    img.assert_logged("inode", off + 116, "i_checksum");
}

#[test]
fn directory_block_checksum_mismatch_gives_eio_for_that_directory_only() {
    let Some((_s, img)) = setup() else { return };
    let blk = img.data_block("/d");
    flip(&img.path, blk * B + 24, 0x01);
    let m = img.mount();
    assert_eq!(errno(names(&img.at("d"))), EIO);
    assert_eq!(errno(fs::read(img.at("d/x"))), EIO);
    assert!(fs::metadata(img.at("d")).unwrap().is_dir());
    img.assert_rest_readable();
    unmount(m);
    img.assert_logged("directory block", blk * B + 4092, "det_checksum");
}

#[test]
fn extent_block_checksum_mismatch_gives_eio_for_that_file_only() {
    let Some((_s, img)) = setup() else { return };
    let leaf = img.tree_blocks("/sparse");
    assert_eq!(leaf.len(), 1, "/sparse should have a depth-1 tree");
    flip(&img.path, leaf[0] * B + 100, 0x01);
    let m = img.mount();
    assert_eq!(fs::metadata(img.at("sparse")).unwrap().len(), 15 * B);
    assert_eq!(errno(fs::read(img.at("sparse"))), EIO);
    img.assert_rest_readable();
    unmount(m);
    img.assert_logged("extent block", leaf[0] * B + 4092, "et_checksum");
}

#[test]
fn xattr_block_checksum_mismatch_gives_eio_for_that_files_xattrs_only() {
    let Some((_s, img)) = setup() else { return };
    let blk = img.xattr_block("/victim");
    flip(&img.path, blk * B + 100, 0x01);
    let m = img.mount();
    assert_eq!(errno(xattr::get(img.at("victim"), "user.note")), EIO);
    assert_eq!(errno(xattr::list(img.at("victim")).map(|l| l.count())), EIO);
    assert_eq!(fs::read(img.at("victim")).unwrap(), pattern(2, 9000));
    img.assert_rest_readable();
    unmount(m);
    img.assert_logged("xattr block", blk * B + 16, "h_checksum");
}

#[test]
fn block_bitmap_checksum_mismatch_fails_allocation_with_eio() {
    let Some((_s, img)) = setup() else { return };
    // Bit flips that make ok.txt's three blocks look free.
    let (per, first) = (img.g.bits_per_bitmap_block(), img.data_block("/ok.txt"));
    for n in first..first + 3 {
        flip(
            &img.path,
            (img.g.block_bitmap.start + n / per) * B + (n % per) / 8,
            1 << (n % 8),
        );
    }
    let m = img.mount();
    img.assert_rest_readable();
    let w = fs::write(img.at("new"), pattern(9, 3 * B as usize));
    assert!(
        fs::read(img.at("ok.txt")).unwrap() == pattern(1, OK_LEN),
        "ok.txt was overwritten by a new file"
    );
    assert_eq!(errno(w), EIO);
    unmount(m);
}

#[test]
fn summary_checksum_mismatch_fails_allocation_with_eio() {
    let Some((_s, img)) = setup() else { return };
    // Leaf 0 marked full in each summary.
    flip(&img.path, img.g.block_summary.start * B, 0x01);
    flip(&img.path, img.g.inode_summary.start * B, 0x01);
    let m = img.mount();
    img.assert_rest_readable();
    // Allocations that free nothing first (a free reseals the summary).
    let grow = fs::OpenOptions::new().append(true).open(img.at("d/y")).unwrap();
    let grown = std::io::Write::write_all(&mut &grow, &pattern(9, 3 * B as usize));
    let created = fs::File::create(img.at("new"));
    assert_eq!((errno(grown), errno(created)), (EIO, EIO));
    drop(grow);
    unmount(m);
}

#[test]
fn event_ring_header_checksum_mismatch_mounts_without_events() {
    let Some((_s, img)) = setup() else { return };
    let at = img.g.events.start * B;
    flip(&img.path, at + 16, 0x01);
    let m = img.mount();
    assert_eq!(errno(fs::File::open(img.at(".vexfs/events"))), EIO);
    img.assert_rest_readable();
    fs::write(img.at("new"), b"written without events").unwrap();
    assert_eq!(fs::read(img.at("new")).unwrap(), b"written without events");
    unmount(m);
    let want = format!(
        "vexfs: the event ring is damaged ({}",
        corrupt("event ring header", at + 68, "er_checksum")
    );
    assert!(img.log().contains(&want), "{}", img.log());
    assert!(img.log().contains("; events are not recorded"));
}

#[test]
fn vector_node_record_and_collection_header_damage_give_eio_for_that_collection() {
    let Some((_s, img)) = setup() else { return };
    // docs is the first collection: its node file is the first free inode.
    let header = img.block_of(img.g.first_ino, 0) * B;
    // Slot 0 (victim's vector) starts logical block 1.
    let slot0 = img.block_of(img.g.first_ino, 1) * B;
    let vector = |p: &str, c: &str| xattr::get(img.at(p), format!("user.vexfs.vector.{c}"));
    let img_vec: Vec<u8> = (1..=3).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let cases = [
        (slot0 + 32, "node record", slot0 + 16, "n_checksum"),
        (header + 8, "collection header", header + 84, "ch_checksum"),
    ];
    for (off, structure, at, field) in cases {
        flip(&img.path, off, 0x01);
        let m = img.mount();
        assert_eq!(errno(vector("victim", "docs")), EIO);
        assert_eq!(vector("ok.txt", "img").unwrap().unwrap(), img_vec);
        assert_eq!(fs::read(img.at("victim")).unwrap(), pattern(2, 9000));
        img.assert_rest_readable();
        unmount(m);
        // FUSE getxattr does not log its errors: ask the core for the message.
        let core = Fs::open(&img.path, true).unwrap();
        let e = core.getxattr(&Ctx::root(), img.ino("/victim").get().into(), b"user.vexfs.vector.docs");
        assert!(e.unwrap_err().to_string().starts_with(&corrupt(structure, at, field)));
        drop(core);
        flip(&img.path, off, 0x01);
    }
}

// ------------------------------------------------------------- cycles

#[test]
fn directory_entry_naming_an_ancestor_gives_eloop() {
    let Some((_s, img)) = setup() else { return };
    let a = img.ino("/a").get();
    let e = img
        .open()
        .read_dir(img.ino("/a/b/c"))
        .unwrap()
        .into_iter()
        .find(|e| e.name == b"f")
        .unwrap();
    // /a/b/c/f becomes a second name of the directory /a.
    img.edit_dir_block("/a/b/c", e.block, |b| {
        b[e.offset..e.offset + 4].copy_from_slice(&a.to_le_bytes());
        b[e.offset + 7] = 2;
    });
    let m = img.mount();
    assert_eq!(names(&img.at("a/b/c")).unwrap(), ["f"]);
    // The core answers the lookup with /a; the kernel refuses the alias.
    assert_eq!(errno(fs::metadata(img.at("a/b/c/f"))), libc::ELOOP);
    assert_eq!(names(&img.at("a")).unwrap(), ["b"]);
    img.assert_rest_readable();
    unmount(m);
}

#[test]
fn parent_entry_cycle_makes_a_rename_into_it_fail_with_eio() {
    let Some((_s, img)) = setup() else { return };
    let c = img.ino("/a/b/c").get();
    // ".." (the second entry, at byte 12) of /a/b/c names /a/b/c itself.
    img.edit_dir_block("/a/b/c", img.data_block("/a/b/c"), |b| {
        b[12..16].copy_from_slice(&c.to_le_bytes())
    });
    let m = img.mount();
    // The kernel checks ancestry on its own dentries; the core's walk up
    // ".." stops after s_inodes_count steps.
    assert_eq!(errno(fs::rename(img.at("d"), img.at("a/b/c/d"))), EIO);
    assert_eq!(names(&img.at("a/b/c")).unwrap(), ["f"]);
    assert_eq!(names(&img.at("d")).unwrap(), ["x", "y"]);
    img.assert_rest_readable();
    unmount(m);
    img.assert_logged("directory tree", 0, "..");
}

#[test]
fn extent_index_pointing_at_its_own_block_gives_eio() {
    let Some((_s, img)) = setup() else { return };
    let (ino, leaf, seed) = (img.ino("/sparse").get(), img.tree_blocks("/sparse")[0], img.seed());
    // The leaf becomes an index node (depth 1) whose one entry names itself.
    img.edit(leaf * B, B as usize, |b| {
        b[2..4].copy_from_slice(&1u16.to_le_bytes());
        b[6..8].copy_from_slice(&1u16.to_le_bytes());
        b[12..24].fill(0);
        b[16..20].copy_from_slice(&(leaf as u32).to_le_bytes());
        let c = vexfs::format::extent::tree_block_checksum(b, leaf, ino, seed);
        b[4092..].copy_from_slice(&c.to_le_bytes());
    });
    let m = img.mount();
    assert_eq!(errno(fs::read(img.at("sparse"))), EIO);
    img.assert_rest_readable();
    unmount(m);
    img.assert_logged("extent node", leaf * B + 6, "eh_depth");
}

// ------------------------------------------ out-of-range numbers, huge counts

#[test]
fn out_of_range_block_numbers_give_eio() {
    let Some((_s, img)) = setup() else { return };
    // ee_start_hi of the first extent of victim and of /d; ei_leaf_lo of /sparse's index.
    let huge = |b: &mut [u8]| b[58..60].copy_from_slice(&0xffffu16.to_le_bytes());
    img.edit_inode("/victim", huge);
    img.edit_inode("/d", huge);
    img.edit_inode("/sparse", |b| {
        b[56..60].copy_from_slice(&(img.g.blocks_count as u32).to_le_bytes())
    });
    let m = img.mount();
    assert_eq!(fs::metadata(img.at("victim")).unwrap().len(), 9000);
    assert_eq!(errno(fs::read(img.at("victim"))), EIO);
    assert_eq!(errno(fs::read(img.at("sparse"))), EIO);
    assert_eq!(errno(names(&img.at("d"))), EIO);
    assert_eq!(errno(fs::metadata(img.at("d/x"))), EIO);
    img.assert_rest_readable();
    unmount(m);
    img.assert_logged("file mapping", img.inode_at("/victim"), "block");
    img.assert_logged("file mapping", img.inode_at("/d"), "block");
    img.assert_logged("extent index", img.inode_at("/sparse") + 40, "ei_leaf_lo");
}

#[test]
fn huge_counts_give_eio() {
    let Some((_s, img)) = setup() else { return };
    let (victim, d, xblk, seed) = (
        img.inode_at("/victim"),
        img.data_block("/d"),
        img.xattr_block("/victim"),
        img.seed(),
    );
    // eh_entries, rec_len and e_value_size at their maximum, checksums resealed.
    img.edit_inode("/victim", |b| b[42..44].copy_from_slice(&u16::MAX.to_le_bytes()));
    img.edit_dir_block("/d", d, |b| b[4..6].copy_from_slice(&0xfffcu16.to_le_bytes()));
    img.edit(xblk * B, B as usize, |b| {
        b[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        let c = vexfs::format::xattr::block_checksum(b, xblk, seed);
        b[16..20].copy_from_slice(&c.to_le_bytes());
    });
    img.edit_inode("/sparse", |b| b[16..24].copy_from_slice(&u64::MAX.to_le_bytes()));
    let m = img.mount();
    assert_eq!(errno(fs::read(img.at("victim"))), EIO);
    assert_eq!(errno(names(&img.at("d"))), EIO);
    assert_eq!(errno(xattr::list(img.at("victim")).map(|l| l.count())), EIO);
    // The core reports i_size as it is; the kernel refuses a FUSE size
    // above i64::MAX (fuse_valid_size) with EIO.
    assert_eq!(errno(fs::metadata(img.at("sparse"))), EIO);
    img.assert_rest_readable();
    unmount(m);
    img.assert_logged("extent node", victim + 42, "eh_entries");
    img.assert_logged("directory entry", d * B + 4, "rec_len");
    img.assert_logged("xattr block", xblk * B + 34, "e_value_offs");
}

#[test]
fn inode_size_beyond_the_largest_file_gives_eio() {
    let Some((_s, img)) = setup() else { return };
    // 2^62 passes the kernel's check; victim holds 9000 bytes.
    img.edit_inode("/victim", |b| b[16..24].copy_from_slice(&(1u64 << 62).to_le_bytes()));
    let m = img.mount();
    let r = fs::File::open(img.at("victim")).and_then(|f| f.read_at(&mut [0u8; 4096], 1 << 50));
    assert_eq!(errno(r), EIO);
    img.assert_rest_readable();
    unmount(m);
    assert!(
        !common::fsck(&img.path).unwrap().is_clean(),
        "fsck does not see it either"
    );
}

/// A search whose hit is a file with a damaged inode still answers: the
/// hit comes without a path (logged), a subtree filter leaves it out, and
/// nothing else is lost (it once failed the whole search with EIO).
#[test]
fn a_search_hit_with_a_damaged_inode_comes_without_a_path() {
    use vexfs::vector::query::SearchRequest;
    let _serial = serial();
    let img = Hostile::build();
    let victim = img.ino("/victim").get();
    flip(&img.path, img.inode_at("/victim") + 24, 0x01);
    let fs = vexfs::fs::core::Fs::open(&img.path, true).unwrap();
    let v: Vec<f32> = (1..=8).map(|i| i as f32).collect();
    let r = fs.search(&SearchRequest::new("docs", v.clone(), 1)).unwrap();
    assert_eq!(r.hits.len(), 1);
    assert_eq!((r.hits[0].ino, r.hits[0].path.as_deref()), (victim, None));
    let mut sub = SearchRequest::new("docs", v, 1);
    sub.subtree = Some("/a".into());
    assert!(fs.search(&sub).unwrap().hits.is_empty());
}
