#!/usr/bin/env python3
"""`zerolab ckpt to-fp32` output in PyTorch: the same logits as zerolab.

usage: python3 tests/ckpt_logits.py FP32.safetensors PROBE.safetensors [--atol A]

FP32 is what `zerolab ckpt to-fp32 DIR FP32.safetensors` wrote (Hugging Face GPT-2
names, Linear weights (out, in)); PROBE is what tests/tools/zl_ckpt_probe wrote from the
same checkpoint: a batch (batch.inputs, batch.targets, int32 (B, T), target -1 ignored),
zerolab's softmax of the logits of one forward on it ("probs", (B, T, V)) and its loss,
and the model's shape as metadata.

The to-fp32 file is read with a few lines of numpy (pytorch_reference.read_safetensors)
into the PyTorch reference GPT (pytorch_reference.GPT, by build_model: every parameter
name must match, shapes too), which runs the same batch in float32; softmax(logits) and
the loss must equal zerolab's within --atol (default 1e-5, absolute). Prints what it
measured; exit 0 if within, 1 if not, 2 on bad input.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import build_model, read_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("fp32")
    ap.add_argument("probe")
    ap.add_argument("--atol", type=float, default=1e-5)
    a = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)
    weights, wmeta = read_safetensors(a.fp32)
    probe, meta = read_safetensors(a.probe)
    for name, w in weights.items():
        if w.dtype != np.float32:
            print(f"{a.fp32}: {name} is {w.dtype}, not float32", file=sys.stderr)
            return 2
    model = build_model(meta, weights)  # exits naming any name or shape that differs
    model.eval()
    inputs = torch.from_numpy(probe["batch.inputs"].astype(np.int64))
    targets = torch.from_numpy(probe["batch.targets"].astype(np.int64))
    with torch.no_grad():
        logits, loss = model(inputs, targets)
        probs = torch.softmax(logits, dim=-1).numpy()
    zl_probs, zl_loss = probe["probs"], float(probe["loss"])
    if probs.shape != zl_probs.shape:
        print(f"probs: shape {zl_probs.shape} from zerolab, {probs.shape} here", file=sys.stderr)
        return 2
    dp = np.abs(probs.astype(np.float64) - zl_probs.astype(np.float64))
    worst = np.unravel_index(int(np.argmax(dp)), dp.shape)
    dl = abs(float(loss) - zl_loss)
    rel = float(np.max(dp / np.maximum(np.abs(zl_probs.astype(np.float64)), 1e-30)))
    print(f"{a.fp32} ({wmeta.get('source', '?')}): {len(weights)} tensors into the "
          f"reference GPT; batch {tuple(inputs.shape)}, V {probs.shape[-1]}")
    print(f"  softmax(logits): max |torch - zerolab| = {dp.max():.3e} at {tuple(int(i) for i in worst)} "
          f"(p = {zl_probs[worst]:.6g}), mean {dp.mean():.3e}, max relative {rel:.3e}")
    print(f"  loss: torch {float(loss):.8f}, zerolab {zl_loss:.8f}, |diff| = {dl:.3e}")
    ok = bool(dp.max() <= a.atol) and dl <= a.atol * max(1.0, abs(zl_loss))
    # a comparison of nothing is a failure
    ok = ok and dp.size > 0 and np.isfinite(zl_probs).all() and np.isfinite(zl_loss)
    print(f"  {'agree' if ok else 'DIFFER'} within atol {a.atol:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
