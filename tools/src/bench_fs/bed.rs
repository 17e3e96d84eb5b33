//! The test bed: VexFS and ext4 mounted side by side (and the floor filesystem with bench-fs
//! --floor), each workload run on each, and what "cold" means for each.
//!
//! Cold: `echo 3 > /proc/sys/vm/drop_caches` alone would leave VexFS warm, because the kernel
//! does not drop page-cache pages that a process has mapped, and the mount daemon maps the whole
//! image. So a cold start unmounts and mounts the filesystem again (both of them, the same way),
//! then syncs and drops the caches: as after a reboot. The daemon's pid changes with every VexFS
//! remount; the memory sampler and the perf recording follow it.
//!
//! The floor keeps its files only in memory and cannot be remounted: its cold start is syncfs and
//! drop_caches alone. That still evicts the kernel's dentries, inodes and pages of the mount
//! (FUSE sends FORGET for each inode evicted), so the next access asks the server again, as on a
//! remounted VexFS; what the floor then lacks is only a filesystem's own work of reading.

use super::report::Side;
use super::rss::Sampler;
use super::{perf, Figures, Target};
use crate::benchsys::{self as sys, Bins, Ext4Mount, FloorMount, LoopDev, VexMount, R};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub struct Bed {
    pub bins: Bins,
    pub vex_image: PathBuf,
    pub vex_dir: PathBuf,
    pub vex_options: String,
    pub vex_log: PathBuf,
    pub loopdev: LoopDev,
    pub ext4_dir: PathBuf,
    pub ext4_options: String,
    /// Where perf recordings go (bench-fs --perf).
    pub perf: Option<PathBuf>,
    /// The floor filesystem's mount point and its server's log (bench-fs --floor).
    pub floor_at: Option<(PathBuf, PathBuf)>,
    vex: Option<VexMount>,
    ext4: Option<Ext4Mount>,
    floor: Option<FloorMount>,
    daemon: Arc<AtomicU32>,
    recording: Option<perf::Recording>,
    /// Name of the running workload and how many perf files it has written so far.
    current: (String, usize),
}

/// What a workload calls to start cold: remount its filesystem and drop the caches.
pub type Cold<'a> = &'a mut dyn FnMut() -> R<()>;

impl Bed {
    /// Both filesystems, made already, mounted (and the floor, if asked for).
    pub fn mount(mut self) -> R<Bed> {
        self.mount_vexfs()?;
        self.mount_ext4()?;
        if let Some((dir, log)) = &self.floor_at {
            self.floor = Some(FloorMount::start(&self.bins.floor, dir, log)?);
        }
        Ok(self)
    }

    /// Builder: also mount the floor filesystem on `dir` (its server's stderr into `log`).
    pub fn with_floor(mut self, dir: PathBuf, log: PathBuf) -> Bed {
        self.floor_at = Some((dir, log));
        self
    }

    /// Builder: set everything, mount nothing yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        bins: Bins,
        vex_image: PathBuf,
        vex_dir: PathBuf,
        vex_options: String,
        vex_log: PathBuf,
        loopdev: LoopDev,
        ext4_dir: PathBuf,
        ext4_options: String,
        perf: Option<PathBuf>,
    ) -> Bed {
        Bed {
            bins,
            vex_image,
            vex_dir,
            vex_options,
            vex_log,
            loopdev,
            ext4_dir,
            ext4_options,
            perf,
            floor_at: None,
            vex: None,
            ext4: None,
            floor: None,
            daemon: Arc::new(AtomicU32::new(0)),
            recording: None,
            current: (String::new(), 0),
        }
    }

    fn mount_vexfs(&mut self) -> R<()> {
        let m = VexMount::foreground(
            &self.bins.mount,
            &self.vex_image,
            &self.vex_dir,
            &self.vex_options,
            &self.vex_log,
        )?;
        self.daemon
            .store(m.pid().ok_or("the mount daemon has no pid")?, Ordering::Relaxed);
        self.vex = Some(m);
        Ok(())
    }

    fn mount_ext4(&mut self) -> R<()> {
        let (m, _) = Ext4Mount::mount(&self.loopdev.dev, &self.ext4_dir, &self.ext4_options)?;
        self.ext4 = Some(m);
        Ok(())
    }

    /// Unmount `fs` (VexFS: the daemon checkpoints and exits) and mount it again, then drop the
    /// caches. The floor is not remounted (it would come back empty): syncfs, then the caches.
    pub fn cold(&mut self, fs: Target) -> R<()> {
        match fs {
            Target::Vexfs => {
                let profiling = self.recording.is_some();
                self.stop_perf()?;
                if let Some(m) = self.vex.take() {
                    m.finish()?;
                }
                self.mount_vexfs()?;
                if profiling {
                    self.start_perf()?;
                }
            }
            Target::Ext4 => {
                if let Some(m) = self.ext4.take() {
                    m.finish()?;
                }
                self.mount_ext4()?;
            }
            Target::Floor => sys::syncfs(self.root(Target::Floor).ok_or("the floor is not mounted")?)?,
        }
        sys::drop_all_caches()
    }

    fn start_perf(&mut self) -> R<()> {
        let Some(dir) = &self.perf else { return Ok(()) };
        let (name, k) = &mut self.current;
        let stem = if *k == 0 { name.clone() } else { format!("{name}.{k}") };
        *k += 1;
        self.recording = Some(perf::Recording::start(
            self.daemon.load(Ordering::Relaxed),
            &dir.join(format!("{stem}.perf.data")),
            &dir.join(format!("{stem}.perf.log")),
        )?);
        Ok(())
    }

    fn stop_perf(&mut self) -> R<()> {
        match self.recording.take() {
            Some(r) => r.stop(),
            None => Ok(()),
        }
    }

    /// Where `fs` is mounted (`None`: the floor, when it is not).
    fn root(&self, fs: Target) -> Option<&Path> {
        match fs {
            Target::Vexfs => Some(&self.vex_dir),
            Target::Ext4 => Some(&self.ext4_dir),
            Target::Floor => self.floor.as_ref().map(|m| m.dir.as_path()),
        }
    }

    /// Run `work` on both filesystems (VexFS first when `vexfs_first`), and on the floor between
    /// them when `floor` and the floor is mounted; starting cold when `cold`. While it runs on
    /// VexFS the daemon's memory is sampled and, if asked, profiled. `work` gets the mount point
    /// and a [`Cold`] to call before a cold phase of its own.
    pub fn both(
        &mut self,
        name: &str,
        vexfs_first: bool,
        cold: bool,
        floor: bool,
        sides: &mut Vec<Side>,
        mut work: impl FnMut(&Path, Cold) -> R<Vec<Figures>>,
    ) -> R<()> {
        let mut order = if vexfs_first {
            vec![Target::Vexfs, Target::Floor, Target::Ext4]
        } else {
            vec![Target::Ext4, Target::Floor, Target::Vexfs]
        };
        if !floor || self.floor.is_none() {
            order.retain(|&t| t != Target::Floor);
        }
        for fs in order {
            sys::check()?;
            if cold {
                self.cold(fs)?;
            }
            eprintln!(
                "{}: {name} on {} (load average {})",
                sys::prog(),
                fs.label(),
                sys::loadavg()
            );
            let watch = fs == Target::Vexfs;
            self.current = (name.to_string(), 0);
            if watch {
                self.start_perf()?;
            }
            let sampler = watch.then(|| Sampler::start(Arc::clone(&self.daemon)));
            let root = self.root(fs).ok_or("the floor is not mounted")?.to_path_buf();
            let t0 = Instant::now();
            let figures = work(&root, &mut || self.cold(fs));
            let seconds = t0.elapsed().as_secs_f64();
            let rss_peak = sampler.map(Sampler::stop);
            self.stop_perf()?;
            let figures = figures.map_err(|e| format!("{name} on {}: {e}", fs.label()))?;
            for f in &figures {
                let m = &f.metrics[0];
                eprintln!(
                    "{}:   {} {}: {:.1} {}",
                    sys::prog(),
                    fs.label(),
                    f.name,
                    m.value,
                    m.unit
                );
            }
            sides.push(Side {
                workload: name.into(),
                fs,
                order: sides.len(),
                seconds,
                figures,
                rss_peak,
            });
        }
        Ok(())
    }

    /// Unmount everything and check both filesystems (fsck-vexfs, e2fsck -fn); the floor last,
    /// so that a failure of its unmount does not skip the checks (its error is reported after).
    pub fn finish(mut self) -> R<()> {
        self.stop_perf()?;
        if let Some(m) = self.vex.take() {
            m.finish()?;
        }
        sys::fsck_vexfs(&self.bins.fsck, &self.vex_image)?;
        if let Some(m) = self.ext4.take() {
            m.finish()?;
        }
        sys::e2fsck(&self.loopdev.dev)?;
        self.floor.take().map_or(Ok(()), FloorMount::finish)
    }
}
