//! `vexctl collections | create | drop | stats`.

use super::{Failure, Outcome, Target};
use std::io::{Read, Write};
use vexfs::vector::admin;
use vexfs::vector::stats::CollectionStats;

/// Statistics of every collection, as JSON values (offline or mounted).
pub fn all_stats(t: &Target) -> Outcome<Vec<serde_json::Value>> {
    match t {
        Target::Image(_) => {
            let fs = t.open(true)?;
            let mut out = Vec::new();
            for r in fs.collections()? {
                let s: CollectionStats = fs.collection_stats(&r.name)?;
                out.push(serde_json::to_value(s).map_err(|e| Failure::new(e.to_string()))?);
            }
            Ok(out)
        }
        Target::Mount(m) => {
            let mut text = String::new();
            std::fs::File::open(m.join(".vexfs/collections"))?.read_to_string(&mut text)?;
            text.lines()
                .map(|l| serde_json::from_str(l).map_err(|e| Failure::new(format!("bad reply from the mount: {e}"))))
                .collect()
        }
    }
}

/// A collection operation's error, `NotFound` read as an unknown name.
pub fn collection_error(name: &str) -> impl Fn(vexfs::FsError) -> Failure + '_ {
    move |e| match e {
        vexfs::FsError::NotFound => Failure::new(format!("no collection named {name:?}")),
        e => e.into(),
    }
}

/// Print collections (a table, or JSON lines).
pub fn list(t: &Target, only: Option<&str>, json: bool) -> Outcome<()> {
    let stats: Vec<_> = all_stats(t)?
        .into_iter()
        .filter(|s| only.is_none_or(|n| s["name"] == n))
        .collect();
    if let (Some(n), true) = (only, stats.is_empty()) {
        return Err(Failure::new(format!("no collection named {n:?}")));
    }
    for s in &stats {
        if json {
            println!("{s}");
            continue;
        }
        println!(
            "{name}: {count} vectors ({deleted} deleted) dim {dim} {metric} {elem}, M {m}, ef_construction {efc}",
            name = s["name"].as_str().unwrap_or("?"),
            count = s["count"],
            deleted = s["deleted"],
            dim = s["dim"],
            metric = s["metric"].as_str().unwrap_or("?"),
            elem = s["elem_type"].as_str().unwrap_or("?"),
            m = s["m"],
            efc = s["ef_construction"],
        );
        if only.is_some() {
            for key in [
                "slots",
                "node_layout",
                "list_bytes",
                "list_coding",
                "max_level",
                "nodes_per_level",
                "avg_degree_level0",
                "vector_bytes_per_vector",
                "graph_bytes_per_vector",
                "graph_file_bytes_per_vector",
                "graph_used_bytes_per_vector",
                "node_file_bytes",
                "upper_file_bytes",
                "simd",
            ] {
                println!("  {key:28} {}", s[key]);
            }
        }
    }
    if stats.is_empty() && !json {
        println!("no collections");
    }
    Ok(())
}

/// Send one command to a mount's collections file.
fn mounted_command(m: &std::path::Path, cmd: &serde_json::Value) -> Outcome<()> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.join(".vexfs/collections"))?;
    let sent = f.write_all(cmd.to_string().as_bytes());
    let mut reply = String::new();
    let _ = f.read_to_string(&mut reply);
    match sent {
        Ok(()) => Ok(()),
        Err(e) => Err(Failure::new(
            serde_json::from_str::<serde_json::Value>(reply.trim())
                .ok()
                .and_then(|v| v["error"].as_str().map(String::from))
                .unwrap_or_else(|| e.to_string()),
        )),
    }
}

/// `NAME:DIM:METRIC[:TYPE]`.
pub fn create(
    t: &Target,
    spec: &str,
    (m, efc): (u16, u16),
    scale: Option<f32>,
    list_bytes: Option<u32>,
) -> Outcome<()> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (name, dim, metric, elem) = match parts.as_slice() {
        [n, d, m] => (*n, *d, *m, None),
        [n, d, m, e] => (*n, *d, *m, Some(*e)),
        _ => {
            return Err(Failure::new(format!(
                "{spec:?}: expected NAME:DIM:METRIC[:TYPE], e.g. docs:384:cosine"
            )))
        }
    };
    let dim: u32 = dim
        .parse()
        .map_err(|_| Failure::new(format!("dimension {dim:?} is not a number")))?;
    let mut p = admin::params(name, dim, metric, elem)?;
    p.m = m;
    p.ef_construction = efc;
    p.int8_scale = scale.unwrap_or(p.int8_scale);
    p.list_bytes = list_bytes;
    match t {
        Target::Image(_) => {
            t.open(false)?.create_collection(&p)?;
        }
        Target::Mount(mp) => {
            let mut cmd = serde_json::json!({"op": "create", "name": p.name, "dim": p.dim, "metric": p.metric.name(),
                "type": p.elem.name(), "m": p.m, "ef_construction": p.ef_construction, "int8_scale": p.int8_scale});
            // Only when chosen: a daemon older than list bytes refuses unknown keys.
            if let Some(b) = p.list_bytes {
                cmd["list_bytes"] = b.into();
            }
            mounted_command(mp, &cmd)?
        }
    }
    println!(
        "created collection {name} (dim {dim}, {}, {})",
        p.metric.name(),
        p.elem.name()
    );
    Ok(())
}

pub fn drop(t: &Target, name: &str) -> Outcome<()> {
    match t {
        Target::Image(_) => t.open(false)?.drop_collection(name).map_err(collection_error(name))?,
        Target::Mount(mp) => mounted_command(mp, &serde_json::json!({"op": "drop", "name": name}))?,
    }
    println!("dropped collection {name}");
    Ok(())
}

/// The image of an offline collection command (`what`: rebuild or
/// reorder), refused on a mount point: those run in batches of
/// transactions and must be the image's only writer.
fn offline(t: &Target, what: &str) -> Outcome<vexfs::fs::core::Fs> {
    if let Target::Mount(m) = t {
        return Err(Failure::new(format!(
            "{}: {what} works on an unmounted image; unmount it first",
            m.display()
        )));
    }
    t.open(false)
}

/// Run `op` with a progress bar (hidden with `quiet`); its result and the
/// seconds it took.
fn with_progress<R>(
    quiet: bool,
    op: impl FnOnce(&mut dyn FnMut(u64, u64)) -> vexfs::Result<R>,
) -> vexfs::Result<(R, f64)> {
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    let started = std::time::Instant::now();
    let r = op(&mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    Ok((r?, started.elapsed().as_secs_f64()))
}

/// Rebuild a collection's graph (unmounted images only).
pub fn rebuild(t: &Target, name: &str, quiet: bool) -> Outcome<()> {
    let fs = offline(t, "rebuild")?;
    let (r, secs) = with_progress(quiet, |p| fs.rebuild_collection(name, p)).map_err(collection_error(name))?;
    println!(
        "rebuilt {name}: {} live vectors reinserted, {} deleted slots freed, in {secs:.1} s",
        r.live, r.freed
    );
    Ok(())
}

/// Renumber a collection's nodes for locality (unmounted images only).
pub fn reorder(t: &Target, name: &str, quiet: bool) -> Outcome<()> {
    let fs = offline(t, "reorder")?;
    let (r, secs) = with_progress(quiet, |p| fs.reorder_collection(name, p)).map_err(collection_error(name))?;
    fs.close()?;
    println!(
        "reordered {name}: {} slots, {} files' references moved, {} neighbour ids dropped, in {secs:.1} s",
        r.slots, r.references, r.dropped
    );
    Ok(())
}
