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

use clap::Parser;
use fuser::{MountOption, SessionACL};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::exit;
use std::sync::{Arc, Weak};
use vexfs::error::FsError;
use vexfs::fs::core::Fs;
use vexfs::fuse::{VexFuse, THREAD_STACK};

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

/// What the -o options asked for.
#[derive(Debug)]
struct Opts {
    read_only: bool,
    acl: SessionACL,
    default_permissions: bool,
    debug: bool,
    threads: usize,
    fsname: Option<String>,
    /// Kernel mount flags by group (dev, suid, exec, atime, sync): the last
    /// one given wins, as with mount(8).
    flags: BTreeMap<&'static str, MountOption>,
    dirsync: bool,
    /// Record semantic events (events=off turns them off).
    events: bool,
    /// Record searches as events too.
    log_searches: bool,
    /// Ask for the kernel's writeback cache.
    writeback_cache: bool,
    /// Dirty-page limit of the mount's bdi, percent (see vexfs::fuse::bdi).
    max_dirty: Option<u8>,
}

/// The dirty-page limit a writeback-cache mount gets unless `max_dirty=`
/// says otherwise: the kernel's default vm.dirty_ratio, instead of the 1%
/// strict limit FUSE mounts start with.
const WRITEBACK_MAX_DIRTY: u8 = 20;

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            read_only: false,
            acl: SessionACL::Owner,
            default_permissions: false,
            debug: false,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8),
            fsname: None,
            flags: BTreeMap::new(),
            dirsync: false,
            events: true,
            log_searches: false,
            writeback_cache: false,
            max_dirty: None,
        }
    }
}

/// Options mount(8) or fstab may pass that mean nothing to a FUSE mount.
fn ignored(o: &str) -> bool {
    const IGNORED: &[&str] = &[
        "defaults",
        "auto",
        "noauto",
        "user",
        "users",
        "nouser",
        "owner",
        "group",
        "_netdev",
        "nofail",
        "loop",
        "relatime",
        "norelatime",
        "strictatime",
        "nostrictatime",
        "lazytime",
        "nolazytime",
        "diratime",
        "nodiratime",
        "iversion",
        "noiversion",
        "mand",
        "nomand",
        "silent",
        "loud",
    ];
    IGNORED.contains(&o)
        || o.starts_with("x-")
        || o.starts_with("comment=")
        || o.starts_with("helper=")
        || o.starts_with("subtype=")
}

fn parse_options(lists: &[String], sloppy: bool) -> Result<Opts, String> {
    let mut o = Opts::default();
    for opt in lists.iter().flat_map(|l| l.split(',')).filter(|s| !s.is_empty()) {
        let flag = |group: &'static str, m: MountOption| (group, m);
        let set = match opt {
            "ro" => {
                o.read_only = true;
                None
            }
            "rw" => {
                o.read_only = false;
                None
            }
            "allow_other" => {
                o.acl = SessionACL::All;
                None
            }
            "allow_root" => {
                o.acl = SessionACL::RootAndOwner;
                None
            }
            "default_permissions" => {
                o.default_permissions = true;
                None
            }
            "debug" => {
                o.debug = true;
                None
            }
            "dirsync" => {
                o.dirsync = true;
                None
            }
            "events=on" | "events" => {
                o.events = true;
                None
            }
            "events=off" | "noevents" => {
                o.events = false;
                None
            }
            "log_searches" => {
                o.log_searches = true;
                None
            }
            "writeback_cache" => {
                o.writeback_cache = true;
                None
            }
            "no_writeback_cache" => {
                o.writeback_cache = false;
                None
            }
            _ if opt.starts_with("max_dirty=") => {
                o.max_dirty = Some(
                    opt["max_dirty=".len()..]
                        .parse()
                        .ok()
                        .filter(|n| (1..=100).contains(n))
                        .ok_or_else(|| format!("bad option '{opt}': max_dirty= takes a percentage from 1 to 100"))?,
                );
                None
            }
            "dev" => Some(flag("dev", MountOption::Dev)),
            "nodev" => Some(flag("dev", MountOption::NoDev)),
            "suid" => Some(flag("suid", MountOption::Suid)),
            "nosuid" => Some(flag("suid", MountOption::NoSuid)),
            "exec" => Some(flag("exec", MountOption::Exec)),
            "noexec" => Some(flag("exec", MountOption::NoExec)),
            "atime" => Some(flag("atime", MountOption::Atime)),
            "noatime" => Some(flag("atime", MountOption::NoAtime)),
            "sync" => Some(flag("sync", MountOption::Sync)),
            "async" => Some(flag("sync", MountOption::Async)),
            _ if opt.starts_with("threads=") => {
                o.threads = opt["threads=".len()..]
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| format!("bad option '{opt}': threads= takes a number from 1 to 64"))?;
                None
            }
            _ if opt.starts_with("fsname=") => {
                o.fsname = Some(opt["fsname=".len()..].to_string());
                None
            }
            _ if opt.starts_with("uid=") || opt.starts_with("gid=") => {
                return Err(format!(
                    "option '{opt}' is not supported: VexFS stores the owner of every file (use chown)"
                ));
            }
            _ if ignored(opt) => None,
            _ if sloppy => None,
            _ => return Err(format!("unknown mount option '{opt}' (see mount.vexfs --help)")),
        };
        if let Some((group, m)) = set {
            o.flags.insert(group, m);
        }
    }
    Ok(o)
}

/// The fuser configuration for these options.
fn fuse_config(o: &Opts, fsname: &str) -> fuser::Config {
    let mut mount_options = vec![
        MountOption::FSName(fsname.to_string()),
        // Sent as a kernel option so that a direct mount(2) shows
        // "fuse.vexfs" too (fuser's Subtype only reaches fusermount).
        MountOption::CUSTOM("subtype=vexfs".into()),
        if o.read_only { MountOption::RO } else { MountOption::RW },
    ];
    if o.default_permissions {
        mount_options.push(MountOption::DefaultPermissions);
    }
    if o.dirsync {
        mount_options.push(MountOption::DirSync);
    }
    mount_options.extend(o.flags.values().cloned());
    let mut cfg = fuser::Config::default();
    cfg.mount_options = mount_options;
    cfg.acl = o.acl;
    cfg.n_threads = Some(o.threads);
    cfg.clone_fd = o.threads > 1;
    cfg
}

/// Where the outcome of the mount goes: stderr in the foreground; in a
/// daemon child, stderr (still the caller's) plus one status word for the
/// waiting parent.
struct Status {
    /// In the daemon child: stdout, a pipe the waiting parent reads.
    report: Option<std::io::Stdout>,
}

impl Status {
    fn fail(mut self, msg: impl std::fmt::Display) -> ! {
        match self.report.as_mut() {
            Some(out) => {
                let _ = writeln!(out, "err:{msg}");
                let _ = out.flush();
            }
            None => eprintln!("mount.vexfs: {msg}"),
        }
        exit(EXIT_MOUNT_FAILURE);
    }

    fn ready(&mut self) {
        if let Some(mut out) = self.report.take() {
            let _ = writeln!(out, "ok");
            let _ = out.flush();
        }
    }
}

/// Set in the environment of the re-executed daemon process.
const DAEMON_ENV: &str = "VEXFS_MOUNT_DAEMON";
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
fn with_worker_stack() {
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
        log::set_logger(&StderrLog).ok();
        log::set_max_level(log::LevelFilter::Debug);
    }
    if std::env::var_os(DAEMON_ENV).is_some() {
        with_worker_stack();
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
        with_worker_stack();
        serve(&cli, &opts, &image, &dir, Status { report: None });
    }
    daemonise();
}

/// Run this program again as the daemon (same arguments, in its own
/// process group, stdin and stderr on /dev/null) and exit once it reports
/// the mount ready (0) or failed (32) on its stdout pipe. Re-executing
/// instead of forking keeps the program free of `unsafe`.
fn daemonise() -> ! {
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

/// Open the image, mount it and serve it until it is unmounted.
fn serve(cli: &Cli, opts: &Opts, image: &Path, dir: &Path, mut status: Status) -> ! {
    // SIGTERM/SIGINT/SIGHUP are delivered to one thread (signal-hook's
    // safe iterator), which unmounts.
    let signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ]) {
        Ok(s) => s,
        Err(e) => status.fail(format!("cannot install signal handlers: {e}")),
    };

    let fs = match Fs::open(image, opts.read_only) {
        Ok(fs) => Arc::new(fs),
        Err(FsError::Locked(_)) => status.fail(format!("{} is already mounted or in use", image.display())),
        Err(e) => status.fail(format!("cannot open {}: {e}", image.display())),
    };
    if let Err(e) = fs.set_events(opts.events) {
        status.fail(format!("cannot set up the event ring of {}: {e}", image.display()));
    }
    fs.set_log_searches(opts.log_searches);
    let fsname = opts.fsname.clone().unwrap_or_else(|| image.display().to_string());
    let cfg = fuse_config(opts, &fsname);
    let adapter = VexFuse::new(fs.clone()).with_writeback_cache(opts.writeback_cache);
    let invalidator = adapter.invalidator();
    let mut session = match fuser::Session::new(adapter, dir, &cfg) {
        Ok(s) => s,
        Err(e) => status.fail(format!("cannot mount {} on {}: {e}", image.display(), dir.display())),
    };
    invalidator.connect(session.notifier());
    {
        use std::os::fd::AsFd;
        match session.as_fd().try_clone_to_owned() {
            Ok(fd) => invalidator.connect_device(fd),
            // Then the first FORGET of an unlinked inode frees it.
            Err(e) => eprintln!("mount.vexfs: cannot duplicate the FUSE descriptor: {e}"),
        }
    }
    let max_dirty = opts.max_dirty.or(opts.writeback_cache.then_some(WRITEBACK_MAX_DIRTY));
    if let Some(p) = max_dirty.filter(|_| !opts.read_only) {
        // Needs root; without it the kernel's limit stays (slower, not wrong).
        if let Err(e) = vexfs::fuse::bdi::set_max_dirty(dir, p) {
            eprintln!("mount.vexfs: cannot set the dirty-page limit to {p}%: {e}");
        }
    }
    if cli.verbose {
        eprintln!(
            "mount.vexfs: mounted {} on {} ({}, {} threads)",
            image.display(),
            dir.display(),
            if opts.read_only { "ro" } else { "rw" },
            opts.threads
        );
    }
    let unmounter = session.unmount_callable();
    let mnt = dir.to_path_buf();
    let weak = Arc::downgrade(&fs);
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .stack_size(THREAD_STACK)
        .spawn(move || signal_loop(signals, unmounter, mnt, weak))
        .and_then(|_| vexfs::fuse::spawn_commit_timer(Arc::downgrade(&fs)));
    if let Err(e) = spawned {
        drop(session);
        status.fail(format!("cannot start a thread: {e}"));
    }
    status.ready();
    let result = session.run();
    // The session's destroy normally closed the image already (then this
    // is a no-op); if that close failed, this retries and reports the
    // error here, where it can be seen.
    let closed = fs.close();
    drop(fs);
    if let Err(e) = result {
        eprintln!(
            "mount.vexfs: {}: the FUSE session ended with an error: {e}",
            dir.display()
        );
        exit(1);
    }
    if let Err(e) = closed {
        eprintln!(
            "mount.vexfs: {}: unmount did not complete cleanly: {e}",
            image.display()
        );
        exit(1);
    }
    exit(0);
}

/// Wait for SIGTERM/SIGINT/SIGHUP and unmount; the session loop then ends
/// and `serve` closes the image and exits. A second signal while a lazy
/// unmount waits for open files closes the image and exits at once.
fn signal_loop(
    mut signals: signal_hook::iterator::Signals,
    mut unmounter: fuser::SessionUnmounter,
    dir: PathBuf,
    fs: Weak<Fs>,
) {
    let mut asked = false;
    for sig in signals.forever() {
        if asked {
            if let Some(fs) = fs.upgrade() {
                let _ = fs.close();
            }
            exit(0);
        }
        asked = true;
        log::info!("signal {sig}: unmounting {}", dir.display());
        if unmounter.unmount().is_ok() {
            continue;
        }
        // Busy (files open): detach now, the session ends at the last close.
        lazy_unmount(&dir);
    }
}

/// `umount -l`, or the setuid helpers' lazy unmount when not root.
fn lazy_unmount(dir: &Path) {
    for (prog, args) in [
        ("umount", &["-l", "--"][..]),
        ("fusermount3", &["-u", "-z", "--"]),
        ("fusermount", &["-u", "-z", "--"]),
    ] {
        let ok = std::process::Command::new(prog)
            .args(args)
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return;
        }
    }
    eprintln!("mount.vexfs: cannot unmount {}", dir.display());
}

/// `-o debug`: fuser's and the adapter's log lines on stderr.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        eprintln!("mount.vexfs[{}] {}: {}", r.level(), r.target(), r.args());
    }
    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(s: &str) -> Result<Opts, String> {
        parse_options(&[s.to_string()], false)
    }

    #[test]
    fn generic_options_are_accepted() {
        let o = opts("defaults,noatime,nodev,nosuid,user,x-systemd.automount,_netdev,rw").unwrap();
        assert!(!o.read_only);
        assert_eq!(o.flags.len(), 3);
        assert!(opts("ro,allow_other,default_permissions").unwrap().read_only);
    }

    #[test]
    fn the_last_of_a_pair_wins() {
        let o = opts("ro,rw,nodev,dev").unwrap();
        assert!(!o.read_only);
        assert_eq!(o.flags["dev"], MountOption::Dev);
        let cfg = fuse_config(&o, "/img");
        assert!(cfg.mount_options.contains(&MountOption::RW));
        assert!(!cfg.mount_options.contains(&MountOption::RO));
    }

    #[test]
    fn unknown_and_owner_options_are_refused() {
        assert!(opts("bogus").unwrap_err().contains("unknown mount option 'bogus'"));
        assert!(parse_options(&["bogus".into()], true).is_ok());
        assert!(opts("uid=1000").unwrap_err().contains("not supported"));
        assert!(opts("threads=0").is_err());
        assert_eq!(opts("threads=3").unwrap().threads, 3);
    }

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
