//! Images built by mkfs check clean; damage is detected with the exact
//! error; truncated images are refused; the kernel layout round-trips.

mod common;

use common::*;
use vexfs::error::FsError;
use vexfs::format::inode::InodeNo;
use vexfs::image::{Image, Mode};

const MIB: u64 = 1 << 20;

#[test]
fn fresh_images_are_clean() {
    let dir = tempfile::tempdir().unwrap();
    for (name, size, kernel) in [
        ("v1.img", 16 * MIB, false),
        ("v1big.img", 1 << 30, false),
        ("k.img", MIB, true),
        ("kmax.img", 128 * MIB, true),
    ] {
        let p = make_image(dir.path(), name, size, kernel);
        let r = fsck(&p).unwrap();
        assert!(r.is_clean(), "{name}: {:?}", r.problems);
        assert_eq!(r.inodes_checked, if kernel { 1 } else { 2 + 2 * 2 }, "{name}");
    }
}

#[test]
fn root_directory_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    for kernel in [false, true] {
        let p = make_image(dir.path(), "r.img", 16 * MIB, kernel);
        let img = Image::open(&p, Mode::ReadOnly).unwrap();
        let names: Vec<Vec<u8>> = img
            .read_dir(InodeNo::ROOT)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec![b".".to_vec(), b"..".to_vec()]);
        assert_eq!(img.geometry().is_kernel_layout(), kernel);
        drop(img);
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn kernel_layout_is_the_kernel_modules() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "k.img", 2 * MIB, true);
    let bytes = std::fs::read(&p).unwrap();
    let le32 = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    assert_eq!(&bytes[0..4], b"FXEV", "s_magic 0x56455846 little-endian");
    assert_eq!(le32(4), 4096);
    assert_eq!(le32(8), 512);
    assert_eq!([le32(88), le32(92), le32(96)], [0, 0, 0], "no feature flags");
    // Root inode 1 at block 2 offset 0: a directory whose block is 66.
    let ino = 2 * 4096;
    assert_eq!(u16::from_le_bytes([bytes[ino], bytes[ino + 1]]) & 0o170000, 0o040000);
    assert_eq!(le32(ino + 40), 66);
    // Root directory block 66: "." then ".." with ext2 file type 2.
    let d = 66 * 4096;
    assert_eq!((le32(d), bytes[d + 6], bytes[d + 7], bytes[d + 8]), (1, 1, 2, b'.'));
    // Blocks 0..=66 are in use in the bitmap at block 1, 67 is free.
    assert_eq!(
        &bytes[4096..4096 + 8],
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(bytes[4096 + 8] & 0b111, 0b111);
    assert_eq!(bytes[4096 + 8] & 0b1000, 0);
}

/// A kernel-layout image written byte by byte from the spec (not by our
/// mkfs), with one file, reads back through the library.
#[test]
fn hand_built_kernel_image_reads() {
    let mut img = vec![0u8; 128 * 4096];
    let put32 = |b: &mut Vec<u8>, o: usize, v: u32| b[o..o + 4].copy_from_slice(&v.to_le_bytes());
    let put16 = |b: &mut Vec<u8>, o: usize, v: u16| b[o..o + 2].copy_from_slice(&v.to_le_bytes());
    put32(&mut img, 0, 0x5645_5846);
    put32(&mut img, 4, 4096);
    put32(&mut img, 8, 128);
    put32(&mut img, 12, 128 - 68);
    put32(&mut img, 16, 2304);
    put32(&mut img, 20, 2302);
    put32(&mut img, 24, 66);
    put32(&mut img, 80, 2);
    put16(&mut img, 84, 112);
    for b in 0..68 {
        img[4096 + b / 8] |= 1 << (b % 8);
    }
    for b in 128..32768 {
        img[4096 + b / 8] |= 1 << (b % 8);
    }
    let inode = |n: usize| 2 * 4096 + (n - 1) * 112;
    let (root, file) = (inode(1), inode(2));
    put16(&mut img, root, 0o040755);
    put16(&mut img, root + 2, 2);
    img[root + 16..root + 24].copy_from_slice(&4096u64.to_le_bytes());
    put32(&mut img, root + 36, 8);
    put32(&mut img, root + 40, 66);
    put16(&mut img, file, 0o100644);
    put16(&mut img, file + 2, 1);
    img[file + 16..file + 24].copy_from_slice(&5u64.to_le_bytes());
    put32(&mut img, file + 36, 8);
    put32(&mut img, file + 40, 67);
    let d = 66 * 4096;
    for (off, ino, rec, name) in [
        (0usize, 1u32, 12u16, &b"."[..]),
        (12, 1, 12, b".."),
        (24, 2, 4096 - 24, b"hello"),
    ] {
        put32(&mut img, d + off, ino);
        put16(&mut img, d + off + 4, rec);
        img[d + off + 6] = name.len() as u8;
        img[d + off + 7] = if ino == 2 { 1 } else { 2 };
        img[d + off + 8..d + off + 8 + name.len()].copy_from_slice(name);
    }
    img[67 * 4096..67 * 4096 + 5].copy_from_slice(b"world");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("hand.img");
    std::fs::write(&p, &img).unwrap();
    let r = fsck(&p).unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
    let image = Image::open(&p, Mode::ReadOnly).unwrap();
    let ino = image.resolve("/hello").unwrap();
    assert_eq!(image.read_file(ino, 0, 100).unwrap(), b"world");
}

#[test]
fn truncated_images_are_refused_at_every_block_boundary() {
    let dir = tempfile::tempdir().unwrap();
    for kernel in [false, true] {
        let p = make_image(dir.path(), "t.img", 8 * MIB, kernel);
        let blocks = 8 * MIB / 4096;
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        for k in (0..blocks).rev() {
            f.set_len(k * 4096).unwrap();
            match Image::open(&p, Mode::ReadOnly) {
                Err(FsError::Truncated { needed, actual }) => {
                    assert_eq!(actual, k * 4096);
                    assert!(needed > actual);
                }
                Err(e) => panic!("block {k}: expected Truncated, got {e}"),
                Ok(_) => panic!("image truncated to {k} blocks was accepted"),
            }
        }
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "l.img", 8 * MIB, false);
    let _rw = Image::open(&p, Mode::ReadWrite).unwrap();
    assert!(matches!(Image::open(&p, Mode::ReadWrite), Err(FsError::Locked(_))));
    assert!(matches!(Image::open(&p, Mode::ReadOnly), Err(FsError::Locked(_))));
}

#[test]
fn existing_filesystems_are_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "e.img", 8 * MIB, false);
    let mut o = options(8 * MIB, false);
    let e = vexfs::mkfs::mkfs(&p, &o, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("already contains a VexFS filesystem"), "{e}");
    // An ext4 signature (0xEF53 at byte 1080) is recognised too.
    let ext = dir.path().join("ext.img");
    let mut bytes = vec![0u8; 8 * MIB as usize];
    bytes[1080..1082].copy_from_slice(&[0x53, 0xEF]);
    std::fs::write(&ext, bytes).unwrap();
    let e = vexfs::mkfs::mkfs(&ext, &o, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("ext2/ext3/ext4"), "{e}");
    o.force = true;
    vexfs::mkfs::mkfs(&ext, &o, &mut |_, _| {}).unwrap();
    assert!(fsck(&ext).unwrap().is_clean());
}

/// `--force` without `--size` keeps the file's length (it once truncated
/// the file to 0 bytes and then failed, destroying the old image).
#[test]
fn force_without_a_size_keeps_the_files_length() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "f.img", 8 * MIB, false);
    let mut o = options(8 * MIB, false);
    o.force = true;
    o.size = None;
    vexfs::mkfs::mkfs(&p, &o, &mut |_, _| {}).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 8 * MIB);
    assert!(fsck(&p).unwrap().is_clean());
}
