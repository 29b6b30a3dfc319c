#!/bin/sh
# bench/dp.sh: what ZeRO costs in wall-clock time on this machine. Two MPI ranks (one
# thread each) train the "small" config (B=8 per rank, T=128) with ZeRO stages 0-3,
# through the zerolab command itself; the step time is the mean of the steps after the
# first 10 (warm-up). Prints one "bench dp ..." line per stage and the ratios to stage 0.
#
#   usage: dp.sh ZEROLAB            (`make bench` calls it; ZL_BENCH_QUICK=1: fewer steps)
set -eu
zerolab=${1:?usage: dp.sh ZEROLAB}
mpiexec=${MPIEXEC:-mpiexec}
steps=40
[ "${ZL_BENCH_QUICK:-0}" = 0 ] || steps=20
command -v "$mpiexec" >/dev/null 2>&1 || { echo "dp.sh: no $mpiexec; skipped" >&2; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_dp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

for stage in 0 1 2 3; do
    cat >"$tmp/ds.json" <<JSON
{"train_micro_batch_size_per_gpu": 8, "steps_per_print": 10, "gradient_clipping": 1.0,
 "optimizer": {"type": "AdamW", "params": {"lr": 3e-4}},
 "zero_optimization": {"stage": $stage}}
JSON
    OMP_NUM_THREADS=1 "$mpiexec" -n 2 "$zerolab" train --config "$tmp/ds.json" --model small \
        --seq-len 128 --steps "$steps" >"$tmp/out.$stage" 2>&1 || { cat "$tmp/out.$stage"; exit 1; }
    # mean of the progress windows after the first (steps 11..N)
    ms=$(sed -n 's/^step *\([0-9]*\)\/.*| \([0-9.]*\) ms\/step.*/\1 \2/p' "$tmp/out.$stage" |
         awk '$1 > 10 { s += $2; n++ } END { if (n) printf "%.2f", s / n }')
    echo "bench dp config=small ranks=2 threads=1 stage=$stage ms_step=$ms"
    eval "ms_$stage=$ms"
done
echo "ZeRO step time on 2 ranks (small, B=8 per rank, T=128), relative to stage 0:"
awk -v a="$ms_0" -v b="$ms_1" -v c="$ms_2" -v d="$ms_3" 'BEGIN {
    printf "  stage 0 %8.1f ms\n", a
    printf "  stage 1 %8.1f ms  %.3fx  (target <= 1.15x)\n", b, b / a
    printf "  stage 2 %8.1f ms  %.3fx  (target <= 1.15x)\n", c, c / a
    printf "  stage 3 %8.1f ms  %.3fx  (target <= 1.5x)\n", d, d / a }'
