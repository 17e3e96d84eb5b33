//! Making the two filesystems and checking them: ext4 on a loop device over a sparse file,
//! mkfs-vexfs / fsck-vexfs (found next to the benchmark), e2fsck; and where the work directory goes.

use super::mounts::LoopDev;
use super::{io_err, run, R};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A sparse file of `mib` MiB (as mkfs-vexfs makes its image) on a loop device, with ext4 on it.
pub fn ext4_image(image: &Path, mib: u64) -> R<LoopDev> {
    let f = File::create(image).map_err(io_err("create", image))?;
    f.set_len(mib << 20).map_err(io_err("resize", image))?;
    drop(f);
    let dev = LoopDev::attach(image)?;
    // Inode tables and journal zeroed now, so that no lazy-init thread writes during the runs.
    run(Command::new("mkfs.ext4")
        .arg("-q")
        .arg("-F")
        .arg("-E")
        .arg("lazy_itable_init=0,lazy_journal_init=0")
        .arg(&dev.dev))?;
    Ok(dev)
}

pub fn e2fsck(dev: &Path) -> R<()> {
    run(Command::new("e2fsck").arg("-fn").arg(dev))
        .map(drop)
        .map_err(|e| format!("e2fsck -fn reports problems: {e}"))
}

pub fn fsck_vexfs(fsck_bin: &Path, image: &Path) -> R<()> {
    run(Command::new(fsck_bin).arg(image))
        .map(drop)
        .map_err(|e| format!("the image is not clean: {e}"))
}

/// Where the default work directory goes: the repository's target/ (this program normally runs
/// from target/release), else ./target.
pub fn default_parent() -> PathBuf {
    let exe_target = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent()?.parent().map(Path::to_path_buf))
        .filter(|t| t.file_name().is_some_and(|n| n == std::ffi::OsStr::new("target")));
    exe_target.unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
}

/// The VexFS programs a benchmark runs.
pub struct Bins {
    pub mount: PathBuf,
    pub mkfs: PathBuf,
    pub fsck: PathBuf,
    /// fuse-floor (bench-fs --floor), looked for only by [`Bins::check_floor`].
    pub floor: PathBuf,
}

impl Bins {
    /// mount-vexfs, mkfs-vexfs and fsck-vexfs in `dir` (default: this program's directory).
    pub fn find(dir: Option<&Path>) -> R<Bins> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf))
                .ok_or("cannot find this program's directory: give --bin-dir")?,
        };
        let bins = Bins {
            mount: dir.join("mount-vexfs"),
            mkfs: dir.join("mkfs-vexfs"),
            fsck: dir.join("fsck-vexfs"),
            floor: dir.join("fuse-floor"),
        };
        for b in [&bins.mount, &bins.mkfs, &bins.fsck] {
            if !b.is_file() {
                return Err(format!(
                    "{} is missing: cargo build --release -p vexfs --bin mount-vexfs && \
                     cargo build --release -p vexfs-tools --bin mkfs-vexfs --bin fsck-vexfs (or give --bin-dir)",
                    b.display()
                ));
            }
        }
        Ok(bins)
    }

    /// Whether fuse-floor is there.
    pub fn check_floor(&self) -> R<()> {
        if self.floor.is_file() {
            return Ok(());
        }
        Err(format!(
            "{} is missing: cargo build --release -p vexfs-tools --bin fuse-floor (or give --bin-dir)",
            self.floor.display()
        ))
    }

    /// `mkfs-vexfs --quiet --force --size MIBM IMAGE`.
    pub fn mkfs_vexfs(&self, image: &Path, mib: u64) -> R<()> {
        run(Command::new(&self.mkfs)
            .arg("--quiet")
            .arg("--force")
            .arg("--size")
            .arg(format!("{mib}M"))
            .arg(image))
        .map(drop)
    }
}
