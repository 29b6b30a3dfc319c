#!/bin/sh
# docs/config-reference.md is what `zerolab config --reference` prints from the config
# reader's table (src/config/config_table.c): regenerate it and fail with the diff when the
# committed file differs, so the reference cannot drift from the keys the reader knows.
# Also: every row of the table documents itself (the command exits 0), every key of the
# table is in it once, and --reference refuses company.
set -u
srcdir=${ZL_SRCDIR:-.}
ZEROLAB=${ZEROLAB:-./zerolab}
ref=$srcdir/docs/config-reference.md
[ -f "$ref" ] || { echo "FAIL: no $ref"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_cfgref.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$ZEROLAB" config --reference >"$tmp/ref.md" 2>"$tmp/err"
status=$?
[ "$status" -eq 0 ] || { fail "zerolab config --reference: exit status $status"; cat "$tmp/err"; }
grep -q '(undocumented)' "$tmp/ref.md" && fail "rows without a meaning: $(grep -c '(undocumented)' "$tmp/ref.md")"
if ! diff -u "$ref" "$tmp/ref.md" >"$tmp/diff"; then
    cat "$tmp/diff"
    fail "docs/config-reference.md differs from the table: run \`./zerolab config --reference > docs/config-reference.md\`"
fi

# Keys the reader knows, as `zerolab config --json` of the built-in config nests them, are
# each one row of the reference (spot checks across blocks and types).
for key in train_batch_size gradient_clipping zero_optimization.stage \
    zero_optimization.offload_optimizer.device zero_optimization.stage3_prefetch_bucket_size \
    fp16.loss_scale_window bf16.enabled optimizer.params.betas scheduler.params.warmup_type \
    aio.block_size pipeline.stages comms_logger.prof_ops zerolab.device; do
    n=$(grep -c "^| \`$key\` |" "$tmp/ref.md")
    [ "$n" -eq 1 ] || fail "key $key appears $n times in the reference"
done
# the honoured column takes one of its four values on every row
bad=$(awk -F' [|] ' '/^[|] `/ && NF >= 5 && $4 != "yes" && $4 != "no effect" && $4 != "refused" && $4 != "partly"' "$tmp/ref.md" | grep -v 'refused when' | head -n 3)
[ -z "$bad" ] || fail "rows with no honoured state: $bad"
grep -q '^| `zero_optimization.zero_quantized_weights` .* | refused |' "$tmp/ref.md" ||
    fail "ZeRO++ quantized weights are not marked refused"
grep -q '^| `fp16.loss_scale` .* | yes |' "$tmp/ref.md" || fail "fp16.loss_scale is not marked yes"

"$ZEROLAB" config --reference x.json >"$tmp/out" 2>&1
status=$?
[ "$status" -eq 2 ] || fail "config --reference x.json: exit status $status, expected 2"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "docs/config-reference.md matches the table"
