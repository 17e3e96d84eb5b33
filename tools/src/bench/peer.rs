//! The hnswlib side: `tools/bench-ann/setup-peer.sh` makes the Python venv, then
//! `tools/bench-ann/hnswlib_peer.py` builds, sweeps and measures, and prints one JSON object.

use super::data::DataFiles;
use super::{io_err, Result, SweepPoint, K};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What the hnswlib script prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerReport {
    pub version: String,
    pub build_seconds: f64,
    /// CPU time (user + system) of the build; 0 when not measured.
    #[serde(default)]
    pub build_cpu_seconds: f64,
    pub index_bytes: u64,
    /// (saved index bytes - n * dim * 4) / n: links, labels and level-0 headers.
    pub graph_bytes_per_vector: f64,
    pub vector_bytes_per_vector: f64,
    pub first_answer_ms: f64,
    pub first_answer_ef: usize,
    pub rss_anon_kib: u64,
    pub rss_anon_kib_before_load: u64,
    pub rss_anon_kib_main: u64,
    pub sweep: Vec<SweepPoint>,
}

/// `tools/bench-ann` of the source tree this binary was built from.
pub fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-ann")
}

/// Set up the venv (prints its python as the last stdout line).
fn python() -> Result<PathBuf> {
    let setup = script_dir().join("setup-peer.sh");
    let out = Command::new(&setup)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| io_err("cannot run", &setup, e))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}); --skip-peer runs without hnswlib",
            setup.display(),
            out.status
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let py = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| format!("{} printed no python path", setup.display()))?;
    Ok(PathBuf::from(py.trim()))
}

/// Run hnswlib on the data set with the same M, ef_construction and ef sweep; the index is
/// kept at `index_out` (for [`sweep`] in later rounds) when given.
pub fn run(
    data: &DataFiles,
    (m, ef_construction): (u16, u16),
    efs: &[usize],
    runs: usize,
    index_out: Option<&Path>,
) -> Result<PeerReport> {
    let mut cmd = script_command(data, efs, runs)?;
    cmd.arg("--base").arg(&data.base);
    cmd.args(["--m", &m.to_string(), "--ef-construction", &ef_construction.to_string()]);
    if let Some(path) = index_out {
        cmd.arg("--index-out").arg(path);
    }
    run_script(cmd)
}

/// Sweep the index an earlier [`run`] saved at `index` again (no build).
pub fn sweep(data: &DataFiles, index: &Path, efs: &[usize], runs: usize) -> Result<Vec<SweepPoint>> {
    #[derive(Deserialize)]
    struct Sweep {
        sweep: Vec<SweepPoint>,
    }
    let mut cmd = script_command(data, efs, runs)?;
    cmd.arg("--sweep-index").arg(index);
    run_script::<Sweep>(cmd).map(|s| s.sweep)
}

/// The script with the arguments every mode takes.
fn script_command(data: &DataFiles, efs: &[usize], runs: usize) -> Result<Command> {
    let mut cmd = Command::new(python()?);
    let efs_arg = efs.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    cmd.arg(script_dir().join("hnswlib_peer.py"))
        .arg("--queries")
        .arg(&data.queries)
        .arg("--truth")
        .arg(&data.truth)
        .args(["--metric", "l2", "--k", &K.to_string(), "--efs", &efs_arg])
        .args(["--runs", &runs.to_string()]);
    Ok(cmd)
}

/// Run the script and parse the JSON object it prints.
fn run_script<T: serde::de::DeserializeOwned>(mut cmd: Command) -> Result<T> {
    let script = script_dir().join("hnswlib_peer.py");
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| io_err("cannot run", &script, e))?;
    if !out.status.success() {
        return Err(format!("{} failed ({})", script.display(), out.status).into());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{}'s output: {e}", script.display()).into())
}
