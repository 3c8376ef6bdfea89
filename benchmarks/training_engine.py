"""Training throughput of the engine against a plain PyTorch loop, per lifter.

For each model (at the hyper-parameters of ``--params``, default params.yaml), samples/s of
training at batch 64 for

* (a) ``plain``: the usual single-run loop: ``DataLoader(TensorDataset, shuffle=True)``,
  ``torch.optim.Adam``, ``clip_grad_norm_``, ``loss.item()`` logged every step;
* (b) ``engine_1``: :func:`cabinlift.training.train_runs` with one run;
* (c) ``engine_8``: :func:`cabinlift.training.train_runs` with 8 runs trained together (each on
  its own rows), counting the samples of all runs.

Each number is the steady-state rate of one epoch of ``--steps`` batches per run: the time of a
run of ``1 + epochs`` epochs minus that of 1 epoch (so model construction, the final validation
and the start-up cancel out), the median of ``--repeats`` such measurements. Threads default to
2, the project's CI machine; check the load average printed at the start before trusting the
numbers on a shared machine.

    python benchmarks/training_engine.py [--models simplebl ...] [--threads 2] [--steps 20]
        [--json benchmarks/results/training_engine.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from cabinlift import config
from cabinlift.lifters import available, build_lifter
from cabinlift.training.data import PoseTensors
from cabinlift.training.recipe import Recipe, RunSpec, train_runs

BATCH = 64
RECIPE = Recipe(lr=1e-3, lr_decay=0.96, batch_size=BATCH, grad_clip=1.0, max_epochs=1,
                val_every=10_000, patience=10_000, target_unit_mm=50.0, eval_batch_size=4096)


def _arrays(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 13, 2)).astype(np.float32)
    y = (x.reshape(n, 26) @ rng.normal(size=(26, 39))).reshape(n, 13, 3).astype(np.float32)
    return {"x2d": x, "y3d": y * 50.0, "mask": rng.random((n, 13)) > 0.1}


def plain_epoch_seconds(name: str, hparams: dict, n: int, epochs: int) -> float:
    """Seconds for ``epochs`` epochs of the plain loop over ``n`` samples (after one warm-up
    epoch)."""
    a = _arrays(n, 0)
    ds = TensorDataset(torch.as_tensor(a["x2d"]), torch.as_tensor(a["y3d"] / 50.0),
                       torch.as_tensor(a["mask"]))
    loader = DataLoader(ds, batch_size=BATCH, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = build_lifter(name, **hparams).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    log: list[float] = []

    def epoch() -> None:
        for x, y, m in loader:
            opt.zero_grad()
            loss = model.training_loss(x, y, m)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            log.append(loss.item())

    epoch()
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return time.perf_counter() - start


def engine_seconds(name: str, hparams: dict, n: int, runs: int, epochs: int) -> float:
    """Seconds of ``train_runs`` for ``runs`` runs of ``n`` samples each, ``epochs`` epochs."""
    pool = PoseTensors.from_arrays(_arrays(n * runs, 0), RECIPE.target_unit_mm, torch.device("cpu"))
    val = PoseTensors.from_arrays(_arrays(64, 1), RECIPE.target_unit_mm, torch.device("cpu"))
    specs = [RunSpec(100 + r, np.arange(r * n, (r + 1) * n)) for r in range(runs)]
    recipe = dataclasses.replace(RECIPE, max_epochs=epochs)
    start = time.perf_counter()
    train_runs(name, hparams, specs, pool, val, recipe, desc=f"bench {name}")
    return time.perf_counter() - start


def measure(name: str, hparams: dict, steps: int, epochs: int, repeats: int) -> dict:
    n = BATCH * steps
    plain, one, eight = [], [], []
    for _ in range(repeats):
        plain.append(n * epochs / plain_epoch_seconds(name, hparams, n, epochs))
        one.append(n * epochs / (engine_seconds(name, hparams, n, 1, 1 + epochs)
                                 - engine_seconds(name, hparams, n, 1, 1)))
        eight.append(8 * n * epochs / (engine_seconds(name, hparams, n, 8, 1 + epochs)
                                       - engine_seconds(name, hparams, n, 8, 1)))
    med = {k: statistics.median(v) for k, v in (("plain", plain), ("engine_1", one),
                                                ("engine_8", eight))}
    return {
        "model": name, "hparams": hparams,
        "samples_per_s": {k: round(v, 1) for k, v in med.items()},
        "all_samples_per_s": {"plain": [round(v, 1) for v in plain],
                              "engine_1": [round(v, 1) for v in one],
                              "engine_8": [round(v, 1) for v in eight]},
        "speedup_engine_1": round(med["engine_1"] / med["plain"], 2),
        "speedup_engine_8": round(med["engine_8"] / med["plain"], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=available())
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20, help="batches per run and epoch")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    params = config.load_config(args.params)
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {load:.2f} at start; samples/s at batch {BATCH}")
    print(f"{'model':<14}{'plain':>10}{'engine x1':>11}{'engine x8':>11}{'x1/plain':>10}"
          f"{'x8/plain':>10}")
    rows = []
    for name in args.models:
        hparams = params.hparams(name)
        row = measure(name, hparams, args.steps, args.epochs, args.repeats)
        s = row["samples_per_s"]
        print(f"{name:<14}{s['plain']:>10,.0f}{s['engine_1']:>11,.0f}{s['engine_8']:>11,.0f}"
              f"{row['speedup_engine_1']:>10.2f}{row['speedup_engine_8']:>10.2f}", flush=True)
        rows.append(row)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "torch": torch.__version__, "threads": args.threads, "cpus": os.cpu_count(),
            "load_average_at_start": round(load, 2), "batch": BATCH, "steps": args.steps,
            "epochs": args.epochs, "repeats": args.repeats, "params": str(args.params),
            "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
