#!/bin/sh
# CPU Adam: zerolab's kernel against the machine's in-place memory bandwidth and against
# torch.optim.AdamW, on the same number of parameters (`make bench-adam`; see
# bench/adam_bench.c and bench/adam_torch.py for what is timed).
#   usage: adam.sh ADAM_BENCH [BENCH_SRCDIR] [adam_bench options...]
#   PYTHON (default /usr/bin/python3, Debian's python3-torch; else python3)
#   ZL_BENCH_QUICK=1: 4M parameters, 2 reps (checks the harness)
# Prints both tables, then zerolab's share of the bandwidth and its speed-up over torch.
set -e
bin=$1
src=${2:-.}
shift 2 || shift $#
test "${ZL_BENCH_QUICK:-0}" = 1 && set -- --quick "$@"  # as `ZL_BENCH_QUICK=1 make bench`
py=${PYTHON:-/usr/bin/python3}
test -x "$py" || py=python3
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$bin" "$@" | tee "$tmp"
numel=$(sed -n 's/^CPU Adam, \([0-9]*\) fp32.*/\1/p' "$tmp")
threads=$(awk '/^RESULT bandwidth/ {printf "%s%s", sep, $3; sep=","}' "$tmp")
echo
"$py" "$src/adam_torch.py" --numel "$numel" --threads "$threads" | tee -a "$tmp"
echo
awk '
/^RESULT/ { ms[$2 " " $3] = $4; if (!seen[$3]++) order[++nt] = $3 }
END {
    printf "%-8s %-24s %-24s %-34s\n", "threads", "adamw fp32 / bandwidth", "bf16 fused / bandwidth",
           "speed-up over torch.optim.AdamW"
    for (i = 1; i <= nt; i++) {
        t = order[i]; bw = ms["bandwidth " t]; a = ms["adamw_fp32 " t]; b = ms["adamw_bf16 " t]
        line = sprintf("%-8s %-24s %-24s ", t, sprintf("%.0f%%", 100 * bw / a),
                       sprintf("%.0f%%", 100 * bw / b))
        s = ""
        split("default foreach no_foreach", v, " ")
        for (k = 1; k <= 3; k++) if (("torch_" v[k] " " t) in ms)
            s = s sprintf("%s%s %.1fx", s == "" ? "" : ", ", v[k], ms["torch_" v[k] " " t] / a)
        print line (s == "" ? "(no torch)" : s)
    }
}' "$tmp"
