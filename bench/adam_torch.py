"""torch.optim.AdamW on the problem bench/adam_bench.c times: one fp32 tensor of N
parameters, its gradient set once, at 1 and 2 threads (torch.set_num_threads), best of
R steps after a warm-up. Variants: foreach left at its default, foreach=True, and
foreach=False (the single-tensor loop). Run by bench/adam.sh with the interpreter that
has torch (Debian's python3-torch: /usr/bin/python3); without torch it says so and
exits 0.

usage: adam_torch.py [--numel N] [--reps R] [--threads 1,2]
Output: one line per variant and thread count, and "RESULT torch_<variant> <threads> <ms>"."""
import argparse
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--numel", type=float, default=100e6)
p.add_argument("--reps", type=int, default=3)
p.add_argument("--threads", default="1,2")
a = p.parse_args()
try:
    import torch
except ImportError:
    print("torch.optim.AdamW: skipped, no torch for %s (Debian: apt install python3-torch)"
          % sys.executable)
    sys.exit(0)

n = int(a.numel)
torch.manual_seed(0)
print("torch %s, torch.optim.AdamW on %d fp32 parameters, best of %d" % (torch.__version__, n, a.reps))
print("%-28s %7s %10s %8s" % ("", "threads", "ms", "GB/s"))
for nt in [int(x) for x in a.threads.split(",")]:
    torch.set_num_threads(nt)
    for name, kw in (("default", {}), ("foreach", {"foreach": True}),
                     ("no_foreach", {"foreach": False})):
        w = torch.nn.Parameter(torch.rand(n) * 2 - 1)
        w.grad = torch.rand(n) * 2 - 1
        opt = torch.optim.AdamW([w], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, **kw)
        best = float("inf")
        for r in range(a.reps + 1):
            t0 = time.perf_counter()
            opt.step()
            t = time.perf_counter() - t0
            if r:
                best = min(best, t)
        label = "AdamW foreach=%s" % {"default": "default", "foreach": "True", "no_foreach": "False"}[name]
        print("%-28s %7d %10.1f %8.2f" % (label, nt, best * 1e3, 28.0 * n / best / 1e9))
        print("RESULT torch_%s %d %.3f" % (name, nt, best * 1e3))
        del opt, w
