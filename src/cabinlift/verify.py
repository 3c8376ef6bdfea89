"""``cabinlift verify``: does this machine reproduce the committed results?

The project's tracked files (as they are in the working tree) are copied to a scratch folder,
where the pipeline runs again from nothing, under DVC and without its run cache or this
project's run store, so every number is computed anew (or only the stages named, their inputs
checked out from this project's DVC cache). Then every DVC output of the new ``dvc.lock`` is
compared with the committed one, and every Table-1 cell with the committed cell, next to the
spread of that cell over its runs: a difference well inside the spread is rounding that grew
through training, one outside it is worth a look. Both sides' numerics (the committed
``data/inputs/numerics.json`` and this machine's fingerprint, :mod:`cabinlift.numerics`) are
printed, so a difference can be traced to a mode, a library version or a CPU. Outputs that
record provenance (:data:`PROVENANCE`: the report, which names the commit, the tree state, the
package versions and wall times) differ between commits and machines by design: they are named
as not compared, never compared byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cabinlift import numerics
from cabinlift.errors import CabinliftError
from cabinlift.jsonfiles import read_json

#: The exit status of ``cabinlift verify`` when the outputs differ (1 is an error).
DIFFERENT = 2
TABLE = Path("metrics") / "table1.json"
SUMMARY = Path("metrics") / "summary.json"
REGIME = Path("data") / "inputs" / "numerics.json"
#: DVC outputs that record where the results come from (commit, tree state, package versions,
#: wall times; ``cabinlift report``), not results: not compared byte for byte.
PROVENANCE: frozenset[str] = frozenset({"metrics/report.html"})


@dataclass(frozen=True)
class CellDiff:
    """One Table-1 cell on both sides; ``std`` is the committed cell's spread over its runs."""

    model: str
    init: str
    setting: str
    committed: float | None
    now: float | None
    std: float | None
    n_runs: int | None

    @property
    def diff(self) -> float | None:
        if self.committed is None or self.now is None:
            return None
        return self.now - self.committed


def lock_outputs(lock: dict[str, Any], stages: set[str] | None = None) -> dict[str, str]:
    """``{output path: hash}`` of every output ``dvc.lock`` records (of ``stages`` only, when
    given)."""
    out = {}
    for name, stage in (lock.get("stages") or {}).items():
        if stages is not None and name not in stages:
            continue
        for o in stage.get("outs", []):
            out[o["path"]] = o.get("md5") or o.get("hash") or ""
    return out


def committed_outputs(project: Path, lock: dict[str, Any], stages: set[str] | None = None
                      ) -> dict[str, str]:
    """:func:`lock_outputs` of the committed ``dvc.lock``, where an output is a file the
    repository tracks (a metric, a plot) by the MD5 of the file as it is: a committed file
    that its lock entry does not describe counts as committed."""
    import hashlib

    tracked = set(_tracked(project))
    out = lock_outputs(lock, stages)
    for path in out:
        if path in tracked and (project / path).is_file():
            out[path] = hashlib.md5((project / path).read_bytes()).hexdigest()
    return out


def compare_outputs(committed: dict[str, str], now: dict[str, str]) -> dict[str, str]:
    """``{path: "different" | "missing" | "new"}`` for every output that is not identical (the
    outputs of :data:`PROVENANCE` left out)."""
    out = {}
    for path in sorted((set(committed) | set(now)) - PROVENANCE):
        if path not in now:
            out[path] = "missing"
        elif path not in committed:
            out[path] = "new"
        elif committed[path] != now[path]:
            out[path] = "different"
    return out


def _cells(table: dict[str, Any]) -> dict[tuple[str, str, str], float]:
    return {(m, i, s): v for m, inits in table.items() if isinstance(inits, dict)
            for i, settings in inits.items() if isinstance(settings, dict)
            for s, v in settings.items()}


def compare_cells(committed: dict[str, Any], summary: dict[str, Any], now: dict[str, Any]
                  ) -> list[CellDiff]:
    """Every Table-1 cell (``metrics/table1.json``: model, init, setting) of either side with
    the committed cell's spread (``metrics/summary.json``); the mean-pose row is a cell too."""
    before, after = _cells(committed), _cells(now)
    for table, target in ((committed, before), (now, after)):
        for s, v in (table.get("mean_pose") or {}).items():
            target["mean_pose", "", s] = v
    out = []
    for key in sorted(set(before) | set(after), key=lambda k: (k[0], k[1], k[2])):
        m, i, s = key
        cell = (summary.get("cells", {}).get(m, {}).get(i, {}).get(s) or {})
        spread = cell.get("mpjpe") or {}
        out.append(CellDiff(m, i, s, before.get(key), after.get(key), spread.get("std"),
                            cell.get("n_runs")))
    return out


def _tracked(project: Path) -> list[str]:
    try:
        proc = subprocess.run(["git", "ls-files", "-z"], cwd=project, capture_output=True,
                              check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise CabinliftError(f"{project}: not a git checkout (verify copies the tracked files "
                             f"of the project: {exc})") from None
    return [p for p in proc.stdout.decode().split("\0") if p]


def scratch_copy(project: Path, dest: Path) -> Path:
    """The tracked files of ``project`` as they are in its working tree, in ``dest`` (a new
    git repository, so that DVC runs there as in the project)."""
    for rel in _tracked(project):
        src = project / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def _dvc(args: list[str], cwd: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    # DVC's progress goes to stderr, so that stdout holds only the comparison
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env,
                          stdout=sys.stderr)
    if proc.returncode:
        raise CabinliftError(f"verify: `dvc {' '.join(args)}` failed in {cwd} "
                             f"(exit {proc.returncode}); its output is above")


def rerun(project: Path, scratch: Path, stages: list[str]) -> None:
    """The pipeline again in ``scratch`` (a copy of ``project``): every stage from nothing, or
    only ``stages`` (and the check stage), their inputs checked out from ``project``'s DVC
    cache. Neither DVC's run cache nor the run store (a fresh one in the copy) is used."""
    if stages:
        _dvc(["cache", "dir", "--local", str((project / ".dvc" / "cache").resolve())], scratch)
        _dvc(["checkout", "--quiet"], scratch)
        targets = ["check", *[s for s in stages if s != "check"]]
        _dvc(["repro", "--force", "--no-run-cache", "--single-item", *targets], scratch)
    else:
        _dvc(["repro", "--force", "--no-run-cache"], scratch)


def _read_json(path: Path) -> dict[str, Any]:
    message = "{path}: cannot be read as JSON ({error})"
    return read_json(path, missing=message, unreadable=message, invalid=message,
                     not_utf8=message)


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def report(outputs: dict[str, str], n_outputs: int, cells: list[CellDiff],
           committed_regime: dict[str, Any] | None, regime: dict[str, Any],
           fingerprint: dict[str, Any], provenance: list[str] | None = None) -> str:
    """What ``cabinlift verify`` prints; ``provenance``: the outputs left out of the
    comparison (:data:`PROVENANCE`)."""
    lines = ["Numerics",
             f"  committed: {json.dumps(committed_regime, sort_keys=True)}",
             f"  this run:  {json.dumps(regime, sort_keys=True)}",
             f"  this machine: {fingerprint.get('cpu')} ({fingerprint.get('cpu_isa')}; "
             f"PyTorch kernels {fingerprint.get('cpu_capability')}), "
             f"mode {fingerprint.get('mode')}"]
    if committed_regime is not None and committed_regime != regime:
        keys = sorted(k for k in set(committed_regime) | set(regime)
                      if committed_regime.get(k) != regime.get(k))
        lines.append(f"  differs in: {', '.join(keys)}")
    if not outputs:
        lines += ["", f"DVC outputs: identical ({n_outputs} outputs, byte for byte)"]
    else:
        lines += ["", f"DVC outputs: {len(outputs)} of {n_outputs} not identical"]
        lines += [f"  {status:9s} {path}" for path, status in outputs.items()]
    if provenance:
        lines.append(f"  not compared (provenance: commit, tree state, versions, wall times): "
                     f"{', '.join(provenance)}")
    changed = [c for c in cells if c.committed != c.now]
    if not changed:
        lines += ["", f"Table 1: identical ({len(cells)} cells)"]
    else:
        lines += ["", f"Table 1: {len(changed)} of {len(cells)} cells differ (mm; std: the "
                  "committed cell's spread over its runs)",
                  f"  {'model':12s} {'init':10s} {'setting':8s} {'committed':>9s} "
                  f"{'now':>9s} {'diff':>8s} {'std':>7s} {'runs':>4s}"]
        for c in changed:
            lines.append(f"  {c.model:12s} {c.init:10s} {c.setting:8s} {_fmt(c.committed):>9s} "
                         f"{_fmt(c.now):>9s} {_fmt(c.diff):>8s} {_fmt(c.std):>7s} "
                         f"{c.n_runs if c.n_runs is not None else '—':>4}")
        within = [c for c in changed if c.diff is not None and c.std is not None
                  and abs(c.diff) <= c.std]
        lines.append(f"  {len(within)} of {len(changed)} differences are within one std of "
                     "their cell")
    return "\n".join(lines) + "\n"


def run_verify(project: Path, stages: list[str], scratch: Path | None = None,
               keep: bool = False) -> tuple[int, dict[str, Any], str]:
    """Re-run and compare (see the module docstring); returns the exit status (0 identical,
    :data:`DIFFERENT`), the comparison and its :func:`report`."""
    project = project.resolve()
    lock_path = project / "dvc.lock"
    if not lock_path.is_file():
        raise CabinliftError(f"{lock_path}: not found; there are no committed results to verify "
                             "(run the pipeline and commit dvc.lock first)")
    committed_lock = yaml.safe_load(lock_path.read_text()) or {}
    made = scratch is None
    scratch = Path(tempfile.mkdtemp(prefix="cabinlift-verify-")) if made else scratch
    if not made:
        if scratch.exists() and not scratch.is_dir():
            raise CabinliftError(f"{scratch}: the scratch folder is a file; give an empty or "
                                 "new folder")
        scratch.mkdir(parents=True, exist_ok=True)
        if any(scratch.iterdir()):
            raise CabinliftError(f"{scratch}: the scratch folder must be empty")
    try:
        scratch_copy(project, scratch)
        rerun(project, scratch, stages)
        new_lock = yaml.safe_load((scratch / "dvc.lock").read_text()) or {}
        names = None if not stages else set(stages)
        before = committed_outputs(project, committed_lock, names)
        after = lock_outputs(new_lock, names)
        provenance = sorted((set(before) | set(after)) & PROVENANCE)
        before = {p: h for p, h in before.items() if p not in PROVENANCE}
        outputs = compare_outputs(before, after)
        cells = compare_cells(_read_json(project / TABLE), _read_json(project / SUMMARY),
                              _read_json(scratch / TABLE)) if (scratch / TABLE).is_file() else []
        committed_regime = (_read_json(project / REGIME) if (project / REGIME).is_file()
                            else None)
        regime = _read_json(scratch / REGIME)
    finally:
        if made and not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    fingerprint = numerics.fingerprint()
    text = report(outputs, len(before), cells, committed_regime, regime, fingerprint,
                  provenance)
    if keep or not made:
        text += f"(the re-run is kept in {scratch})\n"
    identical = not outputs and all(c.committed == c.now for c in cells)
    result = {"identical": identical, "outputs": outputs,
              "cells": [c.__dict__ | {"diff": c.diff} for c in cells if c.committed != c.now],
              "not_compared": provenance,
              "committed_numerics": committed_regime, "numerics": regime,
              "fingerprint": fingerprint}
    return (0 if identical else DIFFERENT), result, text
