//! QPS at the target recall (interpolated along the ef sweep) and the comparison table.

use super::peer::PeerReport;
use super::vexfs_side::{BuildReport, SearchReport};
use super::{SweepPoint, TARGET_RECALL};
use serde::Serialize;

/// Where a sweep reaches a recall.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AtRecall {
    /// Linear in recall between the two efs that bracket the target. When the smallest ef
    /// already reaches it, `qps` is that ef's (a lower bound) and `at_smallest_ef` is set.
    Reached {
        qps: f64,
        ef: f64,
        at_smallest_ef: bool,
    },
    NotReached {
        best_recall: f64,
        best_ef: usize,
    },
}

impl AtRecall {
    pub fn qps(&self) -> Option<f64> {
        match *self {
            AtRecall::Reached { qps, .. } => Some(qps),
            AtRecall::NotReached { .. } => None,
        }
    }

    fn text(&self) -> String {
        match *self {
            AtRecall::Reached {
                qps,
                at_smallest_ef: true,
                ef,
            } => format!(">= {qps:.0} (ef={ef:.0}, smallest)"),
            AtRecall::Reached { qps, ef, .. } => format!("{qps:.0} (ef~{ef:.0})"),
            AtRecall::NotReached { best_recall, best_ef } => {
                format!("not reached (best {best_recall:.4} @ ef={best_ef})")
            }
        }
    }
}

/// QPS at recall `target`, from the first ef (in increasing ef order) that reaches it.
pub fn at_recall(sweep: &[SweepPoint], target: f64) -> AtRecall {
    at_recall_of(sweep, target, |p| p.qps)
}

/// [`at_recall`] of the figure `qps_of` takes from each point.
pub fn at_recall_of(sweep: &[SweepPoint], target: f64, qps_of: fn(&SweepPoint) -> f64) -> AtRecall {
    let mut s: Vec<&SweepPoint> = sweep.iter().collect();
    s.sort_by_key(|p| p.ef);
    match s.iter().position(|p| p.recall >= target) {
        Some(0) => AtRecall::Reached {
            qps: qps_of(s[0]),
            ef: s[0].ef as f64,
            at_smallest_ef: true,
        },
        Some(i) => {
            let (a, b) = (s[i - 1], s[i]);
            let f = if b.recall > a.recall {
                (target - a.recall) / (b.recall - a.recall)
            } else {
                1.0
            };
            AtRecall::Reached {
                qps: qps_of(a) + f * (qps_of(b) - qps_of(a)),
                ef: a.ef as f64 + f * (b.ef as f64 - a.ef as f64),
                at_smallest_ef: false,
            }
        }
        None => {
            let best = s
                .iter()
                .max_by(|a, b| a.recall.total_cmp(&b.recall))
                .map_or((0.0, 0), |p| (p.recall, p.ef));
            AtRecall::NotReached {
                best_recall: best.0,
                best_ef: best.1,
            }
        }
    }
}

/// A target from the issue.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Target {
    /// VexFS / hnswlib at least this.
    RatioAtLeast(f64),
    /// VexFS / hnswlib at most this.
    RatioAtMost(f64),
    /// VexFS's own figure below this (absolute).
    Below(f64),
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: String,
    pub vexfs: Option<f64>,
    pub hnswlib: Option<f64>,
    /// VexFS / hnswlib.
    pub ratio: Option<f64>,
    pub higher_is_better: Option<bool>,
    pub target: Option<Target>,
    /// The target's wording (e.g. "< 50 ms at 1M").
    pub target_text: String,
    pub target_met: Option<bool>,
    #[serde(skip)]
    vexfs_text: String,
    #[serde(skip)]
    hnswlib_text: String,
}

struct RowSpec<'a> {
    metric: &'a str,
    vexfs: Option<f64>,
    hnswlib: Option<f64>,
    higher_is_better: Option<bool>,
    target: Option<(Target, &'a str)>,
    decimals: usize,
}

impl RowSpec<'_> {
    fn row(self) -> Row {
        let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |x| format!("{x:.*}", self.decimals));
        let ratio = match (self.vexfs, self.hnswlib) {
            (Some(v), Some(h)) if h != 0.0 => Some(v / h),
            _ => None,
        };
        let target_met = self.target.and_then(|(t, _)| match t {
            Target::RatioAtLeast(x) => ratio.map(|r| r >= x),
            Target::RatioAtMost(x) => ratio.map(|r| r <= x),
            Target::Below(x) => self.vexfs.map(|v| v < x),
        });
        Row {
            metric: self.metric.to_string(),
            vexfs_text: fmt(self.vexfs),
            hnswlib_text: fmt(self.hnswlib),
            vexfs: self.vexfs,
            hnswlib: self.hnswlib,
            ratio,
            higher_is_better: self.higher_is_better,
            target: self.target.map(|t| t.0),
            target_text: self.target.map_or_else(String::new, |t| t.1.to_string()),
            target_met,
        }
    }
}

/// The build's CPU time, when both sides measured it: like the QPS per CPU-s row, the build
/// comparison least disturbed by other work on the machine.
/// `peer` is `None` with --skip-peer.
fn build_cpu_row(vexfs: f64, peer: Option<f64>) -> Option<Row> {
    if vexfs <= 0.0 || peer.is_some_and(|p| p <= 0.0) {
        return None;
    }
    Some(
        RowSpec {
            metric: "build CPU-s (files + vectors + reorder + close)",
            vexfs: Some(vexfs),
            hnswlib: peer,
            higher_is_better: Some(false),
            target: Some((Target::RatioAtMost(1.5), "<= 1.5x")),
            decimals: 2,
        }
        .row(),
    )
}

/// QPS per CPU second at the target recall, when both sides measured it: the speed comparison
/// least disturbed by other work on the machine (waiting for a CPU costs no CPU time).
fn cpu_qps_row(search: &SearchReport, peer: Option<&PeerReport>) -> Option<Row> {
    let measured = |s: &[SweepPoint]| !s.is_empty() && s.iter().all(|p| p.cpu_qps > 0.0);
    if !measured(&search.sweep) || !peer.is_none_or(|p| measured(&p.sweep)) {
        return None;
    }
    Some(qps_row("QPS per CPU-s @ recall 0.95", search, peer, |p| p.cpu_qps))
}

/// A queries-per-second row at the target recall, of the figure `qps_of`
/// takes from each sweep point (interpolated in ef), with the ef reached.
fn qps_row(
    metric: &'static str,
    search: &SearchReport,
    peer: Option<&PeerReport>,
    qps_of: fn(&SweepPoint) -> f64,
) -> Row {
    let v_at = at_recall_of(&search.sweep, TARGET_RECALL, qps_of);
    let p_at = peer.map(|p| at_recall_of(&p.sweep, TARGET_RECALL, qps_of));
    let mut row = RowSpec {
        metric,
        vexfs: v_at.qps(),
        hnswlib: p_at.and_then(|a| a.qps()),
        higher_is_better: Some(true),
        target: Some((Target::RatioAtLeast(1.0), ">= 1.0x")),
        decimals: 0,
    }
    .row();
    row.vexfs_text = v_at.text();
    row.hnswlib_text = p_at.map_or_else(|| "-".into(), |a| a.text());
    row
}

/// The rows of the comparison (`peer` is `None` with --skip-peer).
pub fn rows(n: usize, build: &BuildReport, search: &SearchReport, peer: Option<&PeerReport>) -> Vec<Row> {
    let first_target = if n >= 1_000_000 { "< 50 ms" } else { "< 50 ms (at 1M)" };
    let s = &search.stats;
    let mut rows = vec![
        RowSpec {
            metric: "build s (files + vectors + reorder + close)",
            vexfs: Some(build.build_seconds + build.close_seconds),
            hnswlib: peer.map(|p| p.build_seconds),
            higher_is_better: Some(false),
            target: Some((Target::RatioAtMost(1.5), "<= 1.5x")),
            decimals: 2,
        }
        .row(),
        RowSpec {
            metric: "build s (inserting the vectors)",
            vexfs: Some(build.set_vector_seconds),
            hnswlib: peer.map(|p| p.build_seconds),
            higher_is_better: Some(false),
            target: Some((Target::RatioAtMost(1.5), "<= 1.5x")),
            decimals: 2,
        }
        .row(),
    ];
    rows.extend(build_cpu_row(
        build.build_cpu_seconds,
        peer.map(|p| p.build_cpu_seconds),
    ));
    rows.push(qps_row("QPS @ recall@10 0.95", search, peer, |p| p.qps));
    rows.extend(cpu_qps_row(search, peer));
    for v in &search.sweep {
        let h = peer.and_then(|p| p.sweep.iter().find(|x| x.ef == v.ef));
        let metric = format!("ef={}: recall / QPS", v.ef);
        let mut r = RowSpec {
            metric: &metric,
            vexfs: Some(v.qps),
            hnswlib: h.map(|x| x.qps),
            higher_is_better: Some(true),
            target: None,
            decimals: 0,
        }
        .row();
        r.vexfs_text = format!("{:.4} / {:.0}", v.recall, v.qps);
        if v.incomplete > 0 {
            r.vexfs_text += &format!(" ({} cut)", v.incomplete);
        }
        r.hnswlib_text = h.map_or_else(|| "-".into(), |x| format!("{:.4} / {:.0}", x.recall, x.qps));
        rows.push(r);
    }
    rows.extend([
        RowSpec {
            metric: "vector bytes/vec",
            vexfs: Some(s.vector_bytes_per_vector),
            hnswlib: peer.map(|p| p.vector_bytes_per_vector),
            higher_is_better: Some(false),
            target: None,
            decimals: 1,
        }
        .row(),
        RowSpec {
            metric: "graph bytes/vec (index - vectors)",
            vexfs: Some(s.graph_file_bytes_per_vector),
            hnswlib: peer.map(|p| p.graph_bytes_per_vector),
            higher_is_better: Some(false),
            target: Some((Target::RatioAtMost(0.6), "<= 0.6x")),
            decimals: 1,
        }
        .row(),
        RowSpec {
            metric: "graph bytes/vec (records' room)",
            vexfs: Some(s.graph_bytes_per_vector),
            hnswlib: peer.map(|p| p.graph_bytes_per_vector),
            higher_is_better: Some(false),
            target: None,
            decimals: 1,
        }
        .row(),
        RowSpec {
            metric: "graph bytes/vec (used)",
            vexfs: Some(s.graph_used_bytes_per_vector),
            hnswlib: peer.map(|p| p.graph_bytes_per_vector),
            higher_is_better: Some(false),
            target: None,
            decimals: 1,
        }
        .row(),
        RowSpec {
            metric: "index file MiB",
            vexfs: Some((s.node_file_bytes + s.upper_file_bytes) as f64 / f64::from(1 << 20)),
            hnswlib: peer.map(|p| p.index_bytes as f64 / f64::from(1 << 20)),
            higher_is_better: Some(false),
            target: None,
            decimals: 1,
        }
        .row(),
        RowSpec {
            metric: "first answer ms (open + 1 query)",
            vexfs: Some(search.first_answer_ms),
            hnswlib: peer.map(|p| p.first_answer_ms),
            higher_is_better: Some(false),
            target: Some((Target::Below(50.0), first_target)),
            decimals: 2,
        }
        .row(),
        RowSpec {
            metric: "RssAnon KiB (search process)",
            vexfs: Some(search.rss_anon_kib as f64),
            hnswlib: peer.map(|p| p.rss_anon_kib as f64),
            higher_is_better: Some(false),
            target: Some((Target::Below(32.0 * 1024.0), "< 32 MiB")),
            decimals: 0,
        }
        .row(),
        RowSpec {
            metric: "RssAnon KiB (minus pre-open)",
            vexfs: Some(search.rss_anon_kib.saturating_sub(search.rss_anon_kib_before_open) as f64),
            hnswlib: peer.map(|p| p.rss_anon_kib.saturating_sub(p.rss_anon_kib_before_load) as f64),
            higher_is_better: Some(false),
            target: None,
            decimals: 0,
        }
        .row(),
    ]);
    rows
}

/// The table as text: metric | VexFS | hnswlib | VexFS/hnswlib | better | target.
pub fn table(rows: &[Row]) -> String {
    let head = ["metric", "VexFS", "hnswlib", "VexFS/hnswlib", "better", "target"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let better = match (r.ratio, r.higher_is_better) {
                (Some(x), _) if (x - 1.0).abs() < 1e-9 => "tie",
                (Some(x), Some(hi)) if (x > 1.0) == hi => "VexFS",
                (Some(_), Some(_)) => "hnswlib",
                _ => "",
            };
            let target = match r.target_met {
                Some(true) => format!("{}  met", r.target_text),
                Some(false) => format!("{}  MISSED", r.target_text),
                None => r.target_text.clone(),
            };
            [
                r.metric.clone(),
                r.vexfs_text.clone(),
                r.hnswlib_text.clone(),
                r.ratio.map_or_else(String::new, |x| format!("{x:.2}x")),
                better.to_string(),
                target,
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |c: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in c.iter().zip(width).enumerate() {
            if i > 0 {
                s += " | ";
            }
            if i == 0 || i >= 4 {
                s += &format!("{cell:<w$}");
            } else {
                s += &format!("{cell:>w$}");
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&head.map(String::from));
    out += &(width.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-") + "\n");
    for c in &cells {
        out += &line(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ef: usize, recall: f64, qps: f64) -> SweepPoint {
        SweepPoint {
            ef,
            recall,
            qps,
            incomplete: 0,
            mean_visited: 0.0,
            cpu_qps: 2.0 * qps,
        }
    }

    #[test]
    fn the_build_cpu_row_shows_only_what_was_measured() {
        let row = build_cpu_row(30.0, Some(15.0)).expect("both measured");
        assert_eq!(row.metric, "build CPU-s (files + vectors + reorder + close)");
        assert!(build_cpu_row(30.0, None).is_some(), "--skip-peer");
        assert!(build_cpu_row(0.0, Some(15.0)).is_none(), "an old build.json");
        assert!(
            build_cpu_row(30.0, Some(0.0)).is_none(),
            "a peer that did not measure it"
        );
    }

    #[test]
    fn cpu_qps_is_interpolated_like_qps() {
        let s = [p(10, 0.80, 1000.0), p(20, 0.90, 800.0), p(40, 1.0, 400.0)];
        let cpu = at_recall_of(&s, 0.95, |p| p.cpu_qps).qps();
        assert!(cpu.is_some_and(|q| (q - 1200.0).abs() < 1e-9), "{cpu:?}");
    }

    #[test]
    fn interpolates_between_the_bracketing_efs() {
        let s = [p(10, 0.80, 1000.0), p(20, 0.90, 800.0), p(40, 1.0, 400.0)];
        match at_recall(&s, 0.95) {
            AtRecall::Reached {
                qps,
                ef,
                at_smallest_ef,
            } => {
                assert!((qps - 600.0).abs() < 1e-9 && (ef - 30.0).abs() < 1e-9 && !at_smallest_ef);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            at_recall(&s[..2], 0.95),
            AtRecall::NotReached { best_ef: 20, .. }
        ));
        assert!(matches!(
            at_recall(&s[2..], 0.95),
            AtRecall::Reached {
                at_smallest_ef: true,
                ..
            }
        ));
    }
}
