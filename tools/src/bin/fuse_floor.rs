//! `fuse-floor [-f] [-o debug,threads=N] DIR`: mount the floor filesystem (tools/src/floor/) on
//! DIR and serve it until DIR is unmounted (`umount DIR`) or the server gets SIGTERM, SIGINT or
//! SIGHUP. The floor is an empty in-memory filesystem that does no real work, served over the same
//! fuser session a VexFS mount uses; its figures are the lower bound on what any FUSE filesystem
//! built with fuser can do on this kernel (round-trip cost, not filesystem work). bench-fs
//! --floor runs its metadata and tree workloads on it (tools/bench-fs/README.md).
//!
//! The session is set up with `mount.vexfs`'s own code (`vexfs::fuse::server`): the default
//! number of threads, the fuser configuration (a cloned /dev/fuse descriptor per thread when there
//! are several), `SessionACL::Owner`, mount options FSName and RW (and a subtype, so that
//! mountinfo shows `fuse.floor`), and fuser's worker threads started with `RUST_MIN_STACK` set to
//! VexFS's [`THREAD_STACK`]. Without `-f` it runs itself again in the background and returns once DIR
//! is mounted. `-o debug` logs every request fuser receives on stderr (to count them).

use clap::Parser;
use fuser::{MountOption, SessionACL};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{exit, Command, Stdio};
use std::time::{Duration, Instant};
use vexfs::fuse::server::{
    default_threads, parse_threads, session_config, with_worker_stack, worker_stack_env, StderrLog, STACK_ENV,
};
use vexfs::fuse::THREAD_STACK;
use vexfs_tools::benchsys::is_mounted;
use vexfs_tools::floor::Floor;

/// `-o debug`'s log.
static LOG: StderrLog = StderrLog("fuse-floor");

#[derive(Parser, Debug)]
#[command(
    name = "fuse-floor",
    version,
    about = "Mount an empty in-memory FUSE filesystem that does no work: the floor of what FUSE costs",
    after_help = "Options (-o, comma-separated): debug (log every request on stderr; implies -f), \
                  threads=N (default: available parallelism clamped to 2..=8, as mount.vexfs). \
                  Unmount with `umount DIR`; the contents are lost."
)]
struct Cli {
    /// The mount point: an existing directory.
    dir: PathBuf,
    /// Stay in the foreground (do not daemonise).
    #[arg(short = 'f')]
    foreground: bool,
    /// Options, comma-separated; may be given more than once.
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,
}

struct Opts {
    debug: bool,
    threads: usize,
}

fn parse_options(lists: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        debug: false,
        threads: default_threads(),
    };
    for opt in lists.iter().flat_map(|l| l.split(',')).filter(|s| !s.is_empty()) {
        match opt {
            "debug" => o.debug = true,
            _ if opt.starts_with("threads=") => o.threads = parse_threads(opt)?,
            _ => return Err(format!("unknown option '{opt}' (debug, threads=N)")),
        }
    }
    Ok(o)
}

/// The fuser configuration: mount.vexfs's with its default options.
fn fuse_config(o: &Opts) -> fuser::Config {
    let options = vec![
        MountOption::FSName("fuse-floor".into()),
        MountOption::CUSTOM("subtype=floor".into()),
        MountOption::RW,
    ];
    session_config(options, SessionACL::Owner, o.threads)
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("fuse-floor: {msg}");
    exit(1)
}

/// Serve DIR until it is unmounted; SIGTERM, SIGINT and SIGHUP unmount it.
fn serve(opts: &Opts, dir: &Path) -> ! {
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .unwrap_or_else(|e| fail(format!("cannot install signal handlers: {e}")));
    let mut session = fuser::Session::new(Floor::default(), dir, &fuse_config(opts))
        .unwrap_or_else(|e| fail(format!("cannot mount on {}: {e}", dir.display())));
    let mut unmounter = session.unmount_callable();
    let mnt = dir.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            let mut signals = signals;
            for _ in signals.forever() {
                if unmounter.unmount().is_err() {
                    // Busy: detach now, the session ends at the last close.
                    let _ = Command::new("umount").arg("-l").arg(&mnt).status();
                }
            }
        });
    if let Err(e) = spawned {
        drop(session);
        fail(format!("cannot start a thread: {e}"));
    }
    if let Err(e) = session.run() {
        fail(format!("{}: the FUSE session ended with an error: {e}", dir.display()));
    }
    exit(0)
}

/// Run this program again with `-f` in the background, and return once DIR is mounted.
fn daemonise(dir: &Path) -> ! {
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(format!("cannot find this program: {e}")));
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .arg("-f")
        .env(STACK_ENV, worker_stack_env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| fail(format!("cannot start the server: {e}")));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_mounted(dir) {
        if let Ok(Some(st)) = child.try_wait() {
            fail(format!("the server exited before mounting ({st})"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            fail(format!("{} was not mounted within 30 s", dir.display()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    exit(0)
}

fn main() {
    let cli = Cli::parse();
    let opts = parse_options(&cli.options).unwrap_or_else(|m| fail(m));
    let dir = match std::fs::canonicalize(&cli.dir) {
        Ok(p) if p.is_dir() => p,
        Ok(_) => fail(format!("mount point {} is not a directory", cli.dir.display())),
        Err(e) => fail(format!("mount point {}: {e}", cli.dir.display())),
    };
    if is_mounted(&dir) {
        fail(format!("{} is already a mount point", dir.display()));
    }
    if !(cli.foreground || opts.debug) {
        daemonise(&dir);
    }
    with_worker_stack("fuse-floor");
    if opts.debug {
        log::set_logger(&LOG).ok();
        log::set_max_level(log::LevelFilter::Debug);
    }
    // A server must not keep the caller's working directory busy.
    let _ = std::env::set_current_dir("/");
    serve(&opts, &dir)
}
