"""What the evaluate stage computed: one frozen :class:`EvaluationResults`, which every output
(each section of table1.md, table1.json, summary.json, runs.csv, the wall times, each figure
and its CSV, the qualitative panels) is rendered from, and nothing else.

The object holds values, not files: the cells of Table 1 with their runs, the paired tests,
the mean-training-pose references, the pre-training summaries, the test set's description,
the settings and the report options, and the example frame with the estimates drawn on it.
:mod:`cabinlift.evaluation.compute` builds it; the renderers only read it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cabinlift.config import INITS, Pck
from cabinlift.evaluation.aggregate import CellSummary
from cabinlift.evaluation.frames_worth import ModelWorth, model_worth
from cabinlift.evaluation.paired import PairedTest
from cabinlift.evaluation.reference import MeanPoseReference
from cabinlift.evaluation.settings import Setting
from cabinlift.evaluation.weight_movement import (
    CellMovement,
    ModelMovement,
    MovedRuns,
    cell_movement,
    rank_correlation,
)

#: (model, init, setting name) -> the cell; the pre-trained weights before fine-tuning are the
#: setting ``none`` of the pre-trained rows.
Cells = Mapping[tuple[str, str, str], CellSummary]
#: (model, setting name) -> the paired pre-trained vs scratch test.
Tests = Mapping[tuple[str, str], PairedTest]
#: setting name -> the mean-training-pose reference.
MeanPose = Mapping[str, MeanPoseReference]


def above_mean_pose(cell: CellSummary, reference: MeanPoseReference) -> bool:
    """Whether a cell's mean MPJPE is above the mean-training-pose reference of its setting:
    its runs learned less than the constant mean pose of their own training frames."""
    return cell.mean > reference.mean


@dataclass(frozen=True)
class ScratchBound:
    """Scratch runs against the mean pose of their own training frames: ``fewest_steps`` is
    the fewest gradient steps of a scratch run that predicted the test poses better than that
    constant (None: no run did); every scratch run with fewer steps did not (``runs_fewer`` of
    ``runs``, ``most_steps`` the most steps of any)."""

    fewest_steps: int | None
    runs_fewer: int
    runs: int
    most_steps: int


def scratch_bound(cells: Cells, models: Sequence[str], settings: Sequence[Setting],
                  mean_pose: MeanPose) -> ScratchBound:
    """Where training from scratch starts to beat a constant: each scratch run is compared
    with the mean-pose reference of the same setting and repetition (same training frames)."""
    pairs = []
    for s in settings:
        reference = {r.repetition: r.mpjpe for r in mean_pose[s.name].runs}
        for m in models:
            for run in cells[m, "scratch", s.name].runs:
                pairs.append((int(run.record["steps"]),
                              run.mpjpe < reference[int(run.record["repetition"])]))
    beating = [steps for steps, beats in pairs if beats]
    fewest = min(beating) if beating else None
    fewer = sum(steps < fewest for steps, _ in pairs) if fewest is not None else len(pairs)
    return ScratchBound(fewest, fewer, len(pairs), max((st for st, _ in pairs), default=0))


@dataclass(frozen=True)
class TestSetInfo:
    """The real test set, as summary.json describes it."""

    __test__ = False  # not a pytest test class, despite the name

    file: str
    frames: int
    subjects: tuple[int, ...]
    valid_joints: int
    activities: int

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "frames": self.frames, "subjects": list(self.subjects),
                "valid_joints": self.valid_joints, "activities": self.activities}


@dataclass(frozen=True)
class Panel:
    """One skeleton view: the estimate of ``init`` after fine-tuning on ``setting``."""

    init: str
    setting: Setting
    pose: np.ndarray  # (J, 3) mm
    error: float  # this frame's MPJPE, mm


@dataclass(frozen=True)
class QualitativeFrame:
    """The Figure-3-style example: one test frame, how it was chosen, and ``model``'s estimate
    of it after every setting (``panels``, row-major: init, then setting; the lowest
    repetition of each)."""

    model: str
    inits: tuple[str, ...]
    test_index: int  # row in the test set
    file_id: str
    frame_id: int
    subject: int
    mask: np.ndarray = field(repr=False)  # (J,) bool: the frame's annotated joints
    ground_truth: np.ndarray = field(repr=False)  # (J, 3) mm, 0 where not annotated
    selection: Mapping[str, Any]  # {"how": ...} and, for a chosen frame, its "reference"
    panels: tuple[Panel, ...]

    def info(self) -> dict[str, Any]:
        """The frame's description: summary.json's ``qualitative`` and the head of
        qualitative.json."""
        return {
            "model": self.model,
            "inits": list(self.inits),
            "repetition": "lowest of each setting",
            "test_index": self.test_index,
            "file_id": self.file_id,
            "frame_id": self.frame_id,
            "subject": self.subject,
            "valid_joints": int(self.mask.sum()),
            **self.selection,
            "frame_mpjpe": {
                i: {p.setting.name: round(p.error, 3) for p in self.panels if p.init == i}
                for i in self.inits
            },
        }


@dataclass(frozen=True)
class EvaluationResults:
    """Everything the evaluate stage reports, computed once.

    ``cells`` hold every (model, init, setting) of ``models`` x INITS x ``settings`` plus each
    model's pre-trained weights before fine-tuning (setting ``none``), in computation order;
    ``tests`` the paired pre-trained vs scratch test of every (model, setting), Holm-adjusted
    over all of them; ``mean_pose`` the reference of every setting; ``scratch`` where scratch
    runs start to beat it. ``pck`` and ``alpha`` are the report options (3DPCK threshold and
    AUC range; level of the significance marks), ``per_joint_setting`` the setting of the
    per-joint figure, ``pretrain`` the pre-training summaries found (by model), ``test_set``
    the test set's description, ``qualitative`` the example frame, ``moved`` how far each
    pre-trained run moved its weights from its pre-training (by model; None: not measured).
    """

    models: tuple[str, ...]
    settings: tuple[Setting, ...]
    pck: Pck
    alpha: float
    test_set: TestSetInfo
    cells: Cells = field(repr=False)
    tests: Tests = field(repr=False)
    mean_pose: MeanPose = field(repr=False)
    scratch: ScratchBound
    per_joint_setting: Setting
    pretrain: Mapping[str, Any] = field(repr=False)
    qualitative: QualitativeFrame
    moved: Mapping[str, MovedRuns] | None = field(default=None, repr=False)

    def rows(self) -> Iterator[tuple[str, str]]:
        """(model, init) of every Table 1 row, in row order."""
        for m in self.models:
            for i in INITS:
                yield m, i

    def _setting_mean(self, setting: str, key: str) -> float:
        vals = [
            r.record[key]
            for (_, _, s), c in self.cells.items()
            if s == setting
            for r in c.runs
        ]
        return float(np.mean(vals))

    def train_frames(self, setting: str) -> float:
        """Mean training frames of a setting over all its runs (the subsets are shared by
        models)."""
        return self._setting_mean(setting, "train_frames")

    def steps(self, setting: str) -> float:
        """Mean optimiser steps per run of a setting, over the runs of every model and init."""
        return self._setting_mean(setting, "steps")

    def above_mean_pose(self, model: str, init: str, setting: str) -> bool:
        """Whether the cell is above the mean-training-pose reference of its setting."""
        return above_mean_pose(self.cells[model, init, setting], self.mean_pose[setting])

    def frames_worth(self) -> tuple[ModelWorth, ...]:
        """Per model, its pre-trained cells as the real frames a scratch model needs to match
        them, and where the paired gain stops being significant."""
        return tuple(model_worth(self.cells, self.tests, m, self.settings, self.alpha)
                     for m in self.models)

    def weight_movement(self) -> tuple[ModelMovement, ...] | None:
        """Per model, how far fine-tuning moved the pre-trained weights in each setting, next
        to the gain the cell keeps (None: not measured)."""
        if self.moved is None:
            return None
        out = []
        for m in self.models:
            moved = self.moved[m]
            cells = tuple(
                cell_movement(s.name, self.cells[m, "pretrained", s.name].train_frames,
                              moved.settings[s.name], self.tests[m, s.name].gain,
                              self.tests[m, s.name].ci95)
                for s in self.settings)
            out.append(ModelMovement(m, moved.layers, cells))
        return tuple(out)

    def movement_vs_gain(self) -> dict[str, float | None] | None:
        """Per setting, Spearman's rank correlation over the models of their median
        whole-model change and their gain (negative: the lifters that move their weights less
        keep more of the gain; None: not measured, or too few models)."""
        movement = self.weight_movement()
        if movement is None:
            return None
        by_setting: dict[str, list[CellMovement]] = {s.name: [] for s in self.settings}
        for w in movement:
            for c in w.cells:
                by_setting[c.setting].append(c)
        return {s: rank_correlation([(c.whole.median, c.gain) for c in cs])
                for s, cs in by_setting.items()}
