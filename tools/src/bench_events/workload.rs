//! The metadata workload: each thread in its own directory creates its share of the files writing
//! 100 bytes each, stats them, renames each and unlinks each; through a mount point or against the
//! core in-process.

use super::{io_err, Phase, PAYLOAD, PHASES, R, ROOT};
use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;

/// The operations of the workload, by path or against the core.
pub(super) trait Target: Sync {
    type Dir: Sync;
    fn mkdir(&self, name: &str) -> R<Self::Dir>;
    fn create_write(&self, d: &Self::Dir, name: &str) -> R<()>;
    fn stat(&self, d: &Self::Dir, name: &str) -> R<()>;
    fn rename(&self, d: &Self::Dir, from: &str, to: &str) -> R<()>;
    fn unlink(&self, d: &Self::Dir, name: &str) -> R<()>;

    fn run(&self, phase: Phase, d: &Self::Dir, i: usize) -> R<()> {
        let (f, r) = (format!("f{i:06}"), format!("r{i:06}"));
        match phase {
            Phase::CreateWrite => self.create_write(d, &f),
            Phase::Stat => self.stat(d, &f),
            Phase::Rename => self.rename(d, &f, &r),
            Phase::Unlink => self.unlink(d, &r),
        }
    }
}

/// The workload through the mount point, with std::fs.
pub(super) struct PathTarget(pub(super) PathBuf);

impl Target for PathTarget {
    type Dir = PathBuf;

    fn mkdir(&self, name: &str) -> R<PathBuf> {
        let p = self.0.join(name);
        fs::create_dir(&p).map_err(io_err("mkdir", &p))?;
        Ok(p)
    }

    fn create_write(&self, d: &PathBuf, name: &str) -> R<()> {
        let p = d.join(name);
        File::create(&p)
            .and_then(|mut f| f.write_all(&PAYLOAD))
            .map_err(io_err("create", &p))
    }

    fn stat(&self, d: &PathBuf, name: &str) -> R<()> {
        let p = d.join(name);
        match fs::metadata(&p) {
            Ok(m) if m.len() == PAYLOAD.len() as u64 => Ok(()),
            Ok(m) => Err(format!(
                "stat {}: size {} instead of {}",
                p.display(),
                m.len(),
                PAYLOAD.len()
            )),
            Err(e) => Err(format!("stat {}: {e}", p.display())),
        }
    }

    fn rename(&self, d: &PathBuf, from: &str, to: &str) -> R<()> {
        let p = d.join(from);
        fs::rename(&p, d.join(to)).map_err(io_err("rename", &p))
    }

    fn unlink(&self, d: &PathBuf, name: &str) -> R<()> {
        let p = d.join(name);
        fs::remove_file(&p).map_err(io_err("unlink", &p))
    }
}

/// The workload against the core: the same calls the FUSE adapter makes, minus the kernel.
pub(super) struct CoreTarget {
    pub(super) fs: Arc<Fs>,
    pub(super) ctx: Ctx,
}

impl Target for CoreTarget {
    type Dir = u64;

    fn mkdir(&self, name: &str) -> R<u64> {
        let a = self.fs.create(&self.ctx, ROOT, name.as_bytes(), 0o755, NewNode::Dir);
        a.map(|a| a.ino.into()).map_err(|e| format!("mkdir {name}: {e}"))
    }

    fn create_write(&self, d: &u64, name: &str) -> R<()> {
        let a = self.fs.create(&self.ctx, *d, name.as_bytes(), 0o644, NewNode::File);
        let a = a.map_err(|e| format!("create {name}: {e}"))?;
        match self.fs.write_data(a.ino.into(), 0, &PAYLOAD) {
            Ok(n) if n == PAYLOAD.len() => Ok(()),
            Ok(n) => Err(format!("write {name}: {n} bytes written")),
            Err(e) => Err(format!("write {name}: {e}")),
        }
    }

    fn stat(&self, d: &u64, name: &str) -> R<()> {
        // stat(2) by path: a lookup, which returns the attributes.
        let a = self.fs.lookup(&self.ctx, *d, name.as_bytes());
        a.map(drop).map_err(|e| format!("stat {name}: {e}"))
    }

    fn rename(&self, d: &u64, from: &str, to: &str) -> R<()> {
        let r = self.fs.rename(&self.ctx, *d, from.as_bytes(), *d, to.as_bytes(), 0);
        r.map_err(|e| format!("rename {from}: {e}"))
    }

    fn unlink(&self, d: &u64, name: &str) -> R<()> {
        let r = self.fs.unlink(&self.ctx, *d, name.as_bytes());
        r.map_err(|e| format!("unlink {name}: {e}"))
    }
}

/// Files of thread `t` of `threads`.
fn share(files: usize, threads: usize, t: usize) -> usize {
    files / threads + usize::from(t < files % threads)
}

/// Run the workload; the seconds each phase took (all threads start a phase together).
pub(super) fn workload<T: Target>(target: &T, files: usize, threads: usize) -> R<[f64; 4]> {
    let dirs = (0..threads)
        .map(|t| target.mkdir(&format!("t{t}")))
        .collect::<R<Vec<_>>>()?;
    let barrier = Barrier::new(threads + 1);
    thread::scope(|s| {
        let workers: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(t, d)| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut err = None;
                    for phase in PHASES {
                        barrier.wait();
                        if err.is_none() {
                            err = (0..share(files, threads, t)).find_map(|i| target.run(phase, d, i).err());
                        }
                        barrier.wait();
                    }
                    err
                })
            })
            .collect();
        let mut secs = [0.0; 4];
        for s in &mut secs {
            barrier.wait();
            let t0 = Instant::now();
            barrier.wait();
            *s = t0.elapsed().as_secs_f64();
        }
        for w in workers {
            if let Some(e) = w.join().map_err(|_| "a worker thread panicked".to_string())? {
                return Err(e);
            }
        }
        Ok(secs)
    })
}
