//! The mount daemon's memory while a workload runs: a thread reads /proc/PID/status every
//! [`PERIOD`] and keeps the peaks of RssAnon (heap and stacks: what the daemon itself holds) and
//! VmRSS (which also counts the mapped image's resident pages, page cache the kernel can drop).

use serde::Serialize;
use std::fs;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

const PERIOD: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct RssPeak {
    pub rss_anon_kib: u64,
    pub vm_rss_kib: u64,
    pub samples: u64,
}

/// A running sampler; [`Sampler::stop`] returns the peaks.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<RssPeak>,
}

fn field_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

impl Sampler {
    /// Sample the process whose pid `pid` holds (it changes when the filesystem is remounted).
    pub fn start(pid: Arc<AtomicU32>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let mut peak = RssPeak::default();
            loop {
                let path = format!("/proc/{}/status", pid.load(Ordering::Relaxed));
                if let Ok(s) = fs::read_to_string(&path) {
                    peak.rss_anon_kib = peak.rss_anon_kib.max(field_kib(&s, "RssAnon:").unwrap_or(0));
                    peak.vm_rss_kib = peak.vm_rss_kib.max(field_kib(&s, "VmRSS:").unwrap_or(0));
                    peak.samples += 1;
                }
                if flag.load(Ordering::Relaxed) {
                    return peak;
                }
                thread::sleep(PERIOD);
            }
        });
        Sampler { stop, handle }
    }

    pub fn stop(self) -> RssPeak {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields() {
        let s = "Name:\tx\nVmRSS:\t  123456 kB\nRssAnon:\t    2048 kB\n";
        assert_eq!(field_kib(s, "RssAnon:"), Some(2048));
        assert_eq!(field_kib(s, "VmRSS:"), Some(123456));
        assert_eq!(field_kib(s, "RssFile:"), None);
    }
}
