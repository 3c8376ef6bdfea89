"""Where the results on the report come from: what a reader needs to trust or re-create them.

The commit and whether the working tree differed from it (every change ``git status
--porcelain`` reports, the pipeline's own uncommitted outputs included: a report written by
``dvc repro`` before its results are committed says so), the params that differ from the
closest profile (profiles/*.yaml, :mod:`cabinlift.profiles`), the hashes DVC recorded for the
data (``dvc.lock``: the inputs of the normalize stage, which holds the data roots, and the input
manifests ``data/inputs/*.json``), the versions of the packages that compute, the device and
threads, and the wall times the training stages logged. None of it changes a number of the
results, so it is read as it is when the page is written and is not a DVC dependency of the
report (dvc.lock, logs/ and the installed packages are not); it is why the page's bytes differ
between commits (``cabinlift verify`` does not compare them).
"""

from __future__ import annotations

import csv
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from cabinlift import profiles
from cabinlift.errors import CabinliftError
from cabinlift.jsonfiles import read_json

#: The packages whose versions the report lists (those not installed are listed as such):
#: the project, what computes, what runs the pipeline, and the MMLab stack where present.
PACKAGES: tuple[str, ...] = ("cabinlift", "torch", "numpy", "scipy", "pandas", "matplotlib",
                             "dvc", "mmcv", "mmengine", "mmdet", "mmpose")
#: The columns of logs/wall_times.csv (written by the evaluate stage, one row per run).
WALL_TIME_COLUMNS = ("model", "init", "setting", "repetition", "wall_time_s")


@dataclass(frozen=True)
class GitState:
    """The commit the working tree is at and how it differs from it. ``commit`` is None outside
    a git repository or before the first commit (``note`` says which), ``dirty`` None outside
    a repository; ``changes`` are ``git status --porcelain`` lines."""

    commit: str | None
    dirty: bool | None
    changes: tuple[str, ...]
    note: str = ""


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def git_state(project: Path) -> GitState:
    """:class:`GitState` of the git working tree that holds ``project``."""
    try:
        inside = _git(["rev-parse", "--is-inside-work-tree"], project)
    except OSError:
        return GitState(None, None, (), "git is not installed")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return GitState(None, None, (), "not a git repository")
    status = _git(["status", "--porcelain"], project)
    if status.returncode != 0:
        raise CabinliftError(f"{project}: `git status` failed: {status.stderr.strip()}")
    changes = tuple(line for line in status.stdout.splitlines() if line)
    head = _git(["rev-parse", "--verify", "--quiet", "HEAD"], project)
    if head.returncode != 0:
        return GitState(None, bool(changes), changes, "a git repository without a commit yet")
    return GitState(head.stdout.strip(), bool(changes), changes)


@dataclass(frozen=True)
class ProfileDiff:
    """The profile closest to the params (fewest differing keys; the first by name on a tie):
    ``changes`` are ``(key, params value, profile value)``; ``counts`` the differing keys of
    every profile."""

    name: str
    description: str
    changes: tuple[tuple[str, Any, Any], ...]
    counts: dict[str, int]


def closest_profile(params: dict[str, Any], root: Path) -> ProfileDiff | None:
    """The :class:`ProfileDiff` of ``params`` (params.yaml as a mapping) against the profiles
    in ``root``, or None where there is none."""
    names = profiles.available(root) if root.is_dir() else []
    if not names:
        return None
    loaded = {name: profiles.load_profile(name, root) for name in names}
    diffs = {name: profiles.changes(params, p, absent_ok=True) for name, p in loaded.items()}
    best = min(names, key=lambda n: (len(diffs[n]), n))
    return ProfileDiff(best, loaded[best].description, tuple(diffs[best]),
                       {n: len(d) for n, d in diffs.items()})


def data_hashes(lock: dict[str, Any]) -> list[tuple[str, str]]:
    """``(path, md5)`` of what the data are, as ``dvc.lock`` records them: every dependency of
    the normalize stage but its code manifest (the real and synthetic data roots, the 2D
    keypoints, its input manifest) and the input manifests ``data/inputs/*.json`` the check
    stage writes; sorted by path. Empty where the lock has neither stage."""
    stages = lock.get("stages") or {}
    out: dict[str, str] = {}
    for dep in (stages.get("normalize") or {}).get("deps") or []:
        if not dep["path"].startswith("data/inputs/code/"):
            out[dep["path"]] = dep.get("md5") or ""
    for o in (stages.get("check") or {}).get("outs") or []:
        path = o["path"]
        if path.startswith("data/inputs/") and "/" not in path.removeprefix("data/inputs/"):
            out[path] = o.get("md5") or ""
    return sorted(out.items())


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Python's version and each package's installed version (None: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def compute_setup(params: dict[str, Any], regime: dict[str, Any] | None
                  ) -> list[tuple[str, str]]:
    """``(what, value)`` rows of the device and threads the results were computed with: the
    params that choose them, then the numerics regime the check stage recorded
    (``data/inputs/numerics.json``: mode, library versions, device)."""
    rows = [("train.device", str(params["train"]["device"])),
            ("threads", str(params["threads"])),
            ("numerics.mode", str(params["numerics"]["mode"])),
            ("executor.kind", str(params["executor"]["kind"]))]
    for key, value in sorted((regime or {}).items()):
        rows.append((f"numerics.json: {key}", str(value)))
    return rows


@dataclass(frozen=True)
class WallTime:
    """The summed wall time of one stage's runs of one model (``reused``: runs taken from the
    run store, not trained in this repro)."""

    stage: str
    model: str
    runs: int
    seconds: float
    reused: int = 0


def _wall_times_csv(path: Path) -> list[WallTime]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != WALL_TIME_COLUMNS:
                raise CabinliftError(f"{path}: expected the columns "
                                     f"{','.join(WALL_TIME_COLUMNS)}, got {reader.fieldnames}")
            totals: dict[tuple[str, str], list[float]] = {}
            for row in reader:
                stage = f"finetune_{row['init']}"
                totals.setdefault((stage, row["model"]), []).append(float(row["wall_time_s"]))
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise CabinliftError(f"{path}: cannot be read as wall times ({exc})") from None
    return [WallTime(stage, model, len(t), sum(t)) for (stage, model), t in totals.items()]


def _pretrain_times(folder: Path) -> list[WallTime]:
    out = []
    message = "{path}: cannot be read as pre-training wall times ({error})"
    for path in sorted(folder.glob("*.json")):
        seeds = read_json(path, missing=message, unreadable=message, invalid=message,
                          not_utf8=message)
        if not isinstance(seeds, list) or not all(
                isinstance(s, dict) and "wall_time_s" in s for s in seeds):
            raise CabinliftError(f"{path}: expected a list of runs with 'wall_time_s'")
        out.append(WallTime("pretrain", path.stem, len(seeds),
                            sum(float(s["wall_time_s"]) for s in seeds),
                            sum(bool(s.get("reused")) for s in seeds)))
    return out


def wall_times(logs: Path) -> list[WallTime] | None:
    """The training stages' wall times per stage and model, from the timing logs under ``logs``
    (``pretrain/<model>.json`` of the pretrain stage, ``wall_times.csv`` of the evaluate
    stage); None where neither was recorded."""
    found: list[WallTime] = []
    if (logs / "pretrain").is_dir():
        found += _pretrain_times(logs / "pretrain")
    if (logs / "wall_times.csv").is_file():
        found += _wall_times_csv(logs / "wall_times.csv")
    return found or None
