//! `vexctl import` into an unmounted image: every row lands on its file,
//! the summary counts them, the graph passes fsck (the import ends with the
//! reconnect pass), and a search for a row finds that row's file first;
//! with `--reorder` too.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use vexfs::mkfs::{mkfs, MkfsOptions};

const ROWS: usize = 600;
const DIM: usize = 8;

/// Row `i` of the data set: deterministic, distinct, spread out.
fn row(i: usize) -> Vec<f32> {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..DIM)
        .map(|_| {
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (x >> 40) as f32 / (1u64 << 24) as f32 * 20.0 - 10.0
        })
        .collect()
}

fn fvecs(dir: &Path) -> PathBuf {
    let path = dir.join("rows.fvecs");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..ROWS {
        f.write_all(&(DIM as u32).to_le_bytes()).unwrap();
        for v in row(i) {
            f.write_all(&v.to_le_bytes()).unwrap();
        }
    }
    f.flush().unwrap();
    path
}

fn image(dir: &Path) -> PathBuf {
    let path = dir.join("import.img");
    let opts = MkfsOptions {
        size: Some(64 << 20),
        time: Some(1_700_000_000),
        collections: vec!["emb:8:l2".parse().unwrap()],
        ..Default::default()
    };
    mkfs(&path, &opts, &mut |_, _| {}).unwrap();
    path
}

/// The tests run one at a time: a child spawned by one test holds copies
/// of the other test's descriptors (and their locks) until it execs.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run a tool; (exit code, stdout, stderr).
fn run(exe: &str, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(exe).args(args).output().unwrap();
    (
        o.status.code().expect("killed by a signal"),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn vexctl(args: &[&str]) -> (i32, String, String) {
    run(env!("CARGO_BIN_EXE_vexctl"), args)
}

#[test]
fn an_offline_import_attaches_every_row_and_leaves_a_sound_graph() {
    let out = import_and_check(&[]);
    assert!(out.starts_with(&format!("imported {ROWS} vectors into emb")), "{out}");
}

#[test]
fn an_import_with_reorder_renumbers_and_still_finds_every_row() {
    let out = import_and_check(&["--reorder"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with(&format!("reordered emb: {ROWS} slots, ")), "{out}");
    assert!(
        lines[1].starts_with(&format!("imported {ROWS} vectors into emb")),
        "{out}"
    );
}

/// Import the rows with `extra` options, check the count, fsck and that a
/// search for row 417 finds its file first; vexctl import's output.
fn import_and_check(extra: &[&str]) -> String {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let data = fvecs(dir.path());
    let s = |p: &Path| p.to_str().unwrap().to_owned();

    let mut args = vec!["import".to_string(), s(&img), "emb".into(), s(&data), "--quiet".into()];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, imported, err) = vexctl(&args);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = vexctl(&["stats", &s(&img), "emb", "--json"]);
    assert_eq!(code, 0, "{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["count"], ROWS as u64);

    let (code, out, err) = run(env!("CARGO_BIN_EXE_fsck-vexfs"), &["-n", &s(&img)]);
    assert_eq!(code, 0, "fsck: {out}{err}");

    // Row 417 is stored at /imported/0000/00000417 (the default --dir is /imported).
    let query: Vec<String> = row(417).iter().map(|v| v.to_string()).collect();
    let args = [
        "search",
        &s(&img),
        "emb",
        "--vector",
        &query.join(","),
        "-k",
        "3",
        "--json",
    ];
    let (code, out, err) = vexctl(&args);
    assert_eq!(code, 0, "{err}");
    let hits: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hits["hits"][0]["path"], "/imported/0000/00000417", "{out}");
    assert_eq!(hits["hits"][0]["distance"], 0.0);
    imported
}

#[test]
fn an_import_into_a_missing_collection_says_so() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let data = fvecs(dir.path());
    let (code, _, err) = vexctl(&[
        "import",
        img.to_str().unwrap(),
        "nope",
        data.to_str().unwrap(),
        "--quiet",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("no collection named \"nope\""), "{err}");
}

#[test]
fn a_second_import_into_the_filled_collection_attaches_one_by_one() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let data = fvecs(dir.path());
    let (img, data) = (img.to_str().unwrap(), data.to_str().unwrap());
    // The first import is a bulk load; the second finds the collection
    // filled and goes through set_vector.
    for target in ["/first", "/second"] {
        let (code, out, err) = vexctl(&["import", img, "emb", data, "--quiet", "--dir", target]);
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with(&format!("imported {ROWS} vectors")), "{out}");
    }
    let (code, out, err) = vexctl(&["stats", img, "emb", "--json"]);
    assert_eq!(code, 0, "{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["count"], 2 * ROWS as u64);
    let (code, out, err) = run(env!("CARGO_BIN_EXE_fsck-vexfs"), &["-n", img]);
    assert_eq!(code, 0, "fsck: {out}{err}");
    let query: Vec<String> = row(9).iter().map(|v| v.to_string()).collect();
    let q = query.join(",");
    let (code, out, err) = vexctl(&["search", img, "emb", "--vector", &q, "-k", "2", "--json"]);
    assert_eq!(code, 0, "{err}");
    let hits: Value = serde_json::from_str(&out).unwrap();
    let mut paths: Vec<&str> = (0..2).map(|i| hits["hits"][i]["path"].as_str().unwrap()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/first/0000/00000009", "/second/0000/00000009"], "{out}");
}

#[test]
fn a_bad_row_in_an_import_into_an_empty_collection_attaches_nothing() {
    let _one = serial();
    // Row 30 one value short (the reader refuses it), or naming the
    // directory /docs (the bulk load refuses it: not a regular file).
    for (bad, says) in [("short", "record 30"), ("dir", "/docs: ")] {
        let dir = tempfile::tempdir().unwrap();
        let img = image(dir.path());
        let csv = dir.path().join("rows.csv");
        let mut text = String::new();
        for i in 0..50 {
            let mut v: Vec<String> = row(i).iter().map(|x| x.to_string()).collect();
            let mut path = format!("/docs/d{i}");
            match (i, bad) {
                (30, "short") => drop(v.pop()),
                (30, _) => path = "/docs".into(),
                _ => {}
            }
            text += &format!("{path},{}\n", v.join(","));
        }
        std::fs::write(&csv, text).unwrap();
        let img = img.to_str().unwrap();
        let (code, _, err) = vexctl(&["import", img, "emb", csv.to_str().unwrap(), "--quiet"]);
        assert_ne!(code, 0, "{bad}");
        assert!(err.contains(says), "{bad}: {err}");
        assert!(err.contains("no vector was attached"), "{bad}: {err}");
        let (code, out, err) = vexctl(&["stats", img, "emb", "--json"]);
        assert_eq!(code, 0, "{err}");
        let stats: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(stats["count"], 0, "{bad}: {out}");
        let (code, out, err) = run(env!("CARGO_BIN_EXE_fsck-vexfs"), &["-n", img]);
        assert_eq!(code, 0, "{bad}: fsck: {out}{err}");
    }
}
