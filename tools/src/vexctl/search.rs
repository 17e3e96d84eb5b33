//! `vexctl search`: k nearest files, from an unmounted image (shared lock,
//! read-only) or through a mount's `/.vexfs/search`.

use super::{parse_vector, Failure, Outcome, Target};
use crate::vecfile::{VecFormat, VecReader};
use std::io::{Read, Write};
use std::path::Path;
use vexfs::vector::{Budget, SearchRequest};

/// Where the query vector comes from.
pub enum Query<'a> {
    Literal(&'a str),
    /// Record `index` of a .fvecs/.npy/.csv file.
    File(&'a Path, u64),
    /// The vector a file (path inside the filesystem) has in the collection.
    Like(&'a str),
}

/// One search's options.
pub struct Options<'a> {
    pub collection: &'a str,
    pub k: usize,
    pub ef: Option<usize>,
    pub subtree: Option<&'a str>,
    pub max_visited: Option<usize>,
    pub json: bool,
}

fn from_file(p: &Path, index: u64) -> Outcome<Vec<f32>> {
    let fmt =
        VecFormat::from_path(p).ok_or_else(|| Failure::new(format!("{}: not .fvecs, .npy or .csv", p.display())))?;
    let mut r = VecReader::open(p, fmt).map_err(|e| Failure::new(e.to_string()))?;
    match r.nth(index as usize) {
        Some(Ok(rec)) => Ok(rec.vector),
        Some(Err(e)) => Err(Failure::new(e.to_string())),
        None => Err(Failure::new(format!("{}: has no record {index}", p.display()))),
    }
}

/// The query vector.
fn vector(t: &Target, q: &Query<'_>, collection: &str) -> Outcome<Vec<f32>> {
    match q {
        Query::Literal(s) => parse_vector(s),
        Query::File(p, i) => from_file(p, *i),
        Query::Like(path) => {
            let name = format!("user.vexfs.vector.{collection}");
            let bytes = match t {
                Target::Mount(m) => xattr::get(m.join(path.trim_start_matches('/')), &name)?
                    .ok_or_else(|| Failure::new(format!("{path} has no vector in {collection}")))?,
                Target::Image(_) => {
                    let fs = t.open(true)?;
                    let ctx = vexfs::fs::perm::Ctx::root();
                    let mut ino = u64::from(vexfs::format::ROOT_INO);
                    for part in path.split('/').filter(|p| !p.is_empty()) {
                        ino = fs
                            .lookup(&ctx, ino, part.as_bytes())
                            .map_err(|e| Failure::new(format!("{path}: {e}")))?
                            .ino
                            .into();
                    }
                    fs.getxattr(&ctx, ino, name.as_bytes())
                        .map_err(|e| Failure::new(format!("{path}: no vector in {collection} ({e})")))?
                }
            };
            Ok(vexfs::vector::vattr::floats(&bytes)?)
        }
    }
}

/// Run the search and print the hits.
pub fn run(t: &Target, q: &Query<'_>, o: &Options<'_>) -> Outcome<()> {
    let v = vector(t, q, o.collection)?;
    let mut req = SearchRequest::new(o.collection, v, o.k);
    req.ef = o.ef;
    req.subtree = o.subtree.map(String::from);
    if let Some(n) = o.max_visited {
        req.budget = Budget {
            max_visited: n,
            deadline: None,
        };
    }
    let (hits, complete) = match t {
        Target::Image(_) => offline(t, &req)?,
        Target::Mount(m) => mounted(m, &req)?,
    };
    print(&hits, complete, o.json);
    Ok(())
}

type Hits = Vec<serde_json::Value>;

fn offline(t: &Target, req: &SearchRequest) -> Outcome<(Hits, bool)> {
    let fs = t.open(true)?;
    let r = fs.search(req)?;
    let hits = r
        .hits
        .iter()
        .map(|h| serde_json::json!({"path": h.path, "ino": h.ino, "slot": h.slot, "distance": h.distance}))
        .collect();
    Ok((hits, r.complete))
}

fn mounted(m: &Path, req: &SearchRequest) -> Outcome<(Hits, bool)> {
    let mut body = serde_json::json!({"collection": req.collection, "k": req.k, "vector": req.vector});
    if let Some(ef) = req.ef {
        body["ef"] = ef.into();
    }
    if let Some(s) = &req.subtree {
        body["subtree"] = s.clone().into();
    }
    if req.budget.max_visited != Budget::default().max_visited {
        body["max_visited"] = req.budget.max_visited.into();
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.join(".vexfs/search"))?;
    let sent = f.write_all(format!("{body}\n").as_bytes());
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    let lines: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    if let Some(err) = lines.iter().find_map(|l| l["error"].as_str()) {
        return Err(Failure::new(err.to_string()));
    }
    sent?;
    let complete = !lines.iter().any(|l| l["complete"] == false);
    Ok((lines.into_iter().filter(|l| l.get("ino").is_some()).collect(), complete))
}

fn print(hits: &[serde_json::Value], complete: bool, json: bool) {
    if json {
        println!("{}", serde_json::json!({"hits": hits, "complete": complete}));
        return;
    }
    for (i, h) in hits.iter().enumerate() {
        let path = h["path"]
            .as_str()
            .map_or_else(|| format!("(inode {})", h["ino"]), String::from);
        println!(
            "{:>3}  {:>12.6}  {path}",
            i + 1,
            h["distance"].as_f64().unwrap_or(f64::NAN)
        );
    }
    if hits.is_empty() {
        println!("no results");
    }
    if !complete {
        eprintln!("vexctl: the search budget ran out: these are the best results found so far");
    }
}
