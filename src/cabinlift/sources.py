"""Which of the package's source files each stage executes, read from the code itself.

A stage's code is the import closure of its entry module inside the package: every ``import``
and ``from ... import`` statement of a module (at its top or inside a function, since a stage
may reach a function-level import; not those under ``if TYPE_CHECKING:``, which never run),
followed through the package's own modules, with the ``__init__`` of every package on the way
(importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py``). Two things are added
that no import statement names: the modules every command runs before its stage
(:data:`RUNTIME`: the params, the numerics and the threads), and the lifters, which a stage
loads by their name (:data:`cabinlift.lifters.REGISTRY`): a training stage the one of its
params.yaml entry, the stages of :data:`LIFTER_STAGES` every registered one.

``cabinlift check`` writes the digest of every stage's closure into ``data/inputs/code/``
(:func:`cabinlift.inputs.write_manifests`) and each stage of dvc.yaml depends on its file, so
editing a module re-runs exactly the stages whose closure holds it; the run store keys
training runs on the same digest (:func:`cabinlift.training.store.code_version`). ``cli.py``
is in no closure: it parses arguments and hands them to the stage's entry function, which does
all the reading, computing and writing (tests/test_sources.py holds it to that).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PACKAGE = "cabinlift"
#: The package folder whose sources the running code is (the default root of every function).
PACKAGE_ROOT = Path(__file__).resolve().parent
#: What every command runs before its stage (cli.main): params.yaml read and checked, the
#: numerics mode and the threads set.
RUNTIME: tuple[str, ...] = ("cabinlift.config", "cabinlift.numerics", "cabinlift.resources")
#: The entry module of every stage that is not a training stage (its command's library code).
STAGE_ENTRIES: dict[str, tuple[str, ...]] = {
    "demo": ("cabinlift.demo.generate",),
    "detect": ("cabinlift.keypoints.stages",),
    "keypoints2d": ("cabinlift.keypoints.stages",),
    "normalize": ("cabinlift.normalize",),
    "subsets": ("cabinlift.subsets",),
    "evaluate": ("cabinlift.evaluation",),
    "report": ("cabinlift.report.stage",),
}
#: The stages (keys of :data:`STAGE_ENTRIES`) that build lifters by name: evaluate builds
#: every model from its checkpoints to tell parameters from buffers (the weight movement).
LIFTER_STAGES: frozenset[str] = frozenset({"evaluate"})
#: The entry module of the training stages (pretrain, finetune), before the lifter's module.
TRAINING_ENTRY: tuple[str, ...] = ("cabinlift.training.stages",)


def module_path(module: str, root: Path = PACKAGE_ROOT) -> Path | None:
    """The file of package module ``module`` under ``root`` (a package's ``__init__.py``), or
    None when it is not a module of the package."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST, with_typing: bool = False
                  ) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement that can run (all but the bodies of ``if TYPE_CHECKING:``, unless
    ``with_typing``)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test) and not with_typing:
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imports_of(module: str, root: Path = PACKAGE_ROOT) -> set[str]:
    """The package modules that running ``module`` can import (directly), parents included."""
    return {parent for name in named_imports(module, root) for parent in _with_parents(name)
            if parent != module and module_path(parent, root) is not None}


def named_imports(module: str, root: Path = PACKAGE_ROOT, with_typing: bool = False
                  ) -> set[str]:
    """The package modules that the import statements of ``module`` name: for each imported
    name, the deepest module of the package it names (``from a.b import c``: ``a.b.c`` when that
    is a module, else ``a.b``), without the parent packages that importing it initialises.
    ``with_typing``: also those under ``if TYPE_CHECKING:``."""
    path = module_path(module, root)
    if path is None:
        raise ValueError(f"{module!r} is not a module of {root}")
    return set(_imports(module, root, path.name == "__init__.py", path.read_bytes(),
                        with_typing))


@functools.lru_cache(maxsize=4096)
def _imports(module: str, root: Path, is_package: bool, text: bytes, with_typing: bool = False
             ) -> frozenset[str]:
    """:func:`named_imports` of a module whose source is ``text`` (parsed once per content)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(text), with_typing):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            if node.level:  # relative: from the module's own package upwards
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from a import b``: b is a submodule of a, or a name defined in a
            names = [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            modules = [c for c in _with_parents(name) if module_path(c, root) is not None]
            if modules:
                found.add(modules[-1])
    found.discard(module)
    return frozenset(found)


def closure(entries: Iterable[str], root: Path = PACKAGE_ROOT) -> list[str]:
    """Every package module that running ``entries`` can import, the entries and their parent
    packages included, sorted."""
    todo = [m for e in entries for m in _with_parents(e) if module_path(m, root) is not None]
    for entry in entries:
        if module_path(entry, root) is None:
            raise ValueError(f"{entry!r} is not a module of {root}")
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(imports_of(module, root) - seen)
    return sorted(seen)


def lifter_module(model: str) -> str:
    """The module a training stage loads for lifter ``model`` (by its name in params.yaml)."""
    from cabinlift.lifters import REGISTRY

    if model not in REGISTRY:
        raise ValueError(f"unknown model {model!r}")
    return REGISTRY[model].split(":")[0]


def stage_modules(stage: str, root: Path = PACKAGE_ROOT) -> list[str]:
    """The modules stage ``stage`` (a key of :data:`STAGE_ENTRIES`) executes: with every
    registered lifter's module where it builds lifters by name (:data:`LIFTER_STAGES`)."""
    from cabinlift.lifters import REGISTRY

    lifters = [lifter_module(m) for m in REGISTRY] if stage in LIFTER_STAGES else []
    return closure((*RUNTIME, *STAGE_ENTRIES[stage], *lifters), root)


def training_modules(model: str, root: Path = PACKAGE_ROOT) -> list[str]:
    """The modules a pre-training or fine-tuning run of lifter ``model`` executes."""
    return closure((*RUNTIME, *TRAINING_ENTRY, lifter_module(model)), root)


def digest_of(modules: Iterable[str], root: Path = PACKAGE_ROOT) -> dict[str, Any]:
    """``{"files": {path: sha256}, "digest": sha256 of all}`` of ``modules`` (paths relative to
    the package's parent, ``cabinlift/...``): what a code manifest and a run's key hold."""
    files = {}
    for module in sorted(modules):
        path = module_path(module, root)
        assert path is not None, module
        rel = f"{PACKAGE}/{path.relative_to(root).as_posix()}"
        files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    total = hashlib.sha256("".join(f"{p}\0{h}\n" for p, h in files.items()).encode())
    return {"files": files, "digest": total.hexdigest()}


def package_modules(root: Path = PACKAGE_ROOT) -> list[str]:
    """Every module of the package under ``root``."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = [PACKAGE, *rel.parts]
        if parts[-1] == "__init__":
            parts.pop()
        out.append(".".join(parts))
    return out
