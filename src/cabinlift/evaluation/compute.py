"""From the evaluate stage's inputs to its :class:`~cabinlift.evaluation.results.EvaluationResults`.

The test set and the pre-training summaries are read first (:func:`load_inputs`); the
fine-tuning runs are read one setting at a time while computing (:func:`compute_results`), so
that only one setting's predictions are in memory: each setting's runs are summarised, the
predictions needed later (the example frame's estimates, the frame errors that choose it) are
kept, and the rest is freed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from cabinlift.config import INITS, NO_REAL_DATA, Evaluate
from cabinlift.evaluation.aggregate import (
    ActivityIndex,
    CellSummary,
    frame_mpjpe,
    summarize_setting,
)
from cabinlift.evaluation.loading import (
    TestSet,
    load_no_real_data,
    load_pretrain_summaries,
    load_setting_runs,
    load_test_set,
)
from cabinlift.evaluation.paired import paired_tests
from cabinlift.evaluation.qualitative import find_frame, make_panels, select_frame
from cabinlift.evaluation.reference import mean_pose_references
from cabinlift.evaluation.results import (
    EvaluationResults,
    QualitativeFrame,
    TestSetInfo,
    scratch_bound,
)
from cabinlift.evaluation.run_weights import RunWeights, measure
from cabinlift.evaluation.settings import Setting
from cabinlift.evaluation.weight_movement import MovedRuns


@dataclass(frozen=True)
class EvaluationInputs:
    """The test set and the pre-training summaries (read and checked), and where the rest is
    read while computing: the fine-tuning runs under ``finetuned_root`` (their wall times under
    ``timings_root``), the real training pool and the subset files of the settings (the
    mean-training-pose reference). ``pretrain_seeds``: pre-trainings per model, each giving
    one "No real data" run. ``pretrained_models``: the pre-training checkpoints
    (``<model>/seed<j>.pt``) the pre-trained runs started from, for their weight movement
    (None: not measured)."""

    test: TestSet
    pretrain: Mapping[str, Any]
    finetuned_root: Path
    timings_root: Path | None
    train_npz: Path
    subsets_dir: Path
    pretrain_seeds: int = 1
    pretrained_models: Path | None = None


def load_inputs(
    finetuned_root: str | Path, test_npz: str | Path, models: Sequence[str], *,
    train_npz: str | Path, subsets_dir: str | Path, pretrain_dir: str | Path | None = None,
    timings_root: str | Path | None = None, pretrain_seeds: int = 1,
    pretrained_models: str | Path | None = None,
) -> EvaluationInputs:
    """Read and check the test set and the (optional) pre-training summaries of ``models``."""
    test = load_test_set(test_npz)
    pretrain = load_pretrain_summaries(pretrain_dir, list(models))  # optional; checked early
    return EvaluationInputs(
        test=test,
        pretrain=pretrain,
        finetuned_root=Path(finetuned_root),
        timings_root=None if timings_root is None else Path(timings_root),
        train_npz=Path(train_npz),
        subsets_dir=Path(subsets_dir),
        pretrain_seeds=pretrain_seeds,
        pretrained_models=None if pretrained_models is None else Path(pretrained_models),
    )


def per_joint_setting(name: str | None, settings: Sequence[Setting]) -> Setting:
    """The configured setting, or (None) the first single-subject, full-fraction one, else the
    first with more than one run, else the first."""
    if name is not None:  # params.yaml names a listed setting
        return next(s for s in settings if s.name == name)
    for s in settings:
        if s.subjects == 1 and s.fraction >= 1.0:
            return s
    return next((s for s in settings if s.runs > 1), settings[0])


def all_data_setting(settings: Sequence[Setting]) -> Setting:
    """The "all data" setting: the largest amount (the last such setting on ties), whose
    frame errors choose the example frame."""
    all_data = settings[0]
    for s in settings:
        if s.amount >= all_data.amount:
            all_data = s
    return all_data


def _test_set_info(test: TestSet, activities: ActivityIndex) -> TestSetInfo:
    return TestSetInfo(
        file=test.path.name,
        frames=test.n_frames,
        subjects=tuple(sorted(int(x) for x in np.unique(test.subject))),
        valid_joints=int(test.mask.sum()),
        activities=len(activities.names),
    )


def _qualitative_frame(
    test: TestSet, options: Evaluate, model: str, models: Sequence[str],
    settings: Sequence[Setting], cells: Mapping[tuple[str, str, str], CellSummary],
    frame_errors: Mapping[tuple[str, str], np.ndarray],
    preds: Mapping[tuple[str, str], np.ndarray],
) -> QualitativeFrame:
    """The configured example frame, or the typical frame of the best model's all-data setting
    (``frame_errors``: per (model, init), the frame MPJPE of that setting's lowest
    repetition), with ``model``'s estimates of it (``preds``, per (init, setting))."""
    qcfg = options.qualitative
    if qcfg.file_id is not None and qcfg.frame_id is not None:
        frame = find_frame(test, qcfg.file_id, qcfg.frame_id)
        selection: dict[str, Any] = {"how": "configured"}
    else:
        all_data = all_data_setting(settings)
        best = min(
            ((m, i) for m in models for i in INITS),
            key=lambda mi: cells[mi[0], mi[1], all_data.name].mean,
        )
        frame = select_frame(test, frame_errors[best])
        selection = {
            "how": "fully annotated frame closest to the median frame MPJPE of the best model's "
            "all-data setting (lowest repetition)",
            "reference": {"model": best[0], "init": best[1], "setting": all_data.name},
        }
    return QualitativeFrame(
        model=model,
        inits=tuple(qcfg.inits),
        test_index=frame,
        file_id=str(test.file_id[frame]),
        frame_id=int(test.frame_id[frame]),
        subject=int(test.subject[frame]),
        mask=np.array(test.mask[frame]),
        ground_truth=np.array(test.y3d[frame]),
        selection=MappingProxyType(selection),
        panels=tuple(make_panels(test, frame, preds, qcfg.inits, settings)),
    )


def weight_movement(inputs: EvaluationInputs, models: Sequence[str],
                    settings: Sequence[Setting],
                    cells: Mapping[tuple[str, str, str], CellSummary],
                    ) -> dict[str, MovedRuns] | None:
    """Per model, how far each pre-trained run moved from the pre-training it started from
    (None without the pre-training checkpoints)."""
    if inputs.pretrained_models is None:
        return None
    reader = RunWeights(inputs.finetuned_root, inputs.pretrained_models, inputs.pretrain_seeds)
    return {m: measure(reader, m, {s.name: [r.record for r in cells[m, "pretrained", s.name].runs]
                                   for s in settings})
            for m in models}


def compute_results(
    inputs: EvaluationInputs, models: Sequence[str], settings: Sequence[Setting],
    options: Evaluate,
) -> EvaluationResults:
    """Summarise every fine-tuning run of ``models`` x (scratch, pretrained) x ``settings`` and
    each model's pre-trained weights before fine-tuning, test pre-training's effect, compute
    the mean-training-pose references, measure how far fine-tuning moved the pre-trained
    weights and choose the example frame."""
    models, settings = tuple(models), tuple(settings)
    test, root, metric_cfg = inputs.test, inputs.finetuned_root, options.pck
    qcfg = options.qualitative
    q_model = qcfg.model if qcfg.model is not None else models[0]
    joint_setting = per_joint_setting(options.per_joint_setting, settings)
    activities = ActivityIndex(test)
    cells: dict[tuple[str, str, str], CellSummary] = {}
    for m in models:  # before the long aggregation: a missing none/ fails at once
        cells[m, "pretrained", NO_REAL_DATA] = summarize_setting(
            load_no_real_data(root, m, test.n_frames, inputs.pretrain_seeds), test,
            activities, metric_cfg
        )
    mean_pose = mean_pose_references(inputs.train_npz, inputs.subsets_dir, settings, test)

    all_data = all_data_setting(settings)
    frame_errors: dict[tuple[str, str], np.ndarray] = {}
    q_preds: dict[tuple[str, str], np.ndarray] = {}
    for m in models:
        for i in INITS:
            for s in settings:
                data = load_setting_runs(root, m, i, s.name, test.n_frames, inputs.timings_root)
                cells[m, i, s.name] = summarize_setting(data, test, activities, metric_cfg)
                reps = [r["repetition"] for r in data.runs]
                first = reps.index(min(reps))  # "repetition 0" whether numbering starts at 0 or 1
                if s is all_data:
                    frame_errors[m, i] = frame_mpjpe(data.pred[first], test.y3d, test.mask)
                if m == q_model and i in qcfg.inits:
                    q_preds[i, s.name] = np.array(data.pred[first])  # a copy; the rest is freed
                del data
    tests = paired_tests(cells, models, [s.name for s in settings])
    moved = weight_movement(inputs, models, settings, cells)
    qualitative = _qualitative_frame(test, options, q_model, models, settings, cells,
                                     frame_errors, q_preds)
    return EvaluationResults(
        models=models,
        settings=settings,
        pck=metric_cfg,
        alpha=options.alpha,
        test_set=_test_set_info(test, activities),
        cells=MappingProxyType(cells),
        tests=MappingProxyType(tests),
        mean_pose=MappingProxyType(mean_pose),
        scratch=scratch_bound(cells, models, settings, mean_pose),
        per_joint_setting=joint_setting,
        pretrain=MappingProxyType(dict(inputs.pretrain)),
        qualitative=qualitative,
        moved=None if moved is None else MappingProxyType(moved),
    )
