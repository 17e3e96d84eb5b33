//! `mkfs.vexfs`: create a VexFS image on a file or block device.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use vexfs::mkfs::{self, CollectionSpec, MkfsOptions, Sizing};

/// Create a VexFS filesystem.
///
/// Without --kernel-layout the image gets the v1 feature set (64-bit block
/// numbers, extents, 256-byte checksummed inodes, hashed directories, a
/// journal, an event ring and vector collections); see format-spec/.
/// With --kernel-layout it is written exactly in the VexFS kernel module's
/// layout (no feature flags, at most 128 MiB, 12 blocks per file).
#[derive(Parser, Debug)]
#[command(name = "mkfs.vexfs", version, about, long_about)]
struct Args {
    /// Image file (created if missing) or block device.
    image: PathBuf,
    /// Image size, e.g. 64M, 4G, 100GiB or bytes; default: the existing
    /// file or device size.
    #[arg(short, long, value_parser = parse_size)]
    size: Option<u64>,
    /// Volume label (up to 16 bytes).
    #[arg(short = 'L', long, default_value = "")]
    label: String,
    /// Write the kernel module's layout (no feature flags).
    #[arg(long)]
    kernel_layout: bool,
    /// Lay out vector records as VexFS before the `packed_nodes` feature
    /// did (32-byte aligned records that never straddle a block; about 60%
    /// more graph bytes per vector), for images older versions must read;
    /// implies --varint-lists.
    #[arg(long)]
    v1_nodes: bool,
    /// Code neighbour lists as LEB128 varints, as VexFS before the
    /// `rice_lists` feature did (about 10% longer lists at 100,000 vectors,
    /// 25% at a million), for images older versions must read.
    #[arg(long)]
    varint_lists: bool,
    /// Create a vector collection NAME:DIM:METRIC[:TYPE]; METRIC is l2,
    /// cosine or ip; TYPE is f32 (default), f16 or int8. Repeatable.
    #[arg(short, long = "collection", value_name = "NAME:DIM:METRIC[:TYPE]")]
    collections: Vec<CollectionSpec>,
    /// Overwrite an existing filesystem signature.
    #[arg(short, long)]
    force: bool,
    /// Filesystem UUID (default: random).
    #[arg(short = 'U', long)]
    uuid: Option<String>,
    /// Bytes of image per inode (default 16384; values below 4096 count as 4096).
    #[arg(short = 'i', long)]
    inode_ratio: Option<u64>,
    /// Journal size in 4 KiB blocks, at least 64 (default: 1/64 of the
    /// image, at least 4096 from 256 MiB up, clamped to 64..65536).
    #[arg(long)]
    journal_blocks: Option<u64>,
    /// Event ring size in 4 KiB blocks, at least 16 (default: 1/512 of the
    /// image, clamped to 16..65536).
    #[arg(long)]
    event_blocks: Option<u64>,
    /// Owner of the root directory, UID:GID (default: the image file's
    /// owner, root for block devices), as mke2fs -E root_owner.
    #[arg(long, value_name = "UID:GID", value_parser = parse_owner)]
    root_owner: Option<(u32, u32)>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a size (try 64M, 4G)"))?;
    let shift = match unit.to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(format!("unknown size unit in '{s}' (K, M, G, T, P)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size '{s}' is too large"))
}

fn parse_owner(s: &str) -> Result<(u32, u32), String> {
    let (u, g) = s.split_once(':').ok_or_else(|| format!("'{s}': expected UID:GID"))?;
    let num = |v: &str| v.parse::<u32>().map_err(|_| format!("'{v}' is not a numeric id"));
    Ok((num(u)?, num(g)?))
}

fn options(args: &Args) -> Result<MkfsOptions, String> {
    let uuid = args
        .uuid
        .as_deref()
        .map(mkfs::parse_uuid)
        .transpose()
        .map_err(|e| e.to_string())?;
    let time = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.parse().ok());
    if args.label.len() > 16 {
        return Err(format!("label '{}' is longer than 16 bytes", args.label));
    }
    Ok(MkfsOptions {
        size: args.size,
        label: args.label.clone(),
        kernel_layout: args.kernel_layout,
        v1_nodes: args.v1_nodes,
        varint_lists: args.varint_lists,
        collections: args.collections.clone(),
        uuid,
        time,
        sizing: Sizing {
            inode_ratio: args.inode_ratio,
            journal_blocks: args.journal_blocks,
            event_blocks: args.event_blocks,
        },
        force: args.force,
        root_owner: args.root_owner,
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let opts = match options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mkfs.vexfs: {e}");
            return ExitCode::from(1);
        }
    };
    let bar = indicatif::ProgressBar::new(0);
    if args.quiet || args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("writing bitmaps {bar:40} {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let result = mkfs::mkfs(&args.image, &opts, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    match result {
        Ok(s) => {
            print_summary(&args, &s, started.elapsed());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mkfs.vexfs: {}: {e}", args.image.display());
            ExitCode::from(1)
        }
    }
}

fn print_summary(args: &Args, s: &mkfs::MkfsSummary, took: std::time::Duration) {
    let uuid = mkfs::format_uuid(&s.uuid);
    if args.json {
        let v = serde_json::json!({
            "image": args.image.display().to_string(),
            "layout": if args.kernel_layout { "kernel" } else { "v1" },
            "uuid": uuid, "label": args.label, "block_size": 4096,
            "blocks": s.blocks, "free_blocks": s.free_blocks, "inodes": s.inodes,
            "free_inodes": s.free_inodes, "first_data_block": s.first_data_block,
            "journal_blocks": s.journal_blocks, "event_blocks": s.event_blocks,
            "features": s.features,
            "collections": args.collections.iter().map(|c| serde_json::json!({"name": c.name, "dim": c.dim, "metric": c.metric.name(), "type": c.elem.name()})).collect::<Vec<_>>(),
            "seconds": took.as_secs_f64(),
        });
        println!("{v}");
    } else if !args.quiet {
        println!(
            "Created a VexFS {} image on {}",
            if args.kernel_layout { "kernel-layout" } else { "v1" },
            args.image.display()
        );
        println!("  UUID {uuid}, label '{}'", args.label);
        println!(
            "  {} blocks of 4096 bytes ({} MiB), {} free",
            s.blocks,
            (s.blocks * 4096) >> 20,
            s.free_blocks
        );
        println!(
            "  {} inodes, {} free; data starts at block {}",
            s.inodes, s.free_inodes, s.first_data_block
        );
        if !args.kernel_layout {
            println!(
                "  journal {} blocks, event ring {} blocks",
                s.journal_blocks, s.event_blocks
            );
            println!("  features: {}", s.features.join(" "));
        }
        for c in &args.collections {
            println!(
                "  collection {}: dim {}, {}, {}",
                c.name,
                c.dim,
                c.metric.name(),
                c.elem.name()
            );
        }
        println!("  done in {:.3} s", took.as_secs_f64());
    }
}
