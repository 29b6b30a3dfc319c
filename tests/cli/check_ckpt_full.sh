#!/bin/sh
# Checkpoint saves that cannot be written (docs/checkpoints.md, docs/testing.md
# "Checkpoints") end `zerolab train` with a message naming the file or directory and why,
# exit status 1 (never a hang: each run is under a 120 s guard; never a crash), and leave
# the previous checkpoint as it was:
#   - a full filesystem: a tmpfs sized for one checkpoint and a half (needs root with
#     mount permission; skipped otherwise): the first save fits, the next one fails with
#     "No space left on device" naming the file; `latest` and the previous tag are
#     byte-identical to before, nothing of the failed save is left, and --load resumes
#     from it. On 1 rank, and on 2 (ZeRO-2, each rank writing its shard) with MPI;
#   - the same tmpfs remounted read-only after the first save;
#   - a save directory under a regular file (any user), and a directory of mode 0555
#     (only when not root: root writes through file modes).
# Needs $ZEROLAB (make check) and coreutils' timeout.
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_ckpt_full.XXXXXX") || exit 99
failures=0 checks=0 mounts=""
cleanup() {
    for m in $mounts; do umount "$m" 2>/dev/null; done
    chmod -R u+w "$tmp" 2>/dev/null
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

if [ -z "${MPIEXEC+set}" ]; then
    MPIEXEC=$(command -v mpiexec 2>/dev/null || true)
fi

cat >"$tmp/cfg.json" <<EOF
{"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1,
 "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}},
 "zero_optimization": {"stage": 2}, "steps_per_print": 1000}
EOF

# run NAME NP ARGS...: zerolab train under the hang guard; its exit status into NAME.code.
run() { # (its own variable names: sh has no locals)
    rn=$1 rnp=$2
    shift 2
    if [ "$rnp" = 1 ]; then launch=""; else launch="$MPIEXEC -n $rnp"; fi
    timeout -s KILL 120 $launch "$ZEROLAB" train --threads 1 --model lab --seq-len 16 \
        --config "$tmp/cfg.json" "$@" >"$tmp/$rn.out" 2>"$tmp/$rn.err"
    echo $? >"$tmp/$rn.code"
}

# expect_fail NAME WHAT...: NAME exited 1 and its stderr holds each WHAT.
expect_fail() {
    en=$1
    shift
    code=$(cat "$tmp/$en.code")
    if [ "$code" != 1 ]; then
        fail "$en: exit status $code, expected 1 (124/137: a hang; over 128: a crash)"
        tail -n 15 "$tmp/$en.err" | sed 's/^/    /'
        return 1
    fi
    for what in "$@"; do
        if ! grep -qF -- "$what" "$tmp/$en.err"; then
            fail "$en: stderr does not say '$what'"
            tail -n 15 "$tmp/$en.err" | sed 's/^/    /'
            return 1
        fi
    done
    return 0
}

expect_ok() { # NAME
    code=$(cat "$tmp/$1.code")
    [ "$code" = 0 ] && return 0
    fail "$1: exit status $code, expected 0"
    tail -n 15 "$tmp/$1.err" | sed 's/^/    /'
    return 1
}

# intact NAME DIR COPY: DIR holds only `latest` naming global_step2 and global_step2
# byte-identical to COPY (nothing of the failed save left), and a resume from it works.
intact() {
    name=$1 dir=$2 copy=$3 inp=$4
    left=$(ls -A "$dir" | tr '\n' ' ')
    if [ "$left" != "global_step2 latest " ]; then
        fail "$name: the checkpoint directory holds [$left], expected [global_step2 latest ]"
        return 1
    fi
    [ "$(cat "$dir/latest")" = global_step2 ] || { fail "$name: latest is '$(cat "$dir/latest")'"; return 1; }
    for f in "$copy"/*; do
        cmp -s "$f" "$dir/global_step2/${f##*/}" || { fail "$name: global_step2/${f##*/} changed"; return 1; }
    done
    [ "$(ls "$copy")" = "$(ls "$dir/global_step2")" ] || { fail "$name: global_step2 has other files"; return 1; }
    run "$name-load" "$inp" --steps 3 --load "$dir"
    expect_ok "$name-load" || return 1
    grep -q "resumed from $dir/global_step2 " "$tmp/$name-load.out" || { fail "$name: the resume did not load global_step2"; return 1; }
    return 0
}

# ---- a full filesystem, and one made read-only ------------------------------------------
full_disk() { # NP
    np=$1
    name="full-np$np"
    # One checkpoint's size, saved where there is room.
    run "$name-probe" "$np" --steps 2 --save "$tmp/probe$np"
    expect_ok "$name-probe" || return
    bytes=$(du -sb "$tmp/probe$np" | cut -f1)
    kib=$(((bytes * 3 / 2 + 4095) / 4096 * 4))
    m="$tmp/mnt$np"
    mkdir "$m"
    if ! mount -t tmpfs -o "size=${kib}k" zl_ckpt_full "$m" 2>/dev/null; then
        echo "skip: full filesystem: mounting a tmpfs needs root with mount permission"
        rmdir "$m"
        return
    fi
    mounts="$m $mounts"
    checks=$((checks + 1))
    run "$name-first" "$np" --steps 2 --save "$m/ckpt"
    expect_ok "$name-first" || return
    cp -r "$m/ckpt/global_step2" "$tmp/copy$np"
    run "$name" "$np" --steps 4 --load "$m/ckpt" --save "$m/ckpt"
    expect_fail "$name" "No space left on device" "cannot write" "'$m/ckpt/.global_step4.partial/" || return
    intact "$name" "$m/ckpt" "$tmp/copy$np" "$np" || return
    echo "ok: $name: exit 1; $(grep -m1 -F "No space left" "$tmp/$name.err" | cut -c1-220)"
    echo "ok: $name: latest and global_step2 intact, nothing else left, --load resumes from it"

    # Read-only: the same filesystem, emptied of the failed save, remounted.
    checks=$((checks + 1))
    if ! mount -o remount,ro "$m" 2>/dev/null; then
        echo "skip: read-only filesystem: remount refused"
        return
    fi
    run "ro-np$np" "$np" --steps 4 --load "$m/ckpt" --save "$m/ckpt"
    expect_fail "ro-np$np" "Read-only file system" "$m/ckpt/.global_step4.partial" || return
    intact "ro-np$np" "$m/ckpt" "$tmp/copy$np" "$np" || return
    echo "ok: ro-np$np: exit 1; $(grep -m1 -F "Read-only" "$tmp/ro-np$np.err" | cut -c1-200)"
}

if [ "$(id -u)" = 0 ]; then
    full_disk 1
    [ -n "$MPIEXEC" ] && full_disk 2
else
    echo "skip: full filesystem: mounting a small tmpfs needs root"
fi

# ---- a save directory that cannot be created ---------------------------------------------
echo "not a directory" >"$tmp/file"
checks=$((checks + 1))
run under-file 1 --steps 1 --save "$tmp/file/ckpt"
if expect_fail under-file "cannot create checkpoint directory '$tmp/file/ckpt'" "Not a directory"; then
    echo "ok: under-file: exit 1; $(grep -m1 -F "checkpoint directory" "$tmp/under-file.err" | cut -c1-200)"
fi
if [ "$(id -u)" != 0 ]; then
    checks=$((checks + 1))
    mkdir "$tmp/ro555"
    chmod 0555 "$tmp/ro555"
    run mode555 1 --steps 1 --save "$tmp/ro555/ckpt"
    if expect_fail mode555 "'$tmp/ro555/ckpt'" "Permission denied"; then
        echo "ok: mode555: exit 1; $(grep -m1 -F "Permission denied" "$tmp/mode555.err" | cut -c1-200)"
    fi
else
    echo "skip: a directory of mode 0555: root writes through file modes (the read-only mount above stands in)"
fi

echo "$checks checks, $failures failures"
[ "$failures" = 0 ] || exit 1
[ "$checks" -gt 0 ] || exit 77
exit 0
