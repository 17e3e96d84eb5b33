//! `fsck.vexfs`: check a VexFS image, and repair it with `-y` or `-p`.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use vexfs::check::{self, CheckOptions, Problem, RepairMode, RepairOutcome, Report};
use vexfs::image::{Image, Mode};

/// Exit codes, as e2fsck uses them.
const EXIT_CLEAN: u8 = 0;
const EXIT_UNCORRECTED: u8 = 4;
const EXIT_OPERATIONAL: u8 = 8;
const EXIT_USAGE: u8 = 16;

/// Check a VexFS filesystem image, and repair it.
///
/// Verifies the superblock, every checksum, the bitmaps against the blocks
/// and inodes actually in use, link counts, the directory tree (including
/// cycles and dangling entries), the collection catalogue and graphs, and
/// the journal and event ring. Every problem is printed with its location.
///
/// -y repairs what it can: bitmaps, summaries and free counters, i_blocks,
/// link counts, entry types, "." and "..", entries naming no usable inode,
/// unreachable inodes (reconnected into /lost+found as #INO), the event
/// ring, collection graphs (rebuilt). -p (or -a) repairs only what is safe
/// without a human and stops on anything else. Each change is printed as
/// "fixed: LOCATION: WHAT". Repairs go through the journal, like any other
/// change.
///
/// Exit status: 0 clean, 1 problems corrected, 4 problems left uncorrected,
/// 8 the image could not be checked (cannot open, bad superblock, in use),
/// 16 usage error.
#[derive(Parser, Debug)]
#[command(name = "fsck.vexfs", version, about, long_about)]
struct Args {
    /// Image file or block device.
    image: PathBuf,
    /// Open read-only, do not replay the journal, answer "no" to every repair.
    #[arg(short = 'n')]
    no: bool,
    /// Answer "yes" to every repair.
    #[arg(short = 'y')]
    yes: bool,
    /// Repair what is safe without asking; stop (exit 4) on anything else.
    #[arg(short = 'p', short_alias = 'a')]
    preen: bool,
    /// Check even if the image is marked clean (always done).
    #[arg(short = 'f')]
    force: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Show progress.
    #[arg(short = 'C', long)]
    progress: bool,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_CLEAN });
        }
    };
    if [args.no, args.yes, args.preen].iter().filter(|&&x| x).count() > 1 {
        eprintln!("fsck.vexfs: only one of the options -n, -y and -p/-a may be given");
        return ExitCode::from(EXIT_USAGE);
    }
    let bar = indicatif::ProgressBar::new(0);
    if !args.progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut tick = |phase: &str, done: u64, total: u64| {
        bar.set_message(phase.to_string());
        bar.set_length(total);
        bar.set_position(done);
    };
    let opts = CheckOptions {
        progress: Some(&mut tick),
    };
    let mode = match (args.yes, args.preen) {
        (true, _) => Some(RepairMode::Yes),
        (_, true) => Some(RepairMode::Preen),
        _ => None,
    };
    let result = match mode {
        Some(m) => check::repair(&args.image, m, opts),
        None => check_only(&args, opts),
    };
    bar.finish_and_clear();
    match result {
        Ok(outcome) => {
            print_outcome(&args, &outcome);
            ExitCode::from(outcome.exit_code())
        }
        Err(e) => {
            if args.json {
                let v = serde_json::json!({
                    "image": args.image.display().to_string(), "clean": false,
                    "exit": EXIT_OPERATIONAL, "error": e.to_string(),
                });
                println!("{v}");
            }
            eprintln!("fsck.vexfs: {}: {e}", args.image.display());
            ExitCode::from(EXIT_OPERATIONAL)
        }
    }
}

/// No repair: replay the journal (unless -n), check, change nothing else.
fn check_only(args: &Args, opts: CheckOptions<'_>) -> vexfs::Result<RepairOutcome> {
    // A journal that cannot be replayed is an operational error (exit 8).
    let replayed = if args.no {
        0
    } else {
        check::replay_journal(&args.image)?
    };
    let img = Image::open(&args.image, Mode::ReadOnly)?;
    let report = check::check(&img, opts);
    Ok(RepairOutcome {
        replayed,
        found: report.clone(),
        remaining: report,
        inodes_count: img.geometry().inodes_count,
        blocks_count: img.geometry().blocks_count,
        ..Default::default()
    })
}

fn problems_json(r: &Report) -> Vec<serde_json::Value> {
    let one = |p: &Problem| serde_json::json!({"location": p.location, "message": p.message, "repairable": p.kind.repairable()});
    r.problems.iter().map(one).collect()
}

fn print_outcome(args: &Args, o: &RepairOutcome) {
    let name = args.image.display();
    if o.replayed > 0 {
        eprintln!("fsck.vexfs: {name}: replayed {} journal transaction(s)", o.replayed);
    }
    let r = &o.remaining;
    if args.json {
        let mode = if args.yes {
            "yes"
        } else if args.preen {
            "preen"
        } else {
            "check"
        };
        let v = serde_json::json!({
            "image": name.to_string(), "mode": mode,
            "clean": r.is_clean(), "exit": o.exit_code(),
            "inodes_in_use": r.inodes_checked, "inodes": o.inodes_count,
            "blocks_in_use": r.blocks_in_use, "blocks": o.blocks_count,
            "problems": problems_json(&o.found),
            "fixed": o.fixed.iter().map(|f| serde_json::json!({"location": f.location, "what": f.what})).collect::<Vec<_>>(),
            "remaining": problems_json(r),
            "refused": o.refused, "errors": o.errors,
        });
        println!("{v}");
        return;
    }
    for p in &o.found.problems {
        println!("{p}");
    }
    for f in &o.fixed {
        println!("fixed: {f}");
    }
    let repaired = args.yes || args.preen;
    if repaired && !o.fixed.is_empty() {
        for p in &r.problems {
            println!("uncorrected: {p}");
        }
    }
    for e in &o.errors {
        eprintln!("fsck.vexfs: {name}: {e}");
    }
    if o.refused {
        eprintln!("fsck.vexfs: {name}: UNEXPECTED INCONSISTENCY; RUN fsck.vexfs MANUALLY (without -p or -a)");
    }
    let verdict = match o.exit_code() {
        0 => "clean".to_string(),
        1 => format!(
            "{} problem(s) corrected ({} fixes)",
            o.found.problems.len(),
            o.fixed.len()
        ),
        _ if !o.fixed.is_empty() => format!(
            "{} fixes, {} problem(s) left uncorrected",
            o.fixed.len(),
            r.problems.len()
        ),
        _ => format!("{} problem(s)", r.problems.len()),
    };
    println!(
        "{name}: {verdict}, {}/{} inodes, {}/{} blocks",
        r.inodes_checked, o.inodes_count, r.blocks_in_use, o.blocks_count
    );
    if o.exit_code() == EXIT_UNCORRECTED && !repaired {
        eprintln!("fsck.vexfs: {name}: run with -y to repair (or -p for the safe repairs only)");
    }
}
