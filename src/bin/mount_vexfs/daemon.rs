//! The daemon: without `-f` the program runs itself again (re-executing
//! instead of forking keeps it free of `unsafe`) and waits for the child's
//! one status word; [`Status`] is how the child, or a foreground server,
//! reports the outcome. Also the worker stack size for fuser's threads,
//! which only the environment can set.

use crate::EXIT_MOUNT_FAILURE;
use std::io::Write;
use std::process::exit;
use vexfs::fuse::THREAD_STACK;

/// Where the outcome of the mount goes: stderr in the foreground; in a
/// daemon child, stderr (still the caller's) plus one status word for the
/// waiting parent.
pub(crate) struct Status {
    /// In the daemon child: stdout, a pipe the waiting parent reads.
    pub(crate) report: Option<std::io::Stdout>,
}

impl Status {
    pub(crate) fn fail(mut self, msg: impl std::fmt::Display) -> ! {
        match self.report.as_mut() {
            Some(out) => {
                let _ = writeln!(out, "err:{msg}");
                let _ = out.flush();
            }
            None => eprintln!("mount.vexfs: {msg}"),
        }
        exit(EXIT_MOUNT_FAILURE);
    }

    pub(crate) fn ready(&mut self) {
        if let Some(mut out) = self.report.take() {
            let _ = writeln!(out, "ok");
            let _ = out.flush();
        }
    }
}

/// Set in the environment of the re-executed daemon process.
pub(crate) const DAEMON_ENV: &str = "VEXFS_MOUNT_DAEMON";
/// The variable std reads (once, at the first spawn) for the stack of
/// threads spawned without an explicit size, as fuser 0.18 spawns its
/// workers (`Session::run`: `thread::Builder::new().name(..)`, no size and
/// no setting for one).
const STACK_ENV: &str = "RUST_MIN_STACK";

/// The worker stack size for `RUST_MIN_STACK`: [`THREAD_STACK`] unless
/// the caller set the variable (std's documented override, e.g. to try
/// another size).
fn worker_stack_env() -> std::ffi::OsString {
    std::env::var_os(STACK_ENV).unwrap_or_else(|| THREAD_STACK.to_string().into())
}

/// Serve with `RUST_MIN_STACK` in this process's environment: a server
/// started without it (the foreground one; the daemon gets it from
/// [`daemonise`]) re-executes itself with it, keeping its process id and
/// descriptors. Changing the environment in place would need `unsafe`
/// (`set_var`).
pub(crate) fn with_worker_stack() {
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
    eprintln!("mount.vexfs: cannot re-execute with {STACK_ENV} set ({e}); using the default thread stack");
}

/// Run this program again as the daemon (same arguments, in its own
/// process group, stdin and stderr on /dev/null) and exit once it reports
/// the mount ready (0) or failed (32) on its stdout pipe. Re-executing
/// instead of forking keeps the program free of `unsafe`.
pub(crate) fn daemonise() -> ! {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let fail = |msg: String| -> ! {
        eprintln!("mount.vexfs: {msg}");
        exit(EXIT_MOUNT_FAILURE)
    };
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(format!("cannot find this program: {e}")));
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(DAEMON_ENV, "1")
        .env(STACK_ENV, worker_stack_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| fail(format!("cannot start the mount process: {e}")));
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    match line.trim_end() {
        "ok" => exit(0),
        l if l.starts_with("err:") => fail(l["err:".len()..].to_string()),
        _ => {
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            fail(format!(
                "the mount process exited before the mount was ready ({status})"
            ))
        }
    }
}
