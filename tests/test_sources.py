"""The modules each stage executes, read from the code (src/cabinlift/sources.py): known
answers on a made-up package, and facts of this package that a hand-written list got wrong."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cabinlift import sources

PACKAGE = Path(sources.__file__).resolve().parent


def _package(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "cabinlift"
    for name, text in files.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return pkg


def test_closure_follows_every_kind_of_import_and_skips_type_checking(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "entry.py": "import os\nfrom cabinlift import a\nfrom cabinlift.sub import b\n",
        "a.py": "def f():\n    from cabinlift.lazy import g\n    return g\n",
        "lazy.py": "X = 1\n",
        "sub/__init__.py": "",
        "sub/b.py": ("from typing import TYPE_CHECKING\nfrom . import c\n"
                     "if TYPE_CHECKING:\n    from cabinlift import typed\nelse:\n"
                     "    import cabinlift.other\n"),
        "sub/c.py": "from ..lazy import X\n",
        "typed.py": "", "other.py": "", "unused.py": "",
    })
    assert sources.closure(["cabinlift.entry"], pkg) == [
        "cabinlift", "cabinlift.a", "cabinlift.entry", "cabinlift.lazy", "cabinlift.other",
        "cabinlift.sub", "cabinlift.sub.b", "cabinlift.sub.c"]
    with pytest.raises(ValueError, match="not a module"):
        sources.closure(["cabinlift.missing"], pkg)


def test_digest_changes_with_any_byte_of_any_module(tmp_path):
    pkg = _package(tmp_path, {"__init__.py": "", "a.py": "import cabinlift.b\n", "b.py": "x = 1\n"})
    before = sources.digest_of(sources.closure(["cabinlift.a"], pkg), pkg)
    assert set(before["files"]) == {"cabinlift/__init__.py", "cabinlift/a.py", "cabinlift/b.py"}
    (pkg / "b.py").write_text("x = 1 \n")
    after = sources.digest_of(sources.closure(["cabinlift.a"], pkg), pkg)
    assert after["digest"] != before["digest"]
    assert after["files"]["cabinlift/a.py"] == before["files"]["cabinlift/a.py"]


def _rel(modules: list[str]) -> set[str]:
    return {m.removeprefix("cabinlift.") for m in modules}


def test_the_skeleton_and_the_params_are_in_what_trains_and_what_normalises():
    # the hand-written list of training sources missed both (an edit of COCO13_EDGES re-ran
    # nothing and the run store handed back runs trained with the old graph)
    for model in ("simplebl", "semgcn", "graformer", "graphmlp", "jointformer"):
        assert {"skeleton", "config", "numerics", f"lifters.{model}"} <= _rel(
            sources.training_modules(model))
    for stage in ("normalize", "evaluate", "demo"):
        assert "skeleton" in _rel(sources.stage_modules(stage))


def test_a_lifter_is_in_its_own_training_stages_and_evaluate_only():
    assert "lifters.graph" in _rel(sources.training_modules("semgcn"))
    assert "lifters.graph" not in _rel(sources.training_modules("simplebl"))
    for model in ("simplebl", "graformer", "graphmlp", "jointformer"):
        assert "lifters.semgcn" not in _rel(sources.training_modules(model))
    # evaluate builds every lifter from its checkpoints (the weight movement), by name
    assert sources.LIFTER_STAGES == {"evaluate"}
    every = {f"lifters.{m}" for m in ("simplebl", "semgcn", "graformer", "graphmlp",
                                      "jointformer")}
    assert every | {"lifters.graph"} <= _rel(sources.stage_modules("evaluate"))
    for stage in set(sources.STAGE_ENTRIES) - sources.LIFTER_STAGES:
        assert not every & _rel(sources.stage_modules(stage)), stage


def test_no_stage_executes_the_command_line_parser():
    every = set().union(*(sources.stage_modules(s) for s in sources.STAGE_ENTRIES),
                        *(sources.training_modules(m) for m in ("simplebl", "semgcn")))
    assert "cabinlift.cli" not in every


def _handlers() -> list[ast.FunctionDef]:
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    stages = {f"_{s}" for s in (*sources.STAGE_ENTRIES, "pretrain", "finetune", "check")}
    return [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in stages]


def test_cli_stage_handlers_read_no_param_and_write_no_file():
    """cli.py is in no stage's closure because its stage handlers only pass the params and the
    paths on: a handler that read a param or wrote a file itself would compute something that
    no code manifest covers."""
    handlers = _handlers()
    assert len(handlers) == 10
    for fn in handlers:
        for node in ast.walk(fn):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert node.value.id != "params", f"{fn.name} reads params.{node.attr}"
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                assert name not in ("open", "write_atomic", "write_text", "save_npz",
                                    "save_torch"), f"{fn.name} writes with {name}"


def test_every_module_is_known_to_the_package_walk():
    modules = sources.package_modules()
    assert "cabinlift.sources" in modules and "cabinlift.lifters.semgcn" in modules
    assert len(modules) == len(list(PACKAGE.rglob("*.py")))
