//! `mount.vexfs IMAGE DIR [-sfnv] [-o OPTIONS]`: mount a VexFS image over
//! FUSE. Installed as /sbin/mount.vexfs (cargo calls the binary
//! `mount-vexfs`) so that `mount -t vexfs IMAGE DIR` and fstab lines work:
//! mount(8) runs `mount.vexfs IMAGE DIR [-sfnv] [-o options]`.
//!
//! Without `-f` the program runs itself again as a daemon before opening
//! the image; the first process waits until the daemon has mounted (or
//! failed) and then exits 0 (or 32), so that `mount` returns once the
//! filesystem is usable. The child
//! serves the mount until it is unmounted (`umount DIR`) or gets SIGTERM,
//! SIGINT or SIGHUP, which unmount it; it syncs the image before exiting.

mod daemon;
mod options;
mod serve;

use clap::Parser;
use daemon::{daemonise, Status, DAEMON_ENV};
use options::parse_options;
use serve::serve;
use std::path::{Path, PathBuf};
use std::process::exit;
use vexfs::fuse::server::{with_worker_stack, StderrLog};

/// `-o debug`'s log.
static LOG: StderrLog = StderrLog("mount.vexfs");

/// Exit status of a failed mount, as mount(8) documents it.
const EXIT_MOUNT_FAILURE: i32 = 32;
/// Exit status of a bad command line or option.
const EXIT_USAGE: i32 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "mount.vexfs",
    version,
    about = "Mount a VexFS image over FUSE",
    after_help = "Options (-o, comma-separated): ro, rw, allow_other, allow_root, default_permissions, \
                  debug, threads=N, fsname=NAME, events=on|off, log_searches, writeback_cache, max_dirty=PERCENT, dev, nodev, suid, nosuid, exec, noexec, atime, noatime, \
                  sync, async, dirsync; ignored: defaults, auto, noauto, user, users, nouser, owner, group, \
                  _netdev, nofail, loop, (no)relatime, (no)strictatime, (no)lazytime, (no)diratime, \
                  (no)iversion, (no)mand, silent, loud, x-*, comment=*, helper=*, subtype=*. \
                  See docs/mount.md and docs/configuration.md."
)]
struct Cli {
    /// The image file (or block device) made by mkfs.vexfs.
    image: PathBuf,
    /// The mount point: an existing directory.
    dir: PathBuf,
    /// Mount options, comma-separated; may be given more than once.
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,
    /// Stay in the foreground (do not daemonise).
    #[arg(short = 'f')]
    foreground: bool,
    /// Sloppy: ignore unknown mount options instead of failing.
    #[arg(short = 's')]
    sloppy: bool,
    /// Do not write /etc/mtab (accepted for mount(8); there is nothing to write).
    #[arg(short = 'n')]
    no_mtab: bool,
    /// Say what is being done.
    #[arg(short = 'v')]
    verbose: bool,
    /// Filesystem type as mount(8) passes it; must be vexfs when given.
    #[arg(short = 't', value_name = "TYPE")]
    fstype: Option<String>,
    /// mount(8)'s target namespace: not supported.
    #[arg(short = 'N', value_name = "NAMESPACE")]
    namespace: Option<String>,
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            exit(code);
        }
    };
    let usage = |msg: String| -> ! {
        eprintln!("mount.vexfs: {msg}");
        exit(EXIT_USAGE);
    };
    if cli.namespace.is_some() {
        usage("-N (mount in another namespace) is not supported".into());
    }
    if let Some(t) = cli.fstype.as_deref() {
        if t != "vexfs" && t != "fuse.vexfs" {
            usage(format!("-t {t}: this helper mounts only vexfs"));
        }
    }
    let opts = parse_options(&cli.options, cli.sloppy).unwrap_or_else(|m| usage(m));
    let _ = cli.no_mtab;
    let early = Status { report: None };
    if !Path::new("/dev/fuse").exists() {
        early.fail("/dev/fuse is missing: load the fuse module (modprobe fuse) or give the container the device");
    }
    let image = match std::fs::canonicalize(&cli.image) {
        Ok(p) => p,
        Err(e) => early.fail(format!("{}: {e}", cli.image.display())),
    };
    let dir = match std::fs::canonicalize(&cli.dir) {
        Ok(p) if p.is_dir() => p,
        Ok(_) => early.fail(format!("mount point {} is not a directory", cli.dir.display())),
        Err(e) => early.fail(format!("mount point {}: {e}", cli.dir.display())),
    };
    if opts.debug {
        log::set_logger(&LOG).ok();
        log::set_max_level(log::LevelFilter::Debug);
    }
    if std::env::var_os(DAEMON_ENV).is_some() {
        with_worker_stack("mount.vexfs");
        // A daemon must not keep the caller's working directory busy.
        let _ = std::env::set_current_dir("/");
        serve(
            &cli,
            &opts,
            &image,
            &dir,
            Status {
                report: Some(std::io::stdout()),
            },
        );
    }
    if cli.foreground || opts.debug {
        with_worker_stack("mount.vexfs");
        serve(&cli, &opts, &image, &dir, Status { report: None });
    }
    daemonise();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_8_command_line_parses() {
        let c = Cli::try_parse_from([
            "mount.vexfs",
            "/img",
            "/mnt",
            "-sfnv",
            "-o",
            "rw,noatime",
            "-t",
            "vexfs",
        ])
        .unwrap();
        assert!(c.sloppy && c.foreground && c.no_mtab && c.verbose);
        assert_eq!(c.options, vec!["rw,noatime"]);
        let c = Cli::try_parse_from(["mount.vexfs", "-o", "ro", "/img", "/mnt"]).unwrap();
        assert_eq!(c.image, PathBuf::from("/img"));
    }
}
