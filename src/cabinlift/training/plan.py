"""What the training stages train, decided before any training: every run's seed, training
rows and starting weights, the stacks the fine-tuning runs are cut into, the device and how
many stacks train at once. Nothing here trains or writes; the stages
(:mod:`cabinlift.training.stages`) key the plan's runs (:mod:`cabinlift.training.store`) and
hand them to an executor as units (:mod:`cabinlift.training.units`)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cabinlift import numerics
from cabinlift.config import Params
from cabinlift.errors import CabinliftError
from cabinlift.executors import unit_device
from cabinlift.resources import thread_budget
from cabinlift.subsets import read_subset
from cabinlift.training.checkpoints import load_checkpoint
from cabinlift.training.recipe import Recipe, RunSpec
from cabinlift.training.store import file_digest

#: The checkpoint of pre-training seed ``j`` of a lifter, in its folder under models/pretrained.
PRETRAINED_NAME = "seed{j}.pt"


def run_seed(base: int, *parts: object) -> int:
    """A stable 31-bit seed for one run. Scratch and pre-trained runs of the same model,
    setting and repetition share it, so they see the same batch order (a paired comparison)."""
    key = "/".join(str(p) for p in (base, *parts))
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


def pretrain_seed(base: int, model: str, j: int) -> int:
    """The seed of pre-training ``j`` (0, 1, ...) of ``model``."""
    return run_seed(base, model, "pretrain") if j == 0 else run_seed(base, model, "pretrain", j)


def pretrained_checkpoints(folder: Path, seeds: int) -> list[Path]:
    """The checkpoints of a lifter's ``seeds`` pre-trainings in ``folder``."""
    return [folder / PRETRAINED_NAME.format(j=j) for j in range(seeds)]


def lifter_setup(params: Params, model: str) -> tuple[dict[str, Any], Recipe, str]:
    """What every run of ``model`` trains with: its hyper-parameters, the recipe, and the device
    the executor's units compute on (``train.device``, :func:`cabinlift.executors.unit_device`)."""
    return (params.hparams(model), Recipe.from_config(params.train),
            unit_device(params.executor, params.train.device, f"{params.source}: key 'train.device'"))


def pretrain_workers(units: int) -> int:
    """How many pre-trainings train at once in this process: in portable numerics as many as the
    stage has threads (each on one), in native numerics one after another on all of them."""
    if numerics.mode_in_effect() != "portable":
        return 1
    return max(1, min(thread_budget(), units))


def runs_per_group(params: Params, device: str) -> int:
    """How many runs :func:`train_runs` trains together (``train.runs_per_group``). ``auto``:
    8 on a GPU, where a step of these small networks is bound by kernel launches that a stack
    of runs shares; 1 on a CPU, where a step is bound by arithmetic and weight traffic, which
    grow with the number of runs (benchmarks/training_engine.py). Results do not depend on it
    beyond floating-point reassociation."""
    value = params.train.runs_per_group
    if value == "auto":
        return 8 if torch.device(device).type == "cuda" else 1
    return value


def training_workers(params: Params, device: str) -> int:
    """How many groups of runs train at once, in threads sharing the stage's thread budget
    (``train.workers``). ``auto``: one per thread of the budget on a CPU (each with one intra-op
    thread: these small networks use one core better than they split an operation over two),
    1 on a GPU. Results depend on it only through floating-point reassociation (a run trained on
    one thread rounds differently than on two), and never on which worker trains which run."""
    value = params.train.workers
    if value == "auto":
        return 1 if torch.device(device).type != "cpu" else thread_budget()
    return value


@dataclass
class Starts:
    """The pre-trained weights fine-tuning starts from: one per pre-training seed; run ``r`` of
    a setting starts from ``states[r % len(states)]``, so the runs of every setting spread over
    the pre-trainings."""

    paths: list[Path]
    states: list[dict[str, torch.Tensor]]
    digests: list[str]

    @classmethod
    def load(cls, paths: list[Path], model: str, hparams: dict[str, Any]) -> Starts:
        return cls(paths, [load_checkpoint(p, model, hparams) for p in paths],
                   [file_digest(p) for p in paths])

    def of_run(self, r: int) -> int:
        return r % len(self.states)


@dataclass
class Group:
    """A stack of runs of one setting trained together: the unit of work of a fine-tuning
    stage, reused whole from the run store or trained whole. Its runs' starting weights are not
    in their specs: they travel once for all stacks, and the unit puts them in."""

    setting: str
    repetitions: list[int]
    specs: list[RunSpec]
    starts: list[int | None]  # each run's pre-training (index into Starts), None from scratch
    keys: list[str | None]  # run-store keys (None: store disabled)

    def name(self, plan: FinetunePlan) -> str:
        """The unit's name: ``finetune <init> <model> <setting> run(s) <repetitions>``."""
        reps = self.repetitions
        runs = f"run {reps[0]:02d}" if len(reps) == 1 else f"runs {reps[0]:02d}-{reps[-1]:02d}"
        return f"finetune {plan.init} {plan.model} {self.setting} {runs}"


@dataclass
class Setting:
    """One setting of a fine-tuning stage: its runs (subset records) and where they go."""

    name: str
    out_dir: Path
    runs: list[dict[str, Any]]
    groups: list[Group]


@dataclass
class FinetunePlan:
    """Everything a fine-tuning stage trains, decided before any training."""

    model: str
    init: str
    hparams: dict[str, Any]
    recipe: Recipe
    device: str
    workers: int  # stacks trained at once (local executor)
    settings: list[Setting]
    #: how the runs are fine-tuned where that is not the paper's way (None: the paper's;
    #: :meth:`cabinlift.training.finetuning.Strategy.describe`), recorded in the checkpoints
    finetune: dict[str, Any] | None = None

    @property
    def groups(self) -> list[Group]:
        """Every stack, setting by setting, in the order the outputs are written."""
        return [g for s in self.settings for g in s.groups]


def plan_finetune(params: Params, model: str, init: str, jobs: list[tuple[str, Path, Path]],
                  n_train: int, starts: Starts | None,
                  lifter: tuple[dict[str, Any], Recipe, str]) -> FinetunePlan:
    """The runs of every ``(setting, subset_path, out_dir)`` of ``jobs``: their seeds, training
    rows and starting weights (run ``r`` from pre-training ``r % seeds``), cut into stacks of
    ``train.runs_per_group``, not yet keyed. The worker count (hence, locally, each run's
    threads, hence in native numerics its rounding) depends on the whole stage, never on how
    many stacks the store already holds: reused and retrained runs match. ``lifter`` is
    :func:`lifter_setup`'s (hyper-parameters, recipe, device)."""
    hparams, recipe, device = lifter
    base_seed = params.train.seed
    size = runs_per_group(params, device)
    settings = []
    for name, path, out in jobs:
        subset = read_subset(path)
        specs, run_starts = [], []
        for run in subset["runs"]:
            idx = np.asarray(run["indices"], dtype=np.int64)
            if len(idx) == 0 or idx.min() < 0 or idx.max() >= n_train:
                raise CabinliftError(
                    f"{path}: run {run['repetition']} has indices outside the training pool "
                    f"of {n_train} frames; re-run the subsets stage"
                )
            run_starts.append(None if starts is None else starts.of_run(int(run["repetition"])))
            specs.append(RunSpec(run_seed(base_seed, model, name, run["repetition"]), idx))
        reps = [int(r["repetition"]) for r in subset["runs"]]
        groups = [Group(name, reps[i: i + size], specs[i: i + size], run_starts[i: i + size], [])
                  for i in range(0, len(specs), size)]
        settings.append(Setting(name, out, subset["runs"], groups))
    workers = min(training_workers(params, device), sum(len(s.groups) for s in settings))
    return FinetunePlan(model, init, hparams, recipe, device, workers, settings)
