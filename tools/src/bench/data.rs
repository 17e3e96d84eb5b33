//! The data set: clustered Gaussian vectors from a fixed seed, written as `.fvecs`, and the exact
//! top-K ground truth (L2, brute force) as `.ivecs`. Files are reused when `params.json` matches.

use super::{io_err, read_json, remove_if_exists, write_json, Result, K};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Bumped whenever generation changes, so stale caches are not reused.
const FORMAT: u32 = 1;

/// What determines the data set.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct DataParams {
    pub format: u32,
    pub n: usize,
    pub dim: usize,
    pub queries: usize,
    pub clusters: usize,
    pub seed: u64,
    pub k: usize,
}

impl DataParams {
    pub fn new(n: usize, dim: usize, queries: usize, clusters: usize, seed: u64) -> Self {
        DataParams {
            format: FORMAT,
            n,
            dim,
            queries,
            clusters,
            seed,
            k: K,
        }
    }

    /// The directory (under the work directory) that holds this data set and its images.
    pub fn dir_name(&self) -> String {
        format!(
            "n{}-d{}-q{}-c{}-s{}",
            self.n, self.dim, self.queries, self.clusters, self.seed
        )
    }
}

/// The files of one data set.
#[derive(Debug, Clone)]
pub struct DataFiles {
    pub dir: PathBuf,
    pub base: PathBuf,
    pub queries: PathBuf,
    pub truth: PathBuf,
    pub params: DataParams,
}

impl DataFiles {
    pub fn new(dir: PathBuf, params: DataParams) -> Self {
        DataFiles {
            base: dir.join("base.fvecs"),
            queries: dir.join("query.fvecs"),
            truth: dir.join("truth.ivecs"),
            dir,
            params,
        }
    }
}

/// Row-major vectors of one dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Vectors {
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// SplitMix64 with Box-Muller normals: small, fast and the same everywhere Rust's `f64::ln`,
/// `sin` and `cos` agree (they do on the usual targets).
pub struct Rng {
    state: u64,
    spare: Option<f64>,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng {
            state: seed,
            spare: None,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1), never 0.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Uniform integer in 0..n (multiply-shift; the bias is below 2^-32 for any n used here).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let r = (-2.0 * self.uniform().ln()).sqrt();
        let t = std::f64::consts::TAU * self.uniform();
        self.spare = Some(r * t.sin());
        r * t.cos()
    }
}

/// Centres N(0, 4²) per coordinate; base points then queries, each = a uniformly chosen centre
/// + N(0, 1) per coordinate. Queries are held out (not in the base).
pub fn generate(p: &DataParams) -> (Vectors, Vectors) {
    let mut rng = Rng::new(p.seed);
    let centres: Vec<f32> = (0..p.clusters * p.dim).map(|_| (4.0 * rng.normal()) as f32).collect();
    let mut points = |count: usize| {
        let mut data = Vec::with_capacity(count * p.dim);
        for _ in 0..count {
            let c = rng.below(p.clusters as u64) as usize;
            let centre = &centres[c * p.dim..(c + 1) * p.dim];
            data.extend(centre.iter().map(|&x| x + rng.normal() as f32));
        }
        Vectors { dim: p.dim, data }
    };
    let base = points(p.n);
    let queries = points(p.queries);
    (base, queries)
}

/// Squared L2 distance (eight lanes so the compiler vectorises it).
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The k smallest (distance, row), ascending; ties keep the lower row.
struct TopK {
    k: usize,
    items: Vec<(f32, u32)>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            items: Vec::with_capacity(k + 1),
        }
    }

    fn push(&mut self, d: f32, row: u32) {
        if self.items.len() == self.k && self.items.last().is_some_and(|w| d >= w.0) {
            return;
        }
        let at = self.items.partition_point(|e| e.0 <= d);
        self.items.insert(at, (d, row));
        self.items.truncate(self.k);
    }
}

/// Exact top-k rows of `base` for every query, on `threads` threads. Queries go in blocks of 16
/// per pass over the base, so the base streams from memory once per block, not once per query.
pub fn ground_truth(base: &Vectors, queries: &Vectors, k: usize, threads: usize) -> Vec<Vec<u32>> {
    const BLOCK: usize = 16;
    let nq = queries.len();
    let bar = progress(nq as u64, "ground truth");
    let done = AtomicU64::new(0);
    let per_thread = nq.div_ceil(threads.max(1)).max(1);
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); nq];
    std::thread::scope(|s| {
        for (t, chunk) in out.chunks_mut(per_thread).enumerate() {
            let (bar, done) = (&bar, &done);
            s.spawn(move || {
                let first = t * per_thread;
                for (b, block) in chunk.chunks_mut(BLOCK).enumerate() {
                    let q0 = first + b * BLOCK;
                    let mut tops: Vec<TopK> = (0..block.len()).map(|_| TopK::new(k)).collect();
                    for r in 0..base.len() {
                        let row = base.row(r);
                        for (j, top) in tops.iter_mut().enumerate() {
                            top.push(l2(queries.row(q0 + j), row), r as u32);
                        }
                    }
                    for (slot, top) in block.iter_mut().zip(tops) {
                        *slot = top.items.into_iter().map(|(_, r)| r).collect();
                    }
                    let now = done.fetch_add(block.len() as u64, Ordering::Relaxed) + block.len() as u64;
                    bar.set_position(now);
                }
            });
        }
    });
    bar.finish_and_clear();
    out
}

/// A progress bar on stderr.
pub fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}

/// Write `.fvecs`: per row le32 dim then dim le f32.
pub fn write_fvecs(path: &Path, v: &Vectors) -> Result<()> {
    let f = File::create(path).map_err(|e| io_err("cannot create", path, e))?;
    let mut w = BufWriter::new(f);
    let dim = u32::try_from(v.dim)?.to_le_bytes();
    let mut write = || -> std::io::Result<()> {
        for i in 0..v.len() {
            w.write_all(&dim)?;
            for x in v.row(i) {
                w.write_all(&x.to_le_bytes())?;
            }
        }
        w.flush()
    };
    write().map_err(|e| io_err("cannot write", path, e))
}

/// Write `.ivecs`: per row le32 k then k le32 ids.
pub fn write_ivecs(path: &Path, rows: &[Vec<u32>]) -> Result<()> {
    let f = File::create(path).map_err(|e| io_err("cannot create", path, e))?;
    let mut w = BufWriter::new(f);
    let mut write = || -> std::io::Result<()> {
        for r in rows {
            w.write_all(&(r.len() as u32).to_le_bytes())?;
            for x in r {
                w.write_all(&x.to_le_bytes())?;
            }
        }
        w.flush()
    };
    write().map_err(|e| io_err("cannot write", path, e))
}

/// Read `.fvecs`/`.ivecs` records as raw le32 words: (dim, words).
fn read_vecs(path: &Path) -> Result<(usize, Vec<u32>)> {
    let f = File::open(path).map_err(|e| io_err("cannot open", path, e))?;
    let mut bytes = Vec::new();
    BufReader::new(f)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err("cannot read", path, e))?;
    if !bytes.len().is_multiple_of(4) || bytes.len() < 4 {
        return Err(format!("{}: not a .fvecs/.ivecs file (length {})", path.display(), bytes.len()).into());
    }
    let words: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    drop(bytes);
    let dim = words[0] as usize;
    if dim == 0 || !words.len().is_multiple_of(dim + 1) {
        return Err(format!("{}: size is not a multiple of 4*(1+{dim})", path.display()).into());
    }
    let mut out = Vec::with_capacity(words.len() / (dim + 1) * dim);
    for rec in words.chunks_exact(dim + 1) {
        if rec[0] as usize != dim {
            return Err(format!("{}: records have differing dimensions", path.display()).into());
        }
        out.extend_from_slice(&rec[1..]);
    }
    Ok((dim, out))
}

pub fn read_fvecs(path: &Path) -> Result<Vectors> {
    let (dim, words) = read_vecs(path)?;
    Ok(Vectors {
        dim,
        data: words.into_iter().map(f32::from_bits).collect(),
    })
}

pub fn read_ivecs(path: &Path) -> Result<Vec<Vec<u32>>> {
    let (k, words) = read_vecs(path)?;
    Ok(words.chunks_exact(k).map(<[u32]>::to_vec).collect())
}

/// Make (or reuse) the data set in `files.dir`: base, queries, ground truth, then `params.json`
/// last, so an interrupted run never leaves a set that looks complete. Returns the base vectors
/// when they were generated now (the caller may need them to build the image).
pub fn prepare(files: &DataFiles, threads: usize) -> Result<Option<Vectors>> {
    let params_path = files.dir.join("params.json");
    let complete = [&files.base, &files.queries, &files.truth].iter().all(|p| p.is_file());
    if complete && read_json::<DataParams>(&params_path) == Some(files.params) {
        eprintln!("bench-ann: reusing data set {}", files.dir.display());
        return Ok(None);
    }
    std::fs::create_dir_all(&files.dir).map_err(|e| io_err("cannot create", &files.dir, e))?;
    remove_if_exists(&params_path)?;
    let p = &files.params;
    let t = Instant::now();
    let (base, queries) = generate(p);
    eprintln!(
        "bench-ann: generated {} + {} vectors of dimension {} ({} clusters) in {:.1}s",
        p.n,
        p.queries,
        p.dim,
        p.clusters,
        t.elapsed().as_secs_f64()
    );
    write_fvecs(&files.base, &base)?;
    write_fvecs(&files.queries, &queries)?;
    let t = Instant::now();
    let truth = ground_truth(&base, &queries, p.k, threads);
    eprintln!(
        "bench-ann: exact top-{} ground truth in {:.1}s",
        p.k,
        t.elapsed().as_secs_f64()
    );
    write_ivecs(&files.truth, &truth)?;
    write_json(&params_path, p)?;
    Ok(Some(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_queries_are_held_out() {
        let p = DataParams::new(200, 12, 10, 5, 7);
        let (b1, q1) = generate(&p);
        let (b2, q2) = generate(&p);
        assert_eq!((b1.len(), q1.len()), (200, 10));
        assert_eq!(b1, b2);
        assert_eq!(q1, q2);
        for i in 0..q1.len() {
            assert!((0..b1.len()).all(|r| b1.row(r) != q1.row(i)));
        }
    }

    #[test]
    fn ground_truth_matches_a_plain_sort() {
        let p = DataParams::new(300, 9, 7, 3, 1);
        let (base, queries) = generate(&p);
        let truth = ground_truth(&base, &queries, 10, 2);
        for (qi, got) in truth.iter().enumerate() {
            let mut all: Vec<(f32, u32)> = (0..base.len())
                .map(|r| (l2(queries.row(qi), base.row(r)), r as u32))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let want: Vec<u32> = all[..10].iter().map(|e| e.1).collect();
            assert_eq!(got, &want);
        }
    }

    #[test]
    fn vecs_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vectors {
            dim: 3,
            data: vec![1.0, 2.0, 3.0, -4.0, 5.5, 6.25],
        };
        let f = dir.path().join("x.fvecs");
        write_fvecs(&f, &v).unwrap();
        assert_eq!(read_fvecs(&f).unwrap(), v);
        let rows = vec![vec![1, 2], vec![3, 4]];
        let i = dir.path().join("x.ivecs");
        write_ivecs(&i, &rows).unwrap();
        assert_eq!(read_ivecs(&i).unwrap(), rows);
    }
}
