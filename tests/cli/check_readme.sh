#!/bin/sh
# Every command of the README's "Using it" block runs as written: the files it names ship
# with the source, its flags exist, and it exits 0. Commands are read from README.md itself
# (lines of the ```sh blocks that start with ./zerolab or mpiexec), so the README cannot
# drift from what works. They run in the source directory, with ./zerolab pointing at the
# built binary; mpiexec and `zerolab launch` lines are skipped without MPI. Comments after '#' are dropped.
set -u
srcdir=${ZL_SRCDIR:-.}
ZEROLAB=${ZEROLAB:-$PWD/zerolab}
readme=$srcdir/README.md
[ -f "$readme" ] || { echo "no $readme"; exit 99; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_readme.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM

awk '/^```sh/ { inblock = 1; next } /^```/ { inblock = 0; next }
     inblock && /^(\.\/zerolab|mpiexec)( |$)/ { sub(/[[:space:]]+#.*$/, ""); print }' "$readme" >"$tmp/commands"
n=$(wc -l <"$tmp/commands")
[ "$n" -ge 5 ] || { echo "FAIL: found only $n commands in README.md's sh blocks"; exit 1; }

# As a user runs them: no OMP_NUM_THREADS (make check sets 2), so zerolab picks the
# threads itself (base/threads.h), one per rank under mpiexec on a small machine.
unset OMP_NUM_THREADS
failures=0 checks=0 i=0
while IFS= read -r line; do
    i=$((i + 1))
    case $line in
    mpiexec*)
        if [ -z "${MPIEXEC:-}" ]; then echo "skip (no MPI): $line"; continue; fi
        cmd=$(printf '%s\n' "$line" | sed "s|^mpiexec|$MPIEXEC|; s| \./zerolab| $ZEROLAB|") ;;
    './zerolab launch '*)
        if [ -z "${MPIEXEC:-}" ]; then echo "skip (no MPI): $line"; continue; fi
        cmd="ZL_MPIEXEC='$MPIEXEC' $(printf '%s\n' "$line" | sed "s|^\./zerolab|$ZEROLAB|")" ;;
    *)  cmd=$(printf '%s\n' "$line" | sed "s|^\./zerolab|$ZEROLAB|") ;;
    esac
    checks=$((checks + 1))
    if (cd "$srcdir" && eval "$cmd") </dev/null >"$tmp/out.$i" 2>&1; then
        echo "ok: $line"
    else
        echo "FAIL (exit $?): $line"; tail -n 15 "$tmp/out.$i"
        failures=$((failures + 1))
    fi
done <"$tmp/commands"
echo "$((checks - failures)) of $checks README commands ran"
[ "$failures" -eq 0 ]
