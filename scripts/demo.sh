#!/usr/bin/env bash
# The main job on a fresh machine: build, create a demo image with a vector
# collection, mount it over FUSE, write some files, unmount, check the image
# and show what is inside with vexfs-inspect.
# (Vector search arrives with the vector issue; the collection is created
# and shown, not yet searched.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p vexfs-tools --bin mkfs-vexfs --bin fsck-vexfs --bin vexfs-inspect
cargo build --release -p vexfs --bin mount-vexfs
bin=target/release
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
img="$work/demo.img"
mnt="$work/mnt"
mkdir -p "$mnt"
echo "== mkfs.vexfs: a 256 MiB image with a 384-dimension cosine collection"
"$bin/mkfs-vexfs" --force --size 256M --label demo --collection docs:384:cosine "$img"
if [ -e /dev/fuse ]; then
  echo "== mount.vexfs $img $mnt"
  "$bin/mount-vexfs" "$img" "$mnt"
  trap 'umount "$mnt" 2>/dev/null || true' EXIT
  mkdir -p "$mnt/docs/notes"
  echo "VexFS keeps vectors next to files." > "$mnt/docs/readme.txt"
  seq 1 2000 > "$mnt/docs/notes/numbers.txt"
  ln -s readme.txt "$mnt/docs/link"
  ls -l "$mnt/docs"
  df -hT "$mnt" | tail -1
  umount "$mnt"
  trap - EXIT
  # umount returns before the daemon has finished closing the image; its
  # exclusive lock (flock) tells when it is done.
  flock -w 30 "$img" true
else
  echo "== /dev/fuse is missing: skipping the mount part of the demo"
fi
echo "== fsck.vexfs"
"$bin/fsck-vexfs" "$img"
echo "== vexfs-inspect super"
"$bin/vexfs-inspect" super "$img"
echo "== vexfs-inspect tree"
"$bin/vexfs-inspect" tree "$img"
if [ -e /dev/fuse ]; then
  echo "== vexfs-inspect cat /docs/readme.txt"
  "$bin/vexfs-inspect" cat "$img" /docs/readme.txt
fi
echo "== vexfs-inspect verify"
"$bin/vexfs-inspect" verify "$img"
