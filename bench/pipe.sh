#!/bin/sh
# bench/pipe.sh: what pipeline and tensor parallelism deliver on this machine, for issue
# 15's closing check. Two configs, trained through the zerolab command itself:
#   lab:   the built-in config (`zerolab train` without --config: the lab model, 0.12M
#          parameters, C=64; micro-batch 16, sequence 64), M = 4 and 8;
#   small: --model small (5.29M parameters, C=256, bench/dp.sh's "small"; micro-batch 8,
#          sequence 128), M = 4 (ZL_BENCH_SMALL_MS="4 8" for both: twice the time);
# each with the same global batch (micro-batch x --grad-accum M, data-parallel 1) three
# ways:
#   A: one rank, 2 OpenMP threads (the yardstick for two cores)
#   B: mpiexec -n 2, --pipeline-stages 2, one thread per rank (DeepSpeed's 1F1B schedule)
#   C: mpiexec -n 2, --tensor-parallel 2, one thread per rank (Megatron-LM's split)
# The step time is the median of the progress windows after the warm-up (lab: windows
# of 25 steps after step 50 of 300; small: of 5 after step 10 of 30); each run is
# repeated, interleaved A, B, C, A, B, C, ..., and the fastest repeat counts (other work
# on the machine only ever slows a run down). Prints one "bench grid ..." line per run
# kept and two tables:
#   pipeline: tokens/s of A and B, B/A, the bubble bound M / (M + S - 1) with S = 2
#             stages, and (B/A) / bound, which issue 15 wants at 0.8 or more;
#   tensor:   tokens/s of A and C and C/A, which issue 15 wants at 0.7 or more.
# The lines (and "bench pipe-ratio", "bench tp-ratio": the tables' rows) are appended
# to $ZL_BENCH_OUT (bench-results.txt).
#
#   usage: pipe.sh ZEROLAB [pp] [tp]   (what to measure, default both; `make bench` and
#          `make bench-grid`: both, `make bench-pipe`: pp, `make bench-tp`: tp)
#   ZL_BENCH_QUICK=1: fewer steps, one repeat; ZL_BENCH_PIPE_REPEATS=N repeats;
#   ZL_BENCH_GRID_CONFIGS="lab small" (the default), or one of them
set -eu
zerolab=${1:?usage: pipe.sh ZEROLAB [pp] [tp]}
shift
parts=${*:-pp tp}
mpiexec=${MPIEXEC:-mpiexec}
out=${ZL_BENCH_OUT:-bench-results.txt}
ranks=2
repeats=${ZL_BENCH_PIPE_REPEATS:-3}
configs=${ZL_BENCH_GRID_CONFIGS:-lab small}
[ "${ZL_BENCH_QUICK:-0}" = 0 ] || repeats=1
modes=A
for p in $parts; do
    case $p in
    pp) modes="$modes B" ;;
    tp) modes="$modes C" ;;
    *) echo "pipe.sh: unknown part '$p'" >&2
       echo "  hint: pp (pipeline), tp (tensor parallelism), or both" >&2; exit 2 ;;
    esac
done
for c in $configs; do
    case $c in
    lab|small) ;;
    *) echo "pipe.sh: unknown config '$c' in ZL_BENCH_GRID_CONFIGS" >&2
       echo "  hint: lab, small, or both (\"lab small\", the default)" >&2; exit 2 ;;
    esac
done
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

# use_config NAME: the settings of one config: $cfg_desc, $train_args (the flags every
# mode shares, less --grad-accum), $steps, $skip (the warm-up steps), $Ms.
use_config() {
    case $1 in
    lab)
        cfg_desc="built-in config: lab model, micro-batch 16, sequence 64"
        train_args="" Ms="4 8" steps=300 skip=50
        [ "${ZL_BENCH_QUICK:-0}" = 0 ] || { steps=100 skip=25; } ;;
    small)
        # bench/dp.sh's "small" (5.29M parameters, L=4 C=256 NH=4; micro-batch 8, sequence
        # 128). A step at M = 4 takes about 0.5 s at 2 threads, so fewer steps, printed
        # every 5; the first 10 hold each GEMM shape's one-time path measurement.
        cat >"$tmp/small.json" <<JSON
{"train_micro_batch_size_per_gpu": 8, "gradient_accumulation_steps": "auto", "steps_per_print": 5,
 "gradient_clipping": 1.0, "optimizer": {"type": "AdamW", "params": {"lr": 3e-4}}}
JSON
        cfg_desc="--model small (5.29M parameters), micro-batch 8, sequence 128"
        train_args="--config $tmp/small.json --model small --seq-len 128" Ms=${ZL_BENCH_SMALL_MS:-4}
        steps=30 skip=10
        [ "${ZL_BENCH_QUICK:-0}" = 0 ] || { steps=20 skip=5; } ;;
    esac
}

# run MODE M REPEAT: one run of config $cfg; sets $ms (median ms/step) and $tok (tokens
# per step).
run() {
    f="$tmp/$cfg.$1.$2.$3"
    # shellcheck disable=SC2086 # $train_args is a list of flags
    case $1 in
    A) OMP_NUM_THREADS=2 "$zerolab" train $train_args --steps "$steps" --grad-accum "$2" \
           >"$f" 2>&1 || { cat "$f"; exit 1; } ;;
    B) OMP_NUM_THREADS=1 "$mpiexec" -n "$ranks" "$zerolab" train $train_args --steps "$steps" \
           --grad-accum "$2" --pipeline-stages "$ranks" >"$f" 2>&1 || { cat "$f"; exit 1; } ;;
    C) OMP_NUM_THREADS=1 "$mpiexec" -n "$ranks" "$zerolab" train $train_args --steps "$steps" \
           --grad-accum "$2" --tensor-parallel "$ranks" >"$f" 2>&1 || { cat "$f"; exit 1; } ;;
    esac
    ms=$(ms_step "$f") tok=$(tokens "$f")
    if [ -z "$ms" ] || [ -z "$tok" ]; then
        echo "pipe.sh: no step timings in the output of run $cfg $1 M=$2:"; cat "$f"; exit 1
    fi
}

echo "bench grid-env date=$(date -u +%Y-%m-%dT%H:%M:%SZ) cores=$(nproc) parts=\"$parts\"" \
     "repeats=$repeats loadavg=\"$(cut -d' ' -f1-3 /proc/loadavg)\"" | tee -a "$out"
for cfg in $configs; do
    use_config "$cfg"
    for M in $Ms; do
        best_A="" best_B="" best_C="" tok_A="" tps_A="" tps_B="" tps_C="" t=""
        r=1
        while [ "$r" -le "$repeats" ]; do
            for mode in $modes; do
                run "$mode" "$M" "$r"
                echo "  $cfg M=$M repeat $r: $mode $ms ms/step" >&2
                eval "best=\${best_$mode}"
                if [ -z "$best" ] || awk -v a="$ms" -v b="$best" 'BEGIN { exit !(a < b) }'; then
                    eval "best_$mode=$ms tok_$mode=$tok"
                fi
            done
            r=$((r + 1))
        done
        for mode in $modes; do
            eval "t=\$tok_$mode ms=\$best_$mode"
            # the same global batch in every mode, or the ratios mean nothing
            [ "$t" = "$tok_A" ] || { echo "pipe.sh: $cfg M=$M: mode $mode runs $t tokens a step, A $tok_A" >&2; exit 1; }
            tps=$(awk -v t="$t" -v ms="$ms" 'BEGIN { printf "%.0f", t * 1000 / ms }')
            eval "tps_$mode=$tps"
            case $mode in
            A) shape="ranks=1 threads=2 pp=1 tp=1" ;;
            B) shape="ranks=$ranks threads=1 pp=$ranks tp=1" ;;
            C) shape="ranks=$ranks threads=1 pp=1 tp=$ranks" ;;
            esac
            echo "bench grid config=$cfg mode=$mode $shape M=$M tokens_step=$t ms_step=$ms tok_s=$tps" | tee -a "$out"
        done
        # the machine-readable lines, then the tables' rows
        case $modes in *B*)
            rows=$(awk -v c="$cfg" -v M="$M" -v S="$ranks" -v a="$tps_A" -v b="$tps_B" \
                       -v ma="$best_A" -v mb="$best_B" 'BEGIN {
                bound = M / (M + S - 1)
                printf "bench pipe-ratio config=%s M=%d S=%d tok_s_A=%s tok_s_B=%s ratio=%.3f bound=%.3f vs_bound=%.3f target=0.8\n",
                    c, M, S, a, b, b / a, bound, b / a / bound
                printf "  %-5s %2d  %9s (%7.1f ms)  %9s (%7.1f ms)  %6.3f  %6.3f  %11.3f%s\n", c, M, a, ma, b, mb,
                    b / a, bound, b / a / bound, (b / a / bound >= 0.8 ? "" : "  below target") }')
            echo "$rows" | sed -n 1p >>"$out"
            echo "$rows" | sed -n 2p >>"$tmp/table.pp" ;;
        esac
        case $modes in *C*)
            rows=$(awk -v c="$cfg" -v M="$M" -v T="$ranks" -v a="$tps_A" -v x="$tps_C" \
                       -v ma="$best_A" -v mc="$best_C" 'BEGIN {
                printf "bench tp-ratio config=%s M=%d T=%d tok_s_A=%s tok_s_C=%s ratio=%.3f target=0.7\n",
                    c, M, T, a, x, x / a
                printf "  %-5s %2d  %9s (%7.1f ms)  %9s (%7.1f ms)  %6.3f%s\n", c, M, a, ma, x, mc,
                    x / a, (x / a >= 0.7 ? "" : "  below target") }')
            echo "$rows" | sed -n 1p >>"$out"
            echo "$rows" | sed -n 2p >>"$tmp/table.tp" ;;
        esac
    done
    echo "  $cfg: $cfg_desc" >>"$tmp/configs"
done
echo "Same global batch each way; fastest of $repeats; noisy where other work shares the cores."
cat "$tmp/configs"
if [ -f "$tmp/table.pp" ]; then
    echo "Pipeline parallelism: A 1 rank x 2 threads; B $ranks ranks x 1 thread, --pipeline-stages $ranks"
    echo "  config M      A tok/s (ms/step)     B tok/s (ms/step)     B/A   bound  (B/A)/bound (target >= 0.8)"
    cat "$tmp/table.pp"
fi
if [ -f "$tmp/table.tp" ]; then
    echo "Tensor parallelism: A 1 rank x 2 threads; C $ranks ranks x 1 thread, --tensor-parallel $ranks"
    echo "  config M      A tok/s (ms/step)     C tok/s (ms/step)     C/A (target >= 0.7)"
    cat "$tmp/table.tp"
fi
