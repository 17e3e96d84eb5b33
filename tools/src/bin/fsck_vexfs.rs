//! `fsck.vexfs`: check a VexFS image.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use vexfs::check::{self, CheckOptions};
use vexfs::image::{Image, Mode};

/// Exit codes, as e2fsck uses them.
const EXIT_CLEAN: u8 = 0;
const EXIT_UNCORRECTED: u8 = 4;
const EXIT_OPERATIONAL: u8 = 8;

/// Check a VexFS filesystem image.
///
/// Verifies the superblock, every checksum, the bitmaps against the blocks
/// and inodes actually in use, link counts, the directory tree (including
/// cycles and dangling entries), the collection catalogue and the journal
/// and event ring headers. Every problem is printed with its location.
///
/// Exit status: 0 clean, 4 problems found and left uncorrected, 8 the image
/// could not be checked (cannot open, bad superblock, in use). This version
/// only checks: -y and -p report what they would need to repair and change
/// nothing.
#[derive(Parser, Debug)]
#[command(name = "fsck.vexfs", version, about, long_about)]
struct Args {
    /// Image file or block device.
    image: PathBuf,
    /// Open read-only, do not replay the journal, answer "no" to every repair.
    #[arg(short = 'n')]
    no: bool,
    /// Answer "yes" to every repair (repair is not available yet).
    #[arg(short = 'y')]
    yes: bool,
    /// Repair what is safe without asking (repair is not available yet).
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

/// Replay the journal (unless -n), as e2fsck does before checking.
fn replay_journal(args: &Args) -> Result<usize, vexfs::FsError> {
    if args.no {
        return Ok(0);
    }
    let mut img = Image::open(&args.image, Mode::ReadWrite)?;
    let g = img.geometry().clone();
    if !vexfs::journal::enabled(&g) {
        return Ok(0);
    }
    let seed = img.superblock().s_checksum_seed.get();
    vexfs::journal::recover(img.file_mut(), &g, seed)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match replay_journal(&args) {
        Ok(0) => {}
        Ok(n) => eprintln!(
            "fsck.vexfs: {}: replayed {n} journal transaction(s)",
            args.image.display()
        ),
        // A damaged or locked image is reported by the read-only open below.
        Err(_) => {}
    }
    let img = match Image::open(&args.image, Mode::ReadOnly) {
        Ok(i) => i,
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"image": args.image.display().to_string(), "clean": false, "error": e.to_string()})
                );
            }
            eprintln!("fsck.vexfs: {}: {e}", args.image.display());
            return ExitCode::from(EXIT_OPERATIONAL);
        }
    };
    let bar = indicatif::ProgressBar::new(0);
    if !args.progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut tick = |phase: &str, done: u64, total: u64| {
        bar.set_message(phase.to_string());
        bar.set_length(total);
        bar.set_position(done);
    };
    let report = check::check(
        &img,
        CheckOptions {
            progress: Some(&mut tick),
        },
    );
    bar.finish_and_clear();
    print_report(&args, &img, &report);
    if report.is_clean() {
        ExitCode::from(EXIT_CLEAN)
    } else {
        if args.yes || args.preen {
            eprintln!("fsck.vexfs: repair is not implemented in this version; nothing was changed");
        }
        ExitCode::from(EXIT_UNCORRECTED)
    }
}

fn print_report(args: &Args, img: &Image, r: &check::Report) {
    let g = img.geometry();
    if args.json {
        let v = serde_json::json!({
            "image": args.image.display().to_string(),
            "clean": r.is_clean(),
            "inodes_in_use": r.inodes_checked, "inodes": g.inodes_count,
            "blocks_in_use": r.blocks_in_use, "blocks": g.blocks_count,
            "problems": r.problems.iter().map(|p| serde_json::json!({"location": p.location, "message": p.message})).collect::<Vec<_>>(),
        });
        println!("{v}");
        return;
    }
    for p in &r.problems {
        println!("{p}");
    }
    let verdict = if r.is_clean() {
        "clean".to_string()
    } else {
        format!("{} problem(s)", r.problems.len())
    };
    println!(
        "{}: {verdict}, {}/{} inodes, {}/{} blocks",
        args.image.display(),
        r.inodes_checked,
        g.inodes_count,
        r.blocks_in_use,
        g.blocks_count
    );
}
