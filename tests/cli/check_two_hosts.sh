#!/bin/sh
# A real two-host run (docs/testing.md, "The two-host test"): two network namespaces
# joined by a veth pair play two hosts, each with its own address; MPICH's hydra runs a
# 2-rank ZeRO-2 training across them over TCP, and its losses must equal those of the
# same run on one host.
#
# 1. Plumbing: namespaces zl2h-PID-a and -b, a veth pair whose ends are both named zl0
#    (one in each namespace, so that one UCX_NET_DEVICES/-iface setting fits both),
#    addresses 10.213.X.1/30 and .2/30 (X chosen so that no route or address of this
#    machine is in 10.213.X.0/24), lo up. No default route, no forwarding, no NAT: the
#    namespaces reach each other and nothing else.
# 2. mpiexec, started inside namespace a, runs `ip addr` with one rank per host: rank 0
#    must see a's address and rank 1 b's (hydra starts b's proxy through
#    -bootstrap-exec, tests/cli/netns_exec.sh, which enters b's namespace).
# 3. zerolab train (lab model, ZeRO stage 2, 5 steps, seed 7, one thread a rank) on the
#    two hosts, through `zerolab launch --hostfile`; then the same run on one host
#    (`mpiexec -n 2` here). Every "step N/5 | loss X" line and the "done:" line must be
#    the same text, and each end of the veth must have sent at least 1 MiB during the
#    run (ZeRO-2's gradient reduce-scatter and parameter allgather of the 0.12M-parameter
#    model are about 2.4 MB a rank over 5 steps; hydra's control traffic is a few KB).
#    UCX must be told to use TCP on zl0 (UCX_TLS=tcp,self, UCX_NET_DEVICES=zl0): both
#    "hosts" are processes of this machine, and UCX would otherwise pass the data through
#    shared memory (measured: 3 KB crossed the veth).
# 4. The namespaces are removed at the end, on failure, and on INT/TERM/HUP (a trap that
#    also stops what still runs in them); the script checks that they are gone.
#
# Skipped (exit 77, with the reason) without MPI ($MPIEXEC empty), with a launcher that
# is not MPICH's hydra, without root (or CAP_SYS_ADMIN and CAP_NET_ADMIN), or where `ip
# netns add` or a veth pair cannot be made (a container without those rights). Every
# mpiexec is under a 300 s hang guard. Needs $ZEROLAB (make check).
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
here=$(cd "$(dirname "$0")" && pwd)
guard=300
# the least each veth end must carry during the training run (bytes): see 3. above
min_bytes=1048576

skip() {
    echo "skipped: $*"
    exit 77
}

# ---- what the test needs -------------------------------------------------------------------
if [ -z "${MPIEXEC+set}" ]; then
    MPIEXEC=$(command -v mpiexec 2>/dev/null || true) # run by hand: whatever is in PATH
fi
[ -n "$MPIEXEC" ] || skip "no MPI launcher (configure found no MPI)"
$MPIEXEC --version 2>/dev/null | grep -q 'HYDRA' ||
    skip "$MPIEXEC is not MPICH's hydra (the test drives hydra's -bootstrap-exec)"
command -v ip >/dev/null 2>&1 || skip "no 'ip' command (iproute2)"
command -v timeout >/dev/null 2>&1 || skip "no 'timeout' command"
if [ "$(id -u)" != 0 ]; then
    # CAP_NET_ADMIN is bit 12, CAP_SYS_ADMIN bit 21 of the effective set
    caps=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status 2>/dev/null)
    if [ -z "$caps" ] || [ $(((0x$caps >> 12) & 1)) = 0 ] || [ $(((0x$caps >> 21) & 1)) = 0 ]; then
        skip "not root and without CAP_NET_ADMIN and CAP_SYS_ADMIN: cannot make network namespaces"
    fi
fi

ns_a=zl2h-$$-a ns_b=zl2h-$$-b
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_2hosts.XXXXXX") || exit 99
job="" cleaned=no failures=0 checks=0

# has_ns NAME: the namespace NAME exists (`ip netns list` prints "NAME" or "NAME (id: N)").
has_ns() {
    ip netns list 2>/dev/null | awk -v n="$1" '$1 == n { found = 1 } END { exit !found }'
}

# drop_ns NAME: stop the processes left in namespace NAME (all started by this test: the
# name is unique to it), then remove it; its veth end, and so the pair, goes with it.
drop_ns() {
    has_ns "$1" || return 0
    pids=$(ip netns pids "$1" 2>/dev/null)
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086 # one word a PID
        kill -TERM $pids 2>/dev/null
        sleep 1
        pids=$(ip netns pids "$1" 2>/dev/null)
        # shellcheck disable=SC2086
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    fi
    ip netns del "$1" 2>/dev/null
}

cleanup() {
    [ $cleaned = yes ] && return
    cleaned=yes
    trap '' INT TERM HUP
    # the running guard (timeout passes the signal on to mpiexec and its process group)
    [ -n "$job" ] && kill -TERM "$job" 2>/dev/null
    drop_ns "$ns_a"
    drop_ns "$ns_b"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "interrupted: removing the namespaces"; exit 1' INT TERM HUP

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# A namespace pair left by a run of this test that was killed with SIGKILL (its PID is
# gone and nothing runs in it) is removed; any other is left alone.
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^zl2h-[0-9]+-[ab]$/ { print $1 }'); do
    pid=$(echo "$ns" | sed 's/^zl2h-\([0-9]*\)-.*/\1/')
    if ! kill -0 "$pid" 2>/dev/null && [ -z "$(ip netns pids "$ns" 2>/dev/null)" ]; then
        echo "removing $ns, left by an earlier run (PID $pid) that was killed"
        ip netns del "$ns" 2>/dev/null
    fi
done

# ---- 1. two hosts --------------------------------------------------------------------------
if ! ip netns add "$ns_a" 2>"$tmp/err"; then
    skip "'ip netns add' does not work here: $(cat "$tmp/err")"
fi
ip netns add "$ns_b" || { echo "ip netns add $ns_b failed after $ns_a worked"; exit 99; }
if ! ip netns exec "$ns_a" true 2>"$tmp/err"; then
    skip "'ip netns exec' does not work here: $(cat "$tmp/err")"
fi
# both ends are made inside their namespaces: nothing of the test appears on this host
if ! ip link add zl0 netns "$ns_a" type veth peer name zl0 netns "$ns_b" 2>"$tmp/err"; then
    skip "cannot make a veth pair here: $(cat "$tmp/err")"
fi

# a /24 of 10.213.0.0/16 that this machine neither routes nor holds an address in
x=$(($$ % 250 + 1)) tries=0
while ip -4 route show 2>/dev/null | grep -q "^10\.213\.$x\." ||
      ip -4 addr show 2>/dev/null | grep -q "inet 10\.213\.$x\."; do
    x=$((x % 250 + 1)) tries=$((tries + 1))
    [ $tries -lt 250 ] || { echo "every 10.213.X.0/24 is in use here"; exit 99; }
done
addr_a=10.213.$x.1 addr_b=10.213.$x.2
# host_up NS ADDR: zl0 in NS gets ADDR/30; lo and zl0 up; nothing routed out (the only
# route is the veth's own /30).
host_up() {
    if ! { ip -n "$1" addr add "$2/30" dev zl0 && ip -n "$1" link set lo up &&
           ip -n "$1" link set zl0 up; }; then
        echo "cannot configure zl0 in $1"; exit 99
    fi
    if [ -n "$(ip -n "$1" route show default)" ]; then
        echo "$1 has a default route"; exit 99
    fi
}
host_up "$ns_a" "$addr_a"
host_up "$ns_b" "$addr_b"
echo "hosts: $addr_a in $ns_a, $addr_b in $ns_b (veth zl0 <-> zl0, 10.213.$x.0/30, no route out)"

# hydra's remote shell: the namespace of each address
printf '%s %s\n%s %s\n' "$addr_a" "$ns_a" "$addr_b" "$ns_b" >"$tmp/hosts.map"
printf '#!/bin/sh\nexec /bin/sh "%s" "%s" "$@"\n' "$here/netns_exec.sh" "$tmp/hosts.map" >"$tmp/bootstrap"
chmod +x "$tmp/bootstrap"
# DeepSpeed's hostfile, for zerolab launch
printf '# the two namespaces of check_two_hosts.sh\n%s slots=1\n%s slots=1\n' "$addr_a" "$addr_b" >"$tmp/hostfile"

# What the namespaces need from mpiexec (the launcher passes these as --launcher_args):
# start remote proxies through the bootstrap script, connect back over zl0, and make
# UCX carry the ranks' data by TCP over zl0 (not shared memory).
largs="-launcher ssh -bootstrap-exec $tmp/bootstrap -iface zl0 -genv UCX_TLS tcp,self -genv UCX_NET_DEVICES zl0"
# The hosts, one rank each, in hydra's syntax: ranks fill the hosts in order, rank 0 on a.
hosts="-hosts $addr_a:1,$addr_b:1"

# in_a OUT CMD...: CMD inside namespace a under the hang guard, output into OUT; sets
# $code. The guard runs in the background so that a signal reaches the trap at once.
in_a() {
    out=$1
    shift
    timeout -k 10 $guard ip netns exec "$ns_a" "$@" >"$out" 2>&1 </dev/null &
    job=$!
    wait $job
    code=$?
    job=""
    if [ $code = 124 ] || [ $code = 137 ]; then
        echo "  (killed after $guard s: a hang)"
    fi
}

# tx_bytes NS: bytes sent so far by zl0 in namespace NS.
tx_bytes() {
    ip netns exec "$1" cat /sys/class/net/zl0/statistics/tx_bytes
}

# ---- 2. the plumbing: one rank in each namespace ----------------------------------------
# Each rank writes its zl0 address into a file of its own (both namespaces see the same
# files): hydra forwards the two ranks' stdout in chunks that may interleave mid-line.
checks=$((checks + 1))
# shellcheck disable=SC2016 # expanded by each rank's sh
rank_addr='ip -4 -br addr show zl0 >"$0.$PMI_RANK"'
# shellcheck disable=SC2086
in_a "$tmp/plumb.out" $MPIEXEC $largs $hosts \
    -n 1 sh -c "$rank_addr" "$tmp/plumb" : -n 1 sh -c "$rank_addr" "$tmp/plumb"
if [ $code = 0 ] && grep -q "^zl0.* $addr_a/30" "$tmp/plumb.0" 2>/dev/null &&
   grep -q "^zl0.* $addr_b/30" "$tmp/plumb.1" 2>/dev/null; then
    echo "ok: plumbing: rank 0 on $addr_a, rank 1 on $addr_b"
else
    fail "plumbing: mpiexec in $ns_a exited $code; expected rank 0 on $addr_a and rank 1 on $addr_b:"
    for f in "$tmp/plumb.out" "$tmp/plumb.0" "$tmp/plumb.1"; do
        echo "  $(basename "$f"):"
        sed 's/^/    /' "$f" 2>/dev/null
    done
    echo "  (the namespace runs stop here: without plumbing the training run cannot work)"
    cleanup
    exit 1
fi

# ---- 3. ZeRO-2 on two hosts against one host ----------------------------------------------
printf '{\n  "train_micro_batch_size_per_gpu": 4,\n  "steps_per_print": 1,\n  "optimizer": {"type": "AdamW", "params": {"lr": 0.001}},\n  "zero_optimization": {"stage": 2}\n}\n' >"$tmp/zero2.json"
train="train --config $tmp/zero2.json --steps 5 --seed 7 --threads 1"

# losses FILE: each "step N/M | loss X" line as "N X", then "done A B".
losses() {
    sed -n -e 's/^step *\([0-9][0-9]*\)\/[0-9]* | loss \([-0-9.naif]*\) |.*/\1 \2/p' \
        -e 's/^done: loss \([-0-9.naif]*\) -> \([-0-9.naif]*\) in .*/done \1 \2/p' "$1"
}

checks=$((checks + 1))
a0=$(tx_bytes "$ns_a") b0=$(tx_bytes "$ns_b")
how="zerolab launch"
echo "two hosts: $ZEROLAB launch --hostfile $tmp/hostfile --launcher_args \"$largs\" $train"
# shellcheck disable=SC2086
in_a "$tmp/two.out" env ZL_MPIEXEC="$MPIEXEC" "$ZEROLAB" launch --hostfile "$tmp/hostfile" \
    --launcher_args "$largs" $train
grep -m1 'mpiexec' "$tmp/two.out" | sed 's/^/  /'
two_code=$code
a1=$(tx_bytes "$ns_a") b1=$(tx_bytes "$ns_b")
echo "one host: $MPIEXEC -n 2 $ZEROLAB $train"
# shellcheck disable=SC2086
timeout -k 10 $guard $MPIEXEC -n 2 "$ZEROLAB" $train >"$tmp/one.out" 2>&1 </dev/null &
job=$!
wait $job
one_code=$?
job=""

losses "$tmp/one.out" >"$tmp/one.loss"
losses "$tmp/two.out" >"$tmp/two.loss"
if [ $two_code != 0 ]; then
    fail "the two-host run ($how) exited $two_code:"
    tail -n 30 "$tmp/two.out" | sed 's/^/    /'
elif [ $one_code != 0 ]; then
    fail "the one-host run exited $one_code:"
    tail -n 30 "$tmp/one.out" | sed 's/^/    /'
elif [ "$(grep -c '^[0-9]' "$tmp/one.loss")" != 5 ] || ! grep -q '^done ' "$tmp/one.loss"; then
    fail "the one-host run did not print 5 step lines and a done line (format changed?):"
    sed 's/^/    /' "$tmp/one.out"
elif ! cmp -s "$tmp/one.loss" "$tmp/two.loss"; then
    fail "the losses differ (step, one host | two hosts):"
    paste "$tmp/one.loss" "$tmp/two.loss" | sed 's/^/    /'
else
    echo "ok: two hosts ($how) print the one-host losses: $(tr '\n' ' ' <"$tmp/two.loss")"
fi
checks=$((checks + 1))
da=$((a1 - a0)) db=$((b1 - b0))
if [ $da -ge $min_bytes ] && [ $db -ge $min_bytes ]; then
    echo "ok: the run crossed the veth: $da bytes sent by $addr_a, $db by $addr_b"
else
    fail "the veth carried $da bytes from $addr_a and $db from $addr_b, under $min_bytes:" \
        "the ranks' data did not go over TCP between the namespaces (UCX_TLS/UCX_NET_DEVICES?)"
fi

# ---- 4. nothing left --------------------------------------------------------------------------
cleanup
checks=$((checks + 1))
if has_ns "$ns_a" || has_ns "$ns_b"; then
    fail "the namespaces are still there after the cleanup: $(ip netns list | tr '\n' ' ')"
else
    echo "ok: $ns_a and $ns_b removed"
fi

if [ $failures -ne 0 ]; then
    echo "$failures of $checks checks failed"
    exit 1
fi
echo "all $checks checks passed"
exit 0
