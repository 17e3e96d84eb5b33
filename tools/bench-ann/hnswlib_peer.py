#!/usr/bin/env python3
"""hnswlib side of the VexFS ANN benchmark (single-threaded).

Usage (python from tools/bench-ann/setup-peer.sh):
  python hnswlib_peer.py --base base.fvecs --queries q.fvecs --truth truth.ivecs \
      --metric l2|cosine|ip --m 16 --ef-construction 200 --k 10 \
      --efs 10,20,40,80,160,320 [--index-out path]
  python hnswlib_peer.py --sweep-index path --queries q.fvecs --truth truth.ivecs \
      --metric l2 --k 10 --efs ...     (sweep a saved index again; no build)

Inputs: .fvecs = per record le32 dim + dim f32; .ivecs = per record le32 k +
k le32 ids (0-based rows of base). Builds an hnswlib index (ids 0..n-1, one
thread), then for each ef runs knn_query over the whole query matrix with
num_threads=1 and reports recall@k and QPS. Saves the index (to --index-out or
a temp file) and, in a fresh subprocess, measures "time to first answer"
(Index() + load_index + first one-query knn_query, at the largest ef) and the
RssAnon after running all queries. Prints one JSON object on stdout;
progress goes to stderr.

Fields beyond the core set: first_answer_ef, rss_anon_kib_before_load (the
subprocess's RssAnon after imports, before load_index; subtract it to get
the index's own footprint) and rss_anon_kib_main (this process after the
sweep, holding base, queries and the built index).
"""
import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time

import hnswlib
import numpy as np


def log(msg):
    print(f"hnswlib_peer: {msg}", file=sys.stderr, flush=True)


def read_vecs(path, dtype):
    """Read .fvecs (dtype float32) or .ivecs (dtype int32) into an (n, d) array."""
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        sys.exit(f"{path}: empty file")
    d = int(raw[0])
    if d <= 0 or raw.size % (d + 1):
        sys.exit(f"{path}: size is not a multiple of 4*(1+{d})")
    rows = raw.reshape(-1, d + 1)
    if not (rows[:, 0] == d).all():
        sys.exit(f"{path}: records have differing dimensions")
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def rss_anon_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return None


def child(a):
    """Fresh process: load the saved index, time to first answer, then RSS."""
    queries = read_vecs(a.queries, np.float32)
    before = rss_anon_kib()
    t0 = time.perf_counter()
    index = hnswlib.Index(space=a.metric, dim=queries.shape[1])
    index.load_index(a.child)
    index.set_num_threads(1)
    index.set_ef(a.child_ef)
    index.knn_query(queries[:1], k=a.k, num_threads=1)
    first_ms = (time.perf_counter() - t0) * 1e3
    index.knn_query(queries, k=a.k, num_threads=1)
    print(json.dumps({"first_answer_ms": first_ms, "rss_anon_kib": rss_anon_kib(),
                      "rss_anon_kib_before_load": before}))


def sweep_efs(index, queries, truth, a, efs):
    """For each ef the fastest of --runs passes over the queries (as
    ann-benchmarks does), the same rule as the VexFS side."""
    truth_k = [set(row[: a.k]) for row in truth.tolist()]
    sweep = []
    for ef in efs:
        index.set_ef(ef)
        dt = cpu = float("inf")
        for _ in range(a.runs):
            t0, c0 = time.perf_counter(), time.process_time()
            labels, _ = index.knn_query(queries, k=a.k, num_threads=1)
            dt = min(dt, time.perf_counter() - t0)
            cpu = min(cpu, time.process_time() - c0)
        hits = sum(len(t.intersection(row)) for t, row in zip(truth_k, labels.tolist()))
        sweep.append({"ef": ef, "recall": hits / (a.k * len(truth_k)),
                      "qps": len(truth_k) / dt,
                      "cpu_qps": len(truth_k) / cpu if cpu > 0 else 0.0})
        log(f"ef={ef} recall={sweep[-1]['recall']:.4f} qps={sweep[-1]['qps']:.0f} "
            f"cpu_qps={sweep[-1]['cpu_qps']:.0f}")
    return sweep


def sweep_saved(a, efs):
    """--sweep-index: load an index saved by an earlier run and sweep it
    again (a later round of bench-ann --rounds); prints {"sweep": [...]}."""
    queries = read_vecs(a.queries, np.float32)
    truth = read_vecs(a.truth, np.int32)
    index = hnswlib.Index(space=a.metric, dim=queries.shape[1])
    index.load_index(a.sweep_index)
    index.set_num_threads(1)
    print(json.dumps({"sweep": sweep_efs(index, queries, truth, a, efs)}))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base")
    p.add_argument("--queries", required=True)
    p.add_argument("--truth")
    p.add_argument("--metric", choices=["l2", "cosine", "ip"], required=True)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--efs", default="10,20,40,80,160,320")
    p.add_argument("--runs", type=int, default=1,
                   help="passes over the query set per ef; the fastest counts")
    p.add_argument("--index-out")
    p.add_argument("--sweep-index",
                   help="only sweep this saved index (no build); needs --queries and --truth")
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: index path
    p.add_argument("--child-ef", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child(a)
    efs = [int(x) for x in a.efs.split(",")]
    if a.sweep_index:
        if not a.truth:
            p.error("--truth is required")
        return sweep_saved(a, efs)
    if not (a.base and a.truth):
        p.error("--base and --truth are required")

    base = read_vecs(a.base, np.float32)
    queries = read_vecs(a.queries, np.float32)
    truth = read_vecs(a.truth, np.int32)
    n, dim = base.shape
    if queries.shape[1] != dim:
        sys.exit(f"query dim {queries.shape[1]} != base dim {dim}")
    if truth.shape[0] != queries.shape[0] or truth.shape[1] < a.k:
        sys.exit(f"truth is {truth.shape}, need ({queries.shape[0]}, >={a.k})")
    log(f"n={n} dim={dim} queries={queries.shape[0]} metric={a.metric}")

    index = hnswlib.Index(space=a.metric, dim=dim)
    index.init_index(max_elements=n, ef_construction=a.ef_construction, M=a.m)
    index.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    index.add_items(base, np.arange(n), num_threads=1)
    build_s = time.perf_counter() - t0
    build_cpu_s = time.process_time() - c0
    log(f"built in {build_s:.3f}s ({build_cpu_s:.3f} CPU-s)")

    sweep = sweep_efs(index, queries, truth, a, efs)
    rss_main = rss_anon_kib()

    tmpdir = None
    path = a.index_out
    if not path:
        tmpdir = tempfile.TemporaryDirectory(prefix="hnswlib_peer.")
        path = os.path.join(tmpdir.name, "index.bin")
    index.save_index(path)
    index_bytes = os.path.getsize(path)
    del index

    first_ef = max(efs)
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", path,
         "--child-ef", str(first_ef), "--queries", a.queries,
         "--metric", a.metric, "--k", str(a.k)],
        check=True, stdout=subprocess.PIPE, text=True)
    ch = json.loads(out.stdout)
    log(f"first answer {ch['first_answer_ms']:.2f} ms, RssAnon {ch['rss_anon_kib']} KiB")
    if tmpdir:
        tmpdir.cleanup()

    print(json.dumps({
        "peer": "hnswlib",
        "version": importlib.metadata.version("hnswlib"),
        "n": n, "dim": dim, "m": a.m, "ef_construction": a.ef_construction,
        "build_seconds": build_s,
        "build_cpu_seconds": build_cpu_s,
        "index_bytes": index_bytes,
        "graph_bytes_per_vector": (index_bytes - n * dim * 4) / n,
        "vector_bytes_per_vector": dim * 4,
        "first_answer_ms": ch["first_answer_ms"],
        "first_answer_ef": first_ef,
        "rss_anon_kib": ch["rss_anon_kib"],
        "rss_anon_kib_before_load": ch["rss_anon_kib_before_load"],
        "rss_anon_kib_main": rss_main,
        "sweep": sweep,
    }))


if __name__ == "__main__":
    main()
