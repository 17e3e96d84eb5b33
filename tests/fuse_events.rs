//! The event stream through a real mount: `/.vexfs/events` with blocking
//! and non-blocking reads, `since`, filters, poll, and a killed reader.
//!
//! Needs /dev/fuse and root; prints SKIPPED without them, except under CI
//! (the CI variable set), where it fails.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::fuse::{fuse_usable, mount, unmount};

/// Read whole JSON lines until `n` events are in (blocking reads).
fn read_events(f: &mut File, n: usize) -> Vec<serde_json::Value> {
    let (mut out, mut buf) = (Vec::new(), Vec::new());
    while out.len() < n {
        let mut chunk = vec![0u8; 65536];
        let got = f.read(&mut chunk).unwrap();
        assert!(got > 0, "a blocking read of the event file returned EOF");
        buf.extend_from_slice(&chunk[..got]);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            out.push(serde_json::from_slice(&line).unwrap());
        }
    }
    out
}

fn op(v: &serde_json::Value) -> &str {
    v["op"].as_str().unwrap()
}

#[test]
fn events_follow_through_the_mount() {
    if !fuse_usable() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = common::make_image(tmp.path(), "e.img", 64 << 20, false);
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let child = mount(&image, &mnt);
    let events = mnt.join(".vexfs/events");
    // A follower from the end, in a thread, blocking.
    let mut follower = OpenOptions::new().read(true).write(true).open(&events).unwrap();
    follower.write_all(b"since end\n").unwrap();
    let reader = std::thread::spawn(move || read_events(&mut follower, 4));
    fs::create_dir(mnt.join("d")).unwrap();
    File::create(mnt.join("d/a")).unwrap();
    fs::rename(mnt.join("d/a"), mnt.join("d/b")).unwrap();
    fs::remove_file(mnt.join("d/b")).unwrap();
    let seen = reader.join().unwrap();
    let ops: Vec<&str> = seen.iter().map(op).collect();
    assert_eq!(ops, ["mkdir", "create", "rename", "unlink"], "{seen:#?}");
    let seqs: Vec<u64> = seen.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "gap-free: {seqs:?}");
    assert_eq!(seen[1]["name"], "a");
    assert_eq!(seen[2]["name2"], "b");
    // FUSE reports the calling thread: one of this process's tasks.
    let pid = seen[0]["pid"].as_u64().unwrap();
    assert!(
        Path::new(&format!("/proc/self/task/{pid}")).exists(),
        "pid {pid} is not ours"
    );
    // Non-blocking at the end: EAGAIN; `since N` replays; filters apply.
    let mut nb = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&events)
        .unwrap();
    nb.write_all(format!("since {}\nfilter {{\"ops\":[\"unlink\"]}}\n", seqs[0]).as_bytes())
        .unwrap();
    let mut text = String::new();
    let err = nb.read_to_string(&mut text).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN), "{err}");
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().map(op).collect::<Vec<_>>(), ["unlink"]);
    // poll: not readable at the end, readable after a change.
    nb.write_all(b"since end\nfilter {}\n").unwrap();
    let mut pfd = libc::pollfd {
        fd: nb.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 0, "nothing to read yet");
    let m = mnt.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        File::create(m.join("late")).unwrap();
    });
    // SAFETY: as above.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, 5000) }, 1, "readable after a create");
    t.join().unwrap();
    drop(nb);
    // A reader killed while blocked does not keep the mount busy.
    let mut cat = Command::new("cat").arg(&events).stdout(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    cat.kill().unwrap();
    cat.wait().unwrap();
    unmount(child);
    let r = common::fsck(&image).unwrap();
    assert!(r.is_clean(), "fsck: {:#?}", r.problems);
}
