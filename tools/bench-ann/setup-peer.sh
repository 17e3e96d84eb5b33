#!/usr/bin/env bash
# setup-peer.sh — create (or reuse) a Python venv with numpy + hnswlib==0.8.0
# for the hnswlib side of the VexFS ANN benchmark.
#
# Usage:  tools/bench-ann/setup-peer.sh            # venv at target/bench-venv
#         VENV=/some/dir tools/bench-ann/setup-peer.sh
# Prints the venv's python path as the last line of stdout; everything else
# goes to stderr. Idempotent: re-running is a quick no-op when all is installed.
# Needs: python3 (with the venv module), a C++ compiler (hnswlib is an sdist).
set -euo pipefail

HNSWLIB_VERSION=0.8.0
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
VENV=${VENV:-$REPO_ROOT/target/bench-venv}
PY="$VENV/bin/python"

die() { echo "setup-peer: error: $*" >&2; exit 1; }
log() { echo "setup-peer: $*" >&2; }

command -v python3 >/dev/null || die "python3 not found"

check() {
  "$PY" - "$HNSWLIB_VERSION" <<'PYEOF' 2>/dev/null
import sys, importlib.metadata as md
import numpy, hnswlib
sys.exit(0 if md.version("hnswlib") == sys.argv[1] else 1)
PYEOF
}

if [ -x "$PY" ] && check; then
  log "already set up: $VENV"
  echo "$PY"; exit 0
fi

if [ ! -x "$PY" ]; then
  log "creating venv at $VENV"
  python3 -m venv "$VENV" \
    || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
fi

command -v c++ >/dev/null || command -v g++ >/dev/null \
  || die "no C++ compiler (c++/g++) found; hnswlib is built from source (apt-get install g++)"

log "installing numpy, pybind11, hnswlib==$HNSWLIB_VERSION"
"$PY" -m pip install --quiet --upgrade pip setuptools wheel >&2 \
  || die "pip bootstrap failed"
# numpy + pybind11 first: hnswlib's setup.py imports them at build time.
"$PY" -m pip install --quiet numpy pybind11 >&2 || die "pip install numpy pybind11 failed"
"$PY" -m pip install --quiet --no-build-isolation "hnswlib==$HNSWLIB_VERSION" >&2 \
  || die "pip install hnswlib==$HNSWLIB_VERSION failed (see pip output above)"

check || die "hnswlib/numpy still not importable from $PY after install"
log "ok: $("$PY" -c 'import numpy, hnswlib, importlib.metadata as m; print("numpy", numpy.__version__, "hnswlib", m.version("hnswlib"))')"
echo "$PY"
