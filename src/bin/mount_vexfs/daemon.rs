//! The daemon: without `-f` the program runs itself again (re-executing
//! instead of forking keeps it free of `unsafe`) and waits for the child's
//! one status word; [`Status`] is how the child, or a foreground server,
//! reports the outcome. The worker stack size for fuser's threads, which
//! only the environment can set, is passed on to the daemon here (see
//! `vexfs::fuse::server`).

use crate::EXIT_MOUNT_FAILURE;
use std::io::Write;
use std::process::exit;
use vexfs::fuse::server::{worker_stack_env, STACK_ENV};

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
