#!/usr/bin/env python3
"""The mount daemon's memory while it serves searches.

Mounts IMAGE (`mount-vexfs IMAGE DIR -f`; searching writes only the
request to the control file, but a read-write mount may commit a
journal replay or an event, so give it a copy: `cp --sparse=always`; a
read-only mount, --ro, refuses the read-write open of /.vexfs/search with
EROFS, the kernel's rule for every file of such a mount), runs every query of an .fvecs file through /.vexfs/search at the
given k and ef (JSON requests; every other one with paths), samples the
daemon's RssAnon from /proc/PID/status after each search, and prints the
figures: RssAnon after the mount, its peak and last value over the
searches, VmHWM and RssFile, and the search rate. Then unmounts.

Usage (as root): python3 scripts/search-rss.py IMAGE QUERIES.fvecs
    [--collection NAME] [--k 10] [--ef 256] [--clients 1] [--bin target/release] [--ro]
The collection defaults to the image's only (or first) collection.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time


def status(pid):
    """The daemon's /proc/PID/status memory fields, in KiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile", "VmHWM", "VmRSS", "Threads"):
                out[key] = int(value.split()[0])
    return out


def fvecs(path):
    """The vectors of an .fvecs file (int32 dim, then dim f32, per vector)."""
    with open(path, "rb") as f:
        data = f.read()
    vecs, pos = [], 0
    while pos < len(data):
        (dim,) = struct.unpack_from("<i", data, pos)
        vecs.append(list(struct.unpack_from("<%df" % dim, data, pos + 4)))
        pos += 4 + 4 * dim
    return vecs


def search(mnt, body):
    with open(os.path.join(mnt, ".vexfs/search"), "r+b", buffering=0) as f:
        f.write(json.dumps(body).encode())
        return f.read().decode().splitlines()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("image")
    ap.add_argument("queries")
    ap.add_argument("--collection")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ef", type=int, default=256)
    ap.add_argument("--clients", type=int, default=1, help="threads searching at once")
    ap.add_argument("--ro", action="store_true", help="mount read-only (searches then fail: EROFS)")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "../target/release"))
    a = ap.parse_args()
    queries = fvecs(a.queries)
    mnt = tempfile.mkdtemp(prefix="vexfs-rss.")
    log = open(mnt + ".log", "w")
    daemon = subprocess.Popen(
        [os.path.join(a.bin, "mount-vexfs"), a.image, mnt, "-f"] + (["-o", "ro"] if a.ro else []),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    try:
        for _ in range(300):
            if os.path.ismount(mnt) or daemon.poll() is not None:
                break
            time.sleep(0.1)
        if not os.path.ismount(mnt):
            sys.exit("the mount did not appear (log: %s.log)" % mnt)
        mounted = status(daemon.pid)
        with open(os.path.join(mnt, ".vexfs/collections")) as f:
            stats = [json.loads(l) for l in f.read().splitlines()]
        name = a.collection or stats[0]["name"]
        count = next((s.get("count") for s in stats if s["name"] == name), "?")
        peak, errors = [mounted["RssAnon"]], []

        def client(part):
            for i, q in part:
                body = {"collection": name, "k": a.k, "ef": a.ef, "paths": i % 2 == 1, "vector": q}
                hits = search(mnt, body)
                if len(hits) != a.k or "error" in hits[0]:
                    errors.append("query %d: bad reply %r" % (i, hits[:2]))
                    return
                peak[0] = max(peak[0], status(daemon.pid)["RssAnon"])

        numbered = list(enumerate(queries))
        clients = [threading.Thread(target=client, args=(numbered[c::a.clients],)) for c in range(a.clients)]
        t0 = time.monotonic()
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        if errors:
            sys.exit(errors[0])
        peak = peak[0]
        secs = time.monotonic() - t0
        end = status(daemon.pid)
        print("collection %s: %s vectors; %d searches k=%d ef=%d (half with paths) from %d client(s) in %.1f s (%.0f/s)"
              % (name, count, len(queries), a.k, a.ef, a.clients, secs, len(queries) / secs))
        print("daemon RssAnon KiB: after mount %d, peak during searches %d, at the end %d"
              % (mounted["RssAnon"], peak, end["RssAnon"]))
        print("daemon VmHWM %d KiB, RssFile %d KiB (mapped image pages), threads %d"
              % (end["VmHWM"], end["RssFile"], end["Threads"]))
    finally:
        subprocess.run(["umount", mnt])
        code = daemon.wait()
        os.rmdir(mnt)
        if code != 0:
            sys.exit("the daemon exited with %d" % code)


if __name__ == "__main__":
    main()
