#!/bin/sh
# zerolab launch (DeepSpeed's launcher on MPICH, docs/launch.md): the mpiexec command it
# prints (--dry-run) for local resources, hostfiles and filters; bad hostfiles and options
# exit 2 with DeepSpeed's message; no mpiexec exits 1; and, where MPI runs here, a real
# launch: train's losses equal a plain `mpiexec -n 2` run, .deepspeed_env reaches the
# ranks, --bind_cores_to_rank pins each rank to its slice, and the simulator's nodes follow
# the hostfile (two hosts: the data-parallel allreduce crosses ib200; one: nvlink3).
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
case $ZEROLAB in /*) ;; *) ZEROLAB=$(pwd)/$ZEROLAB ;; esac
zl=$(readlink -f "$ZEROLAB")
if [ -z "${MPIEXEC+set}" ]; then MPIEXEC=$(command -v mpiexec 2>/dev/null || true); fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_launch.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# A known environment: no exported prefixes but the test's, no .deepspeed_env but its own.
for v in $(env | sed -n 's/^\(\(NCCL\|UCX\|MV2\)_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
unset ZL_MPIEXEC DS_ENV_FILE ZL_LAUNCH_NODES ZL_BIND_CORES
HOME=$tmp/home
export HOME
mkdir -p "$HOME" "$tmp/work"
cd "$tmp/work" || exit 99
nohf=$tmp/no-hostfile

# launch ARGS...: zerolab launch ARGS; stdout in $tmp/out, stderr in $tmp/err, $status
launch() {
    "$zl" launch "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
}
# expect_out LINE: stdout is exactly LINE
expect_out() {
    [ "$status" -eq 0 ] || { fail "exit $status: $(cat "$tmp/err")"; return; }
    [ "$(cat "$tmp/out")" = "$1" ] || fail "printed
  $(cat "$tmp/out")
want
  $1"
}
# refused CODE TEXT ARGS...: zerolab launch ARGS exits CODE with TEXT on stderr
refused() {
    code=$1 text=$2
    shift 2
    launch "$@"
    [ "$status" -eq "$code" ] || fail "launch $*: exit $status, want $code"
    grep -qF -- "$text" "$tmp/err" || fail "launch $*: no '$text' in: $(cat "$tmp/err")"
}

g='-genv MASTER_PORT 29500'
# No hostfile: DeepSpeed's warning, this machine with --num_gpus ranks, threads = cores / 2.
cores=$(grep '^Cpus_allowed_list' /proc/self/status | sed 's/.*:[[:space:]]*//')
ncores=$(nproc)
t=$((ncores / 2)); [ "$t" -ge 1 ] || t=1
launch -H "$nohf" --num_gpus 2 --dry-run train --steps 3
expect_out "mpiexec -hosts localhost:2 -genv ZL_LAUNCH_NODES localhost:2 -genv MASTER_ADDR 127.0.0.1 $g -n 2 -env ZL_LAUNCH_NODE 0 -env OMP_NUM_THREADS $t $zl train --steps 3"
grep -qF "Unable to find hostfile, will proceed with training with local resources only." \
    "$tmp/err" || fail "no DeepSpeed warning for a missing hostfile: $(cat "$tmp/err")"
# No --num_gpus: one rank per core this process may use, one thread each; `--` and
# --opt=value forms; a program path runs as is; --launcher_args right after mpiexec.
launch --hostfile="$nohf" --dry-run --master_port=1234 --launcher_args "-v -bootstrap-exec /x/y" -- /bin/echo a "b c"
expect_out "mpiexec -v -bootstrap-exec /x/y -hosts localhost:$ncores -genv ZL_LAUNCH_NODES localhost:$ncores -genv MASTER_ADDR 127.0.0.1 -genv MASTER_PORT 1234 -n $ncores -env ZL_LAUNCH_NODE 0 -env OMP_NUM_THREADS 1 /bin/echo a 'b c'"

# A hostfile of two workers, filtered as DeepSpeed documents.
printf '# two workers\nworker-0 slots=4\n\nworker-1 slots=4\n' >"$tmp/hf"
sec() { echo "-n $1 -env ZL_LAUNCH_NODE $2 -env OMP_NUM_THREADS $3 $zl train"; }
th() { t=$((ncores / $1)); [ "$t" -ge 1 ] && echo $t || echo 1; }
launch -H "$tmp/hf" -i 'worker-0@worker-1:0,2' --master_addr 10.0.0.1 --dry-run train
expect_out "mpiexec -hosts worker-0:4,worker-1:2 -genv ZL_LAUNCH_NODES worker-0:4,worker-1:2 -genv MASTER_ADDR 10.0.0.1 $g $(sec 4 0 "$(th 4)") : $(sec 2 1 "$(th 2)")"
launch -H "$tmp/hf" -e worker-1:0 --dry-run train
expect_out "mpiexec -hosts worker-0:4,worker-1:3 -genv ZL_LAUNCH_NODES worker-0:4,worker-1:3 -genv MASTER_ADDR worker-0 $g $(sec 4 0 "$(th 4)") : $(sec 3 1 "$(th 3)")"
launch -H "$tmp/hf" --num_nodes 1 --num_accelerators 1 --dry-run train
expect_out "mpiexec -hosts worker-0:1 -genv ZL_LAUNCH_NODES worker-0:1 -genv MASTER_ADDR worker-0 $g $(sec 1 0 "$ncores")"
# Exported: NCCL_*/UCX_* from the environment, then .deepspeed_env ($HOME, then .).
printf 'A=home\nB=home\n' >"$HOME/.deepspeed_env"
printf '# here\n\nB=cwd value\n' >.deepspeed_env
NCCL_DEBUG=INFO launch -H "$tmp/hf" --num_nodes 1 --num_gpus 1 --dry-run train
expect_out "mpiexec -hosts worker-0:1 -genv ZL_LAUNCH_NODES worker-0:1 -genv MASTER_ADDR worker-0 $g -genv NCCL_DEBUG INFO -genv A home -genv B 'cwd value' $(sec 1 0 "$ncores")"
DS_ENV_FILE=other.env launch -H "$tmp/hf" --num_nodes 1 --num_gpus 1 --dry-run train
expect_out "mpiexec -hosts worker-0:1 -genv ZL_LAUNCH_NODES worker-0:1 -genv MASTER_ADDR worker-0 $g $(sec 1 0 "$ncores")"
rm -f "$HOME/.deepspeed_env"

# Bad input: exit 2 with the message.
printf 'worker-0 slots=2\nworker-0 slots=2\n' >"$tmp/dup"
refused 2 "Hostfile contains multiple entries for worker-0" -H "$tmp/dup" train
printf 'worker-0 slots=0\n' >"$tmp/zero"
refused 2 "host worker-0 has slots=0" -H "$tmp/zero" train
printf 'worker-0 slots=2\nworker-1\n' >"$tmp/bad"
refused 2 "Hostfile contains a bad entry: worker-1" -H "$tmp/bad" train
: >"$tmp/empty"
refused 2 "Hostfile is empty or not formatted correctly" -H "$tmp/empty" train
refused 2 "Hostname 'worker-9' not found in hostfile" -H "$tmp/hf" -i worker-9 train
refused 2 "No slot '7' specified on host 'worker-1'" -H "$tmp/hf" -e worker-1:7 train
refused 2 "include_str and exclude_str are mutually exclusive" -H "$tmp/hf" -i worker-0 -e worker-1 train
refused 2 "Cannot specify num_nodes/gpus with include/exclude" -H "$tmp/hf" -i worker-0 --num_gpus 1 train
refused 2 "Num nodes is >1 but no extra nodes available via hostfile" -H "$nohf" --num_nodes 2 train
refused 2 "zerolab launches with MPICH's mpiexec only" --launcher pdsh train
refused 2 "Unknown launcher" --launcher nosuch train
refused 2 "no command to launch" -H "$tmp/hf"
refused 2 "unknown option '--steps'" --steps 3
refused 2 "not a core list" -H "$nohf" --bind_cores_to_rank --bind_core_list 3-1 train
printf 'GOOD=1\nexport BAD\n' >.deepspeed_env
refused 2 ".deepspeed_env:2: 'export BAD' is not NAME=VALUE" -H "$nohf" --num_gpus 1 train
rm -f .deepspeed_env
# No mpiexec: a clear message, exit 1.
ZL_MPIEXEC=$tmp/no-such-mpiexec refused 1 "MPICH's mpiexec is needed" -H "$nohf" --num_gpus 1 train

if [ -z "$MPIEXEC" ]; then
    echo "no mpiexec: the real launches are skipped"
    exit $((failures > 0))
fi
ZL_MPIEXEC=$MPIEXEC
export ZL_MPIEXEC

# A real launch of train at 2 ranks: the same losses as plain mpiexec (one thread a rank,
# as the launcher gives each of 2 ranks on up to 3 cores).
steps_of() { grep -E '^(step|done)' "$1" | sed 's/ | [0-9.]* ms\/step.*//; s/ in [0-9].*//'; }
launch -H "$nohf" --num_gpus 2 train --steps 3
[ "$status" -eq 0 ] || fail "launch train: exit $status: $(tail -5 "$tmp/err")"
grep -qF "zerolab launch: running: $ZL_MPIEXEC -hosts localhost:2" "$tmp/err" ||
    fail "the command run is not printed: $(head -3 "$tmp/err")"
steps_of "$tmp/out" >"$tmp/launched"
OMP_NUM_THREADS=$(th 2) $MPIEXEC -n 2 "$zl" train --steps 3 >"$tmp/plain" 2>"$tmp/err" ||
    fail "plain mpiexec train failed: $(tail -5 "$tmp/err")"
steps_of "$tmp/plain" >"$tmp/plain.steps"
[ -s "$tmp/launched" ] || fail "launched train printed no step lines"
cmp -s "$tmp/launched" "$tmp/plain.steps" || fail "launched losses differ from mpiexec's:
$(diff "$tmp/launched" "$tmp/plain.steps")"

# .deepspeed_env reaches every rank (it is not in the launcher's own environment).
printf 'ZL_TEST_FROM_ENV_FILE=it arrived\n' >.deepspeed_env
launch -H "$nohf" --num_gpus 2 /bin/sh -c 'echo "got: $ZL_TEST_FROM_ENV_FILE"'
[ "$(grep -c '^got: it arrived$' "$tmp/out")" -eq 2 ] ||
    fail ".deepspeed_env not on both ranks: $(cat "$tmp/out" "$tmp/err")"
rm -f .deepspeed_env

# --bind_cores_to_rank: rank j of 2 gets the j-th core of the list, one thread; a zerolab
# subcommand pins itself, a program runs pinned through zerolab.
if [ "$ncores" -ge 2 ]; then
    c0=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status | tr ',' '\n' | head -n 1 | sed 's/-.*//')
    c1=$(awk -v c="$cores" 'BEGIN { n = split(c, r, ","); for (i = 1; i <= n; i++) { m = split(r[i], ab, "-"); lo = ab[1]; hi = m > 1 ? ab[2] : ab[1]; for (k = lo; k <= hi; k++) { seen++; if (seen == 2) { print k; exit } } } }')
    launch -H "$nohf" --num_gpus 2 --bind_cores_to_rank --bind_core_list "$c0,$c1" \
        /bin/sh -c 'echo "cores $(sed -n "s/^Cpus_allowed_list:[[:space:]]*//p" /proc/self/status) threads $OMP_NUM_THREADS"'
    got=$(sort "$tmp/out" | tr '\n' ';')
    [ "$got" = "$(printf 'cores %s threads 1\ncores %s threads 1\n' "$c0" "$c1" | sort | tr '\n' ';')" ] ||
        fail "bound ranks report '$got', want cores $c0 and $c1, one thread each ($(cat "$tmp/err"))"
    launch -H "$nohf" --num_gpus 2 --bind_cores_to_rank report
    [ "$(grep -c '^cores .* 1 for this process' "$tmp/out")" -eq 2 ] ||
        fail "zerolab report under binding: $(grep '^cores' "$tmp/out")"
else
    echo "one core: the binding checks are skipped"
fi

# The simulator's nodes follow the hosts: two hosts (both this machine) of one rank cross
# the inter-node link; one host of two shares NVLink.
printf 'localhost slots=1\n127.0.0.1 slots=1\n' >"$tmp/two"
launch -H "$tmp/two" train --steps 1 --device a100-80gb --trace "$tmp/two.json"
[ "$status" -eq 0 ] || fail "two-host train: exit $status: $(tail -5 "$tmp/err")"
grep -q '"all_reduce (ib200)"' "$tmp/two.json" 2>/dev/null ||
    fail "two hosts: no allreduce on ib200 in the trace"
grep -q 'simulated: 2 nodes x 1 ' "$tmp/out" || fail "two hosts: not simulated as 2 nodes"
launch -H "$nohf" --num_gpus 2 train --steps 1 --device a100-80gb --trace "$tmp/one.json"
[ "$status" -eq 0 ] || fail "one-host train: exit $status: $(tail -5 "$tmp/err")"
grep -q '"all_reduce (nvlink3)"' "$tmp/one.json" 2>/dev/null ||
    fail "one host: no allreduce on nvlink3 in the trace"

exit $((failures > 0))
