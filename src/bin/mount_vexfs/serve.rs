//! The server: open the image, mount it, serve requests until it is
//! unmounted, and unmount on SIGTERM, SIGINT or SIGHUP.

use crate::daemon::Status;
use crate::options::{fuse_config, Opts, WRITEBACK_MAX_DIRTY};
use crate::Cli;
use std::path::{Path, PathBuf};
use std::process::exit;
use std::sync::{Arc, Weak};
use vexfs::error::FsError;
use vexfs::fs::core::Fs;
use vexfs::fuse::{VexFuse, THREAD_STACK};

/// Open the image, mount it and serve it until it is unmounted.
pub(crate) fn serve(cli: &Cli, opts: &Opts, image: &Path, dir: &Path, mut status: Status) -> ! {
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
