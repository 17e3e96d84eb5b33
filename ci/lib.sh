# Shared helpers of ci/pjdfstest.sh and ci/fsx.sh (sourced, not run).
#
# What they share: root and /dev/fuse checks, building the release
# binaries, installing pjdfstest and fsx into target/ci-tools, making an
# image, mounting it the way a user would (`mount-vexfs IMAGE DIR -o ...`,
# daemon mode), unmounting it and waiting for the daemon to exit, and an
# EXIT trap that unmounts whatever is still mounted.
#
# Environment:
#   VEXFS_CI_TOOLS  where pjdfstest and fsx are installed (default target/ci-tools)
#   VEXFS_CI_LOGS   where the logs go (default target/ci-logs)
#   VEXFS_CI_KEEP   1: keep the work directory (images, artifacts) even on success
#   VEXFS_CI_MOUNT_OPTIONS  the -o of mount-vexfs (default allow_other,default_permissions;
#                   without default_permissions the VexFS core checks permissions)

# The versions the scripts were written against; the output parsing
# depends on them.
PJDFSTEST_VERSION=0.2.2
FSX_VERSION=0.3.2

CI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CI_BIN="$CI_ROOT/target/release"
CI_TOOLS="${VEXFS_CI_TOOLS:-$CI_ROOT/target/ci-tools}"
CI_LOGS="${VEXFS_CI_LOGS:-$CI_ROOT/target/ci-logs}"
CI_WORK=""            # temporary directory of this run (ci_make_work)
CI_MOUNTS=()          # mount points this run mounted and has not unmounted
declare -A CI_DAEMON  # mount point -> pid of its mount-vexfs daemon
declare -A CI_IMAGE   # mount point -> image
CI_FAILED=0           # set to 1 by anything that must fail the run
CI_NAME="${CI_NAME:-ci}"
CI_MOUNT_OPTIONS="${VEXFS_CI_MOUNT_OPTIONS:-allow_other,default_permissions}"

ci_say() { echo "$CI_NAME: $*"; }
ci_die() {
  echo "$CI_NAME: error: $*" >&2
  exit 2
}

ci_require_root() {
  [ "$(id -u)" = 0 ] || ci_die "must run as root (it mounts with mount(2) and switches users)"
  [ -e /dev/fuse ] || ci_die "/dev/fuse is missing: load the fuse module (modprobe fuse) or give the container the device"
}

# Build the binaries the scripts run (release, as users get them).
ci_build_vexfs() {
  ci_say "building mount-vexfs, mkfs-vexfs, fsck-vexfs (release)"
  (cd "$CI_ROOT" &&
    cargo build --release --quiet -p vexfs --bin mount-vexfs &&
    cargo build --release --quiet -p vexfs-tools --bin mkfs-vexfs --bin fsck-vexfs)
}

# Install pjdfstest and fsx (pinned versions) into $CI_TOOLS unless both
# binaries are already there at those versions.
ci_install_tools() {
  local pj="$CI_TOOLS/bin/pjdfstest" fx="$CI_TOOLS/bin/fsx"
  if [ -x "$pj" ] && [ -x "$fx" ] &&
    [ "$("$pj" --version 2>/dev/null)" = "pjdfstest $PJDFSTEST_VERSION" ] &&
    [ "$("$fx" --version 2>/dev/null)" = "fsx $FSX_VERSION" ]; then
    return 0
  fi
  ci_say "installing pjdfstest $PJDFSTEST_VERSION and fsx $FSX_VERSION into $CI_TOOLS (once; takes a few minutes)"
  mkdir -p "$CI_TOOLS"
  cargo install --quiet --locked --force "pjdfstest@$PJDFSTEST_VERSION" "fsx@$FSX_VERSION" --root "$CI_TOOLS"
}

ci_make_work() {
  CI_WORK="$(mktemp -d "${TMPDIR:-/tmp}/vexfs-$CI_NAME.XXXXXX")"
  # mktemp makes it 0700: the users the tests switch to must reach the
  # mount points inside it.
  chmod 755 "$CI_WORK"
  mkdir -p "$CI_LOGS"
}

# ci_mkfs IMAGE SIZE: a fresh v1 image (the default layout of mkfs).
ci_mkfs() {
  "$CI_BIN/mkfs-vexfs" --quiet --force --size "$2" "$1"
}

# Is DIR (an absolute path without spaces) a mount point now?
ci_is_mounted() {
  awk -v d="$1" '$5 == d { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# The pid of the mount-vexfs process holding IMAGE open (the daemon).
ci_daemon_of() {
  local img="$1" p fd
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = mount-vexfs ] || continue
    for fd in "$p"/fd/*; do
      if [ "$(readlink "$fd" 2>/dev/null)" = "$img" ]; then
        echo "${p#/proc/}"
        return 0
      fi
    done
  done
  return 1
}

# Is process PID still running (a zombie whose threads are gone does not
# count: nothing may reap a daemon whose parent exited)?
ci_alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat:0:1}" != Z ]
}

# ci_mount IMAGE DIR OPTIONS: mount in daemon mode, check it is in
# /proc/self/mountinfo as fuse.vexfs, and remember the daemon.
ci_mount() {
  local img dir="$2" opts="$3" i pid=""
  img="$(readlink -f "$1")"
  mkdir -p "$dir"
  dir="$(readlink -f "$dir")"
  # Descriptors above 2 are closed for the helper: the daemon keeps every
  # descriptor it inherits until it exits, and an inherited pipe would
  # hold our caller's output open.
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd="${fd##*/}"
      [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
    done
    exec "$CI_BIN/mount-vexfs" "$img" "$dir" -o "$opts" </dev/null
  ) || ci_die "mount-vexfs $img $dir -o $opts failed (exit $?)"
  for i in $(seq 1 150); do
    ci_is_mounted "$dir" && break
    sleep 0.1
  done
  ci_is_mounted "$dir" || ci_die "$dir is not in /proc/self/mountinfo 15 s after mount-vexfs returned"
  CI_MOUNTS+=("$dir")
  CI_IMAGE[$dir]="$img"
  local line
  line="$(awk -v d="$dir" '$5 == d { sub(/.* - /, ""); print }' /proc/self/mountinfo | tail -n 1)"
  case "$line" in
    fuse.vexfs\ *) ;;
    *) ci_die "$dir is mounted as '$line', not fuse.vexfs" ;;
  esac
  pid="$(ci_daemon_of "$img")" || ci_die "no mount-vexfs process holds $img open"
  CI_DAEMON[$dir]="$pid"
  ci_say "mounted $img on $dir (-o $opts; daemon pid $pid)"
}

# ci_umount DIR: umount (retrying while busy), then wait for the daemon to
# close the image and exit. Returns non-zero (and sets CI_FAILED) when the
# unmount needed force or the daemon did not exit by itself.
ci_umount() {
  local dir="$1" pid="${CI_DAEMON[$1]:-}" i rc=0
  if ci_is_mounted "$dir"; then
    for i in $(seq 1 20); do
      timeout 30 umount "$dir" 2>/dev/null && break
      sleep 0.5
    done
    if ci_is_mounted "$dir"; then
      echo "$CI_NAME: error: umount $dir failed: $(umount "$dir" 2>&1); detaching it (umount -l)" >&2
      umount -l "$dir" || true
      rc=1
    fi
  fi
  if [ -n "$pid" ]; then
    for i in $(seq 1 600); do
      ci_alive "$pid" || break
      sleep 0.1
    done
    if ci_alive "$pid"; then
      echo "$CI_NAME: error: the mount-vexfs daemon (pid $pid) of $dir has not exited 60 s after umount; sending SIGTERM" >&2
      kill -TERM "$pid" 2>/dev/null || true
      sleep 5
      ci_alive "$pid" && kill -KILL "$pid" 2>/dev/null
      rc=1
    fi
  fi
  local m keep=()
  for m in "${CI_MOUNTS[@]}"; do
    [ "$m" = "$dir" ] || keep+=("$m")
  done
  CI_MOUNTS=("${keep[@]}")
  [ "$rc" = 0 ] || CI_FAILED=1
  return "$rc"
}

# ci_run SECONDS DIR LOG COMMAND...: run COMMAND in DIR with a time limit,
# output to LOG, and return its exit status (124: timed out). It runs in
# the background so that a signal to this script is handled at once (the
# EXIT trap stops it, then unmounts).
CI_CHILD=""
ci_run() {
  local secs="$1" dir="$2" log="$3" rc=0
  shift 3
  (cd "$dir" && exec timeout "$secs" "$@") >"$log" 2>&1 </dev/null &
  CI_CHILD=$!
  wait "$CI_CHILD" || rc=$?
  CI_CHILD=""
  return "$rc"
}

# ci_fsck IMAGE: must exit 0.
ci_fsck() {
  local out rc=0
  out="$("$CI_BIN/fsck-vexfs" "$1" 2>&1)" || rc=$?
  echo "$out" | sed "s/^/$CI_NAME: fsck: /"
  if [ "$rc" != 0 ]; then
    echo "$CI_NAME: error: fsck-vexfs $1 exited $rc" >&2
    CI_FAILED=1
    return 1
  fi
}

# The EXIT trap: unmount what is still mounted (in reverse order); remove
# the work directory unless something failed or VEXFS_CI_KEEP=1.
ci_cleanup() {
  local rc=$? i
  set +e
  if [ -n "$CI_CHILD" ]; then
    kill -TERM "$CI_CHILD" 2>/dev/null # timeout passes it on to the command
    wait "$CI_CHILD" 2>/dev/null
  fi
  for ((i = ${#CI_MOUNTS[@]} - 1; i >= 0; i--)); do
    ci_umount "${CI_MOUNTS[i]}"
  done
  if [ -n "$CI_WORK" ] && [ -d "$CI_WORK" ]; then
    if [ "$rc" = 0 ] && [ "$CI_FAILED" = 0 ] && [ "${VEXFS_CI_KEEP:-0}" != 1 ]; then
      rm -rf --one-file-system "$CI_WORK"
    else
      echo "$CI_NAME: kept the work directory $CI_WORK (images, logs, artifacts)"
    fi
  fi
  [ "$rc" = 0 ] && [ "$CI_FAILED" != 0 ] && rc=1
  exit "$rc"
}

ci_trap() {
  trap ci_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
