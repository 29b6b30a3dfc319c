#!/bin/sh
# ZeRO-Infinity's swap files under faults (docs/offload.md), sourced by
# check_nvme_faults.sh (ZL_SWAP=optimizer: offload_optimizer.device "nvme") and
# check_pnvme_faults.sh (ZL_SWAP=param: offload_param.device "nvme"), stage 3:
# `zerolab train --config FILE` on 2 ranks (1 without MPI) ends with a
# message naming the file or folder on every rank and a non-zero exit, never a hang
# (each run is under a 120 s guard) or a crash (exit status 1, not a signal's):
#   - nvme_path on a full filesystem: a 256 KiB tmpfs (needs root and mount permission;
#     skipped with the reason otherwise);
#   - nvme_path not writable: a read-only bind mount as root (root writes through file
#     modes), mode 0500 otherwise;
#   - a swap file truncated behind the engine's back in the middle of the run.
# Needs $ZEROLAB (set by make check) and coreutils' timeout.
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/zl_${ZL_SWAP}_faults.XXXXXX") || exit 99
failures=0 checks=0 mounts="" spawned=""

cleanup() {
    for p in $spawned; do kill -KILL "$p" 2>/dev/null; done
    for m in $mounts; do umount "$m" 2>/dev/null; done
    chmod -R u+w "$tmp" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
OMP_NUM_THREADS=1
export OMP_NUM_THREADS

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

if [ -z "${MPIEXEC+set}" ]; then
    MPIEXEC=$(command -v mpiexec 2>/dev/null || true)
fi
if [ -n "$MPIEXEC" ]; then
    np=2
    launch="$MPIEXEC -n 2"
else
    np=1
    launch=""
    echo "no MPI launcher: one rank"
fi

# What is swapped: the optimizer (several sub-groups, both pipelines) or the parameters.
case ${ZL_SWAP:-} in
optimizer)
    offload='"sub_group_size": 20000, "offload_optimizer": {"device": "nvme", "nvme_path": "NVME",
   "pipeline_read": true, "pipeline_write": true}'
    folder=optimizer file=4.tensor.swp ;;
param)
    offload='"offload_param": {"device": "nvme", "nvme_path": "NVME", "buffer_count": 4,
   "max_in_cpu": 0}'
    folder=float32params file=0_param.tensor.swp ;;
*) echo "nvme_faults.sh: ZL_SWAP must be optimizer or param"; exit 99 ;;
esac

# config FILE NVME_PATH: a small stage-3 recipe with $ZL_SWAP on NVMe under NVME_PATH.
config() {
    cat >"$1" <<EOF
{"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1,
 "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}},
 "zero_optimization": {"stage": 3, $(echo "$offload" | sed "s|NVME|$2|")}}
EOF
}

# expect NAME WHAT...: the run NAME ended with exit status 1 and its stderr has each WHAT
# (one per rank where they name a rank's file).
expect() {
    name=$1
    shift
    checks=$((checks + 1))
    code=$(cat "$tmp/$name.code")
    if [ "$code" != 1 ]; then
        fail "$name: exit status $code, expected 1 (124/137: a hang; over 128: a crash)"
        sed 's/^/    /' "$tmp/$name.err" | tail -n 20
        return
    fi
    for what in "$@"; do
        if ! grep -qF -- "$what" "$tmp/$name.err"; then
            fail "$name: stderr does not name $what"
            sed 's/^/    /' "$tmp/$name.err" | tail -n 20
            return
        fi
    done
    echo "ok: $name: exit 1; $(grep -m1 -F -- "$1" "$tmp/$name.err" | cut -c1-200)"
}

# expect_one NAME FILE...: as expect, but one of the FILEs named is enough, and every rank
# reports an error: which rank reads its truncated file first is a race (the others then
# name that rank), so the test cannot ask for every file.
expect_one() {
    name=$1
    shift
    checks=$((checks + 1))
    code=$(cat "$tmp/$name.code")
    if [ "$code" != 1 ]; then
        fail "$name: exit status $code, expected 1 (124/137: a hang; over 128: a crash)"
        sed 's/^/    /' "$tmp/$name.err" | tail -n 20
        return
    fi
    named=""
    for what in "$@"; do grep -qF -- "$what" "$tmp/$name.err" && named=$what; done
    if [ -z "$named" ]; then
        fail "$name: stderr names none of $*"
        sed 's/^/    /' "$tmp/$name.err" | tail -n 20
        return
    fi
    r=0
    while [ $r -lt $np ]; do
        if [ "$np" -gt 1 ] && ! grep -q "^\[rank $r\] zerolab: error" "$tmp/$name.err"; then
            fail "$name: rank $r reported no error"
            sed 's/^/    /' "$tmp/$name.err" | tail -n 20
            return
        fi
        r=$((r + 1))
    done
    echo "ok: $name: exit 1; $(grep -m1 -F -- "$named" "$tmp/$name.err" | cut -c1-200)"
}

# run NAME ARGS...: zerolab train under the hang guard, status into NAME.code.
run() {
    name=$1
    shift
    timeout -s KILL 120 $launch "$ZEROLAB" train --model lab --seq-len 32 "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err"
    echo $? >"$tmp/$name.code"
}

rank_files() { # the swap folder of each rank under $1, one a line
    r=0
    while [ $r -lt $np ]; do
        echo "$1/zero_stage_3/$folder/rank$r"
        r=$((r + 1))
    done
}

# --- a clean run: exit 0, nothing left, no warning about the shared swap folders (each
# rank leaves them to the last one out) ---------------------------------------------------
mkdir "$tmp/clean"
config "$tmp/clean.json" "$tmp/clean"
run clean --config "$tmp/clean.json" --steps 2
checks=$((checks + 1))
if [ "$(cat "$tmp/clean.code")" != 0 ] || grep -q "swap folder" "$tmp/clean.err" ||
    [ -n "$(ls -A "$tmp/clean" 2>/dev/null)" ]; then
    fail "clean: exit $(cat "$tmp/clean.code"), or a swap-folder warning, or files left"
    sed 's/^/    /' "$tmp/clean.err" | tail -n 20
else
    echo "ok: clean: exit 0, no swap-folder warning, nothing left"
fi

# --- a full filesystem ---------------------------------------------------------------
mkdir "$tmp/full"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=256k zl_nvme_full "$tmp/full" 2>/dev/null; then
    mounts="$tmp/full $mounts"
    config "$tmp/full.json" "$tmp/full"
    run full --config "$tmp/full.json" --steps 2
    set --
    for d in $(rank_files "$tmp/full"); do set -- "$@" "$d/"; done
    expect full "$@"
    checks=$((checks + 1))
    [ -z "$(ls -A "$tmp/full" 2>/dev/null)" ] || fail "full: files left behind: $(ls -R "$tmp/full")"
else
    echo "skip: full filesystem: mounting a small tmpfs needs root with mount permission"
fi

# --- an unwritable directory -----------------------------------------------------------
mkdir "$tmp/rw" "$tmp/ro"
ro_ok=false
if [ "$(id -u)" = 0 ]; then
    if mount --bind "$tmp/rw" "$tmp/ro" 2>/dev/null; then
        mounts="$tmp/ro $mounts"
        mount -o remount,bind,ro "$tmp/ro" 2>/dev/null && ro_ok=true
    fi
    $ro_ok || echo "skip: unwritable directory: a read-only bind mount needs mount permission"
else
    chmod 0500 "$tmp/ro" && ro_ok=true
fi
if $ro_ok; then
    config "$tmp/ro.json" "$tmp/ro"
    run unwritable --config "$tmp/ro.json" --steps 2
    expect unwritable "$tmp/ro"
fi

# --- a swap file truncated mid-run -----------------------------------------------------
mkdir "$tmp/trunc"
config "$tmp/trunc.json" "$tmp/trunc"
(run trunc --config "$tmp/trunc.json" --steps 100000) &
spawned=$!
i=0
while [ $i -lt 300 ] && ! grep -q "step" "$tmp/trunc.out" 2>/dev/null; do
    sleep 0.2
    i=$((i + 1))
done
set --
for d in $(rank_files "$tmp/trunc"); do
    # -c: never create it. The first truncation can end the run on every rank, whose
    # clean-up removes the other ranks' files before this loop reaches them: a plain
    # truncate would then create the file again and leave it behind.
    truncate -c -s 100 "$d/$file" 2>/dev/null || fail "trunc: no swap file $d/$file while training"
    set -- "$@" "$d/$file"
done
# A truncation can land just before the step writes the file back whole (the swap-out
# rewrites every byte of it), which heals it and the run trains on until the hang guard
# kills it (CI saw it once, under load): truncate again, every half second, until the
# run ends on the read that finds one short.
while kill -0 "$spawned" 2>/dev/null; do
    sleep 0.5
    for f in "$@"; do truncate -c -s 100 "$f" 2>/dev/null; done
done
wait "$spawned"
spawned=""
expect_one trunc "$@"
checks=$((checks + 1))
[ -z "$(ls -A "$tmp/trunc" 2>/dev/null)" ] || fail "trunc: files left behind: $(ls -R "$tmp/trunc")"

echo "$checks checks, $failures failures"
[ "$failures" = 0 ] || exit 1
[ "$checks" -gt 0 ] || exit 77
exit 0
