//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod fuse;

use std::path::{Path, PathBuf};
use vexfs::check::{self, CheckOptions, Report};
use vexfs::image::{Image, Mode};
use vexfs::mkfs::{self, MkfsOptions};

/// Fixed identity so images (and inspect output) are reproducible.
pub const UUID: [u8; 16] = [0x5e, 0xed, 1, 2, 3, 4, 0x45, 6, 0x87, 8, 9, 10, 11, 12, 13, 14];
pub const TIME: i64 = 1_700_000_000;

pub fn options(size: u64, kernel: bool) -> MkfsOptions {
    MkfsOptions {
        size: Some(size),
        label: "test".into(),
        kernel_layout: kernel,
        collections: if kernel {
            vec![]
        } else {
            vec!["docs:8:cosine".parse().unwrap(), "img:3:l2:int8".parse().unwrap()]
        },
        uuid: Some(UUID),
        time: Some(TIME),
        root_owner: Some((0, 0)),
        ..Default::default()
    }
}

/// Make an image in `dir`; returns its path.
pub fn make_image(dir: &Path, name: &str, size: u64, kernel: bool) -> PathBuf {
    let path = dir.join(name);
    mkfs::mkfs(&path, &options(size, kernel), &mut |_, _| {}).expect("mkfs");
    path
}

/// Open read-only and run fsck; Err(message) when the image does not open.
pub fn fsck(path: &Path) -> Result<Report, String> {
    let img = Image::open(path, Mode::ReadOnly).map_err(|e| e.to_string())?;
    Ok(check::check(&img, CheckOptions::default()))
}

/// Flip `mask` into the byte at `offset` of the file.
pub fn flip(path: &Path, offset: u64, mask: u8) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= mask;
    f.write_all_at(&b, offset).unwrap();
}
