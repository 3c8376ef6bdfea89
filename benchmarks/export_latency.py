"""Latency of each lifter as it runs in a car: PyTorch eager, TorchScript and onnxruntime side
by side in one process, at batch 1 (one driver, one frame) and batch 64, on one CPU thread;
and each exported file's largest difference from eager on the demo test set.

Each lifter's demo checkpoint (``--checkpoint-glob``, default the pre-trained eight-subject run
0) is exported with ``cabinlift export``'s code to a scratch folder (without the demo's
checkpoints or test set, as in a fresh clone: params.yaml's lifters with random weights, and
random inputs). Timing interleaves the
three runtimes: per round, each runs ``--calls`` calls per batch size; a round's figure is its
median call, the result the median over ``--rounds`` rounds with their min-max. On a machine
shared with other jobs, check the load before trusting absolute numbers; the ratios between
runtimes of one round are what the interleaving protects.

    python benchmarks/export_latency.py [--rounds 7] [--calls 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from cabinlift import config
from cabinlift.export import contract as cx
from cabinlift.export.export import median_call_seconds
from cabinlift.export.graph import InMillimetres, write_export
from cabinlift.export.runtime import load_exported
from cabinlift.lift import load_lifter
from cabinlift.lifters import available, build_lifter

BATCHES = (1, 64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=available())
    ap.add_argument("--checkpoint", default="models/finetuned/pretrained/{model}/subj8/run00.pt")
    ap.add_argument("--test", default="data/processed/real_test.npz")
    ap.add_argument("--params", default="params.yaml", help="hyper-parameters without a checkpoint")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)  # before onnxruntime sessions are made: they take this count
    if Path(args.test).is_file():
        with np.load(args.test) as z:
            test = np.ascontiguousarray(z["x2d"], dtype=np.float32)
    else:  # no demo run here (a fresh clone): poses of the normalised inputs' spread
        print(f"{args.test} not found: random inputs and, without checkpoints, random weights")
        test = np.random.default_rng(0).normal(0, 0.3, (148, 13, 2)).astype(np.float32)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, 1 thread, {len(test)} test poses, load {load:.2f}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            ckpt = Path(args.checkpoint.format(model=model))
            if ckpt.is_file():
                lifter = load_lifter(ckpt)
                net, unit, hparams, meta = (lifter.model, lifter.target_unit_mm, lifter.hparams,
                                            lifter.meta)
            else:
                params = config.load_config(args.params)
                torch.manual_seed(0)
                hparams, unit, meta = params.hparams(model), params.train.target_unit_mm, {}
                net = build_lifter(model, **hparams)
            module = InMillimetres(net, unit).eval()
            doc = cx.contract(model, hparams, unit, False, 5, meta)
            runs = {"eager": None, "torchscript": None, "onnx": None}
            for fmt, suffix in (("torchscript", ".pt"), ("onnx", ".onnx")):
                path = Path(tmp) / f"{model}{suffix}"
                write_export(module, doc, fmt, path)
                runs[fmt] = load_exported(path)

            def eager(x: np.ndarray, module: InMillimetres = module) -> np.ndarray:
                with torch.inference_mode():
                    return module(torch.from_numpy(x)).numpy()

            fns = {"eager": eager, "torchscript": runs["torchscript"].predict,
                   "onnx": runs["onnx"].predict}
            want = eager(test)
            parity = {k: float(np.abs(fns[k](test) - want).max()) for k in ("torchscript", "onnx")}
            rng = np.random.default_rng(0)
            inputs = {b: test[rng.choice(len(test), b)] for b in BATCHES}
            for fn in fns.values():
                for x in inputs.values():
                    fn(x)  # warm-up
            rounds: dict[str, dict[int, list[float]]] = {k: {b: [] for b in BATCHES} for k in fns}
            for _ in range(args.rounds):
                for b, x in inputs.items():
                    for k, fn in fns.items():
                        rounds[k][b].append(median_call_seconds(fn, (x,), args.calls))
            results[model] = {"max_abs_diff_mm": parity, "ms": {
                k: {str(b): {"median": 1000 * statistics.median(v), "min": 1000 * min(v),
                             "max": 1000 * max(v)} for b, v in per.items()}
                for k, per in rounds.items()}}
            for b in BATCHES:
                row = "  ".join(f"{k} {1000 * statistics.median(rounds[k][b]):8.3f} "
                                f"[{1000 * min(rounds[k][b]):.3f}-{1000 * max(rounds[k][b]):.3f}]"
                                for k in fns)
                print(f"{model:<12} batch {b:>3}: {row} ms", flush=True)
            print(f"{model:<12} max |export - eager| on the test set: "
                  f"torchscript {parity['torchscript']:.2e} mm, onnx {parity['onnx']:.2e} mm")
    if args.json:
        args.json.write_text(json.dumps({"load": load, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
