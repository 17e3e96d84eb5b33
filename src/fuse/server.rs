//! How a FUSE server process is set up, shared by `mount.vexfs` and the
//! `fuse-floor` benchmark filesystem (tools/src/floor/), so that the floor
//! measures exactly the session a VexFS mount runs: the worker count, the
//! fuser configuration, the worker threads' stack and the debug log.

use super::THREAD_STACK;
use fuser::{MountOption, SessionACL};

/// The variable std reads (once, at the first spawn) for the stack of
/// threads spawned without an explicit size, as fuser 0.18 spawns its
/// workers (`Session::run`: `thread::Builder::new().name(..)`, no size and
/// no setting for one).
pub const STACK_ENV: &str = "RUST_MIN_STACK";

/// Most worker threads `threads=` accepts.
pub const MAX_THREADS: usize = 64;

/// Worker threads when `threads=` is not given: one per CPU, at least 2
/// (a request waiting on the disk does not stall every other) and at most
/// 8 (more only add memory: requests are short).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8)
}

/// The worker count of a `threads=N` option (`opt` is the whole option).
pub fn parse_threads(opt: &str) -> Result<usize, String> {
    opt.strip_prefix("threads=")
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=MAX_THREADS).contains(n))
        .ok_or_else(|| format!("bad option '{opt}': threads= takes a number from 1 to {MAX_THREADS}"))
}

/// The fuser configuration of a server with `threads` workers: one cloned
/// /dev/fuse descriptor per worker when there are several, so that they
/// read requests in parallel.
pub fn session_config(mount_options: Vec<MountOption>, acl: SessionACL, threads: usize) -> fuser::Config {
    let mut cfg = fuser::Config::default();
    cfg.mount_options = mount_options;
    cfg.acl = acl;
    cfg.n_threads = Some(threads);
    cfg.clone_fd = threads > 1;
    cfg
}

/// The worker stack size for [`STACK_ENV`]: [`THREAD_STACK`] unless the
/// caller set the variable (std's documented override, e.g. to try
/// another size).
pub fn worker_stack_env() -> std::ffi::OsString {
    std::env::var_os(STACK_ENV).unwrap_or_else(|| THREAD_STACK.to_string().into())
}

/// Serve with [`STACK_ENV`] in this process's environment: a server
/// started without it re-executes itself with it, keeping its process id
/// and descriptors. Changing the environment in place would need `unsafe`
/// (`set_var`). `program` names the caller in the warning.
pub fn with_worker_stack(program: &str) {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(STACK_ENV).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let e = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(STACK_ENV, THREAD_STACK.to_string())
        .exec();
    // Still here: serve with std's default (larger) stack rather than fail.
    eprintln!("{program}: cannot re-execute with {STACK_ENV} set ({e}); using the default thread stack");
}

/// `-o debug`: log lines (fuser's, one per request, and the adapter's) on
/// stderr, prefixed with the program's name.
pub struct StderrLog(pub &'static str);

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        eprintln!("{}[{}] {}: {}", self.0, r.level(), r.target(), r.args());
    }
    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_option_is_checked() {
        assert_eq!(parse_threads("threads=3"), Ok(3));
        assert!(parse_threads("threads=0").is_err());
        assert!(parse_threads("threads=65").is_err());
        assert!(parse_threads("threads=x").is_err());
        assert!((2..=8).contains(&default_threads()));
    }
}
