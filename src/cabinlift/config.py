"""params.yaml as one typed, frozen description, validated once when a command starts.

Every section of params.yaml is a frozen pydantic model below: its values constrained with
pydantic's own means (``Strict``, ``Field(gt=..)``, ``Literal``, patterns), the rules across its
keys in its :meth:`Section.rules`, and the lifters' hyper-parameters each lifter's own typed config
(:mod:`cabinlift.hyperparams`). :func:`load_config` reads the file, checks all of it at once
(types, ranges, choices, unknown keys with a "did you mean", missing keys, the rules that tie
keys together) and raises one :class:`CabinliftError` listing every problem, or returns the
:class:`Params` the stages read. Nothing downstream checks a value again, and no value has a
default here: params.yaml is the only home of the pipeline's numbers.

pydantic is used because it is the standard, well-kept way to turn a nested mapping into typed,
immutable objects with every error located by its key path in one pass; :mod:`cabinlift.validation`
words its errors in the project's one-line form (``key 'train.lr' must be a number > 0, got
-0.001``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import pydantic
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, Strict, model_validator

from cabinlift.errors import CabinliftError
from cabinlift.hyperparams import LOSS_REDUCTIONS, HyperParameters
from cabinlift.lifters import REGISTRY, lifter_class
from cabinlift.skeleton import NUM_JOINTS, SYNTHETIC_VIEWS
from cabinlift.validation import ask, check, holds, name_hint, refuse, report, unknown

#: The 2D backends of the ``detect`` and ``keypoints2d`` stages.
BACKENDS: tuple[str, ...] = ("simulated", "mmpose", "precomputed")
#: The initialisations of the fine-tuning runs.
INITS: tuple[str, ...] = ("scratch", "pretrained")
#: How runs from pre-trained weights are fine-tuned (``finetune.strategy``; see
#: :mod:`cabinlift.training.finetuning`): every weight on real data (the paper), batches mixing
#: synthetic and real poses, or only the lifter's output layer.
FINETUNE_STRATEGIES: tuple[str, ...] = ("sequential", "mixed", "frozen")
#: Data splits of ``normalize.real_splits`` and ``normalize.synthetic_splits``.
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Where the units of work of the training stages and of the ``mmpose`` backend run
#: (``executor.kind``; see :mod:`cabinlift.executors`).
EXECUTORS: tuple[str, ...] = ("local", "ray")
#: The 2D of the synthetic training poses (``pretrain.data.input_2d``): the exact projection, or
#: that projection with the simulated detector's errors (:mod:`cabinlift.synthetic_train`).
INPUTS_2D: tuple[str, ...] = ("ground_truth", "detector")
#: How floating-point results are pinned (``numerics.mode``; see :mod:`cabinlift.numerics`).
NUMERICS_MODES: tuple[str, ...] = ("portable", "native")
#: The pseudo-setting of the pre-trained weights evaluated before any fine-tuning (the zero
#: point of every pre-trained curve); a reserved name, never a configured setting.
NO_REAL_DATA = "none"
_RESERVED = (f"setting name {NO_REAL_DATA!r} is reserved for the pre-trained weights evaluated before "
             f"fine-tuning; rename the setting")
# ``train.loss_reduction`` takes one of LOSS_REDUCTIONS, defined with the lifters' loss.

# --------------------------------------------------------------------------- values
# No YAML type is coerced (Strict), but a number may be written as an integer. A key's message
# says what it must hold: its ``description``, or else its type and bounds.

Integer = Annotated[int, Strict()]
Number = Annotated[float, Strict()]
Text = Annotated[str, Strict()]
Flag = Annotated[bool, Strict()]
Real = Integer | Number  # a number kept as written (an integer stays one)
Seed = Annotated[int, Strict(), Field(ge=0)]
Count = Annotated[int, Strict(), Field(ge=1)]
Positive = Annotated[float, Strict(), Field(gt=0)]
NonNegative = Annotated[float, Strict(), Field(ge=0)]
Fraction = Annotated[float, Strict(), Field(ge=0, le=1)]
PositiveInteger = Annotated[int, Strict(), Field(ge=1, description="a positive integer")]
PathText = Annotated[str, Strict(), Field(pattern=r"\S", description="a path (non-empty string)")]
AutoOrCount = Annotated[Literal["auto"] | Count, Field(description="'auto' or an integer >= 1")]
Device = Annotated[str, Strict(), Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$",
                                        description="'auto', 'cpu', 'cuda' or 'cuda:N'")]
ScoreRange = Annotated[tuple[Real, Real], holds(lambda v: 0 <= v[0] < v[1] <= 1), Field(
    description="[lo, hi]: two increasing numbers with 0 <= lo < hi <= 1")]
Region = Annotated[tuple[Real, Real, Real, Real], holds(
    lambda v: 0 <= v[0] < v[2] <= 1 and 0 <= v[1] < v[3] <= 1), Field(description=(
        "[x1, y1, x2, y2] with 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 (fractions of the image)"))]


def DistinctList(item: Any, what: str) -> Any:  # noqa: N802
    return Annotated[tuple[item, ...], holds(lambda v: len({repr(x) for x in v}) == len(v)),
                     Field(min_length=1, description=f"a non-empty list of distinct {what}")]


Views = DistinctList(Literal[SYNTHETIC_VIEWS], f"views among {', '.join(SYNTHETIC_VIEWS)}")

# --------------------------------------------------------------------------- sections


class Section(BaseModel):
    """A mapping with a fixed set of keys; immutable once built, and only if its :meth:`rules`
    find no problem."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def rules(self) -> Iterable[str]:
        """The problems across this section's keys (asked once every key holds on its own)."""
        return ()

    @model_validator(mode="after")
    def _follows_its_rules(self) -> Section:
        refuse(self.rules())
        return self


class DemoReal(Section):
    subjects: PositiveInteger
    runs_per_subject: PositiveInteger
    single_run_subjects: Annotated[tuple[Integer, ...], Field(description="a list of subject numbers")]
    seconds_per_run: Annotated[float, Strict(), Field(ge=20)]
    fps: PositiveInteger
    female_fraction: Fraction
    label_noise_mm: NonNegative
    label_jitter_mm: NonNegative
    empty_frame_rate: Annotated[float, Strict(), Field(ge=0, lt=0.5)]
    first_date: Annotated[str, Strict(), Field(pattern=r"^\d{4}-\d\d-\d\d$",
                                               description="a date YYYY-MM-DD")]


class DemoSynthetic(Section):
    humans: PositiveInteger
    poses_per_human: PositiveInteger
    views: Views
    stature_min: Positive
    stature_max: Positive
    ratio_sd: NonNegative
    camera_jitter_m: NonNegative

    def rules(self) -> Iterator[str]:
        if self.stature_min >= self.stature_max:
            yield "key 'demo.synthetic.stature_min' must be below 'demo.synthetic.stature_max'"


class Demo(Section):
    """The embedded procedural data set (``cabinlift.demo``)."""

    seed: Seed
    real: DemoReal
    synthetic: DemoSynthetic


class DataReal(Section):
    root: PathText
    frame_stride: Count


class DataSynthetic(Section):
    root: PathText
    views: Views
    workers: Count
    cache_dir: PathText | None


class Data(Section):
    real: DataReal
    synthetic: DataSynthetic


class DetectSimulated(Section):
    miss_rate: Fraction
    box_margin: NonNegative
    head_margin: NonNegative
    box_jitter: NonNegative
    score_range: ScoreRange


class Mmpose(Section):
    config: PathText
    checkpoint: PathText
    device: Device
    batch_size: Count
    cache_dir: PathText | None


class DetectMmpose(Mmpose):
    min_score: Fraction
    driver_region: Region


class Precomputed(Section):
    """The files of the ``precomputed`` backend of a 2D stage (a COCO results file and,
    optionally, its image list)."""

    results: PathText
    images: PathText | None


class DetectPrecomputed(Precomputed):
    min_score: Fraction
    driver_region: Region


class _Stage2d(Section):
    """A 2D stage: the chosen backend's section must be there (and the simulated one's seed)."""

    stage: ClassVar[str]
    backend: Literal[BACKENDS]
    seed: Annotated[Seed | None, Field(description="an integer >= 0")] = None

    def rules(self) -> Iterator[str]:
        if getattr(self, self.backend) is None:
            yield (f"missing key '{self.stage}.{self.backend}' (the settings of the backend "
                   f"chosen by '{self.stage}.backend')")
        if self.backend == "simulated" and self.seed is None:
            yield f"missing key '{self.stage}.seed' (an integer >= 0, used by the simulated backend)"


class Detect(_Stage2d):
    stage = "detect"
    simulated: DetectSimulated | None = None
    mmpose: DetectMmpose | None = None
    precomputed: DetectPrecomputed | None = None


class KeypointsSimulated(Section):
    noise_scale: NonNegative
    hidden_noise_factor: NonNegative
    hidden_score_factor: NonNegative
    swap_rate: Fraction
    score_range: ScoreRange


class KeypointsPrecomputed(Precomputed):
    min_iou: Fraction


class Keypoints2d(_Stage2d):
    stage = "keypoints2d"
    simulated: KeypointsSimulated | None = None
    mmpose: Mmpose | None = None
    precomputed: KeypointsPrecomputed | None = None


def _splits(item: Any, what: str) -> Any:
    return pydantic.create_model("Splits", __base__=Section,
                                 **{s: (DistinctList(item, what), ...) for s in SPLITS})


class Normalize(Section):
    min_valid_joints: Annotated[int, Strict(), Field(ge=0, le=NUM_JOINTS)]
    real_splits: _splits(Integer, "subject numbers (integers)")
    synthetic_splits: _splits(Text, "human names (strings)")

    def rules(self) -> Iterator[str]:
        """No subject or virtual human is in two splits."""
        for key in ("real_splits", "synthetic_splits"):
            where: dict[Any, str] = {}
            for split in SPLITS:
                for m in getattr(getattr(self, key), split):
                    if where.setdefault(m, split) != split:
                        yield (f"{m!r} is listed in both 'normalize.{key}.{where[m]}' and "
                               f"'normalize.{key}.{split}' (splits must be disjoint)")


class SettingDef(Section):
    """One Table-1 column: ``repetitions`` runs, each on ``subjects`` training subjects (or a
    ``fraction`` of one)."""

    subjects: Count
    fraction: Annotated[float, Strict(), Field(gt=0, le=1)]
    repetitions: Count
    seeds: Annotated[int, Strict(), Field(ge=1, description="an integer >= 1 (training seeds per "
                                                            "repetition)")]


class Subsets(Section):
    seed: Seed
    min_frames: Annotated[int, Strict(), Field(ge=2, description="an integer >= 2 (training needs "
                                                                 "2 frames per run)")]
    settings: dict[Any, SettingDef]

    def rules(self) -> Iterator[str]:
        if not self.settings:
            yield ("key 'subsets.settings' must be a non-empty mapping "
                   "{name: {subjects, fraction, repetitions}}, got {}")
        for name, spec in self.settings.items():
            if not isinstance(name, str) or not name or "." in name:
                yield (f"setting name {name!r} under 'subsets.settings' must be a non-empty string "
                       f"without dots (DVC splits metric keys at dots)")
            elif spec.fraction < 1 and spec.subjects != 1:
                yield (f"key 'subsets.settings.{name}': a fraction below 1 is defined for one "
                       f"subject only (subjects: 1), got subjects: {spec.subjects}")
        if NO_REAL_DATA in self.settings:
            yield _RESERVED


class Train(Section):
    """The paper's uniform recipe (see :mod:`cabinlift.training.recipe`)."""

    seed: Seed
    lr: Positive
    lr_decay: Positive
    batch_size: Annotated[int, Strict(), Field(ge=2, description=(
        "an integer >= 2 (batch norm needs two samples in a training batch)"))]
    grad_clip: Positive
    max_epochs: Count
    val_every: Count
    patience: Count
    target_unit_mm: Positive
    loss_reduction: Literal[LOSS_REDUCTIONS]
    drop_last: Flag
    validate_start: Flag
    eval_batch_size: Count
    device: Device
    runs_per_group: AutoOrCount
    workers: AutoOrCount


class PretrainAugment(Section):
    """Augmented copies of the synthetic training poses (:mod:`cabinlift.synthetic_train`)."""

    copies: Annotated[int, Strict(), Field(ge=0)]
    bone_scale: NonNegative
    camera_jitter_deg: NonNegative
    camera_jitter_m: NonNegative
    flip: Annotated[float, Strict(), Field(ge=0, le=1, description=(
        "a number in [0, 1] (the probability that a copy is mirrored)"))]

    def rules(self) -> Iterator[str]:
        on = [k for k in ("bone_scale", "camera_jitter_deg", "camera_jitter_m", "flip")
              if getattr(self, k) > 0]
        if on and self.copies == 0:
            yield (f"key 'pretrain.data.augment.copies' is 0, so {', '.join(on)} would change "
                   f"nothing; set copies >= 1 (augmented copies per training pose)")


class PretrainData(Section):
    """How the synthetic training split for pre-training is built (:mod:`cabinlift.synthetic_train`)."""

    seed: Seed
    humans: Annotated[float, Strict(), Field(gt=0, le=1)]
    poses: Annotated[float, Strict(), Field(gt=0, le=1)]
    input_2d: Literal[INPUTS_2D]
    augment: PretrainAugment


class Pretrain(Section):
    """How many pre-trainings each lifter gets (each its own seed); the pre-trained runs of a
    setting start from them in turn. ``data``: how their synthetic training split is built."""

    seeds: Count
    data: PretrainData


class Finetune(Section):
    """How the runs that start from pre-trained weights are fine-tuned
    (:mod:`cabinlift.training.finetuning`); runs from scratch never read it."""

    strategy: Literal[FINETUNE_STRATEGIES]
    lr: Annotated[Positive | None, Field(description="a number > 0 or null (train.lr)")]
    mixed_share: Annotated[float, Strict(), Field(gt=0, lt=1)]


def synthetic_rows(mixed_share: float, batch_size: int) -> int:
    """The synthetic rows of a mixed batch of ``batch_size`` (``finetune.strategy: mixed``):
    ``mixed_share`` of it, rounded to the nearest integer (halves up)."""
    return math.floor(mixed_share * batch_size + 0.5)


class Numerics(Section):
    """How floating-point results are pinned (:mod:`cabinlift.numerics`)."""

    mode: Literal[NUMERICS_MODES]


class Store(Section):
    """Where finished runs and snapshots of runs in training are kept (absent: nowhere); never
    a stage parameter, since it never changes a result."""

    dir: PathText | None = None
    max_gb: Positive | None = None
    snapshot_every_epochs: Count | None = None
    snapshot_minutes: Positive | None = None


class Executor(Section):
    """Where the units of work run (absent: in the stage's process, :mod:`cabinlift.executors`);
    never a stage parameter: it decides where a unit computes, never what (given the same
    device and threads per unit, which are part of every run's store key)."""

    kind: Literal[EXECUTORS]
    address: Annotated[Annotated[str, Strict(), Field(pattern=r"^(auto|(ray://)?[^\s:/]+:\d+)$")]
                       | None, Field(description="null (a private Ray instance), 'auto', "
                                                 "'host:port' or 'ray://host:port'")]
    cpus_per_task: Annotated[int, Strict(), Field(ge=1, description=(
        "an integer >= 1 (the CPUs, and intra-op threads, of every task)"))]
    gpus_per_task: Annotated[float, Strict(), holds(lambda v: v <= 1 or v.is_integer()), Field(
        ge=0, description="a number >= 0, a whole number above 1 (Ray shares a GPU only as a "
                          "fraction below 1)")]
    max_retries: Seed


class Qualitative(Section):
    model: Annotated[Text | None, Field(description="a model name or null")]
    inits: DistinctList(Literal[INITS], f"values among {', '.join(INITS)}")
    file_id: Annotated[Text | None, Field(description="a file id (string) or null")]
    frame_id: Integer | None

    def rules(self) -> Iterator[str]:
        if (self.file_id is None) != (self.frame_id is None):
            yield ("keys 'evaluate.qualitative.file_id' and 'evaluate.qualitative.frame_id' must be "
                   "given both or neither (null: automatic choice)")


class Pck(Section):
    threshold_mm: Positive
    auc_max_mm: Positive
    auc_steps: Annotated[int, Strict(), Field(ge=2)]


class Evaluate(Section):
    qualitative: Qualitative
    pck: Pck
    alpha: Annotated[float, Strict(), Field(gt=0, lt=1)]
    per_joint_setting: Annotated[Text | None, Field(description="a setting name or null")]


def _model_names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        refuse([f"key 'models' must be a non-empty list of model names, got {value!r}"])
    if not all(isinstance(name, str) for name in value):
        refuse([f"key 'models' must be a list of model names (strings), got {value!r}"])
    refuse(f"key 'models' names unknown model {name!r} ({name_hint(name, list(REGISTRY))})"
           if name not in REGISTRY else f"key 'models' lists model {name!r} twice"
           for i, name in enumerate(value) if name not in REGISTRY or name in value[:i])
    return tuple(value)


def _lifter_configs(entries: Any) -> dict[str, HyperParameters]:
    """Each entry of ``lifters`` as its lifter's typed config (which loads its module)."""
    if not isinstance(entries, dict):
        refuse(["missing key 'lifters' (expected a mapping from model name to hyper-parameters)"
                if entries is None else
                f"key 'lifters' must be a mapping from model name to hyper-parameters, got {entries!r}"])
    found, out = [], {}
    for name, values in entries.items():
        if name not in REGISTRY:
            found.append(f"key 'lifters' has an entry for unknown model {name!r} "
                         f"({name_hint(str(name), list(REGISTRY))})")
            continue
        if not isinstance(values, dict):
            found.append(f"key 'lifters.{name}' must be a mapping, got {values!r}")
            continue
        config = lifter_class(name).Config
        expected = config.expected()
        here = [unknown(["lifters", name, k], list(expected)) for k in values if k not in expected]
        here += [f"missing key 'lifters.{name}.{k}' (expected {e.text})"
                 for k, e in expected.items() if k not in values]
        here += ["key " + p for p in config.problems(values, key=lambda k: f"'lifters.{name}.{k}'")]
        if not here:
            out[name] = config(**values)
        found += here
    refuse(found)
    return out


class Params(Section):
    """The whole of params.yaml. ``lifters`` maps each model name to its lifter's typed config
    (:attr:`cabinlift.lifters.base.Lifter.Config`)."""

    models: Annotated[tuple[str, ...], BeforeValidator(_model_names)] = Field(
        None, validate_default=True)  # absent: its validator says what it must be
    settings: DistinctList(Text, "setting names")
    demo: Demo
    data: Data
    detect: Detect
    keypoints2d: Keypoints2d
    normalize: Normalize
    subsets: Subsets
    train: Train
    pretrain: Pretrain
    finetune: Finetune
    numerics: Numerics
    threads: AutoOrCount
    executor: Executor | None = None
    store: Store | None = None
    lifters: Annotated[dict[str, Any], BeforeValidator(_lifter_configs), Field(
        description="a mapping from model name to hyper-parameters")]
    evaluate: Evaluate
    _source: str = PrivateAttr("params.yaml")

    def rules(self) -> list[str]:
        return ask(_ACROSS, dict(self))

    @property
    def source(self) -> str:
        """The file these parameters were read from (for messages)."""
        return self._source

    def setting_defs(self) -> dict[str, SettingDef]:
        """The Table-1 settings in column order."""
        return {name: self.subsets.settings[name] for name in self.settings}

    def hparams(self, model: str) -> dict[str, Any]:
        """The keyword arguments of ``model``'s lifter (its config's fields, in order)."""
        return dataclasses.asdict(self.lifters[model])

# --------------------------------------------------------------------------- rules across sections
# Each reads the sections its parameters name; when a section is wrong, the rules that do not
# read it are still asked (cabinlift.validation.check), so that one run finds every problem.


def _listed_models_have_lifters(models: tuple[str, ...], lifters: dict[str, Any]) -> Iterator[str]:
    for name in (m for m in models if m not in lifters):
        yield (f"missing key 'lifters.{name}' (model {name!r} is listed in 'models' and needs its "
               f"hyper-parameters)")


def _reserved_setting_name(settings: tuple[str, ...]) -> Iterator[str]:
    if NO_REAL_DATA in settings:
        yield _RESERVED


def _settings_are_defined(settings: tuple[str, ...], subsets: Subsets) -> Iterator[str]:
    for name in (n for n in settings if n not in subsets.settings):
        yield (f"key 'settings' names setting {name!r}, which has no definition under "
               f"'subsets.settings' ({name_hint(name, [str(k) for k in subsets.settings])})")


def _settings_fit_the_split(settings: tuple[str, ...], subsets: Subsets, normalize: Normalize
                            ) -> Iterator[str]:
    """The listed settings can be drawn from the training subjects without reusing a subject or
    a combination."""
    pool, where = len(normalize.real_splits.train), "'normalize.real_splits.train'"
    for name in (n for n in settings if n in subsets.settings):
        k, reps = subsets.settings[name].subjects, subsets.settings[name].repetitions
        if k > pool:
            yield (f"key 'subsets.settings.{name}.subjects' ({k}) exceeds the {pool} training subjects "
                   f"of {where}")
        elif k == 1 and reps > pool:
            yield (f"key 'subsets.settings.{name}.repetitions' ({reps}) exceeds the {pool} training "
                   f"subjects of {where} (a single-subject setting trains each repetition on another "
                   f"subject)")
        elif k > 1 and reps > math.comb(pool, k):
            yield (f"key 'subsets.settings.{name}.repetitions' ({reps}) exceeds the number of distinct "
                   f"combinations of {k} out of the {pool} training subjects of {where} "
                   f"({math.comb(pool, k)})")


def _detector_model_present(pretrain: Pretrain, detect: Detect, keypoints2d: Keypoints2d
                            ) -> Iterator[str]:
    """Noisy synthetic 2D takes the simulated backend's detector-error model."""
    if pretrain.data.input_2d == "detector":
        for stage, section in (("detect", detect), ("keypoints2d", keypoints2d)):
            if section.simulated is None:
                yield (f"missing key '{stage}.simulated' (the detector-error model that "
                       f"'pretrain.data.input_2d' detector applies to the synthetic 2D)")


def _evaluation_names(models: tuple[str, ...], evaluate: Evaluate) -> Iterator[str]:
    if evaluate.qualitative.model not in (None, *models):
        yield (f"key 'evaluate.qualitative.model' is {evaluate.qualitative.model!r}, which is not "
               f"among 'models' ({', '.join(models)})")


def _per_joint_setting(settings: tuple[str, ...], evaluate: Evaluate) -> Iterator[str]:
    if evaluate.per_joint_setting not in (None, *settings):
        yield (f"key 'evaluate.per_joint_setting' is {evaluate.per_joint_setting!r}, which is not "
               f"listed under 'settings' ({', '.join(settings)})")


def _ray_devices(executor: Executor | None, train: Train, detect: Detect, keypoints2d: Keypoints2d
                 ) -> Iterator[str]:
    """On Ray, the devices the units compute on agree with what every task reserves: a task sees
    only the GPUs it reserved, as cuda:0, ..."""
    if executor is None or executor.kind != "ray":
        return
    gpus = executor.gpus_per_task
    for key, section in (("train.device", train), ("detect.mmpose.device", detect.mmpose),
                         ("keypoints2d.mmpose.device", keypoints2d.mmpose)):
        device = getattr(section, "device", "auto")
        if device.startswith("cuda") and gpus == 0:
            yield (f"key '{key}' is {device!r}, but a Ray task reserves no GPU "
                   f"('executor.gpus_per_task' is 0); reserve GPUs or use 'auto'")
        elif device.startswith("cuda:") and int(device[5:]) >= max(1, math.ceil(gpus)):
            yield (f"key '{key}' is {device!r}, but a Ray task sees only the {max(1, math.ceil(gpus))} "
                   f"GPU(s) it reserves ('executor.gpus_per_task' {gpus:g}), as cuda:0, ...; use "
                   f"'auto' or 'cuda'")


def _mixed_batches_hold_both(train: Train, finetune: Finetune) -> Iterator[str]:
    """A mixed batch holds at least one synthetic and one real row."""
    if finetune.strategy != "mixed":
        return
    n = synthetic_rows(finetune.mixed_share, train.batch_size)
    if not 0 < n < train.batch_size:
        yield (f"key 'finetune.mixed_share' ({finetune.mixed_share:g}) gives {n} synthetic rows "
               f"in a batch of {train.batch_size} ('train.batch_size'); a mixed batch needs at "
               "least one synthetic and one real row")


def _portable_threads(numerics: Numerics, executor: Executor | None) -> Iterator[str]:
    """Portable numerics compute every unit of work on one thread (a sum split over threads
    rounds by their number), so a Ray task reserving more CPUs would leave them idle."""
    if numerics.mode == "portable" and executor and executor.kind == "ray" and executor.cpus_per_task > 1:
        yield (f"key 'executor.cpus_per_task' is {executor.cpus_per_task}, but with 'numerics.mode' "
               "portable every task computes on one thread; set it to 1, or 'numerics.mode' to native")


_ACROSS = (_listed_models_have_lifters, _reserved_setting_name, _settings_are_defined,
           _settings_fit_the_split, _detector_model_present, _evaluation_names, _per_joint_setting,
           _ray_devices, _portable_threads, _mixed_batches_hold_both)

# --------------------------------------------------------------------------- entry points


def _validate(raw: Any) -> tuple[Params | None, list[str]]:
    if not isinstance(raw, dict):
        return None, [f"key '(top level)' must be a mapping, got {raw!r}"]
    return check(Params, raw, _ACROSS)


def problems(raw: Any) -> list[str]:
    """Every problem of ``raw`` (params.yaml as loaded), one sentence each naming the dotted
    key, what is expected and what was found; empty when all is well."""
    return _validate(raw)[1]


def build(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    """The :class:`Params` of ``raw``, or one error listing every problem."""
    params, found = _validate(raw)
    if params is None:
        raise CabinliftError(report(source, found))
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
