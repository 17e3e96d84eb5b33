//! Requests about an inode freed meanwhile: with the writeback cache the
//! kernel writes back the times of a file unlinked after its last close
//! (SETATTR on an inode the core had already freed and zeroed). That is
//! ENOENT, not damage: answered as corruption it was logged as such and
//! failed syncfs with EIO (bench-fs -o writeback_cache, metadata phase).

mod common;

use common::*;
use vexfs::error::FsError;
use vexfs::fs::attrs::{SetAttr, TimeSet};
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;

#[test]
fn a_freed_inode_is_not_found_rather_than_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "f.img", 16 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    let c = Ctx::root();
    let f: u64 = fs.create(&c, 1, b"f", 0o644, NewNode::File).unwrap().ino.into();
    fs.write_data(f, 0, b"data").unwrap();
    fs.unlink(&c, 1, b"f").unwrap();
    let times = SetAttr {
        mtime: Some(TimeSet::Now),
        ..SetAttr::default()
    };
    assert!(matches!(fs.setattr(&c, f, &times), Err(FsError::NotFound)));
    assert!(matches!(fs.getattr(f), Err(FsError::NotFound)));
    fs.sync().unwrap();
    drop(fs);
    assert!(fsck(&p).unwrap().is_clean());
}
