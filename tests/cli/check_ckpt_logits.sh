#!/bin/sh
# `zerolab ckpt to-fp32` into PyTorch: a checkpoint's to-fp32 file, read by a few lines of
# numpy into the PyTorch reference GPT (tests/ckpt_logits.py), gives the softmax of the
# logits and the loss that zerolab's own forward gives on the same checkpoint
# (tests/tools/zl_ckpt_probe), within fp32 tolerance (1e-5 absolute). Checkpoints: fp32
# on one rank; bf16 at ZeRO stage 2 on two ranks when MPI is there (to-fp32 then holds
# the fp32 master weights, which the probe's fp32 run loads too). And the comparison is
# not vacuous: another checkpoint's weights against the probe differ.
# Exit 77 (skip) when /usr/bin/python3 lacks torch or numpy. Needs $ZEROLAB (make check).
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
srcdir=${ZL_SRCDIR:-.}
PY=${TORCH_PYTHON3:-/usr/bin/python3}
probe=$(dirname "$ZEROLAB")/tests/tools/zl_ckpt_probe
if ! "$PY" -c 'import numpy, torch' >/dev/null 2>&1; then
    echo "SKIP: $PY lacks torch or numpy"; exit 77
fi
[ -x "$probe" ] || { echo "FAIL: $probe is not built"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_ckpt_logits.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0 checks=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# logits NAME DIR: to-fp32, probe, python; passes when they agree
logits() {
    name=$1 dir=$2
    checks=$((checks + 1))
    if ! "$ZEROLAB" ckpt to-fp32 "$dir" "$tmp/$name.safetensors" >"$tmp/$name.fp32.out" 2>&1; then
        fail "$name: zerolab ckpt to-fp32"; cat "$tmp/$name.fp32.out"; return
    fi
    if ! "$probe" "$dir" "$tmp/$name.probe.safetensors" >"$tmp/$name.probe.out" 2>&1; then
        fail "$name: zl_ckpt_probe"; cat "$tmp/$name.probe.out"; return
    fi
    if "$PY" "$srcdir/tests/ckpt_logits.py" "$tmp/$name.safetensors" \
            "$tmp/$name.probe.safetensors" >"$tmp/$name.py.out" 2>&1; then
        echo "ok: $name: to-fp32 in PyTorch gives zerolab's probabilities and loss"
        sed 's/^/    /' "$tmp/$name.py.out"
    else
        fail "$name: PyTorch and zerolab differ"; cat "$tmp/$name.py.out"
    fi
}

# --- fp32, one rank ---------------------------------------------------------------------
if "$ZEROLAB" train --steps 3 --seq-len 32 --save "$tmp/fp32" >"$tmp/train.out" 2>&1; then
    logits fp32 "$tmp/fp32"
    # not vacuous: the step-3 weights against a probe of other weights (3 more steps)
    checks=$((checks + 1))
    if "$ZEROLAB" train --steps 6 --seq-len 32 --load "$tmp/fp32" --save "$tmp/fp32b" \
            >"$tmp/trainb.out" 2>&1 &&
        "$probe" "$tmp/fp32b" "$tmp/other.probe.safetensors" >/dev/null 2>&1; then
        "$PY" "$srcdir/tests/ckpt_logits.py" "$tmp/fp32.safetensors" "$tmp/other.probe.safetensors" \
            >"$tmp/other.py.out" 2>&1
        status=$?
        if [ $status -eq 1 ] && grep -q DIFFER "$tmp/other.py.out"; then
            echo "ok: other weights than the probe's: the comparison says they differ"
        else
            fail "other weights: ckpt_logits.py exit $status"; cat "$tmp/other.py.out"
        fi
    else
        fail "a second checkpoint (train --load --save)"; cat "$tmp/trainb.out"
    fi
else
    fail "zerolab train --save (fp32)"; cat "$tmp/train.out"
fi

# --- bf16, ZeRO stage 2, two ranks -------------------------------------------------------
if [ -n "${MPIEXEC:-}" ]; then
    printf '{"train_micro_batch_size_per_gpu": 4, "bf16": {"enabled": true}, "zero_optimization": {"stage": 2}}\n' \
        >"$tmp/bf16.json"
    if OMP_NUM_THREADS=1 timeout 600 $MPIEXEC -n 2 "$ZEROLAB" train --config "$tmp/bf16.json" \
            --steps 3 --seq-len 32 --save "$tmp/bf16" >"$tmp/train2.out" 2>&1; then
        if "$ZEROLAB" ckpt inspect "$tmp/bf16" --no-verify | grep -q "2 data-parallel ranks at ZeRO stage 2; bf16"; then
            logits bf16-zero2-np2 "$tmp/bf16"
        else
            checks=$((checks + 1)); fail "the bf16 checkpoint is not what was asked"
            "$ZEROLAB" ckpt inspect "$tmp/bf16" --no-verify
        fi
    else
        checks=$((checks + 1)); fail "mpiexec -n 2 zerolab train --save (bf16, ZeRO-2)"; cat "$tmp/train2.out"
    fi
else
    echo "note: no MPI in this build: the two-rank bf16 checkpoint is not tested"
fi

echo "$checks checks, $failures failures"
[ "$checks" -gt 0 ] && [ "$failures" -eq 0 ]
