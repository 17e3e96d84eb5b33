//! The filesystem core, without FUSE: every operation, then fsck clean,
//! on both the v1 layout and the kernel layout.

mod common;

use common::*;
use vexfs::error::FsError;
use vexfs::fs::attrs::{SetAttr, TimeSet};
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::fs::rename::{RENAME_EXCHANGE, RENAME_NOREPLACE};

const ROOT: u64 = 1;

fn open(kernel: bool, size: u64) -> (tempfile::TempDir, std::path::PathBuf, Fs) {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "c.img", size, kernel);
    let fs = Fs::open(&p, false).unwrap();
    (dir, p, fs)
}

fn assert_clean(p: &std::path::Path, fs: Fs) {
    fs.sync().unwrap();
    drop(fs);
    let r = fsck(p).unwrap();
    assert!(r.is_clean(), "fsck: {:#?}", r.problems);
}

#[test]
fn files_directories_and_links() {
    for kernel in [false, true] {
        let (_d, p, fs) = open(kernel, 16 << 20);
        let c = Ctx::root();
        let f = fs.create(&c, ROOT, b"hello.txt", 0o644, NewNode::File).unwrap();
        assert_eq!(fs.write_data(f.ino.into(), 0, b"hello world").unwrap(), 11);
        assert_eq!(fs.read_data(f.ino.into(), 0, 100).unwrap(), b"hello world");
        assert_eq!(fs.read_data(f.ino.into(), 6, 3).unwrap(), b"wor");
        let d = fs.create(&c, ROOT, b"sub", 0o755, NewNode::Dir).unwrap();
        assert_eq!(fs.getattr(ROOT).unwrap().nlink, 3);
        assert!(matches!(
            fs.create(&c, ROOT, b"sub", 0o755, NewNode::Dir),
            Err(FsError::Exists)
        ));
        let l = fs.link(&c, f.ino.into(), d.ino.into(), b"again").unwrap();
        assert_eq!(l.nlink, 2);
        let s = fs
            .create(
                &c,
                d.ino.into(),
                b"ln",
                0,
                NewNode::Symlink {
                    target: b"../hello.txt",
                },
            )
            .unwrap();
        assert_eq!(fs.readlink(s.ino.into()).unwrap(), b"../hello.txt");
        let long = vec![b'x'; 300];
        let s2 = fs
            .create(&c, d.ino.into(), b"long", 0, NewNode::Symlink { target: &long })
            .unwrap();
        assert_eq!(fs.readlink(s2.ino.into()).unwrap(), long);
        let fifo = fs
            .create(&c, ROOT, b"fifo", 0o010644, NewNode::Special { rdev: 0 })
            .unwrap();
        assert_eq!(fifo.kind, vexfs::format::inode::FileType::Fifo);
        let dev = fs
            .create(&c, ROOT, b"null", 0o020666, NewNode::Special { rdev: 0x103 })
            .unwrap();
        assert_eq!(fs.getattr(dev.ino.into()).unwrap().rdev, 0x103);
        assert!(matches!(fs.rmdir(&c, ROOT, b"sub"), Err(FsError::NotEmpty)));
        fs.unlink(&c, ROOT, b"hello.txt").unwrap();
        assert_eq!(fs.getattr(f.ino.into()).unwrap().nlink, 1);
        assert!(matches!(fs.lookup(&c, ROOT, b"hello.txt"), Err(FsError::NotFound)));
        // Hash order on images that can index (stable cookies), so sorted.
        let mut names: Vec<_> = fs
            .readdir(d.ino.into(), 0, 100)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                b".".to_vec(),
                b"..".to_vec(),
                b"again".to_vec(),
                b"ln".to_vec(),
                b"long".to_vec()
            ]
        );
        assert_clean(&p, fs);
    }
}

#[test]
fn rename_variants() {
    let (_d, p, fs) = open(false, 16 << 20);
    let c = Ctx::root();
    let a = fs.create(&c, ROOT, b"a", 0o755, NewNode::Dir).unwrap();
    let b = fs.create(&c, ROOT, b"b", 0o755, NewNode::Dir).unwrap();
    let f = fs.create(&c, a.ino.into(), b"f", 0o644, NewNode::File).unwrap();
    let g = fs.create(&c, b.ino.into(), b"g", 0o644, NewNode::File).unwrap();
    fs.rename(&c, a.ino.into(), b"f", b.ino.into(), b"f2", 0).unwrap();
    assert_eq!(fs.lookup(&c, b.ino.into(), b"f2").unwrap().ino, f.ino);
    assert!(matches!(
        fs.rename(&c, b.ino.into(), b"f2", b.ino.into(), b"g", RENAME_NOREPLACE),
        Err(FsError::Exists)
    ));
    fs.rename(&c, b.ino.into(), b"f2", b.ino.into(), b"g", RENAME_EXCHANGE)
        .unwrap();
    assert_eq!(fs.lookup(&c, b.ino.into(), b"g").unwrap().ino, f.ino);
    assert_eq!(fs.lookup(&c, b.ino.into(), b"f2").unwrap().ino, g.ino);
    fs.rename(&c, b.ino.into(), b"f2", b.ino.into(), b"g", 0).unwrap();
    assert!(fs.getattr(f.ino.into()).is_err(), "replaced file is freed");
    // Directories: into another, over an empty one, never into themselves.
    fs.rename(&c, ROOT, b"a", b.ino.into(), b"a", 0).unwrap();
    assert_eq!(fs.getattr(ROOT).unwrap().nlink, 3);
    assert_eq!(fs.getattr(b.ino.into()).unwrap().nlink, 3);
    assert!(matches!(
        fs.rename(&c, ROOT, b"b", a.ino.into(), b"x", 0),
        Err(FsError::Invalid(_))
    ));
    let e = fs.create(&c, ROOT, b"empty", 0o755, NewNode::Dir).unwrap();
    fs.rename(&c, b.ino.into(), b"a", ROOT, b"empty", 0).unwrap();
    assert!(fs.getattr(e.ino.into()).is_err());
    assert_eq!(fs.lookup(&c, ROOT, b"empty").unwrap().ino, a.ino);
    assert_clean(&p, fs);
}

#[test]
fn large_sparse_and_truncated_files() {
    let (_d, p, fs) = open(false, 64 << 20);
    let c = Ctx::root();
    let f = fs.create(&c, ROOT, b"big", 0o644, NewNode::File).unwrap();
    let n = f.ino.into();
    let chunk: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    // Every other 64 KiB: many extents, so the tree needs index blocks.
    for i in 0..200u64 {
        fs.write_data(n, i * 2 * 65536, &chunk).unwrap();
    }
    let a = fs.getattr(n).unwrap();
    assert_eq!(a.size, 399 * 65536);
    assert_eq!(fs.read_data(n, 65536, 10).unwrap(), vec![0; 10], "holes read as zeros");
    assert_eq!(fs.read_data(n, 2 * 65536 + 5, 3).unwrap(), chunk[5..8]);
    assert_eq!(fs.seek_data_hole(n, 0, false).unwrap(), 65536);
    assert_eq!(fs.seek_data_hole(n, 65536, true).unwrap(), 2 * 65536);
    fs.fallocate(n, 3, 10, 8192).unwrap();
    assert_eq!(
        fs.read_data(n, 8, 4).unwrap(),
        vec![chunk[8], chunk[9], 0, 0],
        "punched range reads zero"
    );
    fs.fallocate(n, 0, 399 * 65536, 1 << 20).unwrap();
    assert_eq!(fs.getattr(n).unwrap().size, 399 * 65536 + (1 << 20));
    assert_eq!(
        fs.read_data(n, 399 * 65536, 4).unwrap(),
        vec![0; 4],
        "unwritten reads as zeros"
    );
    let shrink = SetAttr {
        size: Some(50_000),
        ..Default::default()
    };
    assert_eq!(fs.setattr(&c, n, &shrink).unwrap().size, 50_000);
    assert_eq!(fs.read_data(n, 49_990, 100).unwrap(), chunk[49_990..50_000]);
    let grow = SetAttr {
        size: Some(60_000),
        ..Default::default()
    };
    fs.setattr(&c, n, &grow).unwrap();
    assert_eq!(
        fs.read_data(n, 49_995, 10).unwrap(),
        [&chunk[49_995..50_000], &[0u8; 5][..]].concat(),
        "no stale bytes after truncate"
    );
    assert_clean(&p, fs);
}

#[test]
fn many_names_grow_the_directory() {
    let (_d, p, fs) = open(false, 16 << 20);
    let c = Ctx::root();
    for i in 0..600 {
        fs.create(
            &c,
            ROOT,
            format!("file-with-a-longish-name-{i:05}").as_bytes(),
            0o644,
            NewNode::File,
        )
        .unwrap();
    }
    assert!(fs.getattr(ROOT).unwrap().size > 4096 * 3);
    assert_eq!(fs.readdir(ROOT, 0, 10_000).unwrap().len(), 602);
    for i in (0..600).step_by(2) {
        fs.unlink(&c, ROOT, format!("file-with-a-longish-name-{i:05}").as_bytes())
            .unwrap();
    }
    assert_eq!(fs.readdir(ROOT, 0, 10_000).unwrap().len(), 302);
    assert_clean(&p, fs);
}

#[test]
fn kernel_layout_limits_are_errors_not_corruption() {
    let (_d, p, fs) = open(true, 1 << 20);
    let c = Ctx::root();
    let f = fs.create(&c, ROOT, b"f", 0o644, NewNode::File).unwrap();
    fs.write_data(f.ino.into(), 0, &vec![7u8; 12 * 4096]).unwrap();
    assert!(matches!(
        fs.write_data(f.ino.into(), 12 * 4096, b"x"),
        Err(FsError::FileTooBig)
    ));
    let mut created = 0;
    let err = loop {
        match fs.create(
            &c,
            ROOT,
            format!("name-number-{created:04}").as_bytes(),
            0o644,
            NewNode::File,
        ) {
            Ok(_) => created += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, FsError::NoSpace), "{err}");
    assert!(created > 100);
    assert_clean(&p, fs);
}

#[test]
fn full_image_gives_enospc_and_keeps_earlier_bytes() {
    let (_d, p, fs) = open(false, 8 << 20);
    let c = Ctx::root();
    let f = fs.create(&c, ROOT, b"fill", 0o644, NewNode::File).unwrap();
    let chunk = vec![0xabu8; 1 << 20];
    let mut off = 0u64;
    let err = loop {
        match fs.write_data(f.ino.into(), off, &chunk) {
            Ok(n) => off += n as u64,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, FsError::NoSpace), "{err}");
    assert_eq!(fs.getattr(f.ino.into()).unwrap().size, off);
    assert!(fs
        .read_data(f.ino.into(), 0, off as usize)
        .unwrap()
        .iter()
        .all(|&b| b == 0xab));
    assert_clean(&p, fs);
}

#[test]
fn open_unlinked_files_live_until_release() {
    let (_d, p, fs) = open(false, 16 << 20);
    let c = Ctx::root();
    let f = fs.create(&c, ROOT, b"tmp", 0o644, NewNode::File).unwrap();
    let n: u64 = f.ino.into();
    fs.opened(n).unwrap();
    fs.write_data(n, 0, b"still here").unwrap();
    fs.unlink(&c, ROOT, b"tmp").unwrap();
    assert_eq!(fs.read_data(n, 0, 100).unwrap(), b"still here");
    fs.released(n).unwrap();
    assert!(fs.getattr(n).is_err());
    let t = SetAttr {
        atime: Some(TimeSet::Now),
        ..Default::default()
    };
    assert!(fs.setattr(&c, ROOT, &t).is_ok());
    assert_clean(&p, fs);
}

#[test]
fn extended_attributes() {
    use vexfs::fs::xattr::{XATTR_CREATE, XATTR_REPLACE};
    let (_d, p, fs) = open(false, 16 << 20);
    let c = Ctx::root();
    let f = fs.create(&c, ROOT, b"x", 0o644, NewNode::File).unwrap();
    let n: u64 = f.ino.into();
    fs.setxattr(&c, n, b"user.comment", b"hello", 0).unwrap();
    fs.setxattr(&c, n, b"trusted.t", b"1", 0).unwrap();
    // An ACL is validated (an empty one is not an ACL) and kept when the
    // mode cannot say it alone (a named user, uid 1000, and a mask).
    assert!(matches!(
        fs.setxattr(&c, n, b"system.posix_acl_access", &[2, 0, 0, 0], 0),
        Err(FsError::Invalid(_))
    ));
    let acl: Vec<u8> = [
        (1u16, 6u16, u32::MAX),
        (2, 4, 1000),
        (4, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 4, u32::MAX),
    ]
    .iter()
    .fold(2u32.to_le_bytes().to_vec(), |mut v, (t, p, id)| {
        v.extend([t.to_le_bytes(), p.to_le_bytes()].concat());
        v.extend(id.to_le_bytes());
        v
    });
    fs.setxattr(&c, n, b"system.posix_acl_access", &acl, 0).unwrap();
    assert_eq!(fs.getxattr(&c, n, b"user.comment").unwrap(), b"hello");
    assert!(matches!(
        fs.setxattr(&c, n, b"user.comment", b"x", XATTR_CREATE),
        Err(FsError::Exists)
    ));
    assert!(matches!(
        fs.setxattr(&c, n, b"user.none", b"x", XATTR_REPLACE),
        Err(FsError::NoData)
    ));
    fs.setxattr(&c, n, b"user.comment", b"bye", XATTR_REPLACE).unwrap();
    let list = fs.listxattr(&c, n).unwrap();
    assert_eq!(
        list, b"user.comment\0system.posix_acl_access\0trusted.t\0",
        "sorted by index, then name"
    );
    let user = Ctx {
        uid: 1000,
        gid: 1000,
        ..Ctx::default()
    };
    assert!(matches!(fs.getxattr(&user, n, b"trusted.t"), Err(FsError::NoData)));
    assert!(matches!(
        fs.setxattr(&user, n, b"user.comment", b"no", 0),
        Err(FsError::Access)
    ));
    assert!(matches!(fs.getxattr(&c, n, b"user.missing"), Err(FsError::NoData)));
    assert!(matches!(
        fs.setxattr(&c, n, b"bogus.name", b"v", 0),
        Err(FsError::NotSupported)
    ));
    assert!(matches!(
        fs.setxattr(&c, n, b"user.big", &vec![1; 5000], 0),
        Err(FsError::NoSpace)
    ));
    fs.removexattr(&c, n, b"user.comment").unwrap();
    fs.removexattr(&c, n, b"trusted.t").unwrap();
    fs.removexattr(&c, n, b"system.posix_acl_access").unwrap();
    assert_eq!(
        fs.getattr(n).unwrap().blocks,
        0,
        "the xattr block is freed with the last attribute"
    );
    fs.setxattr(&c, n, b"user.keep", b"v", 0).unwrap();
    assert_clean(&p, fs);
}

#[test]
fn hashed_directories_scale_and_stay_consistent() {
    // 1 GiB sparse: 65536 inodes. 40,000 names of ~60 bytes fill more
    // leaves than the root indexes, so the index grows a level and splits.
    let (_d, p, fs) = open(false, 1 << 30);
    let c = Ctx::root();
    let d = fs.create(&c, ROOT, b"big", 0o755, NewNode::Dir).unwrap();
    let n: u64 = d.ino.into();
    let name = |i: u32| format!("entry-{i:06}-{}", "x".repeat(40 + (i % 20) as usize));
    let count = 40_000;
    for i in 0..count {
        fs.create(&c, n, name(i).as_bytes(), 0o644, NewNode::File)
            .unwrap_or_else(|e| panic!("create #{i}: {e}"));
    }
    assert!(
        fs.getattr(n).unwrap().size > 600 * 4096,
        "more leaves than one root block indexes"
    );
    for i in (0..count).step_by(997) {
        assert!(fs.lookup(&c, n, name(i).as_bytes()).is_ok(), "{}", name(i));
    }
    assert!(matches!(fs.lookup(&c, n, b"missing"), Err(FsError::NotFound)));
    // readdir in pages of 100 returns every name exactly once.
    let mut seen = std::collections::HashSet::new();
    let mut cookie = 0;
    loop {
        let page = fs.readdir(n, cookie, 100).unwrap();
        if page.is_empty() {
            break;
        }
        for e in &page {
            assert!(
                seen.insert(e.name.clone()),
                "duplicate {:?}",
                String::from_utf8_lossy(&e.name)
            );
        }
        cookie = page.last().unwrap().next;
    }
    assert_eq!(seen.len(), count as usize + 2);
    for i in (0..count).step_by(3) {
        fs.unlink(&c, n, name(i).as_bytes()).unwrap();
    }
    fs.rename(&c, n, name(1).as_bytes(), ROOT, b"moved", 0).unwrap();
    assert!(fs.lookup(&c, ROOT, b"moved").is_ok());
    assert!(matches!(fs.rmdir(&c, ROOT, b"big"), Err(FsError::NotEmpty)));
    assert_clean(&p, fs);
}

#[test]
fn orphans_survive_a_crash_and_are_freed_at_the_next_open() {
    let (_d, p, fs) = open(false, 16 << 20);
    let c = Ctx::root();
    let f = fs.create(&c, ROOT, b"tmp", 0o644, NewNode::File).unwrap();
    let n: u64 = f.ino.into();
    fs.opened(n).unwrap();
    fs.write_data(n, 0, &[1u8; 10_000]).unwrap();
    fs.unlink(&c, ROOT, b"tmp").unwrap();
    // "Crash": the daemon goes away with the file still open.
    fs.sync().unwrap();
    drop(fs);
    let r = fsck(&p).unwrap();
    assert!(r.is_clean(), "an orphan is not a problem: {:?}", r.problems);
    let fs = Fs::open(&p, false).unwrap();
    assert!(fs.getattr(n).is_err(), "freed at open");
    let before = fs.statfs().unwrap();
    assert_clean(&p, fs);
    assert!(before.free_files > 0);
}

#[test]
fn a_damaged_inode_gives_eio_and_the_rest_stays_usable() {
    let (_d, p, fs) = open(false, 16 << 20);
    let c = Ctx::root();
    let good = fs.create(&c, ROOT, b"good", 0o644, NewNode::File).unwrap();
    fs.write_data(good.ino.into(), 0, b"fine").unwrap();
    let bad = fs.create(&c, ROOT, b"bad", 0o644, NewNode::File).unwrap();
    let g = fs.geometry().clone();
    fs.close().unwrap();
    drop(fs);
    let off = g.inode_offset(vexfs::format::inode::InodeNo::new(bad.ino, g.inodes_count).unwrap());
    flip(&p, off + 20, 0x40);
    let fs = Fs::open(&p, false).unwrap();
    let e = fs.getattr(bad.ino.into()).unwrap_err();
    assert_eq!(e.errno(), 5, "EIO for the damaged inode: {e}");
    assert!(e.to_string().contains("i_checksum"), "{e}");
    assert_eq!(fs.read_data(good.ino.into(), 0, 10).unwrap(), b"fine");
    let n = fs.create(&c, ROOT, b"new", 0o644, NewNode::File).unwrap();
    assert_ne!(n.ino, bad.ino);
    assert!(fs.readdir(ROOT, 0, 100).unwrap().iter().any(|e| e.name == b"bad"));
}

/// The tail a shrink cut off is zeroed only when the file grows over it
/// again (so an uncommitted shrink cannot zero bytes under the old size):
/// by a write past the end, a truncate up, or fallocate.
#[test]
fn a_cut_tail_reads_as_zeros_when_the_file_grows_again() {
    let (_d, p, fs) = open(false, 16 << 20);
    let c = Ctx::root();
    let cut = |name: &[u8]| {
        let n: u64 = fs.create(&c, ROOT, name, 0o644, NewNode::File).unwrap().ino.into();
        fs.write_data(n, 0, &[0x7f; 8192]).unwrap();
        let size = SetAttr {
            size: Some(1000),
            ..Default::default()
        };
        fs.setattr(&c, n, &size).unwrap();
        n
    };
    let mut want = vec![0x7f; 1000];
    want.resize(6000, 0);
    let a = cut(b"by_write");
    fs.write_data(a, 6000, b"!").unwrap();
    assert_eq!(fs.read_data(a, 0, 6000).unwrap(), want);
    let b = cut(b"by_truncate");
    let grow = SetAttr {
        size: Some(6000),
        ..Default::default()
    };
    fs.setattr(&c, b, &grow).unwrap();
    assert_eq!(fs.read_data(b, 0, 6000).unwrap(), want);
    let f = cut(b"by_fallocate");
    fs.fallocate(f, 0, 0, 6000).unwrap();
    assert_eq!(fs.read_data(f, 0, 6000).unwrap(), want);
    assert_clean(&p, fs);
}

/// Allocation keeps a file written in order contiguous: 20 MiB written in
/// 1 MiB pieces is one or two extents, not hundreds.
#[test]
fn a_file_written_in_order_is_contiguous() {
    let (_d, p, fs) = open(false, 64 << 20);
    let c = Ctx::root();
    let f: u64 = fs.create(&c, ROOT, b"big", 0o644, NewNode::File).unwrap().ino.into();
    for i in 0..20u64 {
        fs.write_data(f, i << 20, &[i as u8; 1 << 20]).unwrap();
    }
    fs.close().unwrap();
    drop(fs);
    let img = vexfs::image::Image::open(&p, vexfs::image::Mode::ReadOnly).unwrap();
    let ino = img.resolve("/big").unwrap();
    let runs = img.mappings(ino, &img.inode(ino).unwrap()).unwrap();
    assert_eq!(runs.iter().map(|m| m.len).sum::<u64>(), 20 * 256);
    assert!(runs.len() <= 2, "{} extents: {runs:?}", runs.len());
}

/// The same once the file's map needs an extent tree block: rebuilding the
/// tree on every write must not put a fresh tree block in the path of the
/// data (which split the appended part into one extent per write).
#[test]
fn appending_to_a_file_with_an_extent_tree_stays_contiguous() {
    let (_d, p, fs) = open(false, 64 << 20);
    let c = Ctx::root();
    let f: u64 = fs.create(&c, ROOT, b"big", 0o644, NewNode::File).unwrap().ino.into();
    let other: u64 = fs.create(&c, ROOT, b"other", 0o644, NewNode::File).unwrap().ino.into();
    // The first 1 MiB written alternately with another file: one extent per
    // 4 KiB, more than the inode holds, so the map needs a tree block.
    for i in 0..256u64 {
        fs.write_data(f, i * 4096, &[1; 4096]).unwrap();
        fs.write_data(other, i * 4096, &[2; 4096]).unwrap();
    }
    for i in 1..21u64 {
        fs.write_data(f, i << 20, &[i as u8; 1 << 20]).unwrap();
    }
    assert_clean(&p, fs);
    let img = vexfs::image::Image::open(&p, vexfs::image::Mode::ReadOnly).unwrap();
    let ino = img.resolve("/big").unwrap();
    let view = img.inode(ino).unwrap();
    assert!(
        !img.extent_tree_blocks(ino, &view).unwrap().is_empty(),
        "the map needs a tree block"
    );
    let runs = img.mappings(ino, &view).unwrap();
    let appended: Vec<_> = runs.iter().filter(|m| m.logical >= 256).collect();
    assert_eq!(appended.iter().map(|m| m.len).sum::<u64>(), 20 * 256);
    assert!(appended.len() <= 2, "{} extents: {appended:?}", appended.len());
}
