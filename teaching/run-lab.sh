#!/bin/sh
# Run a lab program:
#   teaching/run-lab.sh NP PROGRAM MODE   make labNN (MODE demo) and make labNN-check (check)
#   teaching/run-lab.sh FILE.lab          make check: the lab graded against its reference
#                                         solution (the file's line: NP SOLUTION STUDENT)
#
# With NP > 1 the program runs under $MPIEXEC (configure's; unset: mpiexec from PATH;
# empty: the build has no MPI, and the lab is skipped, exit 77). Ranks never oversubscribe
# the cores: each gets OMP_NUM_THREADS = cores / NP (at least 1), or fewer if asked.
# Under make check the run has a hang guard (ZL_MPI_TIMEOUT, 900 s by default; never a
# speed test) and writes its files to teaching/tests/labNN.out/.
set -u
case $# in
1)
    file=$1
    set -- $(sed -n '1p' "$file")
    np=$1 prog=$2 mode=check
    base=$(basename "$file" .lab)
    LAB_OUT=${LAB_OUT:-teaching/tests/$base.out}
    export LAB_OUT
    ;;
3) np=$1 prog=$2 mode=$3 ;;
*)
    echo "usage: $0 NP PROGRAM demo|check   or   $0 FILE.lab" >&2
    exit 99
    ;;
esac
case $prog in
/*) ;;
*) prog=./$prog ;;
esac
if [ ! -x "$prog" ]; then
    echo "$prog: not built (make labNN builds it)" >&2
    exit 99
fi

# Threads per rank: the cores shared out among the ranks, at least 1; a caller's
# OMP_NUM_THREADS (make check sets 2) may lower that, never raise it, so ranks never
# oversubscribe the cores.
cores=$(nproc 2>/dev/null || echo 1)
threads=$((cores / np))
[ "$threads" -ge 1 ] || threads=1
case ${OMP_NUM_THREADS:-} in
'' | *[!0-9]*) ;;
*) [ "$OMP_NUM_THREADS" -ge 1 ] && [ "$OMP_NUM_THREADS" -lt "$threads" ] && threads=$OMP_NUM_THREADS ;;
esac
OMP_NUM_THREADS=$threads
export OMP_NUM_THREADS
timeout_s=${ZL_MPI_TIMEOUT:-900}

if [ "$np" -eq 1 ]; then
    timeout -k 10 "$timeout_s" "$prog" "$mode"
    status=$?
else
    if [ -z "${MPIEXEC+set}" ]; then
        MPIEXEC=$(command -v mpiexec 2>/dev/null || true)
    fi
    if [ -z "$MPIEXEC" ]; then
        echo "this lab needs $np ranks and the build has no MPI (install MPICH, re-run configure): skipped"
        exit 77
    fi
    echo "$MPIEXEC -n $np $prog $mode"
    timeout -k 10 "$timeout_s" $MPIEXEC -n "$np" "$prog" "$mode"
    status=$?
fi
if [ $status -eq 124 ] || [ $status -eq 137 ]; then
    echo "$prog $mode did not finish within ${timeout_s} s (ZL_MPI_TIMEOUT) and was killed" >&2
    exit 1
fi
exit $status
