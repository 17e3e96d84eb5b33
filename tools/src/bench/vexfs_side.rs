//! The VexFS side: build an image holding one file per vector (through the same core the mount
//! uses), then, in a fresh child process, open it read-only and search it.

use super::data::{progress, read_fvecs, read_ivecs, DataFiles, Vectors};
use super::{
    io_err, process_cpu_seconds, read_json, remove_if_exists, rss_anon_kib, write_json, Result, SweepPoint, K,
};
use crate::benchsys::stats::median;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vexfs::format::hnsw::ListCoding;
use vexfs::format::vector::{default_list_bytes, node_geometry, packed_geometry, ElemType, Metric, NodeLayout};
use vexfs::fs::core::Fs;
use vexfs::fs::namespace::NewNode;
use vexfs::fs::perm::Ctx;
use vexfs::mkfs::{MkfsOptions, Sizing, DEFAULT_INODE_RATIO};
use vexfs::vector::{CollectionParams, SearchRequest};

/// The collection's name in the image.
pub const COLLECTION: &str = "bench";
/// Files per directory (`/b/0000/0000000`, ...).
const PER_DIR: usize = 1000;
/// Fresh opens timed for the first answer.
const FIRST_ANSWER_RUNS: usize = 5;
/// Bumped whenever the image layout of the benchmark changes (2: packed
/// node records; 3: their default list bytes 92; 4: Rice-coded lists,
/// 64 list bytes).
const FORMAT: u32 = 4;

/// What determines a built image.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuildParams {
    pub format: u32,
    pub data: super::data::DataParams,
    pub m: u16,
    pub ef_construction: u16,
    pub image_bytes: u64,
    pub inode_ratio: u64,
    /// `--list-bytes` (None: VexFS's default).
    #[serde(default)]
    pub list_bytes: Option<u32>,
    /// `--journal-mib`, in blocks (None: mkfs's default for the size).
    #[serde(default)]
    pub journal_blocks: Option<u64>,
    /// `Fs::reorder_collection` after the inserts (not with `--no-reorder`).
    #[serde(default)]
    pub reorder: bool,
    /// `--per-vector`: each vector attached by its own `Fs::set_vector` instead of one
    /// `Fs::bulk_load`.
    #[serde(default)]
    pub per_vector: bool,
}

/// The build's timings (saved next to the image, so a re-run reports them without rebuilding).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildReport {
    pub params: BuildParams,
    pub mkfs_seconds: f64,
    /// Files, directories, vectors and the reorder: from the first mkdir to the end of
    /// `Fs::reorder_collection` (or the last set_vector without it).
    pub build_seconds: f64,
    /// The part of `build_seconds` spent inserting the vectors: inside `Fs::set_vector`, or
    /// `BulkLoad::add` and `BulkLoad::finish` (HNSW insertion).
    pub set_vector_seconds: f64,
    /// The part of `build_seconds` spent in `Fs::reorder_collection` (0 without it).
    #[serde(default)]
    pub reorder_seconds: f64,
    /// Whether the reorder was done (asked for, and it fitted the journal).
    #[serde(default)]
    pub reordered: bool,
    /// `Fs::close`: the reconnect pass over the graph, the last commit and checkpoint.
    pub close_seconds: f64,
    /// CPU time (user + system) of `build_seconds` and `close_seconds`: less disturbed than
    /// the wall clock by other work on the machine and by waits for the disk. 0 when not
    /// measured (a build.json from before this field).
    #[serde(default)]
    pub build_cpu_seconds: f64,
    /// fsck of the built image (read-only): "clean", or the problem count
    /// and the first problem.
    #[serde(default)]
    pub fsck: String,
    /// True when this run reused an image built earlier.
    #[serde(skip)]
    pub reused: bool,
}

/// Where the image and its side files live.
pub struct ImageFiles {
    pub dir: PathBuf,
    pub image: PathBuf,
    /// le32 inode number per base row.
    pub mapping: PathBuf,
    pub report: PathBuf,
}

impl ImageFiles {
    pub fn new(data: &DataFiles, m: u16, ef_construction: u16, list_bytes: Option<u32>) -> Self {
        let lb = list_bytes.map_or_else(String::new, |b| format!("-lb{b}"));
        let dir = data.dir.join(format!("vexfs-m{m}-efc{ef_construction}{lb}"));
        ImageFiles {
            image: dir.join("image.vexfs"),
            mapping: dir.join("inodes.u32"),
            report: dir.join("build.json"),
            dir,
        }
    }
}

/// Image size and inode ratio for `n` vectors: n * (node stride + 300) * 1.5 + 256 MiB, grown
/// (it is a sparse file) until the inode table has room for every file and directory.
pub fn sizing(n: usize, dim: usize, m: u16, list_bytes: Option<u32>) -> (u64, u64) {
    // The larger of the codings' defaults: enough room whichever mkfs made.
    let v1 = node_geometry(dim as u32, ElemType::F32, m, NodeLayout::V1, ListCoding::Varint).stride;
    let bytes = list_bytes.unwrap_or_else(|| default_list_bytes(m, ListCoding::Varint));
    let stride = u64::from(v1.max(packed_geometry(dim as u32, ElemType::F32, bytes).stride));
    let n = n as u64;
    let inodes = n + n / PER_DIR as u64 + 2000;
    let bytes = (n * (stride + 300) * 3 / 2 + (256 << 20)).max(inodes * 4096);
    let bytes = bytes.next_multiple_of(1 << 20);
    let ratio = (bytes / inodes).clamp(4096, DEFAULT_INODE_RATIO);
    (bytes, ratio)
}

/// Build the image, or reuse one built with the same parameters unless `rebuild` (the cache does
/// not know when the VexFS code changed). `load_base` supplies the base vectors for a build.
pub fn build(
    data: &DataFiles,
    files: &ImageFiles,
    (m, ef_construction, list_bytes, journal_blocks): (u16, u16, Option<u32>, Option<u64>),
    (reorder, per_vector): (bool, bool),
    rebuild: bool,
    load_base: impl FnOnce() -> Result<Vectors>,
) -> Result<BuildReport> {
    let p = &data.params;
    let (image_bytes, inode_ratio) = sizing(p.n, p.dim, m, list_bytes);
    let params = BuildParams {
        format: FORMAT,
        data: *p,
        m,
        ef_construction,
        image_bytes,
        inode_ratio,
        list_bytes,
        journal_blocks,
        reorder,
        per_vector,
    };
    if let Some(mut r) = read_json::<BuildReport>(&files.report).filter(|_| !rebuild) {
        if r.params == params && files.image.is_file() && files.mapping.is_file() {
            eprintln!(
                "bench-ann: reusing image {} (--rebuild to build it again)",
                files.image.display()
            );
            r.reused = true;
            return Ok(r);
        }
    }
    let base = load_base()?;
    if base.len() != p.n || base.dim != p.dim {
        return Err(format!("base has {} x {}, expected {} x {}", base.len(), base.dim, p.n, p.dim).into());
    }
    std::fs::create_dir_all(&files.dir).map_err(|e| io_err("cannot create", &files.dir, e))?;
    remove_if_exists(&files.report)?;
    remove_if_exists(&files.image)?;

    let t = Instant::now();
    let opts = MkfsOptions {
        size: Some(image_bytes),
        collections: vec![],
        sizing: Sizing {
            inode_ratio: Some(inode_ratio),
            journal_blocks,
            ..Default::default()
        },
        ..Default::default()
    };
    let summary = vexfs::mkfs::mkfs(&files.image, &opts, &mut |_, _| {})
        .map_err(|e| format!("mkfs {}: {e}", files.image.display()))?;
    let mkfs_seconds = t.elapsed().as_secs_f64();
    if (summary.free_inodes as usize) < p.n + p.n / PER_DIR + 10 {
        return Err(format!("mkfs made only {} free inodes for {} files", summary.free_inodes, p.n).into());
    }
    eprintln!(
        "bench-ann: mkfs {} ({} MiB sparse, {} inodes, journal {} MiB) in {mkfs_seconds:.2}s",
        files.image.display(),
        image_bytes >> 20,
        summary.inodes,
        summary.journal_blocks >> 8
    );

    let fs = Fs::open(&files.image, false).map_err(|e| format!("open {}: {e}", files.image.display()))?;
    fs.create_collection(&CollectionParams {
        name: COLLECTION.into(),
        dim: p.dim as u32,
        metric: Metric::L2,
        elem: ElemType::F32,
        m,
        ef_construction,
        int8_scale: 0.0,
        list_bytes,
    })?;
    let ctx = Ctx::root();
    let bar = progress(p.n as u64, "VexFS build");
    let mut inodes: Vec<u32> = Vec::with_capacity(p.n);
    let mut in_set_vector = Duration::ZERO;
    let (t, cpu) = (Instant::now(), process_cpu_seconds());
    let mut bulk = match per_vector {
        false => fs.bulk_load(&ctx, COLLECTION)?,
        true => None,
    };
    let top = fs.create(&ctx, u64::from(vexfs::format::ROOT_INO), b"b", 0o755, NewNode::Dir)?;
    let mut dir = 0u64;
    for row in 0..p.n {
        if row % PER_DIR == 0 {
            let name = format!("{:04}", row / PER_DIR);
            dir = fs
                .create(&ctx, u64::from(top.ino), name.as_bytes(), 0o755, NewNode::Dir)?
                .ino
                .into();
        }
        let name = format!("{row:07}");
        let ino = fs.create(&ctx, dir, name.as_bytes(), 0o644, NewNode::File)?.ino;
        let s = Instant::now();
        match bulk.as_mut() {
            Some(b) => b.add(ino.into(), base.row(row)),
            None => fs.set_vector(&ctx, ino.into(), COLLECTION, base.row(row)),
        }
        .map_err(|e| format!("inserting row {row}: {e}"))?;
        in_set_vector += s.elapsed();
        inodes.push(ino);
        if row % 64 == 63 {
            bar.set_position(row as u64 + 1);
        }
    }
    bar.finish_and_clear();
    if let Some(b) = bulk.take() {
        let s = Instant::now();
        // The core says so when the journal made it attach one by one.
        b.finish().map_err(|e| format!("bulk load: {e}"))?;
        in_set_vector += s.elapsed();
    }
    let r = Instant::now();
    let mut reordered = false;
    if reorder {
        match fs.reorder_collection(COLLECTION, &mut |_, _| {}) {
            Ok(_) => reordered = true,
            // The references of a large collection may not fit the journal (about one block
            // per 16 files: a million vectors need --journal-mib 256): measured without.
            Err(vexfs::error::FsError::NoSpace) => {
                eprintln!("bench-ann: reorder refused (ENOSPC: the journal is too small); measuring without")
            }
            Err(e) => return Err(format!("reorder: {e}").into()),
        }
    }
    let reorder_seconds = r.elapsed().as_secs_f64();
    let build_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    drop(bulk);
    fs.close()?;
    drop(fs);
    let close_seconds = t.elapsed().as_secs_f64();
    let build_cpu_seconds = process_cpu_seconds() - cpu;
    eprintln!(
        "bench-ann: VexFS built {} vectors in {build_seconds:.1}s ({:.1}s inserting, {reorder_seconds:.2}s reordering), close {close_seconds:.2}s",
        p.n,
        in_set_vector.as_secs_f64()
    );

    let bytes: Vec<u8> = inodes.iter().flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(&files.mapping, bytes).map_err(|e| io_err("cannot write", &files.mapping, e))?;
    let fsck = fsck_summary(&files.image);
    eprintln!("bench-ann: fsck of the built image: {fsck}");
    let report = BuildReport {
        params,
        mkfs_seconds,
        build_seconds,
        set_vector_seconds: in_set_vector.as_secs_f64(),
        reorder_seconds,
        reordered,
        close_seconds,
        build_cpu_seconds,
        fsck,
        reused: false,
    };
    write_json(&files.report, &report)?;
    Ok(report)
}

/// fsck (read-only, the library `fsck.vexfs` uses) of the image at `path`,
/// in one line: a build that strands graph nodes is not a result to report.
fn fsck_summary(path: &std::path::Path) -> String {
    let img = match vexfs::image::Image::open(path, vexfs::image::Mode::ReadOnly) {
        Ok(i) => i,
        Err(e) => return format!("cannot open: {e}"),
    };
    let r = vexfs::check::check(&img, vexfs::check::CheckOptions::default());
    match r.problems.first() {
        None => "clean".into(),
        Some(p) => format!("{} problem(s), first: {}: {}", r.problems.len(), p.location, p.message),
    }
}

/// What `collection_stats` says (the fields the report uses).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexStats {
    pub count: u64,
    pub max_level: u32,
    pub avg_degree_level0: f64,
    pub vector_bytes_per_vector: f64,
    pub graph_bytes_per_vector: f64,
    #[serde(default)]
    pub graph_file_bytes_per_vector: f64,
    pub graph_used_bytes_per_vector: f64,
    pub node_file_bytes: u64,
    pub upper_file_bytes: u64,
    pub simd: String,
    /// The collection's level-0 list bytes, as its header says.
    #[serde(default)]
    pub list_bytes: u32,
}

/// What the search child prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchReport {
    /// From the start of `Fs::open` (read-only) to the first query's answer, at the largest ef:
    /// the median of `first_answer_ms_samples` (fresh opens, in order).
    pub first_answer_ms: f64,
    pub first_answer_ms_samples: Vec<f64>,
    pub first_answer_ef: usize,
    /// The `Fs::open` part of `first_answer_ms` (median).
    pub open_ms: f64,
    pub sweep: Vec<SweepPoint>,
    /// After the sweep.
    pub rss_anon_kib: u64,
    /// Before `Fs::open`, holding only the queries and the ground truth.
    pub rss_anon_kib_before_open: u64,
    pub stats: IndexStats,
}

/// Arguments of the search child.
#[derive(Debug, Clone, clap::Args)]
pub struct ChildArgs {
    #[arg(long)]
    pub image: PathBuf,
    #[arg(long)]
    pub queries: PathBuf,
    #[arg(long)]
    pub truth: PathBuf,
    /// le32 inode number per base row.
    #[arg(long)]
    pub mapping: PathBuf,
    #[arg(long, value_delimiter = ',', required = true)]
    pub efs: Vec<usize>,
    /// Passes over the query set per ef; the fastest counts.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
}

/// Run the search child (`exe` with the hidden subcommand) and parse what it prints.
pub fn run_child(exe: &Path, data: &DataFiles, files: &ImageFiles, efs: &[usize], runs: usize) -> Result<SearchReport> {
    let efs_arg = efs.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let out = Command::new(exe)
        .arg("search-child")
        .arg("--image")
        .arg(&files.image)
        .arg("--queries")
        .arg(&data.queries)
        .arg("--truth")
        .arg(&data.truth)
        .arg("--mapping")
        .arg(&files.mapping)
        .arg("--efs")
        .arg(efs_arg)
        .arg("--runs")
        .arg(runs.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| io_err("cannot run", exe, e))?;
    if !out.status.success() {
        return Err(format!("the search child failed ({})", out.status).into());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("the search child's output: {e}").into())
}

/// The search child: everything below runs in a fresh process, so its RssAnon is the search's.
pub fn child(a: &ChildArgs) -> Result<SearchReport> {
    let queries = read_fvecs(&a.queries)?;
    let truth_rows = read_ivecs(&a.truth)?;
    if truth_rows.len() != queries.len() || truth_rows.iter().any(|r| r.len() < K) {
        return Err(format!("{}: not {} rows of at least {K} ids", a.truth.display(), queries.len()).into());
    }
    // Ground truth as inode numbers; the row mapping is dropped before the image is opened.
    let truth: Vec<u32> = {
        let bytes = std::fs::read(&a.mapping).map_err(|e| io_err("cannot read", &a.mapping, e))?;
        let inodes: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut t = Vec::with_capacity(truth_rows.len() * K);
        for row in truth_rows.iter().flat_map(|r| &r[..K]) {
            let ino = inodes
                .get(*row as usize)
                .ok_or_else(|| format!("ground truth row {row} is not in the mapping"))?;
            t.push(*ino);
        }
        t
    };
    drop(truth_rows);
    let first_ef = a.efs.iter().copied().max().ok_or("no ef given")?;
    let rss_before = rss_anon_kib().unwrap_or(0);

    let mut req = SearchRequest::new(COLLECTION, queries.row(0).to_vec(), K);
    req.with_paths = false;
    req.ef = Some(first_ef);
    // Open + first answer, FIRST_ANSWER_RUNS times (one sample is at the mercy of the scheduler);
    // the last opened Fs serves the sweep.
    let (mut first_samples, mut open_samples) = (Vec::new(), Vec::new());
    let mut opened = None;
    for _ in 0..FIRST_ANSWER_RUNS {
        drop(opened.take());
        let t0 = Instant::now();
        let fs = Fs::open(&a.image, true).map_err(|e| format!("open {}: {e}", a.image.display()))?;
        open_samples.push(t0.elapsed().as_secs_f64() * 1e3);
        let first = fs.search(&req)?;
        first_samples.push(t0.elapsed().as_secs_f64() * 1e3);
        if first.hits.is_empty() {
            return Err("the first query found nothing".into());
        }
        opened = Some(fs);
    }
    let fs = opened.ok_or("no open")?;

    let nq = queries.len();
    let mut found: Vec<u32> = Vec::with_capacity(nq * K);
    let mut sweep = Vec::with_capacity(a.efs.len());
    for &ef in &a.efs {
        req.ef = Some(ef);
        let (mut incomplete, mut visited) = (0usize, 0usize);
        let (mut secs, mut cpu_secs) = (f64::INFINITY, f64::INFINITY);
        // The fastest of `runs` passes (the answers are the same each pass).
        for _ in 0..a.runs.max(1) {
            found.clear();
            (incomplete, visited) = (0, 0);
            let (t, cpu) = (Instant::now(), process_cpu_seconds());
            for q in 0..nq {
                req.vector.copy_from_slice(queries.row(q));
                let r = fs.search(&req)?;
                incomplete += usize::from(!r.complete);
                visited += r.visited;
                found.extend(r.hits.iter().map(|h| h.ino).chain(std::iter::repeat(0)).take(K));
            }
            secs = secs.min(t.elapsed().as_secs_f64());
            cpu_secs = cpu_secs.min(process_cpu_seconds() - cpu);
        }
        let hits: usize = found
            .chunks_exact(K)
            .zip(truth.chunks_exact(K))
            .map(|(got, want)| got.iter().filter(|&&i| i != 0 && want.contains(&i)).count())
            .sum();
        let point = SweepPoint {
            ef,
            recall: hits as f64 / (K * nq) as f64,
            qps: nq as f64 / secs,
            incomplete,
            mean_visited: visited as f64 / nq as f64,
            cpu_qps: if cpu_secs > 0.0 { nq as f64 / cpu_secs } else { 0.0 },
        };
        eprintln!(
            "bench-ann: VexFS ef={ef} recall={:.4} qps={:.0} cpu_qps={:.0}",
            point.recall, point.qps, point.cpu_qps
        );
        sweep.push(point);
    }
    let rss_anon_kib = rss_anon_kib().unwrap_or(0);

    let s = fs.collection_stats(COLLECTION)?;
    Ok(SearchReport {
        first_answer_ms: median(&first_samples),
        first_answer_ms_samples: first_samples,
        first_answer_ef: first_ef,
        open_ms: median(&open_samples),
        sweep,
        rss_anon_kib,
        rss_anon_kib_before_open: rss_before,
        stats: IndexStats {
            count: s.count,
            max_level: s.max_level,
            avg_degree_level0: s.avg_degree_level0,
            vector_bytes_per_vector: s.vector_bytes_per_vector,
            graph_bytes_per_vector: s.graph_bytes_per_vector,
            graph_file_bytes_per_vector: s.graph_file_bytes_per_vector,
            graph_used_bytes_per_vector: s.graph_used_bytes_per_vector,
            node_file_bytes: s.node_file_bytes,
            upper_file_bytes: s.upper_file_bytes,
            simd: s.simd.to_string(),
            list_bytes: s.list_bytes,
        },
    })
}
