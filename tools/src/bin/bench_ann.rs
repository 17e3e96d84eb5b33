//! `bench-ann`: VexFS's offline search against hnswlib (same M, ef_construction, data and queries,
//! one thread each): build time, QPS at recall@10 = 0.95, bytes per vector, time to the first
//! answer and the searching process's RssAnon. See tools/bench-ann/README.md.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vexfs_tools::bench::data::{self, DataFiles, DataParams};
use vexfs_tools::bench::report::{self, at_recall};
use vexfs_tools::bench::vexfs_side::{self, ChildArgs, ImageFiles};
use vexfs_tools::bench::{self, peer, remove_if_exists, write_json, Result, K, TARGET_RECALL};

/// Benchmark VexFS's offline search against hnswlib on the same deterministic data set.
///
/// Generates clustered Gaussian vectors (cached in the work directory with their exact ground
/// truth), builds a VexFS image with one file per vector (cached too), searches it from a fresh
/// process, runs hnswlib with the same parameters, and prints a table with the ratios.
#[derive(Parser, Debug)]
#[command(
    name = "bench-ann",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    internal: Option<Internal>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Internal {
    /// Internal: open the image read-only, search, print JSON.
    #[command(hide = true)]
    SearchChild(ChildArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Base vectors.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Dimension.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Held-out query vectors.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Gaussian clusters (centres N(0, 4²), points centre + N(0, 1)).
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    /// HNSW M (both sides).
    #[arg(long, default_value_t = 16)]
    m: u16,
    /// HNSW ef_construction (both sides).
    #[arg(long, default_value_t = 200)]
    ef_construction: u16,
    /// VexFS only: bytes of each node's level-0 list area (packed records,
    /// format-spec/08 §8.5.1); default 4*M (Rice-coded lists, mkfs's
    /// default). Fewer bytes store fewer neighbours in large collections
    /// (about 17 bits an id at a million vectors, 14 at 100,000).
    #[arg(long)]
    list_bytes: Option<u32>,
    /// VexFS only: the image's journal, in MiB (mkfs.vexfs --journal-blocks 256 per MiB); 0 takes mkfs's
    /// default for the image's size (1/64 of it, at least 16 MiB: 16 MiB for images up to 1 GiB,
    /// about 500,000 vectors of dimension 128; 26 MiB at a million). Why 64 by default: a build
    /// commits every 2,048 changed metadata blocks and checkpoints whenever the ring fills; a
    /// larger ring checkpoints less often, so a node block rewritten by many commits is written
    /// back once per checkpoint (100,000 vectors, files + vectors + close: 36.2 s with 16 MiB,
    /// 31.8 s with 64 MiB). ext4 gives 64 MiB to filesystems of 2 to 16 GiB.
    #[arg(long, default_value_t = 64)]
    journal_mib: u64,
    /// VexFS only: skip `Fs::reorder_collection` (`vexctl reorder`) after the inserts. By
    /// default the build renumbers the nodes so that near vectors lie near each other in
    /// the image (the same graph; searches load fewer cache lines and pages); its time is
    /// part of the build rows.
    #[arg(long)]
    no_reorder: bool,
    /// VexFS only: attach each vector with its own `Fs::set_vector` (a journaled transaction
    /// per vector, as through a mount) instead of one `Fs::bulk_load` (what `vexctl import`
    /// does into an empty collection on an unmounted image: the graph built outside the
    /// journal as orphan files, swapped in by one last transaction).
    #[arg(long)]
    per_vector: bool,
    /// The ef sweep (search beam widths).
    #[arg(long, value_delimiter = ',', default_value = "10,16,24,32,48,64,96,128,192,256")]
    efs: Vec<usize>,
    /// Passes over the query set at each ef, on both sides; the fastest counts (as in
    /// ann-benchmarks). The first pass also pays for mapping the image's pages.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Alternating rounds: after the first VexFS sweep and hnswlib run, each further round sweeps
    /// the VexFS image and then hnswlib's saved index again, and each ef's QPS is the fastest
    /// over all rounds. On a machine that other work shares, a noisy minute then cannot favour
    /// one side (a further round took about 10 s at 100,000 × 128).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Where data sets and images are cached (one subdirectory per data set).
    #[arg(long, default_value = "target/bench-ann")]
    workdir: PathBuf,
    /// Seed of the data generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Build the VexFS image again even if one with the same parameters is cached (needed after
    /// changing VexFS's code: the cache only keys on the parameters).
    #[arg(long)]
    rebuild: bool,
    /// Run VexFS only.
    #[arg(long)]
    skip_peer: bool,
    /// Also write everything measured as JSON to this file.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
}

fn check(a: &RunArgs) -> Result<()> {
    let max_dim = vexfs::format::vector::MAX_DIM as usize;
    let max_ef = vexfs::vector::query::MAX_K;
    if a.n < K || a.n > u32::MAX as usize / 2 {
        return Err(format!("--n must be {K}..={}", u32::MAX / 2).into());
    }
    if !(1..=max_dim).contains(&a.dim) {
        return Err(format!("--dim must be 1..={max_dim}").into());
    }
    if a.queries == 0 || a.clusters == 0 {
        return Err("--queries and --clusters must be at least 1".into());
    }
    if a.runs == 0 || a.rounds == 0 {
        return Err("--runs and --rounds must be at least 1".into());
    }
    if a.journal_mib > 256 {
        return Err("--journal-mib must be 0..=256 (the format's largest journal is 65,536 blocks)".into());
    }
    if a.efs.is_empty() || a.efs.iter().any(|&e| !(1..=max_ef).contains(&e)) {
        return Err(format!("--efs must be a list of 1..={max_ef}").into());
    }
    Ok(())
}

/// The whole benchmark; `Ok(false)` when it finished but the hnswlib side failed.
fn run(a: &RunArgs) -> Result<bool> {
    check(a)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let params = DataParams::new(a.n, a.dim, a.queries, a.clusters, a.seed);
    let data = DataFiles::new(a.workdir.join(params.dir_name()), params);
    let generated = data::prepare(&data, threads)?;
    let image = ImageFiles::new(&data, a.m, a.ef_construction, a.list_bytes);
    let build = vexfs_side::build(
        &data,
        &image,
        (
            a.m,
            a.ef_construction,
            a.list_bytes,
            (a.journal_mib > 0).then_some(a.journal_mib << 8),
        ),
        (!a.no_reorder, a.per_vector),
        a.rebuild,
        || match generated {
            Some(base) => Ok(base),
            None => data::read_fvecs(&data.base),
        },
    )?;
    // /proc/self/exe still runs this binary when a rebuild replaced the file during the build.
    let exe = match PathBuf::from("/proc/self/exe") {
        p if p.exists() => p,
        _ => std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?,
    };
    let mut search = vexfs_side::run_child(&exe, &data, &image, &a.efs, a.runs)?;
    // Kept for the later rounds' sweeps, next to the VexFS image of the same parameters.
    let peer_index = image.dir.join("hnswlib-index.bin");
    let (mut peer, peer_ok) = if a.skip_peer {
        (None, true)
    } else {
        let keep = (a.rounds > 1).then_some(peer_index.as_path());
        match peer::run(&data, (a.m, a.ef_construction), &a.efs, a.runs, keep) {
            Ok(p) => (Some(p), true),
            Err(e) => {
                eprintln!("bench-ann: error: hnswlib side: {e}");
                (None, false)
            }
        }
    };
    for round in 2..=a.rounds {
        eprintln!("bench-ann: round {round} of {}", a.rounds);
        let again = vexfs_side::run_child(&exe, &data, &image, &a.efs, a.runs)?;
        bench::keep_fastest(&mut search.sweep, &again.sweep);
        if let Some(p) = peer.as_mut() {
            let again = peer::sweep(&data, &peer_index, &a.efs, a.runs)?;
            bench::keep_fastest(&mut p.sweep, &again);
        }
    }
    if a.rounds > 1 && peer.is_some() {
        remove_if_exists(&peer_index)?;
    }

    let rows = report::rows(a.n, &build, &search, peer.as_ref());
    let s = &search.stats;
    println!(
        "VexFS offline search vs {}: n={} dim={} queries={} clusters={} seed={}, M={} ef_construction={}, \
         VexFS list bytes {}, journal {}, recall@{K}, one thread each",
        peer.as_ref()
            .map_or_else(|| "(hnswlib not run)".into(), |p| format!("hnswlib {}", p.version)),
        a.n,
        a.dim,
        a.queries,
        a.clusters,
        a.seed,
        a.m,
        a.ef_construction,
        if a.list_bytes.is_some() {
            s.list_bytes.to_string()
        } else {
            format!("{} (default)", s.list_bytes)
        },
        match a.journal_mib {
            0 => "mkfs's default".to_string(),
            mib => format!("{mib} MiB"),
        }
    );
    println!(
        "VexFS: {} vectors, simd {}, max level {}, level-0 degree {:.1}; image {} (mkfs {:.2}s, {}, close {:.2}s, \
         fsck {}), open {:.2} ms",
        s.count,
        s.simd,
        s.max_level,
        s.avg_degree_level0,
        if build.reused {
            "reused (build figures from its build.json)"
        } else {
            "built now"
        },
        build.mkfs_seconds,
        match (build.reordered, build.params.reorder) {
            (true, _) => format!("reordered in {:.2}s", build.reorder_seconds),
            (false, true) => "reorder refused".into(),
            (false, false) => "not reordered (--no-reorder)".into(),
        },
        build.close_seconds,
        if build.fsck.is_empty() { "not run" } else { &build.fsck },
        search.open_ms
    );
    println!();
    print!("{}", report::table(&rows));
    println!();
    println!(
        "Ratios are VexFS/hnswlib; \"better\" names the side that wins the row. QPS @ {TARGET_RECALL} is linear in \
         recall between the efs that bracket it. Each QPS is the fastest of {} passes over the queries{}.",
        a.runs,
        match a.rounds {
            1 => String::new(),
            r => format!(" in each of {r} alternating rounds"),
        }
    );
    let samples: Vec<String> = search
        .first_answer_ms_samples
        .iter()
        .map(|x| format!("{x:.2}"))
        .collect();
    println!(
        "First answer: open + one query at ef={}; VexFS the median of {} fresh opens ({} ms), hnswlib one fresh \
         process.",
        search.first_answer_ef,
        samples.len(),
        samples.join(", ")
    );

    if let Some(out) = &a.json {
        let summary = serde_json::json!({
            "params": {
                "n": a.n, "dim": a.dim, "queries": a.queries, "clusters": a.clusters, "seed": a.seed,
                "m": a.m, "ef_construction": a.ef_construction, "list_bytes": a.list_bytes, "journal_mib": a.journal_mib, "no_reorder": a.no_reorder, "per_vector": a.per_vector, "efs": a.efs, "runs": a.runs, "rounds": a.rounds, "k": K,
                "target_recall": TARGET_RECALL,
            },
            "data_dir": data.dir,
            "image": image.image,
            "vexfs": {
                "build": build,
                "build_reused": build.reused,
                "search": search,
                "at_target_recall": at_recall(&search.sweep, TARGET_RECALL),
            },
            "hnswlib": peer.as_ref().map(|p| serde_json::json!({
                "report": p,
                "at_target_recall": at_recall(&p.sweep, TARGET_RECALL),
            })),
            "rows": rows,
        });
        write_json(out, &summary)?;
    }
    Ok(peer_ok)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.internal {
        Some(Internal::SearchChild(c)) => vexfs_side::child(c).and_then(|r| {
            println!("{}", serde_json::to_string(&r)?);
            Ok(true)
        }),
        None => run(&cli.run),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench-ann: error: {e}");
            ExitCode::FAILURE
        }
    }
}
