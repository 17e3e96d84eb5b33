//! Semantic events through the core: the exact sequence each operation
//! produces, positions across remounts, wrap-around, followers.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vexfs::events::{Event, EventBatch, Filter, Op};
use vexfs::format::vector::{ElemType, Metric};
use vexfs::fs::attrs::{SetAttr, TimeSet};
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::fs::rename::{RENAME_EXCHANGE, RENAME_NOREPLACE};
use vexfs::fs::xattr::XATTR_REPLACE;
use vexfs::image::{Image, Mode};
use vexfs::mkfs::{MkfsOptions, Sizing};
use vexfs::vector::{CollectionParams, SearchRequest};
use vexfs::FsError;

const ROOT: u64 = 1;

fn ops(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.to_json()["op"].as_str().unwrap().to_string())
        .collect()
}

/// An image of `size` bytes whose event region has `event_blocks` blocks.
fn make_ring_image(dir: &Path, size: u64, event_blocks: u64) -> PathBuf {
    let path = dir.join("ring.img");
    let opts = MkfsOptions {
        sizing: Sizing {
            event_blocks: Some(event_blocks),
            ..Default::default()
        },
        ..options(size, false)
    };
    vexfs::mkfs::mkfs(&path, &opts, &mut |_, _| {}).expect("mkfs");
    path
}

/// Every committed event from `from` on, following `next` until the
/// committed end; returns the summed `missed` and the events.
fn read_all(fs: &Fs, from: u64, filter: &Filter) -> (u64, Vec<Event>) {
    let end = fs.event_range().unwrap().1;
    let (mut w, mut missed, mut out) = (from, 0, Vec::new());
    while w < end {
        let EventBatch {
            missed: m,
            events,
            next,
        } = fs.events_since(w, 4096, filter).unwrap();
        assert!(next > w, "a read from {w} (< {end}) made no progress");
        missed += m;
        out.extend(events);
        w = next;
    }
    assert_eq!(w, end, "reading stops exactly at the committed end");
    (missed, out)
}

/// Sequence numbers are exactly `from, from + 1, ...`.
fn assert_gap_free(events: &[Event], from: u64) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.seq,
            from + i as u64,
            "gap or disorder at index {i}: {:?}",
            e.to_json()
        );
    }
}

/// The event without its sequence number and time (for comparisons).
fn strip(e: &Event) -> Event {
    Event {
        seq: 0,
        time: Default::default(),
        ..e.clone()
    }
}

/// `e` as made on behalf of `c`.
fn by(mut e: Event, c: &Ctx) -> Event {
    (e.uid, e.pid) = (c.uid, c.pid);
    e
}

fn ctx(uid: u32, pid: u32) -> Ctx {
    Ctx {
        uid,
        gid: uid,
        pid,
        ..Ctx::default()
    }
}

fn ino(a: vexfs::fs::core::Attr) -> u64 {
    a.ino.into()
}

/// The on-disk ring header of a closed image: (oldest, next, dropped).
fn disk_header(p: &Path) -> (u64, u64, u64) {
    let img = Image::open(p, Mode::ReadOnly).unwrap();
    let r = img.geometry().events;
    let seed = img.superblock().s_checksum_seed.get();
    let h = vexfs::format::events::parse_header(img.block(r.start).unwrap(), r.start, seed, r.blocks).unwrap();
    (h.er_oldest_seq.get(), h.er_next_seq.get(), h.er_dropped.get())
}

fn assert_fsck_clean(p: &Path) {
    let report = fsck(p).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn each_operation_appends_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "e.img", 32 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    let c = Ctx::root();
    let (_, start) = fs.event_range().unwrap();
    let f = fs.create(&c, ROOT, b"a", 0o644, NewNode::File).unwrap();
    fs.write_data(f.ino.into(), 0, b"hello").unwrap();
    fs.write_data(f.ino.into(), 5, b" world").unwrap();
    fs.rename(&c, ROOT, b"a", ROOT, b"b", 0).unwrap();
    fs.unlink(&c, ROOT, b"b").unwrap();
    fs.sync().unwrap();
    let batch = fs.events_since(start, 100, &Filter::default()).unwrap();
    assert_eq!(ops(&batch.events), ["mount", "create", "write", "rename", "unlink"]);
    assert_eq!(batch.events[2].aux, 11, "coalesced write carries the final size");
    let seqs: Vec<u64> = batch.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (start..start + 5).collect::<Vec<_>>());
}

#[test]
fn every_operation_records_exactly_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "e.img", 32 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    let root = ctx(0, 77);
    let u = ctx(1000, 4242);
    let (_, start) = fs.event_range().unwrap();
    assert_eq!(start, 1, "a fresh ring starts at sequence 1");
    let mut want = vec![Event::new(Op::Mount, 0).with_aux(1)];

    let w = ino(fs.create(&root, ROOT, b"w", 0o777, NewNode::Dir).unwrap());
    want.push(by(
        Event::new(Op::Mkdir, w).with_name(ROOT, b"w").with_aux(0o40777),
        &root,
    ));
    let f = ino(fs.create(&u, w, b"f", 0o644, NewNode::File).unwrap());
    want.push(by(Event::new(Op::Create, f).with_name(w, b"f").with_aux(0o100644), &u));
    let d = ino(fs.create(&u, w, b"d", 0o755, NewNode::Dir).unwrap());
    want.push(by(Event::new(Op::Mkdir, d).with_name(w, b"d").with_aux(0o40755), &u));
    let fifo = ino(fs.create(&u, w, b"p", 0o10644, NewNode::Special { rdev: 0 }).unwrap());
    want.push(by(Event::new(Op::Mknod, fifo).with_name(w, b"p").with_aux(0o10644), &u));
    let target: &[u8] = b"../some/target";
    let s = ino(fs.create(&u, w, b"s", 0o777, NewNode::Symlink { target }).unwrap());
    let ev = Event::new(Op::Symlink, s).with_name(w, b"s").with_second(0, 0, target);
    want.push(by(ev.with_aux(target.len() as u64), &u));

    assert_eq!(fs.link(&u, f, d, b"h").unwrap().nlink, 2);
    want.push(by(Event::new(Op::Link, f).with_name(d, b"h").with_aux(2), &u));
    fs.unlink(&u, d, b"h").unwrap();
    want.push(by(Event::new(Op::Unlink, f).with_name(d, b"h").with_aux(1), &u));

    // Two writes before a commit: one event with the final size.
    fs.write_as(Some(&u), f, 0, b"hello").unwrap();
    fs.write_as(Some(&u), f, 5, b" world").unwrap();
    want.push(by(Event::new(Op::Write, f).with_aux(11), &u));
    fs.sync().unwrap();
    // After a commit, a write is a new event.
    fs.write_as(Some(&u), f, 11, b"!").unwrap();
    want.push(by(Event::new(Op::Write, f).with_aux(12), &u));
    let g = ino(fs.create(&u, w, b"g", 0o644, NewNode::File).unwrap());
    want.push(by(Event::new(Op::Create, g).with_name(w, b"g").with_aux(0o100644), &u));
    fs.write_as(Some(&u), g, 0, b"abc").unwrap();
    want.push(by(Event::new(Op::Write, g).with_aux(3), &u));
    // The newest event is another file's write: no coalescing.
    fs.write_as(Some(&u), f, 12, b"?").unwrap();
    want.push(by(Event::new(Op::Write, f).with_aux(13), &u));

    let size = |n| SetAttr {
        size: Some(n),
        ..Default::default()
    };
    fs.setattr(&u, f, &size(3)).unwrap();
    want.push(by(Event::new(Op::Truncate, f).with_aux(3), &u));
    let mode = SetAttr {
        mode: Some(0o600),
        ..Default::default()
    };
    fs.setattr(&u, f, &mode).unwrap();
    want.push(by(Event::new(Op::Setattr, f).with_aux(0x1), &u));
    let several = SetAttr {
        size: Some(1),
        mode: Some(0o640),
        atime: Some(TimeSet::Now),
        mtime: Some(TimeSet::Now),
        ..Default::default()
    };
    fs.setattr(&u, f, &several).unwrap();
    want.push(by(Event::new(Op::Truncate, f).with_aux(1), &u));
    want.push(by(Event::new(Op::Setattr, f).with_aux(0x1 | 0x8 | 0x10), &u));

    fs.setxattr(&u, f, b"user.tag", b"vvv", 0).unwrap();
    want.push(by(
        Event::new(Op::Setxattr, f).with_name(0, b"user.tag").with_aux(3),
        &u,
    ));
    fs.removexattr(&u, f, b"user.tag").unwrap();
    want.push(by(Event::new(Op::Removexattr, f).with_name(0, b"user.tag"), &u));

    let v = [0.5f32, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
    fs.set_vector(&u, f, "docs", &v).unwrap();
    want.push(by(Event::new(Op::VectorAttach, f).with_name(0, b"docs"), &u));
    fs.remove_vector(&u, f, "docs").unwrap();
    want.push(by(Event::new(Op::VectorDetach, f).with_name(0, b"docs"), &u));

    // Plain rename across directories.
    fs.rename(&u, w, b"f", d, b"f2", 0).unwrap();
    want.push(by(
        Event::new(Op::Rename, f).with_name(w, b"f").with_second(0, d, b"f2"),
        &u,
    ));
    // Over an existing file: ino2 is the replaced inode.
    fs.rename(&u, d, b"f2", w, b"g", 0).unwrap();
    want.push(by(
        Event::new(Op::Rename, f).with_name(d, b"f2").with_second(g, w, b"g"),
        &u,
    ));
    // RENAME_EXCHANGE: both stay, the flag is in aux.
    fs.rename(&u, w, b"g", w, b"s", RENAME_EXCHANGE).unwrap();
    let ev = Event::new(Op::Rename, f).with_name(w, b"g").with_second(s, w, b"s");
    want.push(by(ev.with_aux(RENAME_EXCHANGE.into()), &u));
    fs.rename(&u, w, b"s", w, b"s2", RENAME_NOREPLACE).unwrap();
    let ev = Event::new(Op::Rename, f).with_name(w, b"s").with_second(0, w, b"s2");
    want.push(by(ev.with_aux(RENAME_NOREPLACE.into()), &u));

    fs.rmdir(&u, w, b"d").unwrap();
    want.push(by(Event::new(Op::Rmdir, d).with_name(w, b"d"), &u));

    fs.create_collection(&CollectionParams::new("n", 4, Metric::L2, ElemType::F32))
        .unwrap();
    fs.drop_collection("n").unwrap();
    let q = SearchRequest::new("docs", v.to_vec(), 3);
    fs.search(&q).unwrap();
    fs.set_log_searches(true);
    fs.search(&q).unwrap();
    fs.set_log_searches(false);
    fs.search(&q).unwrap();
    fs.sync().unwrap();

    let (missed, got) = read_all(&fs, start, &Filter::default());
    assert_eq!(missed, 0);
    assert_gap_free(&got, start);
    assert_eq!(got.len(), want.len() + 3, "{:?}", ops(&got));
    let (n_want, rest) = (want.len(), &got[want.len()..]);
    for (i, (g, w)) in got[..n_want].iter().zip(&want).enumerate() {
        let mut g = strip(g);
        if [Op::VectorAttach as u16, Op::VectorDetach as u16].contains(&g.op) {
            assert_eq!(g.aux, 0, "the first vector of an empty collection takes slot 0");
            g.aux = 0;
        }
        assert_eq!(g, *w, "event {i} (seq {})", start + i as u64);
    }
    for e in &got {
        assert!(e.time.sec >= TIME && e.time.nsec < 1_000_000_000, "{:?}", e.to_json());
    }
    // Collection events: the node file and the collection id, no caller.
    let (cc, cd) = (strip(&rest[0]), strip(&rest[1]));
    assert_eq!((cc.op, cd.op), (Op::CollectionCreate as u16, Op::CollectionDrop as u16));
    assert!(cc.ino != 0 && cc.ino == cd.ino, "{cc:?} {cd:?}");
    assert!(cc.aux == cd.aux && cc.aux >= 2, "ids after docs and img: {cc:?}");
    assert_eq!(
        cc,
        Event::new(Op::CollectionCreate, cc.ino)
            .with_name(0, b"n")
            .with_aux(cc.aux)
    );
    assert_eq!(
        cd,
        Event::new(Op::CollectionDrop, cc.ino)
            .with_name(0, b"n")
            .with_aux(cc.aux)
    );
    // Only the search made while log_searches was on.
    assert_eq!(
        strip(&rest[2]),
        Event::new(Op::Search, 0).with_name(0, b"docs").with_aux(3)
    );

    // The JSON form of a rename.
    let j = got
        .iter()
        .find(|e| e.op == Op::Rename as u16 && e.aux == 2)
        .unwrap()
        .to_json();
    assert_eq!(j["op"], "rename");
    assert_eq!((j["ino"].as_u64(), j["ino2"].as_u64()), (Some(f), Some(s)));
    assert_eq!((j["parent"].as_u64(), j["name"].as_str()), (Some(w), Some("g")));
    assert_eq!((j["parent2"].as_u64(), j["name2"].as_str()), (Some(w), Some("s")));
    assert_eq!(
        (j["uid"].as_u64(), j["pid"].as_u64(), j["aux"].as_u64()),
        (Some(1000), Some(4242), Some(2))
    );
    let j = got[0].to_json();
    assert!(
        j.get("name").is_none() && j.get("ino2").is_none(),
        "unused fields are left out: {j}"
    );

    // Unmount shows after the next mount.
    let next = fs.event_range().unwrap().1;
    drop(fs);
    let fs = Fs::open(&p, false).unwrap();
    fs.sync().unwrap();
    let (_, got) = read_all(&fs, next, &Filter::default());
    assert_gap_free(&got, next);
    let got: Vec<Event> = got.iter().map(strip).collect();
    assert_eq!(got, [Event::new(Op::Unmount, 0), Event::new(Op::Mount, 0).with_aux(2)]);
    drop(fs);
    assert_fsck_clean(&p);
}

#[test]
fn failed_operations_append_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "e.img", 32 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    let c = ctx(0, 1);
    let other = ctx(2000, 2);
    let w = ino(fs.create(&c, ROOT, b"w", 0o755, NewNode::Dir).unwrap());
    let f = ino(fs.create(&c, w, b"f", 0o644, NewNode::File).unwrap());
    let d = ino(fs.create(&c, w, b"d", 0o755, NewNode::Dir).unwrap());
    fs.create(&c, d, b"inside", 0o644, NewNode::File).unwrap();
    fs.set_log_searches(true);
    fs.sync().unwrap();
    let before = fs.event_range().unwrap().1;

    let err = |r: Result<(), FsError>| r.unwrap_err();
    let unit = |r: vexfs::Result<vexfs::fs::core::Attr>| r.map(|_| ());
    assert!(matches!(
        err(unit(fs.create(&c, w, b"f", 0o644, NewNode::File))),
        FsError::Exists
    ));
    assert!(matches!(
        err(unit(fs.create(&c, w, b"d", 0o755, NewNode::Dir))),
        FsError::Exists
    ));
    let sym = NewNode::Symlink { target: b"" };
    assert!(matches!(
        err(unit(fs.create(&c, w, b"s", 0o777, sym))),
        FsError::NotFound
    ));
    assert!(matches!(
        err(unit(fs.create(&other, w, b"x", 0o644, NewNode::File))),
        FsError::Access
    ));
    assert!(matches!(err(fs.unlink(&c, w, b"missing")), FsError::NotFound));
    assert!(matches!(err(fs.unlink(&c, w, b"d")), FsError::IsDir));
    assert!(matches!(err(fs.rmdir(&c, w, b"d")), FsError::NotEmpty));
    assert!(matches!(err(fs.rmdir(&c, w, b"f")), FsError::NotDir));
    assert!(matches!(err(unit(fs.link(&c, f, w, b"d"))), FsError::Exists));
    assert!(matches!(err(unit(fs.link(&c, d, w, b"d2"))), FsError::NotPermitted));
    assert!(matches!(
        err(fs.rename(&c, w, b"missing", w, b"x", 0)),
        FsError::NotFound
    ));
    assert!(matches!(
        err(fs.rename(&c, w, b"f", w, b"d", RENAME_NOREPLACE)),
        FsError::Exists
    ));
    assert!(matches!(
        err(fs.rename(&c, w, b"f", w, b"nope", RENAME_EXCHANGE)),
        FsError::NotFound
    ));
    assert!(matches!(
        err(fs.rename(&c, w, b"d", d, b"loop", 0)),
        FsError::Invalid(_)
    ));
    let dir_size = SetAttr {
        size: Some(0),
        mode: Some(0o700),
        ..Default::default()
    };
    assert!(matches!(err(unit(fs.setattr(&c, d, &dir_size))), FsError::IsDir));
    let chmod = SetAttr {
        mode: Some(0o777),
        ..Default::default()
    };
    assert!(fs.setattr(&other, f, &chmod).is_err());
    assert!(matches!(
        err(fs.setxattr(&c, f, b"user.k", b"v", XATTR_REPLACE)),
        FsError::NoData
    ));
    assert!(matches!(err(fs.removexattr(&c, f, b"user.k")), FsError::NoData));
    assert!(fs.set_vector(&c, f, "docs", &[1.0; 3]).is_err(), "wrong dimension");
    assert!(fs.set_vector(&c, f, "nope", &[1.0; 8]).is_err(), "unknown collection");
    assert!(fs.set_vector(&c, d, "docs", &[1.0; 8]).is_err(), "a directory");
    assert!(matches!(err(fs.remove_vector(&c, f, "docs")), FsError::NoData));
    let dup = CollectionParams::new("docs", 4, Metric::L2, ElemType::F32);
    assert!(matches!(err(fs.create_collection(&dup).map(|_| ())), FsError::Exists));
    assert!(fs.drop_collection("nope").is_err());
    assert!(fs.write_data(d, 0, b"x").is_err());
    assert!(
        fs.search(&SearchRequest::new("docs", vec![1.0; 8], 0)).is_err(),
        "k = 0"
    );

    fs.sync().unwrap();
    assert_eq!(fs.event_range().unwrap().1, before, "nothing was appended");
    assert_eq!(fs.events_since(before, 100, &Filter::default()).unwrap().events, []);
    // The next event takes the next number: no failed operation used one.
    fs.unlink(&c, w, b"f").unwrap();
    fs.sync().unwrap();
    let got = fs.events_since(before, 100, &Filter::default()).unwrap().events;
    assert_eq!(ops(&got), ["unlink"]);
    assert_eq!(got[0].seq, before);
}

/// Known gap: a logged search that fails (unknown collection, wrong
/// dimension) still appends a `search` event: src/vector/query.rs emits it
/// in its own transaction before the search runs.
#[test]
fn failed_search_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "e.img", 32 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    fs.set_log_searches(true);
    fs.sync().unwrap();
    let before = fs.event_range().unwrap().1;
    assert!(fs.search(&SearchRequest::new("nope", vec![1.0; 8], 3)).is_err());
    assert!(
        fs.search(&SearchRequest::new("docs", vec![1.0; 5], 3)).is_err(),
        "wrong dimension"
    );
    fs.sync().unwrap();
    let got = fs.events_since(before, 100, &Filter::default()).unwrap().events;
    assert_eq!(got, [], "{:?}", got.iter().map(Event::to_json).collect::<Vec<_>>());
}

#[test]
fn sequence_numbers_are_gap_free_across_remounts_and_only_committed_events_show() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "e.img", 32 << 20, false);
    let c = Ctx::root();
    let all = Filter::default();
    let mut want: Vec<String> = Vec::new();
    for round in 0..5u64 {
        let fs = Fs::open(&p, false).unwrap();
        if round > 0 {
            want.push("unmount".into());
        }
        want.push("mount".into());
        let (_, before) = fs.event_range().unwrap();
        assert_eq!(before as usize, want.len(), "the mount event is not committed yet");
        let name = format!("r{round}");
        let f = ino(fs.create(&c, ROOT, name.as_bytes(), 0o644, NewNode::File).unwrap());
        want.push("create".into());
        // Staged, not committed: invisible.
        assert_eq!(fs.event_range().unwrap().1, before);
        let b = fs.events_since(before, 100, &all).unwrap();
        assert_eq!((b.missed, b.events.len(), b.next), (0, 0, before));
        fs.sync().unwrap();
        let b = fs.events_since(before, 100, &all).unwrap();
        assert_eq!(ops(&b.events), ["mount", "create"][..]);
        assert_eq!(b.events[0].aux, round + 1, "mount carries s_mnt_count");
        assert_eq!(b.next, before + 2);
        assert_eq!(fs.event_range().unwrap().1, before + 2);

        let n = fs.event_range().unwrap().1;
        fs.write_data(f, 0, b"data").unwrap();
        want.push("write".into());
        // A waiting (or recently reading) reader gets events committed at once.
        assert!(fs.wait_events(n, Duration::from_secs(5)).unwrap());
        let b = fs.events_since(n, 10, &all).unwrap();
        assert_eq!((ops(&b.events), b.next), (vec!["write".to_string()], n + 1));
        // Nothing new: the wait times out with false.
        let t = Instant::now();
        assert!(!fs.wait_events(n + 1, Duration::from_millis(50)).unwrap());
        assert!(t.elapsed() >= Duration::from_millis(50));

        fs.rename(&c, ROOT, name.as_bytes(), ROOT, b"tmp", 0).unwrap();
        fs.unlink(&c, ROOT, b"tmp").unwrap();
        want.extend(["rename".into(), "unlink".into()]);
        // Dropped without a sync: the unmount commits them.
    }
    let fs = Fs::open(&p, false).unwrap();
    want.extend(["unmount".into(), "mount".into()]);
    fs.sync().unwrap();
    let (oldest, next) = fs.event_range().unwrap();
    assert_eq!((oldest, next as usize), (1, want.len() + 1));
    let (missed, got) = read_all(&fs, 1, &all);
    assert_eq!(missed, 0);
    assert_gap_free(&got, 1);
    assert_eq!(ops(&got), want);
    let mounts: Vec<u64> = got.iter().filter(|e| e.op == Op::Mount as u16).map(|e| e.aux).collect();
    assert_eq!(mounts, [1, 2, 3, 4, 5, 6]);
    drop(fs);
    let (o, n, dropped) = disk_header(&p);
    assert_eq!((o, n, dropped), (1, next + 1, 0), "the header after a clean unmount");
    assert_fsck_clean(&p);
}

/// Expected (op, name) of event `seq` in the wrap-around workload.
fn wrap_event(seq: u64) -> (u16, String) {
    match seq {
        1 => (Op::Mount as u16, String::new()),
        s if s % 2 == 0 => (Op::Create as u16, format!("f{}", (s - 2) / 2)),
        s => (Op::Unlink as u16, format!("f{}", (s - 3) / 2)),
    }
}

#[test]
fn a_wrapped_ring_reports_exactly_the_missed_events() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_ring_image(dir.path(), 32 << 20, 16);
    let fs = Fs::open(&p, false).unwrap();
    let c = Ctx::root();
    for i in 0..1000 {
        let name = format!("f{i}");
        fs.create(&c, ROOT, name.as_bytes(), 0o644, NewNode::File).unwrap();
        fs.unlink(&c, ROOT, name.as_bytes()).unwrap();
        if i % 300 == 299 {
            fs.sync().unwrap();
        }
    }
    fs.sync().unwrap();
    let (oldest, next) = fs.event_range().unwrap();
    assert_eq!(next, 2002);
    // Names of 2..=4 bytes: 96-byte records, 42 to a block; the ring keeps
    // 14 full blocks and the head.
    let held = next - oldest;
    assert!((14 * 42 + 1..=15 * 42).contains(&held), "held {held} (oldest {oldest})");
    let all = Filter::default();

    let b = fs.events_since(1, 10, &all).unwrap();
    assert_eq!(b.missed, oldest - 1);
    assert_eq!(b.events[0].seq, oldest);
    assert_eq!(b.next, oldest + 10);
    let (missed, got) = read_all(&fs, 1, &all);
    assert_eq!(missed, oldest - 1);
    assert_eq!(got.len() as u64, held);
    assert_gap_free(&got, oldest);
    for e in &got {
        assert_eq!((e.op, String::from_utf8(e.name.clone()).unwrap()), wrap_event(e.seq));
    }
    // A reader inside the ring misses nothing, from any position.
    for w in [oldest, oldest + 1, oldest + 41, oldest + 42, oldest + 300, next - 1] {
        let b = fs.events_since(w, 5, &all).unwrap();
        assert_eq!(b.missed, 0);
        assert_eq!(b.events.first().map(|e| e.seq), Some(w), "from {w}");
        assert_gap_free(&b.events, w);
    }
    let b = fs.events_since(next, 5, &all).unwrap();
    assert_eq!((b.missed, b.events.len(), b.next), (0, 0, next));
    drop(fs);

    let (o, n, dropped) = disk_header(&p);
    assert_eq!(n, next + 1, "plus the unmount");
    assert_eq!(dropped, o - 1, "every event below the oldest was dropped, and counted");
    assert_fsck_clean(&p);
    let fs = Fs::open(&p, false).unwrap();
    fs.sync().unwrap();
    let (oldest2, next2) = fs.event_range().unwrap();
    assert_eq!(next2, next + 2);
    let (missed, got) = read_all(&fs, 1, &all);
    assert_eq!(missed, oldest2 - 1);
    assert_gap_free(&got, oldest2);
    assert_eq!(ops(&got[got.len() - 2..]), ["unmount", "mount"]);
    drop(fs);
    assert_fsck_clean(&p);
}

#[test]
fn maximum_size_records_pack_six_to_a_block_and_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_ring_image(dir.path(), 32 << 20, 16);
    let fs = Fs::open(&p, false).unwrap();
    let c = Ctx::root();
    let target = vec![b't'; 300];
    for i in 0..200 {
        let name = format!("{i:0>255}");
        let a = fs
            .create(&c, ROOT, name.as_bytes(), 0o777, NewNode::Symlink { target: &target })
            .unwrap();
        assert_eq!(a.size, 300);
    }
    fs.sync().unwrap();
    let (oldest, next) = fs.event_range().unwrap();
    assert_eq!(next, 202);
    // 88 + 255 + 255 = 598 -> 600 bytes: 6 records to a block.
    let held = next - oldest;
    assert!((14 * 6 + 1..=15 * 6).contains(&held), "held {held} (oldest {oldest})");
    let (missed, got) = read_all(&fs, 1, &Filter::default());
    assert_eq!(missed, oldest - 1);
    assert_gap_free(&got, oldest);
    for e in &got {
        let i = e.seq - 2;
        assert_eq!(e.name, format!("{i:0>255}").into_bytes());
        assert_eq!(
            (e.name2.len(), e.aux),
            (255, 300),
            "name2 is the first 255 bytes of the target"
        );
    }
    drop(fs);
    let (o, _, dropped) = disk_header(&p);
    assert_eq!(dropped, o - 1);
    assert_fsck_clean(&p);
}

#[test]
fn followers_see_every_event_in_order() {
    const WRITERS: usize = 8;
    const CYCLES: usize = 70; // create, rename, unlink: 210 operations each
    let dir = tempfile::tempdir().unwrap();
    let p = make_ring_image(dir.path(), 32 << 20, 256);
    let fs = Arc::new(Fs::open(&p, false).unwrap());
    let c = Ctx::root();
    let shared = ino(fs.create(&c, ROOT, b"shared", 0o777, NewNode::Dir).unwrap());
    fs.sync().unwrap();
    let (_, start) = fs.event_range().unwrap();
    let total = (WRITERS * CYCLES * 3) as u64;
    let target = start + total;

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let fs = Arc::clone(&fs);
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                let (mut w, mut seen) = (start, Vec::new());
                while w < target {
                    assert!(Instant::now() < deadline, "reader stuck at {w}");
                    fs.wait_events(w, Duration::from_millis(200)).unwrap();
                    let b = fs.events_since(w, 1000, &Filter::default()).unwrap();
                    assert_eq!(b.missed, 0);
                    assert_gap_free(&b.events, w);
                    assert_eq!(b.next, w + b.events.len() as u64);
                    w = b.next;
                    seen.extend(b.events);
                }
                seen
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let fs = Arc::clone(&fs);
            std::thread::spawn(move || {
                let c = ctx(0, 100 + t as u32);
                for i in 0..CYCLES {
                    let (a, b) = (format!("t{t}_{i}"), format!("u{t}_{i}"));
                    fs.create(&c, shared, a.as_bytes(), 0o644, NewNode::File).unwrap();
                    fs.rename(&c, shared, a.as_bytes(), shared, b.as_bytes(), 0).unwrap();
                    fs.unlink(&c, shared, b.as_bytes()).unwrap();
                }
            })
        })
        .collect();
    for h in writers {
        h.join().unwrap();
    }
    let seen: Vec<Vec<Event>> = readers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(seen[0], seen[1], "both readers saw the same events");
    let seen = &seen[0];
    assert_eq!(seen.len() as u64, total);
    assert_gap_free(seen, start);
    fs.sync().unwrap();
    assert_eq!(
        fs.event_range().unwrap().1,
        target,
        "nothing beyond what the writers did"
    );
    // Each writer's events appear in its program order, with its pid.
    for t in 0..WRITERS {
        let mine: Vec<&Event> = seen.iter().filter(|e| e.pid == 100 + t as u32).collect();
        assert_eq!(mine.len(), CYCLES * 3);
        for (i, ev) in mine.chunks(3).enumerate() {
            let (a, b) = (format!("t{t}_{i}").into_bytes(), format!("u{t}_{i}").into_bytes());
            let f = ev[0].ino;
            let want = [
                Event::new(Op::Create, f).with_name(shared, &a).with_aux(0o100644),
                Event::new(Op::Rename, f)
                    .with_name(shared, &a)
                    .with_second(0, shared, &b),
                Event::new(Op::Unlink, f).with_name(shared, &b),
            ];
            for (g, w) in ev.iter().zip(want) {
                assert_eq!(strip(g), by(w, &ctx(0, 100 + t as u32)));
            }
        }
    }
    drop(fs);
    assert_fsck_clean(&p);
}

#[test]
fn filters_by_operation_and_subtree() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "e.img", 32 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    let c = Ctx::root();
    fs.sync().unwrap();
    let (_, start) = fs.event_range().unwrap();
    let a = ino(fs.create(&c, ROOT, b"a", 0o755, NewNode::Dir).unwrap());
    let b = ino(fs.create(&c, ROOT, b"b", 0o755, NewNode::Dir).unwrap());
    let sub = ino(fs.create(&c, a, b"sub", 0o755, NewNode::Dir).unwrap());
    let x = ino(fs.create(&c, a, b"x", 0o644, NewNode::File).unwrap());
    let y = ino(fs.create(&c, sub, b"y", 0o644, NewNode::File).unwrap());
    let z = ino(fs.create(&c, b, b"z", 0o644, NewNode::File).unwrap());
    let k = ino(fs.create(&c, a, b"kept", 0o644, NewNode::File).unwrap());
    fs.write_data(k, 0, b"in a").unwrap();
    fs.write_data(z, 0, b"in b").unwrap();
    fs.unlink(&c, a, b"x").unwrap();
    fs.unlink(&c, b, b"z").unwrap();
    fs.rename(&c, sub, b"y", b, b"y", 0).unwrap();
    fs.unlink(&c, b, b"y").unwrap();
    let m = ino(fs.create(&c, b, b"m", 0o644, NewNode::File).unwrap());
    fs.rename(&c, b, b"m", a, b"m", 0).unwrap();
    fs.sync().unwrap();
    let end = fs.event_range().unwrap().1;

    let unlink = Op::code_of("unlink").unwrap();
    assert_eq!(unlink, Op::Unlink as u16);
    assert_eq!(Op::code_of("no such op"), None);
    let only_unlink = Filter {
        ops: vec![unlink],
        subtree: None,
    };
    let batch = fs.events_since(start, 100, &only_unlink).unwrap();
    assert_eq!(batch.next, end, "filtered-out events are passed over");
    let got: Vec<(u64, u64)> = batch.events.iter().map(|e| (e.ino, e.parent)).collect();
    assert_eq!(got, [(x, a), (z, b), (y, b)]);

    let under_a = Filter {
        ops: vec![],
        subtree: Some("/a".into()),
    };
    let (_, got) = read_all(&fs, start, &under_a);
    let names: Vec<(String, String)> = got
        .iter()
        .map(|e| {
            (
                ops(std::slice::from_ref(e))[0].clone(),
                String::from_utf8_lossy(&e.name).into(),
            )
        })
        .collect();
    let want = [
        ("mkdir", "sub"),
        ("create", "x"),
        ("create", "y"),
        ("create", "kept"),
        ("write", ""),
        ("unlink", "x"),
        ("rename", "y"),
        ("rename", "m"),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(o, n)| (o.to_string(), n.to_string())).collect();
    assert_eq!(names, want);
    assert_eq!(got[4].ino, k, "a write is placed by its inode");

    let both = Filter {
        ops: vec![unlink, Op::Rename as u16],
        subtree: Some("/a/".into()),
    };
    let got = fs.events_since(start, 100, &both).unwrap().events;
    assert_eq!(
        got.iter().map(|e| e.ino).collect::<Vec<_>>(),
        [x, y, m],
        "renames out of and into /a"
    );
    let under_b = Filter {
        ops: vec![],
        subtree: Some("/b".into()),
    };
    let got = fs.events_since(start, 100, &under_b).unwrap().events;
    // Events without a directory are placed by their inode as it is now:
    // the write to z, deleted since, cannot be placed and is left out.
    assert_eq!(ops(&got), ["create", "unlink", "rename", "unlink", "create", "rename"]);
    assert_eq!(got.iter().map(|e| e.ino).collect::<Vec<_>>(), [z, z, y, y, m, m]);
    let root = Filter {
        ops: vec![],
        subtree: Some("/".into()),
    };
    assert_eq!(
        fs.events_since(start, 100, &root).unwrap().events.len() as u64,
        end - start
    );
    let missing = Filter {
        ops: vec![],
        subtree: Some("/nope".into()),
    };
    assert!(fs.events_since(start, 100, &missing).is_err());
}

#[test]
fn events_off_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "e.img", 32 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    let c = Ctx::root();
    fs.sync().unwrap();
    let (_, before) = fs.event_range().unwrap();

    // A staged event stays invisible when events are switched off, and
    // shows after the commit.
    fs.create(&c, ROOT, b"staged", 0o644, NewNode::File).unwrap();
    fs.set_events(false).unwrap();
    assert_eq!(
        fs.event_range().unwrap().1,
        before,
        "set_events must not publish staged events"
    );
    assert_eq!(fs.events_since(before, 10, &Filter::default()).unwrap().events, []);
    fs.sync().unwrap();
    let got = fs.events_since(before, 10, &Filter::default()).unwrap().events;
    assert_eq!(ops(&got), ["create"]);
    let before = before + 1;

    let f = ino(fs.create(&c, ROOT, b"f", 0o644, NewNode::File).unwrap());
    fs.write_data(f, 0, b"x").unwrap();
    fs.setxattr(&c, f, b"user.k", b"v", 0).unwrap();
    fs.set_vector(&c, f, "docs", &[1.0; 8]).unwrap();
    fs.set_log_searches(true);
    fs.search(&SearchRequest::new("docs", vec![1.0; 8], 1)).unwrap();
    fs.rename(&c, ROOT, b"f", ROOT, b"g", 0).unwrap();
    fs.unlink(&c, ROOT, b"g").unwrap();
    fs.sync().unwrap();
    assert_eq!(fs.event_range().unwrap().1, before);
    assert_eq!(fs.events_since(before, 10, &Filter::default()).unwrap().events, []);

    fs.set_events(true).unwrap();
    fs.set_log_searches(false);
    fs.create(&c, ROOT, b"on", 0o644, NewNode::File).unwrap();
    fs.sync().unwrap();
    let got = fs.events_since(before, 10, &Filter::default()).unwrap().events;
    assert_eq!(ops(&got), ["create"]);
    assert_eq!(got[0].seq, before, "numbering resumes without a gap");
    drop(fs);
    assert_fsck_clean(&p);
}

#[test]
fn staged_drops_never_move_a_reader_past_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_ring_image(dir.path(), 32 << 20, 16);
    let fs = Fs::open(&p, false).unwrap();
    let c = Ctx::root();
    fs.sync().unwrap();
    let (_, committed) = fs.event_range().unwrap();
    // Far more events than the ring holds, in one uncommitted batch.
    for i in 0..1000 {
        let name = format!("f{i}");
        fs.create(&c, ROOT, name.as_bytes(), 0o644, NewNode::File).unwrap();
        fs.unlink(&c, ROOT, name.as_bytes()).unwrap();
    }
    let (oldest, next) = fs.event_range().unwrap();
    assert_eq!(next, committed, "nothing committed yet");
    assert!(oldest <= next, "event_range {oldest}..{next}");
    let b = fs.events_since(1, 10, &Filter::default()).unwrap();
    // The committed mount event was dropped by the staged appends: missed.
    let want = (committed - 1, 0, committed);
    assert_eq!(
        (b.missed, b.events.len(), b.next),
        want,
        "positions stay within the commit"
    );
    fs.sync().unwrap();
    let (oldest, next) = fs.event_range().unwrap();
    assert_eq!(next, 2002);
    assert!(oldest > committed, "the ring wrapped");
    let (missed, got) = read_all(&fs, 1, &Filter::default());
    assert_eq!(missed, oldest - 1);
    assert_gap_free(&got, oldest);
}

#[test]
fn a_read_only_open_reads_committed_events() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "e.img", 32 << 20, false);
    let fs = Fs::open(&p, false).unwrap();
    fs.create(&Ctx::root(), ROOT, b"f", 0o644, NewNode::File).unwrap();
    drop(fs);
    let fs = Fs::open(&p, true).unwrap();
    assert_eq!(fs.event_range().unwrap(), (1, 4));
    let (_, got) = read_all(&fs, 1, &Filter::default());
    assert_eq!(ops(&got), ["mount", "create", "unmount"]);
    assert!(!fs.wait_events(4, Duration::from_millis(20)).unwrap());
    assert!(fs.create(&Ctx::root(), ROOT, b"g", 0o644, NewNode::File).is_err());
}

#[test]
fn a_damaged_ring_header_leaves_the_rest_usable() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_image(dir.path(), "d.img", 32 << 20, false);
    let start = vexfs::image::Image::open(&p, vexfs::image::Mode::ReadOnly)
        .unwrap()
        .geometry()
        .events
        .start;
    flip(&p, start * 4096 + 20, 0x40); // er_next_seq: the checksum no longer matches
    let fs = Fs::open(&p, false).expect("the image still mounts");
    let c = Ctx::root();
    let f = fs.create(&c, ROOT, b"ok", 0o644, NewNode::File).unwrap();
    fs.write_data(f.ino.into(), 0, b"data").unwrap();
    fs.sync().unwrap();
    assert_eq!(fs.read_data(f.ino.into(), 0, 10).unwrap(), b"data");
    drop(fs);
    let r = fsck(&p).unwrap();
    assert!(
        r.problems.iter().any(|p| p.to_string().contains("event ring")),
        "{:?}",
        r.problems
    );
}
