#!/bin/sh
# zerolab plan end to end: a setup that does not fit shows its full requirement per
# category (planned again without a limit) beside the card's memory, with a hint that names
# only what zerolab has built and what would help this run; --json says fits: false with
# the reason, and escapes every string; model states are shown alone and with the working
# buffers. Needs $ZEROLAB (set by make check).
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_plan_cli.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0 checks=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# run ARGS...: zerolab plan ARGS into $tmp/out, $tmp/err; exit status must be 0.
run() {
    "$ZEROLAB" plan "$@" >"$tmp/out" 2>"$tmp/err" || { fail "zerolab plan $*: exit status $?"; cat "$tmp/err"; }
}
# has PATTERN / lacks PATTERN: a fixed string in (not in) the last output.
has() {
    checks=$((checks + 1))
    if grep -qF -- "$1" "$tmp/out"; then printf 'ok: has %s\n' "$1"; else fail "no '$1' in:"; cat "$tmp/out"; fi
}
lacks() {
    checks=$((checks + 1))
    if grep -qiF -- "$1" "$tmp/out"; then fail "'$1' should not be in:"; cat "$tmp/out"; else printf 'ok: lacks %s\n' "$1"; fi
}
# valid: the last output parses as JSON (where python3 exists; the escapes are checked
# by fixed strings either way)
valid() {
    command -v python3 >/dev/null 2>&1 || return 0
    checks=$((checks + 1))
    if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out"; then echo "ok: valid JSON"
    else fail "not JSON:"; cat "$tmp/out"; fi
}

# --- does not fit: the full requirement, not what was live at the failure -------------
# gpt2-1.5b fp32 on a T4 fails at adam.m; the optimizer's 11.61 GiB must still be shown
run --model gpt2-1.5b --cluster t4
has "memory per GPU (peak, GiB, the full requirement):"
has "optimizer     11.61"
has "DOES NOT FIT"
has "needs 180.78 GiB per GPU, 164.78 GiB more than the card's 16.00 GiB (T4-16GB)"
# activations dominate and checkpointing is off: it is the first remedy named
has "hint: activations dominate: activation checkpointing keeps only each layer's input"
has "or lower train_micro_batch_size_per_gpu"
has "out of memory allocating 5.80 GiB for 'adam.m'"
# one rank: no ZeRO stage partitions anything; parameter offload would not help here
has "on one GPU nothing partitions it"
lacks "ZeRO stage 1 partitions"
lacks "offload_param"
# the setup names its offload choice; without offload the host holds nothing of it
has "ZeRO stage 0, fp32, offload none"
has "total          0.00 of 128.00 (the single-GPU workstation's 128.00 GiB / 1 GPU per node): fits"
# model states alone and with working buffers (ZeRO's 16 bytes per parameter in fp32: 4+4+8)
has "model states 23.21 alone (parameters, gradients, optimizer, master), 23.21 with working buffers"

# eight ranks at stage 0: ZeRO stage 1 would help, and is named
run --model gpt2-1.5b --cluster 8xt4
has "ZeRO stage 1 partitions it across the 8 data-parallel ranks"
lacks "offload_param"

# --json: fits false, the reason as an escaped string, the full requirement
run --model gpt2-1.5b --cluster t4 --json
valid
has '"fits": false, "reason": "rank 0 (T4-16GB): out of memory allocating 5.80 GiB for '"'"'adam.m'"'"': budget 16.00 GiB, 11.61 GiB already live, by tag:\n    param'
has '"optimizer": 12460889600'
has '"model_states": 24921779200, "model_states_with_buffers": 24921779200'
run --model gpt2-124m --cluster a100-80gb --json
valid
has '"fits": true, "reason": null'

# a model name with a quote, a backslash and a control character, escaped in --json
printf '{"name": "we\\"ird\\\\na\\u0001me", "vocab_size": 256, "max_seq_len": 64, "num_layers": 2, "num_heads": 4, "channels": 64}\n' >"$tmp/odd.json"
run --model "$tmp/odd.json" --cluster a100-80gb --json
valid
has '{"model": "we\"ird\\na\u0001me", "params":'

# --search --json: every setup that does not fit carries its reason
run --model gpt2-1.5b --cluster 2xt4 --search --json
valid
has '"fits": false, "reason": "rank 0 (T4-16GB): out of memory'

# --- ZeRO-Offload: host memory per rank against its share of the node -------------------
cat >"$tmp/offload.json" <<'EOF'
{"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1, "bf16": {"enabled": true},
 "optimizer": {"type": "AdamW", "params": {"lr": 1e-4}},
 "zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu", "pin_memory": true}}}
EOF
# gpt2-124m on 8 A100s: the optimizer's partition on the host (P = 124439808, 1/8 each:
# master 4, gradient 4, moments 8, the bf16 staging copy 2 bytes per element = 18 P / 8)
run --model gpt2-124m --cluster 8xa100-80gb --config "$tmp/offload.json"
has "ZeRO stage 2, bf16, offload optimizer cpu"
has "host memory per rank (peak, GiB, pinned):"
has "parameters      0.03   gradients      0.06   optimizer      0.12   master      0.06"
has "total          0.26 of 256.00 (the DGX A100 640GB's 2048.00 GiB / 8 GPUs per node): fits"
has "optimizer      0.00   master      0.00"
run --model gpt2-124m --cluster 8xa100-80gb --config "$tmp/offload.json" --json
valid
has '"offload_optimizer": "cpu", "offload_param": "none", "pin_memory": true'
has '"host_memory_bytes": {"params": 31109952, "grads": 62219904, "optimizer": 124439808, "master": 62219904, "other": 0, "total": 279989568, "available": 274877906944, "node": 2199023255552}'
has '"device_fits": true, "host_fits": true, "nvme_fits": true, "fits": true'
# the node's figure, as DeepSpeed's estimator counts host memory (18 P: 2.09 GiB)
run --model gpt2-124m --cluster 8xa100-80gb --config "$tmp/offload.json"
has "per node 2.09 GiB for its 8 ranks (zerolab estimate's \"per CPU\" counts a node)"

# a card too small for the optimizer: the plan names ZeRO-Offload and what it would move
sed 's/, "offload_optimizer": {"device": "cpu", "pin_memory": true}//' "$tmp/offload.json" >"$tmp/nooffload.json"
run --model gpt2-1.5b --cluster v100-16gb --config "$tmp/nooffload.json" --seq-len 128
has "ZeRO stage 2, bf16, offload none"
has "DOES NOT FIT"
has "or offload the optimizer: \"offload_optimizer\": {\"device\": \"cpu\"} moves its 17.41 GiB (master weights and Adam's moments) to host memory, 512.00 GiB per rank here"

# 8.4B parameters on a workstation of 8 RTX 4090s: the card holds its share, the host
# (128 GiB for 8 ranks) does not: refused, naming host memory, the bytes, and a remedy
printf '{"name": "gpt-8b", "vocab_size": 50257, "n_positions": 2048, "n_layer": 32, "n_head": 32, "n_embd": 4608}\n' >"$tmp/m8.json"
run --model "$tmp/m8.json" --cluster 8xrtx4090 --config "$tmp/offload.json" --seq-len 128
has "total         17.20 of 24.00: fits"
has "total         17.60 of 16.00 (the single-GPU workstation's 128.00 GiB / 8 GPUs per node): DOES NOT FIT"
has "host memory: needs 17.60 GiB per rank (18892517760 bytes), 1.60 GiB more than the 16.00 GiB (17179869184 bytes) it has"
has "hint: ZeRO-Offload keeps the optimizer's partitions"
has "--cluster 2x8xrtx4090"
lacks "needs 17.20 GiB per GPU"
run --model "$tmp/m8.json" --cluster 8xrtx4090 --config "$tmp/offload.json" --seq-len 128 --json
valid
has '"device_fits": true, "host_fits": false, "nvme_fits": true, "fits": false, "reason": "rank 0 host (host memory): out of memory'

# --search tries the optimizer on the host at stages 1-3, the parameters too at stage 3,
# pipeline stages (1, 2, 4: ZeRO 0-1 only), tensor parallelism (1, 2, 4: no offload in
# the search), and names each per setup
run --model gpt2-350m --cluster 4xv100-16gb --config "$tmp/offload.json" --seq-len 512 --search
has "tp   pp stage offload       micro accum   GiB/GPU  host GiB"
has "optimizer cpu"
has "1    1 3     optim+param"
has "1    4 1     none              1     4"
has "2    1 2     none"
has "2    1 3     none"
lacks "    2 2     "
lacks "    4 3     "
lacks "2    1 1     optimizer"
has "98 of 98 setups fit in 16.00 GiB per GPU and 128.00 GiB of host memory per rank"
has "tokens/s    MFU  ckpt" # each setup with activation checkpointing off (0) and on (1)
run --model gpt2-350m --cluster 4xv100-16gb --config "$tmp/offload.json" --seq-len 512 --search --json
valid
has '"zero_stage": 0, "precision": "bf16", "micro_batch": 1, "gradient_accumulation_steps": 1, "seq_len": 512, "offload_optimizer": "none"'
has '"zero_stage": 3, "precision": "bf16", "micro_batch": 1, "gradient_accumulation_steps": 1, "seq_len": 512, "offload_optimizer": "cpu"'
has '"pin_memory": true, "activation_checkpoint_interval": 1,'
# a ZeRO-Infinity config (NVMe, stage 3): the search does not try NVMe, and its own
# offload at another stage is another setup, skipped, not an error
printf '{"train_micro_batch_size_per_gpu": 2, "bf16": {"enabled": true}, "zero_optimization": {"stage": 3, "offload_optimizer": {"device": "nvme", "nvme_path": "%s"}, "offload_param": {"device": "nvme", "nvme_path": "%s"}}}\n' "$tmp" "$tmp" >"$tmp/nvme.json"
run --model gpt2-350m --cluster 2xv100-16gb --config "$tmp/nvme.json" --search
has "setups fit in 16.00 GiB per GPU"
# the 8.4B model: setups whose host side does not fit are counted apart
run --model "$tmp/m8.json" --cluster 8xrtx4090 --config "$tmp/offload.json" --seq-len 128 --search
has "did not fit the host memory"

# --- --trace: an unwritable path or a FIFO with no reader fails at once, before the plan --
mkfifo "$tmp/fifo"
for path in "$tmp/fifo" "$tmp/no/such/dir/t.json"; do
    checks=$((checks + 1))
    if timeout 600 "$ZEROLAB" plan --model lab --cluster v100-16gb --trace "$path" >"$tmp/out" 2>"$tmp/err"; then
        fail "plan --trace $path exited 0"
    elif grep -qF "cannot write '$path' (--trace)" "$tmp/err"; then echo "ok: plan --trace $path refused"
    else fail "plan --trace $path: no clear message (exit $?):"; cat "$tmp/err"; fi
done

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
