#!/bin/sh
# Crash safety of checkpoint saves (docs/checkpoints.md, docs/testing.md "Checkpoints"):
# a training run that saves after every step (--save-interval 1, a model with 13 MiB of
# checkpoint, so that most of the run is spent saving) is killed with SIGKILL at a random
# moment, at least 20 times with the kill landing inside a save. After each kill, in the
# killed run's directory K:
#   - `latest` names a tag t whose every file is byte-identical to the reference run's
#     S/t (a straight run with --save-interval 1); no `latest` only before the first save
#     finished, and then `--load K` fails with a message, exit 1;
#   - `--load K` and 2 more steps (saving each) give K/t+1 and K/t+2 byte-identical to
#     S/t+1 and S/t+2, replacing a complete or half-written t+1 the kill left behind;
#   - no staging directory (.TAG.partial) of a tag saved since is left, and a staging
#     directory is never loaded: `--load K --tag .TAG.partial` is refused.
# The 2-rank trials (with MPI) kill one rank of a ZeRO-2 job (each rank writes its own
# optimizer shard), rank 0 (the model states and the commit) and rank 1 in turn; mpiexec
# then ends the other. Each run is under a 120 s guard.
# Needs $ZEROLAB (make check), coreutils' timeout and sleep with fractions, /proc.
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_ckpt_crash.XXXXXX") || exit 99
failures=0 checks=0 spawned=""
cleanup() {
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

if [ -z "${MPIEXEC+set}" ]; then
    MPIEXEC=$(command -v mpiexec 2>/dev/null || true)
fi

STEPS=10 # the killed runs' length; the reference has STEPS + 2
cat >"$tmp/model.json" <<EOF
{"name": "crash", "vocab_size": 256, "max_seq_len": 16, "num_layers": 4, "num_heads": 4, "channels": 128}
EOF
config() { # FILE STAGE
    cat >"$1" <<EOF
{"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1,
 "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}},
 "zero_optimization": {"stage": $2}, "steps_per_print": 1000}
EOF
}
config "$tmp/z1.json" 1
config "$tmp/z2.json" 2

launcher() { # NP
    if [ "$1" = 1 ]; then echo ""; else echo "$MPIEXEC -n $1"; fi
}

# train NP STAGE DIR ARGS...: a run saving into DIR after every step, in the foreground.
train() {
    np=$1 stage=$2 dir=$3
    shift 3
    timeout -s KILL 120 $(launcher "$np") "$ZEROLAB" train --threads 1 --model "$tmp/model.json" \
        --seq-len 16 --config "$tmp/z$stage.json" --save "$dir" --save-interval 1 "$@"
}

# The descendants of process $1, from /proc.
descendants() {
    awk '/^PPid:/ { n = split(FILENAME, part, "/"); print part[3], $2 }' /proc/[0-9]*/status 2>/dev/null |
        awk -v root="$1" '{ parent[$1] = $2 }
            END { found[root] = 1; grew = 1
                  while (grew) { grew = 0
                      for (p in parent) if (!(p in found) && (parent[p] in found)) { found[p] = 1; grew = 1 } }
                  for (p in found) if (p != root) print p }'
}

# The pid of a zerolab process below $1 whose MPI rank is $2 (empty if none yet).
rank_pid() {
    for p in $(descendants "$1"); do
        [ "$(cat /proc/"$p"/comm 2>/dev/null)" = zerolab ] || continue
        if tr '\0' '\n' </proc/"$p"/environ 2>/dev/null | grep -qx "PMI_RANK=$2"; then
            echo "$p"
            return
        fi
    done
}

random() { # 0..32767
    echo $(($(od -An -N2 -tu2 /dev/urandom) % 32768))
}

# same_tag DIR_A DIR_B: the two tag directories hold the same files, byte for byte.
same_tag() {
    [ -d "$1" ] && [ -d "$2" ] || return 1
    [ "$(ls -A "$1")" = "$(ls -A "$2")" ] || return 1
    for f in "$1"/*; do cmp -s "$f" "$2/${f##*/}" || return 1; done
    return 0
}

# ---- the references: straight runs saving every step ------------------------------------
reference() { # NP STAGE
    s="$tmp/S$1"
    start=$(date +%s.%N)
    if ! train "$1" "$2" "$s" --steps $((STEPS + 2)) >"$s.out" 2>&1; then
        fail "reference run on $1 rank(s): exit status $?"
        tail -n 15 "$s.out" | sed 's/^/    /'
        return 1
    fi
    # How long the killed runs live: kills fall uniformly in it (most of it is saving).
    awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%d\n", (b - a) * 1000 }' >"$s.ms"
    echo "reference on $1 rank(s): $((STEPS + 2)) checkpoints of $(du -sh "$s/global_step1" | cut -f1) in $(cat "$s.ms") ms"
}

# ---- one trial: kill a run at a random moment, check what it left, resume ----------------
mid_save=0 trials=0
trial() { # NP STAGE
    np=$1 stage=$2
    trials=$((trials + 1))
    k="$tmp/K$trials" s="$tmp/S$np" id="trial $trials (np $np)" vr=0
    ms=$(($(cat "$s.ms") * STEPS / (STEPS + 2))) # the killed runs are shorter
    delay=$(($(random) % (ms + 1)))
    train "$np" "$stage" "$k" --steps $STEPS >"$k.out" 2>&1 &
    pid=$!
    spawned=$pid
    if [ "$np" = 1 ]; then
        sleep "$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 1000 }')"
        victim=$(descendants "$pid" | while read -r p; do
            [ "$(cat /proc/"$p"/comm 2>/dev/null)" = zerolab ] && echo "$p"; done | head -n 1)
    else
        # The ranks' start-up is not the moment to kill: wait for the victim first, rank 0
        # (which writes the model states and commits) or rank 1 in turn.
        vr=$(((trials / 4) % 2))
        i=0 victim=""
        while [ $i -lt 200 ] && [ -z "$victim" ] && kill -0 "$pid" 2>/dev/null; do
            victim=$(rank_pid "$pid" "$vr")
            [ -n "$victim" ] || sleep 0.02
            i=$((i + 1))
        done
        sleep "$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 1000 }')"
    fi
    [ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null
    wait "$pid"
    code=$?
    spawned=""
    [ "$np" = 1 ] || id="trial $trials (np $np, rank $vr killed)"
    if [ "$code" = 0 ]; then
        echo "trial $trials: the run finished before the kill (${delay} ms): not counted"
        return
    fi
    checks=$((checks + 1))
    f0=$failures
    # Did the kill land inside a save? A staging directory or a temporary file says so.
    hit=no
    if [ -n "$(ls -A "$k" 2>/dev/null | grep -e '^\..*\.partial$' -e '\.tmp\.')" ]; then
        hit=yes
        mid_save=$((mid_save + 1))
    fi
    if [ ! -f "$k/latest" ]; then
        # Killed before the first save was complete: nothing to load, and loading says so.
        timeout -s KILL 120 $(launcher "$np") "$ZEROLAB" train --threads 1 --model "$tmp/model.json" \
            --seq-len 16 --config "$tmp/z$stage.json" --load "$k" --steps 2 >"$k.load" 2>&1
        lc=$?
        if [ "$lc" != 1 ] || ! grep -q "Unable to find latest file" "$k.load"; then
            fail "$id: killed before any checkpoint, --load exited $lc without naming the missing latest"
            tail -n 10 "$k.load" | sed 's/^/    /'
        else
            echo "ok: $id: killed at ${delay} ms (in a save: $hit), before the first checkpoint; --load refuses"
        fi
        rm -rf "$k"
        return
    fi
    t=$(cat "$k/latest")
    n=${t#global_step}
    if ! same_tag "$k/$t" "$s/$t"; then
        fail "$id: killed at ${delay} ms: latest names '$t', which is not the reference's $s/$t byte for byte"
        ls -la "$k" "$k/$t" 2>&1 | sed 's/^/    /'
        return
    fi
    # Killed after a tag was complete and before `latest` moved: the resume replaces it.
    newer=""
    if [ -d "$k/global_step$((n + 1))" ]; then
        newer=", global_step$((n + 1)) complete but not latest"
        [ $hit = yes ] || mid_save=$((mid_save + 1))
        hit=yes
    fi
    # A staging directory is never a tag.
    for p in "$k"/.*.partial; do
        [ -d "$p" ] || continue
        timeout -s KILL 120 "$ZEROLAB" train --threads 1 --model "$tmp/model.json" --seq-len 16 \
            --config "$tmp/z$stage.json" --load "$k" --tag "${p##*/}" --steps $STEPS >"$k.partial" 2>&1
        pc=$?
        if [ "$pc" != 1 ] || ! grep -q "must not start with '.'" "$k.partial"; then
            fail "$id: --tag ${p##*/} (a staging directory) was not refused (exit $pc)"
            tail -n 5 "$k.partial" | sed 's/^/    /'
        fi
        break
    done
    # Resume and save 2 more steps: the reference's next two checkpoints, bit for bit.
    if ! train "$np" "$stage" "$k" --load "$k" --steps $((n + 2)) >"$k.resume" 2>&1; then
        fail "$id: resuming from $t exited non-zero"
        tail -n 15 "$k.resume" | sed 's/^/    /'
        return
    fi
    grep -q "resumed from $k/$t " "$k.resume" || fail "$id: the resume did not load $t"
    for j in $((n + 1)) $((n + 2)); do
        same_tag "$k/global_step$j" "$s/global_step$j" ||
            fail "$id: after resuming from $t, global_step$j is not the reference's byte for byte"
        [ ! -e "$k/.global_step$j.partial" ] || fail "$id: .global_step$j.partial left after saving global_step$j"
    done
    [ "$(cat "$k/latest")" = "global_step$((n + 2))" ] || fail "$id: latest is '$(cat "$k/latest")' after the resume"
    [ "$failures" = "$f0" ] &&
        echo "ok: $id: killed at ${delay} ms (in a save: $hit): latest $t intact$newer; resumed to global_step$((n + 2)) as the reference"
    rm -rf "$k" "$k.out" "$k.resume" "$k.load" "$k.partial"
}

reference 1 1 || exit 1
if [ -n "$MPIEXEC" ]; then reference 2 2 || exit 1; fi
# At least 20 kills inside a save, at most 80 trials (a machine so fast or so slow that
# few kills hit a save fails rather than passes with fewer).
while [ $mid_save -lt 20 ] && [ $trials -lt 80 ]; do
    if [ -n "$MPIEXEC" ] && [ $((trials % 4)) = 3 ]; then trial 2 2; else trial 1 1; fi
done
checks=$((checks + 1))
[ $mid_save -ge 20 ] || fail "only $mid_save of $trials kills landed inside a save (20 needed)"
echo "$trials trials, $mid_save kills inside a save"

echo "$checks checks, $failures failures"
[ "$failures" = 0 ] || exit 1
exit 0
