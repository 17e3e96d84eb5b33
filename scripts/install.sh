#!/usr/bin/env bash
# Install the tools under the names the system expects, so that
# `mkfs -t vexfs`, `fsck -t vexfs` and `mount -t vexfs` find them.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${PREFIX:-/usr/local}"
cargo build --release -p vexfs-tools
cargo build --release -p vexfs --bin mount-vexfs
install -d "$prefix/sbin" "$prefix/bin"
install -m 755 target/release/mkfs-vexfs "$prefix/sbin/mkfs.vexfs"
install -m 755 target/release/fsck-vexfs "$prefix/sbin/fsck.vexfs"
install -m 755 target/release/mount-vexfs "$prefix/sbin/mount.vexfs"
install -m 755 target/release/vexfs-inspect "$prefix/bin/vexfs-inspect"
install -m 755 target/release/vexctl "$prefix/bin/vexctl"
echo "installed mkfs.vexfs, fsck.vexfs and mount.vexfs in $prefix/sbin, vexfs-inspect and vexctl in $prefix/bin"
# mount(8) looks for mount.TYPE helpers only in /sbin, /sbin/fs.d and /sbin/fs.
sbin="$(cd "$prefix/sbin" && pwd -P)"
if [ "$sbin" != "$(cd /sbin && pwd -P)" ] && [ ! -e /sbin/mount.vexfs ]; then
    echo "note: mount(8) only finds helpers in /sbin; for 'mount -t vexfs' and fstab run:"
    echo "  ln -s $prefix/sbin/mount.vexfs /sbin/mount.vexfs   (or install with PREFIX=/usr)"
fi
