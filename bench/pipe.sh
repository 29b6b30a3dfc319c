#!/bin/sh
# bench/pipe.sh: what pipeline parallelism delivers on this machine against its bubble.
# The built-in config (`zerolab train` without --config: the lab model, micro-batch 16,
# sequence 64), trained through the zerolab command itself, with the same global batch
# (micro-batch x --grad-accum M) two ways:
#   A: one rank, 2 OpenMP threads
#   B: mpiexec -n 2, --pipeline-stages 2, one thread per rank (DeepSpeed's 1F1B schedule)
# for M = 4 and 8. The step time is the median of the progress windows (steps_per_print
# 25) after the first two (warm-up); each run is repeated, interleaved A, B, A, B, ...,
# and the fastest repeat counts (other work on the machine only ever slows a run down).
# Prints one "bench pipe ..." line per run kept and a table: tokens/s of A and B, B/A,
# the bubble bound M / (M + S - 1) with S = 2 stages, and (B/A) / bound, which issue 15
# wants at 0.8 or more. The lines are appended to $ZL_BENCH_OUT (bench-results.txt).
#
#   usage: pipe.sh ZEROLAB   (`make bench` and `make bench-pipe` call it; ZL_BENCH_QUICK=1:
#                             fewer steps, one repeat; ZL_BENCH_PIPE_REPEATS=N repeats)
set -eu
zerolab=${1:?usage: pipe.sh ZEROLAB}
mpiexec=${MPIEXEC:-mpiexec}
out=${ZL_BENCH_OUT:-bench-results.txt}
stages=2
steps=300 skip=50 repeats=${ZL_BENCH_PIPE_REPEATS:-3}
[ "${ZL_BENCH_QUICK:-0}" = 0 ] || { steps=100 skip=25 repeats=1; }
command -v "$mpiexec" >/dev/null 2>&1 || { echo "pipe.sh: no $mpiexec; skipped" >&2; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_pipe.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Each run sizes its threads by OMP_NUM_THREADS alone.
unset OPENBLAS_NUM_THREADS GOTO_NUM_THREADS MKL_NUM_THREADS ZL_COLLECTIVE_TIMEOUT

# ms_step FILE: the median ms/step of the progress windows after step $skip (the median:
# a window in which other work took the cores does not move it).
ms_step() {
    sed -n 's/^step *\([0-9]*\)\/.*| \([0-9.]*\) ms\/step.*/\1 \2/p' "$1" |
        awk -v skip="$skip" '$1 > skip { print $2 }' | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# tokens FILE: tokens per optimizer step, from "batch N = ..., sequence T".
tokens() {
    sed -n 's/^  batch \([0-9]*\) = .*, sequence \([0-9]*\);.*/\1 \2/p' "$1" | awk '{ print $1 * $2 }'
}

# run MODE M REPEAT: one run; sets $ms (mean ms/step) and $tok (tokens per step).
run() {
    f="$tmp/$1.$2.$3"
    case $1 in
    A) OMP_NUM_THREADS=2 "$zerolab" train --steps "$steps" --grad-accum "$2" >"$f" 2>&1 ||
           { cat "$f"; exit 1; } ;;
    B) OMP_NUM_THREADS=1 "$mpiexec" -n "$stages" "$zerolab" train --steps "$steps" --grad-accum "$2" \
           --pipeline-stages "$stages" >"$f" 2>&1 || { cat "$f"; exit 1; } ;;
    esac
    ms=$(ms_step "$f") tok=$(tokens "$f")
    [ -n "$ms" ] && [ -n "$tok" ] || { echo "pipe.sh: no step timings in the output of run $1 M=$2:"; cat "$f"; exit 1; }
}

{
    echo "bench pipe-env date=$(date -u +%Y-%m-%dT%H:%M:%SZ) cores=$(nproc) steps=$steps" \
         "skip=$skip repeats=$repeats loadavg=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
} | tee -a "$out"
for M in 4 8; do
    best_A="" best_B=""
    r=1
    while [ "$r" -le "$repeats" ]; do
        for mode in A B; do
            run "$mode" "$M" "$r"
            echo "  M=$M repeat $r: $mode $ms ms/step" >&2
            eval "best=\${best_$mode}"
            if [ -z "$best" ] || awk -v a="$ms" -v b="$best" 'BEGIN { exit !(a < b) }'; then
                eval "best_$mode=$ms tok_$mode=$tok"
            fi
        done
        r=$((r + 1))
    done
    tps_A=$(awk -v t="$tok_A" -v ms="$best_A" 'BEGIN { printf "%.0f", t * 1000 / ms }')
    tps_B=$(awk -v t="$tok_B" -v ms="$best_B" 'BEGIN { printf "%.0f", t * 1000 / ms }')
    echo "bench pipe config=builtin model=lab mode=A ranks=1 threads=2 stages=1 M=$M tokens_step=$tok_A ms_step=$best_A tok_s=$tps_A" | tee -a "$out"
    echo "bench pipe config=builtin model=lab mode=B ranks=$stages threads=1 stages=$stages M=$M tokens_step=$tok_B ms_step=$best_B tok_s=$tps_B" | tee -a "$out"
    # the machine-readable line, then the table's row
    rows=$(awk -v M="$M" -v S="$stages" -v a="$tps_A" -v b="$tps_B" 'BEGIN {
        bound = M / (M + S - 1)
        printf "bench pipe-ratio config=builtin M=%d S=%d tok_s_A=%s tok_s_B=%s ratio=%.3f bound=%.3f vs_bound=%.3f target=0.8\n",
            M, S, a, b, b / a, bound, b / a / bound
        printf "  %2d  %10s  %10s  %6.3f  %15.3f  %11.3f%s\n", M, a, b, b / a, bound, b / a / bound,
            (b / a / bound >= 0.8 ? "" : "  below target") }')
    echo "$rows" | sed -n 1p >>"$out"
    echo "$rows" | sed -n 2p >>"$tmp/table"
done
echo "Pipeline parallelism (built-in config: lab model, micro-batch 16, sequence 64), same global batch:"
echo "  A: 1 rank x 2 threads; B: $stages ranks x 1 thread, --pipeline-stages $stages; fastest of $repeats"
echo "   M     A tok/s     B tok/s     B/A  bound M/(M+S-1)  (B/A)/bound (target >= 0.8)"
cat "$tmp/table"
