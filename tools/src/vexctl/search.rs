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
        Target::Mount(m) => match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(m.join(".vexfs/search"))
        {
            Ok(f) => mounted(f, &req)?,
            // A read-only mount refuses to open the control file for
            // writing; it shares the image's lock with readers, so the
            // image behind it is searched directly.
            Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {
                offline(&Target::Image(image_behind(m)?), &req)?
            }
            Err(e) => return Err(e.into()),
        },
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

/// Search through `f`, the mount's `/.vexfs/search` opened read-write.
fn mounted(mut f: std::fs::File, req: &SearchRequest) -> Outcome<(Hits, bool)> {
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

/// The image a VexFS mount at `m` serves: the source field of its line in
/// /proc/self/mountinfo (mount.vexfs passes the image's absolute path,
/// unless `-o fsname=` replaced it).
fn image_behind(m: &Path) -> Outcome<std::path::PathBuf> {
    let dir = std::fs::canonicalize(m)?;
    match source_of(&std::fs::read_to_string("/proc/self/mountinfo")?, &dir) {
        Some(s) if Path::new(&s).is_absolute() => Ok(s.into()),
        _ => Err(Failure::new(format!(
            "{}: a read-only mount, and the image behind it is not known (fsname= was given?): search the image instead",
            m.display()
        ))),
    }
}

/// The source of the FUSE mount at `dir` in mountinfo text (octal escapes
/// of blanks undone).
fn source_of(mountinfo: &str, dir: &Path) -> Option<String> {
    let unescape = |f: &str| f.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\");
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let at = unescape(left.split(' ').nth(4)?);
        let mut r = right.split(' ');
        let fstype = r.next()?;
        (Path::new(&at) == dir && fstype.starts_with("fuse")).then(|| r.next().map(unescape))?
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_of_a_fuse_mount_is_found_by_its_mount_point() {
        let info = "22 1 8:1 / / rw - ext4 /dev/vda rw\n\
                    90 22 0:50 / /mnt/my\\040vex ro,nosuid - fuse.vexfs /srv/a\\040b.img ro,user_id=0\n";
        assert_eq!(
            source_of(info, Path::new("/mnt/my vex")).as_deref(),
            Some("/srv/a b.img")
        );
        assert_eq!(source_of(info, Path::new("/")), None, "not a FUSE mount");
        assert_eq!(source_of(info, Path::new("/mnt/other")), None);
    }
}
