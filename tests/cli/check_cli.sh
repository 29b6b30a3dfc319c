#!/bin/sh
# The zerolab command end to end: the default job trains visibly, and every kind of bad
# input ends with exit status 1 (or 2 for usage), one clear message, and no crash.
# Needs $ZEROLAB (set by make check) and a writable temporary directory.
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_cli.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0 checks=0

# expect STATUS PATTERN -- ARGS...: run zerolab, check its exit status and that stderr
# (or stdout for status 0) contains PATTERN (a fixed string). $with_env, if set, holds
# VAR=VALUE words put in zerolab's environment; $limit_kb, if set, caps its virtual
# memory (ulimit -v, KiB): a run that should be refused before it allocates then fails
# with another message if it allocates after all.
with_env="" limit_kb=""
# The 1 GiB cap those runs get; none under AddressSanitizer, which reserves terabytes of
# virtual shadow memory at start (the plain build's run of this script enforces the cap).
cap_kb=1048576
case "${ZL_CFLAGS:-}" in *sanitize=address*) cap_kb="" ;; esac
# A CUDA build maps cuBLAS and cuBLASLt (about 600 MiB of address space) before main:
# under 1 GiB, OpenBLAS's start-up cannot get its buffers (and spins). 2 GiB still refuses
# the 13.5 GiB run.
if command -v ldd >/dev/null && ldd "$ZEROLAB" 2>/dev/null | grep -q libcublas; then
    [ -n "$cap_kb" ] && cap_kb=2097152
fi
expect() {
    want_status=$1 pattern=$2
    shift 3
    checks=$((checks + 1))
    # shellcheck disable=SC2086
    (if [ -n "$limit_kb" ]; then ulimit -v "$limit_kb" || exit 99; fi
     exec env $with_env "$ZEROLAB" "$@") >"$tmp/out" 2>"$tmp/err"
    status=$?
    if [ "$status" -ne "$want_status" ]; then
        echo "FAIL: zerolab $*: exit status $status, expected $want_status"; cat "$tmp/err"
        failures=$((failures + 1)); return
    fi
    if ! grep -qF -- "$pattern" "$tmp/out" "$tmp/err"; then
        echo "FAIL: zerolab $*: output lacks '$pattern'"; cat "$tmp/out" "$tmp/err"
        failures=$((failures + 1)); return
    fi
    echo "ok: zerolab $* -> $status, '$pattern'"
}

# --- the default job trains visibly (fewer steps than the default run, same config) ----
checks=$((checks + 1))
if "$ZEROLAB" train --steps 60 >"$tmp/train" 2>&1; then
    first=$(sed -n 's/^done: loss \([0-9.]*\) -> \([0-9.]*\).*/\1/p' "$tmp/train")
    last=$(sed -n 's/^done: loss \([0-9.]*\) -> \([0-9.]*\).*/\2/p' "$tmp/train")
    if [ -n "$first" ] && awk "BEGIN { exit !($first > 5.0 && $last < $first - 1.5) }"; then
        echo "ok: training loss $first -> $last"
    else
        echo "FAIL: loss did not fall enough: '$first' -> '$last'"; cat "$tmp/train"
        failures=$((failures + 1))
    fi
    grep -q '^step    25/60 | loss' "$tmp/train" || { echo "FAIL: no progress line at steps_per_print"; failures=$((failures + 1)); }
    # the banner says which BLAS kernel runs, and why (backends/cpu/cpu_blas.h)
    grep -q '^  BLAS .*, kernel [A-Za-z0-9]* (' "$tmp/train" || { echo "FAIL: no BLAS kernel in the banner"; failures=$((failures + 1)); }
else
    echo "FAIL: zerolab train --steps 60 failed"; cat "$tmp/train"; failures=$((failures + 1))
fi

# --- files ---------------------------------------------------------------------------
expect 1 "cannot open DeepSpeed config '$tmp/none.json'" -- train --config "$tmp/none.json"
# a user's OPENBLAS_CORETYPE is the kernel that runs, and the banner says so
with_env="OPENBLAS_CORETYPE=Haswell"
expect 0 "kernel Haswell (OPENBLAS_CORETYPE asks for it)" -- train --steps 1
expect 0 "cpu backend here: OpenBLAS" -- config
with_env=""
# more threads than cores runs when asked, with a warning that says what fits
expect 0 "hint: --threads" -- train --steps 1 --threads $(($(nproc) + 1))
printf '{\n  "train_batch_size": 8,\n  "optimizer": {"type": "AdamW",, }\n}\n' >"$tmp/syntax.json"
expect 1 "syntax.json:3:" -- train --config "$tmp/syntax.json"
expect 1 "$tmp/missing.txt" -- train --data "$tmp/missing.txt"
printf '' >"$tmp/empty.txt"
expect 1 "empty.txt" -- train --data "$tmp/empty.txt"
# a FIFO blocked open() for ever: refused at once, by what it is (timeout: the hang guard)
checks=$((checks + 1))
if mkfifo "$tmp/fifo"; then
    timeout 600 "$ZEROLAB" train --data "$tmp/fifo" --steps 1 >"$tmp/out" 2>&1
    status=$?
    if [ $status -eq 1 ] && grep -qF "fifo' is a FIFO (named pipe), not a regular file" "$tmp/out"; then
        echo "ok: zerolab train --data FIFO -> 1"
    else
        echo "FAIL: zerolab train --data FIFO: status $status"; cat "$tmp/out"; failures=$((failures + 1))
    fi
fi

# --- batch-size triad: DeepSpeed's assertion with the four numbers ---------------------
printf '{"train_batch_size": 32, "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 3}\n' >"$tmp/batch.json"
expect 1 "32 != 4 * 3 * 1" -- train --config "$tmp/batch.json"
printf '{"gradient_accumulation_steps": 3}\n' >"$tmp/nobatch.json"
expect 1 "Either train_batch_size or train_micro_batch_size_per_gpu needs to be provided" -- config "$tmp/nobatch.json"

# --- keys: typo with suggestion and line; unsupported feature by name ------------------
printf '{\n  "train_micro_batch_size_per_gpu": 4,\n  "gradient_acumulation_steps": 2\n}\n' >"$tmp/typo.json"
expect 1 "typo.json:3:" -- config "$tmp/typo.json"
expect 1 "gradient_accumulation_steps" -- config "$tmp/typo.json"
printf '{"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 2, "overlap_com": true}}\n' >"$tmp/zero.json"
expect 1 "overlap_comm" -- config "$tmp/zero.json"
printf '{"train_micro_batch_size_per_gpu": 4, "sparse_attention": {"mode": "fixed"}}\n' >"$tmp/sparse.json"
expect 1 "sparse_attention" -- train --config "$tmp/sparse.json"

# --- mixed precision: fp16 prints its loss scale; unsupported combinations refused -----
printf '{"train_micro_batch_size_per_gpu": 4, "steps_per_print": 1, "fp16": {"enabled": true}}\n' >"$tmp/fp16.json"
expect 0 "loss scale 65536" -- train --config "$tmp/fp16.json" --steps 2
printf '{"train_micro_batch_size_per_gpu": 4, "steps_per_print": 1, "bf16": {"enabled": true}}\n' >"$tmp/bf16.json"
expect 0 "done: loss" -- train --config "$tmp/bf16.json" --steps 2
printf '{"train_micro_batch_size_per_gpu": 4, "fp16": {"enabled": true}, "communication_data_type": "bf16"}\n' >"$tmp/comm.json"
expect 1 'communication_data_type "bf16" with fp16 training is not supported' -- train --config "$tmp/comm.json"

# --- the simulator: plan, estimate, train --device ---------------------------------------
expect 0 "fits" -- plan --model gpt2-124m --cluster 2x8xa100-80gb
expect 0 '"fits": true' -- plan --model gpt2-124m --cluster 8xa100-80gb --json
expect 0 "setups fit in 32.00 GiB" -- plan --model gpt2-124m --cluster 4xv100-32gb --search
expect 0 "DOES NOT FIT" -- plan --model gpt2-1.5b --cluster t4
expect 0 "hint:" -- plan --model gpt2-1.5b --cluster t4
expect 1 "unknown device 'a100-90gb'" -- plan --model gpt2-124m --cluster a100-90gb
expect 2 "--model and --cluster are required" -- plan --model gpt2-124m
printf '{"model_type": "llama", "vocab_size": 32000, "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 11008, "max_position_embeddings": 4096}\n' >"$tmp/llama.json"
expect 1 "model_type 'llama' is not supported" -- plan --model "$tmp/llama.json" --cluster 8xa100-80gb
expect 0 "  71.69GB |   0.12GB | offload_param=cpu , offload_optimizer=cpu , zero_init=1" -- \
    estimate --params 2851M --largest-layer-params 32M --gpus-per-node 8
expect 2 "give --params or --model" -- estimate
expect 0 "simulated V100-SXM2-16GB" -- train --device v100-16gb --steps 2
expect 2 "unknown --device 'v99'" -- train --device v99
# A run past its simulated card is refused before it allocates (it held 13.5 GiB of host
# memory for 72 s before): under a 1 GiB cap, the ledger's message and nothing else.
printf '{"train_micro_batch_size_per_gpu": 64}\n' >"$tmp/big.json"
limit_kb=$cap_kb
expect 1 "rank 0 (T4-16GB): out of memory allocating 8.00 GiB for 'act.h.1'" -- train --config "$tmp/big.json" --model gpt2-350m --seq-len 1024 --device t4 --steps 1
expect 1 "hint: activations dominate" -- train --config "$tmp/big.json" --model gpt2-350m --seq-len 1024 --device t4 --steps 1
expect 1 "rank 0: out of memory allocating 471.00 KiB for 'adam.m'" -- train --device-memory 1MiB --steps 1
limit_kb=""
# Host memory: a run that needs more than the machine has is refused up front with both
# numbers (ZL_HOST_MEMORY_AVAILABLE stands in for the machine's figure)
with_env="ZL_HOST_MEMORY_AVAILABLE=30000000"
expect 1 "MiB of host memory (1 rank), this machine has 28.61 MiB available (ZL_HOST_MEMORY_AVAILABLE)" -- train --steps 1
with_env="ZL_HOST_MEMORY_AVAILABLE=1000000000"
expect 0 "done: loss" -- train --steps 1
with_env="ZL_HOST_MEMORY_AVAILABLE=lots"
expect 1 "ZL_HOST_MEMORY_AVAILABLE='lots' is not a number of bytes" -- train --steps 1
with_env=""
# ... and with the machine's own figure: gpt2-1.5b needs 36.8 GiB. Only where that
# is more than the machine has (the test must not train it), under a 1 GiB cap.
avail_kb=$(sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo 2>/dev/null)
if [ -n "$avail_kb" ] && [ "$avail_kb" -lt 36000000 ]; then
    limit_kb=$cap_kb
    expect 1 "GiB of host memory (1 rank), this machine has" -- train --model gpt2-1.5b
    limit_kb=""
fi
expect 0 "trace of the last step" -- train --device laptop-cpu --steps 2 --trace "$tmp/trace.json"
grep -q '"traceEvents"' "$tmp/trace.json" || { echo "FAIL: no trace written"; failures=$((failures + 1)); }
printf '{"train_micro_batch_size_per_gpu": 8, "zerolab": {"device": "a100-40gb"}}\n' >"$tmp/dev.json"
expect 0 "simulated A100-SXM4-40GB" -- train --config "$tmp/dev.json" --steps 1
printf '{"train_micro_batch_size_per_gpu": 8, "zerolab": {"device": "a100-41gb"}}\n' >"$tmp/dev2.json"
expect 1 "zerolab.device: unknown device 'a100-41gb'" -- train --config "$tmp/dev2.json" --steps 1
expect 1 "--trace needs a simulated device" -- train --trace "$tmp/t.json" --steps 1
# an unwritable trace is found before training, and no stray file is left behind
expect 1 "cannot write '$tmp/nodir/t.json' (--trace)" -- train --device laptop-cpu --steps 2 --trace "$tmp/nodir/t.json"
if grep -q '^step' "$tmp/out"; then echo "FAIL: trained before finding the trace unwritable"; failures=$((failures + 1)); fi
expect 1 "cannot write '$tmp' (--trace)" -- train --device laptop-cpu --steps 2 --trace "$tmp"
printf '{"train_micro_batch_size_per_gpu": 64}\n' >"$tmp/big2.json"
expect 1 "out of memory" -- train --config "$tmp/big2.json" --model gpt2-350m --seq-len 1024 --device t4 --trace "$tmp/stray.json"
if [ -e "$tmp/stray.json" ]; then echo "FAIL: the trace check left $tmp/stray.json"; failures=$((failures + 1)); fi
expect 0 "simulated: 1 node x 1 V100-SXM2-16GB (nvlink2 within a node)" -- train --cluster v100-16gb --steps 1
expect 1 "--cluster 2x2xv100-16gb has 4 GPUs, but this run has 1 rank" -- train --cluster 2x2xv100-16gb --steps 1
expect 1 "hint: launch 4 ranks" -- train --cluster 2x2xv100-16gb --steps 1
expect 2 "give --device or --cluster, not both" -- train --cluster v100-16gb --device t4
expect 1 "unknown device 'v99'" -- train --cluster 2xv99
printf '{"train_micro_batch_size_per_gpu": 8, "zerolab": {"cluster": "1x1xa100-40gb"}}\n' >"$tmp/clu.json"
expect 0 "simulated A100-SXM4-40GB" -- train --config "$tmp/clu.json" --steps 1
expect 0 "simulated: 1 node x 1 T4-16GB" -- train --config "$tmp/clu.json" --device t4 --steps 1
printf '{"train_micro_batch_size_per_gpu": 8, "zerolab": {"cluster": "2xa100-40gb"}}\n' >"$tmp/clu2.json"
expect 1 "zerolab.cluster 2xa100-40gb has 2 GPUs" -- train --config "$tmp/clu2.json" --steps 1

# --- features configured but not built yet are refused, not ignored -------------------
printf '{"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 4}}\n' >"$tmp/z4.json"
expect 1 "stage" -- train --config "$tmp/z4.json"
printf '{"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 2}, "bf16": {"enabled": true, "bf16_master_weights_and_grads": true}}\n' >"$tmp/off.json"
expect 1 "bf16_master_weights_and_grads (16-bit master weights) is not implemented yet" -- train --config "$tmp/off.json"
printf '{"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 3, "offload_param": {"device": "cpu"}}}\n' >"$tmp/offp.json"
expect 0 "step" -- train --config "$tmp/offp.json" --steps 1

# --- models and flags ------------------------------------------------------------------
expect 1 "unknown model 'gpt5'" -- train --model gpt5
printf '{"vocab_size": 256, "max_seq_len": 32, "num_layers": 1, "num_heads": 3, "channels": 16}\n' >"$tmp/bad_model.json"
expect 1 "divisible by num_heads (3)" -- train --model "$tmp/bad_model.json"
expect 1 "longer than model" -- train --seq-len 100
expect 2 "--steps expects a positive integer" -- train --steps zero
# Integers are never truncated into an int, and only digits are a number.
expect 2 "--seq-len 4294967297 is out of range: at most 2147483647" -- train --seq-len 4294967297
expect 2 "--steps 99999999999999999999 is out of range" -- train --steps 99999999999999999999
expect 2 "--steps expects a positive integer, got '+5'" -- train --steps +5
expect 2 "--seq-len 4294967297 is out of range" -- plan --model lab --cluster v100-16gb --seq-len 4294967297
expect 2 "--world-size 4294967297 is out of range" -- config --world-size 4294967297
# libgomp crashes creating 100000 threads: more than 4 per core is refused, naming the cores
expect 2 "this machine has $(nproc) core" -- train --threads 100000
with_env="OMP_NUM_THREADS=100000"
expect 2 "OMP_NUM_THREADS=100000 is out of range" -- train --steps 1
with_env=""
expect 0 "done: loss" -- train --threads 1 --steps 1
grep -q ' x 1 thread$' "$tmp/out" || { echo "FAIL: the banner does not say '1 thread'"; cat "$tmp/out"; failures=$((failures + 1)); }
grep -q '; 1 step$' "$tmp/out" && grep -q '^done: .* in 1 step,' "$tmp/out" ||
    { echo "FAIL: the banner or the summary does not say '1 step'"; cat "$tmp/out"; failures=$((failures + 1)); }
expect 2 "unknown or incomplete option" -- train --frobnicate
expect 2 "unknown command 'trian'" -- trian
# options without a command are train's, as no command at all is
expect 0 "done: loss" -- --steps 2 --seq-len 16
expect 2 "unknown or incomplete option '--stpes'" -- --stpes 2
expect 1 "unknown backend 'gpu'" -- train --backend gpu --steps 1
expect 2 "--device-memory expects a size" -- train --device-memory lots
expect 1 "rank 0: out of memory allocating" -- train --device-memory 1MiB --steps 1
expect 1 "hint:" -- train --device-memory 1MiB --steps 1
expect 0 "memory ledger of rank 0" -- train --device-memory 64MiB --steps 2 --memory-report

# --- output that cannot be written is a failure, reported once -----------------------
if [ -w /dev/full ]; then
    for args in "version" "config" "config --help" "plan --model gpt2-124m --cluster 8xa100-80gb --json" \
        "estimate --params 2851M" "train --steps 1" "--help"; do
        checks=$((checks + 1))
        # shellcheck disable=SC2086
        "$ZEROLAB" $args >/dev/full 2>"$tmp/err"
        status=$?
        if [ $status -eq 1 ] && [ "$(grep -c 'zerolab: error: cannot write' "$tmp/err")" -eq 1 ] &&
            [ "$(wc -l <"$tmp/err")" -eq 1 ]; then
            echo "ok: zerolab $args >/dev/full -> 1, one message"
        else
            echo "FAIL: zerolab $args >/dev/full: status $status"; cat "$tmp/err"; failures=$((failures + 1))
        fi
    done
fi

# --- help fits an 80-column terminal: no line of any command's help is wider --------
for cmd in "" train plan estimate config; do
    checks=$((checks + 1))
    # shellcheck disable=SC2086
    "$ZEROLAB" $cmd --help >"$tmp/help" 2>&1
    status=$?
    wide=$(awk 'length($0) > 80' "$tmp/help")
    if [ $status -eq 0 ] && [ -s "$tmp/help" ] && [ -z "$wide" ]; then
        echo "ok: zerolab $cmd --help fits 80 columns"
    else
        echo "FAIL: zerolab $cmd --help: status $status, lines over 80 columns:"; echo "$wide"
        failures=$((failures + 1))
    fi
done

# --- config: a valid file prints its settings with their sources -----------------------
expect 0 "train_batch_size" -- config
expect 0 "(inferred" -- config
expect 0 "valid" -- config

# --- two ranks (when the build has MPI): ZeRO-2 trains, every rank reports its ledger,
# and a set-up error is reported once, by rank 0, with every rank exiting 1 ----------
if [ -n "${MPIEXEC:-}" ]; then
    printf '{"train_micro_batch_size_per_gpu": 4, "steps_per_print": 5, "zero_optimization": {"stage": 2}}\n' >"$tmp/dp.json"
    checks=$((checks + 1))
    if OMP_NUM_THREADS=1 timeout 600 $MPIEXEC -n 2 "$ZEROLAB" train --config "$tmp/dp.json" --steps 10 \
            --memory-report >"$tmp/dp.out" 2>&1 &&
        grep -q "data-parallel 2" "$tmp/dp.out" && grep -q "ZeRO stage 2" "$tmp/dp.out" &&
        grep -q "memory ledger of rank 0" "$tmp/dp.out" && grep -q "memory ledger of rank 1" "$tmp/dp.out" &&
        grep -q "peak device memory per rank: .*, " "$tmp/dp.out"; then
        echo "ok: mpiexec -n 2 zerolab train (ZeRO-2)"
    else
        echo "FAIL: mpiexec -n 2 zerolab train (ZeRO-2)"; cat "$tmp/dp.out"; failures=$((failures + 1))
    fi
    printf '{"train_batch_size": 12, "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 1}\n' >"$tmp/dpbad.json"
    checks=$((checks + 1))
    OMP_NUM_THREADS=1 timeout 600 $MPIEXEC -n 2 "$ZEROLAB" train --config "$tmp/dpbad.json" >"$tmp/dpbad.out" 2>&1
    status=$?
    if [ $status -eq 1 ] && [ "$(grep -c '12 != 4 \* 1 \* 2' "$tmp/dpbad.out")" -eq 1 ]; then
        echo "ok: mpiexec -n 2 with a batch triad that does not fit two ranks: one message, exit 1"
    else
        echo "FAIL: triad error at np=2: status $status"; cat "$tmp/dpbad.out"; failures=$((failures + 1))
    fi
    # Two ranks on one node share its memory: the host check counts both
    checks=$((checks + 1))
    OMP_NUM_THREADS=1 ZL_HOST_MEMORY_AVAILABLE=150000000 timeout 600 $MPIEXEC -n 2 "$ZEROLAB" train \
        --steps 1 >"$tmp/dphost.out" 2>&1
    status=$?
    if [ $status -eq 1 ] && [ "$(grep -c 'of host memory (2 ranks x .* MiB), this machine has 143.05 MiB' "$tmp/dphost.out")" -eq 1 ]; then
        echo "ok: mpiexec -n 2 past the host's memory: refused once, for both ranks"
    else
        echo "FAIL: mpiexec -n 2 host memory check: status $status"; cat "$tmp/dphost.out"; failures=$((failures + 1))
    fi
    # The same two ranks as one node of two V100s (NVLink) and as two nodes of one (IB
    # EDR): the same computation, and the gradient allreduce takes longer between nodes.
    comm_ms() { # the simulated communication of the last step
        OMP_NUM_THREADS=1 timeout 600 $MPIEXEC -n 2 "$ZEROLAB" train --cluster "$1" --steps 3 \
            --threads 1 >"$tmp/clu.out" 2>&1 || { cat "$tmp/clu.out"; return; }
        sed -n 's/.*(comm \([0-9.]*\) ms).*/\1/p' "$tmp/clu.out" | tail -n 1
    }
    checks=$((checks + 1))
    one_node=$(comm_ms 1x2xv100-16gb) two_nodes=$(comm_ms 2x1xv100-16gb)
    if [ -n "$one_node" ] && [ -n "$two_nodes" ] &&
        awk -v a="$one_node" -v b="$two_nodes" 'BEGIN { exit !(a > 0 && b > a) }'; then
        echo "ok: mpiexec -n 2 --cluster: comm $one_node ms on NVLink, $two_nodes ms across nodes"
    else
        echo "FAIL: --cluster at np=2: comm '$one_node' ms on one node, '$two_nodes' ms on two"
        failures=$((failures + 1))
    fi
fi

echo "$((checks - failures)) of $checks CLI checks passed"
[ "$failures" -eq 0 ] || exit 1
exit 0
