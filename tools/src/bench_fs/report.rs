//! Pairing the two filesystems' figures into rows with ratios and targets (and the floor's
//! figures, bench-fs --floor); the table.

use super::rss::RssPeak;
use super::{Figures, Metric, Target};
use serde::Serialize;

/// Targets of issue 8: sequential read and write at least 0.8x ext4, everything else (random
/// 4 KiB read, metadata, ...) at least 0.5x.
pub fn target_for(name: &str) -> f64 {
    match name {
        "seq-write" | "seq-read" => 0.8,
        _ => 0.5,
    }
}

/// The daemon's anonymous memory must stay below this during every workload.
pub const RSS_ANON_TARGET_MIB: f64 = 64.0;

/// One workload run on one filesystem: its rows, and the daemon's memory (VexFS only).
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    pub workload: String,
    pub fs: Target,
    /// Position in the run (the order alternates between workloads).
    pub order: usize,
    pub seconds: f64,
    pub figures: Vec<Figures>,
    pub rss_peak: Option<RssPeak>,
}

/// One row of the table: a figure on both filesystems.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub what: String,
    pub unit: &'static str,
    pub vexfs: f64,
    pub ext4: f64,
    /// How many times as fast VexFS is (VexFS/ext4 for rates, ext4/VexFS for times).
    pub ratio: f64,
    pub target: f64,
    pub met: bool,
    pub rss_anon_peak_mib: Option<f64>,
    pub vm_rss_peak_mib: Option<f64>,
    pub vexfs_metrics: Vec<Metric>,
    pub ext4_metrics: Vec<Metric>,
    /// The floor filesystem's figure (bench-fs --floor), when it ran this workload. The floor's
    /// fields are left out of the JSON without --floor, which then reads as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<f64>,
    /// How many times as fast the floor is as ext4 (same convention as `ratio`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_ratio: Option<f64>,
    /// How many times as fast VexFS is as the floor (at most about 1: the floor is the limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vexfs_floor_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub floor_metrics: Vec<Metric>,
}

fn speed_ratio(v: &Metric, e: &Metric) -> f64 {
    if v.higher_is_better {
        v.value / e.value
    } else {
        e.value / v.value
    }
}

/// The figures named `name` of workload `workload` on `fs`, if it ran there.
fn figures<'a>(sides: &'a [Side], fs: Target, workload: &str, name: &str) -> Option<&'a Figures> {
    sides
        .iter()
        .find(|s| s.fs == fs && s.workload == workload)?
        .figures
        .iter()
        .find(|f| f.name == name)
}

/// Rows in the order of the VexFS figures; a figure missing on VexFS or ext4 is left out (one
/// missing on the floor leaves only the floor's columns empty).
pub fn rows(sides: &[Side]) -> Vec<Row> {
    let mut out = Vec::new();
    for v in sides.iter().filter(|s| s.fs == Target::Vexfs) {
        let Some(e) = sides.iter().find(|s| s.fs == Target::Ext4 && s.workload == v.workload) else {
            continue;
        };
        for fv in &v.figures {
            let Some(fe) = e.figures.iter().find(|f| f.name == fv.name) else {
                continue;
            };
            let (Some(mv), Some(me)) = (fv.metrics.first(), fe.metrics.first()) else {
                continue;
            };
            let ratio = speed_ratio(mv, me);
            let target = target_for(&fv.name);
            let ff = figures(sides, Target::Floor, &v.workload, &fv.name);
            let mf = ff.and_then(|f| f.metrics.first());
            out.push(Row {
                name: fv.name.clone(),
                what: fv.what.clone(),
                unit: mv.unit,
                vexfs: mv.value,
                ext4: me.value,
                ratio,
                target,
                met: ratio >= target,
                rss_anon_peak_mib: v.rss_peak.map(|r| r.rss_anon_kib as f64 / 1024.0),
                vm_rss_peak_mib: v.rss_peak.map(|r| r.vm_rss_kib as f64 / 1024.0),
                vexfs_metrics: fv.metrics.clone(),
                ext4_metrics: fe.metrics.clone(),
                floor: mf.map(|m| m.value),
                floor_ratio: mf.map(|m| speed_ratio(m, me)),
                vexfs_floor_ratio: mf.map(|m| speed_ratio(mv, m)),
                floor_metrics: ff.map(|f| f.metrics.clone()).unwrap_or_default(),
            });
        }
    }
    out
}

fn num(v: f64) -> String {
    match v.abs() {
        x if x >= 100.0 => format!("{v:.0}"),
        x if x >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.3}"),
    }
}

/// The main table, then each row's other figures. The floor's columns appear when some row has a
/// floor figure.
pub fn print_table(rows: &[Row]) {
    let with_floor = rows.iter().any(|r| r.floor.is_some());
    let floor_head = if with_floor {
        format!(" {:>12} {:>11} {:>12}", "floor", "floor/ext4", "VexFS/floor")
    } else {
        String::new()
    };
    println!(
        "{:<16} {:>10} {:>12} {:>12} {:>8} {:>7} {:>6}{floor_head} {:>10} {:>10}",
        "workload", "unit", "VexFS", "ext4", "VexFS/ext4", "target", "", "RssAnon", "VmRSS"
    );
    for r in rows {
        let mib = |v: Option<f64>| v.map_or_else(|| "-".into(), |m| format!("{m:.1} MiB"));
        let times = |v: Option<f64>| v.map_or_else(|| "-".into(), |x| format!("{x:.2}x"));
        let floor_cols = if with_floor {
            format!(
                " {:>12} {:>11} {:>12}",
                r.floor.map_or_else(|| "-".into(), num),
                times(r.floor_ratio),
                times(r.vexfs_floor_ratio)
            )
        } else {
            String::new()
        };
        println!(
            "{:<16} {:>10} {:>12} {:>12} {:>9.2}x {:>6.1}x {:>6}{floor_cols} {:>10} {:>10}",
            r.name,
            r.unit,
            num(r.vexfs),
            num(r.ext4),
            r.ratio,
            r.target,
            if r.met { "met" } else { "MISSED" },
            mib(r.rss_anon_peak_mib),
            mib(r.vm_rss_peak_mib)
        );
    }
    println!("(ratio: how many times as fast VexFS is; for times in s, ext4/VexFS. RssAnon, VmRSS: peaks of the mount daemon during the workload on VexFS)");
    if with_floor {
        println!("(floor: fuse-floor, an in-memory FUSE filesystem doing no work over VexFS's session; floor/ext4: how many times as fast it is as ext4; VexFS/floor: how many times as fast VexFS is as the floor)");
    }
    println!();
    println!(
        "other figures (VexFS | ext4{}):",
        if with_floor { " | floor" } else { "" }
    );
    for r in rows {
        let rest: Vec<String> = r
            .vexfs_metrics
            .iter()
            .zip(&r.ext4_metrics)
            .enumerate()
            .skip(1)
            .map(|(i, (v, e))| match r.floor_metrics.get(i) {
                Some(f) => format!("{} {} | {} | {}", v.unit, num(v.value), num(e.value), num(f.value)),
                None => format!("{} {} | {}", v.unit, num(v.value), num(e.value)),
            })
            .collect();
        if rest.is_empty() {
            println!("  {:<16} {}", r.name, r.what);
        } else {
            println!("  {:<16} {}: {}", r.name, r.what, rest.join("; "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(fs: Target, rate: f64, secs: f64) -> Side {
        Side {
            workload: "w".into(),
            fs,
            order: 0,
            seconds: 1.0,
            figures: vec![
                Figures {
                    name: "seq-read".into(),
                    what: String::new(),
                    metrics: vec![Metric::higher("MiB/s", rate)],
                },
                Figures {
                    name: "tar-x".into(),
                    what: String::new(),
                    metrics: vec![Metric::lower("s", secs)],
                },
            ],
            rss_peak: None,
        }
    }

    #[test]
    fn the_floor_is_paired_when_it_ran() {
        let sides = [
            side(Target::Vexfs, 70.0, 4.0),
            side(Target::Ext4, 100.0, 2.0),
            side(Target::Floor, 140.0, 1.0),
        ];
        let rows = rows(&sides);
        assert!((rows[0].floor_ratio.unwrap() - 1.4).abs() < 1e-9);
        assert!((rows[0].vexfs_floor_ratio.unwrap() - 0.5).abs() < 1e-9);
        assert!((rows[1].floor_ratio.unwrap() - 2.0).abs() < 1e-9, "times: ext4/floor");
        assert!((rows[1].vexfs_floor_ratio.unwrap() - 0.25).abs() < 1e-9);
        assert!(rows[1].met, "the floor does not change VexFS's target");
        let without = super::rows(&sides[..2]);
        assert!(without[0].floor.is_none() && without[0].floor_metrics.is_empty());
    }

    #[test]
    fn ratios_say_how_many_times_as_fast_vexfs_is() {
        let rows = rows(&[side(Target::Vexfs, 70.0, 4.0), side(Target::Ext4, 100.0, 2.0)]);
        assert_eq!(rows.len(), 2);
        assert!((rows[0].ratio - 0.7).abs() < 1e-9);
        assert!(!rows[0].met, "0.7x misses the 0.8x sequential target");
        assert!((rows[1].ratio - 0.5).abs() < 1e-9);
        assert!(rows[1].met, "0.5x meets the 0.5x target");
    }
}
