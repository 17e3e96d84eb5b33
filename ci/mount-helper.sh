#!/usr/bin/env bash
# The system's own commands find VexFS: `mount -t vexfs` on an image file
# and on a loop block device, an /etc/fstab-style line (`mount --fstab`),
# `df -T` showing fuse.vexfs, `umount`, and `fsck -t vexfs`.
#
# As root on a CI machine: installs the helpers with
# `PREFIX=/usr bash scripts/install.sh` (mount(8) looks for mount.TYPE in
# /sbin only; /sbin is /usr/sbin on merged-usr systems), then mounts and
# checks. Exit 0 when every step passed; 1 otherwise.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
say() { echo "mount-helper: $*"; }
fail() {
    say "FAILED: $*"
    exit 1
}
[ "$(id -u)" = 0 ] || fail "needs root"

PREFIX=/usr bash scripts/install.sh >/dev/null
work=$(mktemp -d)
loop=""
cleanup() {
    umount "$work/mnt" 2>/dev/null || true
    [ -z "$loop" ] || losetup -d "$loop" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/mnt"

# 1. mount -t vexfs on an image file; data survives umount and remount.
mkfs -t vexfs -q --size 64M "$work/img" || fail "mkfs -t vexfs"
mount -t vexfs "$work/img" "$work/mnt" || fail "mount -t vexfs IMAGE DIR"
df -T "$work/mnt" | grep -q 'fuse.vexfs' || fail "df -T does not show fuse.vexfs"
echo hello >"$work/mnt/file"
umount "$work/mnt" || fail "umount"
flock -w 30 "$work/img" true
fsck -t vexfs -n "$work/img" >/dev/null || fail "fsck -t vexfs finds problems"
say "mount -t vexfs, df -T, umount, fsck -t vexfs: ok"

# 2. An fstab line (in a private fstab file), mounted by its directory.
echo "$work/img $work/mnt vexfs rw,default_permissions 0 0" >"$work/fstab"
mount --fstab "$work/fstab" "$work/mnt" || fail "mount from an fstab line"
[ "$(cat "$work/mnt/file")" = hello ] || fail "the file written before is not there"
umount "$work/mnt"
flock -w 30 "$work/img" true
say "fstab line: ok"

# 3. The same image through a loop block device.
loop=$(losetup --find --show "$work/img")
mount -t vexfs "$loop" "$work/mnt" || fail "mount -t vexfs $loop"
[ "$(cat "$work/mnt/file")" = hello ] || fail "the file is not there on the block device"
echo device >"$work/mnt/dev-file"
umount "$work/mnt"
sleep 1
fsck -t vexfs -n "$loop" >/dev/null || fail "fsck of the block device"
say "block device $loop: ok"
losetup -d "$loop"
loop=""
say "all passed"
