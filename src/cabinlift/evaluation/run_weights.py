"""Each fine-tuned pre-trained run's starting and final weights, read and checked, and how far
the one lies from the other (:mod:`cabinlift.evaluation.weight_movement`).

The starting weights of a run are the pre-training it started from: runs.json records its index
(``pretrain_seed``), the pre-training stage's checkpoint of that seed is in the model's folder
under ``models/pretrained`` (:func:`cabinlift.training.plan.pretrained_checkpoints`). The final
weights are the run's checkpoint beside its runs.json. Both are checked against the model they
claim to be and against each other (same lifter, same hyper-parameters, the run's own setting
and repetition), so a stale or misplaced checkpoint stops the stage instead of measuring the
distance between unrelated weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cabinlift.errors import CabinliftError
from cabinlift.evaluation.weight_movement import (
    Layer,
    MovedRuns,
    RunMovement,
    parameter_layers,
    run_movement,
)
from cabinlift.training.checkpoints import build_with_weights, check_state_dict, read_checkpoint
from cabinlift.training.plan import pretrained_checkpoints

#: A fine-tuned run's checkpoint in its setting's folder, as the fine-tuning stage names it
#: (:func:`cabinlift.training.outputs.write_setting`); its meta is checked against the run.
FINETUNED_NAME = "run{repetition:02d}.pt"

Weights = dict[str, np.ndarray]


def finetuned_checkpoint(finetuned_root: Path, model: str, setting: str, repetition: int) -> Path:
    """The checkpoint of pre-trained run ``repetition`` of ``model`` fine-tuned on ``setting``."""
    return (Path(finetuned_root) / "pretrained" / model / setting
            / FINETUNED_NAME.format(repetition=repetition))


def _fix(model: str) -> str:
    return f"re-run `dvc repro finetune_pretrained@{model}`"


def _pretrain_seed(runs_json: Path, k: int, record: Mapping[str, Any], seeds: int) -> int:
    seed = record.get("pretrain_seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < seeds:
        raise CabinliftError(
            f"{runs_json}: entry {k} key 'pretrain_seed' is {seed!r}, expected an integer from "
            f"0 to {seeds - 1} (the pre-training the run started from; 'pretrain.seeds' is "
            f"{seeds}); {_fix(record.get('model', '<model>'))}"
        )
    return seed


class RunWeights:
    """Reads the weights of the pre-trained runs of ``finetuned_root``, each with the
    pre-training it started from in ``pretrained_root`` (``seeds`` pre-trainings per model),
    keeping one model's starting weights while its settings are measured."""

    def __init__(self, finetuned_root: str | Path, pretrained_root: str | Path,
                 seeds: int) -> None:
        self.finetuned_root = Path(finetuned_root)
        self.pretrained_root = Path(pretrained_root)
        self.seeds = seeds
        self._model: str | None = None
        self._starts: list[Path] = []
        self._hparams: dict[str, Any] = {}
        self._expected: dict[str, torch.Tensor] = {}
        self._layers: tuple[Layer, ...] = ()
        self._weights: dict[int, Weights] = {}

    def _parameters(self, state: Mapping[str, torch.Tensor]) -> Weights:
        keys = [k for layer in self._layers for k in layer.parameters]
        return {k: state[k].detach().to(torch.float64).cpu().numpy() for k in keys}

    def _open(self, model: str) -> None:
        """Build ``model`` from its first pre-training (its layers, and the architecture every
        other checkpoint of the model must fit)."""
        if self._model == model:
            return
        self._model, self._weights = model, {}
        self._starts = pretrained_checkpoints(self.pretrained_root / model, self.seeds)
        first = self._starts[0]
        ckpt = read_checkpoint(first)
        if ckpt["model"] != model:
            raise CabinliftError(f"{first}: a checkpoint of {ckpt['model']}, expected {model} "
                                 "(re-run `dvc repro pretrain`)")
        self._hparams = ckpt["hparams"]
        net = build_with_weights(first, model, self._hparams, ckpt["state_dict"],
                                 "re-run `dvc repro pretrain`")
        self._expected = net.state_dict()
        self._layers = parameter_layers(net)

    def _checked(self, path: Path, model: str, fix: str) -> dict[str, Any]:
        """A checkpoint of ``model`` with the hyper-parameters of its pre-training whose weights
        fit the architecture."""
        ckpt = read_checkpoint(path)
        if ckpt["model"] != model or ckpt["hparams"] != self._hparams:
            raise CabinliftError(
                f"{path}: a checkpoint of {ckpt['model']} with {ckpt['hparams']}, expected "
                f"{model} with {self._hparams} (those of {self._starts[0]}); {fix}")
        check_state_dict(path, model, self._hparams, self._expected, ckpt["state_dict"], fix)
        return ckpt

    def _start(self, model: str, seed: int) -> Weights:
        if seed not in self._weights:
            path = self._starts[seed]
            ckpt = self._checked(path, model, "re-run `dvc repro pretrain`")
            self._weights[seed] = self._parameters(ckpt["state_dict"])
        return self._weights[seed]

    def _final(self, model: str, setting: str, repetition: int) -> Weights:
        path = finetuned_checkpoint(self.finetuned_root, model, setting, repetition)
        ckpt = self._checked(path, model, _fix(model))
        meta = ckpt.get("meta")
        found = {k: meta.get(k) for k in ("init", "setting", "repetition")} \
            if isinstance(meta, dict) else None
        expected = {"init": "pretrained", "setting": setting, "repetition": repetition}
        if found != expected:
            raise CabinliftError(f"{path}: the checkpoint of {found}, expected the run "
                                 f"{expected} (stale or misplaced file?); {_fix(model)}")
        return self._parameters(ckpt["state_dict"])

    def layers(self, model: str) -> tuple[Layer, ...]:
        self._open(model)
        return self._layers

    def movements(self, model: str, setting: str, records: Sequence[Mapping[str, Any]]
                  ) -> tuple[RunMovement, ...]:
        """The movement of each run of ``records`` (runs.json entries of the pre-trained
        ``model`` on ``setting``), in repetition order."""
        self._open(model)
        runs_json = self.finetuned_root / "pretrained" / model / setting / "runs.json"
        out = []
        for k, record in sorted(enumerate(records), key=lambda kr: kr[1]["repetition"]):
            seed = _pretrain_seed(runs_json, k, record, self.seeds)
            rep = int(record["repetition"])
            out.append(run_movement(rep, seed, self._start(model, seed),
                                    self._final(model, setting, rep), self._layers))
        return tuple(out)


def measure(reader: RunWeights, model: str,
            settings: Mapping[str, Sequence[Mapping[str, Any]]]) -> MovedRuns:
    """The movement of every pre-trained run of ``model`` (``settings``: setting name -> its
    runs.json entries)."""
    moved = {s: reader.movements(model, s, records) for s, records in settings.items()}
    return MovedRuns(reader.layers(model), moved)
