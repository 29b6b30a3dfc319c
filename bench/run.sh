#!/bin/sh
# bench/run.sh: zerolab and PyTorch training steps in one run, then the comparison.
#
#   usage: run.sh ZL_BENCH [BENCH_SRCDIR]      (`make bench` calls it)
#
# For each config, and each thread count within it, zerolab runs and then PyTorch runs
# (interleaved, so both see the same machine state), one process each. Every process
# prints "bench ..." lines; they are collected in $ZL_BENCH_OUT and summarized at the end.
#
# Environment:
#   ZL_BENCH_QUICK=1         few steps, small sgemm: checks the harness in about a minute
#   ZL_BENCH_CONFIGS         default "small gpt2-124m"
#   ZL_BENCH_THREADS         default "1 2"
#   ZL_BENCH_PYTHON          default /usr/bin/python3 (Debian's, which has torch)
#   ZL_BENCH_OUT             default bench-results.txt (in the current directory)
#   ZL_BENCH_NO_TORCH=1      zerolab only
set -eu

zl=${1:?usage: run.sh ZL_BENCH [BENCH_SRCDIR]}
here=${2:-$(dirname "$0")}
py=${ZL_BENCH_PYTHON:-/usr/bin/python3}
tcmalloc=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
configs=${ZL_BENCH_CONFIGS:-"small gpt2-124m"}
threads=${ZL_BENCH_THREADS:-"1 2"}
out=${ZL_BENCH_OUT:-bench-results.txt}

# One thread pool, sized by each program itself (omp_set_num_threads / torch.set_num_threads).
unset OMP_NUM_THREADS OPENBLAS_NUM_THREADS GOTO_NUM_THREADS MKL_NUM_THREADS

torch=yes
if [ "${ZL_BENCH_NO_TORCH:-0}" != 0 ]; then
    torch=no
elif ! "$py" -c 'import torch' 2>/dev/null; then
    echo "run.sh: $py cannot import torch; PyTorch is skipped (apt-get install python3-torch)" >&2
    torch=no
fi
preload=
if [ -r "$tcmalloc" ]; then
    preload=$tcmalloc
else
    echo "run.sh: $tcmalloc not found; PyTorch runs with glibc malloc" \
         "(apt-get install libtcmalloc-minimal4)" >&2
fi

: >"$out"
{
    echo "bench env date=$(date -u +%Y-%m-%dT%H:%M:%SZ) host=$(uname -n) kernel=$(uname -r)"
    echo "bench env cpu=\"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)\"" \
         "cores=$(nproc) quick=${ZL_BENCH_QUICK:-0}" \
         "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}" \
         "loadavg=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
} | tee -a "$out"

if [ $torch = yes ]; then
    # PyTorch's BLAS and its torch.mm peak at every thread count (a check that both sides
    # run the same OpenBLAS kernel at the same speed).
    LD_PRELOAD=$preload "$py" "$here/pytorch_bench.py" --mm-only \
        --threads "$(echo $threads | tr ' ' ',')" >"$out.tmp" || { cat "$out.tmp"; exit 1; }
    grep '^bench ' "$out.tmp" | tee -a "$out" >&2
fi
for c in $configs; do
    for t in $threads; do
        echo "== $c, $t thread(s): zerolab" >&2
        # The sgemm peak is measured in the same process, right before the steps.
        "$zl" --config "$c" --threads "$t" >"$out.tmp" || { cat "$out.tmp"; exit 1; }
        grep '^bench ' "$out.tmp" >>"$out"
        grep -E '^bench (sgemm|zerolab) ' "$out.tmp" >&2
        if [ $torch = yes ]; then
            echo "== $c, $t thread(s): pytorch" >&2
            LD_PRELOAD=$preload "$py" "$here/pytorch_bench.py" --config "$c" --threads "$t" \
                --no-peak >"$out.tmp" || { cat "$out.tmp"; exit 1; }
            grep '^bench ' "$out.tmp" >>"$out"
            grep -E '^bench pytorch ' "$out.tmp" >&2
            # PyTorch as installed runs the kernel its OpenBLAS picked; where that is not
            # the one zerolab runs (a CPU the library does not know: docs/benchmarks.md,
            # "Which OpenBLAS kernel runs"), PyTorch again with zerolab's kernel, so that
            # one ratio compares what users get and the other the engines.
            zlcore=$(sed -n 's/^bench zerolab-env openblas_core=\([^ ]*\).*/\1/p' "$out" | tail -n 1)
            ptcore=$(sed -n 's/^bench pytorch-env .*openblas_core=\([^ ]*\).*/\1/p' "$out" | tail -n 1)
            if [ -n "$zlcore" ] && [ "$zlcore" != "$ptcore" ]; then
                echo "== $c, $t thread(s): pytorch with OPENBLAS_CORETYPE=$zlcore" >&2
                OPENBLAS_CORETYPE=$zlcore LD_PRELOAD=$preload "$py" "$here/pytorch_bench.py" \
                    --config "$c" --threads "$t" --no-peak >"$out.tmp" || { cat "$out.tmp"; exit 1; }
                sed -n 's/^bench pytorch /bench pytorch-samekernel /p' "$out.tmp" >>"$out"
                grep -E '^bench pytorch ' "$out.tmp" >&2
            fi
        fi
    done
done
# Mixed precision (issue 4): zerolab bf16 and fp16 against its fp32 above, PyTorch bf16
# autocast against its fp32; on ZL_BENCH_PRECISION_CONFIGS (default gpt2-124m).
for c in ${ZL_BENCH_PRECISION_CONFIGS:-gpt2-124m}; do
    for t in $threads; do
        for p in bf16 fp16; do
            echo "== $c, $t thread(s): zerolab $p" >&2
            "$zl" --config "$c" --threads "$t" --precision "$p" --no-peak --profile-steps 0 \
                >"$out.tmp" || { cat "$out.tmp"; exit 1; }
            grep '^bench ' "$out.tmp" >>"$out"
            grep -E '^bench zerolab ' "$out.tmp" >&2
        done
        if [ $torch = yes ]; then
            echo "== $c, $t thread(s): pytorch bf16 autocast" >&2
            LD_PRELOAD=$preload "$py" "$here/pytorch_bench.py" --config "$c" --threads "$t" \
                --no-peak --autocast >"$out.tmp" || { cat "$out.tmp"; exit 1; }
            grep '^bench ' "$out.tmp" >>"$out"
            grep -E '^bench pytorch ' "$out.tmp" >&2
        fi
    done
done
rm -f "$out.tmp"

echo >&2
"$py" "$here/summarize.py" "$out"
echo "(all measurements: $out)"
