//! `vexctl`: collections, import, search and statistics, against an
//! unmounted image (through the same core as the mount) or a mount point
//! (through its control files and extended attributes).

pub mod events;
pub mod import;
pub mod manage;
pub mod search;

use std::path::{Path, PathBuf};
use vexfs::fs::core::Fs;

/// What a command works on.
#[derive(Debug, Clone)]
pub enum Target {
    /// An image file or block device (not mounted).
    Image(PathBuf),
    /// The mount point of a VexFS mount.
    Mount(PathBuf),
}

/// An error for the user: one line, and the exit status to use.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub status: u8,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            status: 1,
        }
    }
}

impl From<vexfs::FsError> for Failure {
    fn from(e: vexfs::FsError) -> Self {
        Failure::new(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::new(e.to_string())
    }
}

pub type Outcome<T> = Result<T, Failure>;

impl Target {
    /// A directory is a mount point (it must have `/.vexfs`); anything
    /// else is an image.
    pub fn parse(p: &Path) -> Outcome<Target> {
        if p.is_dir() {
            if !p.join(".vexfs").is_dir() {
                return Err(Failure::new(format!(
                    "{}: a directory, but not a VexFS mount point (no .vexfs control directory)",
                    p.display()
                )));
            }
            return Ok(Target::Mount(p.to_path_buf()));
        }
        Ok(Target::Image(p.to_path_buf()))
    }

    /// Open the image (read-only takes a shared lock; a mounted image is
    /// locked by its daemon: use the mount point instead).
    pub fn open(&self, read_only: bool) -> Outcome<Fs> {
        match self {
            Target::Image(p) => Fs::open(p, read_only).map_err(|e| {
                let hint = match e {
                    vexfs::FsError::Locked(_) => " (is it mounted? then give the mount point instead)",
                    _ => "",
                };
                Failure::new(format!("{}: {e}{hint}", p.display()))
            }),
            Target::Mount(p) => Err(Failure::new(format!("{}: this needs an unmounted image", p.display()))),
        }
    }
}

/// Parse "0.1,0.2 0.3" (commas and/or spaces, optional brackets).
pub fn parse_vector(s: &str) -> Outcome<Vec<f32>> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .enumerate()
        .map(|(i, t)| {
            t.parse::<f32>()
                .map_err(|_| Failure::new(format!("vector element {i}: {t:?} is not a number")))
        })
        .collect()
}
