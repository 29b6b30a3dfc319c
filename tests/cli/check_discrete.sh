#!/bin/sh
# The discrete backend: the engine never touches device memory from the host
# (backends/discrete/discrete.h; docs/testing.md).
#
# The discrete backend runs ref's kernels on an arena that is PROT_NONE outside its own
# ops, its to_host/to_device transfers and the collectives of its communicator windows,
# as a GPU's memory is to the host. So a host read or write of device memory anywhere in
# the engine (a loss read back, tokens written in, a norm, a checkpoint's bytes...) is a
# SIGSEGV, and a run that does one fails here. Its transfers are deferred to
# zl_device_copy_wait as a GPU's copy stream's are (their destinations NaN until then):
# a wait the engine forgets changes the results, and a run that forgets one fails here.
#
# Each case trains the lab model 3 steps with --backend ref and with --backend discrete
# and requires the same results bit for bit (the same kernels run): every step line's
# loss, lr, grad norm and loss scale, the done line, and, where the run can save, the
# checkpoint it saves after its last step, file by file (master weights, moments,
# module). The matrix: fp32, bf16, fp16 (the loss scaler's overflow check), ZeRO 1/2/3,
# gradient accumulation with clipping and overlap_comm, activation checkpointing (on the
# device, and on the host in fp32 and bf16), offload of the optimizer (cpu, also bf16
# with gradient accumulation; nvme) and of the parameters (cpu, nvme), a save and a resume; at
# 2 ranks (skipped without an MPI launcher): ZeRO 1/2/3, offload, a resume, pipeline
# stages (with the tied embedding across them) and tensor parallelism (with sequence
# parallelism). And `zerolab plan` with "backend": "discrete" in the config prints what
# it prints without it (plans run on meta). Needs $ZEROLAB (make check).
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_discrete.XXXXXX") || exit 99
failures=0 checks=0
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
OMP_NUM_THREADS=1
export OMP_NUM_THREADS
unset ZL_COLLECTIVE_TIMEOUT ZL_DISCRETE_MEMORY
if [ -z "${MPIEXEC+set}" ]; then
    MPIEXEC=$(command -v mpiexec 2>/dev/null || true) # run by hand: whatever is in PATH
fi

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# The configs: the lab model, micro-batch 2, 3 steps of sequences of 32 tokens.
base='"train_micro_batch_size_per_gpu": 2, "steps_per_print": 1,
 "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "weight_decay": 0.1}}'
bf16='"bf16": {"enabled": true}'
cfg() { # cfg NAME JSON-MEMBERS...: $tmp/NAME.json
    name=$1
    shift
    printf '{%s' "$base" >"$tmp/$name.json"
    for m in "$@"; do printf ', %s' "$m" >>"$tmp/$name.json"; done
    echo '}' >>"$tmp/$name.json"
}
cfg fp32
cfg bf16 "$bf16"
# 2^17: the first step overflows and is skipped, the others train
cfg fp16 '"fp16": {"enabled": true, "initial_scale_power": 17}'
cfg z1 "$bf16" '"zero_optimization": {"stage": 1}'
cfg z2 '"gradient_accumulation_steps": 2' '"gradient_clipping": 0.05' \
    '"zero_optimization": {"stage": 2, "overlap_comm": true, "reduce_bucket_size": 5000}'
cfg z3 "$bf16" '"zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0}'
cfg offopt '"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}}'
cfg offparam "$bf16" '"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"},
 "offload_param": {"device": "cpu"}}'
cfg offaccum "$bf16" '"gradient_accumulation_steps": 2' \
    '"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}}'
cfg actcpu '"activation_checkpointing": {"cpu_checkpointing": true}'
cfg actcpu16 "$bf16" '"activation_checkpointing": {"cpu_checkpointing": true}'
mkdir -p "$tmp/nvme" "$tmp/pnvme"
cfg nvme '"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "nvme",
 "nvme_path": "'"$tmp/nvme"'"}}'
cfg pnvme '"zero_optimization": {"stage": 3, "offload_param": {"device": "nvme",
 "nvme_path": "'"$tmp/pnvme"'"}}'

# results FILE: the step lines without their timings, and the done line.
results() {
    sed -n -e 's/^\(step .*\) | [0-9.]* ms\/step.*/\1/p' -e 's/^\(done: loss .*\) in .*/\1/p' "$1"
}

# train NAME NP BACKEND ARGS...: zerolab train on NP ranks (120 s guard); $code.
train() {
    name=$1 np=$2 backend=$3
    shift 3
    if [ "$np" = 1 ]; then launch=""; else launch="$MPIEXEC -n $np"; fi
    timeout -s KILL 120 $launch "$ZEROLAB" train --backend "$backend" --seq-len 32 "$@" \
        >"$tmp/$name.$backend.out" 2>"$tmp/$name.$backend.err"
    code=$?
}

# same NAME NP SAVE STEPS CONFIG ARGS...: the run on ref and on discrete; the same results
# and, with SAVE=save, the same checkpoint (saved after the last step).
same() {
    name=$1 np=$2 save=$3 steps=$4 config=$5
    shift 5
    checks=$((checks + 1))
    for b in ref discrete; do
        if [ "$save" = save ]; then
            train "$name" "$np" $b --config "$tmp/$config.json" --steps "$steps" \
                --save "$tmp/ck.$name.$b" "$@"
        else
            train "$name" "$np" $b --config "$tmp/$config.json" --steps "$steps" "$@"
        fi
        if [ "$code" != 0 ]; then
            fail "$name: --backend $b on $np rank(s) exited $code (139: a host touch of device memory)"
            tail -n 12 "$tmp/$name.$b.err" | sed 's/^/    /'
            return 1
        fi
        results "$tmp/$name.$b.out" >"$tmp/$name.$b.res"
    done
    if [ "$(grep -c '^step' "$tmp/$name.ref.res")" = 0 ]; then
        fail "$name: the ref run printed no step line (format changed?)"
        return 1
    fi
    if ! cmp -s "$tmp/$name.ref.res" "$tmp/$name.discrete.res"; then
        fail "$name: discrete's results differ from ref's:"
        diff "$tmp/$name.ref.res" "$tmp/$name.discrete.res" | sed 's/^/    /'
        return 1
    fi
    what="$(grep -c '^step' "$tmp/$name.ref.res") step lines"
    if [ "$save" = save ]; then
        if ! diff -r "$tmp/ck.$name.ref" "$tmp/ck.$name.discrete" >"$tmp/$name.diff" 2>&1; then
            fail "$name: discrete's checkpoint differs from ref's:"
            head -n 5 "$tmp/$name.diff" | sed 's/^/    /'
            return 1
        fi
        what="$what and the checkpoint"
    fi
    echo "ok: $name ($np rank(s)): $what as ref's"
}

# resume NAME NP CONFIG: save after 2 steps, resume to 3 (the --load of same's checkpoint
# would do; this one loads a checkpoint the run itself saved).
resume() {
    rname=$1 rnp=$2 rconfig=$3
    same "$rname.save" "$rnp" save 2 "$rconfig" || return 1
    name=$rname np=$rnp config=$rconfig # (same set them)
    for b in ref discrete; do mv "$tmp/ck.$name.save.$b" "$tmp/ck.$name.$b.in"; done
    checks=$((checks + 1))
    for b in ref discrete; do
        train "$name" "$np" $b --config "$tmp/$config.json" --steps 3 --load "$tmp/ck.$name.$b.in"
        if [ "$code" != 0 ]; then
            fail "$name: the resume on $b exited $code"
            tail -n 12 "$tmp/$name.$b.err" | sed 's/^/    /'
            return 1
        fi
        results "$tmp/$name.$b.out" >"$tmp/$name.$b.res"
    done
    if [ "$(grep -c '^step' "$tmp/$name.ref.res")" = 0 ] ||
       ! cmp -s "$tmp/$name.ref.res" "$tmp/$name.discrete.res"; then
        fail "$name: the resumed runs differ (or printed nothing):"
        diff "$tmp/$name.ref.res" "$tmp/$name.discrete.res" | sed 's/^/    /'
        return 1
    fi
    echo "ok: $name ($np rank(s)): the resumed step as ref's"
}

# ---- one rank ---------------------------------------------------------------------------
same fp32 1 save 3 fp32
same bf16 1 save 3 bf16
same fp16 1 save 3 fp16
if ! grep -q 'Skipping step' "$tmp/fp16.discrete.err" "$tmp/fp16.discrete.out" 2>/dev/null; then
    fail "fp16: no step was skipped: the overflow check was not exercised (scale too low?)"
fi
same z1 1 save 3 z1
same z2-accum-clip 1 save 3 z2
same z3 1 save 3 z3
same actckpt 1 save 3 bf16 --checkpoint-activations
same actckpt-cpu 1 nosave 3 actcpu --checkpoint-activations
same actckpt-cpu-bf16 1 nosave 3 actcpu16 --checkpoint-activations
same offload-optimizer 1 save 3 offopt
same offload-optimizer-bf16-accum 1 nosave 3 offaccum
same offload-param 1 save 3 offparam
same nvme-optimizer 1 nosave 3 nvme
same nvme-param 1 nosave 3 pnvme
resume resume-z3 1 z3

# ---- plan: on meta, whatever the backend ------------------------------------------------
checks=$((checks + 1))
sed 's/^{/{"zerolab": {"backend": "discrete"}, /' "$tmp/z3.json" >"$tmp/plan.json"
"$ZEROLAB" plan --model lab --cluster 2xa100-80gb --config "$tmp/z3.json" >"$tmp/plan0.raw" 2>&1
c0=$?
"$ZEROLAB" plan --model lab --cluster 2xa100-80gb --config "$tmp/plan.json" >"$tmp/plan1.raw" 2>&1
c1=$?
for i in 0 1; do grep -v '^(planned in' "$tmp/plan$i.raw" >"$tmp/plan$i.out"; done # (its time)
if [ "$c0" != 0 ] || [ "$c1" != 0 ]; then
    fail "plan: exited $c0 (ref config) and $c1 (\"backend\": \"discrete\")"
    tail -n 5 "$tmp/plan1.out" | sed 's/^/    /'
elif ! diff "$tmp/plan0.out" "$tmp/plan1.out" >"$tmp/plan.diff"; then
    # the config's name may appear; nothing else may differ
    if grep -v 'plan\.json\|z3\.json' "$tmp/plan.diff" | grep -q '^[<>]'; then
        fail "plan: \"backend\": \"discrete\" changed the plan:"
        head -n 6 "$tmp/plan.diff" | sed 's/^/    /'
    else
        echo "ok: plan: the same with \"backend\": \"discrete\""
    fi
else
    echo "ok: plan: the same with \"backend\": \"discrete\""
fi

# ---- two ranks --------------------------------------------------------------------------
if [ -z "$MPIEXEC" ]; then
    echo "no MPI launcher (configure found no MPI): the 2-rank cases skipped"
else
    same z1-np2 2 save 3 z1
    same z2-np2 2 save 3 z2
    same z3-offload-param-np2 2 save 3 offparam
    same nvme-np2 2 nosave 3 nvme
    resume resume-z3-np2 2 z3
    same pipeline-np2 2 nosave 3 fp32 --pipeline-stages 2
    same tp-np2 2 nosave 3 bf16 --tensor-parallel 2 --sequence-parallel
fi

echo "$checks checks, $failures failed"
[ "$failures" = 0 ]
