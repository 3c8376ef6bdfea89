"""The Ray executor against the local one on this machine, and what Ray buys at paper scale.

Three parts, in one run:

1. **Dispatch overhead** (measured): ``--units`` no-op units (``os.getpid``) through the local
   executor (in the calling thread) and through the Ray executor on a private local instance
   (``executor.address: null``, as many CPUs as ``--threads``), after one warm-up round, so the
   Ray number is the steady cost of submitting a task, running it in a warm worker and getting
   its result back (median and range of ``--rounds`` rounds). Also the Ray start-up:
   ``ray.init`` of a private instance, and the first unit of a job (a worker process started,
   the package imported).
2. **The demo grid** (measured): the demo data set's processed arrays and subsets are made once
   (the pipeline's first stages, by the CLI), then the ``pretrain`` stage and the ten
   ``finetune`` stages run as the CLI commands DVC runs, with the run store disabled (every run
   trains), each stage with the local executor and at once after it with Ray (a private
   instance per stage, as ``address: null`` does), so that both see the same load of the
   machine; per stage wall time, totals, the spread of the per-stage ratios, and whether both
   wrote identical bytes. Both use ``--threads`` CPUs in all: the local executor as
   ``train.workers: auto`` stacks of one thread each (a pre-training on all of them), Ray as
   that many one-CPU tasks. ``--epochs N`` trains every run N epochs (validating every epoch)
   instead of the demo profile's ``train.max_epochs``: a reduced grid, same units.
3. **The paper grid on 1, 4 and 8 GPUs** (an estimate, not a measurement): every unit's optimiser
   steps at 200 epochs without early stopping (the paper profile) from the sample counts of the
   README (*Expected runtime at paper scale*: ~2.8k frames per subject, ~145k synthetic training
   poses) and the settings of params.yaml, each step costing the host time measured by
   ``benchmarks/step_ops.py`` (``benchmarks/results/step_ops.json``; a GPU step of these small
   networks costs the time to issue it), stacks of 8 runs (``runs_per_group: auto`` on a GPU),
   one task per GPU. DVC runs the stages one after another, so the grid's time is the
   pre-training stage's makespan (its five units on the GPUs) plus each fine-tuning stage's
   (its eight stacks), each unit also paying the measured start of a fresh worker process (a
   GPU task gets one) and each stage the measured start of a private Ray instance.

    python benchmarks/ray_executor.py [--threads 2] [--units 300] [--rounds 5] [--epochs N]
        [--json benchmarks/results/ray_executor.json]
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: README, *Expected runtime at paper scale*: frames of one Drive&Act training subject at 1 fps,
#: and SyntheticCabin training poses (3 views, 8 virtual humans).
FRAMES_PER_SUBJECT = 2800
SYNTHETIC_TRAIN_POSES = 145_000
GPU_COUNTS = (1, 4, 8)


def _noop_units(n: int):
    from cabinlift.executors import Unit

    return [Unit(f"noop {i}", os.getpid) for i in range(n)]


def _spread(values: list[float], digits: int) -> dict:
    return {"median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits)}


def _ms_per_unit(executor, units: int, rounds: int, digits: int) -> dict:
    """Milliseconds per no-op unit through ``executor`` over ``rounds`` rounds, after one
    warm-up round."""
    list(executor.map(_noop_units(units), "warm-up"))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        list(executor.map(_noop_units(units), "no-op"))
        times.append(1000 * (time.perf_counter() - start) / units)
    return _spread(times, digits)


def dispatch(units: int, threads: int, rounds: int) -> dict:
    """Milliseconds per no-op unit, local vs Ray (warm), and Ray's start-up costs."""
    import torch

    from cabinlift.config import Executor
    from cabinlift.executors import LocalExecutor, open_executor

    torch.set_num_threads(threads)
    out: dict = {"units": units, "rounds": rounds}
    out["local_ms_per_unit"] = _ms_per_unit(LocalExecutor(1), units, rounds, 4)
    start = time.perf_counter()
    ray_ex = open_executor(Executor(kind="ray", address=None, cpus_per_task=1, gpus_per_task=0,
                                    max_retries=3))
    out["ray_init_s"] = round(time.perf_counter() - start, 2)
    try:
        start = time.perf_counter()
        list(ray_ex.map(_noop_units(1), "ray first unit"))
        out["ray_first_unit_s"] = round(time.perf_counter() - start, 2)
        out["ray_ms_per_unit"] = _ms_per_unit(ray_ex, units, rounds, 3)
    finally:
        ray_ex.close()
    return out


def _cabinlift(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cabinlift.cli", *args], cwd=cwd,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"cabinlift {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f.relative_to(folder).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def demo_grid(threads: int, epochs: int | None, work: Path) -> dict:
    """The demo grid's training stages, each a CLI process, local then at once Ray."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["threads"] = threads
    params["store"] = None  # every run trains
    if epochs is not None:
        params["train"].update(max_epochs=epochs, val_every=1)
    (work / "data" / "external").mkdir(parents=True)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    data_start = time.perf_counter()
    for args in (["demo", "--out", "data/raw/demo"], ["detect"], ["keypoints2d"],
                 ["normalize"], ["subsets"]):
        _cabinlift(args, work)
    out: dict = {"data_stages_s": round(time.perf_counter() - data_start, 1),
                 "models": params["models"], "threads": threads,
                 "max_epochs": params["train"]["max_epochs"],
                 "val_every": params["train"]["val_every"]}
    kinds = ("local", "ray")
    for kind in kinds:
        p = dict(params, executor={"kind": kind, "address": None, "cpus_per_task": 1,
                                   "gpus_per_task": 0, "max_retries": 3})
        (work / f"{kind}.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    stages: dict[str, dict[str, float]] = {kind: {} for kind in kinds}
    for kind in kinds:
        stages[kind]["pretrain"] = _cabinlift(
            ["--params", f"{kind}.yaml", "--timings", f"{kind}/logs", "pretrain",
             "--out", f"{kind}/pretrained", "--summary", f"{kind}/summary"], work)
    for model in params["models"]:
        for init in ("scratch", "pretrained"):
            for kind in kinds:
                extra = ["--pretrained", f"{kind}/pretrained/{model}"] \
                    if init == "pretrained" else []
                stages[kind][f"finetune_{init}@{model}"] = _cabinlift(
                    ["--params", f"{kind}.yaml", "--timings", f"{kind}/logs", "finetune",
                     "--model", model, "--init", init, *extra,
                     "--out", f"{kind}/finetuned/{init}/{model}"], work)
    for kind in kinds:
        finetune = sum(v for k, v in stages[kind].items() if k.startswith("finetune"))
        out[kind] = {"stages_s": {k: round(v, 1) for k, v in stages[kind].items()},
                     "pretrain_s": round(stages[kind]["pretrain"], 1),
                     "finetune_s": round(finetune, 1),
                     "total_s": round(sum(stages[kind].values()), 1)}
    ratios = [stages["ray"][k] / stages["local"][k] for k in stages["local"]
              if k.startswith("finetune")]
    out["finetune_stage_ray_over_local"] = _spread(ratios, 2)
    out["finetune_stage_ray_minus_local_s"] = _spread(
        [stages["ray"][k] - stages["local"][k] for k in stages["local"]
         if k.startswith("finetune")], 1)
    # the fine-tuning runs train on one thread each with both executors; the local executor's
    # pre-trainings on all `threads`, Ray's on `cpus_per_task` (1): rounding differs there, and
    # in the fine-tuning that starts from them
    out["identical_outputs"] = {
        d: _digest(work / "local" / d) == _digest(work / "ray" / d)
        for d in ("pretrained", "finetuned/scratch", "finetuned/pretrained")}
    return out


def _makespan(durations: list[float], gpus: int) -> float:
    """Longest-first list scheduling of units onto ``gpus`` (what Ray's queue does, near enough:
    it starts units in submission order, the stages submit them in setting order)."""
    loads = [0.0] * gpus
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + d)
    return max(loads)


def paper_estimate(step_ops: dict, worker_start_s: float, stage_fixed_s: float) -> dict:
    """Hours of the paper grid on 1, 4 and 8 GPUs (see the module docstring)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    paper = yaml.safe_load((ROOT / "profiles" / "paper.yaml").read_text())["params"]
    epochs, batch, stack = paper["train.max_epochs"], params["train"]["batch_size"], 8
    defs = params["subsets"]["settings"]
    per_model = {r["model"]: r for r in step_ops["results"]}
    stages: list[list[float]] = [[
        epochs * math.ceil(SYNTHETIC_TRAIN_POSES / batch) * per_model[m]["single"]["dispatch_ms"]
        / 1000 for m in params["models"]]]
    for model in params["models"]:
        single = per_model[model]["single"]["dispatch_ms"] / 1000
        stacked = per_model[model]["vectorised_8"]["dispatch_ms"] / 1000
        units = []
        for name in params["settings"]:
            d = defs[name]
            frames = d["subjects"] * FRAMES_PER_SUBJECT * d["fraction"]
            steps = epochs * math.ceil(frames / batch)
            for first in range(0, d["repetitions"], stack):
                runs = min(stack, d["repetitions"] - first)
                units.append(steps * (stacked if runs > 1 else single))
        stages += [units, units]  # scratch and pre-trained: the same stacks
    local_1 = sum(sum(s) for s in stages) / 3600
    out = {"label": "ESTIMATE from measured per-step host times, not a measurement on GPUs",
           "epochs": epochs, "frames_per_subject": FRAMES_PER_SUBJECT,
           "synthetic_train_poses": SYNTHETIC_TRAIN_POSES, "runs_per_stack": stack,
           "worker_start_s_per_unit": worker_start_s, "ray_stage_fixed_s": stage_fixed_s,
           "units": {"pretrain": len(stages[0]), "finetune_per_stage": len(stages[1]),
                     "finetune_stages": len(stages) - 1},
           "local_executor_1_gpu_h": round(local_1, 2), "ray_h": {}}
    for gpus in GPU_COUNTS:
        total = sum(_makespan([u + worker_start_s for u in s], gpus) + stage_fixed_s
                    for s in stages)
        out["ray_h"][str(gpus)] = round(total / 3600, 2)
    out["pretrain_stage_h"] = {str(g): round(_makespan(stages[0], g) / 3600, 2)
                               for g in GPU_COUNTS}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--units", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, help="a reduced grid: every run trains this many epochs")
    ap.add_argument("--skip-grid", action="store_true", help="only the dispatch overhead")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    # the private Ray instances authenticate with a token of this run only (Ray would
    # otherwise write one to ~/.ray/auth_token); the stage processes inherit it
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    result: dict = {"cpus": os.cpu_count(), "threads": args.threads,
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    result["dispatch"] = dispatch(args.units, args.threads, args.rounds)
    print(json.dumps(result["dispatch"]), flush=True)
    if not args.skip_grid:
        with tempfile.TemporaryDirectory() as tmp:
            result["demo_grid"] = demo_grid(args.threads, args.epochs, Path(tmp))
        print(json.dumps(result["demo_grid"]), flush=True)
    step_ops = json.loads((ROOT / "benchmarks" / "results" / "step_ops.json").read_text())
    result["paper_estimate"] = paper_estimate(
        step_ops, result["dispatch"]["ray_first_unit_s"], result["dispatch"]["ray_init_s"])
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result["paper_estimate"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
