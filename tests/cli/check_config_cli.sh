#!/bin/sh
# `zerolab config` and the config flags of `zerolab train` end to end: "auto" filled by
# the Hugging Face-style flags, unfilled "auto" and mismatches named, files that are not
# regular files refused, --json output that is only JSON.
# Needs $ZEROLAB (set by make check) and a writable temporary directory.
set -u
ZEROLAB=${ZEROLAB:-./zerolab}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_cfgcli.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0 checks=0

# expect STATUS PATTERN -- ARGS...: run zerolab, check its exit status and that its stdout
# or stderr contains PATTERN (a fixed string).
expect() {
    want_status=$1 pattern=$2
    shift 3
    checks=$((checks + 1))
    "$ZEROLAB" "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
    if [ "$status" -ne "$want_status" ]; then
        echo "FAIL: zerolab $*: exit status $status, expected $want_status"; cat "$tmp/out" "$tmp/err"
        failures=$((failures + 1)); return
    fi
    if ! grep -qF -- "$pattern" "$tmp/out" "$tmp/err"; then
        echo "FAIL: zerolab $*: output lacks '$pattern'"; cat "$tmp/out" "$tmp/err"
        failures=$((failures + 1)); return
    fi
    echo "ok: zerolab $* -> $status, '$pattern'"
}

# --- Hugging Face "auto": filled by flags in both commands ------------------------------
cat >"$tmp/hf.json" <<'JSON'
{
  "train_batch_size": "auto",
  "train_micro_batch_size_per_gpu": "auto",
  "gradient_accumulation_steps": "auto",
  "optimizer": {"type": "AdamW", "params": {"lr": "auto"}},
  "scheduler": {"type": "WarmupDecayLR",
                "params": {"warmup_max_lr": "auto", "warmup_num_steps": 10,
                           "total_num_steps": "auto"}}
}
JSON
fill="--micro-batch 2 --grad-accum 3 --lr 2e-3 --total-steps 40"
expect 0 "train_micro_batch_size_per_gpu ....." -- config "$tmp/hf.json" $fill
expect 0 "2 (auto, filled by --micro-batch)" -- config "$tmp/hf.json" $fill
expect 0 "0.002 (auto, filled by --lr)" -- config "$tmp/hf.json" $fill
expect 0 "40 (auto, filled by --total-steps)" -- config "$tmp/hf.json" $fill
expect 0 "batch 6 = micro-batch 2 x accumulation 3" -- train --config "$tmp/hf.json" --steps 1 $fill
# Unfilled: every "auto" named with its line and flag; exit 1.
expect 1 "hf.json:5: optimizer.params.lr is \"auto\": give --lr" -- config "$tmp/hf.json" --micro-batch 2
expect 1 "hf.json:8: scheduler.params.total_num_steps is \"auto\": give --total-steps" -- train --config "$tmp/hf.json" --micro-batch 2
expect 1 "hf.json:4: gradient_accumulation_steps is \"auto\": give --grad-accum" -- config "$tmp/hf.json"
# A concrete value that differs: a mismatch, as the HF Trainer reports it.
printf '{"train_micro_batch_size_per_gpu": 4}\n' >"$tmp/mb4.json"
expect 1 "mb4.json:1: train_micro_batch_size_per_gpu is 4 in the config, --micro-batch gives 8" -- config "$tmp/mb4.json" --micro-batch 8
# The built-in config: the flags set the values.
expect 0 "8 (command line: --micro-batch)" -- config --micro-batch 8
expect 0 "batch 8 = micro-batch 8 x accumulation 1" -- train --steps 1 --micro-batch 8
# Bad values are usage errors naming the flag.
expect 2 "--micro-batch 4294967297 is out of range: at most 2147483647" -- config --micro-batch 4294967297
expect 2 "--lr expects a learning rate" -- train --lr fast
expect 0 "--total-steps N" -- train --help
expect 0 "--micro-batch N" -- config --help

# --- strict integers in the file -----------------------------------------------------------
printf '{\n  "train_micro_batch_size_per_gpu": 4294967297\n}\n' >"$tmp/big.json"
expect 1 "big.json:2: train_micro_batch_size_per_gpu: 4294967297 is out of range" -- train --config "$tmp/big.json" --steps 1

# --- only regular files ------------------------------------------------------------------
expect 1 "'/dev/zero' is not a regular file (it is a device)" -- config /dev/zero
mkfifo "$tmp/fifo.json"
expect 1 "is not a regular file (it is a FIFO" -- config "$tmp/fifo.json"
expect 1 "is not a regular file (it is a directory)" -- train --config "$tmp"

# --- comms_logger.prof_all false: only prof_ops' ops in the summary -----------------------
printf '{"train_micro_batch_size_per_gpu": 4, "comms_logger": {"enabled": true}}\n' >"$tmp/cl_all.json"
printf '{"train_micro_batch_size_per_gpu": 4, "comms_logger": {"enabled": true, "prof_all": false, "prof_ops": ["broadcast"]}}\n' >"$tmp/cl_some.json"
checks=$((checks + 1))
"$ZEROLAB" train --config "$tmp/cl_all.json" --steps 2 >"$tmp/cl_all" 2>&1
"$ZEROLAB" train --config "$tmp/cl_some.json" --steps 2 >"$tmp/cl_some" 2>&1
if grep -q '^all_gather_into_tensor' "$tmp/cl_all" && grep -q '^Comm. Op' "$tmp/cl_some" &&
   ! grep -q '^all_gather_into_tensor' "$tmp/cl_some"; then
    echo "ok: prof_all false hides the ops not in prof_ops"
else
    echo "FAIL: comms_logger.prof_all false is not honoured:"; cat "$tmp/cl_some"
    failures=$((failures + 1))
fi

# --- config --json: only JSON on stdout, and it reads back to the same settings ----------
# values VIEW: the table view's "name ... value" lines without their (source) or file name.
values() { grep '^  [a-z]' "$1" | grep -v '^  config_file ' | sed 's/ (.*$//'; }
srcdir=${ZL_SRCDIR:-.}
for f in "" "$srcdir/examples/ds_config.json" "$srcdir/examples/ds_zero2.json" \
         "$srcdir/tests/fixtures/config/zero2.json"; do
    checks=$((checks + 1))
    name=${f:-the built-in config}
    if ! "$ZEROLAB" config $f --json >"$tmp/a.json" 2>"$tmp/err" ||
       ! "$ZEROLAB" config "$tmp/a.json" --json >"$tmp/b.json" 2>>"$tmp/err"; then
        echo "FAIL: config $name --json does not read back:"; cat "$tmp/err"
        failures=$((failures + 1)); continue
    fi
    "$ZEROLAB" config $f >"$tmp/view1" 2>/dev/null
    "$ZEROLAB" config "$tmp/a.json" >"$tmp/view2" 2>/dev/null
    values "$tmp/view1" >"$tmp/v1"; values "$tmp/view2" >"$tmp/v2"
    if [ "$(head -c 1 "$tmp/a.json")" != "{" ] || ! cmp -s "$tmp/a.json" "$tmp/b.json" ||
       [ ! -s "$tmp/v1" ] || ! cmp -s "$tmp/v1" "$tmp/v2"; then
        echo "FAIL: config $name --json is not a round trip:"; diff "$tmp/v1" "$tmp/v2" | head
        failures=$((failures + 1))
    else
        echo "ok: config $name --json round-trips ($(wc -l <"$tmp/v1") settings)"
    fi
done

checks=$((checks + 1))
if [ -w /dev/full ]; then
    if "$ZEROLAB" config --json >/dev/full 2>"$tmp/err"; then
        echo "FAIL: config --json > /dev/full exited 0"; failures=$((failures + 1))
    else echo "ok: config --json > /dev/full fails"; fi
fi

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
