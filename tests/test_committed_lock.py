"""The committed dvc.lock is the record of the repository as it is: with the demo's outputs in
place (from the DVC cache or a remote), `dvc repro` of a clone would re-run nothing but the
always-run `check` stage, and that stage writes the manifests the lock records.

A source file, a stage's command or a param changed after the last demo run, without its
dvc.lock, would make every user's first `dvc repro` re-run the stages that read it, and the
committed metrics would no longer be what the committed code computes. DVC itself compares
every dependency the repository holds (the outputs of stages are not in a clone and are skipped);
the code manifests (data/inputs/code/*.json, what the training stages depend on instead of
source files) are written by the real `check` command and compared byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict:
    return yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]


def _produced(path: str, outs: set[str]) -> bool:
    """Whether a stage writes ``path``, something inside it, or a folder it lies in."""
    return any(path == o or path.startswith(o + "/") or o.startswith(path + "/") for o in outs)


def test_check_writes_the_manifests_the_lock_records(tmp_path, monkeypatch):
    from cabinlift.cli import main

    monkeypatch.chdir(ROOT)  # the manifests name files relative to the project folder
    out = tmp_path / "inputs"
    assert main(["--timings", str(tmp_path / "logs"), "check", "--out", str(out)]) == 0
    recorded = {o["path"]: o["md5"] for o in _lock()["check"]["outs"]}
    written = {f"data/inputs/{f.relative_to(out).as_posix()}":
               hashlib.md5(f.read_bytes()).hexdigest()
               for f in sorted(out.rglob("*.json"))}
    assert written == recorded


def test_every_dependency_in_the_repository_is_as_the_lock_records():
    from dvc.repo import Repo

    changed = []
    with Repo(str(ROOT)) as repo:
        names = {s.addressing for s in repo.index.stages}
        assert sorted(set(_lock()) ^ names) == [], (
            "dvc.lock and dvc.yaml name different stages (an entry of a stage that is gone, or "
            "a stage never run)")
        stages = [s for s in repo.index.stages if s.addressing != "check"]
        outs = {o.def_path for s in repo.index.stages for o in s.outs}
        for stage in stages:
            if stage.changed_stage():
                changed.append(f"{stage.addressing}: command or stage definition")
            for dep in stage.deps:
                if not dep.def_path.endswith("params.yaml") and _produced(dep.def_path, outs):
                    continue
                status = dep.status()
                if status and any(status.values()):
                    changed.append(f"{stage.addressing}: {dict(status)}")
    assert changed == [], "dvc.lock is out of date; run the demo (`dvc repro`) and commit it"
