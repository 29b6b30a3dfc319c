#!/bin/sh
# `zerolab ckpt` end to end on small checkpoints of the lab model: inspect reports the tag,
# step, layout and checked checksums; reshape to the layout a checkpoint already has
# rewrites every file byte for byte; reshape to another layout keeps the weights and
# Adam's moments exactly (compare --state) and trains on with that many ranks; compare of
# two checkpoints that differ exits 1 naming where; bad input (a missing directory or tag,
# a corrupted, edited or truncated file, an unknown command, a missing flag) is one clear
# message with exit 1, or 2 for usage, and never a crash. Needs $ZEROLAB (make check);
# the two-rank parts need $MPIEXEC.
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_ckpt_tools.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0 checks=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect STATUS PATTERN -- ARGS...: zerolab's exit status is STATUS and its output
# (stdout and stderr) contains PATTERN (fixed string); a status from a signal is a crash.
expect() {
    want_status=$1 pattern=$2
    shift 3
    checks=$((checks + 1))
    "$ZEROLAB" "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
    if [ "$status" -ne "$want_status" ]; then
        fail "zerolab $*: exit status $status, expected $want_status"; cat "$tmp/out" "$tmp/err"; return
    fi
    if ! grep -qF -- "$pattern" "$tmp/out" "$tmp/err"; then
        fail "zerolab $*: output lacks '$pattern'"; cat "$tmp/out" "$tmp/err"; return
    fi
    echo "ok: zerolab $* -> $status, '$pattern'"
}

# same_files A B: the two directories hold the same files with the same bytes
same_files() {
    checks=$((checks + 1))
    (cd "$1" && find . -type f | sort) >"$tmp/l1"
    (cd "$2" && find . -type f | sort) >"$tmp/l2"
    if ! cmp -s "$tmp/l1" "$tmp/l2"; then
        fail "$1 and $2 hold other files"; diff "$tmp/l1" "$tmp/l2"; return
    fi
    n=0
    for f in $(cat "$tmp/l1"); do
        if ! cmp "$1/$f" "$2/$f"; then fail "$2/$f differs from $1/$f"; return; fi
        n=$((n + 1))
    done
    [ "$n" -ge 5 ] || { fail "$1: only $n files compared"; return; }
    echo "ok: $2 is $1 byte for byte ($n files)"
}

# flip FILE OFFSET: invert one byte in place
flip() {
    b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
    # shellcheck disable=SC2059
    printf "\\$(printf %o $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

train() { # train OUT_LOG ARGS...: zerolab train on the lab model, 32 tokens a sequence
    log=$1; shift
    checks=$((checks + 1))
    if "$ZEROLAB" train --seq-len 32 "$@" >"$log" 2>&1; then return 0; fi
    fail "zerolab train $*"; cat "$log"; return 1
}

printf '{"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 1}}\n' >"$tmp/z1.json"
printf '{"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 0}}\n' >"$tmp/z0.json"
printf '{"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 2}}\n' >"$tmp/z2.json"
printf '{"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 3}}\n' >"$tmp/z3.json"
A=$tmp/a
train "$tmp/a.log" --config "$tmp/z1.json" --steps 2 --save "$A" || { echo "$checks checks, $failures failures"; exit 1; }

# --- inspect --------------------------------------------------------------------------------
expect 0 "tag global_step2, written by zerolab" -- ckpt inspect "$A"
expect 0 "step 2 (0 skipped), 8 samples" -- ckpt inspect "$A"
expect 0 "saved by 1 data-parallel rank at ZeRO stage 1; f32 weights, fp32 master weights and Adam's moments" -- ckpt inspect "$A"
expect 0 "checksums: 31 tensors, 1.8 MiB: ok" -- ckpt inspect "$A"
expect 0 "zero_pp_rank_0_mp_rank_00_optim_states.safetensors" -- ckpt inspect "$A" --tag global_step2

# --- reshape to the same layout: every file byte for byte -----------------------------------
expect 0 "for 1 rank at ZeRO stage 1" -- ckpt reshape "$A" "$tmp/a_same" --world-size 1
same_files "$A" "$tmp/a_same"

# --- reshape to another layout: the same state, and a run of that layout trains on --------
expect 0 "for 1 rank at ZeRO stage 0" -- ckpt reshape "$A" "$tmp/a_z0" --world-size 1 --stage 0
expect 0 "saved by 1 data-parallel rank at ZeRO stage 0" -- ckpt inspect "$tmp/a_z0"
expect 0 "agree (weights and Adam's moments): max |a - b| = 0;" -- ckpt compare "$A" "$tmp/a_z0" --state
if train "$tmp/z0.log" --config "$tmp/z0.json" --steps 3 --load "$tmp/a_z0"; then
    if grep -q "resumed from .*a_z0/global_step2 (saved by 1 rank at ZeRO stage 0)" "$tmp/z0.log"; then
        echo "ok: zerolab train --load of the stage-0 reshape resumes at step 2"
    else
        fail "train --load a_z0: no resume line"; cat "$tmp/z0.log"
    fi
fi
expect 0 "for 2 ranks at ZeRO stage 3" -- ckpt reshape "$A" "$tmp/a_z3" --world-size 2 --stage 3
expect 0 "saved by 2 data-parallel ranks at ZeRO stage 3" -- ckpt inspect "$tmp/a_z3"
expect 0 "zero_pp_rank_1_mp_rank_00_optim_states.safetensors" -- ckpt inspect "$tmp/a_z3"
expect 0 "agree (weights and Adam's moments): max |a - b| = 0;" -- ckpt compare "$A" "$tmp/a_z3" --state
if [ -n "${MPIEXEC:-}" ]; then
    checks=$((checks + 1))
    if OMP_NUM_THREADS=1 timeout 300 $MPIEXEC -n 2 "$ZEROLAB" train --config "$tmp/z3.json" --seq-len 32 \
            --steps 3 --load "$tmp/a_z3" >"$tmp/z3.log" 2>&1 &&
        grep -q "resumed from .*a_z3/global_step2 (saved by 2 ranks at ZeRO stage 3)" "$tmp/z3.log" &&
        grep -q "step     3/3" "$tmp/z3.log"; then
        echo "ok: mpiexec -n 2 zerolab train --load of the two-rank stage-3 reshape trains on"
    else
        fail "mpiexec -n 2 zerolab train --load a_z3"; cat "$tmp/z3.log"
    fi
    # a checkpoint of two ranks, reshaped to its own layout: byte for byte too
    checks=$((checks + 1))
    if OMP_NUM_THREADS=1 timeout 300 $MPIEXEC -n 2 "$ZEROLAB" train --config "$tmp/z2.json" --seq-len 32 \
            --steps 2 --save "$tmp/b" >"$tmp/b.log" 2>&1; then
        echo "ok: mpiexec -n 2 zerolab train --save (ZeRO-2)"
        expect 0 "for 2 ranks at ZeRO stage 2" -- ckpt reshape "$tmp/b" "$tmp/b_same" --world-size 2
        same_files "$tmp/b" "$tmp/b_same"
    else
        fail "mpiexec -n 2 zerolab train --save (ZeRO-2)"; cat "$tmp/b.log"
    fi
else
    echo "note: no MPI in this build: the two-rank loads are not tested"
fi

# --- compare: different checkpoints exit 1 and say where -------------------------------------
train "$tmp/a2.log" --config "$tmp/z1.json" --steps 3 --load "$A" --save "$tmp/a2"
expect 1 "differ (fp32 weights): max |a - b| = " -- ckpt compare "$A" "$tmp/a2"
expect 1 "elements beyond atol 0 + rtol 0" -- ckpt compare "$A" "$tmp/a2"
expect 1 ".weight[" -- ckpt compare "$A" "$tmp/a2"
expect 0 "agree" -- ckpt compare "$A" "$tmp/a2" --atol 1
expect 0 "agree (fp32 weights): max |a - b| = 0;" -- ckpt compare "$A" "$tmp/a_same"

# --- bad input: one message, exit 1 (or 2 for usage), never a crash ---------------------------
expect 1 "Unable to find latest file at $tmp/missing/latest" -- ckpt inspect "$tmp/missing"
expect 1 "checkpoint tag \"global_step9\" not found" -- ckpt inspect "$A" --tag global_step9
expect 1 "Unable to find latest file" -- ckpt to-fp32 "$tmp/missing" "$tmp/out.safetensors"
# a flipped byte in the fp32 master weights (past the safetensors header)
cp -r "$A" "$tmp/bad"
f=$tmp/bad/global_step2/zero_pp_rank_0_mp_rank_00_optim_states.safetensors
hdr=$(od -An -tu8 -N8 "$f" | tr -d ' ')
flip "$f" $((8 + hdr + 1000))
expect 1 "tensor \"fp32_flat\" of '$f' is corrupted" -- ckpt inspect "$tmp/bad"
expect 1 "is corrupted" -- ckpt to-fp32 "$tmp/bad" "$tmp/bad.safetensors"
checks=$((checks + 1))
if ls "$tmp"/bad.safetensors* >/dev/null 2>&1; then fail "to-fp32 of a corrupted checkpoint left a file"
else echo "ok: to-fp32 of a corrupted checkpoint leaves no file"; fi
expect 1 "is corrupted" -- ckpt reshape "$tmp/bad" "$tmp/bad_r" --world-size 2
expect 1 "is corrupted" -- ckpt compare "$A" "$tmp/bad"
# ... a byte of the safetensors header
cp -r "$A" "$tmp/badh"
flip "$tmp/badh/global_step2/mp_rank_00_model_states.safetensors" 20
expect 1 "mp_rank_00_model_states.safetensors" -- ckpt inspect "$tmp/badh" --no-verify
# ... an edited JSON value
cp -r "$A" "$tmp/badj"
sed 's/"global_steps": *2/"global_steps": 3/' "$A/global_step2/mp_rank_00_model_states.json" \
    >"$tmp/badj/global_step2/mp_rank_00_model_states.json"
checks=$((checks + 1))
if cmp -s "$A/global_step2/mp_rank_00_model_states.json" "$tmp/badj/global_step2/mp_rank_00_model_states.json"; then
    fail "the JSON edit changed nothing"
else
    echo "ok: edited the model states' JSON"
fi
expect 1 "mp_rank_00_model_states.json' is corrupted" -- ckpt inspect "$tmp/badj"
# ... a truncated shard
cp -r "$A" "$tmp/badt"
f=$tmp/badt/global_step2/zero_pp_rank_0_mp_rank_00_optim_states.safetensors
dd if="$A/global_step2/zero_pp_rank_0_mp_rank_00_optim_states.safetensors" of="$f" bs=1000 count=5 2>/dev/null
expect 1 "zero_pp_rank_0_mp_rank_00_optim_states.safetensors" -- ckpt inspect "$tmp/badt"
expect 1 "zero_pp_rank_0_mp_rank_00_optim_states.safetensors" -- ckpt to-fp32 "$tmp/badt" "$tmp/t.safetensors"
# usage
expect 2 "usage: zerolab ckpt COMMAND" -- ckpt
expect 2 "unknown command 'frob'" -- ckpt frob "$A"
expect 2 "--world-size M is required" -- ckpt reshape "$A" "$tmp/r"
expect 2 "--world-size" -- ckpt reshape "$A" "$tmp/r" --world-size 0
expect 2 "--stage expects 0, 1, 2 or 3, got '4'" -- ckpt reshape "$A" "$tmp/r" --world-size 2 --stage 4
expect 2 "expected DIR OUT.safetensors" -- ckpt to-fp32 "$A"
expect 2 "unknown or incomplete option '--bogus'" -- ckpt inspect "$A" --bogus
expect 0 "usage: zerolab ckpt COMMAND" -- ckpt --help

# --- the GEMM paths measured per shape travel with the checkpoint ----------------------------
# (make check pins ZL_GEMM_F32: here the measurement runs, and whatever it chose is kept
# for the resumed run, which takes it instead of measuring again)
C=$tmp/choices
if ZL_GEMM_F32=measure train "$tmp/c.log" --threads 1 --config "$tmp/z1.json" --steps 2 --save "$C"; then
    checks=$((checks + 1))
    if grep -q '"backend_choices"' "$C/global_step2/mp_rank_00_model_states.json" &&
        grep -q 'fp32 [0-9]* [0-9]* [0-9]* [01] [01] [0-9]* \(onednn\|openblas\)' \
            "$C/global_step2/mp_rank_00_model_states.json"; then
        echo "ok: the model states keep the measured GEMM paths (backend_choices)"
    else
        fail "the model states lack backend_choices with fp32 GEMM paths"
    fi
    if ZL_GEMM_F32=measure train "$tmp/c2.log" --threads 1 --config "$tmp/z1.json" --steps 3 --load "$C" --verbose; then
        checks=$((checks + 1))
        n=$(sed -n 's/.*took \([0-9]*\) run-time choices.*/\1/p' "$tmp/c2.log")
        if [ -n "$n" ] && [ "$n" -gt 0 ] && ! grep -q "fp32 gemm .*: oneDNN .* ms" "$tmp/c2.log"; then
            echo "ok: the resumed run took $n GEMM paths from the checkpoint and measured none again"
        else
            fail "the resumed run did not take the saved GEMM paths (or measured again):"; cat "$tmp/c2.log"
        fi
    fi
fi

echo "$checks checks, $failures failures"
[ "$checks" -gt 0 ] && [ "$failures" -eq 0 ]
