#!/bin/sh
# Every command of docs/tutorial.md runs, in order, as the tutorial shows it, so it cannot
# go stale. The commands are the lines starting with "$ " in its ```console blocks; a
# trailing backslash continues a command on the next line, and a "<<'EOF'" here-document
# takes the lines up to EOF. The other lines of a block are the output shown: each must be
# in what the command printed (stdout and stderr), with every number read as "some
# number", blanks collapsed, and only the part before a "..." compared ("..." alone, or at
# the start, is an elision). A comment "<!-- tutorial: MODE ... -->" (one or more modes)
# on the line before a block applies to the whole block:
#   not-run  shown, never run (installation; the test runs in the build tree already)
#   mpi      skipped without MPI ($MPIEXEC empty)
#   fails    each command must exit non-zero
# Commands run in a fresh temporary directory, with `zerolab` and `mpiexec` on PATH
# resolving to $ZEROLAB and $MPIEXEC. The count of commands run and skipped is printed;
# fewer than 20 run is a failure (the tutorial lost its commands or the parser broke).
set -u
srcdir=${ZL_SRCDIR:-.}
ZEROLAB=${ZEROLAB:-$PWD/zerolab}
case $ZEROLAB in /*) ;; *) ZEROLAB=$PWD/$ZEROLAB ;; esac
doc=$srcdir/docs/tutorial.md
[ -f "$doc" ] || { echo "FAIL: no $doc"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_tutorial.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/bin" "$tmp/cmd" "$tmp/work"
ln -s "$ZEROLAB" "$tmp/bin/zerolab"
if [ -n "${MPIEXEC:-}" ]; then
    # a wrapper, not a link: hydra finds its proxy next to the name it was started by
    printf '#!/bin/sh\nexec %s "$@"\n' "$MPIEXEC" >"$tmp/bin/mpiexec" && chmod +x "$tmp/bin/mpiexec"
fi

# Split the tutorial: cmd/N.sh (the command), cmd/N.out (the output shown), and one line
# "N LINE MODE" a command in cmd/list.
awk -v dir="$tmp/cmd" '
    function flush() { if (n) close(dir "/" n ".sh"); }
    /^<!-- tutorial: [a-z -]+ -->$/ { pending = $3; for (k = 4; k < NF; k++) pending = pending "," $k; next }
    /^```console$/ { inblock = 1; mode = pending ? pending : "run"; pending = ""; next }
    /^```/ { if (inblock) { inblock = 0; cont = 0; heredoc = "" } pending = ""; next }
    !inblock { if ($0 !~ /^[[:space:]]*$/) pending = ""; next }
    heredoc != "" { print > (dir "/" n ".sh"); if ($0 == heredoc) heredoc = ""; next }
    cont { print > (dir "/" n ".sh"); cont = /\\$/; next }
    /^\$ / {
        n++; line = substr($0, 3)
        print n, NR, mode > (dir "/list")
        print line > (dir "/" n ".sh"); printf "" > (dir "/" n ".out")
        cont = /\\$/
        if (match(line, /<<-?[[:space:]]*'"'"'?[A-Za-z_]+'"'"'?/)) {
            heredoc = substr(line, RSTART, RLENGTH); gsub(/[<'"'"'[:space:]-]/, "", heredoc)
        }
        next
    }
    n { print >> (dir "/" n ".out") }
' "$doc"
[ -s "$tmp/cmd/list" ] || { echo "FAIL: no commands found in $doc"; exit 1; }

# norm: numbers as #, blanks collapsed and trimmed
norm() { sed -e 's/[0-9][0-9]*/#/g' -e 's/[[:space:]][[:space:]]*/ /g' -e 's/^ //' -e 's/ $//'; }

# As a user runs them: zerolab picks its threads (make check's OMP_NUM_THREADS=2 would
# oversubscribe two ranks on two cores).
unset OMP_NUM_THREADS
PATH=$tmp/bin:$PATH
export PATH
failures=0 ran=0 skipped=0
while read -r i lineno mode; do
    cmd=$(sed -n 1p "$tmp/cmd/$i.sh")
    skip= fails=no
    for m in $(echo "$mode" | tr , ' '); do
        case $m in
        not-run) skip="not run (install step)" ;;
        mpi) [ -e "$tmp/bin/mpiexec" ] || skip="skip (no MPI)" ;;
        fails) fails=yes ;;
        run) ;;
        *) skip="FAIL: docs/tutorial.md:$lineno: unknown mode '$m'"; failures=$((failures + 1)) ;;
        esac
    done
    if [ -n "$skip" ]; then
        echo "$skip: $cmd"
        case $skip in FAIL*) ;; *) skipped=$((skipped + 1)) ;; esac
        continue
    fi
    ran=$((ran + 1))
    (cd "$tmp/work" && sh "$tmp/cmd/$i.sh") </dev/null >"$tmp/cmd/$i.got" 2>&1
    status=$?
    if [ "$fails" = yes ] && [ "$status" -eq 0 ]; then
        echo "FAIL: docs/tutorial.md:$lineno: expected to fail, exit 0: $cmd"
        failures=$((failures + 1)); continue
    elif [ "$fails" = no ] && [ "$status" -ne 0 ]; then
        echo "FAIL: docs/tutorial.md:$lineno: exit $status: $cmd"; tail -n 15 "$tmp/cmd/$i.got"
        failures=$((failures + 1)); continue
    fi
    norm <"$tmp/cmd/$i.got" >"$tmp/got"
    missing=0
    while IFS= read -r want; do
        case $want in *...*) want=${want%%...*} ;; esac
        want=$(printf '%s\n' "$want" | norm)
        [ -n "$want" ] || continue
        if ! grep -qF -- "$want" "$tmp/got"; then
            [ "$missing" -eq 0 ] && echo "FAIL: docs/tutorial.md:$lineno: $cmd"
            echo "  shown but not printed: $want"
            missing=$((missing + 1))
        fi
    done <"$tmp/cmd/$i.out"
    if [ "$missing" -gt 0 ]; then
        echo "  it printed:"; sed 's/^/  | /' "$tmp/cmd/$i.got" | head -n 40
        failures=$((failures + 1))
    else
        echo "ok: $cmd"
    fi
done <"$tmp/cmd/list"
echo "$ran commands run, $skipped skipped, $failures failed"
[ "$ran" -ge 20 ] || { echo "FAIL: only $ran commands run (at least 20 expected)"; exit 1; }
[ "$failures" -eq 0 ] || exit 1
