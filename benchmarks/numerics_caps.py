"""Do training's bytes depend on the CPU? Pre-training under other CPUs, emulated, per mode.

Every lifter is pre-trained by the real ``cabinlift pretrain`` command (params.yaml's
hyper-parameters; one seed, one epoch, small random arrays: the arithmetic is the pipeline's,
only shorter) under each of these machines, once in portable and once in native numerics, and
each checkpoint is hashed:

* ``host``: this machine as it is, and with a budget of 1 and of 4 threads;
* ``caps``: this machine with every library told to behave as on a CPU without AVX2, by its
  own switch (PyTorch ``ATEN_CPU_CAPABILITY=default``, NumPy ``NPY_DISABLE_CPU_FEATURES``,
  OpenBLAS ``OPENBLAS_CORETYPE=Nehalem``, oneDNN ``ONEDNN_MAX_CPU_ISA=SSE41``, MKL
  ``MKL_ENABLE_INSTRUCTIONS=SSE4_2``);
* with ``--qemu``, other CPUs emulated by ``qemu-x86_64 -cpu MODEL`` (Debian's qemu-user):
  the libraries then see another maker and other instruction sets through CPUID, as on that
  machine (Intel Haswell: AVX2; AMD EPYC Rome: AVX2; Intel Nehalem: SSE4.2, below the portable
  floor; Intel Icelake-Server: AVX-512 asked for, which qemu's emulator does not implement and
  leaves out). Emulation is slow (~50x): a few minutes per lifter.

Portable runs get the mode's environment before they start (a command that lacks it starts
itself again, which under qemu-user would leave the emulator), except on a CPU below the floor,
where ``cabinlift`` itself computes natively and leaves the environment alone. With ``--json``
each machine's row is written as it is measured, and a run started again skips the machines
that file already holds. Per machine the script records
what PyTorch and MKL report (kernel level; MKL's code path from ``MKL_VERBOSE``) and the mode in
effect; per mode, which machines gave the same bytes.

    python benchmarks/numerics_caps.py [--qemu [--qemu-cpus MODEL ...] [--no-host]]
        [--models simplebl ...] [--json benchmarks/results/numerics_caps.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

CAPS = {"ATEN_CPU_CAPABILITY": "default", "NPY_DISABLE_CPU_FEATURES": "X86_V3",
        "OPENBLAS_CORETYPE": "Nehalem", "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}
QEMU_CPUS = ("Haswell-v4", "EPYC-Rome", "Nehalem", "Icelake-Server")
#: emulated CPUs below the portable floor: ``cabinlift`` leaves their environment as it is (the
#: portable one forces AVX2 kernels, e.g. OpenBLAS's Haswell ones: an illegal instruction there)
BELOW_FLOOR = ("Nehalem",)
MODES = ("portable", "native")
PROBE = ("import json; from cabinlift import numerics; numerics.apply({mode!r}); "
         "f = numerics.fingerprint(); print(json.dumps({{k: f[k] for k in "
         "('mode', 'mode_asked', 'cpu_capability', 'probe')}}))")


def _arrays(n: int, seed: int, subjects: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 13, 2)).astype(np.float32)
    y = np.tanh(x.reshape(n, 26) @ rng.normal(size=(26, 39))).reshape(n, 13, 3) * 100
    return {"x2d": x, "y3d": y.astype(np.float32), "mask": rng.random((n, 13)) > 0.1,
            "subject": subjects.astype(np.int64)}


def prepare(work: Path, models: list[str]) -> Path:
    """Processed synthetic arrays and the params of the runs; returns the params file."""
    from cabinlift.arrays import save_arrays

    for i, (split, n) in enumerate((("train", 256), ("val", 64), ("test", 64))):
        save_arrays(work / "data" / f"synthetic_{split}.npz", _arrays(n, i, np.zeros(n)))
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["models"] = models
    params["pretrain"]["seeds"] = 1
    params["train"].update(max_epochs=1, val_every=1, device="cpu")
    params["store"]["dir"] = None
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return work / "params.yaml"


def machines(host: bool, qemu: list[str]) -> list[tuple[str, list[str], dict[str, str], int]]:
    """(label, command prefix, environment, thread budget) of every machine to compute on."""
    out = [("host", [], {}, 2), ("host, 1 thread", [], {}, 1), ("host, 4 threads", [], {}, 4),
           ("caps: no AVX2", [], dict(CAPS), 2)] if host else []
    return out + [(f"qemu {cpu}", ["qemu-x86_64", "-cpu", cpu], {}, 1) for cpu in qemu]


def _env(mode: str, extra: dict[str, str]) -> dict[str, str]:
    from cabinlift import numerics

    env = {k: v for k, v in os.environ.items()
           if k not in numerics.PORTABLE_ENV and k not in CAPS}
    env.update(extra)
    env.update(numerics.environment(mode))  # portable overrides the caps it has a switch for
    env["TQDM_DISABLE"] = "1"
    return env


def run(work: Path, label: str, prefix: list[str], extra: dict[str, str], threads: int,
        mode: str, models: list[str]) -> dict:
    """One machine, one mode: its fingerprint, what MKL says it runs, checkpoint digests."""
    below = any(cpu in label for cpu in BELOW_FLOOR)
    env = _env("native" if below else mode, extra)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["numerics"]["mode"] = mode
    params["threads"] = threads
    tag = f"{label}-{mode}".replace(" ", "_").replace(",", "").replace(":", "")
    (work / f"{tag}.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    probe = subprocess.run([*prefix, sys.executable, "-c", PROBE.format(mode=mode)],
                           env={**env, "MKL_VERBOSE": "1"}, capture_output=True, text=True,
                           check=True)
    lines = probe.stdout.splitlines()
    mkl = next((ln for ln in lines if ln.startswith("MKL_VERBOSE oneMKL")), "")
    fingerprint = json.loads(next(ln for ln in lines if ln.startswith("{")))
    start = time.perf_counter()
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "cabinlift", "--params", f"{tag}.yaml", "--timings",
         f"logs/{tag}", "pretrain", "--processed", "data", "--out", f"out/{tag}",
         "--summary", f"summary/{tag}"], cwd=work, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{label} {mode}: {proc.stderr[-2000:]}")
    digests = {m: hashlib.sha256((work / "out" / tag / m / "seed0.pt").read_bytes())
               .hexdigest()[:16] for m in models}
    return {"machine": label, "mode": mode, "threads": threads, "env": extra,
            "mkl": mkl.split(" for ")[-1].split(",")[0] if mkl else None,
            "warning": next((ln for ln in proc.stderr.splitlines() if "warning" in ln), None),
            **fingerprint, "seconds": round(time.perf_counter() - start, 1),
            "checkpoints": digests}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*",
                    default=["simplebl", "semgcn", "graformer", "graphmlp", "jointformer"])
    ap.add_argument("--qemu", action="store_true", help="also the CPUs emulated by qemu-user")
    ap.add_argument("--qemu-cpus", nargs="*", default=list(QEMU_CPUS), metavar="MODEL",
                    help=f"the CPUs to emulate with --qemu (default: {' '.join(QEMU_CPUS)})")
    ap.add_argument("--no-host", action="store_true",
                    help="only the emulated CPUs (the host rows are a separate, faster run)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.qemu and shutil.which("qemu-x86_64") is None:
        raise SystemExit("--qemu needs qemu-x86_64 (Debian: apt-get install qemu-user)")
    work = Path(tempfile.mkdtemp(prefix="numerics-caps-"))
    prepare(work, args.models)
    rows = _done(args.json, args.models)
    for label, prefix, extra, threads in machines(not args.no_host,
                                                  args.qemu_cpus if args.qemu else []):
        for mode in MODES:
            if any(r["machine"] == label and r["mode_asked"] == mode for r in rows):
                continue  # measured by an earlier, interrupted run
            row = run(work, label, prefix, extra, threads, mode, args.models)
            rows.append(row)
            _write(args.json, rows, {})
            print(f"{label:<24}{mode:<9} in effect {row['mode']:<9} PyTorch "
                  f"{row['cpu_capability']:<8} MKL {row['mkl']!s:<48} "
                  + " ".join(row["checkpoints"].values()), flush=True)
    summary = {}
    for mode in MODES:
        asked = [r for r in rows if r["mode"] == mode]  # in effect: below the floor, native
        summary[mode] = {m: len({r["checkpoints"][m] for r in asked}) for m in args.models}
        print(f"{mode}: distinct checkpoints per lifter over {len(asked)} machines: "
              f"{summary[mode]}")
    _write(args.json, rows, summary)
    shutil.rmtree(work, ignore_errors=True)


def _done(path: Path | None, models: list[str]) -> list[dict]:
    """The rows an earlier run of the same lifters wrote to ``path`` (emulation is slow: an
    interrupted run goes on where it stopped)."""
    if path is None or not path.is_file():
        return []
    rows = json.loads(path.read_text())["rows"]
    return [r for r in rows if sorted(r["checkpoints"]) == sorted(models)]


def _write(path: Path | None, rows: list[dict], summary: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"rows": rows, "distinct_per_mode": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
