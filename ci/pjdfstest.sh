#!/usr/bin/env bash
# POSIX conformance of the FUSE mount: pjdfstest against a fresh image.
#
# As root: build the release binaries, install pjdfstest (target/ci-tools),
# mkfs a 512 MiB v1 image and a 64 MiB second one, mount both with
# `mount-vexfs IMAGE DIR -o allow_other,default_permissions`, run pjdfstest
# with ci/pjdfstest.toml (the second mount is the other file system of the
# EXDEV tests), compare the failures with ci/pjdfstest-expected-failures.txt,
# unmount, and fsck both images.
#
# Exit status: 0 when every failure is listed as expected, the unmounts were
# clean and fsck-vexfs found both images clean; 1 otherwise; 2 when it could
# not run (not root, no /dev/fuse, build or install failed).
#
# Usage: bash ci/pjdfstest.sh [PATTERN...]   (patterns select tests by name,
# as pjdfstest's own arguments do; then only those are compared)
set -euo pipefail
export LC_ALL=C NO_COLOR=1
CI_NAME=pjdfstest
source "$(dirname "$0")/lib.sh"

CONFIG="$CI_ROOT/ci/pjdfstest.toml"
EXPECTED="$CI_ROOT/ci/pjdfstest-expected-failures.txt"
LOG="$CI_LOGS/pjdfstest.log"
PATTERNS=("$@")

ci_require_root
ci_build_vexfs
ci_install_tools
PJ="$CI_TOOLS/bin/pjdfstest"

# pjdfstest's dummy_auth switches to `nobody` (exists) and `tests`.
getent group tests >/dev/null || groupadd tests
getent passwd tests >/dev/null || useradd -g tests -M -d / -s /usr/sbin/nologin -c "pjdfstest dummy user" tests

ci_make_work
ci_trap
IMG="$CI_WORK/vexfs.img"
IMG2="$CI_WORK/second.img"
MNT="$CI_WORK/mnt"
MNT2="$CI_WORK/mnt2"
ci_mkfs "$IMG" 512M
ci_mkfs "$IMG2" 64M
ci_mount "$IMG" "$MNT" "$CI_MOUNT_OPTIONS"
ci_mount "$IMG2" "$MNT2" "$CI_MOUNT_OPTIONS"

# The expected failures: one test name per line, then ` # reason`.
expected_names() {
  awk '{ sub(/#.*/, ""); gsub(/^[ \t]+|[ \t]+$/, "") }
       NF > 1 { printf "%s:%d: more than one word before the #: %s\n", FILENAME, FNR, $0 > "/dev/stderr"; bad = 1 }
       NF == 1 { print }
       END { exit bad }' "$EXPECTED" | sort -u
}
expected_names >"$CI_WORK/expected" || ci_die "malformed $EXPECTED"

# parse LOG: one line per test, "name<TAB>pass|fail|skip<TAB>first message line".
parse() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | awk -v OFS='\t' '
    function flush() { if (name != "") print name, st, msg; name = "" }
    /^[A-Za-z0-9_:]+ +(ok|FAILED|skipped|failed as expected|PASSED UNEXPECTEDLY)$/ {
      flush()
      name = $1
      rest = $0; sub(/^[^ ]+ +/, "", rest)
      st = (rest == "ok" || rest == "PASSED UNEXPECTEDLY") ? "pass" : (rest == "skipped" ? "skip" : "fail")
      msg = ""
      next
    }
    name != "" && msg == "" && /^\t/ { msg = $0; sub(/^\t+/, "", msg); next }
    END { flush() }'
}

# run_pass NAME CONFIG [PATTERN...]: one pjdfstest run from / (tests switch
# users, who must be able to reach the working directory), -p on the mount.
run_pass() {
  local name="$1" cfg="$2" rc=0
  shift 2
  ci_say "running pjdfstest ($name pass)"
  ci_run 1200 / "$CI_WORK/$name.log" "$PJ" -c "$cfg" -p "$MNT" -s "$MNT2" "$@" || rc=$?
  {
    echo "==== pjdfstest $name pass: $PJ -c $cfg -p $MNT -s $MNT2 $*"
    cat "$CI_WORK/$name.log"
    echo "==== exit status $rc$([ "$rc" != 124 ] || echo ' (timed out)')"
  } >>"$LOG"
  parse "$CI_WORK/$name.log" >"$CI_WORK/$name.results"
  if ! grep -q '^Summary: ' "$CI_WORK/$name.log"; then
    # Counted as one failure: the tests it did not reach are unknown.
    echo "pjdfstest: error: the $name pass did not finish (exit $rc; see $LOG):" >&2
    grep -v '^ *[0-9]*: \|^ *at ' "$CI_WORK/$name.log" | tail -n 10 >&2
    printf '(%s-pass-did-not-finish)\tfail\tpjdfstest exited %s before its summary\n' "$name" "$rc" >>"$CI_WORK/$name.results"
  fi
}

: >"$LOG"
START=$SECONDS
# Pass 1: every test (or those the patterns select), with remounts off.
run_pass main "$CONFIG" "${PATTERNS[@]}"
# Pass 2: the tests pass 1 skipped because they remount the file system
# read-only (the EROFS tests), by exact name, with remounts on. They cannot
# run in pass 1: pjdfstest 0.2.2's posix_fallocate::affected_only_create_flags
# leaks two descriptors open for writing, after which every remount by the
# same process fails with EBUSY (on tmpfs too).
sed 's/^allow_remount *=.*/allow_remount = true/' "$CONFIG" >"$CI_WORK/remount.toml"
grep -q '^allow_remount = true' "$CI_WORK/remount.toml" || ci_die "$CONFIG has no allow_remount line"
# (-e compares with the full name, pjdfstest::tests::NAME.)
mapfile -t REMOUNT_TESTS < <(awk -F'\t' '$2 == "skip" && $3 ~ /allow_remount/ { print "pjdfstest::tests::" $1 }' "$CI_WORK/main.results")
: >"$CI_WORK/remount.results"
if [ ${#REMOUNT_TESTS[@]} -gt 0 ]; then
  run_pass remount "$CI_WORK/remount.toml" -e "${REMOUNT_TESTS[@]}"
  if [ "$(wc -l <"$CI_WORK/remount.results")" != ${#REMOUNT_TESTS[@]} ]; then
    echo "pjdfstest: error: the remount pass ran $(wc -l <"$CI_WORK/remount.results") of the ${#REMOUNT_TESTS[@]} tests asked for" >&2
    CI_FAILED=1
  fi
fi
# open::etxtbsy failed here now and then (5 of 13 runs on one day,
# three of them in a row, with the FUSE FLUSH answered either way). It
# opens the program for
# writing as soon as spawn() returns; the cause of the occasional miss is
# not found yet (a race between the exec and that open is suspected;
# tests/fuse_posix_more.rs's check, which also opens right after spawn,
# has not failed). So a failed ETXTBSY test is run again, up to three
# times, by exact name, and the summary says so. Any other failure counts
# at once.
for t in $(awk -F'\t' '$2 == "fail" && $1 ~ /::etxtbsy$/ { print $1 }' "$CI_WORK/main.results"); do
  for try in 1 2 3; do
    run_pass "retry-$try" "$CONFIG" -e "pjdfstest::tests::$t"
    if awk -F'\t' -v t="$t" '$1 == t && $2 == "pass" { found = 1 } END { exit !found }' "$CI_WORK/retry-$try.results"; then
      ci_say "$t failed, then passed on retry $try (the ETXTBSY race above; see $LOG)"
      awk -F'\t' -v OFS='\t' -v t="$t" -v n="$try" '$1 == t { $2 = "pass"; $3 = "passed on retry " n } { print }' \
        "$CI_WORK/main.results" >"$CI_WORK/main.results.new" && mv "$CI_WORK/main.results.new" "$CI_WORK/main.results"
      break
    fi
  done
done
ELAPSED=$((SECONDS - START))

# Merge: a test's result in the remount pass replaces its skip in the main one.
awk -F'\t' 'NR == FNR { seen[$1] = 1; print; next } !($1 in seen)' \
  "$CI_WORK/remount.results" "$CI_WORK/main.results" | sort >"$CI_WORK/results"
cp "$CI_WORK/results" "$CI_LOGS/pjdfstest.results"

awk -F'\t' '$2 == "fail" { print $1 }' "$CI_WORK/results" >"$CI_WORK/failed"
awk -F'\t' '$2 == "pass" { print $1 }' "$CI_WORK/results" >"$CI_WORK/passed"
awk -F'\t' '{ print $1 }' "$CI_WORK/results" >"$CI_WORK/ran"
comm -23 "$CI_WORK/failed" "$CI_WORK/expected" >"$CI_WORK/unexpected"
comm -12 "$CI_WORK/failed" "$CI_WORK/expected" >"$CI_WORK/as_expected"
comm -12 "$CI_WORK/passed" "$CI_WORK/expected" >"$CI_WORK/fixed"
comm -23 "$CI_WORK/expected" "$CI_WORK/ran" >"$CI_WORK/not_run"
n_pass=$(wc -l <"$CI_WORK/passed")
n_unexpected=$(wc -l <"$CI_WORK/unexpected")
n_expected=$(wc -l <"$CI_WORK/as_expected")
n_skip=$(awk -F'\t' '$2 == "skip"' "$CI_WORK/results" | wc -l)
n_total=$(wc -l <"$CI_WORK/results")

ci_say "$n_total tests in ${ELAPSED}s: $n_pass passed, $n_unexpected failed unexpectedly, $n_expected failed as expected (ci/pjdfstest-expected-failures.txt), $n_skip skipped; log: $LOG"
awk -F'\t' '$2 == "skip" { printf "pjdfstest: skipped %s: %s\n", $1, $3 }' "$CI_WORK/results"
if [ "$n_unexpected" -gt 0 ]; then
  ci_say "UNEXPECTED FAILURES (not in ci/pjdfstest-expected-failures.txt):"
  awk -F'\t' 'NR == FNR { want[$1] = 1; next } ($1 in want) { printf "  %s: %s\n", $1, $3 }' \
    "$CI_WORK/unexpected" "$CI_WORK/results"
fi
while read -r t; do
  ci_say "note: $t is listed in ci/pjdfstest-expected-failures.txt but passes now: remove it from the list"
done <"$CI_WORK/fixed"
if [ ${#PATTERNS[@]} = 0 ]; then
  while read -r t; do
    ci_say "note: $t is listed in ci/pjdfstest-expected-failures.txt but did not run (renamed or removed?)"
  done <"$CI_WORK/not_run"
fi

ci_umount "$MNT2" || true
ci_umount "$MNT" || true
ci_fsck "$IMG" || true
ci_fsck "$IMG2" || true

echo "$n_pass passed, $n_unexpected failed"
[ "$n_unexpected" = 0 ] || CI_FAILED=1
[ "$CI_FAILED" = 0 ]
