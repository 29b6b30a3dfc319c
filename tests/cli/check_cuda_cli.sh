#!/bin/sh
# `zerolab train --backend=cuda` (or the config's "zerolab": {"backend": "cuda"}) where it
# cannot run: one clear error naming the cause, exit 1, before any data is read or step
# run. A build without CUDA says it is not built; a build with it, on a machine without a
# GPU (CI, this test's usual home), says there is no driver or no device. On a machine
# with a GPU the run is tests/gpu's business: skipped here.
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_cuda_cli.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0 checks=0

"$ZEROLAB" report >"$tmp/report" 2>&1
if grep -q '^CUDA backend \.*\s*\[YES\] \.* \[YES\]' "$tmp/report"; then
    echo "a CUDA device is visible: the failure messages cannot be shown here (tests/gpu runs)"
    exit 77
fi
if grep -q '^CUDA backend \.*\s*\[YES\]' "$tmp/report"; then
    # built: the driver or the device is missing, and CUDA's own words name which
    want="no CUDA d"
else
    want="backend 'cuda' is not built: configure found no CUDA toolkit"
fi
printf '{"train_micro_batch_size_per_gpu": 4, "zerolab": {"backend": "cuda"}}\n' >"$tmp/cuda.json"

# check NAME ARGS...: exit 1, the message and a hint on stderr, no step printed, no data
# read (a data file that does not exist would be the error otherwise)
check() {
    name=$1; shift
    checks=$((checks + 1))
    "$ZEROLAB" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
    if [ "$rc" -ne 1 ]; then
        echo "FAIL: $name: exit $rc, expected 1"; cat "$tmp/out" "$tmp/err"; failures=$((failures + 1))
    elif ! grep -qF "$want" "$tmp/err" || ! grep -q '^  hint: ' "$tmp/err"; then
        echo "FAIL: $name: stderr lacks '$want' and a hint:"; cat "$tmp/err"; failures=$((failures + 1))
    elif [ "$(grep -c '^zerolab: error' "$tmp/err")" -ne 1 ]; then
        echo "FAIL: $name: not exactly one error:"; cat "$tmp/err"; failures=$((failures + 1))
    elif grep -q '^step' "$tmp/out"; then
        echo "FAIL: $name: steps ran"; cat "$tmp/out"; failures=$((failures + 1))
    else
        echo "ok: $name: $(head -1 "$tmp/err")"
    fi
}
check "--backend=cuda" train --backend=cuda --steps 1 --data "$tmp/absent.bin"
check "--backend cuda --device-memory" train --backend cuda --device-memory 1GB --steps 1 --data "$tmp/absent.bin"
check "config zerolab.backend cuda" train --config "$tmp/cuda.json" --steps 1 --data "$tmp/absent.bin"

# plan reads a config that names cuda on any machine: it runs on the meta backend
checks=$((checks + 1))
if "$ZEROLAB" plan --model lab --cluster v100-16gb --config "$tmp/cuda.json" >"$tmp/out" 2>&1; then
    echo "ok: plan of a cuda config runs without a GPU"
else
    echo "FAIL: plan of a cuda config:"; cat "$tmp/out"; failures=$((failures + 1))
fi

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
