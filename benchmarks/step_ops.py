"""Per-step costs of the training engine that carry over to a GPU, single and vectorised.

For one full engine step (forward, loss, backward, per-run clipping, per-run Adam) at batch 64:

* the ATen operators issued (PyTorch profiler) and the floating-point work, at the widths of
  ``--params``, for 1 and 8 runs;
* the host time to issue the step (``dispatch_ms``): the wall time of the same step with every
  width cut to 16 and batch 2, so that the kernels themselves cost next to nothing and what is
  left is Python, autograd, vmap and dispatcher overhead. On a GPU, where kernels run
  asynchronously and these networks' arithmetic takes microseconds, this host time is what a
  step costs (README, *Expected runtime at paper scale*).

    python benchmarks/step_ops.py [--json benchmarks/results/step_ops.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from cabinlift import config
from cabinlift.lifters import available, build_lifter
from cabinlift.training.engine import StackedLifters, draw_noise
from cabinlift.training.optim import StackedAdam, clip_grad_norm_per_run

BATCH = 64


#: Same depth and structure as the defaults, every width 16: the kernels become trivial.
NARROW = {
    "simplebl": {"linear_size": 16},
    "semgcn": {"hid_dim": 16},
    "graformer": {"dim_model": 16},
    "graphmlp": {"channel": 16, "d_hid": 16, "token_dim": 16},
    "jointformer": {"d_model": 16, "d_inner": 16, "d_k": 8, "d_v": 8},
}


def one_step_profile(name: str, hparams: dict, runs: int, batch: int = BATCH,
                     timed_steps: int = 0) -> dict:
    states = []
    for r in range(runs):
        torch.manual_seed(r)
        states.append(build_lifter(name, **hparams).state_dict())
    stack = StackedLifters(name, hparams, states, torch.device("cpu"))
    params = list(stack.params.values())
    opt = StackedAdam(params, lr=1e-3)
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(runs, batch, 13, 2)), dtype=torch.float32)
    y = torch.as_tensor(rng.normal(size=(runs, batch, 13, 3)), dtype=torch.float32)
    m = torch.ones(runs, batch, 13, dtype=torch.bool)
    active = torch.ones(runs, dtype=torch.bool)
    gens = [torch.Generator().manual_seed(r) for r in range(runs)]
    lanes = stack.noise_lanes(batch)

    def step(k: int) -> None:
        opt.zero_grad()
        noise = draw_noise(gens, list(range(runs)), runs, lanes, torch.device("cpu"))
        stack.losses(None, noise, x, y, m).sum().backward()
        clip_grad_norm_per_run(params, 1.0)
        opt.step(active)

    step(0)
    if timed_steps:
        times = []
        for k in range(timed_steps):
            start = time.perf_counter()
            step(k + 1)
            times.append(time.perf_counter() - start)
        return {"runs": runs, "dispatch_ms": round(1e3 * statistics.median(times), 2)}
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        step(1)
    # An operator called by another operator runs inside it (no launch of its own).
    events = [e for e in prof.events() if e.name.startswith("aten::")
              and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))]
    flops = sum(e.flops or 0 for e in prof.events())
    return {"runs": runs, "top_level_aten_ops": len(events), "flops": int(flops)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    params = config.load_config(args.params)
    rows = []
    print(f"{'model':<14}{'ops x1':>9}{'ops x8':>9}{'GFLOP x1':>10}{'GFLOP x8':>10}"
          f"{'host ms x1':>12}{'host ms x8':>12}")
    for name in available():
        hp = params.hparams(name)
        a, b = one_step_profile(name, hp, 1), one_step_profile(name, hp, 8)
        narrow = {**hp, **NARROW[name]}
        ta = one_step_profile(name, narrow, 1, batch=2, timed_steps=30)
        tb = one_step_profile(name, narrow, 8, batch=2, timed_steps=30)
        print(f"{name:<14}{a['top_level_aten_ops']:>9}{b['top_level_aten_ops']:>9}"
              f"{a['flops'] / 1e9:>10.2f}{b['flops'] / 1e9:>10.2f}"
              f"{ta['dispatch_ms']:>12.2f}{tb['dispatch_ms']:>12.2f}", flush=True)
        rows.append({"model": name, "hparams": hp, "single": {**a, **ta},
                     "vectorised_8": {**b, **tb}})
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"torch": torch.__version__, "batch": BATCH,
                                         "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
