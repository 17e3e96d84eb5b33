//! Semantic events through the core: the exact sequence each operation
//! produces, positions across remounts, wrap-around, followers.

mod common;

use common::*;
use vexfs::events::{Event, Filter};
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;

const ROOT: u64 = 1;

fn ops(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.to_json()["op"].as_str().unwrap().to_string()).collect()
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
