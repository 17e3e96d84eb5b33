#!/usr/bin/env bash
# Soak a VexFS mount: fsx, metadata churn and vector searches all at once
# against one mount for a long time (default 24 h), sampling the daemon's
# memory; then unmount, fsck, and judge.
#
# Workers (all on the same mount, each in its own subdirectory):
#   fsx     fsx (ci/fsx.toml) runs of FSX_OPS operations on one file, a new
#           seed per run; a failed run fails the soak.
#   churn   create, write, rename (across nested directories) and unlink
#           files under churn/d0..d7/s0..s3, at most CHURN_FILES names per
#           directory, so the namespace stays bounded and any growth in the
#           daemon is its own.
#   search  k-NN searches through /.vexfs/search over SEARCH_VECTORS
#           vectors (a collection made through /.vexfs/collections, vectors
#           attached by xattr); every 50 searches a vector is replaced and
#           every 1000 a file with a vector is unlinked and another attached,
#           so the graph sees inserts and deletes.
#
# Every --interval seconds the daemon's RssAnon, RssFile and VmHWM (from
# /proc/PID/status) go to a CSV. At the end: min/max/first/last RssAnon;
# the growth is the last sample minus the first sample after --warmup
# (caches fill in the first minutes).
#
# Exit status 0 only when every worker ran without an error, the daemon
# stayed up, the unmount was clean (daemon exit 0), fsck.vexfs found the
# image clean and the RssAnon growth was at most --max-growth-mib.
#
# Usage: bash scripts/soak.sh [--duration 24h] [--interval 10] [--warmup 300]
#          [--max-growth-mib 16] [--size 2G] [--work DIR] [--csv FILE]
# Durations take s, m or h suffixes. Needs root and /dev/fuse, python3,
# setfattr, the release binaries (cargo build --release --workspace; or
# VEXFS_BIN=DIR) and fsx (FSX=path, else target/ci-tools/bin/fsx, else
# PATH; ci/fsx.sh installs it). Run it under `nice -n 19` on a shared host.
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${VEXFS_BIN:-$ROOT/target/release}"
FSX="${FSX:-}"
FSX_OPS="${FSX_OPS:-20000}"
CHURN_FILES=400
SEARCH_VECTORS=5000
DIM=32

duration=24h interval=10 warmup=300 max_growth_mib=16 size=2G work="" csv=""

die() { echo "soak: $*" >&2; exit 2; }

# seconds DURATION: 90, 90s, 15m, 24h -> seconds.
seconds() {
  case "$1" in
    *h) echo $((${1%h} * 3600)) ;;
    *m) echo $((${1%m} * 60)) ;;
    *s) echo "${1%s}" ;;
    *[!0-9]* | "") die "bad duration '$1' (use e.g. 90s, 15m, 24h)" ;;
    *) echo "$1" ;;
  esac
}

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --interval) interval="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --max-growth-mib) max_growth_mib="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --csv) csv="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
total=$(seconds "$duration")
interval=$(seconds "$interval")
warmup=$(seconds "$warmup")
[ "$interval" -gt 0 ] || die "--interval must be positive"

[ "$(id -u)" = 0 ] || die "needs root (FUSE mount)"
[ -e /dev/fuse ] || die "no /dev/fuse"
for b in mount-vexfs mkfs-vexfs fsck-vexfs; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing: cargo build --release --workspace (or set VEXFS_BIN)"
done
if [ -z "$FSX" ]; then
  if [ -x "$ROOT/target/ci-tools/bin/fsx" ]; then FSX="$ROOT/target/ci-tools/bin/fsx"; else FSX="$(command -v fsx || true)"; fi
fi
[ -x "$FSX" ] || die "fsx not found: set FSX=path or run ci/fsx.sh once (it installs target/ci-tools/bin/fsx)"
command -v python3 >/dev/null || die "python3 missing"
command -v setfattr >/dev/null || die "setfattr missing (package attr)"

work="${work:-$(mktemp -d /tmp/vexfs-soak.XXXXXX)}"
mkdir -p "$work/mnt" "$work/logs"
work="$(readlink -f "$work")"
IMG="$work/soak.img" MNT="$work/mnt" LOGS="$work/logs"
csv="${csv:-$work/rss.csv}"
STOP="$work/stop"
rm -f "$STOP" "$IMG"

"$BIN/mkfs-vexfs" --size "$size" "$IMG" >"$LOGS/mkfs.log"
# -f keeps the daemon our child, so $! is its pid (it re-executes itself in
# place to set its worker stack, keeping the pid).
"$BIN/mount-vexfs" "$IMG" "$MNT" -f </dev/null 2>"$LOGS/daemon.log" &
DAEMON=$!
for _ in $(seq 1 200); do
  grep -q " $MNT fuse.vexfs " /proc/self/mounts && break
  sleep 0.1
done
grep -q " $MNT fuse.vexfs " /proc/self/mounts || die "the mount did not appear; see $LOGS/daemon.log"

cleanup() {
  touch "$STOP"
  if grep -q " $MNT fuse.vexfs " /proc/self/mounts; then umount "$MNT" 2>/dev/null || umount -l "$MNT" || true; fi
}
trap cleanup EXIT

# rss FIELD: the daemon's FIELD from /proc/PID/status in KiB.
rss() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$DAEMON/status"; }

worker_fsx() {
  local seed=1
  mkdir -p "$MNT/fsx" "$LOGS/fsx"
  while [ ! -e "$STOP" ]; do
    if ! "$FSX" -f "$ROOT/ci/fsx.toml" -N "$FSX_OPS" -S "$seed" -P "$LOGS/fsx" "$MNT/fsx/file" \
      >"$LOGS/fsx/run.log" 2>&1 || ! grep -q 'All operations completed A-OK!' "$LOGS/fsx/run.log"; then
      cp "$LOGS/fsx/run.log" "$LOGS/fsx/failed-seed-$seed.log"
      echo "fsx seed $seed failed: $LOGS/fsx/failed-seed-$seed.log"
      return 1
    fi
    echo "$seed" >"$LOGS/fsx/runs"
    seed=$((seed + 1))
  done
}

worker_churn() {
  local i=0 a b n dirs=()
  for d in $(seq 0 7); do for s in $(seq 0 3); do dirs+=("$MNT/churn/d$d/s$s"); done; done
  mkdir -p "${dirs[@]}"
  while [ ! -e "$STOP" ]; do
    a="${dirs[i % 32]}" b="${dirs[(i * 7 + 3) % 32]}" n=$((i % CHURN_FILES))
    printf 'churn %d\n' "$i" >"$a/f$n" || { echo "churn: create $a/f$n failed"; return 1; }
    mv -f "$a/f$n" "$b/r$n" || { echo "churn: rename to $b/r$n failed"; return 1; }
    if [ $((i % 3)) = 0 ]; then rm -f "${dirs[(i + 11) % 32]}/r$(((i + 200) % CHURN_FILES))" ||
      { echo "churn: unlink failed"; return 1; }; fi
    if [ $((i % 100)) = 0 ]; then
      mkdir -p "$a/sub$((i % 7))/deeper" && rmdir "$a/sub$((i % 7))/deeper" ||
        { echo "churn: mkdir/rmdir failed"; return 1; }
      echo "$i" >"$LOGS/churn.ops"
    fi
    i=$((i + 1))
  done
}

worker_search() {
  python3 - "$MNT" "$STOP" "$SEARCH_VECTORS" "$DIM" "$LOGS/search.ops" <<'EOF'
import json, os, random, struct, sys
mnt, stop, count, dim, ops_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rng = random.Random(7)
def vec():
    return [rng.uniform(-1.0, 1.0) for _ in range(dim)]
def attach(path, v):
    os.setxattr(path, "user.vexfs.vector.soak", struct.pack("<%df" % dim, *v))
with open(os.path.join(mnt, ".vexfs/collections"), "r+b", buffering=0) as f:
    f.write(json.dumps({"op": "create", "name": "soak", "dim": dim, "metric": "l2", "type": "f32"}).encode())
os.makedirs(os.path.join(mnt, "vec/live"))
for i in range(count):
    p = os.path.join(mnt, "vec/live/v%d" % i)
    open(p, "w").close()
    attach(p, vec())
n, extra = 0, []
while not os.path.exists(stop):
    q = {"collection": "soak", "k": 10, "ef": 64, "paths": n % 2 == 0, "vector": vec()}
    with open(os.path.join(mnt, ".vexfs/search"), "r+b", buffering=0) as f:
        f.write(json.dumps(q).encode())
        hits = [json.loads(l) for l in f.read().decode().splitlines()]
    if len(hits) != 10 or any("error" in h for h in hits):
        sys.exit("search %d: bad reply %r" % (n, hits[:2]))
    n += 1
    if n % 50 == 0:
        # Replace a vector: delete + reinsert in the same slot.
        attach(os.path.join(mnt, "vec/live/v%d" % ((n // 50) % count)), vec())
        with open(ops_file, "w") as o:
            o.write("%d\n" % n)
    if n % 1000 == 0:
        # Unlink a file with a vector and attach one to a new file (deleted
        # slots are not reused, so this is rarer: the image grows by one
        # slot per 1000 searches).
        p = os.path.join(mnt, "vec/x%d" % n)
        open(p, "w").close()
        attach(p, vec())
        extra.append(p)
        if len(extra) > 100:
            os.unlink(extra.pop(0))
EOF
}

echo "soak: $duration on $MNT (image $IMG, daemon pid $DAEMON), samples every ${interval}s to $csv"
pids=()
worker_fsx >"$LOGS/fsx.out" 2>&1 & pids+=($!)
worker_churn >"$LOGS/churn.out" 2>&1 & pids+=($!)
worker_search >"$LOGS/search.out" 2>&1 & pids+=($!)
names=(fsx churn search)

echo "elapsed_s,rss_anon_kib,rss_file_kib,vm_hwm_kib,threads" >"$csv"
start=$SECONDS dead=""
while [ $((SECONDS - start)) -lt "$total" ]; do
  kill -0 "$DAEMON" 2>/dev/null || { dead="the daemon died"; break; }
  echo "$((SECONDS - start)),$(rss RssAnon),$(rss RssFile),$(rss VmHWM),$(rss Threads)" >>"$csv"
  for w in 0 1 2; do
    kill -0 "${pids[w]}" 2>/dev/null || { dead="worker ${names[w]} stopped early"; break 2; }
  done
  sleep "$interval"
done
touch "$STOP"

failed=0
[ -z "$dead" ] || { echo "soak: FAILED: $dead"; failed=1; }
for w in 0 1 2; do
  if ! wait "${pids[w]}"; then
    echo "soak: FAILED: worker ${names[w]}: $(tail -n 3 "$LOGS/${names[w]}.out")"
    failed=1
  fi
done
echo "soak: work done: fsx runs $(cat "$LOGS/fsx/runs" 2>/dev/null || echo 0) x $FSX_OPS ops," \
  "churn ops $(cat "$LOGS/churn.ops" 2>/dev/null || echo 0)+, searches $(cat "$LOGS/search.ops" 2>/dev/null || echo 0)+"

umount "$MNT" || { echo "soak: FAILED: umount"; failed=1; umount -l "$MNT" || true; }
rc=0
wait "$DAEMON" || rc=$?
[ "$rc" = 0 ] || { echo "soak: FAILED: the daemon exited with $rc (log: $LOGS/daemon.log)"; failed=1; }
trap - EXIT
if "$BIN/fsck-vexfs" "$IMG" >"$LOGS/fsck.log" 2>&1; then
  echo "soak: fsck.vexfs: clean ($(tail -n 1 "$LOGS/fsck.log"))"
else
  echo "soak: FAILED: fsck.vexfs found problems:"; sed 's/^/  /' "$LOGS/fsck.log" | head -20
  failed=1
fi

# Summary of RssAnon (KiB) and the growth after the warm-up.
read -r n mn mx first last base < <(awk -F, -v w="$warmup" 'NR > 1 {
  n++; v = $2; if (n == 1 || v < mn) mn = v; if (n == 1 || v > mx) mx = v
  if (n == 1) first = v; last = v; if (base == "" && $1 >= w) base = v
} END { if (base == "") base = first; print n + 0, mn + 0, mx + 0, first + 0, last + 0, base + 0 }' "$csv")
growth=$((last - base))
echo "soak: RssAnon over $n samples (KiB): min $mn, max $mx, first $first, last $last;" \
  "after ${warmup}s warm-up $base, growth $growth (bound $((max_growth_mib * 1024)))"
if [ "$growth" -gt $((max_growth_mib * 1024)) ]; then
  echo "soak: FAILED: RssAnon grew by $growth KiB, more than $max_growth_mib MiB"
  failed=1
fi
[ "$failed" = 0 ] && echo "soak: PASSED ($duration; CSV $csv; work dir $work)" ||
  echo "soak: FAILED (work dir kept: $work)"
exit "$failed"
