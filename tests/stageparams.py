"""Every stage reads exactly the params dvc.yaml declares for it, and loads no module of the
package outside the code closure its manifest hashes (the checks; the stages run in
tests/test_pipeline_e2e.py, on its reproduced tiny pipeline).

Each stage's command (as DVC resolves it from dvc.yaml) runs in its own process under
tests/stagerecorder.py, which records every param the command takes out of the typed config and
every package module it loaded. A param read but not declared would leave the
stage's outputs stale when it changes (`dvc exp run -S` would not re-run the stage); a param
declared but never read re-runs the stage for nothing. A module loaded but outside the stage's
closure (src/cabinlift/sources.py) could change the outputs without re-running the stage.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from cabinlift import sources

RECORDER = Path(__file__).with_name("stagerecorder.py")


#: Read by stages but not their params, on purpose (dvc.yaml says why): where finished runs
#: are kept and where units of work run never change what they compute (what could, the
#: threads of a unit and the device, is in every run's store key).
NOT_STAGE_PARAMS = ["store", "executor"]


def _covered(key: str, by: list[str]) -> bool:
    return any(key == d or key.startswith(d + ".") for d in by)


def _stage_params(stage) -> list[str]:
    """The params keys ``stage`` declares; a dependency on a whole params file (``- params.yaml:``,
    the report's) declares each of its top-level keys."""
    from dvc.dependency.param import ParamsDependency

    return sorted(k for d in stage.deps if isinstance(d, ParamsDependency)
                  for k in (d.params or d.read_params(flatten=False)))


def _closure(name: str) -> list[str]:
    if name.startswith(("finetune_scratch@", "finetune_pretrained@")):
        return sources.training_modules(name.split("@")[1])
    if name == "pretrain":
        from cabinlift.lifters import REGISTRY

        return sorted({m for model in REGISTRY for m in sources.training_modules(model)})
    return sources.stage_modules(name)


#: What the params check (cabinlift.config) loads in every command to check each lifter's
#: hyper-parameters with its typed config: the lifter modules and what they import. It builds
#: their configs, never computes with them, so a non-training stage's outputs do not depend on
#: them (they are in the training stages' closures).
PARAMS_CHECK = sorted({m for model in ("simplebl", "semgcn", "graformer", "graphmlp",
                                       "jointformer")
                       for m in sources.closure([sources.lifter_module(model)])})


def record_stages(repo: Path) -> dict[str, tuple[dict, list[str]]]:
    """``{stage: (recording, declared params)}`` of every stage of ``repo``'s dvc.yaml, each
    command run once more under the recorder, in the pipeline's order (outputs as before)."""
    from dvc.repo import Repo

    out = {}
    # the recorder's folder first, then whatever the tests run under (e.g. a checkout's src)
    path = [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    with Repo(str(repo)) as dvc:
        stages = list(dvc.index.stages)  # in dvc.yaml's order, which is the pipeline's
    for stage in stages:
        argv = shlex.split(stage.cmd)
        assert argv[0] == "cabinlift", stage.cmd
        record = repo / "logs" / f"recorded_{stage.name.replace('@', '_')}.json"
        record.parent.mkdir(exist_ok=True)
        proc = subprocess.run([sys.executable, str(RECORDER), str(record), *argv[1:]],
                              cwd=repo, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{stage.cmd}\n{proc.stderr[-3000:]}"
        out[stage.name] = (json.loads(record.read_text()), _stage_params(stage))
    return out


def check_every_stage_ran(recorded):
    assert set(recorded) == {"check", "demo", "detect", "keypoints2d", "normalize", "subsets",
                             "pretrain", "finetune_scratch@simplebl",
                             "finetune_pretrained@simplebl", "evaluate", "report"}
    assert all(r["status"] == 0 for r, _ in recorded.values())


def check_reads_only_declared_params(recorded):
    undeclared = {name: [k for k in rec["read"]
                         if not _covered(k, declared + NOT_STAGE_PARAMS)]
                  for name, (rec, declared) in recorded.items() if name != "check"}
    assert {k: v for k, v in undeclared.items() if v} == {}


def check_every_declared_param_is_read(recorded):
    unread = {name: [d for d in declared
                     if not any(k == d or k.startswith(d + ".") or d.startswith(k + ".")
                                for k in rec["read"])]
              for name, (rec, declared) in recorded.items() if name != "check"}
    assert {k: v for k, v in unread.items() if v} == {}


def check_no_module_outside_the_closure(recorded):
    outside = {}
    for name, (rec, _) in recorded.items():
        if name == "check":
            continue
        extra = set(rec["modules"]) - set(_closure(name)) - set(PARAMS_CHECK) - {
            "cabinlift.cli"}
        if extra:
            outside[name] = sorted(extra)
    assert outside == {}
