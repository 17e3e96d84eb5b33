//! `perf record -g -p PID` of the mount daemon while one workload runs (bench-fs --perf DIR):
//! one perf.data file per workload, read afterwards with `perf report -i FILE`.

use crate::benchsys::{self as sys, io_err, R};
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Recording {
    child: Child,
}

impl Recording {
    /// Start recording `pid` (all its threads, call graphs) into `out`.
    pub fn start(pid: u32, out: &Path, log: &Path) -> R<Recording> {
        let log = File::create(log).map_err(io_err("create", log))?;
        let child = Command::new("perf")
            .args(["record", "-g", "-q", "-p", &pid.to_string(), "-o"])
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run perf (apt-get install linux-perf): {e}"))?;
        // perf needs a moment to attach before the workload starts.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok(Recording { child })
    }

    /// SIGINT perf (it then writes the file) and wait for it.
    pub fn stop(mut self) -> R<()> {
        sys::run(Command::new("kill").arg("-INT").arg(self.child.id().to_string()))?;
        self.child.wait().map_err(|e| format!("waiting for perf: {e}"))?;
        Ok(())
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
