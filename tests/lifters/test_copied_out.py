"""Each lifter works copied out of the package, with exactly the files it needs.

The rule: what a lifter needs is its module's import closure inside the package
(:func:`cabinlift.sources.closure`: every import statement it can run, function-level ones
included, and the ``__init__.py`` of each package on the way). Those files are copied at their
paths under an empty folder, as a tiny ``cabinlift`` package, and nothing else of the package is.
They import nothing but the standard library and torch (no pydantic, YAML or numpy): the lifter's
module, the lifter floor (``lifters/base.py``, ``lifters/losses.py`` and, as the model uses them,
``lifters/layers.py`` and ``lifters/graph.py``, with ``lifters/__init__.py``, the registry) and
the ground floor (``errors.py``, ``skeleton.py``, ``hyperparams.py`` and the empty
``__init__.py``). A fresh interpreter started with ``-I`` (no PYTHONPATH, no user site), whose
path holds no other ``cabinlift`` than the copy, builds the lifter from its typed config and
trains it one optimizer step.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cabinlift import config, sources
from cabinlift.lifters import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
GROUND = {"cabinlift", "cabinlift.errors", "cabinlift.skeleton", "cabinlift.hyperparams"}
LIFTER_FLOOR = {"cabinlift.lifters", "cabinlift.lifters.base", "cabinlift.lifters.losses"}
#: What each lifter needs beyond its own module, the ground floor and the lifter floor's base.
NEEDS = {
    "simplebl": set(),
    "semgcn": {"cabinlift.lifters.graph"},
    "graformer": {"cabinlift.lifters.graph", "cabinlift.lifters.layers"},
    "graphmlp": {"cabinlift.lifters.graph", "cabinlift.lifters.layers"},
    "jointformer": {"cabinlift.lifters.layers"},
}

TRAIN_ONE_STEP = r"""
import importlib, json, sys
from pathlib import Path

folder = Path(sys.argv[1])
sys.path[:] = [str(folder)] + [p for p in sys.path if not Path(p, "cabinlift").exists()]
import torch
import cabinlift
from cabinlift.lifters import REGISTRY

module, name = REGISTRY[sys.argv[2]].split(":")
cls = getattr(importlib.import_module(module), name)
torch.manual_seed(0)
net = cls.from_config(cls.Config(**json.loads(sys.argv[3]))).train()
before = {n: p.detach().clone() for n, p in net.named_parameters()}
x, y = torch.randn(8, 13, 2), torch.randn(8, 13, 3)
mask = torch.rand(8, 13) > 0.2
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
loss = net.training_loss(x, y, mask)
loss.backward()
opt.step()
print(json.dumps({
    "loss": loss.item(),
    "stepped": [n for n, p in net.named_parameters() if p.grad is not None and p.grad.any()],
    "changed": [n for n, p in net.named_parameters() if not torch.equal(p, before[n])],
    "modules": {m: getattr(sys.modules[m], "__file__", None) for m in sorted(sys.modules)
                if m.split(".")[0] in ("cabinlift", "pydantic", "yaml")},
}))
"""


def copy_out(model: str, folder: Path) -> list[str]:
    """Copy lifter ``model``'s module and the package modules it needs into ``folder``."""
    modules = sources.closure([sources.lifter_module(model)])
    for module in modules:
        path = sources.module_path(module)
        target = folder / path.relative_to(sources.PACKAGE_ROOT.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return modules


def _outside_imports(path: Path) -> set[str]:
    """The top-level names of what ``path`` imports from outside the standard library."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names)


@pytest.mark.parametrize("model", list(REGISTRY))
def test_a_lifter_copied_out_alone_builds_and_trains(model, tmp_path):
    folder = tmp_path / "copy"
    modules = copy_out(model, folder)
    assert set(modules) == GROUND | LIFTER_FLOOR | NEEDS[model] | {sources.lifter_module(model)}
    for path in folder.rglob("*.py"):
        assert _outside_imports(path) <= {"torch", "cabinlift"}, path
    hparams = config.load_config(ROOT / "params.yaml").hparams(model)
    proc = subprocess.run([sys.executable, "-I", "-c", TRAIN_ONE_STEP, str(folder), model,
                           json.dumps(hparams)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    loaded = out["modules"]
    assert {m for m in loaded if m.split(".")[0] == "cabinlift"} <= set(modules)
    assert all(Path(f).is_relative_to(folder) for m, f in loaded.items() if m.startswith("cabinlift"))
    assert not {m.split(".")[0] for m in loaded} & {"pydantic", "yaml"}
    assert out["loss"] == out["loss"] and abs(out["loss"]) < float("inf")  # finite
    assert out["stepped"] and set(out["changed"]) == set(out["stepped"])
