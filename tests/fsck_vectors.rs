//! fsck's HNSW and vector-ownership checks (src/check/vectors/): a built
//! collection is clean, and each kind of damage, sealed with a valid
//! checksum so only the graph rules can catch it, is reported exactly.

mod common;

use common::*;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use vexfs::check::Report;
use vexfs::format::checksum::csum_skipping;
use vexfs::format::inode::{seal_inode, InodeBase, InodeExt, InodeNo, VECTOR_FL};
use vexfs::format::vector::{collection_header_checksum, ElemType, Metric, NODE_DELETED};
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::fs::txn::Txn;
use vexfs::image::{Image, Mode};
use vexfs::read::Mapping;
use vexfs::vector::store::Collection;
use vexfs::vector::{catalog_io, CollectionParams};

const ROOT: u64 = 1;
const N: usize = 200;

/// The i-th test vector: deterministic, spread over a 4-d box.
fn vector(i: usize) -> Vec<f32> {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..4)
        .map(|_| {
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (x >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

struct Built {
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// Inode of file f{i}.
    inos: Vec<u32>,
}

/// An image with collection "t" and one file per vector; `then` runs on
/// the mounted filesystem before it is synced and closed.
fn build(then: impl FnOnce(&Fs, &[u32])) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let path = make_image(dir.path(), "v.img", 32 << 20, false);
    let fs = Fs::open(&path, false).unwrap();
    // 60 list bytes: 96-byte records, so some straddle a block boundary and
    // the helpers below must patch them piece by piece.
    let mut params = CollectionParams::new("t", 4, Metric::L2, ElemType::F32);
    params.list_bytes = Some(60);
    fs.create_collection(&params).unwrap();
    let ctx = Ctx::root();
    let mut inos = Vec::new();
    for i in 0..N {
        let f = fs
            .create(&ctx, ROOT, format!("f{i}").as_bytes(), 0o644, NewNode::File)
            .unwrap();
        fs.set_vector(&ctx, f.ino.into(), "t", &vector(i)).unwrap();
        inos.push(f.ino);
    }
    then(&fs, &inos);
    fs.sync().unwrap();
    drop(fs);
    Built { _dir: dir, path, inos }
}

/// Collection "t" as loaded from the image, with the checksum seed.
fn collection(path: &Path) -> (Collection, Option<u32>) {
    let img = Image::open(path, Mode::ReadOnly).unwrap();
    let g = img.geometry();
    let txn = Txn::read_only(img.file().bytes(), g.blocks_count);
    let cat = catalog_io::read(&txn, g).unwrap().unwrap();
    let rec = cat.records.iter().find(|r| r.name == "t").unwrap();
    (Collection::load(&txn, g, rec).unwrap(), g.csum_seed)
}

fn read_at(path: &Path, off: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    std::fs::File::open(path).unwrap().read_exact_at(&mut b, off).unwrap();
    b
}

fn write_at(path: &Path, off: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

/// Node records read, changed by `f`, resealed and written back.
struct Nodes {
    path: PathBuf,
    coll: Collection,
    seed: Option<u32>,
    /// The upper file's extent map.
    upper_map: Vec<Mapping>,
}

impl Nodes {
    fn open(path: &Path) -> Nodes {
        let (coll, seed) = collection(path);
        let img = Image::open(path, Mode::ReadOnly).unwrap();
        let upper = coll.upper_ino.unwrap();
        let upper_map = img.mappings(upper, &img.inode(upper).unwrap()).unwrap();
        Nodes {
            path: path.to_path_buf(),
            coll,
            seed,
            upper_map,
        }
    }

    /// Slot `s`'s record, read piece by piece: a packed record may
    /// straddle two blocks that are not adjacent in the image.
    fn record(&self, s: u32) -> Vec<u8> {
        let mut rec = Vec::new();
        for (at, len) in self.coll.record_pieces(s) {
            rec.extend(read_at(&self.path, at, len));
        }
        rec
    }

    fn edit(&self, s: u32, f: impl FnOnce(&mut Vec<u8>)) {
        let mut rec = self.record(s);
        f(&mut rec);
        if let Some(seed) = self.seed {
            let c = csum_skipping(seed, s.into(), &rec, 16);
            rec[16..20].copy_from_slice(&c.to_le_bytes());
        }
        let mut done = 0;
        for (at, len) in self.coll.record_pieces(s) {
            write_at(&self.path, at, &rec[done..done + len]);
            done += len;
        }
    }

    fn flags(&self, s: u32) -> u8 {
        self.record(s)[5]
    }

    fn level(&self, s: u32) -> u8 {
        self.record(s)[4]
    }

    fn owner(&self, s: u32) -> u32 {
        u32::from_le_bytes(self.record(s)[0..4].try_into().unwrap())
    }

    fn list(&self, s: u32) -> Vec<u32> {
        let rec = self.record(s);
        let at = self.coll.geo.adj_offset as usize;
        let len = usize::from(u16::from_le_bytes([rec[6], rec[7]]));
        self.coll
            .coding
            .iter(&rec[at..at + len], self.coll.slots(), 0)
            .map(|r| r.unwrap())
            .collect()
    }

    fn set_list(&self, s: u32, ids: &[u32]) {
        let (at, cap) = (self.coll.geo.adj_offset as usize, self.coll.geo.adj_capacity as usize);
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        self.edit(s, |rec| {
            rec[at..at + cap].fill(0);
            let len = self
                .coll
                .coding
                .encode(&sorted, &mut rec[at..at + cap])
                .expect("list fits");
            rec[6..8].copy_from_slice(&(len as u16).to_le_bytes());
        });
    }

    /// A level-0 slot, not the entry point, that other lists name.
    fn victim(&self) -> u32 {
        let entry = self.coll.header.ch_entry_slot.get() as u32;
        (0..self.coll.slots() as u32)
            .find(|&s| s != entry && self.level(s) == 0 && self.named_by(s).len() >= 2)
            .unwrap()
    }

    /// Slots whose level-0 list names `s`.
    fn named_by(&self, s: u32) -> Vec<u32> {
        (0..self.coll.slots() as u32)
            .filter(|&v| self.list(v).contains(&s))
            .collect()
    }

    /// Image offset and index of the upper record holding `s`'s list at `level`.
    fn upper_at(&self, s: u32, level: u8) -> (u64, u32) {
        let rec = self.record(s);
        let r = u32::from_le_bytes(rec[8..12].try_into().unwrap()) + u32::from(level) - 1;
        let stride = self.coll.upper_stride() as u64;
        let (l, off) = (u64::from(r) / (4096 / stride), u64::from(r) % (4096 / stride) * stride);
        let m = self
            .upper_map
            .iter()
            .find(|m| (m.logical..m.logical + m.len).contains(&l))
            .unwrap();
        ((m.physical + l - m.logical) * 4096 + off, r)
    }

    /// Change `s`'s upper record at `level` with `f`, resealing it.
    fn edit_upper(&self, s: u32, level: u8, f: impl FnOnce(&mut Vec<u8>)) {
        let (at, r) = self.upper_at(s, level);
        let mut rec = read_at(&self.path, at, self.coll.upper_stride());
        f(&mut rec);
        if let Some(seed) = self.seed {
            let c = csum_skipping(seed, r.into(), &rec, 8);
            rec[8..12].copy_from_slice(&c.to_le_bytes());
        }
        write_at(&self.path, at, &rec);
    }

    /// Rewrite the collection header after `f` changes it.
    fn edit_header(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let img = Image::open(&self.path, Mode::ReadOnly).unwrap();
        let ino = InodeNo::new(self.coll.record.node_ino, img.geometry().inodes_count).unwrap();
        let block = img.mappings(ino, &img.inode(ino).unwrap()).unwrap()[0].physical;
        drop(img);
        let at = block * 4096;
        let mut h = read_at(&self.path, at, 88);
        f(&mut h);
        if let Some(seed) = self.seed {
            let c = collection_header_checksum(&h, self.coll.record.node_ino, seed);
            h[84..88].copy_from_slice(&c.to_le_bytes());
        }
        write_at(&self.path, at, &h);
    }
}

fn report(path: &Path) -> Report {
    fsck(path).expect("the image opens")
}

fn lines(r: &Report) -> Vec<String> {
    r.problems.iter().map(|p| p.to_string()).collect()
}

/// Every `want` is a problem line (exactly), with nothing else unless `only` is false.
fn assert_reports(path: &Path, want: &[String], only: bool) {
    let got = lines(&report(path));
    for w in want {
        assert!(got.contains(w), "missing '{w}' in {got:#?}");
    }
    if only {
        assert_eq!(got.len(), want.len(), "unexpected problems: {got:#?}");
    }
}

#[test]
fn a_built_collection_is_clean() {
    let b = build(|_, _| {});
    let r = report(&b.path);
    assert!(r.is_clean(), "{:#?}", r.problems);
    let n = Nodes::open(&b.path);
    assert_eq!(n.coll.count(), N as u64);
}

#[test]
fn deletes_unlinks_and_replacements_stay_clean() {
    let b = build(|fs, inos| {
        let ctx = Ctx::root();
        for i in (0..N).step_by(7) {
            fs.remove_vector(&ctx, inos[i].into(), "t").unwrap();
        }
        for i in (3..N).step_by(11) {
            fs.unlink(&ctx, ROOT, format!("f{i}").as_bytes()).unwrap();
        }
        for i in (5..N).step_by(13) {
            let _ = fs.set_vector(&ctx, inos[i].into(), "t", &vector(i + 1000));
        }
    });
    let r = report(&b.path);
    assert!(r.is_clean(), "{:#?}", r.problems);
}

#[test]
fn replacing_the_entry_points_vector_stays_clean() {
    let b = build(|fs, inos| {
        // Slots of a fresh collection are allocated in creation order.
        let entry = fs.collection("t").unwrap().header.ch_entry_slot.get() as usize;
        fs.set_vector(&Ctx::root(), inos[entry].into(), "t", &vector(entry + 5000))
            .unwrap();
    });
    let r = report(&b.path);
    assert!(r.is_clean(), "{:#?}", r.problems);
}

#[test]
fn a_live_node_marked_free_is_reported_from_every_side() {
    let b = build(|_, _| {});
    let n = Nodes::open(&b.path);
    let x = n.victim();
    let (owner, by) = (n.owner(x), n.named_by(x));
    n.edit(x, |r| r[5] = 0);
    let mut want = vec![
        "collection 't': ch_count is 200 but 199 slots are NODE_LIVE".to_string(),
        format!("collection 't', slot {x}: n_flags 0 (free) but not on the free-slot chain (ch_free_head)"),
        format!("inode {owner}: i_vector_slot: slot {x} of collection 't' has n_flags 0x0, not NODE_LIVE"),
    ];
    for v in by {
        want.push(format!(
            "collection 't', slot {v}: level-0 list names slot {x}, which is free (n_flags 0)"
        ));
    }
    assert_reports(&b.path, &want, true);
}

#[test]
fn a_live_node_marked_deleted_while_its_owner_refers_to_it() {
    let b = build(|_, _| {});
    let n = Nodes::open(&b.path);
    let x = n.victim();
    let owner = n.owner(x);
    n.edit(x, |r| r[5] = NODE_DELETED);
    let want = [
        "collection 't': ch_count is 200 but 199 slots are NODE_LIVE".to_string(),
        format!("collection 't', slot {x}: NODE_DELETED but n_owner_ino {owner} still refers to it"),
        format!("inode {owner}: i_vector_slot: slot {x} of collection 't' has n_flags 0x2, not NODE_LIVE"),
    ];
    assert_reports(&b.path, &want, true);
}

#[test]
fn a_node_no_list_names_is_unreachable() {
    let b = build(|_, _| {});
    let n = Nodes::open(&b.path);
    let x = n.victim();
    for v in n.named_by(x) {
        let ids: Vec<u32> = n.list(v).into_iter().filter(|&i| i != x).collect();
        n.set_list(v, &ids);
    }
    let entry = n.coll.header.ch_entry_slot.get();
    let want = [format!(
        "collection 't', slot {x}: NODE_LIVE but not reachable from ch_entry_slot {entry} along level-0 lists"
    )];
    assert_reports(&b.path, &want, true);
}

#[test]
fn self_edges_and_oversized_lists_are_reported() {
    let b = build(|_, _| {});
    let n = Nodes::open(&b.path);
    let x = n.victim();
    let mut ids = n.list(x);
    ids.push(x);
    n.set_list(x, &ids);
    let y = (0..N as u32).find(|&s| s != x && n.level(s) == 0).unwrap();
    let mut many = n.list(y);
    let extra: Vec<u32> = (0..N as u32).filter(|&s| s != y && !many.contains(&s)).collect();
    many.extend(&extra[..33 - many.len()]);
    n.set_list(y, &many);
    let want = [
        format!("collection 't', slot {x}: level-0 list names the node itself"),
        format!("collection 't', slot {y}: level-0 list holds 33 ids, more than 2*M = 32"),
    ];
    assert_reports(&b.path, &want, true);
}

#[test]
fn header_counters_and_entry_point_are_checked() {
    let b = build(|_, _| {});
    let n = Nodes::open(&b.path);
    let entry = n.coll.header.ch_entry_slot.get();
    let top = n.coll.header.ch_max_level.get();
    n.edit_header(|h| {
        h[32..40].copy_from_slice(&(N as u64 - 1).to_le_bytes());
        h[64..68].copy_from_slice(&(top + 1).to_le_bytes());
    });
    let want = [
        "collection 't': ch_count is 199 but 200 slots are NODE_LIVE".to_string(),
        format!(
            "collection 't', slot {entry}: ch_entry_slot with n_level {top} but ch_max_level is {}",
            top + 1
        ),
        format!(
            "collection 't': ch_max_level is {} but the highest live n_level is {top}",
            top + 1
        ),
    ];
    assert_reports(&b.path, &want, true);
}

#[test]
fn a_free_chain_cycle_is_reported() {
    let b = build(|fs, inos| fs.remove_vector(&Ctx::root(), inos[10].into(), "t").unwrap());
    let n = Nodes::open(&b.path);
    let d = (0..N as u32).find(|&s| n.flags(s) == NODE_DELETED).unwrap();
    n.edit(d, |r| {
        r[5] = 0;
        r[12..16].copy_from_slice(&(d + 1).to_le_bytes());
    });
    n.edit_header(|h| h[48..56].copy_from_slice(&(u64::from(d) + 1).to_le_bytes()));
    let want = [format!(
        "collection 't', slot {d}, n_next_free: is {}: slot {d} is already on the chain (a cycle)",
        d + 1
    )];
    // Stale edges into d (allowed while it was deleted) now name a free slot.
    assert_reports(&b.path, &want, false);
    let got = lines(&report(&b.path));
    assert!(
        got.iter()
            .all(|l| l == &want[0] || l.contains(&format!("names slot {d}, which is free"))),
        "{got:#?}"
    );
}

#[test]
fn owners_must_match_from_both_sides() {
    let b = build(|_, _| {});
    let n = Nodes::open(&b.path);
    let x = n.victim();
    let (owner, other) = (n.owner(x), b.inos[(x as usize + 1) % N]);
    n.edit(x, |r| r[0..4].copy_from_slice(&other.to_le_bytes()));
    let want = [
        format!("collection 't', slot {x}: NODE_LIVE but n_owner_ino {other} does not refer to it"),
        format!("inode {owner}: i_vector_slot: slot {x} of collection 't' has n_owner_ino {other}"),
    ];
    assert_reports(&b.path, &want, true);
}

/// Change inode `n` with `f` (on its raw bytes) and reseal it.
fn edit_inode(path: &Path, n: u32, f: impl FnOnce(&mut [u8])) {
    let g = Image::open(path, Mode::ReadOnly).unwrap().geometry().clone();
    let at = g.inode_offset(InodeNo::new(n, g.inodes_count).unwrap());
    let mut ino = read_at(path, at, g.inode_size);
    f(&mut ino);
    if let Some(seed) = g.csum_seed {
        seal_inode(&mut ino, n, seed);
    }
    write_at(path, at, &ino);
}

#[test]
fn vector_fl_must_match_the_attachments() {
    let b = build(|_, _| {});
    let n = Nodes::open(&b.path);
    let x = n.victim();
    let owner = n.owner(x);
    let flags_at = std::mem::offset_of!(InodeBase, i_flags);
    edit_inode(&b.path, owner, |ino| {
        let flags = u32::from_le_bytes(ino[flags_at..flags_at + 4].try_into().unwrap()) & !VECTOR_FL;
        ino[flags_at..flags_at + 4].copy_from_slice(&flags.to_le_bytes());
    });
    let want = [
        format!("inode {owner}: 1 vector attachment(s) but VECTOR_FL is clear"),
        format!("collection 't', slot {x}: NODE_LIVE but n_owner_ino {owner} does not refer to it"),
    ];
    assert_reports(&b.path, &want, true);
}

#[test]
fn dangling_inode_references_are_reported() {
    let b = build(|_, _| {});
    let n = Nodes::open(&b.path);
    let x = n.victim();
    let owner = n.owner(x);
    // The large-inode extension starts at byte 112 (format-spec/05 §5.3).
    let coll_at = 112 + std::mem::offset_of!(InodeExt, i_vector_coll);
    let slot_at = 112 + std::mem::offset_of!(InodeExt, i_vector_slot);
    edit_inode(&b.path, owner, |ino| {
        ino[coll_at..coll_at + 4].copy_from_slice(&99u32.to_le_bytes())
    });
    let want = [
        format!("inode {owner}: i_vector_coll 99 names no collection"),
        format!("collection 't', slot {x}: NODE_LIVE but n_owner_ino {owner} does not refer to it"),
    ];
    assert_reports(&b.path, &want, true);
    edit_inode(&b.path, owner, |ino| {
        ino[coll_at..coll_at + 4].copy_from_slice(&(n.coll.record.id + 1).to_le_bytes());
        ino[slot_at..slot_at + 8].copy_from_slice(&(N as u64 + 7).to_le_bytes());
    });
    let want = [
        format!(
            "inode {owner}: i_vector_slot: slot {} of collection 't' is past ch_slots {N}",
            N + 7
        ),
        format!("collection 't', slot {x}: NODE_LIVE but n_owner_ino {owner} does not refer to it"),
    ];
    assert_reports(&b.path, &want, true);
}

#[test]
fn upper_lists_are_checked_against_levels_and_owners() {
    let b = build(|_, _| {});
    let n = Nodes::open(&b.path);
    let a = (0..N as u32).find(|&s| n.level(s) >= 1).unwrap();
    let z = (0..N as u32).find(|&s| n.level(s) == 0).unwrap();
    let (slots, coding) = (n.coll.slots(), n.coll.coding);
    n.edit_upper(a, 1, |rec| {
        let len = usize::from(u16::from_le_bytes([rec[6], rec[7]]));
        let mut ids: Vec<u32> = coding.iter(&rec[16..16 + len], slots, 0).map(|r| r.unwrap()).collect();
        ids.push(z);
        ids.sort_unstable();
        rec[16..].fill(0);
        let len = coding.encode(&ids, &mut rec[16..]).unwrap();
        rec[6..8].copy_from_slice(&(len as u16).to_le_bytes());
    });
    let want = [format!(
        "collection 't', slot {a}: level-1 list names slot {z}, whose n_level 0 is below 1"
    )];
    assert_reports(&b.path, &want, true);

    n.edit_upper(a, 1, |rec| rec[0..4].copy_from_slice(&(a + 1).to_le_bytes()));
    let got = lines(&report(&b.path));
    assert_eq!(got.len(), 1, "{got:#?}");
    let want = format!("u_slot expected {a:#x}, found {:#x}", a + 1);
    assert!(got[0].starts_with(&format!("collection 't', slot {a}: level-1 list: corrupt upper record")));
    assert!(got[0].ends_with(&want), "{got:#?}");
}

#[test]
fn header_counts_must_fit_the_files() {
    let b = build(|_, _| {});
    let n = Nodes::open(&b.path);
    n.edit_header(|h| h[40..48].copy_from_slice(&1_000_000u64.to_le_bytes()));
    let got = lines(&report(&b.path));
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].starts_with("collection 't': ch_slots 1000000 end at byte "),
        "{got:#?}"
    );
    assert!(got[0].contains("of the node file, past i_size"), "{got:#?}");

    let uppers = n.coll.header.ch_upper_records.get();
    assert!(uppers > 0);
    n.edit_header(|h| {
        h[40..48].copy_from_slice(&(N as u64).to_le_bytes());
        h[68..72].fill(0);
    });
    let got = lines(&report(&b.path));
    assert!(
        got.iter()
            .any(|l| l.contains("ch_upper_ino expected non-zero, found 0x0")),
        "{got:#?}"
    );
}

/// A packed collection's list bytes come from its header (format-spec/08
/// §8.5.1): out of range, or not the rounded value the stride implies, the
/// collection does not load, naming the field.
#[test]
fn packed_list_bytes_in_the_header_are_checked() {
    let b = build(|_, _| {});
    let n = Nodes::open(&b.path);
    // dim 4: adj_offset 36; list bytes 60 make the stride 96.
    assert_eq!(
        (n.coll.geo.adj_offset, n.coll.geo.adj_capacity, n.coll.geo.stride),
        (36, 60, 96)
    );
    for (cap, field) in [
        (2u32, "ch_adj_capacity"),
        (5000, "ch_adj_capacity"),
        (61, "ch_node_stride"),
    ] {
        n.edit_header(|h| h[28..32].copy_from_slice(&cap.to_le_bytes()));
        let fs = Fs::open(&b.path, true).unwrap();
        let e = fs.collection_stats("t").unwrap_err().to_string();
        assert!(e.contains(field), "list bytes {cap}: {e}");
    }
}

/// A search scores and expands every node here (ef > N), so it meets the
/// damaged record: a structurally bad header is an error naming the field.
/// Guards the walk's fast path (records it scores are read without
/// building a `Node`): damage must still surface, here when the node is
/// expanded, and never be routed through silently.
#[test]
fn a_search_through_a_damaged_record_names_the_field() {
    let b = build(|_, _| {});
    let nodes = Nodes::open(&b.path);
    let entry = nodes.coll.header.ch_entry_slot.get() as u32;
    let x = (0..N as u32).find(|&s| s != entry).unwrap();
    let cap = nodes.coll.geo.adj_capacity as u16;
    // (field, byte offset in the header, new bytes)
    let bad_len = (cap + 1).to_le_bytes();
    let damage: [(&str, usize, &[u8]); 3] = [
        ("n_flags", 5, &[0x7]),
        ("n_level", 4, &[17]),
        ("n_adj_len", 6, &bad_len),
    ];
    for (field, at, bytes) in damage {
        let saved = nodes.record(x);
        nodes.edit(x, |r| r[at..at + bytes.len()].copy_from_slice(bytes));
        let fs = Fs::open(&b.path, true).unwrap();
        let mut req = vexfs::vector::SearchRequest::new("t", vector(3), 5);
        req.ef = Some(2 * N);
        req.with_paths = false;
        let e = fs
            .search(&req)
            .err()
            .unwrap_or_else(|| panic!("{field}: the search did not fail"));
        assert_eq!(e.corruption().map(|c| c.field), Some(field), "{e}");
        drop(fs);
        nodes.edit(x, |r| r.copy_from_slice(&saved));
    }
    assert_reports(&b.path, &[], true);
}
