#!/bin/sh
# Pipeline parallelism through the zerolab command (docs/parallelism.md; the engine's own
# tests against one rank are tests/mpi/check_pipe.c):
#
# a. `train --pipeline-stages 2` on 2 ranks and the same run on 1 rank without stages
#    print the same losses: every "step N/M | loss X" line and the "done:" line agree
#    within 2e-4 (they print 4 decimals; the stages sum in another order).
# b. The same cut from a config's "pipeline" block (partition type:block) on 2 ranks:
#    rank 0 prints DeepSpeed's layout ("stage=0 layers=N", one line a layer) once, and
#    the run succeeds.
# c. 3 stages on 2 ranks: exit 1, "does not divide".
# d. ZeRO-2 in a config with a "pipeline" block, and --pipeline-stages 2 with a ZeRO-3
#    config: exit 1 with DeepSpeed's "ZeRO-2 and ZeRO-3 are incompatible with pipeline
#    parallelism".
# e. --save or --load with pipeline stages: exit 1 before any step is trained, with one
#    message that checkpoints of pipeline-parallel runs are not built yet.
#
# Everything needs 2 ranks: without an MPI launcher the script exits 77 (skipped). Each
# run is under a 120 s guard (a hang fails). Needs $ZEROLAB (make check).
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_pipeline.XXXXXX") || exit 99
failures=0 checks=0
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
# One OpenMP thread a rank: the ranks already share the machine's cores.
OMP_NUM_THREADS=1
export OMP_NUM_THREADS
unset ZL_COLLECTIVE_TIMEOUT

if [ -z "${MPIEXEC+set}" ]; then
    MPIEXEC=$(command -v mpiexec 2>/dev/null || true) # run by hand: whatever is in PATH
fi
if [ -z "$MPIEXEC" ]; then
    echo "no MPI launcher (configure found no MPI): skipped"
    exit 77
fi

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# run NAME NP ARGS...: zerolab on NP ranks under the hang guard; stdout and stderr into
# NAME.out and NAME.err; sets $code to the exit status.
run() {
    name=$1 np=$2
    shift 2
    if [ "$np" = 1 ]; then launch=""; else launch="$MPIEXEC -n $np"; fi
    timeout -s KILL 120 $launch "$ZEROLAB" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    code=$?
}

# succeeded NAME: true if the last run exited 0, else a failure with its stderr.
succeeded() {
    [ "$code" = 0 ] && return 0
    fail "$1: exited $code, expected 0"
    tail -n 15 "$tmp/$1.err" | sed 's/^/    /'
    return 1
}

# refused NAME PATTERN: the last run exited 1 and its stderr holds PATTERN (fixed string).
refused() {
    checks=$((checks + 1))
    if [ "$code" != 1 ]; then
        fail "$1: exited $code, expected 1"
        tail -n 15 "$tmp/$1.out" "$tmp/$1.err" | sed 's/^/    /'
        return 1
    fi
    if ! grep -qF -- "$2" "$tmp/$1.err"; then
        fail "$1: stderr lacks '$2':"
        sed 's/^/    /' "$tmp/$1.err"
        return 1
    fi
    echo "ok: $1: exit 1, '$2'"
}

# losses FILE: "N X" for each "step N/M | loss X" line.
losses() {
    sed -n 's/^step *\([0-9][0-9]*\)\/[0-9]* | loss \([-0-9.naif]*\) |.*/\1 \2/p' "$1"
}

# done_losses FILE: "A B" of "done: loss A -> B in ...".
done_losses() {
    sed -n 's/^done: loss \([-0-9.naif]*\) -> \([-0-9.naif]*\) in .*/\1 \2/p' "$1"
}

# ---- a. 2 stages on 2 ranks against 1 rank ------------------------------------------------
checks=$((checks + 1))
args="train --steps 6 --grad-accum 4 --seed 3"
run one 1 $args
if succeeded one; then
    run pp2 2 $args --pipeline-stages 2
    if succeeded pp2; then
        losses "$tmp/one.out" >"$tmp/one.loss"
        losses "$tmp/pp2.out" >"$tmp/pp2.loss"
        n=$(wc -l <"$tmp/one.loss")
        d1=$(done_losses "$tmp/one.out") d2=$(done_losses "$tmp/pp2.out")
        if [ "$n" = 0 ] || [ -z "$d1" ]; then
            fail "a: the 1-rank run printed no step or done line (format changed?)"
            sed 's/^/    /' "$tmp/one.out"
        elif [ "$(cut -d' ' -f1 "$tmp/one.loss")" != "$(cut -d' ' -f1 "$tmp/pp2.loss")" ]; then
            fail "a: the pipeline run printed steps [$(cut -d' ' -f1 "$tmp/pp2.loss" | tr '\n' ' ')]," \
                "one rank [$(cut -d' ' -f1 "$tmp/one.loss" | tr '\n' ' ')]"
        elif ! worst=$(paste -d' ' "$tmp/one.loss" "$tmp/pp2.loss" |
                       awk -v d1="$d1" -v d2="$d2" '
                           function check(what, x, y) {
                               diff = x - y; if (diff < 0) diff = -diff
                               if (!(diff <= 2e-4)) { printf "%s: one rank %s, 2 stages %s; ", what, x, y; bad = 1 }
                               if (diff > worst) worst = diff
                           }
                           { check("step " $1, $2, $4) }
                           END {
                               split(d1, a, " "); split(d2, b, " ")
                               check("done (first)", a[1], b[1]); check("done (last)", a[2], b[2])
                               if (bad) exit 1
                               printf "%g", worst
                           }'); then
            fail "a: the losses differ by more than 2e-4: $worst"
        else
            echo "ok: a: --pipeline-stages 2 on 2 ranks: $n step line(s) and 'done: loss $(echo "$d2" | sed 's/ / -> /')' as one rank's within 2e-4 (largest difference $worst)"
        fi
    fi
fi

# ---- b. the stages from the config's pipeline block ---------------------------------------
checks=$((checks + 1))
cat >"$tmp/pipe.json" <<'EOF'
{"train_micro_batch_size_per_gpu": 16, "gradient_accumulation_steps": 4,
 "pipeline": {"stages": 2, "partition": "type:block"}}
EOF
run block 2 train --config "$tmp/pipe.json" --steps 3
if succeeded block; then
    heads=$(grep -c '^stage=0 layers=' "$tmp/block.out")
    # the layer lines after "stage=0 layers=N": N of them, "  i: name"
    layout=$(awk '/^stage=0 layers=/ { n = substr($2, 8) + 0; want = n; next }
                  want > 0 && /^ *[0-9]+: [a-z]/ { want--; got++; next }
                  want > 0 { exit 1 }
                  END { if (n == 0 || want != 0) exit 1; print n }' "$tmp/block.out")
    if [ "$heads" != 1 ]; then
        fail "b: 'stage=0 layers=' printed $heads times, expected once (rank 0 only):"
        sed 's/^/    /' "$tmp/block.out"
    elif [ -z "$layout" ]; then
        fail "b: 'stage=0 layers=N' is not followed by N layer lines:"
        sed 's/^/    /' "$tmp/block.out"
    elif ! grep -q '^stage=1 layers=' "$tmp/block.out" || ! grep -q '^done: loss' "$tmp/block.out"; then
        fail "b: no stage 1 in the layout, or no 'done:' line:"
        sed 's/^/    /' "$tmp/block.out"
    else
        echo "ok: b: pipeline block (type:block): 'stage=0 layers=$layout' and its layers printed once, the run succeeds"
    fi
fi

# ---- c. stages that do not divide the ranks -----------------------------------------------
run stages3 2 train --pipeline-stages 3 --steps 1
refused stages3 "does not divide"

# ---- d. ZeRO-2 and ZeRO-3 with pipeline stages ---------------------------------------------
zero_msg="ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism"
cat >"$tmp/z2.json" <<'EOF'
{"train_micro_batch_size_per_gpu": 16, "zero_optimization": {"stage": 2},
 "pipeline": {"stages": 2}}
EOF
run zero2 2 train --config "$tmp/z2.json" --steps 1
refused zero2 "$zero_msg"
cat >"$tmp/z3.json" <<'EOF'
{"train_micro_batch_size_per_gpu": 16, "zero_optimization": {"stage": 3}}
EOF
run zero3 2 train --config "$tmp/z3.json" --pipeline-stages 2 --steps 1
refused zero3 "$zero_msg"

# ---- e. checkpoints: refused before the first step ----------------------------------------
# Saving or loading a pipeline-parallel run is not built (DeepSpeed writes it per layer):
# refused right after set-up, once (rank 0), not after the steps were trained for nothing.
ckpt_msg="checkpoints of pipeline-parallel runs are not built yet"
for flag in --save --load; do
    name=ckpt${flag#--}
    run "$name" 2 train --pipeline-stages 2 --steps 3 "$flag" "$tmp/ckpt"
    refused "$name" "$ckpt_msg" || continue
    if grep -q '^step ' "$tmp/$name.out"; then
        fail "$name: refused only after training:"
        grep '^step ' "$tmp/$name.out" | sed 's/^/    /'
    elif [ "$(grep -cF -- "$ckpt_msg" "$tmp/$name.err")" != 1 ]; then
        fail "$name: the message is printed $(grep -cF -- "$ckpt_msg" "$tmp/$name.err") times, expected once (rank 0):"
        sed 's/^/    /' "$tmp/$name.err"
    elif [ -e "$tmp/ckpt" ]; then
        fail "$name: $tmp/ckpt was created"
    else
        echo "ok: $name: refused before the first step, one message"
    fi
done

echo "$checks checks, $failures failures"
[ "$failures" = 0 ] || exit 1
exit 0
