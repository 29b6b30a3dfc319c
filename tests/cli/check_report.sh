#!/bin/sh
# zerolab report (DeepSpeed's ds_report): every section and feature row is there, each
# feature's built column agrees with the build's zl_build.h, the --hide flags hide what
# they say, the git revision is the source's, and the command exits 0. Needs $ZEROLAB (set
# by make check; $ZL_SRCDIR the source); zl_build.h is looked for next to it (the build
# directory).
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
build_h=$(dirname "$ZEROLAB")/zl_build.h
[ -r "$build_h" ] || { echo "no $build_h"; exit 99; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_report.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# run ARGS...: zerolab report ARGS into $tmp/out; it must exit 0
run() {
    "$ZEROLAB" report "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
    [ "$status" -eq 0 ] || { fail "zerolab report $*: exit status $status"; cat "$tmp/err"; }
}
has() { grep -qF -- "$1" "$tmp/out"; }
defined() { grep -q "^#define $1 1" "$build_h"; }

run
for header in "zerolab feature report" "zerolab general environment info:"; do
    has "$header" || fail "no section '$header'"
done
for line in "zerolab version" "zerolab install path" "compiler" "BLAS" "OpenMP" "MPI library" \
    "CUDA (compiled with)" "NCCL (compiled with)" "CPU" "CPU features" "cores" "memory total" \
    "memory available" "shared memory (/dev/shm) size" "GPUs visible"; do
    grep -q "^$line \.\.*" "$tmp/out" || fail "no environment line '$line'"
done
grep -q "^zerolab version \.* $(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"/\1/p' "$build_h")\$" \
    "$tmp/out" || fail "the version is not zl_build.h's PACKAGE_VERSION"

# The git revision the binary was built from: the source's short hash, "-dirty" when
# tracked files differed from it, "unknown" when the source is not a git checkout.
srcdir=${ZL_SRCDIR:-.}
rev=$(sed -n 's/^git revision \.* \(.*\)$/\1/p' "$tmp/out")
if [ -z "$rev" ]; then
    fail "no 'git revision' line"
elif [ -e "$srcdir/.git" ] && head=$(git -C "$srcdir" rev-parse --short HEAD 2>/dev/null); then
    want=$head
    [ -n "$(git -C "$srcdir" status --porcelain --untracked-files=no 2>/dev/null)" ] && want=$head-dirty
    [ "$rev" = "$want" ] || fail "git revision '$rev', the source is at '$want' (rebuild?)"
else
    [ "$rev" = unknown ] || fail "git revision '$rev' outside a git checkout, expected 'unknown'"
fi

# feature NAME WANT: the row exists, its built column reads WANT, usable is OKAY or NO
feature() {
    row=$(grep -F -- "$1 ." "$tmp/out" | head -n 1)
    if [ -z "$row" ]; then fail "no feature row '$1'"; return; fi
    case "$row" in
    *" $2 "*" [OKAY]" | *" $2 "*" [NO]") echo "ok: $row" ;;
    *) fail "'$row': built should read $2 (zl_build.h)" ;;
    esac
}
yes_if() { if "$@"; then echo "[YES]"; else echo "[NO]"; fi; }
feature "cpu backend (OpenBLAS)" "[YES]"
feature "oneDNN bf16 GEMMs" "$(yes_if defined ZL_HAVE_ONEDNN)"
feature "MPI" "$(yes_if defined ZL_HAVE_MPI)"
aio() { defined ZL_HAVE_LIBURING || defined ZL_HAVE_LIBAIO; }
feature "async I/O (NVMe offload)" "$(yes_if aio)"
feature "CUDA backend" "$(yes_if defined ZL_HAVE_CUDA)"
nccl() { defined HAVE_LIBNCCL && defined ZL_HAVE_CUDA; }
feature "NCCL" "$(yes_if nccl)"
feature "AVX-512 vector paths" "$(yes_if test "$(uname -m)" = x86_64)"
feature "bf16 vector paths" "$(yes_if test "$(uname -m)" = x86_64)"
# a [NO] says why, in a warning under its row
grep -q '\[NO\]$' "$tmp/out" && ! has "[WARNING]" && fail "a [NO] without a [WARNING] saying why"
# a build with CUDA counts GPUs, one without says so
if defined ZL_HAVE_CUDA; then
    grep -q '^GPUs visible \.* [0-9][0-9]*$' "$tmp/out" || fail "no GPU count"
else
    has "0 (built without CUDA)" || fail "GPUs visible should say built without CUDA"
fi

# --hide_operator_status: no feature table, the environment stays
run --hide_operator_status
has "zerolab feature report" && fail "--hide_operator_status kept the feature table"
grep -q '^MPI \.\.\.' "$tmp/out" && fail "--hide_operator_status kept a feature row"
has "zerolab general environment info:" || fail "--hide_operator_status lost the environment"

# --hide_errors_and_warnings: no [WARNING] line (a missing device is one here, or a small
# /dev/shm), the table stays
run --hide_errors_and_warnings
has "[WARNING]" && fail "--hide_errors_and_warnings kept a warning"
has "zerolab feature report" || fail "--hide_errors_and_warnings lost the feature table"

# a bad flag is a usage error that names it
"$ZEROLAB" report --bogus >"$tmp/out" 2>&1
status=$?
[ "$status" -eq 2 ] || fail "report --bogus: exit status $status, expected 2"
has "'--bogus'" || fail "report --bogus: the message does not name the flag"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all report checks passed"
