"""How far fine-tuning moves the pre-trained weights, next to the gain pre-training keeps: the
paper's open question (how does the architecture relate to what pre-training gives?) measured
cheaply, from checkpoints the pipeline already writes.

A run's movement is the relative change of its weights from the pre-training checkpoint it
started from to its fine-tuned checkpoint (the weights the fine-tuning stage saves, those of its
best validation): per layer ``||W_ft - W_pt||_2 / ||W_pt||_2`` over the parameters the layer
owns, and for the whole model the same over all parameters concatenated. Only parameters count
(what the optimiser moves); buffers do not (batch norm's running statistics, which fine-tuning
re-estimates without a gradient, and constant matrices such as a graph's adjacency). A layer is
a module owning parameters itself (``stem.0`` with ``stem.0.weight`` and ``stem.0.bias``), in
the order the model registers its modules: mostly its depth, but not always (GraFormer
registers its attention blocks and its graph convolutions as two lists that its forward pass
interleaves), so a layer is identified by its name, not its position. A lifter whose runs move
their weights little and keep a large gain is one whose pre-trained features transfer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from torch import nn

#: Quartiles of the whole-model change over a cell's runs (its spread; with the median).
QUARTILES = (25.0, 75.0)


#: What a layer's module type is called when it normalises (``BatchNorm1d``, ``LayerNorm``,
#: GraFormer's own): such a layer scales and shifts features and moves differently from the
#: weights between them, which the figure shows apart.
NORM_MARK = "Norm"


@dataclass(frozen=True)
class Layer:
    """A module owning parameters itself: its name (``""`` for the model itself), its module
    type and the state-dict keys of its parameters, in registration order."""

    name: str
    kind: str
    parameters: tuple[str, ...]

    @property
    def normalises(self) -> bool:
        return NORM_MARK in self.kind


def parameter_layers(net: nn.Module) -> tuple[Layer, ...]:
    """The layers of ``net`` in registration order: every module with parameters of its own
    (buffers are not parameters: batch norm's running statistics are left out)."""
    layers = []
    for name, module in net.named_modules():
        own = tuple(f"{name}.{p}" if name else p
                    for p, _ in module.named_parameters(recurse=False))
        if own:
            layers.append(Layer(name, type(module).__name__, own))
    return tuple(layers)


def _squared_norm(arrays: Sequence[np.ndarray]) -> float:
    return float(sum(np.sum(np.square(np.asarray(a, dtype=np.float64))) for a in arrays))


def relative_change(start: Mapping[str, np.ndarray], final: Mapping[str, np.ndarray],
                    keys: Sequence[str]) -> float | None:
    """``||final - start|| / ||start||`` over the tensors ``keys`` concatenated (L2, in
    float64); None where the starting tensors are all zero (no scale to be relative to)."""
    base = _squared_norm([start[k] for k in keys])
    if base == 0.0:
        return None
    moved = _squared_norm([np.asarray(final[k], dtype=np.float64)
                           - np.asarray(start[k], dtype=np.float64) for k in keys])
    return math.sqrt(moved / base)


@dataclass(frozen=True)
class RunMovement:
    """One fine-tuned run: which pre-training it started from, and the relative change of the
    whole model and of each layer (in layer order; None where undefined)."""

    repetition: int
    pretrain_seed: int
    whole: float | None
    layers: tuple[float | None, ...]


def run_movement(repetition: int, pretrain_seed: int, start: Mapping[str, np.ndarray],
                 final: Mapping[str, np.ndarray], layers: Sequence[Layer]) -> RunMovement:
    """The movement of one run from ``start`` to ``final`` over the parameters of ``layers``."""
    every = [k for layer in layers for k in layer.parameters]
    return RunMovement(repetition, pretrain_seed, relative_change(start, final, every),
                       tuple(relative_change(start, final, layer.parameters)
                             for layer in layers))


@dataclass(frozen=True)
class MovedRuns:
    """What the evaluate stage measured for one model: its layers and the movement of every
    pre-trained run per setting (runs in repetition order)."""

    layers: tuple[Layer, ...]
    settings: Mapping[str, tuple[RunMovement, ...]]


@dataclass(frozen=True)
class Spread:
    """Median, quartiles and range of a quantity over runs (all None where no run defines it),
    and how many runs define it."""

    median: float | None
    q1: float | None
    q3: float | None
    low: float | None
    high: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Spread:
        vals = np.array([v for v in values if v is not None], dtype=np.float64)
        if vals.size == 0:
            return cls(None, None, None, None, None, 0)
        q1, q3 = (float(q) for q in np.percentile(vals, QUARTILES))
        return cls(float(np.median(vals)), q1, q3, float(vals.min()), float(vals.max()),
                   int(vals.size))


def _median(values: Sequence[float | None]) -> float | None:
    return Spread.of(values).median


@dataclass(frozen=True)
class CellMovement:
    """One pre-trained cell (model, setting): its runs' whole-model change (spread over runs),
    each layer's median change over runs, and the gain the cell keeps (scratch − pre-trained
    MPJPE over matched runs, mm; None without a pair) with its 95 % CI half-width."""

    setting: str
    train_frames: float
    runs: tuple[RunMovement, ...]
    whole: Spread
    layers: tuple[float | None, ...]
    gain: float | None
    gain_ci95: float | None


def cell_movement(setting: str, train_frames: float, runs: Sequence[RunMovement],
                  gain: float | None, gain_ci95: float | None) -> CellMovement:
    """Summarise a cell's runs: the whole-model spread and the per-layer medians."""
    n_layers = len(runs[0].layers) if runs else 0
    per_layer = tuple(_median([r.layers[k] for r in runs]) for k in range(n_layers))
    return CellMovement(setting, train_frames, tuple(runs), Spread.of([r.whole for r in runs]),
                        per_layer, gain, gain_ci95)


@dataclass(frozen=True)
class ModelMovement:
    """One model's layers and its pre-trained cells, in setting order."""

    model: str
    layers: tuple[Layer, ...]
    cells: tuple[CellMovement, ...]


def rank_correlation(pairs: Sequence[tuple[float | None, float | None]]) -> float | None:
    """Spearman's rank correlation of (whole-model change, gain) over the models of one
    setting: negative where the models that move their weights less keep more of the gain.
    None with fewer than three complete pairs or no variation on either side."""
    done = [(x, y) for x, y in pairs if x is not None and y is not None]
    if len(done) < 3:
        return None
    xs, ys = zip(*done, strict=True)
    if len(set(xs)) == 1 or len(set(ys)) == 1:
        return None
    return float(stats.spearmanr(xs, ys).statistic)
