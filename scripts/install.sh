#!/usr/bin/env bash
# Install the tools under the names the system expects, so that
# `mkfs -t vexfs` and `fsck -t vexfs` find them.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${PREFIX:-/usr/local}"
cargo build --release -p vexfs-tools
install -d "$prefix/sbin" "$prefix/bin"
install -m 755 target/release/mkfs-vexfs "$prefix/sbin/mkfs.vexfs"
install -m 755 target/release/fsck-vexfs "$prefix/sbin/fsck.vexfs"
install -m 755 target/release/vexfs-inspect "$prefix/bin/vexfs-inspect"
echo "installed mkfs.vexfs and fsck.vexfs in $prefix/sbin, vexfs-inspect in $prefix/bin"
