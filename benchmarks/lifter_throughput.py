"""Training and inference throughput of the five lifters on the CPU.

Training: samples/s of one full step at batch 64 (forward, the model's training loss, backward,
gradient-norm clip 1.0, ``torch.optim.Adam``) of one model on fixed tensors: the model's own
cost. ``training_engine.py`` measures whole training loops, single and vectorised.
Inference: samples/s of an eval-mode forward at batch 1024 under ``torch.inference_mode``.
Every model is measured at its official default hyper-parameters, and again at those of
``--params`` (default params.yaml) where they differ (e.g. the demo profile's quarter-width
GraphMLP). Threads default to 2, the project's CI
machine. Each number is the best of three timing windows; on a machine shared with other jobs,
two threads can be slowed down 10x or more (OpenMP threads waiting for a busy core): check the
load before trusting them.

    python benchmarks/lifter_throughput.py [--threads 2] [--models simplebl semgcn ...]
        [--json benchmarks/results/lifter_throughput.json]

Absolute numbers depend on the machine and its load; for the speed relative to the official
model code, ``official_side_by_side.py`` times both in one process, interleaved.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import time
from pathlib import Path

import torch

from cabinlift import config
from cabinlift.lifters import available, build_lifter, lifter_class


def _timed(fn, min_seconds: float, min_iters: int, repeats: int = 3) -> float:
    """Seconds per call of ``fn`` after a warm-up: the best of ``repeats`` windows of at least
    ``min_seconds / repeats`` and ``min_iters`` calls each (the best window is the least
    disturbed by other processes on a shared machine)."""
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if n >= min_iters and elapsed >= min_seconds / repeats:
                break
        best = min(best, elapsed / n)
    return best


def train_throughput(name: str, hparams: dict, batch: int = 64, seconds: float = 6.0) -> float:
    """Training samples/s: forward + loss + backward + clip 1.0 + Adam."""
    torch.manual_seed(0)
    model = build_lifter(name, **hparams).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    x = torch.randn(batch, model.num_joints, 2)
    y = torch.randn(batch, model.num_joints, 3)
    mask = torch.rand(batch, model.num_joints) > 0.1

    def step() -> None:
        opt.zero_grad()
        loss = model.training_loss(x, y, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()

    return batch / _timed(step, seconds, 5)


def infer_throughput(name: str, hparams: dict, batch: int = 1024, seconds: float = 6.0) -> float:
    """Inference samples/s of an eval-mode forward under ``inference_mode``."""
    torch.manual_seed(0)
    model = build_lifter(name, **hparams).eval()
    x = torch.randn(batch, model.num_joints, 2)

    def fwd() -> None:
        with torch.inference_mode():
            model(x)

    return batch / _timed(fwd, seconds, 3)


def configurations(models: list[str], params_path: Path) -> list[tuple[str, str, dict]]:
    """(label, model, hparams): the official defaults, plus params.yaml's where they differ."""
    params = config.load_config(params_path) if params_path.is_file() else None
    out = []
    for name in models:
        out.append((name, name, {}))
        custom = params.hparams(name) if params is not None else {}
        sig = inspect.signature(lifter_class(name).__init__).parameters
        changed = {k: v for k, v in custom.items() if k not in sig or sig[k].default != v}
        if changed:
            out.append((f"{name} ({params_path.name})", name, changed))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs="*", default=available())
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--seconds", type=float, default=6.0, help="minimum timing per measurement")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {load:.2f} at start")
    print(f"{'model':<32}{'params':>11}{'train/s':>10}{'infer/s':>10}")
    rows = []
    for label, name, hparams in configurations(args.models, args.params):
        n_params = sum(p.numel() for p in build_lifter(name, **hparams).parameters())
        tr = train_throughput(name, hparams, seconds=args.seconds)
        inf = infer_throughput(name, hparams, seconds=args.seconds)
        print(f"{label:<32}{n_params:>11,}{tr:>10,.0f}{inf:>10,.0f}", flush=True)
        rows.append({"model": name, "hparams": hparams, "parameters": n_params,
                     "train_samples_per_s": round(tr, 1), "infer_samples_per_s": round(inf, 1)})
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "torch": torch.__version__, "threads": args.threads, "cpus": os.cpu_count(),
            "load_average_at_start": round(load, 2), "batch_train": 64, "batch_infer": 1024,
            "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
