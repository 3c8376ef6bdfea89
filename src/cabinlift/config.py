"""params.yaml as one typed, frozen description, validated once when a command starts.

Every section of params.yaml is a frozen pydantic model below; :func:`load_config` reads the
file, checks all of it at once (types, ranges, choices, unknown keys with a "did you mean",
missing keys, the lifters' hyper-parameters against each lifter's constructor, and the rules that
tie keys together) and raises one :class:`CabinliftError` listing every problem, or returns the
:class:`Params` the stages read. Nothing downstream checks a value again, and no value has a
default here: params.yaml is the only home of the pipeline's numbers.

pydantic is used because it is the standard, well-kept way to turn a nested mapping into typed,
immutable objects with every error located by its key path in one pass; its errors are reworded
below into the project's one-line form (``key 'train.lr' must be a number > 0, got -0.001``).
"""

import difflib
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, PrivateAttr, ValidationError
from pydantic_core import PydanticCustomError

from cabinlift.errors import CabinliftError
from cabinlift.hyperparams import LOSS_REDUCTIONS
from cabinlift.skeleton import NUM_JOINTS, SYNTHETIC_VIEWS

#: The 2D backends of the ``detect`` and ``keypoints2d`` stages.
BACKENDS: tuple[str, ...] = ("simulated", "mmpose", "precomputed")
#: The initialisations of the fine-tuning runs.
INITS: tuple[str, ...] = ("scratch", "pretrained")
#: Data splits of ``normalize.real_splits`` and ``normalize.synthetic_splits``.
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Where the units of work of the training stages and of the ``mmpose`` backend run
#: (``executor.kind``; see :mod:`cabinlift.executors`).
EXECUTORS: tuple[str, ...] = ("local", "ray")
#: How floating-point results are pinned (``numerics.mode``; see :mod:`cabinlift.numerics`).
NUMERICS_MODES: tuple[str, ...] = ("portable", "native")
#: The pseudo-setting of the pre-trained weights evaluated before any fine-tuning (the zero
#: point of every pre-trained curve); a reserved name, never a configured setting.
NO_REAL_DATA = "none"

# --------------------------------------------------------------------------- leaf values


class _Expected:
    """What a key must hold, in words (also used for a missing key's message)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _leaf(expected: str, ok: Callable[[Any], bool], convert: Callable[[Any], Any] = lambda v: v
          ) -> tuple[BeforeValidator, _Expected]:
    """Annotations of a value that must satisfy ``ok`` (no coercion of YAML types)."""
    def check(v: Any) -> Any:
        if not ok(v):
            raise PydanticCustomError("cabinlift_value", "must be {expected}", {"expected": expected})
        return convert(v)
    return BeforeValidator(check), _Expected(expected)


def _interval(lo: float, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def _within(v: float, lo: float, hi: float | None, lo_open: bool, hi_open: bool) -> bool:
    above = v > lo if lo_open else v >= lo
    return above and (hi is None or (v < hi if hi_open else v <= hi))


def Int(lo: int, hi: int | None = None, text: str | None = None) -> Any:  # noqa: N802
    expected = text or (f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]")
    return Annotated[int, *_leaf(expected, lambda v: _is_int(v) and lo <= v
                                 and (hi is None or v <= hi))]


def Num(lo: float, hi: float | None = None, lo_open: bool = False, hi_open: bool = False,  # noqa: N802
        nullable: bool = False) -> Any:
    expected = f"a number {_interval(lo, hi, lo_open, hi_open)}" + (" or null" if nullable else "")
    ok = lambda v: (nullable and v is None) or (  # noqa: E731
        _is_num(v) and _within(v, lo, hi, lo_open, hi_open))
    base = float | None if nullable else float
    return Annotated[base, *_leaf(expected, ok, lambda v: None if v is None else float(v))]


def Choice(options: Sequence[str]) -> Any:  # noqa: N802
    expected = f"one of {', '.join(repr(o) for o in options)}"
    return Annotated[str, *_leaf(expected, lambda v: isinstance(v, str) and v in options)]


def Path_(nullable: bool = False) -> Any:  # noqa: N802
    expected = "a path (non-empty string)" + (" or null" if nullable else "")
    ok = lambda v: (nullable and v is None) or (isinstance(v, str) and bool(v.strip()))  # noqa: E731
    return Annotated[str | None if nullable else str, *_leaf(expected, ok)]


def DistinctList(item: str, item_ok: Callable[[Any], bool]) -> Any:  # noqa: N802
    return Annotated[tuple, *_leaf(
        f"a non-empty list of distinct {item}",
        lambda v: isinstance(v, list) and bool(v) and all(item_ok(x) for x in v)
        and len({repr(x) for x in v}) == len(v), tuple)]


Bool = Annotated[bool, *_leaf("true or false", lambda v: isinstance(v, bool))]
Str = Annotated[str, *_leaf("a string", lambda v: isinstance(v, str))]
AutoOrCount = Annotated[str | int, *_leaf(
    "'auto' or an integer >= 1", lambda v: v == "auto" or (_is_int(v) and v >= 1))]
Device = Annotated[str, *_leaf("'auto', 'cpu', 'cuda' or 'cuda:N'", lambda v: isinstance(v, str)
                               and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None)]
ScoreRange = Annotated[tuple, *_leaf(
    "[lo, hi]: two increasing numbers with 0 <= lo < hi <= 1",
    lambda v: isinstance(v, list) and len(v) == 2 and all(_is_num(x) for x in v)
    and 0 <= v[0] < v[1] <= 1, tuple)]
Region = Annotated[tuple, *_leaf(
    "[x1, y1, x2, y2] with 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 (fractions of the image)",
    lambda v: isinstance(v, list) and len(v) == 4 and all(_is_num(x) for x in v)
    and 0 <= v[0] < v[2] <= 1 and 0 <= v[1] < v[3] <= 1, tuple)]

# --------------------------------------------------------------------------- sections


class Section(BaseModel):
    """A mapping with a fixed set of keys; immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DemoReal(Section):
    subjects: Int(1, text="a positive integer")
    runs_per_subject: Int(1, text="a positive integer")
    single_run_subjects: Annotated[tuple, *_leaf(
        "a list of subject numbers", lambda v: isinstance(v, list) and all(map(_is_int, v)),
        tuple)]
    seconds_per_run: Num(20)
    fps: Int(1, text="a positive integer")
    female_fraction: Num(0, 1)
    label_noise_mm: Num(0)
    label_jitter_mm: Num(0)
    empty_frame_rate: Num(0, 0.5, hi_open=True)
    first_date: Annotated[str, *_leaf("a date YYYY-MM-DD", lambda v: isinstance(v, str) and
                                      re.fullmatch(r"\d{4}-\d\d-\d\d", v) is not None)]


class DemoSynthetic(Section):
    humans: Int(1, text="a positive integer")
    poses_per_human: Int(1, text="a positive integer")
    views: DistinctList(f"views among {', '.join(SYNTHETIC_VIEWS)}", SYNTHETIC_VIEWS.__contains__)
    stature_min: Num(0, lo_open=True)
    stature_max: Num(0, lo_open=True)
    ratio_sd: Num(0)
    camera_jitter_m: Num(0)


class Demo(Section):
    """The embedded procedural data set (``cabinlift.demo``)."""

    seed: Int(0)
    real: DemoReal
    synthetic: DemoSynthetic


class DataReal(Section):
    root: Path_()
    frame_stride: Int(1)


class DataSynthetic(Section):
    root: Path_()
    views: DistinctList(f"views among {', '.join(SYNTHETIC_VIEWS)}", SYNTHETIC_VIEWS.__contains__)
    workers: Int(1)
    cache_dir: Path_(nullable=True)


class Data(Section):
    real: DataReal
    synthetic: DataSynthetic


class DetectSimulated(Section):
    miss_rate: Num(0, 1)
    box_margin: Num(0)
    head_margin: Num(0)
    box_jitter: Num(0)
    score_range: ScoreRange


class Mmpose(Section):
    config: Path_()
    checkpoint: Path_()
    device: Device
    batch_size: Int(1)
    cache_dir: Path_(nullable=True)


class DetectMmpose(Mmpose):
    min_score: Num(0, 1)
    driver_region: Region


class Precomputed(Section):
    """The files of the ``precomputed`` backend of a 2D stage (a COCO results file and,
    optionally, its image list)."""

    results: Path_()
    images: Path_(nullable=True)


class DetectPrecomputed(Precomputed):
    min_score: Num(0, 1)
    driver_region: Region


class Detect(Section):
    backend: Choice(BACKENDS)
    seed: Int(0) | None = None
    simulated: DetectSimulated | None = None
    mmpose: DetectMmpose | None = None
    precomputed: DetectPrecomputed | None = None


class KeypointsSimulated(Section):
    noise_scale: Num(0)
    hidden_noise_factor: Num(0)
    hidden_score_factor: Num(0)
    swap_rate: Num(0, 1)
    score_range: ScoreRange


class KeypointsPrecomputed(Precomputed):
    min_iou: Num(0, 1)


class Keypoints2d(Section):
    backend: Choice(BACKENDS)
    seed: Int(0) | None = None
    simulated: KeypointsSimulated | None = None
    mmpose: Mmpose | None = None
    precomputed: KeypointsPrecomputed | None = None


def _splits(item: str, item_ok: Callable[[Any], bool]) -> type[Section]:
    leaf = DistinctList(item, item_ok)
    return typing.cast(type[Section], type("Splits", (Section,), {
        "__annotations__": {s: leaf for s in SPLITS}}))


class Normalize(Section):
    min_valid_joints: Int(0, NUM_JOINTS)
    real_splits: _splits("subject numbers (integers)", _is_int)
    synthetic_splits: _splits("human names (strings)", lambda v: isinstance(v, str))


class SettingDef(Section):
    """One Table-1 column: ``repetitions`` runs, each on ``subjects`` training subjects (or a
    ``fraction`` of one)."""

    subjects: Int(1)
    fraction: Num(0, 1, lo_open=True)
    repetitions: Int(1)
    seeds: Int(1, text="an integer >= 1 (training seeds per repetition)")


class Subsets(Section):
    seed: Int(0)
    min_frames: Int(2, text="an integer >= 2 (training needs 2 frames per run)")
    settings: dict[str, SettingDef]


class Train(Section):
    """The paper's uniform recipe (see :mod:`cabinlift.training.recipe`)."""

    seed: Int(0)
    lr: Num(0, lo_open=True)
    lr_decay: Num(0, lo_open=True)
    batch_size: Int(1)
    grad_clip: Num(0, lo_open=True)
    max_epochs: Int(1)
    val_every: Int(1)
    patience: Int(1)
    target_unit_mm: Num(0, lo_open=True)
    loss_reduction: Choice(LOSS_REDUCTIONS)
    drop_last: Bool
    validate_start: Bool
    eval_batch_size: Int(1)
    device: Device
    runs_per_group: AutoOrCount
    workers: AutoOrCount


class Pretrain(Section):
    """How many pre-trainings each lifter gets (each its own seed); the pre-trained runs of a
    setting start from them in turn."""

    seeds: Int(1)


class Numerics(Section):
    """How floating-point results are pinned (:mod:`cabinlift.numerics`)."""

    mode: Choice(NUMERICS_MODES)


class Store(Section):
    """Where finished runs and snapshots of runs in training are kept (absent: nowhere); never
    a stage parameter, since it never changes a result."""

    dir: Path_(nullable=True) = None
    max_gb: Num(0, lo_open=True, nullable=True) = None
    snapshot_every_epochs: Annotated[int | None, *_leaf(
        "an integer >= 1 or null", lambda v: v is None or (_is_int(v) and v >= 1))] = None
    snapshot_minutes: Num(0, lo_open=True, nullable=True) = None


class Executor(Section):
    """Where the units of work run (absent: in the stage's process, :mod:`cabinlift.executors`);
    never a stage parameter: it decides where a unit computes, never what (given the same
    device and threads per unit, which are part of every run's store key)."""

    kind: Choice(EXECUTORS)
    address: Annotated[str | None, *_leaf(
        "null (a private Ray instance), 'auto', 'host:port' or 'ray://host:port'",
        lambda v: v is None or (isinstance(v, str)
                                and re.fullmatch(r"auto|(ray://)?[^\s:/]+:\d+", v) is not None))]
    cpus_per_task: Int(1, text="an integer >= 1 (the CPUs, and intra-op threads, of every task)")
    gpus_per_task: Annotated[float, *_leaf(
        "a number >= 0, a whole number above 1 (Ray shares a GPU only as a fraction below 1)",
        lambda v: _is_num(v) and v >= 0 and (v <= 1 or float(v).is_integer()), float)]
    max_retries: Int(0)


class Qualitative(Section):
    model: Annotated[str | None, *_leaf("a model name or null",
                                        lambda v: v is None or isinstance(v, str))]
    inits: Annotated[tuple, *_leaf(
        f"a non-empty list of distinct values among {', '.join(INITS)}",
        lambda v: isinstance(v, list) and bool(v) and all(x in INITS for x in v)
        and len(set(v)) == len(v), tuple)]
    file_id: Annotated[str | None, *_leaf("a file id (string) or null",
                                          lambda v: v is None or isinstance(v, str))]
    frame_id: Annotated[int | None, *_leaf("an integer or null",
                                           lambda v: v is None or _is_int(v))]


class Pck(Section):
    threshold_mm: Num(0, lo_open=True)
    auc_max_mm: Num(0, lo_open=True)
    auc_steps: Int(2)


class Evaluate(Section):
    qualitative: Qualitative
    pck: Pck
    alpha: Num(0, 1, lo_open=True, hi_open=True)
    per_joint_setting: Annotated[str | None, *_leaf("a setting name or null",
                                                    lambda v: v is None or isinstance(v, str))]


class Params(Section):
    """The whole of params.yaml. ``lifters`` maps each model name to the keyword arguments of
    its lifter's constructor (checked against that constructor)."""

    models: tuple[str, ...]
    settings: DistinctList("setting names", lambda v: isinstance(v, str))
    demo: Demo
    data: Data
    detect: Detect
    keypoints2d: Keypoints2d
    normalize: Normalize
    subsets: Subsets
    train: Train
    pretrain: Pretrain
    numerics: Numerics
    threads: AutoOrCount
    executor: Executor | None = None
    store: Store | None = None
    lifters: dict[str, dict[str, Any]]
    evaluate: Evaluate
    _source: str = PrivateAttr("params.yaml")

    @property
    def source(self) -> str:
        """The file these parameters were read from (for messages)."""
        return self._source

    def setting_defs(self) -> dict[str, SettingDef]:
        """The Table-1 settings in column order."""
        return {name: self.subsets.settings[name] for name in self.settings}

    def hparams(self, model: str) -> dict[str, Any]:
        """The keyword arguments of ``model``'s lifter."""
        return dict(self.lifters[model])

# --------------------------------------------------------------------------- messages


def _suggest(name: str, known: Sequence[str]) -> str | None:
    """The known name ``name`` was most likely meant to be: a close spelling (difflib), else
    the one that abbreviates it or that it abbreviates (``learning_rate`` -> ``lr``)."""
    def initials(s: str) -> str:
        return "".join(w[0] for w in re.split(r"[_\W]+", s.lower()) if w)

    lowered = {k.lower(): k for k in known}
    guess = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    if guess:
        return lowered[guess[0]]
    short = name.lower().replace("_", "")
    for k in known:
        if len(k) > 1 and initials(name) == k.lower() or len(short) > 1 and initials(k) == short:
            return k
    return None


def _dotted(path: Sequence[Any]) -> str:
    return ".".join(str(p) for p in path)


def _unknown(path: Sequence[Any], known: Sequence[str]) -> str:
    """``unknown key 'a.b' (did you mean 'a.c'?)``, or the known keys when none is close."""
    guess = _suggest(str(path[-1]), known)
    hint = (f"did you mean '{_dotted([*path[:-1], guess])}'?" if guess
            else f"expected one of {', '.join(known)}" if known else "expected none")
    return f"unknown key '{_dotted(path)}' ({hint})"


def _name_hint(name: str, known: Sequence[str]) -> str:
    """``did you mean 'x'? expected one of ...`` for a value that must be one of ``known``."""
    guess = _suggest(name, known)
    return (f"did you mean {guess!r}? " if guess else "") + f"expected one of {', '.join(known)}"


def _unwrap(annotation: Any) -> Any:
    """The annotation without ``Annotated`` and ``| None``."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _unwrap(args[0])
    return annotation


def _field_at(path: Sequence[Any]) -> Any:
    """The pydantic field of the key at ``path`` (None where there is none, e.g. an unknown
    key or the lifters' free-form mapping)."""
    model: Any = Params
    field = None
    parts = list(path)
    while parts:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return None
        model = _unwrap(field.annotation)
        if typing.get_origin(model) is dict and parts:  # {name: Section}: skip the name
            parts.pop(0)
            model = _unwrap(typing.get_args(model)[1])
            field = None
    return field if field is not None else model


def _known_keys(path: Sequence[Any]) -> list[str]:
    """The keys a mapping at ``path`` may hold."""
    target = _field_at(path) if path else Params
    model = _unwrap(target.annotation) if hasattr(target, "annotation") else target
    if typing.get_origin(model) is dict:
        return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _expected(path: Sequence[Any]) -> str:
    """What the key at ``path`` must hold, in words."""
    field = _field_at(path)
    for meta in getattr(field, "metadata", []):
        if isinstance(meta, _Expected):
            return meta.text
    return "a mapping"


def _reword(error: Any) -> str:
    """One pydantic error in the project's words."""
    path = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    kind, value, key = error["type"], error.get("input"), _dotted(path)
    if kind == "cabinlift_value":
        return f"key '{key}' must be {error['ctx']['expected']}, got {value!r}"
    if kind == "extra_forbidden":
        return _unknown(path, _known_keys(path[:-1]))
    if kind == "missing":
        return f"missing key '{key}' (expected {_expected(path)})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"key '{key}' must be a mapping, got {value!r}"
    return f"key '{key}': {error['msg']}, got {value!r}"


# --------------------------------------------------------------------------- checks beyond types


def _at(raw: Any, key: str) -> Any:
    node = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _check_models(raw: dict[str, Any], out: list[str]) -> None:
    from cabinlift.lifters import REGISTRY

    value = raw.get("models")
    if not isinstance(value, list) or not value:
        out.append(f"key 'models' must be a non-empty list of model names, got {value!r}")
        return
    if not all(isinstance(name, str) for name in value):
        out.append(f"key 'models' must be a list of model names (strings), got {value!r}")
        return
    seen: set[str] = set()
    for name in value:
        if name not in REGISTRY:
            out.append(f"key 'models' names unknown model {name!r} "
                       f"({_name_hint(name, list(REGISTRY))})")
        elif name in seen:
            out.append(f"key 'models' lists model {name!r} twice")
        seen.add(name)


def _lifter_fields(name: str) -> dict[str, tuple[str, Callable[[Any], bool]]]:
    """What each constructor argument of lifter ``name`` may be, from the constructor's own
    signature: a ``Literal`` is a choice, a bool stays a bool, an int is a size or count
    (>= 1), a float a number (a dropout-like probability in [0, 1]), an optional list a list or
    null. ``num_joints`` is the pipeline's to set."""
    from cabinlift.lifters import lifter_class

    cls = lifter_class(name)
    hints = typing.get_type_hints(cls.__init__)
    out: dict[str, tuple[str, Callable[[Any], bool]]] = {}
    for arg in list(inspect.signature(cls.__init__).parameters)[1:]:
        if arg == "num_joints":
            continue
        hint = hints.get(arg)
        choices = typing.get_args(hint) if typing.get_origin(hint) is Literal else ()
        if choices:
            out[arg] = (f"one of {', '.join(repr(c) for c in choices)}",
                        lambda v, c=choices: isinstance(v, str) and v in c)
        elif hint is bool:
            out[arg] = ("true or false", lambda v: isinstance(v, bool))
        elif hint is int:
            out[arg] = ("an integer >= 1", lambda v: _is_int(v) and v >= 1)
        elif hint is float and "drop" in arg:
            out[arg] = ("a number in [0, 1]", lambda v: _is_num(v) and 0 <= v <= 1)
        elif hint is float:
            out[arg] = ("a number", _is_num)
        else:
            out[arg] = ("a list or null", lambda v: v is None or isinstance(v, list))
    return out


def _check_lifters(raw: dict[str, Any], out: list[str]) -> None:
    from cabinlift.lifters import REGISTRY, lifter_class

    lifters, models = raw.get("lifters"), raw.get("models")
    if not isinstance(lifters, dict):
        out.append("missing key 'lifters' (expected a mapping from model name to hyper-parameters)"
                   if lifters is None else
                   f"key 'lifters' must be a mapping from model name to hyper-parameters, "
                   f"got {lifters!r}")
        return
    for name, hparams in lifters.items():
        if name not in REGISTRY:
            out.append(f"key 'lifters' has an entry for unknown model {name!r} "
                       f"({_name_hint(str(name), list(REGISTRY))})")
            continue
        if not isinstance(hparams, dict):
            out.append(f"key 'lifters.{name}' must be a mapping, got {hparams!r}")
            continue
        fields = _lifter_fields(name)
        for key, value in hparams.items():
            if key not in fields:
                out.append(_unknown(["lifters", name, key], list(fields)))
            elif not fields[key][1](value):
                out.append(f"key 'lifters.{name}.{key}' must be {fields[key][0]}, got {value!r}")
    for name in dict.fromkeys(m for m in models or [] if isinstance(m, str) and m in REGISTRY):
        if name not in lifters:
            out.append(f"missing key 'lifters.{name}' (model {name!r} is listed in 'models' and "
                       f"needs its hyper-parameters)")
    hp = lifters.get("graformer")
    if isinstance(hp, dict):
        defaults = inspect.signature(lifter_class("graformer").__init__).parameters
        dim = hp.get("dim_model", defaults["dim_model"].default)
        heads = hp.get("n_head", defaults["n_head"].default)
        if _is_int(dim) and _is_int(heads) and heads >= 1 and dim % heads:
            out.append(f"key 'lifters.graformer.dim_model' ({dim}) must be divisible by "
                       f"'lifters.graformer.n_head' ({heads})")


def _check_backends(raw: dict[str, Any], out: list[str]) -> None:
    """The chosen backend's section (and the simulated backend's seed) must be there."""
    for stage in ("detect", "keypoints2d"):
        backend = _at(raw, f"{stage}.backend")
        if backend not in BACKENDS or not isinstance(raw.get(stage), dict):
            continue
        if _at(raw, f"{stage}.{backend}") is None:
            out.append(f"missing key '{stage}.{backend}' (the settings of the backend chosen by "
                       f"'{stage}.backend')")
        if backend == "simulated" and _at(raw, f"{stage}.seed") is None:
            out.append(f"missing key '{stage}.seed' (an integer >= 0, used by the simulated "
                       f"backend)")


def _check_settings(raw: dict[str, Any], out: list[str]) -> None:
    """Setting names and definitions; the listed settings can be drawn from the training
    subjects without reusing a subject or a combination."""
    order, defs = raw.get("settings"), _at(raw, "subsets.settings")
    if isinstance(defs, dict):
        if not defs:
            out.append("key 'subsets.settings' must be a non-empty mapping "
                       "{name: {subjects, fraction, repetitions}}, got {}")
        for name, spec in defs.items():
            if not isinstance(name, str) or not name or "." in name:
                out.append(f"setting name {name!r} under 'subsets.settings' must be a non-empty "
                           f"string without dots (DVC splits metric keys at dots)")
            elif isinstance(spec, dict):
                subjects, fraction = spec.get("subjects"), spec.get("fraction")
                if _is_int(subjects) and _is_num(fraction) and 0 < fraction < 1 and subjects != 1:
                    out.append(f"key 'subsets.settings.{name}': a fraction below 1 is defined for "
                               f"one subject only (subjects: 1), got subjects: {subjects}")
    if NO_REAL_DATA in (order if isinstance(order, list) else []) or (
            isinstance(defs, dict) and NO_REAL_DATA in defs):
        out.append(f"setting name {NO_REAL_DATA!r} is reserved for the pre-trained weights "
                   f"evaluated before fine-tuning; rename the setting")
    if not isinstance(order, list) or not isinstance(defs, dict):
        return
    train = _at(raw, "normalize.real_splits.train")
    pool = len(set(train)) if isinstance(train, list) and all(map(_is_int, train)) else None
    for name in dict.fromkeys(n for n in order if isinstance(n, str)):
        if name not in defs:
            out.append(f"key 'settings' names setting {name!r}, which has no definition under "
                       f"'subsets.settings' ({_name_hint(name, [str(k) for k in defs])})")
            continue
        spec = defs[name]
        k = spec.get("subjects") if isinstance(spec, dict) else None
        reps = spec.get("repetitions") if isinstance(spec, dict) else None
        if pool is None or not _is_int(k) or k < 1:
            continue
        where = "'normalize.real_splits.train'"
        if k > pool:
            out.append(f"key 'subsets.settings.{name}.subjects' ({k}) exceeds the {pool} "
                       f"training subjects of {where}")
        elif k == 1 and _is_int(reps) and reps > pool:
            out.append(f"key 'subsets.settings.{name}.repetitions' ({reps}) exceeds the {pool} "
                       f"training subjects of {where} (a single-subject setting trains each "
                       f"repetition on another subject)")
        elif k > 1 and _is_int(reps) and reps > math.comb(pool, k):
            out.append(f"key 'subsets.settings.{name}.repetitions' ({reps}) exceeds the number "
                       f"of distinct combinations of {k} out of the {pool} training subjects of "
                       f"{where} ({math.comb(pool, k)})")


def _check_splits(raw: dict[str, Any], out: list[str]) -> None:
    """No subject or virtual human is in two splits."""
    for key in ("normalize.real_splits", "normalize.synthetic_splits"):
        splits = _at(raw, key)
        if not isinstance(splits, dict):
            continue
        where: dict[Any, str] = {}
        for split in SPLITS:
            members = splits.get(split)
            for m in members if isinstance(members, list) else []:
                if isinstance(m, int | str) and m in where and where[m] != split:
                    out.append(f"{m!r} is listed in both '{key}.{where[m]}' and '{key}.{split}' "
                               f"(splits must be disjoint)")
                if isinstance(m, int | str):
                    where.setdefault(m, split)


def _check_demo(raw: dict[str, Any], out: list[str]) -> None:
    s = _at(raw, "demo.synthetic")
    if isinstance(s, dict) and _is_num(s.get("stature_min")) and _is_num(s.get("stature_max")) \
            and s["stature_min"] >= s["stature_max"]:
        out.append("key 'demo.synthetic.stature_min' must be below 'demo.synthetic.stature_max'")


def _check_evaluate(raw: dict[str, Any], out: list[str]) -> None:
    """The evaluation's figure choices name models and settings the pipeline produces."""
    models = raw.get("models")
    q = _at(raw, "evaluate.qualitative")
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
    name, order = _at(raw, "evaluate.per_joint_setting"), raw.get("settings")
    if (isinstance(name, str) and isinstance(order, list) and order
            and all(isinstance(s, str) for s in order) and name not in order):
        out.append(f"key 'evaluate.per_joint_setting' is {name!r}, which is not listed under "
                   f"'settings' ({', '.join(order)})")


def _check_ray_devices(raw: dict[str, Any], out: list[str]) -> None:
    """On Ray, the devices the units compute on agree with what every task reserves: a task
    sees only the GPUs it reserved, as cuda:0, ..."""
    if _at(raw, "executor.kind") != "ray":
        return
    gpus = _at(raw, "executor.gpus_per_task")
    if not _is_num(gpus) or gpus < 0:
        return
    seen = max(1, math.ceil(gpus))
    for key in ("train.device", "detect.mmpose.device", "keypoints2d.mmpose.device"):
        device = _at(raw, key)
        if not isinstance(device, str) or re.fullmatch(r"cuda(:\d+)?", device) is None:
            continue
        if gpus == 0:
            out.append(f"key '{key}' is {device!r}, but a Ray task reserves no GPU "
                       f"('executor.gpus_per_task' is 0); reserve GPUs or use 'auto'")
        elif device.startswith("cuda:") and int(device[5:]) >= seen:
            out.append(f"key '{key}' is {device!r}, but a Ray task sees only the {seen} GPU(s) "
                       f"it reserves ('executor.gpus_per_task' {gpus:g}), as cuda:0, ...; use "
                       f"'auto' or 'cuda'")


def _check_portable_threads(raw: dict[str, Any], out: list[str]) -> None:
    """Portable numerics compute every unit of work on one thread (a sum split over threads
    rounds by their number), so a Ray task reserving more CPUs would leave them idle."""
    cpus = _at(raw, "executor.cpus_per_task")
    if (_at(raw, "numerics.mode") == "portable" and _at(raw, "executor.kind") == "ray"
            and _is_int(cpus) and cpus > 1):
        out.append(f"key 'executor.cpus_per_task' is {cpus}, but with 'numerics.mode' portable "
                   "every task computes on one thread; set it to 1, or 'numerics.mode' to native")


_RULES = (_check_lifters, _check_backends, _check_settings, _check_splits, _check_demo,
          _check_evaluate, _check_ray_devices, _check_portable_threads)

# --------------------------------------------------------------------------- entry points


def problems(raw: Any) -> list[str]:
    """Every problem of ``raw`` (params.yaml as loaded), one sentence each naming the dotted
    key, what is expected and what was found; empty when all is well."""
    if not isinstance(raw, dict):
        return [f"key '(top level)' must be a mapping, got {raw!r}"]
    out: list[str] = []
    _check_models(raw, out)
    try:
        Params.model_validate({**raw, "models": (), "lifters": {}})
    except ValidationError as exc:
        fields = list(Params.model_fields)

        def order(e: Any) -> tuple[int, int]:  # file order of sections; unknown keys first
            top = str(e["loc"][0])
            return (fields.index(top) if top in fields else -1, e["type"] != "extra_forbidden")

        out += [_reword(e) for e in sorted(exc.errors(), key=order)]
    for rule in _RULES:
        rule(raw, out)
    return out


def build(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    """The :class:`Params` of ``raw``, or one error listing every problem."""
    found = problems(raw)
    if found:
        if len(found) == 1:
            raise CabinliftError(f"{source}: 1 problem: {found[0]}")
        listed = "\n".join(f"  - {p}" for p in found)
        raise CabinliftError(f"{source}: {len(found)} problems:\n{listed}")
    params = Params.model_validate({**raw, "models": tuple(raw["models"])})
    params._source = source
    return params


def read_yaml(path: str | Path) -> dict[str, Any]:
    """params.yaml as a mapping; a missing or malformed file is a one-line error naming it."""
    path = Path(path)
    if not path.is_file():
        raise CabinliftError(f"{path}: parameters file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise CabinliftError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise CabinliftError(f"{path}: expected a mapping at the top level")
    return raw


def load_config(path: str | Path = "params.yaml") -> Params:
    """Read, check and type params.yaml (see the module docstring)."""
    return build(read_yaml(path), str(path))
