#!/usr/bin/env bash
# The main job on a fresh machine: build the tools, create a demo image with
# a vector collection, check it, and inspect it.
# (Mounting and searching arrive with the FUSE and vector issues.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p vexfs-tools
bin=target/release
img="${1:-${TMPDIR:-/tmp}/vexfs-demo.img}"
echo "== mkfs.vexfs: a 256 MiB image with a 384-dimension cosine collection"
"$bin/mkfs-vexfs" --force --size 256M --label demo --collection docs:384:cosine "$img"
echo "== fsck.vexfs"
"$bin/fsck-vexfs" "$img"
echo "== vexfs-inspect super"
"$bin/vexfs-inspect" super "$img"
echo "== vexfs-inspect tree"
"$bin/vexfs-inspect" tree "$img"
echo "== vexfs-inspect verify"
"$bin/vexfs-inspect" verify "$img"
