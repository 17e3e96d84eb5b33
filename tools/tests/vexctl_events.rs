//! `vexctl events` against unmounted images: the recorded sequence, op and
//! subtree filters, --since, --limit, the human form, the warning when the
//! ring wrapped past the requested position, and --follow stopping when
//! the image gets mounted.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::mkfs::{mkfs, MkfsOptions, Sizing};

const ROOT: u64 = 1;

fn image(dir: &Path, event_blocks: Option<u64>) -> PathBuf {
    let path = dir.join("ev.img");
    let opts = MkfsOptions {
        size: Some(32 << 20),
        time: Some(1_700_000_000),
        sizing: Sizing {
            event_blocks,
            ..Default::default()
        },
        ..Default::default()
    };
    mkfs(&path, &opts, &mut |_, _| {}).unwrap();
    path
}

/// An image holding: mount, create /a.txt, rename to /b.txt, unlink, unmount.
fn populated(dir: &Path) -> PathBuf {
    let p = image(dir, None);
    let fs = Fs::open(&p, false).unwrap();
    let c = Ctx::root();
    fs.create(&c, ROOT, b"a.txt", 0o644, NewNode::File).unwrap();
    fs.rename(&c, ROOT, b"a.txt", ROOT, b"b.txt", 0).unwrap();
    fs.unlink(&c, ROOT, b"b.txt").unwrap();
    drop(fs);
    p
}

/// The tests run one at a time: a vexctl child spawned by one test would
/// hold copies of the descriptors (and flocks) of another test's image
/// until it execs, making that test's next open fail with "in use".
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run vexctl; (exit code, stdout, stderr).
fn vexctl(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vexctl")).args(args).output().unwrap();
    (
        o.status.code().expect("killed by a signal"),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn json_lines(args: &[&str]) -> Vec<Value> {
    let (code, out, err) = vexctl(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn ops(lines: &[Value]) -> Vec<&str> {
    lines.iter().map(|v| v["op"].as_str().unwrap()).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn json_lists_the_committed_sequence() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let p = populated(dir.path());
    let all = json_lines(&["events", s(&p), "--json"]);
    assert_eq!(ops(&all), ["mount", "create", "rename", "unlink", "unmount"]);
    let seqs: Vec<u64> = all.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (seqs[0]..seqs[0] + 5).collect::<Vec<_>>(), "gap-free");
    assert_eq!(all[1]["name"], "a.txt");
    assert_eq!(all[1]["parent"], ROOT);
    assert_eq!((&all[2]["name"], &all[2]["name2"]), (&"a.txt".into(), &"b.txt".into()));
    assert_eq!(all[2]["ino"], all[1]["ino"]);
    assert_eq!(all[3]["name"], "b.txt");

    let only = json_lines(&["events", s(&p), "--json", "--op", "unlink"]);
    assert_eq!(only, [all[3].clone()]);
    let two = json_lines(&["events", s(&p), "--json", "--op", "create", "--op", "unmount"]);
    assert_eq!(ops(&two), ["create", "unmount"]);
    assert_eq!(
        ops(&json_lines(&["events", s(&p), "--json", "--op", "rename,unlink"])),
        ["rename", "unlink"]
    );

    let from = seqs[2].to_string();
    let since = json_lines(&["events", s(&p), "--json", "--since", &from]);
    assert_eq!(ops(&since), ["rename", "unlink", "unmount"]);
    assert_eq!(since[0]["seq"], seqs[2]);
    assert!(json_lines(&["events", s(&p), "--json", "--since", "end"]).is_empty());
    let beyond = (seqs[4] + 10).to_string();
    assert!(json_lines(&["events", s(&p), "--json", "--since", &beyond]).is_empty());

    assert_eq!(
        ops(&json_lines(&["events", s(&p), "--json", "--limit", "2"])),
        ["mount", "create"]
    );
    let limited = json_lines(&[
        "events",
        s(&p),
        "--json",
        "--since",
        &from,
        "--op",
        "unmount",
        "--limit",
        "1",
    ]);
    assert_eq!(ops(&limited), ["unmount"]);
}

#[test]
fn human_lines_say_what_happened() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let p = populated(dir.path());
    let (code, out, err) = vexctl(&["events", s(&p)]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    let fields: Vec<Vec<&str>> = lines.iter().map(|l| l.split_whitespace().collect()).collect();
    for f in &fields {
        let t = f[1];
        assert!(t.len() == 20 && t.ends_with('Z') && &t[10..11] == "T", "ISO time: {t}");
    }
    let created = json_lines(&["events", s(&p), "--json", "--op", "create"]);
    let ino = created[0]["ino"].as_u64().unwrap();
    assert!(
        lines[1].contains(&format!("create         ino {ino} in dir 1 name \"a.txt\"")),
        "{out}"
    );
    assert!(
        lines[2].contains(&format!(
            "rename         ino {ino} in dir 1 name \"a.txt\" -> dir 1 name \"b.txt\""
        )),
        "{out}"
    );
    assert!(
        lines[3].contains("unlink") && lines[3].contains("name \"b.txt\""),
        "{out}"
    );
    assert_eq!(fields[4][2], "unmount");
}

#[test]
fn subtree_keeps_events_below_a_directory() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let p = image(dir.path(), None);
    let fs = Fs::open(&p, false).unwrap();
    let c = Ctx::root();
    let d = fs.create(&c, ROOT, b"d", 0o755, NewNode::Dir).unwrap();
    fs.create(&c, d.ino.into(), b"in", 0o644, NewNode::File).unwrap();
    fs.create(&c, ROOT, b"out", 0o644, NewNode::File).unwrap();
    drop(fs);
    let inside = json_lines(&["events", s(&p), "--json", "--subtree", "/d"]);
    assert_eq!(ops(&inside), ["create"]);
    assert_eq!(inside[0]["name"], "in");
    let (code, _, err) = vexctl(&["events", s(&p), "--subtree", "/nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("--subtree /nope"), "{err}");
}

#[test]
fn bad_arguments_are_refused() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let p = populated(dir.path());
    let (code, out, err) = vexctl(&["events", s(&p), "--op", "frobnicate"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("unknown operation") && err.contains("vector_attach"),
        "{err}"
    );
    let (code, _, err) = vexctl(&["events", s(&p), "--since", "soon"]);
    assert_eq!(code, 2, "clap usage error: {err}");
}

#[test]
fn a_wrapped_ring_reports_the_dropped_events() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let p = image(dir.path(), Some(16));
    let fs = Fs::open(&p, false).unwrap();
    let c = Ctx::root();
    // 15 ring blocks of at most 46 records: 2000 events wrap it.
    for i in 0..1000 {
        let name = format!("f{i}");
        fs.create(&c, ROOT, name.as_bytes(), 0o644, NewNode::File).unwrap();
        fs.unlink(&c, ROOT, name.as_bytes()).unwrap();
    }
    drop(fs);
    let (code, out, err) = vexctl(&["events", s(&p), "--json", "--since", "1"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let missed = lines[0]["missed"].as_u64().expect("a missed line first");
    let next = lines[0]["next"].as_u64().unwrap();
    assert_eq!(next, 1 + missed);
    assert_eq!(lines[1]["seq"].as_u64(), Some(next));
    assert_eq!(lines.last().unwrap()["op"], "unmount");
    assert!(
        err.contains(&format!(
            "{missed} events were dropped before they could be read (the ring wrapped); continuing at {next}"
        )),
        "{err}"
    );
    // From the oldest held (the default) nothing is missing.
    let (code, out, err) = vexctl(&["events", s(&p), "--json"]);
    assert_eq!(code, 0);
    assert!(err.is_empty(), "{err}");
    let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"].as_u64(), Some(next));
}

#[test]
fn follow_on_an_image_stops_when_it_gets_mounted() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let p = populated(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_vexctl"))
        .args(["events", s(&p), "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The follower holds a shared lock only while it rereads the ring.
    let t0 = Instant::now();
    let fs = loop {
        match Fs::open(&p, false) {
            Ok(fs) => break fs,
            Err(_) if t0.elapsed() < Duration::from_secs(10) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("cannot mount: {e}"),
        }
    };
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "the follower did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(fs);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("got mounted"), "{err}");
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(ops(&lines), ["mount", "create", "rename", "unlink", "unmount"]);
}
