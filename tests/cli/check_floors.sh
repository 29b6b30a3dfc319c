#!/bin/sh
# The floors of the library (docs/architecture.md): includes point down only. Each
# folder has a floor; a file may include its own folder's headers and those of lower
# floors, never a higher floor or another folder of its own floor. A change that makes
# src/engine include src/run, or the ledger include src/zero, fails here with the file
# and the line. $ZL_SRCDIR is the source tree.
set -u
srcdir=${ZL_SRCDIR:-.}
cd "$srcdir" || exit 99
[ -d src/base ] && [ -d src/engine ] || { echo "no source tree at $srcdir"; exit 99; }

floor() {
    case $1 in
    base) echo 0 ;; backends | io | launch) echo 1 ;; sim) echo 2 ;; core) echo 3 ;;
    comm | config) echo 4 ;; optim | model | data) echo 5 ;;
    zero | ckpt | pipe) echo 6 ;; engine) echo 7 ;; plan) echo 8 ;; run) echo 9 ;; cli) echo 10 ;;
    *) echo "" ;;
    esac
}
# the folder of a path: src/<x>/..., backends/..., sim/...
folder() {
    case $1 in
    src/*) echo "$1" | cut -d/ -f2 ;;
    *) echo "$1" | cut -d/ -f1 ;;
    esac
}

out=$(mktemp) || exit 99
trap 'rm -f "$out"' EXIT
failures=0 files=0 edges=0
for f in $(find src backends sim -name '*.[ch]' -o -name '*.cu' | sort); do
    own=$(folder "$f")
    mine=$(floor "$own")
    [ -n "$mine" ] || continue
    files=$((files + 1))
    # "dir/file.h" includes of zerolab's own headers
    grep -n '^#include "[a-z_]*/' "$f" | while IFS= read -r line; do
        inc=$(echo "$line" | sed 's/.*#include "\([a-z_]*\)\/.*/\1/')
        theirs=$(floor "$inc")
        [ -n "$theirs" ] || continue
        [ "$inc" = "$own" ] && continue
        if [ "$theirs" -ge "$mine" ]; then
            echo "FAIL: $f:${line%%:*} includes $inc/ (floor $theirs) from $own/ (floor $mine): includes point down"
        fi
    done >>"$out"
    edges=$((edges + $(grep -c '^#include "[a-z_]*/' "$f")))
done
if [ -s "$out" ]; then
    cat "$out"
    failures=$(wc -l <"$out")
fi
echo "$files files, $edges includes of zerolab's own headers checked; $failures point up"
[ "$files" -gt 100 ] && [ "$edges" -gt 200 ] || { echo "FAIL: too little was checked"; exit 1; }
[ "$failures" -eq 0 ]
