#!/bin/sh
# zerolab estimate end to end: DeepSpeed's published tables (t5-3b, one node of 8 GPUs)
# line for line, a model counted from its parameter table, and every kind of bad input
# refused with exit status 2 and one message naming the flag.
# Needs $ZEROLAB (set by make check).
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_estimate.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0 checks=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# table WANT_FILE -- ARGS...: zerolab estimate ARGS must exit 0 and print exactly WANT_FILE.
table() {
    want=$1
    shift 2
    checks=$((checks + 1))
    if ! "$ZEROLAB" estimate "$@" >"$tmp/out" 2>"$tmp/err"; then
        fail "zerolab estimate $*: exit status $?"; cat "$tmp/err"; return
    fi
    if ! cmp -s "$want" "$tmp/out"; then
        fail "zerolab estimate $*: output differs"; diff "$want" "$tmp/out"; return
    fi
    echo "ok: zerolab estimate $* -> the table"
}

# line LINE -- ARGS...: zerolab estimate ARGS exits 0 and prints LINE as a whole line.
line() {
    want=$1
    shift 2
    checks=$((checks + 1))
    if ! "$ZEROLAB" estimate "$@" >"$tmp/out" 2>"$tmp/err"; then
        fail "zerolab estimate $*: exit status $?"; cat "$tmp/err"; return
    fi
    if ! grep -qxF -- "$want" "$tmp/out"; then
        fail "zerolab estimate $*: no line '$want'"; cat "$tmp/out"; return
    fi
    echo "ok: zerolab estimate $* -> '$want'"
}

# refuse STATUS PATTERN -- ARGS...: exit status STATUS, PATTERN (fixed string) on stderr,
# nothing on stdout.
refuse() {
    want_status=$1 pattern=$2
    shift 3
    checks=$((checks + 1))
    "$ZEROLAB" estimate "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
    if [ "$status" -ne "$want_status" ]; then
        fail "zerolab estimate $*: exit status $status, expected $want_status"; cat "$tmp/err"; return
    fi
    if ! grep -qF -- "$pattern" "$tmp/err"; then
        fail "zerolab estimate $*: stderr lacks '$pattern'"; cat "$tmp/err"; return
    fi
    if [ -s "$tmp/out" ]; then fail "zerolab estimate $*: printed to stdout"; cat "$tmp/out"; return; fi
    echo "ok: zerolab estimate $* -> $status, '$pattern'"
}

# --- DeepSpeed's published examples (docs/code-docs/source/memory.rst) -------------------
cat >"$tmp/zero3" <<'TABLE'
Estimated memory needed for params, optim states and gradients for a:
HW: Setup with 1 node, 8 GPUs per node.
SW: Model with 2851M total params, 32M largest layer params.
  per CPU  |  per GPU |   Options
   71.69GB |   0.12GB | offload_param=cpu , offload_optimizer=cpu , zero_init=1
  127.45GB |   0.12GB | offload_param=cpu , offload_optimizer=cpu , zero_init=0
   63.72GB |   0.78GB | offload_param=none, offload_optimizer=cpu , zero_init=1
  127.45GB |   0.78GB | offload_param=none, offload_optimizer=cpu , zero_init=0
    1.43GB |   6.09GB | offload_param=none, offload_optimizer=none, zero_init=1
  127.45GB |   6.09GB | offload_param=none, offload_optimizer=none, zero_init=0
TABLE
table "$tmp/zero3" -- --stage 3 --params 2851e6 --largest-layer-params 32e6 --gpus-per-node 8 --nodes 1
table "$tmp/zero3" -- --stage 3 --params 2851M --largest-layer-params 32M --gpus-per-node 8

# ZeRO-2: today's formula (11.28GB), and with --legacy-zero2 the docs' 15.93GB
printf '%s\n' "Estimated memory needed for params, optim states and gradients for a:" \
    "HW: Setup with 1 node, 8 GPUs per node." "SW: Model with 2851M total params." \
    "  per CPU  |  per GPU |   Options" "  127.45GB |   5.31GB | offload_optimizer=cpu " \
    "  127.45GB |  11.28GB | offload_optimizer=none" >"$tmp/zero2"
table "$tmp/zero2" -- --stage 2 --params 2.851B --gpus-per-node 8
sed 's/  11.28GB/  15.93GB/' "$tmp/zero2" >"$tmp/zero2-legacy"
table "$tmp/zero2-legacy" -- --stage 2 --params 2851000000 --gpus-per-node 8 --legacy-zero2

# without --stage: ZeRO-2, a blank line, then ZeRO-3 (the largest layer being known)
{ cat "$tmp/zero2"; echo; cat "$tmp/zero3"; } >"$tmp/both"
table "$tmp/both" -- --params 2851M --largest-layer-params 32M --gpus-per-node 8
table "$tmp/zero2" -- --params 2851M --gpus-per-node 8

# --- options ---------------------------------------------------------------------------
line "HW: Setup with 2 nodes, 1 GPU per node." -- --stage 3 --params 1B --largest-layer-params 100M --nodes 2
line "   12.57GB |   0.37GB | offload_param=cpu , offload_optimizer=cpu , zero_init=1" -- \
    --stage 3 --params 1B --largest-layer-params 100M --nodes 2
line "   29.80GB |   1.86GB | offload_optimizer=cpu " -- --stage 2 --params 1B --additional-buffer-factor 2

# --- a model, counted as DeepSpeed's *_all_live counts it --------------------------------
line "SW: Model with 124M total params, 38M largest layer params." -- --model gpt2-124m --stage 3
line "    0.22GB |   2.23GB | offload_param=none, offload_optimizer=none, zero_init=1" -- \
    --model gpt2-124m --stage 3
printf '{"name": "tiny", "vocab_size": 1000, "n_positions": 64, "n_layer": 2, "n_head": 2, "n_embd": 64}\n' >"$tmp/tiny.json"
line "SW: Model with 0M total params, 0M largest layer params." -- --model "$tmp/tiny.json" --stage 3

# --- help ---------------------------------------------------------------------------------
line "usage: zerolab estimate (--params N [--largest-layer-params N]" -- --help

# --- bad input: exit 2 (usage) or 1 (a model that cannot be read), one message ------------
refuse 2 "give --params or --model" --
refuse 2 "--params: '12X' is not a parameter count" -- --params 12X
refuse 2 "--params: '1.5' is not a whole number of parameters" -- --params 1.5
refuse 2 "--params: '-3M' is not a parameter count" -- --params -3M
refuse 2 "--params: expected at least 1 parameter, got '0'" -- --params 0
refuse 2 "--largest-layer-params: 'big' is not a parameter count" -- --params 1B --largest-layer-params big
refuse 2 "--stage expects 2 or 3" -- --stage 1 --params 1B
refuse 2 "--gpus-per-node expects a positive integer, got '0'" -- --params 1B --gpus-per-node 0
refuse 2 "--nodes expects a positive integer, got 'two'" -- --params 1B --nodes two
refuse 2 "--gpus-per-node 4294967297 is out of range: at most 1048576" -- --params 1B --gpus-per-node 4294967297
refuse 2 "--nodes 99999999999999999999 is out of range" -- --params 1B --nodes 99999999999999999999
refuse 2 "--stage expects 2 or 3" -- --stage 2.0 --params 1B
refuse 2 "is 2^63 bytes or more" -- --params 9e15 --additional-buffer-factor 1e10 --gpus-per-node 1048576 --nodes 2047
refuse 2 "--additional-buffer-factor expects a positive number" -- --params 1B --additional-buffer-factor -1
refuse 2 "--stage 3 needs --largest-layer-params" -- --stage 3 --params 1B
refuse 2 "--largest-layer-params 2000000000 is more than the total parameters (1000000000)" -- \
    --stage 3 --params 1B --largest-layer-params 2B
refuse 2 "give --params or --model, not both" -- --params 1B --model gpt2-124m
refuse 2 "--legacy-zero2 applies to ZeRO-2 only" -- --stage 3 --model gpt2-124m --legacy-zero2
refuse 2 "unknown or incomplete option '--world-size'" -- --params 1B --world-size 8
refuse 2 "unknown or incomplete option '--params'" -- --params
refuse 2 "unexpected argument '7B'" -- 7B
refuse 1 "unknown model 'gpt5'" -- --model gpt5
# a model whose sizes would wrap 64 bits: refused naming the dimension (a negative total before)
printf '{"vocab_size": 50257, "max_seq_len": 1024, "num_layers": 12, "num_heads": 16, "channels": 1073741824}\n' >"$tmp/wide.json"
refuse 1 "channels 1073741824), past the limit of 2^53" -- --model "$tmp/wide.json"
printf '{"vocab_size": 50257, "max_seq_len": 1024, "num_layers": 1073741824, "num_heads": 16, "channels": 1024}\n' >"$tmp/deep.json"
refuse 1 "num_layers 1073741824 is more than zerolab builds" -- --model "$tmp/deep.json"
refuse 1 "cannot open model file '$tmp/none.json'" -- --model "$tmp/none.json"

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
