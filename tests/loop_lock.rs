//! One image is locked once, whichever path opens it: through a loop
//! device and through its file, or through two loop devices over one file,
//! a second read-write opener is refused (a mount through each once
//! succeeded, and one mount's changes were silently lost).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use vexfs::error::FsError;
use vexfs::image::{Image, Mode};

/// A loop device over a file, detached on drop.
struct Loop(PathBuf);

impl Loop {
    /// None (SKIPPED) where loop devices cannot be set up, except under CI.
    fn attach(file: &Path) -> Option<Loop> {
        let out = Command::new("losetup").args(["--find", "--show"]).arg(file).output();
        match out {
            Ok(o) if o.status.success() => Some(Loop(PathBuf::from(String::from_utf8(o.stdout).unwrap().trim()))),
            other => {
                assert!(std::env::var_os("CI").is_none(), "losetup failed under CI: {other:?}");
                println!("SKIPPED: cannot set up a loop device: {other:?}");
                None
            }
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

fn refused(path: &Path, mode: Mode) -> String {
    match Image::open(path, mode) {
        Err(e @ FsError::Locked(_)) => e.to_string(),
        Err(e) => panic!("{}: expected Locked, got {e}", path.display()),
        Ok(_) => panic!("{}: opened twice", path.display()),
    }
}

#[test]
fn a_loop_device_and_its_file_share_one_lock() {
    let dir = tempfile::tempdir().unwrap();
    let img = make_image(dir.path(), "img", 16 << 20, false);
    let Some(a) = Loop::attach(&img) else { return };
    let Some(b) = Loop::attach(&img) else { return };
    {
        let _held = Image::open(&a.0, Mode::ReadWrite).unwrap();
        let msg = refused(&img, Mode::ReadWrite);
        assert!(msg.contains(&img.display().to_string()), "{msg}");
        refused(&img, Mode::ReadOnly);
        let msg = refused(&b.0, Mode::ReadWrite);
        assert!(msg.contains("the file behind"), "{msg}");
    }
    {
        let _held = Image::open(&img, Mode::ReadWrite).unwrap();
        refused(&a.0, Mode::ReadWrite);
        refused(&b.0, Mode::ReadOnly);
    }
    // Readers share: the device and the file, read-only at once.
    let _r1 = Image::open(&a.0, Mode::ReadOnly).unwrap();
    let _r2 = Image::open(&img, Mode::ReadOnly).unwrap();
    refused(&b.0, Mode::ReadWrite);
}
