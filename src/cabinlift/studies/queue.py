"""Running a study: its variants queued as DVC experiments and worked off by DVC's queue.

Each variant becomes ``dvc exp run --queue -n <study>-<variant> -S ...``; ``dvc queue start -j
N`` starts N workers, each running one experiment at a time in its own temporary copy of the
repository (stages whose dependencies and params a variant leaves unchanged come from DVC's run
cache, so the scratch runs are trained once for the whole study). The command then follows the
queue until every variant has finished, one line per variant and a progress bar. A variant that
already has an experiment on the current commit is not queued again unless ``force``. With
``ray`` every variant also sets ``executor.kind=ray`` (where the units run, never what they
compute: docs/cluster.md)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from cabinlift.errors import CabinliftError
from cabinlift.studies.definition import Study

DVC = [sys.executable, "-m", "dvc"]
#: Queue task states that are final.
DONE = ("Success", "Failed")


def _dvc(args: list[str]) -> str:
    proc = subprocess.run(DVC + args, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise CabinliftError(f"dvc {' '.join(args[:3])} failed: {(lines or ['(no output)'])[-1]}")
    return proc.stdout


def experiments_at_head() -> dict[str, str]:
    """Experiment name -> commit of the experiments whose baseline is HEAD."""
    from dvc.repo import Repo

    with Repo(".") as repo:
        found = repo.experiments.ls(rev="HEAD")
    return {name: sha for exps in found.values() for name, sha in exps if sha}


def queue_status() -> list[dict[str, Any]]:
    """DVC's queue tasks (``dvc queue status``): rev, name and status of each."""
    from dvc.repo import Repo

    with Repo(".") as repo:
        return [{"rev": t["rev"], "name": t["name"], "status": t["status"]}
                for t in repo.experiments.celery_queue.status()]


def queue_variants(study: Study, force: bool, ray: bool, waiting: set[str],
                   echo: Callable[[str], None]) -> list[str]:
    """Queue every variant that has no experiment on HEAD (all with ``force``, after removing
    their experiments) and is not ``waiting`` in DVC's queue already (from a ``study run``
    that stopped following); return the experiment names queued."""
    done = experiments_at_head()
    queued = []
    for variant in study.variants:
        name = study.experiment(variant)
        if name in waiting:
            echo(f"{name}: already in DVC's queue; followed, not queued again")
            continue
        if name in done and not force:
            echo(f"{name}: already run on this commit ({done[name][:7]}); --force runs it again")
            continue
        if name in done:
            _dvc(["exp", "remove", name])
        args = study.set_args(variant) + (["-S", "executor.kind=ray"] if ray else [])
        _dvc(["exp", "run", "--queue", "-n", name, *args])
        echo(f"{name}: queued ({' '.join(args[1::2])})")
        queued.append(name)
    return queued


def follow(names: list[str], before: set[str], poll_s: float,
           echo: Callable[[str], None]) -> dict[str, str]:
    """Wait until every queued experiment of ``names`` (tasks not among the revs ``before``)
    has finished; one line per finished one; return name -> final status."""
    final: dict[str, str] = {}
    with tqdm(total=len(names), desc="variants", unit="exp", file=sys.stderr) as bar:
        while len(final) < len(names):
            tasks = [t for t in queue_status() if t["rev"] not in before and t["name"] in names]
            for t in tasks:
                if t["status"] in DONE and t["name"] not in final:
                    final[t["name"]] = t["status"]
                    bar.update(1)
                    tqdm.write(f"{t['name']}: {t['status'].lower()}", file=sys.stderr)
            running = [t["name"] for t in tasks if t["status"] == "Running"]
            bar.set_postfix_str(", ".join(running))
            if len(final) < len(names) and not tasks:
                raise CabinliftError(f"the queue holds none of {', '.join(names)}: see "
                                     f"`dvc queue status`")
            if len(final) < len(names):
                time.sleep(poll_s)
    return final


def run_study(study: Study, jobs: int, force: bool = False, ray: bool = False,
              poll_s: float = 5.0, echo: Callable[[str], None] = print) -> dict[str, str]:
    """Queue the study's variants, start ``jobs`` queue workers and follow them to the end.
    Returns experiment name -> ``Success``/``Failed``; raises when a variant failed (naming
    ``dvc queue logs``), after all have finished."""
    if jobs < 1:
        raise CabinliftError(f"--jobs must be at least 1, got {jobs}")
    tasks = queue_status()
    mine = {study.experiment(v) for v in study.variants}
    waiting = {t["name"]: t["rev"] for t in tasks
               if t["name"] in mine and t["status"] not in DONE}
    before = {t["rev"] for t in tasks} - set(waiting.values())
    names = queue_variants(study, force, ray, set(waiting), echo) + list(waiting)
    if not names:
        echo(f"study {study.name}: every variant has run on this commit; "
             f"`cabinlift study report {study.name}` compares them")
        return {}
    # the workers DVC starts outlive the command and would hold a captured pipe open until
    # the queue is empty: their output goes nowhere (`dvc queue logs NAME` has each one's)
    code = subprocess.call(DVC + ["queue", "start", "-j", str(jobs)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    if code:
        raise CabinliftError(f"dvc queue start failed (exit {code}): see `dvc queue status`")
    echo(f"study {study.name}: {len(names)} experiment(s) queued, {jobs} worker(s); Ctrl-C "
         f"stops following, not the queue (`dvc queue status`, `dvc queue kill NAME`)")
    final = follow(names, before, poll_s, echo)
    failed = [n for n, s in final.items() if s != "Success"]
    if failed:
        raise CabinliftError(f"{len(failed)} of {len(final)} variant(s) failed: "
                             + "; ".join(f"{n} (`dvc queue logs {n}`)" for n in failed))
    return final
