//! `vexfs-inspect`: look inside a VexFS image without changing it.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vexfs_tools::inspect::{self, blocks, files, inode, superblock, verify, CmdResult};

const EXIT_CODES: &str = "\
Exit status:
  0  success (verify: every checksum matched)
  1  the image has problems: verify found bad structures, or a command met
     corrupt metadata (details on stderr as 'vexfs-inspect: ...' lines)
  2  usage error, the image cannot be opened (missing, locked by a
     read-write user, not VexFS), or the named path or inode does not exist";

/// Look inside a VexFS image (read-only).
///
/// Every command opens the image read-only with a shared lock, so it works
/// on an image nobody holds exclusively (not mounted read-write, not being
/// repaired). Nothing is ever written.
#[derive(Debug, Parser)]
#[command(name = "vexfs-inspect", version, after_help = EXIT_CODES)]
struct Cli {
    /// Print one machine-readable JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the superblock and the region table.
    ///
    /// Every meaningful superblock field (magic, label, UUID, block and
    /// inode counts, state, times, features by name and as raw words), the
    /// region table and the first data block. On feature (v1) images also
    /// the journal superblock, the event ring header and, with the vectors
    /// feature, the collection catalogue.
    #[command(visible_alias = "superblock")]
    Super {
        /// Image file or block device.
        image: PathBuf,
    },

    /// List files recursively, like `tree` combined with `ls -l`.
    ///
    /// Columns: type letter and octal mode, links, uid, gid, size, inode
    /// number, name (symlinks show `-> target`). Entries are sorted by name.
    /// With --json: a flat list of {path, inode, type, mode, links, uid,
    /// gid, size} objects (plus `target` for symlinks).
    Tree {
        /// Image file or block device.
        image: PathBuf,
        /// Directory (or file) to start from.
        #[arg(default_value = "/")]
        path: String,
        /// Do not descend more than N directory levels below PATH.
        #[arg(short = 'L', long, value_name = "N", default_value_t = files::MAX_DEPTH)]
        max_depth: usize,
    },

    /// Show every field of one inode, its block mappings and extent tree.
    ///
    /// Base fields, large-inode fields (times with nanoseconds, creation
    /// time, checksum, vector slot and collection), flags, the xattr block
    /// and its attribute names, the mappings (logical, physical, length,
    /// unwritten) and the extent tree blocks.
    Inode {
        /// Image file or block device.
        image: PathBuf,
        /// An inode number (e.g. 12) or a path from the root (e.g. /a/b).
        #[arg(value_name = "INO_OR_PATH")]
        target: String,
    },

    /// Write a regular file's bytes to stdout.
    ///
    /// Holes and unwritten extents read as zeros; the file is read 1 MiB at
    /// a time. With --json: {"path", "size", "hex"} for files of at most
    /// 64 KiB (larger files are refused).
    Cat {
        /// Image file or block device.
        image: PathBuf,
        /// Path of the file from the root.
        path: String,
    },

    /// Show block and inode usage counted from the bitmaps.
    ///
    /// The region table, then used and free blocks (all, and data blocks
    /// from the first data block on) and inodes counted from the bitmaps,
    /// next to the superblock's free counts.
    Blocks {
        /// Image file or block device.
        image: PathBuf,
    },

    /// Check every metadata checksum.
    ///
    /// Superblock, bitmap and summary blocks, in-use inodes, directory leaf
    /// blocks, extent tree blocks, xattr blocks, the journal superblock, the
    /// event ring header, the collection catalogue and collection headers.
    /// Prints one line per bad structure (offset, field, expected and found
    /// value) and a summary; exits 1 if anything is bad. Kernel-layout
    /// images have no checksums: nothing to verify, exit 0.
    Verify {
        /// Image file or block device.
        image: PathBuf,
    },
}

fn with_image(path: &Path, f: impl FnOnce(&vexfs::image::Image) -> CmdResult) -> CmdResult {
    let img = inspect::open(path)?;
    f(&img)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match &cli.command {
        Command::Super { image } => with_image(image, |img| superblock::run(img, json, &mut out)),
        Command::Tree { image, path, max_depth } => {
            with_image(image, |img| files::tree(img, path, *max_depth, json, &mut out))
        }
        Command::Inode { image, target } => with_image(image, |img| inode::run(img, target, json, &mut out)),
        Command::Cat { image, path } => with_image(image, |img| files::cat(img, path, json, &mut out)),
        Command::Blocks { image } => with_image(image, |img| blocks::run(img, json, &mut out)),
        Command::Verify { image } => verify::run(image, json, &mut out),
    };
    let result = result.and_then(|s| out.flush().map(|_| s).map_err(Into::into));
    ExitCode::from(inspect::exit_code(&result))
}
