#!/usr/bin/env bash
# Run every cargo-fuzz target of VexFS for SECONDS seconds each (default 30).
#
#   fuzz/run-all.sh [SECONDS]
#
# Uses the stable toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs nightly
# flags). Each target starts from its seed corpus fuzz/corpus/<target>/, but
# new inputs go to a scratch corpus in a temp dir, so the committed corpus
# does not grow. Crashing inputs land in fuzz/artifacts/<target>/ (cargo-fuzz's
# default). Prints one line per target (executions/s, coverage, result) and
# exits 1 if any target crashed, timed out or ran out of memory, 2 if the
# build failed. The scratch dir (corpora and logs) is kept when a target
# failed and removed otherwise.
set -uo pipefail

secs=${1:-30}
case $secs in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

scratch=$(mktemp -d "${TMPDIR:-/tmp}/vexfs-fuzz.XXXXXX")
echo "scratch corpora and logs: $scratch"

if ! cargo fuzz build; then
    echo "cargo fuzz build failed" >&2
    exit 2
fi

failed=()
printf '%-20s %10s %8s  %s\n' target exec/s cov result
for t in $(cargo fuzz list); do
    mkdir -p "$scratch/corpus/$t"
    log=$scratch/$t.log
    # The first corpus dir receives new inputs; the seeds are only read.
    if cargo fuzz run "$t" "$scratch/corpus/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=25 -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log)"
        failed+=("$t")
    fi
    execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    printf '%-20s %10s %8s  %s\n' "$t" "${execs:--}" "${cov:--}" "$result"
done

if ((${#failed[@]})); then
    echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/<target>/, logs in $scratch)" >&2
    exit 1
fi
rm -rf "$scratch"
