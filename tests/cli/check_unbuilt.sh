#!/bin/sh
# A config that asks for a feature zerolab has not built yet is valid DeepSpeed, so
# `zerolab config` accepts it and says what it cannot run; `zerolab train` and `zerolab plan`
# both refuse it before doing anything, with the same message (zl_engine_check_config).
# One config per feature: 16-bit master weights (bf16_master_weights_and_grads), summed
# gradients (gradient_allreduce_op "sum") (ZeRO-Infinity's
# NVMe parameters and optimizer are built: tests/mpi/check_pnvme.c, check_nvme.c; activation
# checkpointing too: tests/unit/check_actckpt.c; pipeline parallelism: tests/mpi/check_pipe.c).
# (train's config warnings, which plan does not print, are left out of the comparison.)
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_unbuilt.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0 checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

printf '{"train_micro_batch_size_per_gpu": 4,\n "zero_optimization": {"stage": 2},\n "bf16": {"enabled": true, "bf16_master_weights_and_grads": true}}\n' >"$tmp/master16.json"

printf '{"train_micro_batch_size_per_gpu": 4,\n "gradient_allreduce_op": "sum"}\n' >"$tmp/gradsum.json"

for case in "master16:bf16_master_weights_and_grads (16-bit master weights) is not implemented yet" \
            "gradsum:gradient_allreduce_op \"sum\" (summed, not averaged, data-parallel gradients) is not implemented yet"; do
    name=${case%%:*} words=${case#*:}
    f=$tmp/$name.json
    checks=$((checks + 1))
    "$ZEROLAB" config "$f" >"$tmp/config.out" 2>&1; crc=$?
    "$ZEROLAB" train --config "$f" --steps 1 >"$tmp/train.out" 2>"$tmp/train.err"; trc=$?
    "$ZEROLAB" plan --model lab --cluster v100-16gb --config "$f" >"$tmp/plan.out" 2>"$tmp/plan.err"; prc=$?
    if [ "$crc" -ne 0 ] || ! grep -q "valid DeepSpeed config; zerolab cannot yet run it" "$tmp/config.out" ||
       ! grep -qF "$words" "$tmp/config.out"; then
        fail "config $name.json (exit $crc) does not say what it cannot run:"; cat "$tmp/config.out"
    elif [ "$trc" -ne 1 ] || [ "$prc" -ne 1 ] || ! grep -qF "$words" "$tmp/train.err"; then
        fail "$name.json: train exit $trc, plan exit $prc, expected 1 and 1:"; cat "$tmp/train.err" "$tmp/plan.err"
    elif grep -v '^zerolab warning' "$tmp/train.err" >"$tmp/train.msg" &&
         grep -v '^zerolab warning' "$tmp/plan.err" >"$tmp/plan.msg" &&
         ! cmp -s "$tmp/train.msg" "$tmp/plan.msg"; then
        fail "$name.json: train and plan refuse it differently:"; diff "$tmp/train.msg" "$tmp/plan.msg"
    elif grep -q '^step' "$tmp/train.out"; then
        fail "$name.json: train printed steps before refusing"
    else
        echo "ok: $name.json: config says it cannot run it; train and plan refuse it alike: $words"
    fi
done

# ... and a config without them is plainly valid.
checks=$((checks + 1))
printf '{"train_micro_batch_size_per_gpu": 4, "activation_checkpointing": {"partition_activations": false}}\n' >"$tmp/ok.json"
if "$ZEROLAB" config "$tmp/ok.json" 2>&1 | grep -q "ok.json: valid$"; then echo "ok: an all-off block is plainly valid"
else fail "an all-off activation_checkpointing block is not plainly valid"; fi

echo "$((checks - failures)) of $checks checks passed"
[ "$failures" -eq 0 ]
