//! `vexctl events`: the event stream (format-spec/11), from an unmounted
//! image (read-only, shared lock: committed events only) or through a
//! mount's `/.vexfs/events` control file.
//!
//! The control file's protocol: open it read-write; write `since N` (or
//! `since end`) to set the position, the default being the oldest event
//! held; write `filter {"ops":[..],"subtree":".."}` to filter; every read
//! returns whole JSON lines, one per event, preceded by
//! `{"missed":N,"next":SEQ}` when events were dropped before they could be
//! read. A blocking read waits for new events; under O_NONBLOCK a read with
//! nothing new fails with EAGAIN.

use super::{Failure, Outcome, Target};
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;
use vexfs::events::follow::MAX_BATCH;
use vexfs::events::{Filter, Op};
use vexfs::fs::core::Fs;

/// How often `--follow` rereads an unmounted image.
const IMAGE_POLL: Duration = Duration::from_millis(500);
/// Read size on the control file.
const READ_SIZE: usize = 64 << 10;

/// Where reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// The oldest event the ring still holds.
    Oldest,
    /// This sequence number (sequence numbers start at 1).
    Seq(u64),
    /// After the newest committed event: only events still to come.
    End,
}

/// `--since`: a sequence number, or `end` (also `now`).
pub fn parse_since(s: &str) -> Result<Since, String> {
    match s {
        "end" | "now" => Ok(Since::End),
        _ => s
            .parse()
            .map(|n: u64| Since::Seq(n.max(1)))
            .map_err(|_| format!("{s:?}: give a sequence number or `end`")),
    }
}

/// One `vexctl events` run.
pub struct Options<'a> {
    pub since: Since,
    pub follow: bool,
    pub json: bool,
    /// Operation names; empty = all.
    pub ops: &'a [String],
    pub subtree: Option<&'a str>,
    /// Stop after this many events.
    pub limit: Option<u64>,
}

/// Print the events.
pub fn run(t: &Target, o: &Options<'_>) -> Outcome<()> {
    let mut codes = Vec::new();
    for name in o.ops {
        let code = Op::code_of(name).ok_or_else(|| {
            let known: Vec<&str> = vexfs::format::events::OPS.iter().map(|(_, n)| *n).collect();
            Failure::new(format!(
                "--op {name:?}: unknown operation (known: {})",
                known.join(", ")
            ))
        })?;
        codes.push(code);
    }
    if o.limit == Some(0) {
        return Ok(());
    }
    let mut out = Printer {
        json: o.json,
        left: o.limit,
        out: std::io::stdout().lock(),
    };
    match t {
        Target::Image(p) => {
            let filter = Filter {
                ops: codes,
                subtree: o.subtree.map(String::from),
            };
            offline(t, p, o, &filter, &mut out)
        }
        Target::Mount(m) => mounted(m, o, &mut out),
    }
}

/// Whether to keep going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    More,
    /// The limit was reached or stdout was closed.
    Enough,
}

struct Printer {
    json: bool,
    left: Option<u64>,
    out: std::io::StdoutLock<'static>,
}

impl Printer {
    fn line(&mut self, text: &str) -> Outcome<Flow> {
        match writeln!(self.out, "{text}").and_then(|()| self.out.flush()) {
            Ok(()) => Ok(Flow::More),
            // `vexctl events --follow | head`: the reader is gone.
            Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(Flow::Enough),
            Err(e) => Err(Failure::new(format!("writing the output: {e}"))),
        }
    }

    /// One event (`raw`: its JSON line as received, printed as is).
    fn event(&mut self, v: &Value, raw: Option<&str>) -> Outcome<Flow> {
        if self.left == Some(0) {
            return Ok(Flow::Enough);
        }
        let text = match (self.json, raw) {
            (true, Some(r)) => r.to_string(),
            (true, None) => v.to_string(),
            (false, _) => human(v),
        };
        if self.line(&text)? == Flow::Enough {
            return Ok(Flow::Enough);
        }
        match &mut self.left {
            Some(n) => {
                *n -= 1;
                Ok(if *n == 0 { Flow::Enough } else { Flow::More })
            }
            None => Ok(Flow::More),
        }
    }

    /// `n` events were dropped; reading goes on at `next`.
    fn missed(&mut self, n: u64, next: u64) -> Outcome<Flow> {
        let _ = self.out.flush();
        eprintln!("vexctl: {n} events were dropped before they could be read (the ring wrapped); continuing at {next}");
        if self.json {
            return self.line(&json!({"missed": n, "next": next}).to_string());
        }
        Ok(Flow::More)
    }
}

/// From an unmounted image; `--follow` rereads it with a fresh read-only
/// open every IMAGE_POLL (the shared lock is not held in between, so the
/// image can be mounted meanwhile: then following stops).
fn offline(t: &Target, path: &Path, o: &Options<'_>, filter: &Filter, out: &mut Printer) -> Outcome<()> {
    let mut fs = t.open(true)?;
    if !vexfs::events::ring::enabled(fs.geometry()) {
        return Err(Failure::new(format!(
            "{}: this image has no event ring",
            path.display()
        )));
    }
    let (oldest, next) = fs.event_range()?;
    // Checks the subtree (it is resolved even when there is nothing to read).
    fs.events_since(next, 1, filter).map_err(|e| match &filter.subtree {
        Some(s) => Failure::new(format!("--subtree {s}: {e}")),
        None => Failure::from(e),
    })?;
    let mut w = match o.since {
        Since::Oldest => oldest,
        Since::Seq(n) => n,
        Since::End => next,
    };
    loop {
        if drain(&fs, &mut w, filter, out)? == Flow::Enough || !o.follow {
            return Ok(());
        }
        drop(fs);
        std::thread::sleep(IMAGE_POLL);
        fs = match Fs::open(path, true) {
            Ok(fs) => fs,
            Err(vexfs::FsError::Locked(_)) => {
                return Err(Failure::new(format!(
                    "{}: the image got mounted: stopped following it (follow the mount point instead, --since {w})",
                    path.display()
                )))
            }
            Err(e) => return Err(Failure::new(format!("{}: {e}", path.display()))),
        };
    }
}

/// Print every committed event from `w` on; `w` ends after the last one read.
fn drain(fs: &Fs, w: &mut u64, filter: &Filter, out: &mut Printer) -> Outcome<Flow> {
    let end = fs.event_range()?.1;
    while *w < end {
        let b = fs.events_since(*w, MAX_BATCH, filter)?;
        if b.missed > 0 && out.missed(b.missed, *w + b.missed)? == Flow::Enough {
            return Ok(Flow::Enough);
        }
        for e in &b.events {
            if out.event(&e.to_json(), None)? == Flow::Enough {
                return Ok(Flow::Enough);
            }
        }
        if b.next <= *w {
            break;
        }
        *w = b.next;
    }
    Ok(Flow::More)
}

/// Through the mount's control file.
fn mounted(m: &Path, o: &Options<'_>, out: &mut Printer) -> Outcome<()> {
    let path = m.join(".vexfs/events");
    let mut open = std::fs::OpenOptions::new();
    open.read(true).write(true);
    if !o.follow {
        open.custom_flags(libc::O_NONBLOCK);
    }
    let mut f = open
        .open(&path)
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    let since = match o.since {
        Since::Oldest => None,
        Since::Seq(n) => Some(format!("since {n}\n")),
        Since::End => Some("since end\n".to_string()),
    };
    if let Some(cmd) = since {
        f.write_all(cmd.as_bytes())
            .map_err(|e| Failure::new(format!("{}: {:?} refused: {e}", path.display(), cmd.trim_end())))?;
    }
    if !o.ops.is_empty() || o.subtree.is_some() {
        let mut spec = json!({});
        if !o.ops.is_empty() {
            spec["ops"] = o.ops.into();
        }
        if let Some(s) = o.subtree {
            spec["subtree"] = s.into();
        }
        f.write_all(format!("filter {spec}\n").as_bytes())
            .map_err(|e| Failure::new(format!("{}: the filter was refused: {e}", path.display())))?;
    }
    if !o.follow {
        // Readers see committed events only, and the daemon commits every
        // few seconds: an fsync commits now, so what happened before this
        // command is listed. Best effort (a read-only mount has nothing
        // staged anyway).
        let _ = f.sync_all();
    }
    let mut buf = vec![0u8; READ_SIZE];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match f.read(&mut buf) {
            // The daemon went away (unmounted).
            Ok(0) => {
                if o.follow {
                    eprintln!("vexctl: {}: the event stream ended (unmounted?)", m.display());
                }
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                let hint = match (o.subtree, e.kind()) {
                    (Some(s), ErrorKind::NotFound) => format!(" (--subtree {s}: no such directory?)"),
                    _ => String::new(),
                };
                return Err(Failure::new(format!("{}: {e}{hint}", path.display())));
            }
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line);
            if line_of_stream(&path, text.trim(), o.ops, out)? == Flow::Enough {
                return Ok(());
            }
        }
    }
}

/// One line read from the control file.
fn line_of_stream(path: &Path, text: &str, ops: &[String], out: &mut Printer) -> Outcome<Flow> {
    if text.is_empty() {
        return Ok(Flow::More);
    }
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Failure::new(format!("{}: unexpected line {text:?}: {e}", path.display())))?;
    if let Some(err) = v.get("error").and_then(Value::as_str) {
        return Err(Failure::new(format!("{}: {err}", path.display())));
    }
    if let Some(n) = v.get("missed").and_then(Value::as_u64) {
        return out.missed(n, v["next"].as_u64().unwrap_or(0));
    }
    // The daemon filters already; this guards against one that does not.
    let op = v["op"].as_str().unwrap_or("");
    if !ops.is_empty() && !ops.iter().any(|o| o == op) {
        return Ok(Flow::More);
    }
    out.event(&v, Some(text))
}

/// `SEQ  TIME  OP  details`.
pub fn human(v: &Value) -> String {
    let seq = v["seq"].as_u64().unwrap_or(0);
    let time = v["time"]
        .as_str()
        .and_then(|t| t.split('.').next())
        .and_then(|s| s.parse::<i64>().ok())
        .map_or_else(|| "?".to_string(), iso_utc);
    let op = v["op"].as_str().unwrap_or("?");
    let line = format!("{seq:>8}  {time}  {op:<13}  {}", details(v));
    line.trim_end().to_string()
}

/// Seconds since the epoch as `YYYY-MM-DDThh:mm:ssZ`.
pub fn iso_utc(sec: i64) -> String {
    let s = crate::inspect::utc(sec);
    match s.strip_suffix(" UTC") {
        Some(d) => format!("{}Z", d.replacen(' ', "T", 1)),
        None => s,
    }
}

/// What an event says, per operation (format-spec/11 §11.4).
fn details(v: &Value) -> String {
    let num = |k: &str| v[k].as_u64().unwrap_or(0);
    let text = |k: &str| format!("{:?}", v[k].as_str().unwrap_or(""));
    let (ino, parent, aux) = (num("ino"), num("parent"), num("aux"));
    let at = format!("ino {ino} in dir {parent} name {}", text("name"));
    let mut d = match v["op"].as_str().unwrap_or("") {
        "create" | "mkdir" | "mknod" => format!("{at} mode {:o}", aux),
        "symlink" => format!("{at} -> {}", text("name2")),
        "link" => format!("{at} (now {aux} links)"),
        "unlink" => format!("{at} ({aux} links left)"),
        "rmdir" => at,
        "rename" => {
            let mut s = format!("{at} -> dir {} name {}", num("parent2"), text("name2"));
            let other = num("ino2");
            let exchange = aux & u64::from(vexfs::fs::rename::RENAME_EXCHANGE) != 0;
            if other != 0 {
                s += &format!(
                    ", {} ino {other}",
                    if exchange { "exchanged with" } else { "replacing" }
                );
            }
            if aux & u64::from(vexfs::fs::rename::RENAME_NOREPLACE) != 0 {
                s += " (noreplace)";
            }
            s
        }
        "write" | "truncate" => format!("ino {ino} size {aux}"),
        "setattr" => {
            let names = ["mode", "uid", "gid", "atime", "mtime"];
            let changed: Vec<&str> = (0..names.len())
                .filter(|i| aux & (1 << i) != 0)
                .map(|i| names[i])
                .collect();
            format!("ino {ino} changed {}", changed.join(","))
        }
        "setxattr" => format!("ino {ino} xattr {} ({aux} bytes)", text("name")),
        "removexattr" => format!("ino {ino} xattr {}", text("name")),
        "vector_attach" | "vector_detach" => format!("ino {ino} collection {} slot {aux}", text("name")),
        "collection_create" | "collection_drop" => {
            format!("collection {} id {aux} (node file ino {ino})", text("name"))
        }
        "search" => format!("collection {} k {aux}", text("name")),
        "mount" => format!("mount count {aux}"),
        "unmount" => String::new(),
        _ => {
            let mut s = format!("ino {ino}");
            if v.get("name").is_some() {
                s += &format!(" in dir {parent} name {}", text("name"));
            }
            if v.get("name2").is_some() {
                s += &format!(
                    " second ino {} dir {} name {}",
                    num("ino2"),
                    num("parent2"),
                    text("name2")
                );
            }
            s + &format!(" aux {aux}")
        }
    };
    let (uid, pid) = (num("uid"), num("pid"));
    if uid != 0 || pid != 0 {
        d += &format!("  [uid {uid} pid {pid}]");
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_lines() {
        let v = json!({"seq": 7, "op": "rename", "time": "1700000000.5", "uid": 0, "pid": 0, "ino": 12,
            "parent": 1, "name": "a.txt", "ino2": 0, "parent2": 5, "name2": "b", "aux": 0});
        assert_eq!(
            human(&v),
            "       7  2023-11-14T22:13:20Z  rename         ino 12 in dir 1 name \"a.txt\" -> dir 5 name \"b\""
        );
        let v = json!({"seq": 1, "op": "unmount", "time": "0.0", "uid": 0, "pid": 0, "ino": 0, "aux": 0});
        assert_eq!(human(&v), "       1  1970-01-01T00:00:00Z  unmount");
        let v = json!({"seq": 2, "op": "create", "time": "0.0", "uid": 1000, "pid": 42, "ino": 3,
            "parent": 1, "name": "x\ny", "aux": 0o100644});
        assert!(human(&v).ends_with("ino 3 in dir 1 name \"x\\ny\" mode 100644  [uid 1000 pid 42]"));
    }

    #[test]
    fn since_values() {
        assert_eq!(parse_since("end"), Ok(Since::End));
        assert_eq!(parse_since("0"), Ok(Since::Seq(1)));
        assert_eq!(parse_since("12"), Ok(Since::Seq(12)));
        assert!(parse_since("x").is_err());
    }
}
