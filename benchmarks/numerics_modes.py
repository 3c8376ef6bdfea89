"""What portable numerics cost: training steps per second of each lifter, portable vs native.

Portable and native differ in how the libraries are set up when a process starts (PyTorch's
kernel level, MKL's code path, oneDNN), which cannot change inside one process; so each round
runs one worker process per mode, back to back, the mode going first swapped every round, and
the ratio portable/native is taken per round. A worker trains each lifter (params.yaml's
hyper-parameters) as the pipeline does, one run through :func:`cabinlift.training.train_runs`
on one thread, and reports steady-state steps/s: the time of ``1 + epochs`` epochs of
``--steps`` batches of 64 minus that of one epoch (:func:`training_engine.engine_seconds`).

With ``--mkl-only`` a third worker per round computes natively with only MKL's
vendor-independent branch (``MKL_CBWR=COMPATIBLE``), to tell how much of the cost is MKL's.

    python benchmarks/numerics_modes.py [--models simplebl ...] [--rounds 5] [--steps 20]
        [--mkl-only] [--json benchmarks/results/numerics_modes.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = ("portable", "native")
MKL_ONLY = "native_mkl_compatible"  # native, but MKL on its vendor-independent branch


def worker(mode: str, models: list[str], steps: int, epochs: int, params: Path) -> dict:
    """Steps/s of every model under ``mode`` (this process was started with its environment)."""
    import torch

    sys.path.insert(0, str(HERE))
    from training_engine import BATCH, engine_seconds

    from cabinlift import config, numerics

    numerics.apply(mode)
    torch.set_num_threads(1)
    p = config.load_config(params)
    out = {"fingerprint": numerics.fingerprint(), "steps_per_s": {}}
    n = BATCH * steps
    for model in models:
        hparams = p.hparams(model)
        seconds = (engine_seconds(model, hparams, n, 1, 1 + epochs)
                   - engine_seconds(model, hparams, n, 1, 1))
        out["steps_per_s"][model] = steps * epochs / seconds
    return out


def _run_worker(mode: str, args: argparse.Namespace) -> dict:
    from cabinlift import numerics

    env = {k: v for k, v in os.environ.items() if k not in numerics.PORTABLE_ENV}
    if mode == MKL_ONLY:
        env["MKL_CBWR"] = numerics.PORTABLE_ENV["MKL_CBWR"]
    else:
        env.update(numerics.environment(mode))
    worker_mode = "native" if mode == MKL_ONLY else mode
    cmd = [sys.executable, __file__, "--worker", worker_mode, "--steps", str(args.steps),
           "--epochs", str(args.epochs), "--params", str(args.params), "--models", *args.models]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*",
                    default=["simplebl", "semgcn", "graformer", "graphmlp", "jointformer"])
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20, help="batches per epoch")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    ap.add_argument("--mkl-only", action="store_true",
                    help="also a native worker with only MKL_CBWR=COMPATIBLE")
    ap.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.models, args.steps, args.epochs,
                                args.params)))
        return
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} at start; {args.rounds} rounds, one worker per mode, "
          "1 thread, steps/s at batch 64", flush=True)
    rounds = []
    kinds = (*MODES, MKL_ONLY) if args.mkl_only else MODES
    for r in range(args.rounds):
        order = kinds if r % 2 == 0 else kinds[::-1]
        got = {mode: _run_worker(mode, args) for mode in order}
        rounds.append(got)
        print(f"round {r + 1}: " + "; ".join(
            f"{m} p/n {got['portable']['steps_per_s'][m] / got['native']['steps_per_s'][m]:.2f}"
            for m in args.models), flush=True)
    rows = []
    print(f"{'model':<13}{'portable':>10}{'native':>10}  portable/native (median, IQR, range)")
    for m in args.models:
        ratios = [g["portable"]["steps_per_s"][m] / g["native"]["steps_per_s"][m]
                  for g in rounds]
        port = statistics.median(g["portable"]["steps_per_s"][m] for g in rounds)
        nat = statistics.median(g["native"]["steps_per_s"][m] for g in rounds)
        lo, hi = _quartiles(ratios)
        row = {"model": m, "portable_steps_per_s": round(port, 2),
               "native_steps_per_s": round(nat, 2)}
        if args.mkl_only:
            mkl = [g[MKL_ONLY]["steps_per_s"][m] / g["native"]["steps_per_s"][m] for g in rounds]
            row["mkl_only_over_native_median"] = round(statistics.median(mkl), 3)
            row["mkl_only_over_native"] = [round(x, 3) for x in mkl]
        rows.append({**row,
                     "ratio_median": round(statistics.median(ratios), 3),
                     "ratio_iqr": [round(lo, 3), round(hi, 3)],
                     "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
                     "ratios": [round(x, 3) for x in ratios]})
        print(f"{m:<13}{port:>10.1f}{nat:>10.1f}  {statistics.median(ratios):.2f} "
              f"(IQR {lo:.2f}-{hi:.2f}; all {min(ratios):.2f}-{max(ratios):.2f})"
              + (f"; MKL branch alone / native {row['mkl_only_over_native_median']:.2f}"
                 if args.mkl_only else ""))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "load_average_at_start": round(load, 2), "rounds": args.rounds,
            "steps": args.steps, "epochs": args.epochs, "threads": 1, "batch": 64,
            "params": str(args.params), "results": rows,
            "fingerprints": {m: rounds[0][m]["fingerprint"] for m in MODES},
            "all_rounds": [{m: g[m]["steps_per_s"] for m in kinds} for g in rounds]},
            indent=1) + "\n")


if __name__ == "__main__":
    main()
