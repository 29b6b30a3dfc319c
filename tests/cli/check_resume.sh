#!/bin/sh
# Resuming from a checkpoint (docs/checkpoints.md, docs/testing.md "Checkpoints"):
#
# 1. Exact resume on the same layout, for fp32, bf16 and fp16 x ZeRO stages 0-3 x 1 and 2
#    ranks, with gradient accumulation 2, gradient clipping and a warmup LR schedule:
#    20 steps straight (--save A) against 10 steps (--save B) and then, in a new process,
#    `--load B --steps 20 --save B`. Every file of A/global_step20 and B/global_step20
#    (safetensors and JSON) is byte-identical, and so is each resumed step's log line
#    (loss, lr, grad norm, loss scale; not the timings). fp16 runs a dynamic loss scaler
#    that grows and overflows within the first 10 steps: the scale saved at step 10 is not
#    the initial one, so a resume that did not restore it would differ.
# 2. Resume on another layout (2 -> 1 ranks, 1 -> 3 ranks, stage 1 -> 3, stage 3 -> 0),
#    fp32, with the same train_batch_size on every world size (micro-batch x accumulation
#    x ranks): the resumed steps' losses agree with the straight run's to the 4 decimals
#    printed, the lr exactly, and the fp32 weights at step 20 within 1e-5 (weights_close).
#
# The 2- and 3-rank cases need MPI (skipped without it; the script exits 77 when nothing
# could run). Each run is under a 120 s guard (a hang fails). Needs $ZEROLAB (make check).
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_resume.XXXXXX") || exit 99
failures=0 checks=0
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
OMP_NUM_THREADS=1
export OMP_NUM_THREADS
unset ZL_COLLECTIVE_TIMEOUT

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

if [ -z "${MPIEXEC+set}" ]; then
    MPIEXEC=$(command -v mpiexec 2>/dev/null || true)
fi
[ -n "$MPIEXEC" ] || echo "no MPI launcher: the 2- and 3-rank cases are skipped"

# config FILE DTYPE STAGE [BATCH_KEYS]: the recipe; the batch is micro 2 x accumulation 2
# unless BATCH_KEYS replaces it. fp16: dynamic scaling from 2^16 that doubles after 3
# clean steps, so that it both grows and overflows (skipping steps) within 10 steps.
config() {
    case $2 in
    fp32) prec='' sched='"WarmupDecayLR", "params": {"warmup_min_lr": 0, "warmup_max_lr": 2e-3,
   "warmup_num_steps": 5, "total_num_steps": 20}' ;;
    bf16) prec='"bf16": {"enabled": true},' sched='"WarmupLR", "params": {"warmup_min_lr": 1e-4,
   "warmup_max_lr": 2e-3, "warmup_num_steps": 8, "warmup_type": "linear"}' ;;
    fp16) prec='"fp16": {"enabled": true, "loss_scale": 0, "initial_scale_power": 16,
   "loss_scale_window": 3, "hysteresis": 1},' sched='"WarmupDecayLR", "params": {"warmup_min_lr": 0,
   "warmup_max_lr": 1e-3, "warmup_num_steps": 5, "total_num_steps": 20}' ;;
    esac
    batch=${4:-'"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 2'}
    cat >"$1" <<EOF
{$batch,
 "gradient_clipping": 0.5, $prec
 "optimizer": {"type": "AdamW", "params": {"lr": 2e-3, "weight_decay": 0.01}},
 "scheduler": {"type": $sched},
 "zero_optimization": {"stage": $3}, "steps_per_print": 1}
EOF
}

# train NAME NP ARGS...: zerolab train on NP ranks under the hang guard; stdout and stderr
# into NAME.out and NAME.err; false (with the reason) unless it exits 0.
train() {
    name=$1 np=$2
    shift 2
    if [ "$np" = 1 ]; then launch=""; else launch="$MPIEXEC -n $np"; fi
    timeout -s KILL 120 $launch "$ZEROLAB" train --threads 1 --model lab --seq-len 16 "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err"
    code=$?
    [ "$code" = 0 ] && return 0
    fail "$name: 'zerolab train $*' on $np rank(s) exited $code"
    tail -n 15 "$tmp/$name.err" | sed 's/^/    /'
    return 1
}

# steps FILE FIRST LAST: the log lines of steps FIRST..LAST without their timings.
steps() {
    sed -n 's/^step *\([0-9][0-9]*\)\/\([0-9]*\) \(| loss [^|]*| lr [^|]*| grad norm [^|]*\(| loss scale [^|]*\)\{0,1\}\)|.*/\1 \3/p' "$1" |
        awk -v a="$2" -v b="$3" '$1 >= a && $1 <= b'
}

# json_value FILE KEY: the first "KEY": value in FILE (the JSON is one key a line).
json_value() {
    sed -n "s/^ *\"$2\": *\([^,]*\),\{0,1\}$/\1/p" "$1" | head -n 1
}

# ---- 1. the same layout: bitwise ------------------------------------------------------
same_layout() { # DTYPE STAGE NP
    dt=$1 stage=$2 np=$3
    id="$dt-z$stage-np$np" f0=$failures
    d="$tmp/$id"
    mkdir "$d"
    config "$d/cfg.json" "$dt" "$stage"
    checks=$((checks + 1))
    train "$id-straight" "$np" --config "$d/cfg.json" --steps 20 --save "$d/A" || return
    train "$id-first" "$np" --config "$d/cfg.json" --steps 10 --save "$d/B" || return
    train "$id-resumed" "$np" --config "$d/cfg.json" --steps 20 --load "$d/B" --save "$d/B" || return
    if ! grep -q "resumed from $d/B/global_step10" "$tmp/$id-resumed.out"; then
        fail "$id: the resumed run does not say it resumed from global_step10"
        return
    fi
    a="$d/A/global_step20" b="$d/B/global_step20"
    if [ "$(ls "$a")" != "$(ls "$b")" ]; then
        fail "$id: global_step20 holds other files: straight [$(ls "$a" | tr '\n' ' ')]," \
            "resumed [$(ls "$b" | tr '\n' ' ')]"
        return
    fi
    nfiles=0
    for f in "$a"/*; do
        nfiles=$((nfiles + 1))
        cmp -s "$f" "$b/${f##*/}" || fail "$id: ${f##*/} differs between the straight and the resumed run"
    done
    expect_files=$((2 + 2 * (stage == 0 ? 1 : np)))
    [ "$nfiles" = "$expect_files" ] || fail "$id: $nfiles files in global_step20, expected $expect_files"
    # The resumed steps' lines: loss, lr, grad norm (and loss scale) as the straight run's.
    steps "$tmp/$id-straight.out" 11 20 >"$d/straight.steps"
    steps "$tmp/$id-resumed.out" 11 20 >"$d/resumed.steps"
    if [ "$(wc -l <"$d/straight.steps")" != 10 ]; then
        fail "$id: the straight run's log has no lines for steps 11-20 (format changed?)"
    elif ! cmp -s "$d/straight.steps" "$d/resumed.steps"; then
        fail "$id: the resumed steps' log lines differ from the straight run's:"
        diff "$d/straight.steps" "$d/resumed.steps" | sed 's/^/    /'
    fi
    if [ "$dt" = fp16 ]; then
        # The scaler had work to do before the save (it moved, and a step overflowed), so
        # restoring it matters; what was saved is the scale step 10 left for step 11.
        m="$d/B/global_step10/mp_rank_00_model_states.json"
        s10=$(json_value "$m" cur_scale)
        over=$(json_value "$m" last_overflow_iter)
        shown=$(steps "$tmp/$id-straight.out" 10 10 | sed -n 's/.*| loss scale \([^ ]*\) .*/\1/p')
        scales=$(steps "$tmp/$id-straight.out" 1 10 | sed -n 's/.*| loss scale \([^ ]*\) .*/\1/p' | sort -u | wc -l)
        if [ "$scales" -lt 2 ] || [ -z "$over" ] || [ "$over" -lt 0 ]; then
            fail "$id: the loss scale took $scales value(s) in steps 1-10 and last_overflow_iter is '$over': the test does not exercise the scaler"
            return
        fi
        if [ "$(awk -v s="$s10" 'BEGIN { printf "%g", s }')" != "$shown" ]; then
            fail "$id: loss_scaler.cur_scale saved at step 10 is '$s10', the straight run's step 10 left $shown"
            return
        fi
    fi
    [ "$failures" = "$f0" ] || return
    echo "ok: $id: $nfiles files of global_step20 byte-identical, steps 11-20 identical$([ "$dt" = fp16 ] && echo ", loss scale $s10 (last overflow at iteration $over) restored")"
}

for dt in fp32 bf16 fp16; do
    for stage in 0 1 2 3; do
        same_layout "$dt" "$stage" 1
        [ -n "$MPIEXEC" ] && same_layout "$dt" "$stage" 2
    done
done

# ---- 2. another layout: within fp32 tolerance -----------------------------------------
# weights_close A B: the fp32 master weights and Adam's moments of two checkpoints agree
# within |a - b| <= 1e-5 + 1e-5 |b| (zerolab ckpt compare --state). Why that bound: the
# layouts sum the gradients in another order (a few f32 ulps of the gradient), which Adam
# turns into weight differences of about 1e-7 after 10 steps; one Adam step more or less,
# or moments not restored, moves weights by about the lr (here 1e-4 to 2e-3, measured 3e-4
# at step 20), far above it. Prints compare's line (the largest difference, where).
weights_close() {
    "$ZEROLAB" ckpt compare "$1/.." "$2/.." --tag "$(basename "$1")" --rtol 1e-5 --atol 1e-5 --state
}

other_layout() { # NP_SAVE STAGE_SAVE NP_LOAD STAGE_LOAD
    id="np$1-z$2-to-np$3-z$4"
    d="$tmp/$id"
    mkdir "$d"
    batch='"train_batch_size": 12, "train_micro_batch_size_per_gpu": 2'
    config "$d/save.json" fp32 "$2" "$batch"
    config "$d/load.json" fp32 "$4" "$batch"
    checks=$((checks + 1))
    train "$id-straight" "$1" --config "$d/save.json" --steps 20 --save "$d/A" || return
    train "$id-first" "$1" --config "$d/save.json" --steps 10 --save "$d/B" || return
    train "$id-resumed" "$3" --config "$d/load.json" --steps 20 --load "$d/B" --save "$d/B" || return
    if ! grep -q "resumed from $d/B/global_step10 (saved by $1 rank.* at ZeRO stage $2)" "$tmp/$id-resumed.out"; then
        fail "$id: the resumed run does not say it resumed from $1 rank(s) at stage $2"
        return
    fi
    # loss and lr of steps 11-20 (grad norm: summed in another order, last digit may move)
    steps "$tmp/$id-straight.out" 11 20 | cut -d'|' -f1-3 >"$d/straight.steps"
    steps "$tmp/$id-resumed.out" 11 20 | cut -d'|' -f1-3 >"$d/resumed.steps"
    if [ "$(wc -l <"$d/straight.steps")" != 10 ]; then
        fail "$id: the straight run's log has no lines for steps 11-20 (format changed?)"
    elif ! cmp -s "$d/straight.steps" "$d/resumed.steps"; then
        fail "$id: the resumed steps' losses differ from the straight run's:"
        diff "$d/straight.steps" "$d/resumed.steps" | sed 's/^/    /'
        return
    fi
    if ! close=$(weights_close "$d/A/global_step20" "$d/B/global_step20"); then
        fail "$id: the weights at step 20 are not the straight run's within tolerance: $close"
        return
    fi
    echo "ok: $id: steps 11-20 resumed on $3 rank(s) at stage $4: losses and lr as the straight run's ($(tail -n 1 "$d/resumed.steps")); $close"
}

if [ -n "$MPIEXEC" ]; then
    other_layout 2 1 1 1 # 2 -> 1 ranks
    other_layout 1 1 3 1 # 1 -> 3 ranks
    other_layout 2 1 2 3 # stage 1 -> 3
    other_layout 2 3 2 0 # stage 3 -> 0
fi

echo "$checks checks, $failures failures"
[ "$failures" = 0 ] || exit 1
[ "$checks" -gt 0 ] || exit 77
exit 0
