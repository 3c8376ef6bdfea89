"""Editing a module re-runs exactly the stages that execute it, through the real `dvc status`,
and the run store never hands back a run trained by other code.

A copy of the project gets a dvc.lock in which every stage is up to date (placeholders for the
data, `dvc commit`); then each module of src/cabinlift, one at a time, gets a harmless byte
appended, the code manifests are written from the copy's sources as `cabinlift check` writes
them, and `dvc status` must list exactly the stages whose closure holds the module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dvcrepo import DVC, base_params, make_repo, run
from tinydata import write_processed

from cabinlift import config, sources
from cabinlift.inputs import write_manifests
from cabinlift.lifters import REGISTRY

pytestmark = pytest.mark.slow

TRAINING = ("finetune_scratch", "finetune_pretrained")
EVERY_STAGE = {"demo", "detect", "keypoints2d", "normalize", "subsets", "pretrain", "evaluate",
               "report", *(f"{s}@{m}" for s in TRAINING for m in REGISTRY)}


def _placeholders(repo: Path) -> None:
    """Every dependency and output of every stage but check, as a small file (a path with a
    suffix) or a folder holding one."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        paths = {Path(p.fs_path) for s in dvc.index.stages if s.name != "check"
                 for p in (*s.deps, *s.outs) if not p.fs_path.endswith(".yaml")}
    for path in sorted(paths, key=lambda p: len(p.parts), reverse=True):
        if path.exists() or "inputs" in path.parts:
            continue
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("placeholder\n")
        else:
            path.mkdir(parents=True, exist_ok=True)
            (path / "placeholder").write_text("placeholder\n")


def _stale(repo: Path) -> set[str]:
    """The stages `dvc status` finds out of date (check, always run, left out)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        status = dvc.status()
    return {name.rpartition(":")[2] for name in status} - {"check"}


class CodeStatus:
    """The stages whose code dependencies DVC finds changed against dvc.lock: what `dvc status`
    reports for them, from DVC's own dependency objects of one index (building the index
    re-reads dvc.yaml, dvc.lock and params.yaml: ~1 s, which the loop over every module would
    pay some 80 times)."""

    def __init__(self, repo: Path) -> None:
        from dvc.repo import Repo

        self.dvc = Repo(str(repo))
        self.deps = [(stage.name, dep) for stage in self.dvc.index.stages
                     if stage.name != "check" for dep in stage.deps
                     if "/data/inputs/code/" in dep.fs_path]

    def __call__(self, repo: Path) -> set[str]:
        return {name for name, dep in self.deps if any(dep.status().values())}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, config.Params]:
    repo = make_repo(tmp_path_factory.mktemp("codedeps"), base_params())
    params = config.load_config(repo / "params.yaml")
    write_manifests(params, repo / "data" / "inputs", repo / "src" / "cabinlift")
    _placeholders(repo)
    run(DVC + ["commit", "-f", "-q"], repo)
    assert _stale(repo) == set()
    return repo, params


def _edited(project: tuple[Path, config.Params], module: str, status=_stale) -> set[str]:
    repo, params = project
    root = repo / "src" / "cabinlift"
    path = sources.module_path(module, root)
    original = path.read_bytes()
    path.write_bytes(original + b"\n# edited\n")
    try:
        write_manifests(params, repo / "data" / "inputs", root)
        return status(repo)
    finally:
        path.write_bytes(original)
        write_manifests(params, repo / "data" / "inputs", root)


def _holding(module: str) -> set[str]:
    out = {s for s in sources.STAGE_ENTRIES if module in sources.stage_modules(s)}
    for m in REGISTRY:
        if module in sources.training_modules(m):
            out |= {"pretrain", *(f"{s}@{m}" for s in TRAINING)}
    return out


@pytest.mark.parametrize(("module", "expected"), [
    ("cabinlift.skeleton", EVERY_STAGE),  # the params check reads the joint names
    # evaluate builds every lifter (the weight movement)
    ("cabinlift.lifters.semgcn", {"pretrain", "evaluate", *(f"{s}@semgcn" for s in TRAINING)}),
    ("cabinlift.lifters.graph", {"pretrain", "evaluate",
                                 *(f"{s}@{m}" for s in TRAINING
                                   for m in ("semgcn", "graformer", "graphmlp"))}),
    ("cabinlift.evaluation.table", {"evaluate"}),
    ("cabinlift.demo.cabin", {"demo"}),
    ("cabinlift.report.page", {"report"}),
    ("cabinlift.cli", set()),
])
def test_known_answers(project, module, expected):
    assert _edited(project, module) == expected


def test_every_module_re_runs_exactly_the_stages_that_execute_it(project):
    wrong = {}
    status = CodeStatus(project[0])
    try:
        assert status(project[0]) == set()
        for module in sources.package_modules(project[0] / "src" / "cabinlift"):
            stale, expected = _edited(project, module, status), _holding(module)
            if stale != expected:
                wrong[module] = {"re-run": sorted(stale), "executed by": sorted(expected)}
    finally:
        status.dvc.close()
    assert wrong == {}


def test_a_changed_graph_retrains_the_runs_instead_of_reusing_them(tmp_path):
    """SemGCN's fine-tuning runs, trained, then asked again (all from the run store), then
    asked again after an edit of COCO13_EDGES (the graph SemGCN is built on): all retrained."""
    copy = tmp_path / "src"
    shutil.copytree(Path(sources.__file__).resolve().parents[1], copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    params = base_params()
    params["models"] = ["semgcn"]
    params["evaluate"]["qualitative"]["model"] = "semgcn"
    params["lifters"]["semgcn"].update(hid_dim=16, num_layers=1)
    params["train"].update(max_epochs=1, val_every=1, device="cpu")
    params["store"]["dir"] = str(tmp_path / "store")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_processed(tmp_path / "data", params)
    env = {**os.environ, "PYTHONPATH": str(copy)}
    command = [sys.executable, "-m", "cabinlift", "finetune", "--model", "semgcn", "--init",
               "scratch", "--setting", "pct10", "--processed", "data", "--subsets",
               "data/subsets", "--out", "out"]

    def finetune() -> str:
        proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stderr

    where = subprocess.run([sys.executable, "-c", "import cabinlift; print(cabinlift.__file__)"],
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(copy))  # the copy's code runs
    assert finetune().count(": trained in") == 8
    assert finetune().count(": reused") == 8
    skeleton = copy / "cabinlift" / "skeleton.py"
    text = skeleton.read_text()
    edges = "COCO13_EDGES: tuple[tuple[int, int], ...] = (\n    (11, 12), "
    assert edges in text
    skeleton.write_text(text.replace(edges, edges.replace("(11, 12), ", "")))  # no hip edge
    log = finetune()
    assert log.count(": trained in") == 8 and ": reused" not in log
