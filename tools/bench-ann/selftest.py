#!/usr/bin/env python3
"""Self-test for hnswlib_peer.py on a tiny deterministic data set.

Usage: python selftest.py [--dir /tmp/bench-ann-selftest] [--metric l2|cosine|ip ...]

Writes base.fvecs (2000 x 16), queries.fvecs (200 x 16) from
numpy.random.default_rng(7) and a brute-force truth-<metric>.ivecs (k=100)
into --dir, runs hnswlib_peer.py on each metric, checks the JSON and that
recall at the largest ef is >= 0.99. Exits non-zero on failure.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np


def write_vecs(path, a):
    a = np.ascontiguousarray(a)
    rows = np.empty((a.shape[0], a.shape[1] + 1), dtype=np.int32)
    rows[:, 0] = a.shape[1]
    rows[:, 1:] = a.view(np.int32)
    rows.tofile(path)


def brute_force(base, queries, metric, k):
    if metric == "l2":
        score = -((queries[:, None, :] - base[None, :, :]) ** 2).sum(-1)
    elif metric == "ip":
        score = queries @ base.T
    else:
        nb = base / np.linalg.norm(base, axis=1, keepdims=True)
        nq = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        score = nq @ nb.T
    return np.argsort(-score, axis=1, kind="stable")[:, :k].astype(np.int32)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", default="/tmp/bench-ann-selftest")
    p.add_argument("--metric", nargs="+", default=["l2", "cosine", "ip"])
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    rng = np.random.default_rng(7)
    base = rng.standard_normal((2000, 16), dtype=np.float32)
    queries = rng.standard_normal((200, 16), dtype=np.float32)
    write_vecs(f"{a.dir}/base.fvecs", base)
    write_vecs(f"{a.dir}/queries.fvecs", queries)
    peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hnswlib_peer.py")
    ok = True
    for metric in a.metric:
        truth = f"{a.dir}/truth-{metric}.ivecs"
        write_vecs(truth, brute_force(base.astype(np.float64), queries.astype(np.float64), metric, 100))
        out = subprocess.run(
            [sys.executable, peer, "--base", f"{a.dir}/base.fvecs",
             "--queries", f"{a.dir}/queries.fvecs", "--truth", truth,
             "--metric", metric, "--m", "16", "--ef-construction", "200",
             "--k", "10", "--efs", "10,20,40,80,160,320",
             "--index-out", f"{a.dir}/index-{metric}.bin"],
            check=True, stdout=subprocess.PIPE, text=True).stdout
        print(out, end="")
        r = json.loads(out)
        best = r["sweep"][-1]["recall"]
        if r["n"] != 2000 or r["dim"] != 16 or best < 0.99:
            print(f"selftest: FAIL {metric}: recall@10 at ef=320 is {best}", file=sys.stderr)
            ok = False
    print("selftest:", "ok" if ok else "FAILED", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
