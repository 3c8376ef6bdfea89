"""Entry point of the ``evaluate`` stage: every fine-tuning run -> Table 1, summary, figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cabinlift.config import INITS, NO_REAL_DATA, Evaluate, Params, SettingDef
from cabinlift.evaluation.aggregate import (
    ActivityIndex,
    CellSummary,
    frame_mpjpe,
    summarize_setting,
)
from cabinlift.evaluation.loading import (
    load_no_real_data,
    load_pretrain_summaries,
    load_setting_runs,
    load_test_set,
)
from cabinlift.evaluation.outputs import write_all_atomic
from cabinlift.evaluation.paired import paired_tests
from cabinlift.evaluation.plots import (
    curve_csv,
    curve_png,
    gain_csv,
    gain_png,
    per_joint_csv,
    per_joint_png,
)
from cabinlift.evaluation.qualitative import (
    find_frame,
    make_panels,
    panels_json,
    qualitative_png,
    qualitative_title,
    select_frame,
)
from cabinlift.evaluation.reference import mean_pose_references
from cabinlift.evaluation.settings import Setting, parse_settings
from cabinlift.evaluation.summary import summary_json
from cabinlift.evaluation.table import (
    dump_json,
    runs_csv,
    table1_json,
    table1_markdown,
    wall_times_csv,
)


def _per_joint_setting(name: str | None, settings: Sequence[Setting]) -> Setting:
    """The configured setting, or (None) the first single-subject, full-fraction one, else the
    first with more than one run, else the first."""
    if name is not None:  # params.yaml names a listed setting
        return next(s for s in settings if s.name == name)
    for s in settings:
        if s.subjects == 1 and s.fraction >= 1.0:
            return s
    return next((s for s in settings if s.runs > 1), settings[0])


def run_evaluation(
    finetuned_root: str | Path,
    test_npz: str | Path,
    models: Sequence[str],
    settings: Mapping[str, SettingDef],
    metrics_dir: str | Path,
    plots_dir: str | Path,
    options: Evaluate,
    *,
    train_npz: str | Path,
    subsets_dir: str | Path,
    pretrain_dir: str | Path | None = None,
    timings_root: str | Path | None = None,
    wall_times: str | Path | None = None,
    pretrain_seeds: int = 1,
) -> dict[str, Path]:
    """Aggregate all fine-tuning runs of ``models`` x (scratch, pretrained) x ``settings`` into
    Table 1 and its companions, and return ``{file name: path written}``.

    Besides the settings, every model's pre-trained weights evaluated before fine-tuning
    (``<finetuned_root>/pretrained/<model>/none/``) give the "No real data" cells, and the real
    training pool ``train_npz`` with the subsets of ``subsets_dir`` the mean-training-pose
    reference of each setting. ``pretrain_seeds`` is the number of pre-trainings per model
    (each gives a "No real data" run).

    ``settings`` are params.yaml's setting definitions in column order; ``options`` its
    ``evaluate`` section (the example figure's model, rows and frame; the 3DPCK threshold and
    AUC range; the level of the significance marks; the setting of the per-joint figure).
    ``wall_times`` is where to write the runs' wall times (read from ``timings_root``). All
    inputs are read and checked and all outputs rendered before the first file is written, so a
    failure leaves the previous outputs intact.
    """
    models = list(models)
    setting_list = parse_settings(settings)
    qcfg, metric_cfg, alpha = options.qualitative, options.pck, options.alpha
    joint_setting = _per_joint_setting(options.per_joint_setting, setting_list)
    q_model = qcfg.model if qcfg.model is not None else models[0]
    test = load_test_set(test_npz)
    pretrain = load_pretrain_summaries(pretrain_dir, models)  # optional; checked early
    activities = ActivityIndex(test)
    cells: dict[tuple[str, str, str], CellSummary] = {}
    for m in models:  # before the long aggregation: a missing none/ fails at once
        cells[m, "pretrained", NO_REAL_DATA] = summarize_setting(
            load_no_real_data(finetuned_root, m, test.n_frames, pretrain_seeds), test,
            activities, metric_cfg
        )
    mean_pose = mean_pose_references(train_npz, subsets_dir, setting_list, test)

    # "All data" = the largest amount (last such setting on ties): the frame choice's reference.
    all_data = setting_list[0]
    for s in setting_list:
        if s.amount >= all_data.amount:
            all_data = s

    ref_frame_err: dict[tuple[str, str], np.ndarray] = {}
    q_preds: dict[tuple[str, str], np.ndarray] = {}
    for m in models:
        for i in INITS:
            for s in setting_list:
                data = load_setting_runs(finetuned_root, m, i, s.name, test.n_frames,
                                         timings_root)
                cells[m, i, s.name] = summarize_setting(data, test, activities, metric_cfg)
                reps = [r["repetition"] for r in data.runs]
                first = reps.index(min(reps))  # "repetition 0" whether numbering starts at 0 or 1
                if s is all_data:
                    ref_frame_err[m, i] = frame_mpjpe(data.pred[first], test.y3d, test.mask)
                if m == q_model and i in qcfg.inits:
                    q_preds[i, s.name] = np.array(data.pred[first])  # a copy; the rest is freed
                del data
    tests = paired_tests(cells, models, [s.name for s in setting_list])

    if qcfg.file_id is not None and qcfg.frame_id is not None:
        frame = find_frame(test, qcfg.file_id, qcfg.frame_id)
        selection: dict[str, Any] = {"how": "configured"}
    else:
        best = min(
            ((m, i) for m in models for i in INITS),
            key=lambda mi: cells[mi[0], mi[1], all_data.name].mean,
        )
        frame = select_frame(test, ref_frame_err[best])
        selection = {
            "how": "fully annotated frame closest to the median frame MPJPE of the best model's "
            "all-data setting (lowest repetition)",
            "reference": {"model": best[0], "init": best[1], "setting": all_data.name},
        }
    panels = make_panels(test, frame, q_preds, qcfg.inits, setting_list)
    q_info = {
        "model": q_model,
        "inits": list(qcfg.inits),
        "repetition": "lowest of each setting",
        "test_index": frame,
        "file_id": str(test.file_id[frame]),
        "frame_id": int(test.frame_id[frame]),
        "subject": int(test.subject[frame]),
        "valid_joints": int(test.mask[frame].sum()),
        **selection,
        "frame_mpjpe": {
            i: {p.setting.name: round(p.error, 3) for p in panels if p.init == i}
            for i in qcfg.inits
        },
    }
    test_info = {
        "file": test.path.name,
        "frames": test.n_frames,
        "subjects": sorted(int(x) for x in np.unique(test.subject)),
        "valid_joints": int(test.mask.sum()),
        "activities": len(activities.names),
    }

    metrics_dir, plots_dir = Path(metrics_dir), Path(plots_dir)
    rendered: dict[Path, str | bytes] = {
        metrics_dir / "table1.json": table1_json(cells, models, setting_list, mean_pose),
        metrics_dir / "table1.md": table1_markdown(
            cells, models, setting_list, tests, alpha, metric_cfg, mean_pose
        ),
        metrics_dir / "runs.csv": runs_csv(cells, models, setting_list),
        metrics_dir / "summary.json": summary_json(
            cells, tests, models, setting_list, metric_cfg, alpha, test_info, pretrain,
            q_info, mean_pose,
        ),
        plots_dir / "mpjpe_vs_data.csv": curve_csv(cells, models, setting_list, mean_pose),
        plots_dir / "mpjpe_vs_data.png": curve_png(cells, models, setting_list, mean_pose),
        plots_dir / "pretraining_gain.csv": gain_csv(tests, cells, models, setting_list),
        plots_dir / "pretraining_gain.png": gain_png(tests, cells, models, setting_list, alpha),
        plots_dir / "per_joint.csv": per_joint_csv(cells, models, joint_setting),
        plots_dir / "per_joint.png": per_joint_png(cells, models, joint_setting),
        plots_dir / "qualitative.json": dump_json(
            {**q_info, **panels_json(test, frame, panels)}
        ),
        plots_dir / "qualitative.png": qualitative_png(
            test, frame, panels, qualitative_title(test, frame, q_model)
        ),
    }
    if wall_times is not None:
        rendered[Path(wall_times)] = wall_times_csv(cells, models, setting_list)
    write_all_atomic(rendered)
    return {p.name: p for p in rendered}


def run_evaluate_stage(params: Params, finetuned: Path, processed: Path, subsets: Path,
                       metrics: Path, plots: Path, timings: Path) -> dict[str, Path]:
    """The ``evaluate`` stage: :func:`run_evaluation` with params.yaml's models, settings,
    pre-trainings and ``evaluate`` options."""
    return run_evaluation(
        finetuned_root=finetuned,
        test_npz=processed / "real_test.npz",
        models=list(params.models),
        settings=params.setting_defs(),
        metrics_dir=metrics,
        plots_dir=plots,
        options=params.evaluate,
        pretrain_dir=metrics / "pretrain",
        timings_root=timings / "finetune",
        wall_times=timings / "wall_times.csv",
        train_npz=processed / "real_train.npz",
        subsets_dir=subsets,
        pretrain_seeds=params.pretrain.seeds,
    )
