//! `vexctl`: manage and query the vector collections of a VexFS image or
//! mount.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vexfs_tools::vecfile::VecFormat;
use vexfs_tools::vexctl::{events, import, manage, search, Failure, Target};

/// Manage and query VexFS vector collections.
///
/// TARGET is an unmounted image file or block device (opened directly,
/// through the same core as the mount: read-only commands take a shared
/// lock), or the mount point of a mounted image (commands go through its
/// /.vexfs control files and the user.vexfs.vector.<collection> extended
/// attributes).
#[derive(Parser, Debug)]
#[command(name = "vexctl", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List the collections (count, dimension, metric, type, M).
    Collections {
        target: PathBuf,
        /// One JSON object per collection.
        #[arg(long)]
        json: bool,
    },
    /// Statistics of one collection: vectors, deleted slots, levels, average
    /// degree, bytes per vector for the vectors and for the graph.
    Stats {
        target: PathBuf,
        collection: String,
        #[arg(long)]
        json: bool,
    },
    /// Create a collection: NAME:DIM:METRIC[:TYPE], metric l2|cosine|ip,
    /// type f32 (default), f16 or int8.
    Create {
        target: PathBuf,
        spec: String,
        /// HNSW M: neighbours per node (2M at level 0), 1-256.
        #[arg(long, default_value_t = 16)]
        m: u16,
        /// HNSW beam width while building.
        #[arg(long, default_value_t = 200)]
        ef_construction: u16,
        /// int8 only: element q stands for q * SCALE (default 1/127).
        #[arg(long)]
        int8_scale: Option<f32>,
        /// Bytes of each node's level-0 neighbour list (images with
        /// packed_nodes, 4-2048; default 4*M, 64 at M 16, with rice_lists,
        /// else 6*M-4, 92): fewer bytes keep fewer neighbours in large
        /// collections (a Rice-coded id costs about 14 bits at 100,000
        /// vectors and 17 at a million, a varint one 2 and 2.6 bytes),
        /// lowering recall at equal ef; more cost graph bytes per vector.
        /// For a million vectors or more, 80 has room for full lists (32 ids at 17 bits take about 69 bytes).
        #[arg(long)]
        list_bytes: Option<u32>,
    },
    /// Drop a collection: every vector is detached, its files freed.
    Drop { target: PathBuf, collection: String },
    /// Rebuild a collection's graph on an unmounted image: every live vector
    /// is inserted again at its slot; deleted slots are freed for reuse.
    Rebuild {
        /// The image (a file or block device), unmounted.
        target: PathBuf,
        /// The collection's name.
        collection: String,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Renumber a collection's nodes on an unmounted image so that nodes
    /// near each other in the vector space lie near each other in the
    /// image: the same graph and the same answers, found faster (searches
    /// wait on loading records; measured +5-24% queries per second at
    /// 100,000 vectors). Run it after a bulk import. Every file's
    /// reference moves in one last transaction, which must fit the
    /// journal (about one block per 16 files); if not, nothing changes.
    Reorder {
        /// The image (a file or block device), unmounted.
        target: PathBuf,
        /// The collection's name.
        collection: String,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
    },
    /// The k files whose vectors are nearest to a query.
    Search {
        target: PathBuf,
        collection: String,
        /// The query: numbers separated by commas or spaces (a leading
        /// minus sign is part of the value: --vector -0.5,1).
        #[arg(long, conflicts_with_all = ["query_file", "like"], allow_hyphen_values = true)]
        vector: Option<String>,
        /// Take the query from a .fvecs, .npy or .csv file...
        #[arg(long)]
        query_file: Option<PathBuf>,
        /// ...record number N of it.
        #[arg(long, default_value_t = 0)]
        query_index: u64,
        /// Use the vector of this file (a path inside the filesystem).
        #[arg(long)]
        like: Option<String>,
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        /// Search beam width (default max(k, 64)); larger is slower and more exact.
        #[arg(long)]
        ef: Option<usize>,
        /// Only files below this directory (a path inside the filesystem).
        #[arg(long)]
        subtree: Option<String>,
        /// Stop after scoring this many nodes and return the best so far.
        #[arg(long)]
        max_visited: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Attach vectors from a file: .npy (2-D, f32/f64/f16/int8), .fvecs, or
    /// CSV rows `path,v1,...,vN`. Rows without a path go to DIR/<i/1000>/<i>.
    ///
    /// Into an empty collection of an unmounted image the import is one bulk
    /// load: the graph is built outside the journal (about a third faster)
    /// and every vector is attached at the end, or none if a row fails.
    /// Otherwise each vector is attached as it is read.
    Import {
        /// An unmounted image (or block device), or a mount point.
        target: PathBuf,
        /// The collection to attach the vectors in.
        collection: String,
        /// The vectors: .npy, .fvecs or .csv (see --format).
        file: PathBuf,
        /// The file's format when its extension does not say: npy, fvecs or csv.
        #[arg(long, value_parser = parse_format)]
        format: Option<VecFormat>,
        /// Directory (inside the filesystem) for rows without a path.
        #[arg(long, default_value = "/imported")]
        dir: String,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
        /// Then renumber the collection's nodes for locality, as `vexctl
        /// reorder` (an unmounted image only): faster searches.
        #[arg(long)]
        reorder: bool,
    },
    /// The event stream: one line per change (SEQ, time, operation,
    /// details). From an unmounted image: the committed events; from a
    /// mount point: through its /.vexfs/events.
    Events {
        target: PathBuf,
        /// Start at this sequence number, or `end` for new events only
        /// (default: the oldest event still held).
        #[arg(long, value_parser = events::parse_since)]
        since: Option<events::Since>,
        /// Keep waiting for new events (an image is reread every 0.5 s).
        #[arg(short, long)]
        follow: bool,
        /// One JSON object per event, as the control file gives them.
        #[arg(long)]
        json: bool,
        /// Only this operation (create, unlink, rename, write, ...); repeat or
        /// separate with commas.
        #[arg(long = "op", value_name = "NAME", value_delimiter = ',')]
        ops: Vec<String>,
        /// Only events in this directory or below (a path inside the filesystem).
        #[arg(long)]
        subtree: Option<String>,
        /// Stop after N events.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
}

fn parse_format(s: &str) -> Result<VecFormat, String> {
    match s {
        "npy" => Ok(VecFormat::Npy),
        "fvecs" => Ok(VecFormat::Fvecs),
        "csv" => Ok(VecFormat::Csv),
        _ => Err(format!("{s:?}: use npy, fvecs or csv")),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.cmd {
        Cmd::Collections { target, json } => manage::list(&Target::parse(&target)?, None, json),
        Cmd::Stats {
            target,
            collection,
            json,
        } => manage::list(&Target::parse(&target)?, Some(&collection), json),
        Cmd::Create {
            target,
            spec,
            m,
            ef_construction,
            int8_scale,
            list_bytes,
        } => manage::create(
            &Target::parse(&target)?,
            &spec,
            (m, ef_construction),
            int8_scale,
            list_bytes,
        ),
        Cmd::Drop { target, collection } => manage::drop(&Target::parse(&target)?, &collection),
        Cmd::Rebuild {
            target,
            collection,
            quiet,
        } => manage::rebuild(&Target::parse(&target)?, &collection, quiet),
        Cmd::Reorder {
            target,
            collection,
            quiet,
        } => manage::reorder(&Target::parse(&target)?, &collection, quiet),
        Cmd::Search {
            target,
            collection,
            vector,
            query_file,
            query_index,
            like,
            k,
            ef,
            subtree,
            max_visited,
            json,
        } => {
            let q = match (&vector, &query_file, &like) {
                (Some(v), _, _) => search::Query::Literal(v),
                (_, Some(f), _) => search::Query::File(f, query_index),
                (_, _, Some(p)) => search::Query::Like(p),
                _ => return Err(Failure::new("give the query with --vector, --query-file or --like")),
            };
            let o = search::Options {
                collection: &collection,
                k,
                ef,
                subtree: subtree.as_deref(),
                max_visited,
                json,
            };
            search::run(&Target::parse(&target)?, &q, &o)
        }
        Cmd::Import {
            target,
            collection,
            file,
            format,
            dir,
            quiet,
            reorder,
        } => {
            let o = import::Options {
                collection: &collection,
                file: &file,
                format,
                dir: &dir,
                quiet,
                reorder,
            };
            import::run(&Target::parse(&target)?, &o)
        }
        Cmd::Events {
            target,
            since,
            follow,
            json,
            ops,
            subtree,
            limit,
        } => {
            let o = events::Options {
                since: since.unwrap_or(events::Since::Oldest),
                follow,
                json,
                ops: &ops,
                subtree: subtree.as_deref(),
                limit,
            };
            events::run(&Target::parse(&target)?, &o)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("vexctl: {}", f.message);
            ExitCode::from(f.status)
        }
    }
}
