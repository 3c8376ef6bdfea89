"""The whole of params.yaml checked at once, before a stage does any work.

Each stage reads only the keys it needs, one at a time: a misspelt key is silently ignored (its
default or the old value is used), and a bad value in a late stage (a setting that needs more
subjects than the training split has, a GraFormer width that its heads do not divide) surfaces
only after the earlier stages have run, one problem per attempt. :func:`problems` checks every
key of every section (types, ranges, choices, unknown and missing keys, the lifters' constructor
arguments and the rules that tie keys together) and :func:`validate` reports all of them in one
error.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cabinlift.errors import CabinliftError
from cabinlift.skeleton import NUM_JOINTS

#: Reductions of the training loss (as :data:`cabinlift.metrics.LOSS_REDUCTIONS`, not imported
#: here: that module loads torch).
LOSS_REDUCTIONS: tuple[str, ...] = ("coordinate_mean", "xyz_sum_joint_mean")

#: The 2D backends of the ``detect`` and ``keypoints2d`` stages (as in
#: :data:`cabinlift.keypoints.stages.BACKENDS`, not imported here: that module loads pandas).
BACKENDS: tuple[str, ...] = ("simulated", "mmpose", "precomputed")
#: Initialisations of the fine-tuning runs (as in :data:`cabinlift.evaluation.settings.INITS`,
#: not imported here: the evaluation package loads matplotlib).
INITS: tuple[str, ...] = ("scratch", "pretrained")
#: Data splits of ``normalize.real_splits`` and ``normalize.synthetic_splits``.
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Lifter constructor arguments that params.yaml cannot set (the pipeline passes them itself).
_FIXED_LIFTER_ARGS = frozenset({"self", "num_joints"})
#: A constructor default that is not a literal: its type is not checked.
_UNKNOWN_DEFAULT = object()
#: Keys that :func:`cabinlift.config.load_params` adds; not written by the user.
_INTERNAL_KEYS = frozenset({"_source"})

Problems = list[str]


# --------------------------------------------------------------------------- value predicates


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_path(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


# --------------------------------------------------------------------------- schema nodes


@dataclass(frozen=True)
class Leaf:
    """A single value: ``ok`` says whether it is legal, ``expected`` says what is legal."""

    expected: str
    ok: Callable[[Any], bool]
    required: bool = True


@dataclass(frozen=True)
class Section:
    """A mapping with a fixed set of keys."""

    fields: dict[str, Node]
    required: bool = True
    expected: str = "a mapping"


@dataclass(frozen=True)
class Custom:
    """A value checked by ``check(value, dotted_key, problems)``."""

    check: Callable[[Any, str, Problems], None]
    expected: str
    required: bool = True


Node = Leaf | Section | Custom


def _integer(lo: int, hi: int | None = None, required: bool = True) -> Leaf:
    text = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
    return Leaf(text, lambda v: _is_int(v) and v >= lo and (hi is None or v <= hi), required)


def _number(lo: float, hi: float | None = None, lo_open: bool = False, hi_open: bool = False,
            required: bool = True) -> Leaf:
    """A finite number (not a bool) in the given interval."""
    if hi is None:
        text = f"a number {'>' if lo_open else '>='} {lo:g}"
    else:
        text = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def ok(v: Any) -> bool:
        if not _is_num(v):
            return False
        above = v > lo if lo_open else v >= lo
        below = hi is None or (v < hi if hi_open else v <= hi)
        return above and below

    return Leaf(text, ok, required)


def _path(nullable: bool = False, required: bool = True) -> Leaf:
    if nullable:
        return Leaf("a path (non-empty string) or null", lambda v: v is None or _is_path(v), required)
    return Leaf("a path (non-empty string)", _is_path, required)


def _choice(options: tuple[str, ...], required: bool = True) -> Leaf:
    return Leaf(f"one of {', '.join(repr(o) for o in options)}",
                lambda v: isinstance(v, str) and v in options, required)


_DEVICE_RE = re.compile(r"auto|cpu|cuda(:\d+)?")


def _device(required: bool = True) -> Leaf:
    return Leaf("'auto', 'cpu', 'cuda' or 'cuda:N'",
                lambda v: isinstance(v, str) and _DEVICE_RE.fullmatch(v) is not None, required)


def _auto_or_count() -> Leaf:
    return Leaf("'auto' or an integer >= 1", lambda v: v == "auto" or (_is_int(v) and v >= 1))


def _score_range() -> Leaf:
    return Leaf(
        "[lo, hi]: two increasing numbers with 0 <= lo < hi <= 1",
        lambda v: isinstance(v, list) and len(v) == 2 and all(_is_num(x) for x in v)
        and 0 <= v[0] < v[1] <= 1,
    )


def _region(required: bool = True) -> Leaf:
    return Leaf(
        "[x1, y1, x2, y2] with 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 (fractions of the image)",
        lambda v: isinstance(v, list) and len(v) == 4 and all(_is_num(x) for x in v)
        and 0 <= v[0] < v[2] <= 1 and 0 <= v[1] < v[3] <= 1,
        required,
    )


def _distinct_list(item: str, item_ok: Callable[[Any], bool]) -> Leaf:
    """A non-empty list of distinct items."""
    return Leaf(
        f"a non-empty list of distinct {item}",
        lambda v: isinstance(v, list) and bool(v) and all(item_ok(x) for x in v)
        and len({repr(x) for x in v}) == len(v),
    )


# --------------------------------------------------------------------------- messages


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _initials(name: str) -> str:
    return "".join(word[0] for word in re.split(r"[_\W]+", name.lower()) if word)


def _suggest(name: str, known: list[str]) -> str | None:
    """The known name ``name`` was most likely meant to be: a close spelling (difflib), else the
    one that abbreviates it or that it abbreviates (``learning_rate`` -> ``lr``)."""
    lowered = {k.lower(): k for k in known}
    guess = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    if guess:
        return lowered[guess[0]]
    short = name.lower().replace("_", "")
    for k in known:
        if len(k) > 1 and _initials(name) == k.lower() or len(short) > 1 and _initials(k) == short:
            return k
    return None


def _unknown(path: str, key: Any, known: list[str]) -> str:
    """``unknown key 'a.b' (did you mean 'a.c'?)``, or the known keys when none is close."""
    guess = _suggest(str(key), known)
    hint = (f"did you mean '{_join(path, guess)}'?" if guess
            else f"expected one of {', '.join(known)}" if known else "expected none")
    return f"unknown key '{_join(path, key)}' ({hint})"


def _name_hint(name: str, known: list[str]) -> str:
    """``did you mean 'x'? expected one of ...`` for a value that must be one of ``known``."""
    guess = _suggest(name, known)
    return (f"did you mean {guess!r}? " if guess else "") + f"expected one of {', '.join(known)}"


def _bad(path: str, expected: str, value: Any) -> str:
    return f"key '{path}' must be {expected}, got {value!r}"


# --------------------------------------------------------------------------- walking the schema


def _walk(value: Any, node: Node, path: str, out: Problems) -> None:
    if isinstance(node, Leaf):
        if not node.ok(value):
            out.append(_bad(path, node.expected, value))
    elif isinstance(node, Custom):
        node.check(value, path, out)
    else:
        _section(value, node.fields, path, out)


def _section(value: Any, fields: dict[str, Node], path: str, out: Problems,
             ignore: frozenset[str] = frozenset()) -> None:
    """Unknown keys, missing required keys, then each present key against its node."""
    if not isinstance(value, dict):
        out.append(_bad(path, "a mapping", value))
        return
    for key in value:
        if key not in fields and key not in ignore:
            out.append(_unknown(path, key, list(fields)))
    for name, node in fields.items():
        key = _join(path, name)
        if name in value:
            _walk(value[name], node, key, out)
        elif node.required:
            out.append(f"missing key '{key}' (expected {node.expected})")


_MISSING = object()


def _at(params: dict[str, Any], key: str) -> Any:
    """The value at dotted ``key``, or ``_MISSING``."""
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


# --------------------------------------------------------------------------- custom sections


def _check_demo(value: Any, path: str, out: Problems) -> None:
    """The demo section, by the demo's own checks (they stop at the first problem)."""
    from cabinlift.demo.params import resolve_params

    if not isinstance(value, dict):
        out.append(_bad(path, "a mapping", value))
        return
    try:
        resolve_params(value)
    except CabinliftError as exc:
        msg = str(exc).removeprefix("params: ")
        out.append(f"key {msg}" if msg.startswith("'") else msg)


def _check_models(value: Any, path: str, out: Problems) -> None:
    from cabinlift.lifters import REGISTRY

    if not isinstance(value, list) or not value:
        out.append(_bad(path, "a non-empty list of model names", value))
        return
    if not all(isinstance(name, str) for name in value):
        out.append(_bad(path, "a list of model names (strings)", value))
        return
    seen: set[str] = set()
    for name in value:
        if name not in REGISTRY:
            out.append(f"key '{path}' names unknown model {name!r} "
                       f"({_name_hint(name, list(REGISTRY))})")
        elif name in seen:
            out.append(f"key '{path}' lists model {name!r} twice")
        seen.add(name)


def _literal_strings(annotation: ast.expr | None) -> tuple[str, ...] | None:
    """The values of a ``Literal["a", "b", ...]`` annotation of strings, else None."""
    if not isinstance(annotation, ast.Subscript):
        return None
    head = annotation.value
    if not (isinstance(head, ast.Name) and head.id == "Literal"
            or isinstance(head, ast.Attribute) and head.attr == "Literal"):
        return None
    items = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
    values = [i.value for i in items if isinstance(i, ast.Constant)]
    if len(values) != len(items) or not all(isinstance(v, str) for v in values):
        return None
    return tuple(values)


def _lifter_signature(name: str) -> dict[str, inspect.Parameter]:
    """The constructor arguments of lifter ``name`` that params.yaml may set, read from the
    source of its module (importing it would load torch into every stage's start-up). A
    ``Literal[...]`` annotation of strings is kept as the tuple of its values."""
    from cabinlift.lifters import REGISTRY

    module_name, cls_name = REGISTRY[name].split(":")
    spec = importlib.util.find_spec(module_name)
    tree = ast.parse(Path(spec.origin).read_text())
    init = next(
        f for c in tree.body if isinstance(c, ast.ClassDef) and c.name == cls_name
        for f in c.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"
    )
    a = init.args
    positional = a.args[1:]  # without self
    defaults = [inspect.Parameter.empty] * (len(positional) - len(a.defaults)) + a.defaults
    kinds = [(p, d, inspect.Parameter.POSITIONAL_OR_KEYWORD)
             for p, d in zip(positional, defaults, strict=True)]
    kinds += [(p, inspect.Parameter.empty if d is None else d, inspect.Parameter.KEYWORD_ONLY)
              for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)]
    out = {}
    for arg, default, kind in kinds:
        if arg.arg in _FIXED_LIFTER_ARGS:
            continue
        if isinstance(default, ast.expr):
            try:
                default = ast.literal_eval(default)
            except ValueError:
                default = _UNKNOWN_DEFAULT
        choices = _literal_strings(arg.annotation)
        out[arg.arg] = inspect.Parameter(
            arg.arg, kind, default=default,
            annotation=inspect.Parameter.empty if choices is None else choices)
    return out


def _hparam_leaf(name: str, param: inspect.Parameter) -> Leaf:
    """What a hyper-parameter may be, from its default: a bool stays a bool, an int is a size
    or count (>= 1), a float is a number (a dropout-like probability in [0, 1]), None allows a
    list (e.g. custom graph edges) or null; a ``Literal[...]`` annotation allows its values."""
    default = param.default
    required = default is inspect.Parameter.empty
    if isinstance(param.annotation, tuple):
        return _choice(param.annotation, required)
    if isinstance(default, bool):
        return Leaf("true or false", lambda v: isinstance(v, bool), required)
    if isinstance(default, int):
        return _integer(1, required=required)
    if isinstance(default, float):
        if "drop" in name:
            return _number(0, 1, required=required)
        return Leaf("a number", _is_num, required)
    if default is None:
        return Leaf("a list or null", lambda v: v is None or isinstance(v, list), required)
    return Leaf("any value", lambda v: True, required)


def _check_lifters(value: Any, path: str, out: Problems) -> None:
    from cabinlift.lifters import REGISTRY

    if not isinstance(value, dict):
        out.append(_bad(path, "a mapping from model name to hyper-parameters", value))
        return
    for name, hparams in value.items():
        key = _join(path, name)
        if name not in REGISTRY:
            out.append(f"key '{path}' has an entry for unknown model {name!r} "
                       f"({_name_hint(str(name), list(REGISTRY))})")
            continue
        fields: dict[str, Node] = {k: _hparam_leaf(k, p) for k, p in _lifter_signature(name).items()}
        _section(hparams, fields, key, out)


_SETTING = Section({
    "subjects": _integer(1),
    "fraction": _number(0, 1, lo_open=True),
    "repetitions": _integer(1),
}, expected="a mapping with subjects, fraction, repetitions")


def _check_setting_defs(value: Any, path: str, out: Problems) -> None:
    if not isinstance(value, dict) or not value:
        out.append(_bad(path, "a non-empty mapping {name: {subjects, fraction, repetitions}}", value))
        return
    for name, spec in value.items():
        key = _join(path, name)
        if not isinstance(name, str) or not name or "." in name:
            out.append(f"setting name {name!r} under '{path}' must be a non-empty string without "
                       f"dots (DVC splits metric keys at dots)")
            continue
        _section(spec, _SETTING.fields, key, out)
        if isinstance(spec, dict):
            subjects, fraction = spec.get("subjects"), spec.get("fraction")
            if _is_int(subjects) and _is_num(fraction) and 0 < fraction < 1 and subjects != 1:
                out.append(f"key '{key}': a fraction below 1 is defined for one subject only "
                           f"(subjects: 1), got subjects: {subjects}")


_STORE = Section({
    "dir": _path(nullable=True, required=False),
    "max_gb": Leaf("a number > 0 or null", lambda v: v is None or (_is_num(v) and v > 0),
                   required=False),
})


_EXECUTOR = Section({
    "kind": _choice(("local", "ray")),
    "address": Leaf("null (a private Ray instance), 'auto', 'host:port' or 'ray://host:port'",
                    lambda v: v is None or isinstance(v, str)
                    and re.fullmatch(r"auto|(ray://)?\S+:\d+", v) is not None, required=False),
    "cpus_per_task": Leaf("an integer >= 1 (the CPUs, and intra-op threads, of every task)",
                          lambda v: _is_int(v) and v >= 1, required=False),
    "gpus_per_task": Leaf("a number >= 0, a whole number above 1 (Ray shares a GPU only as a "
                          "fraction below 1)",
                          lambda v: _is_num(v) and v >= 0 and (v <= 1 or float(v).is_integer()),
                          required=False),
    "max_retries": _integer(0, required=False),
})


def _check_executor(value: Any, path: str, out: Problems) -> None:
    """Where units of work run: optional, null (or no section) is the local executor."""
    if value is not None:
        _section(value, _EXECUTOR.fields, path, out)


def _check_store(value: Any, path: str, out: Problems) -> None:
    """The store of finished training runs: optional, null (or no dir) disables it."""
    if value is not None:
        _section(value, _STORE.fields, path, out)


def _splits(item: str, item_ok: Callable[[Any], bool]) -> Section:
    leaf = _distinct_list(item, item_ok)
    return Section({s: leaf for s in SPLITS}, expected="a mapping with train, val, test")


# --------------------------------------------------------------------------- the schema


def _schema() -> Section:
    from cabinlift.formats.synthetic_cabin import SYNTHETIC_VIEWS

    mmpose_common: dict[str, Node] = {
        "config": _path(),
        "checkpoint": _path(),
        "device": _device(required=False),
        "batch_size": _integer(1),
        "cache_dir": _path(nullable=True, required=False),
    }
    optional = {"required": False}
    return Section({
        "models": Custom(_check_models, "a non-empty list of model names"),
        "settings": _distinct_list("setting names", lambda v: isinstance(v, str)),
        "demo": Custom(_check_demo, "a mapping"),
        "data": Section({
            "real": Section({
                "root": _path(),
                "frame_stride": _integer(1),
            }),
            "synthetic": Section({
                "root": _path(),
                "views": _distinct_list(f"views among {', '.join(SYNTHETIC_VIEWS)}",
                                        lambda v: v in SYNTHETIC_VIEWS),
                "workers": _integer(1),
                "cache_dir": _path(nullable=True),
            }),
        }),
        "detect": Section({
            "backend": _choice(BACKENDS),
            "seed": _integer(0, required=False),
            "simulated": Section({
                "miss_rate": _number(0, 1),
                "box_margin": _number(0),
                "head_margin": _number(0),
                "box_jitter": _number(0),
                "score_range": _score_range(),
            }, **optional),
            "mmpose": Section({
                **mmpose_common,
                "min_score": _number(0, 1, required=False),
                "driver_region": _region(),
            }, **optional),
            "precomputed": Section({
                "results": _path(),
                "images": _path(nullable=True, required=False),
                "min_score": _number(0, 1, required=False),
                "driver_region": _region(),
            }, **optional),
        }),
        "keypoints2d": Section({
            "backend": _choice(BACKENDS),
            "seed": _integer(0, required=False),
            "simulated": Section({
                "noise_scale": _number(0),
                "hidden_noise_factor": _number(0),
                "hidden_score_factor": _number(0),
                "swap_rate": _number(0, 1),
                "score_range": _score_range(),
            }, **optional),
            "mmpose": Section(mmpose_common, **optional),
            "precomputed": Section({
                "results": _path(),
                "images": _path(nullable=True, required=False),
                "min_iou": _number(0, 1, required=False),
            }, **optional),
        }),
        "normalize": Section({
            "min_valid_joints": _integer(0, NUM_JOINTS),
            "real_splits": _splits("subject numbers (integers)", _is_int),
            "synthetic_splits": _splits("human names (strings)", lambda v: isinstance(v, str)),
        }),
        "subsets": Section({
            "seed": _integer(0),
            "min_frames": Leaf("an integer >= 2 (training needs 2 frames per run)",
                               lambda v: _is_int(v) and v >= 2),
            "settings": Custom(_check_setting_defs, "a mapping of setting definitions"),
        }),
        "train": Section({
            "seed": _integer(0),
            "lr": _number(0, lo_open=True),
            "lr_decay": _number(0, lo_open=True),
            "batch_size": _integer(1),
            "grad_clip": _number(0, lo_open=True),
            "max_epochs": _integer(1),
            "val_every": _integer(1),
            "patience": _integer(1),
            "target_unit_mm": _number(0, lo_open=True),
            "loss_reduction": _choice(LOSS_REDUCTIONS),
            "drop_last": Leaf("true or false", lambda v: isinstance(v, bool)),
            "validate_start": Leaf("true or false", lambda v: isinstance(v, bool)),
            "eval_batch_size": _integer(1),
            "device": _device(),
            "runs_per_group": _auto_or_count(),
            "workers": _auto_or_count(),
        }),
        "lifters": Custom(_check_lifters, "a mapping from model name to hyper-parameters"),
        "evaluate": Section({
            "qualitative": Section({
                "model": Leaf("a model name or null", lambda v: v is None or isinstance(v, str),
                              required=False),
                "inits": Leaf(
                    f"a non-empty list of distinct values among {', '.join(INITS)}",
                    lambda v: isinstance(v, list) and bool(v) and all(x in INITS for x in v)
                    and len(set(v)) == len(v),
                    required=False,
                ),
                "file_id": Leaf("a file id (string) or null",
                                lambda v: v is None or isinstance(v, str), required=False),
                "frame_id": Leaf("an integer or null", lambda v: v is None or _is_int(v),
                                 required=False),
            }),
            "pck": Section({
                "threshold_mm": _number(0, lo_open=True, required=False),
                "auc_max_mm": _number(0, lo_open=True, required=False),
                "auc_steps": _integer(2, required=False),
            }),
            "alpha": _number(0, 1, lo_open=True, hi_open=True),
            "per_joint_setting": Leaf("a setting name or null",
                                      lambda v: v is None or isinstance(v, str)),
        }),
        "threads": _auto_or_count(),
        "store": Custom(_check_store, "a mapping with dir, max_gb, or null", required=False),
        "executor": Custom(_check_executor, "a mapping with kind, address, cpus_per_task, "
                           "gpus_per_task, max_retries, or null", required=False),
    })


# --------------------------------------------------------------------------- cross-key rules


def _check_backends(params: dict[str, Any], out: Problems) -> None:
    """The chosen backend's section (and the simulated backend's seed) must be there."""
    for stage in ("detect", "keypoints2d"):
        backend = _at(params, f"{stage}.backend")
        if backend not in BACKENDS or not isinstance(params.get(stage), dict):
            continue
        if _at(params, f"{stage}.{backend}") is _MISSING:
            out.append(f"missing key '{stage}.{backend}' (the settings of the backend chosen by "
                       f"'{stage}.backend')")
        if backend == "simulated" and _at(params, f"{stage}.seed") is _MISSING:
            out.append(f"missing key '{stage}.seed' (an integer >= 0, used by the simulated "
                       f"backend)")


def _check_model_sections(params: dict[str, Any], out: Problems) -> None:
    """Every model in ``models`` has its ``lifters.<name>`` hyper-parameters."""
    from cabinlift.lifters import REGISTRY

    models, lifters = params.get("models"), params.get("lifters")
    if not isinstance(models, list) or not isinstance(lifters, dict):
        return
    for name in dict.fromkeys(m for m in models if isinstance(m, str) and m in REGISTRY):
        if name not in lifters:
            out.append(f"missing key 'lifters.{name}' (model {name!r} is listed in 'models' and "
                       f"needs its hyper-parameters)")


def _check_lifter_rules(params: dict[str, Any], out: Problems) -> None:
    """Constraints between the hyper-parameters of one lifter (defaults fill missing keys)."""
    hp = _at(params, "lifters.graformer")
    if isinstance(hp, dict):
        defaults = {k: p.default for k, p in _lifter_signature("graformer").items()}
        dim, heads = hp.get("dim_model", defaults["dim_model"]), hp.get("n_head", defaults["n_head"])
        if _is_int(dim) and _is_int(heads) and heads >= 1 and dim % heads:
            out.append(f"key 'lifters.graformer.dim_model' ({dim}) must be divisible by "
                       f"'lifters.graformer.n_head' ({heads})")


def _check_settings(params: dict[str, Any], out: Problems) -> None:
    """The listed settings are defined and can be drawn from the real training subjects."""
    order, defs = params.get("settings"), _at(params, "subsets.settings")
    if not isinstance(order, list) or not isinstance(defs, dict):
        return
    train = _at(params, "normalize.real_splits.train")
    pool = len(set(train)) if isinstance(train, list) and all(_is_int(s) for s in train) else None
    for name in dict.fromkeys(n for n in order if isinstance(n, str)):
        if name not in defs:
            out.append(f"key 'settings' names setting {name!r}, which has no definition under "
                       f"'subsets.settings' ({_name_hint(name, [str(k) for k in defs])})")
            continue
        spec = defs[name]
        if not isinstance(spec, dict) or pool is None:
            continue
        k, reps = spec.get("subjects"), spec.get("repetitions")
        if not _is_int(k) or k < 1:
            continue
        if k > pool:
            out.append(f"key 'subsets.settings.{name}.subjects' ({k}) exceeds the {pool} training "
                       f"subjects of 'normalize.real_splits.train'")
        elif k == 1 and _is_int(reps) and reps > pool:
            out.append(f"key 'subsets.settings.{name}.repetitions' ({reps}) exceeds the {pool} "
                       f"training subjects of 'normalize.real_splits.train' (a single-subject "
                       f"setting trains each repetition on another subject)")
        elif k > 1 and _is_int(reps) and reps > math.comb(pool, k):
            out.append(f"key 'subsets.settings.{name}.repetitions' ({reps}) exceeds the number "
                       f"of distinct combinations of {k} out of the {pool} training subjects of "
                       f"'normalize.real_splits.train' ({math.comb(pool, k)})")


#: The pseudo-setting of the pre-trained weights before fine-tuning (as
#: :data:`cabinlift.subsets.NO_REAL_DATA`, not imported here: that module loads numpy).
_NO_REAL_DATA = "none"


def _check_reserved_setting(params: dict[str, Any], out: Problems) -> None:
    """No configured setting takes the name of the no-real-data column."""
    order, defs = params.get("settings"), _at(params, "subsets.settings")
    names = [n for n in (order if isinstance(order, list) else []) if n == _NO_REAL_DATA]
    if names or (isinstance(defs, dict) and _NO_REAL_DATA in defs):
        out.append(f"setting name {_NO_REAL_DATA!r} is reserved for the pre-trained weights "
                   f"evaluated before fine-tuning; rename the setting")


def _check_splits(params: dict[str, Any], out: Problems) -> None:
    """No subject or virtual human is in two splits."""
    for key in ("normalize.real_splits", "normalize.synthetic_splits"):
        splits = _at(params, key)
        if not isinstance(splits, dict):
            continue
        where: dict[Any, str] = {}
        for split in SPLITS:
            members = splits.get(split)
            if not isinstance(members, list):
                continue
            for m in members:
                if not isinstance(m, int | str):
                    continue
                if m in where and where[m] != split:
                    out.append(f"{m!r} is listed in both '{key}.{where[m]}' and '{key}.{split}' "
                               f"(splits must be disjoint)")
                where.setdefault(m, split)


def _check_evaluate(params: dict[str, Any], out: Problems) -> None:
    """The evaluation's figure choices name models and settings the pipeline produces."""
    models = params.get("models")
    q = _at(params, "evaluate.qualitative")
    if isinstance(q, dict):
        model, file_id, frame_id = q.get("model"), q.get("file_id"), q.get("frame_id")
        if (isinstance(model, str) and isinstance(models, list) and models
                and all(isinstance(m, str) for m in models) and model not in models):
            out.append(f"key 'evaluate.qualitative.model' is {model!r}, which is not among "
                       f"'models' ({', '.join(models)})")
        valid_ids = (file_id is None or isinstance(file_id, str)) and (
            frame_id is None or _is_int(frame_id))
        if valid_ids and (file_id is None) != (frame_id is None):
            out.append("keys 'evaluate.qualitative.file_id' and 'evaluate.qualitative.frame_id' "
                       "must be given both or neither (null: automatic choice)")
    name, order = _at(params, "evaluate.per_joint_setting"), params.get("settings")
    if (isinstance(name, str) and isinstance(order, list) and order
            and all(isinstance(s, str) for s in order) and name not in order):
        out.append(f"key 'evaluate.per_joint_setting' is {name!r}, which is not listed under "
                   f"'settings' ({', '.join(order)})")


def _check_ray_devices(params: dict[str, Any], out: Problems) -> None:
    """On Ray, the devices the units compute on agree with what every task reserves: a task
    sees only the GPUs it reserved, as cuda:0, ..."""
    ex = params.get("executor")
    if not isinstance(ex, dict) or ex.get("kind") != "ray":
        return
    gpus = ex.get("gpus_per_task", 0)
    gpus = gpus if _is_num(gpus) else 0
    for key in ("train.device", "detect.mmpose.device", "keypoints2d.mmpose.device"):
        device = _at(params, key)
        if not isinstance(device, str) or _DEVICE_RE.fullmatch(device) is None:
            continue
        if device.startswith("cuda") and gpus == 0:
            out.append(f"key '{key}' is {device!r}, but a Ray task reserves no GPU "
                       f"('executor.gpus_per_task' is 0); reserve GPUs or use 'auto'")
        elif device.startswith("cuda:") and int(device[5:]) >= max(1, math.ceil(gpus)):
            out.append(f"key '{key}' is {device!r}, but a Ray task sees only the "
                       f"{max(1, math.ceil(gpus))} GPU(s) it reserves ('executor.gpus_per_task'"
                       f" {gpus:g}), as cuda:0, ...; use 'auto' or 'cuda'")


_CROSS_RULES: tuple[Callable[[dict[str, Any], Problems], None], ...] = (
    _check_backends, _check_model_sections, _check_lifter_rules, _check_settings,
    _check_reserved_setting, _check_splits,
    _check_evaluate, _check_ray_devices,
)


# --------------------------------------------------------------------------- public API


def problems(params: dict[str, Any]) -> list[str]:
    """Every problem of ``params`` (as loaded from params.yaml), one sentence each naming the
    dotted key, what is expected and what was found; empty when all is well."""
    out: Problems = []
    if not isinstance(params, dict):
        return [_bad("(top level)", "a mapping", params)]
    _section(params, _schema().fields, "", out, ignore=_INTERNAL_KEYS)
    for rule in _CROSS_RULES:
        rule(params, out)
    return out


def validate(params: dict[str, Any]) -> None:
    """Raise one :class:`CabinliftError` listing every problem of ``params``, if there is any.

    Several problems are listed one per line under a count; a single one stays on one line.
    """
    found = problems(params)
    if not found:
        return
    source = params.get("_source", "params.yaml") if isinstance(params, dict) else "params.yaml"
    if len(found) == 1:
        raise CabinliftError(f"{source}: 1 problem: {found[0]}")
    listed = "\n".join(f"  - {p}" for p in found)
    raise CabinliftError(f"{source}: {len(found)} problems:\n{listed}")
