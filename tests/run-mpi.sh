#!/bin/sh
# Run an MPI test program under mpiexec:
#   tests/run-mpi.sh TEST         TEST is a data file NAME-npN.mpi: N ranks (make check)
#   tests/run-mpi.sh NP TEST      NP ranks; TEST is a data file or the program itself
#
# A data file's first line names the program, relative to the build directory (e.g.
# tests/mpi/check_comm_mpi). The launcher is $MPIEXEC (make check passes configure's);
# when it is empty, the build has no MPI and the test is skipped (exit 77); unset (a run
# by hand), mpiexec from PATH. Exit 99 (a hard error, not a test failure) when the
# launcher cannot start even a trivial job. A job that outlives ZL_MPI_TIMEOUT seconds
# (default 900: a guard against hangs, generous enough for a loaded machine or a
# sanitizer build, never a speed test) is killed and fails: a hang is a failure. The
# test programs announce each test as it starts ("[  12.34 s] test_name", rank 0), so
# the log of a killed job ends with the test that hung.
#
# Every rank runs one OpenMP thread: N ranks already share the machine's cores.
set -u
case $# in
1)
    test=$1
    np=$(basename "$test" | sed -n 's/.*-np\([0-9][0-9]*\)\.mpi$/\1/p')
    if [ -z "$np" ]; then
        echo "$0: $test: expected a name ending in -npN.mpi (N ranks)" >&2
        exit 99
    fi
    ;;
2) np=$1 test=$2 ;;
*)
    echo "usage: $0 [NP] TEST" >&2
    exit 99
    ;;
esac

if [ -z "${MPIEXEC+set}" ]; then
    MPIEXEC=$(command -v mpiexec 2>/dev/null || true) # run by hand: whatever is in PATH
fi
if [ -z "$MPIEXEC" ]; then
    echo "no MPI launcher (configure found no MPI): skipped"
    exit 77
fi

if [ -x "$test" ] && [ ! -d "$test" ]; then
    prog=$test
else
    prog=$(sed -n '1{s/[[:space:]]*$//;p;}' "$test" 2>/dev/null)
    if [ -z "$prog" ]; then
        echo "$test: cannot read the program name from it" >&2
        exit 99
    fi
    case $prog in
    /*) ;;
    *) prog=./$prog ;;
    esac
fi
if [ ! -x "$prog" ]; then
    echo "$prog: not built (make check builds it)" >&2
    exit 99
fi

OMP_NUM_THREADS=1
export OMP_NUM_THREADS
timeout_s=${ZL_MPI_TIMEOUT:-900}

# A launcher start can fail transiently when the machine is loaded or another mpiexec
# starts at the same moment (make -j): try three times before calling it broken.
started=no
for attempt in 1 2 3; do
    if timeout 30 $MPIEXEC -n 1 true >/dev/null 2>&1; then started=yes; break; fi
    sleep "$attempt"
done
if [ $started = no ]; then
    echo "$MPIEXEC cannot start a trivial job; its output:" >&2
    timeout 30 $MPIEXEC -n 1 true >&2
    exit 99
fi

echo "$MPIEXEC -n $np $prog"
timeout -k 10 "$timeout_s" $MPIEXEC -n "$np" "$prog"
status=$?
if [ $status -eq 124 ] || [ $status -eq 137 ]; then
    echo "$prog at np=$np did not finish within ${timeout_s} s (ZL_MPI_TIMEOUT) and was killed:" \
        "a hang is a failure; the last test announced above ('[ ... s] NAME') was running" >&2
    exit 1
fi
exit $status
