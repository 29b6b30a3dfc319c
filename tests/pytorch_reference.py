#!/usr/bin/env python3
"""PyTorch reference numbers for zerolab's GPT model.

usage: python3 tests/pytorch_reference.py INIT.safetensors OUT.safetensors

INIT is written by tests/tools/zl_export_init (`make fixtures` runs both): zerolab's
initial parameters under Hugging Face GPT-2 names (Linear weights stored (out, in), as
torch.nn.Linear stores them), the token ids of every training step ("batch.inputs",
"batch.targets", int32 (steps, B, T), target -1 = ignored) and, as metadata, the model
shape and the training hyperparameters.

This script builds the same GPT-2 model in PyTorch (float32, CPU, one thread,
deterministic), copies the weights in, and writes OUT (tests/fixtures/
gpt_reference.safetensors), which tests/unit/check_pytorch.c compares zerolab against:

  batch.inputs, batch.targets   the token ids, copied from INIT
  init.<name>                   the initial parameters as PyTorch received them
  logits (B, T, V), loss ()     forward of step 0's batch
  grad.<name>                   backward of that loss, for every parameter (wte's gradient
                                collects both of its uses: embedding and tied output)
  train.losses (steps,)         loss of each of `steps` training steps, before its update
  train.grad_norms (steps,)     global gradient norm before clipping at each step
  train.lrs (steps,) F64        the lr each optimizer step used
  final.<name>                  parameters after the last step, for the 1-D parameters and
                                wpe (rows T..maxT-1 of wpe never get a gradient: they move by
                                weight decay alone)

Training step, as DeepSpeed's engine runs it with gradient_accumulation_steps 1:
  loss = mean cross-entropy over targets >= 0; backward;
  torch.nn.utils.clip_grad_norm_(params, max_norm=gradient_clipping);
  torch.optim.AdamW step, with two param groups: weight_decay on the 2-D parameters
  (wte, wpe, Linear weights), 0 on biases and LayerNorm;
  then the LR schedule steps.
LR schedule: DeepSpeed's WarmupLR (deepspeed/runtime/lr_schedules.py), re-derived here:
  with N = max(2, warmup_num_steps) and t = last_batch_iteration,
  lr(t) = min + (max - min) * gamma(t), gamma = ln(t + 1) / ln(N) (log) or t / N (linear)
  for t < N, else 1. t starts at -1 and the constructor writes lr = min into the
  optimizer ("Initialize lr in optimizer"; DeepSpeed releases before that change left the
  optimizer's own lr in force for the first step); the engine steps the scheduler after
  every optimizer step. So optimizer step k (0-based) runs with lr(k - 1), lr(-1) = min.

Only the Python standard library, numpy and torch are used (the safetensors format is
read and written by hand below). Run with an interpreter that has torch, e.g. Debian's
/usr/bin/python3 with python3-torch.
"""
import datetime
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- safetensors ---------------------------------------------------------------------

NP_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I32": "<i4", "I64": "<i8",
             "U16": "<u2", "U8": "u1", "I8": "i1"}
ST_DTYPES = {np.dtype(v).newbyteorder("<").str: k for k, v in NP_DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        arr = np.frombuffer(blob[base + begin:base + end], dtype=NP_DTYPES[info["dtype"]])
        tensors[name] = arr.reshape(info["shape"]).copy()
    return tensors, meta


def write_safetensors(path, tensors, meta):
    """Larger elements first, so every tensor starts aligned for its type; header padded
    to a multiple of 8 bytes; written to a temporary file, then renamed."""
    items = sorted(tensors.items(), key=lambda kv: (-kv[1].dtype.itemsize, kv[0]))
    header = {"__metadata__": meta}
    blobs, offset = [], 0
    for name, arr in items:
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        data = arr.tobytes()
        header[name] = {"dtype": ST_DTYPES[arr.dtype.str], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---- the model -----------------------------------------------------------------------
# GPT-2: learned positions, pre-LayerNorm blocks (eps 1e-5), GELU with the tanh
# approximation, causal self-attention on a fused qkv projection (q | k | v, each C wide,
# head h at [h*HS, (h+1)*HS) inside each), output projection tied to wte. Module names give
# the Hugging Face parameter names: h.0.attn.c_attn.weight, ...

class Attention(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.NH = NH
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)

    def forward(self, x):
        B, T, C = x.shape
        HS = C // self.NH
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.NH, HS).transpose(1, 2)  # (B, NH, T, HS)
        k = k.view(B, T, self.NH, HS).transpose(1, 2)
        v = v.view(B, T, self.NH, HS).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(HS))
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        att = att.masked_fill(~causal, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.c_fc = nn.Linear(C, 4 * C)
        self.c_proj = nn.Linear(4 * C, C)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = Attention(C, NH)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.mlp = MLP(C)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, V, maxT, L, NH, C):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(maxT, C)
        self.h = nn.ModuleList([Block(C, NH) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C, eps=1e-5)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for block in self.h:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # tied output projection
        loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T).long(),
                               ignore_index=-1)  # mean over the targets >= 0
        return logits, loss


def build_model(meta, init, dtype=torch.float32):
    model = GPT(int(meta["model.vocab_size"]), int(meta["model.max_seq_len"]),
                int(meta["model.num_layers"]), int(meta["model.num_heads"]),
                int(meta["model.channels"])).to(dtype)
    names = {name for name, _ in model.named_parameters()}
    given = {name for name in init if not name.startswith("batch.")}
    if names != given:
        sys.exit(f"parameter names differ: only in PyTorch {sorted(names - given)}, "
                 f"only in the input {sorted(given - names)}")
    with torch.no_grad():
        for name, p in model.named_parameters():
            w = torch.from_numpy(init[name])
            if tuple(w.shape) != tuple(p.shape):
                sys.exit(f"{name}: shape {tuple(w.shape)} in the input, {tuple(p.shape)} here")
            p.copy_(w.to(dtype))
    return model


class WarmupLR:
    """DeepSpeed's WarmupLR, step for step (see the module docstring)."""

    def __init__(self, optimizer, min_lr, max_lr, num_steps, warmup_type):
        if num_steps <= 0:
            raise ValueError("warmup_num_steps must be a positive integer")
        self.optimizer = optimizer
        self.min_lr, self.delta = min_lr, max_lr - min_lr
        self.num_steps = max(2, num_steps)
        self.inverse_log = 1.0 / math.log(self.num_steps)
        self.warmup_type = warmup_type
        self.last_batch_iteration = -1
        self._set(min_lr)

    def _gamma(self):
        t = self.last_batch_iteration
        if t < self.num_steps:
            if self.warmup_type == "log":
                return self.inverse_log * math.log(t + 1)
            return t / self.num_steps
        return 1.0

    def _set(self, lr):
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self):
        self.last_batch_iteration += 1
        self._set(self.min_lr + self.delta * self._gamma())


def forward_backward(meta, init, inputs, targets, dtype):
    model = build_model(meta, init, dtype)
    logits, loss = model(torch.from_numpy(inputs), torch.from_numpy(targets))
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
    return logits.detach(), loss.detach(), grads


def train(meta, init, inputs, targets):
    model = build_model(meta, init)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() != 2]
    wd = float(meta["optimizer.weight_decay"])
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=float(meta["optimizer.lr"]),
                            betas=(float(meta["optimizer.beta1"]), float(meta["optimizer.beta2"])),
                            eps=float(meta["optimizer.eps"]))
    assert meta["scheduler.type"] == "WarmupLR"
    sched = WarmupLR(opt, float(meta["scheduler.warmup_min_lr"]),
                     float(meta["scheduler.warmup_max_lr"]),
                     int(meta["scheduler.warmup_num_steps"]), meta["scheduler.warmup_type"])
    max_norm = float(meta["gradient_clipping"])
    losses, norms, lrs = [], [], []
    for s in range(int(meta["steps"])):
        opt.zero_grad(set_to_none=False)
        _, loss = model(torch.from_numpy(inputs[s]), torch.from_numpy(targets[s]))
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=max_norm)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        losses.append(loss.item())
        norms.append(norm.item())
    final = {name: p.detach().numpy().copy() for name, p in model.named_parameters()
             if p.dim() == 1 or name == "wpe.weight"}
    return losses, norms, lrs, final


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    init_path, out_path = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    init, meta = read_safetensors(init_path)
    assert int(meta["gradient_accumulation_steps"]) == 1
    inputs, targets = init["batch.inputs"], init["batch.targets"]

    logits, loss, grads = forward_backward(meta, init, inputs[0], targets[0], torch.float32)
    # The same in float64: how far float32 PyTorch itself is from exact, which is the
    # scale of disagreement to expect between two float32 implementations.
    logits64, loss64, grads64 = forward_backward(meta, init, inputs[0], targets[0], torch.float64)
    print(f"loss {loss.item():.7f}; float32 vs float64: logits max abs "
          f"{(logits.double() - logits64).abs().max().item():.2e}, loss abs "
          f"{abs(loss.item() - loss64.item()):.2e}")
    for name in grads:
        g, g64 = grads[name].double(), grads64[name]
        scale = g64.abs().max().item()
        print(f"  grad {name:28s} max |g| {scale:.3e}  max abs err {(g - g64).abs().max().item():.2e}"
              f"  ({(g - g64).abs().max().item() / scale if scale else 0:.1e} of max)")

    losses, norms, lrs, final = train(meta, init, inputs, targets)
    for s, (l, n, r) in enumerate(zip(losses, norms, lrs)):
        print(f"step {s}: loss {l:.6f}  grad norm {n:.6f}  lr {r:.6g}")

    out = {"batch.inputs": inputs, "batch.targets": targets,
           "logits": logits.numpy(), "loss": np.array(loss.item(), dtype=np.float32),
           "train.losses": np.array(losses, dtype=np.float32),
           "train.grad_norms": np.array(norms, dtype=np.float32),
           "train.lrs": np.array(lrs, dtype=np.float64)}
    for name in grads:
        out["init." + name] = init[name]
        out["grad." + name] = grads[name].numpy()
    for name, value in final.items():
        out["final." + name] = value
    meta = dict(meta)
    meta.update({
        "format": "zerolab gpt reference v1",
        "script": "tests/pytorch_reference.py",
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "clipping": "torch.nn.utils.clip_grad_norm_(max_norm=gradient_clipping)",
        "optimizer": "torch.optim.AdamW; weight_decay on 2-D params, 0 on the rest",
        "schedule": "DeepSpeed WarmupLR, computed in the script; step k uses lr(k-1), lr(-1)=min",
    })
    write_safetensors(out_path, out, meta)
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes)")


if __name__ == "__main__":
    main()
