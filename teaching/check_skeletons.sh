#!/bin/sh
# Every lab's student skeleton builds, and its check fails the way a student should see it
# fail: exit status 1 (not a crash, not a pass), at least one "FAIL" row on the report
# card, and a "TODO:" line naming a function to write. The labs' .lab files list the
# student programs (third field).
set -u
srcdir=${ZL_SRCDIR:-.}
fails=0
n=0
for file in "$srcdir"/teaching/tests/lab*.lab; do
    [ -e "$file" ] || continue
    set -- $(sed -n '1p' "$file")
    np=$1 student=$3
    base=$(basename "$file" .lab)
    n=$((n + 1))
    out=$(LAB_OUT=teaching/tests/$base.skeleton.out $SHELL "$srcdir/teaching/run-lab.sh" \
        "$np" "$student" check 2>&1)
    status=$?
    if [ $status -eq 77 ]; then
        echo "$base: skipped (needs MPI)"
        continue
    fi
    problem=""
    [ $status -eq 1 ] || problem="exit status $status (expected 1: a graded failure)"
    echo "$out" | grep -q ' FAIL ' || problem="$problem; no FAIL row"
    echo "$out" | grep -q 'TODO: ' || problem="$problem; no TODO line"
    if [ -n "$problem" ]; then
        echo "FAIL: $base's skeleton ($student): $problem; its output:"
        echo "$out" | sed 's/^/    /'
        fails=$((fails + 1))
    else
        echo "ok: $base's skeleton fails readably ($(echo "$out" | grep -c ' FAIL ') FAIL rows)"
    fi
done
if [ $n -eq 0 ]; then
    echo "FAIL: no labs found under $srcdir/teaching/tests"
    exit 1
fi
[ $fails -eq 0 ] || exit 1
exit 0
