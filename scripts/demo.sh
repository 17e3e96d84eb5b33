#!/usr/bin/env bash
# The main job on a fresh machine: build, create a demo image with a vector
# collection, mount it over FUSE, write some files and attach vectors to
# them, search through the mount (vexctl and the /.vexfs/search control
# file), unmount, check the image, search it offline and show what is
# inside with vexfs-inspect.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p vexfs-tools --bin mkfs-vexfs --bin fsck-vexfs --bin vexfs-inspect --bin vexctl
cargo build --release -p vexfs --bin mount-vexfs
bin=target/release
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
img="$work/demo.img"
mnt="$work/mnt"
mkdir -p "$mnt"
echo "== mkfs.vexfs: a 256 MiB image with a 4-dimension cosine collection"
"$bin/mkfs-vexfs" --force --size 256M --label demo --collection docs:4:cosine "$img"
# Toy embeddings: (animals, computers, food, travel).
cat > "$work/vectors.csv" <<'CSV'
/docs/cat.txt,0.9,0.1,0.2,0.0
/docs/dog.txt,0.8,0.0,0.3,0.1
/docs/rust.txt,0.0,0.9,0.0,0.1
/docs/fuse.txt,0.1,0.8,0.0,0.0
/docs/pasta.txt,0.1,0.0,0.9,0.2
/docs/trips/rome.txt,0.0,0.1,0.6,0.9
/docs/trips/oslo.txt,0.1,0.1,0.0,0.9
CSV
if [ -e /dev/fuse ]; then
  echo "== mount.vexfs $img $mnt"
  "$bin/mount-vexfs" "$img" "$mnt"
  trap 'umount "$mnt" 2>/dev/null || true' EXIT
  mkdir -p "$mnt/docs/notes"
  echo "VexFS keeps vectors next to files." > "$mnt/docs/readme.txt"
  seq 1 2000 > "$mnt/docs/notes/numbers.txt"
  ln -s readme.txt "$mnt/docs/link"
  echo "== vexctl import: attach a vector to each file (through user.vexfs.vector.docs)"
  "$bin/vexctl" import "$mnt" docs "$work/vectors.csv" --quiet
  ls -lR "$mnt/docs"
  df -hT "$mnt" | tail -1
  echo "== vexctl search $mnt docs --like /docs/cat.txt -k 3"
  "$bin/vexctl" search "$mnt" docs --like /docs/cat.txt -k 3
  echo "== the same kind of query from the shell, through /.vexfs/search"
  exec 3<>"$mnt/.vexfs/search"
  echo '{"collection":"docs","k":2,"subtree":"/docs/trips","vector":[0,0,1,0.5]}' >&3
  cat <&3
  exec 3>&-
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
if [ -e /dev/fuse ]; then
  echo "== vexctl, offline (shared lock, read-only): stats and a search of the unmounted image"
  "$bin/vexctl" stats "$img" docs
  "$bin/vexctl" search "$img" docs --vector 0.1,0.9,0,0 -k 2
fi
