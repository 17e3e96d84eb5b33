//! Flipping any single byte of a v1 metadata structure is detected: the
//! image is refused at open or fsck reports a problem, and the error names
//! the damaged field where a checksum or a magic number catches it.

mod common;

use common::*;
use std::path::Path;
use vexfs::format::inode::InodeNo;
use vexfs::format::{BLOCK_SIZE_U64, CATALOG_INO};
use vexfs::image::{Image, Mode};

/// (structure, first byte, length, stride) of every metadata structure.
fn structures(path: &Path) -> Vec<(&'static str, u64, u64, u64)> {
    let img = Image::open(path, Mode::ReadOnly).unwrap();
    let g = img.geometry().clone();
    let b = |n: u64| n * BLOCK_SIZE_U64;
    let root = img.inode(InodeNo::ROOT).unwrap();
    let root_block = img.mappings(InodeNo::ROOT, &root).unwrap()[0].physical;
    let cat = InodeNo::new(CATALOG_INO, g.inodes_count).unwrap();
    let cat_view = img.inode(cat).unwrap();
    let cat_block = img.mappings(cat, &cat_view).unwrap()[0].physical;
    let cat_len = cat_view.base.i_size.get();
    let node = InodeNo::new(g.first_ino, g.inodes_count).unwrap();
    let node_block = img.mappings(node, &img.inode(node).unwrap()).unwrap()[0].physical;
    vec![
        ("superblock", 0, 1024, 1),
        ("block summary", b(g.block_summary.start), 4096, 13),
        ("block bitmap", b(g.block_bitmap.start), 4096, 13),
        ("inode summary", b(g.inode_summary.start), 4096, 13),
        ("inode bitmap", b(g.inode_bitmap.start), 4096, 13),
        ("root inode", g.inode_offset(InodeNo::ROOT), 256, 1),
        ("catalogue inode", g.inode_offset(cat), 256, 1),
        ("root directory block", b(root_block), 4096, 7),
        ("journal superblock", b(g.journal.start), 72, 1),
        ("event ring header", b(g.events.start), 72, 1),
        ("catalogue", b(cat_block), cat_len, 1),
        ("collection header", b(node_block), 88, 1),
    ]
}

#[test]
fn every_single_byte_flip_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "c.img", 8 << 20, false);
    let mut checked = 0;
    for (name, start, len, stride) in structures(&p) {
        for off in (start..start + len).step_by(stride as usize) {
            for mask in [0x01u8, 0x80] {
                flip(&p, off, mask);
                let verdict = fsck(&p);
                flip(&p, off, mask);
                let detected = match &verdict {
                    Err(_) => true,
                    Ok(r) => !r.is_clean(),
                };
                assert!(
                    detected,
                    "{name}: flip {mask:#x} at byte {off} (+{}) went unnoticed",
                    off - start
                );
                checked += 1;
            }
        }
    }
    assert!(fsck(&p).unwrap().is_clean());
    println!("{checked} single-byte flips, all detected");
}

fn first_problem(path: &Path) -> String {
    match fsck(path) {
        Err(e) => e,
        Ok(r) => r.problems.first().map(|p| p.to_string()).unwrap_or_default(),
    }
}

#[test]
fn errors_name_the_field_and_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "e.img", 8 << 20, false);
    let s = structures(&p);
    let at = |name: &str| s.iter().find(|x| x.0 == name).unwrap().1;
    let cases = [
        (0, "s_magic expected 0x56455846"),
        (40, "superblock at byte 1020 (0x3fc): s_checksum"),
        (at("root inode"), "i_checksum"),
        (at("root directory block") + 30, "det_checksum"),
        (at("block bitmap") + 5, "bt_checksum"),
        (at("journal superblock") + 8, "js_checksum"),
        (at("event ring header") + 16, "er_checksum"),
        (at("collection header") + 8, "ch_checksum"),
    ];
    for (off, want) in cases {
        flip(&p, off, 0x01);
        let got = first_problem(&p);
        flip(&p, off, 0x01);
        assert!(got.contains(want), "flip at {off}: expected '{want}' in '{got}'");
    }
}

#[test]
fn kernel_layout_damage_is_rejected_with_the_exact_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "k.img", 1 << 20, true);
    let cases = [
        (
            0u64,
            0x01u8,
            "superblock at byte 0 (0x0): s_magic expected 0x56455846, found 0x56455847",
        ),
        (4, 0x01, "s_block_size expected 0x1000"),
        (85, 0x01, "s_inode_size expected 0x70"),
        (
            66 * 4096 + 4,
            0x01,
            "directory entry at byte 270340 (0x42004): rec_len expected 12..=4096, found 0xd",
        ),
        (2 * 4096 + 41, 0x01, "file mapping"),
        (4096, 0x01, "block 0: in use but marked free in the bitmap"),
    ];
    for (off, mask, want) in cases {
        flip(&p, off, mask);
        let got = first_problem(&p);
        flip(&p, off, mask);
        assert!(got.contains(want), "flip at {off}: expected '{want}' in '{got}'");
    }
}
