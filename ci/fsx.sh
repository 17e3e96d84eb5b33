#!/usr/bin/env bash
# File data under random I/O on the FUSE mount: fsx against a fresh image.
#
# As root: build the release binaries, install fsx (target/ci-tools), mkfs a
# 512 MiB v1 image, mount it with `mount-vexfs IMAGE DIR -o
# allow_other,default_permissions`, run fsx with ci/fsx.toml (reads, writes,
# mapped reads and writes, truncate, fallocate, punch hole,
# copy_file_range, sendfile, fsync, ...) for 50,000 operations with each of
# three fixed seeds, one file per seed, unmount, and fsck the image.
#
# Exit status: 0 when every seed passed, the unmount was clean and
# fsck-vexfs found the image clean; 1 otherwise; 2 when it could not run.
# On a failure the work directory is kept: artifacts/ holds fsx's
# FILE.fsxgood (what the file should contain) and FILE.fsxbad (what it
# does contain), and target/ci-logs/fsx-seed-N.log the operation log.
#
# Usage: bash ci/fsx.sh [SEED...]   (default: 1 2 3)
# Environment: FSX_OPS (default 50000) operations per seed.
set -euo pipefail
export LC_ALL=C
CI_NAME=fsx
source "$(dirname "$0")/lib.sh"

CONFIG="$CI_ROOT/ci/fsx.toml"
OPS="${FSX_OPS:-50000}"
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(1 2 3)

ci_require_root
ci_build_vexfs
ci_install_tools
FSX="$CI_TOOLS/bin/fsx"

ci_make_work
ci_trap
IMG="$CI_WORK/vexfs.img"
MNT="$CI_WORK/mnt"
ART="$CI_WORK/artifacts"
mkdir -p "$ART"
ci_mkfs "$IMG" 512M
ci_mount "$IMG" "$MNT" "$CI_MOUNT_OPTIONS"

passed=0
failed=0
for seed in "${SEEDS[@]}"; do
  log="$CI_LOGS/fsx-seed-$seed.log"
  file="$MNT/fsx.$seed"
  start=$SECONDS
  rc=0
  ci_run 1800 "$CI_WORK" "$log" "$FSX" -f "$CONFIG" -N "$OPS" -S "$seed" -P "$ART" "$file" || rc=$?
  secs=$((SECONDS - start))
  if [ "$rc" = 0 ] && grep -q 'All operations completed A-OK!' "$log"; then
    passed=$((passed + 1))
    ci_say "seed $seed: ok, $OPS operations in ${secs}s"
  else
    failed=$((failed + 1))
    CI_FAILED=1
    why="exit $rc"
    [ "$rc" != 124 ] || why="timed out after ${secs}s"
    ci_say "seed $seed: FAILED ($why) after ${secs}s; log: $log; artifacts: $ART"
    # What the file holds now, beside fsx's FILE.fsxgood.
    cp "$file" "$ART/fsx.$seed.fsxbad" 2>/dev/null || true
    # fsx prints what went wrong, then "LOG DUMP" and the operations, newest last.
    awk '/LOG DUMP/ { exit } { print }' "$log" | head -n 40 | sed 's/^/    /'
    echo "    ... the last operations:"
    awk 'dump { print } /LOG DUMP/ { dump = 1 }' "$log" | tail -n 25 | sed 's/^/    /'
  fi
  if ! ci_is_mounted "$MNT" || ! ci_alive "${CI_DAEMON[$MNT]}" || ! ls "$MNT" >/dev/null 2>&1; then
    ci_say "error: the mount is gone or not answering after seed $seed (did the daemon die?)"
    CI_FAILED=1
    break
  fi
done

ci_umount "$MNT" || true
ci_fsck "$IMG" || true

echo "$passed passed, $failed failed"
[ "$CI_FAILED" = 0 ]
