#!/bin/sh
# Faults end `zerolab train` with a message and a non-zero exit status, never a hang or a
# silent success (docs/faults.md):
#   - a stalled rank (kill -STOP) trips the collective watchdog: the job ends within a
#     bounded time, exit status non-zero, the timeout's message on stderr;
#   - SIGTERM to mpiexec (which forwards it to the ranks), or to a single rank run without
#     mpiexec, stops training at a step boundary: exit 143, "interrupted by SIGTERM at
#     step N of M". SIGINT likewise (130).
# MPI cases are skipped without MPI; the script skips (77) when none could run.
# Needs $ZEROLAB (set by make check), Linux's /proc and coreutils' timeout.
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_faults.XXXXXX") || exit 99
failures=0 checks=0
stopped="" spawned=""

# Never leave a stopped or running process behind, whatever happens to this script.
cleanup() {
    for p in $stopped; do kill -CONT "$p" 2>/dev/null; done
    for p in $spawned; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

OMP_NUM_THREADS=1
export OMP_NUM_THREADS
unset ZL_COLLECTIVE_TIMEOUT

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# The descendants of process $1, from /proc (no procps needed).
descendants() {
    awk '/^PPid:/ { n = split(FILENAME, part, "/"); print part[3], $2 }' /proc/[0-9]*/status 2>/dev/null |
        awk -v root="$1" '{ parent[$1] = $2 }
            END { found[root] = 1; grew = 1
                  while (grew) { grew = 0
                      for (p in parent) if (!(p in found) && (parent[p] in found)) { found[p] = 1; grew = 1 } }
                  for (p in found) if (p != root) print p }'
}

# The pid of the zerolab process below $1 whose MPI rank (PMI_RANK, set by the launcher)
# is $2; empty when there is none (yet).
rank_pid() {
    for p in $(descendants "$1"); do
        [ "$(cat /proc/"$p"/comm 2>/dev/null)" = zerolab ] || continue
        if tr '\0' '\n' </proc/"$p"/environ 2>/dev/null | grep -qx "PMI_RANK=$2"; then
            echo "$p"
            return
        fi
    done
}

# The pid of process $1's child called $2 (the command under timeout). A loaded machine
# can hide it from one walk of /proc (a process list read while others fork), so look for
# up to 5 s before giving up (empty).
child_named() {
    tries=0
    while [ $tries -lt 25 ]; do
        for p in $(descendants "$1"); do
            [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$2" ] && { echo "$p"; return; }
        done
        sleep 0.2
        tries=$((tries + 1))
    done
}

# Wait up to $3 seconds for file $1 to contain the fixed string $2.
wait_for_line() {
    i=0
    while [ $i -lt $(($3 * 5)) ]; do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}

# start NAME CMD...: run CMD under a 120 s hang guard (timeout -s KILL), output in
# $tmp/NAME.out and .err; sets $job (the guard's pid) and waits for the first progress line.
start() {
    name=$1
    shift
    timeout -s KILL 120 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    job=$!
    spawned="$spawned $job"
    if ! wait_for_line "$tmp/$name.out" "step     1/" 60; then
        fail "$name: no progress line within 60 s"
        cat "$tmp/$name.out" "$tmp/$name.err"
        return 1
    fi
    spawned="$spawned $(descendants "$job")"
}

# finish NAME: wait for the job; $status is its exit status (137: the guard killed it).
finish() {
    wait "$job"
    status=$?
    if [ "$status" -eq 137 ]; then
        fail "$1: still running after 120 s (killed): a hang"
        cat "$tmp/$1.err"
        return 1
    fi
}

# expect_end NAME WANT_STATUS PATTERN...: the status ("nonzero" for any but 0) and fixed
# strings that stderr must contain.
expect_end() {
    name=$1 want=$2
    shift 2
    checks=$((checks + 1))
    finish "$name" || return
    if [ "$want" = nonzero ]; then bad=$([ "$status" -ne 0 ] && echo no || echo yes)
    else bad=$([ "$status" -eq "$want" ] && echo no || echo yes); fi
    if [ $bad = yes ]; then
        fail "$name: exit status $status, expected $want"
        cat "$tmp/$name.err"
        return
    fi
    for pattern in "$@"; do
        if ! grep -qF -- "$pattern" "$tmp/$name.err"; then
            fail "$name: stderr lacks '$pattern'"
            cat "$tmp/$name.out" "$tmp/$name.err"
            return
        fi
    done
    echo "ok: $name -> $status"
}

# --- the flag and the variable are checked: a malformed value names itself -----------
checks=$((checks + 1))
"$ZEROLAB" train --collective-timeout 5min >"$tmp/flag.out" 2>&1
status=$?
if [ $status -eq 2 ] && grep -qF -- "--collective-timeout expects" "$tmp/flag.out"; then
    echo "ok: --collective-timeout 5min -> 2"
else
    fail "--collective-timeout 5min: status $status"; cat "$tmp/flag.out"
fi
checks=$((checks + 1))
ZL_COLLECTIVE_TIMEOUT=soon "$ZEROLAB" train --steps 1 >"$tmp/env.out" 2>&1
status=$?
if [ $status -eq 1 ] && grep -qF -- "ZL_COLLECTIVE_TIMEOUT='soon'" "$tmp/env.out"; then
    echo "ok: ZL_COLLECTIVE_TIMEOUT=soon -> 1"
else
    fail "ZL_COLLECTIVE_TIMEOUT=soon: status $status"; cat "$tmp/env.out"
fi

# --- one rank, no launcher: SIGTERM, then SIGINT, stop training at a step -------------
for sig in TERM INT; do
    code=$((128 + $([ $sig = TERM ] && echo 15 || echo 2)))
    # A shell starts background jobs with SIGINT ignored; --default-signal undoes that,
    # as a terminal's Ctrl-C would find it.
    if start "single-$sig" env --default-signal=INT "$ZEROLAB" train --steps 100000; then
        pid=$(child_named "$job" zerolab)
        if [ -z "$pid" ]; then
            fail "single-$sig: no zerolab process under the job"
            kill -KILL "$job" 2>/dev/null
            wait "$job" 2>/dev/null
            continue
        fi
        kill -"$sig" "$pid"
        expect_end "single-$sig" "$code" "zerolab: interrupted by SIG$sig at step " \
            " of 100000; no checkpoint was written"
    fi
done

# --- two ranks under mpiexec ----------------------------------------------------------
if [ -z "${MPIEXEC+set}" ]; then
    MPIEXEC=$(command -v mpiexec 2>/dev/null || true)
fi
if [ -z "$MPIEXEC" ]; then
    echo "no MPI launcher: the mpiexec cases are skipped"
else
    # SIGTERM and SIGINT to mpiexec: it forwards them, the ranks stop together.
    for sig in TERM INT; do
        code=$((128 + $([ $sig = TERM ] && echo 15 || echo 2)))
        if start "mpi-$sig" $MPIEXEC -n 2 "$ZEROLAB" train --steps 100000; then
            kill -"$sig" "$(child_named "$job" "$(basename "$MPIEXEC")")"
            expect_end "mpi-$sig" "$code" "interrupted by SIG$sig at step " \
                " of 100000; no checkpoint was written"
        fi
    done

    # A stalled rank: rank 1 stopped, rank 0 times out after 5 s, reports and ends the
    # job (the launcher kills the stopped rank).
    if start mpi-stall $MPIEXEC -n 2 "$ZEROLAB" train --steps 100000 --collective-timeout 5; then
        r1=$(rank_pid "$job" 1)
        if [ -z "$r1" ]; then
            fail "mpi-stall: cannot find rank 1's process (PMI_RANK=1 below pid $job)"
        else
            kill -STOP "$r1"
            stopped="$r1"
            expect_end mpi-stall nonzero "[rank 0] zerolab: error: rank 0 of 2: " \
                "on communicator 'world' timed out after" "(step " " of 100000, micro-step 1 of 1)" \
                "collective timeout 5 s"
            kill -CONT "$r1" 2>/dev/null
            stopped=""
        fi
    fi

fi

echo "$checks checks, $failures failed"
[ "$checks" -gt 0 ] || exit 77
[ "$failures" -eq 0 ]
