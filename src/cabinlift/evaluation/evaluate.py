"""Entry point of the ``evaluate`` stage: every fine-tuning run -> Table 1, summary, figures.

Load the inputs, compute one :class:`~cabinlift.evaluation.results.EvaluationResults`, render
each output from it (:data:`METRICS_OUTPUTS`, :data:`PLOTS_OUTPUTS`), write them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cabinlift.config import Evaluate, Params, SettingDef
from cabinlift.evaluation.compute import compute_results, load_inputs
from cabinlift.evaluation.outputs import write_all_atomic
from cabinlift.evaluation.plots import (
    curve_csv,
    curve_png,
    frames_worth_csv,
    frames_worth_png,
    gain_csv,
    gain_png,
    per_joint_csv,
    per_joint_png,
    weight_movement_csv,
    weight_movement_png,
)
from cabinlift.evaluation.qualitative import qualitative_json, qualitative_png
from cabinlift.evaluation.results import EvaluationResults
from cabinlift.evaluation.settings import parse_settings
from cabinlift.evaluation.summary import summary_json
from cabinlift.evaluation.table import runs_csv, table1_json, table1_markdown, wall_times_csv

Renderer = Callable[[EvaluationResults], str | bytes]

#: The files written to the metrics directory, in writing order, and what renders each.
METRICS_OUTPUTS: dict[str, Renderer] = {
    "table1.json": table1_json,
    "table1.md": table1_markdown,
    "runs.csv": runs_csv,
    "summary.json": summary_json,
}
#: The files written to the plots directory, in writing order, and what renders each.
PLOTS_OUTPUTS: dict[str, Renderer] = {
    "mpjpe_vs_data.csv": curve_csv,
    "mpjpe_vs_data.png": curve_png,
    "pretraining_gain.csv": gain_csv,
    "pretraining_gain.png": gain_png,
    "frames_worth.csv": frames_worth_csv,
    "frames_worth.png": frames_worth_png,
    "weight_movement.csv": weight_movement_csv,
    "weight_movement.png": weight_movement_png,
    "per_joint.csv": per_joint_csv,
    "per_joint.png": per_joint_png,
    "qualitative.json": qualitative_json,
    "qualitative.png": qualitative_png,
}


def render_outputs(results: EvaluationResults, metrics_dir: Path, plots_dir: Path,
                   wall_times: Path | None = None) -> dict[Path, str | bytes]:
    """``{path: content}`` of every output (the wall times too where ``wall_times`` is given),
    in writing order."""
    rendered: dict[Path, str | bytes] = {}
    for directory, outputs in ((metrics_dir, METRICS_OUTPUTS), (plots_dir, PLOTS_OUTPUTS)):
        for name, render in outputs.items():
            rendered[directory / name] = render(results)
    if wall_times is not None:
        rendered[wall_times] = wall_times_csv(results)
    return rendered


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
    pretrained_models: str | Path | None = None,
) -> dict[str, Path]:
    """Aggregate all fine-tuning runs of ``models`` x (scratch, pretrained) x ``settings`` into
    Table 1 and its companions, and return ``{file name: path written}``.

    Besides the settings, every model's pre-trained weights evaluated before fine-tuning
    (``<finetuned_root>/pretrained/<model>/none/``) give the "No real data" cells, and the real
    training pool ``train_npz`` with the subsets of ``subsets_dir`` the mean-training-pose
    reference of each setting. ``pretrain_seeds`` is the number of pre-trainings per model
    (each gives a "No real data" run). ``pretrained_models`` holds their checkpoints
    (``<model>/seed<j>.pt``): how far fine-tuning moved each pre-trained run from the one it
    started from is measured against them (None: not measured, reported as such).

    ``settings`` are params.yaml's setting definitions in column order; ``options`` its
    ``evaluate`` section (the example figure's model, rows and frame; the 3DPCK threshold and
    AUC range; the level of the significance marks; the setting of the per-joint figure).
    ``wall_times`` is where to write the runs' wall times (read from ``timings_root``). All
    inputs are read and checked and all outputs rendered before the first file is written, so a
    failure leaves the previous outputs intact.
    """
    inputs = load_inputs(finetuned_root, test_npz, models, train_npz=train_npz,
                         subsets_dir=subsets_dir, pretrain_dir=pretrain_dir,
                         timings_root=timings_root, pretrain_seeds=pretrain_seeds,
                         pretrained_models=pretrained_models)
    results = compute_results(inputs, models, parse_settings(settings), options)
    rendered = render_outputs(results, Path(metrics_dir), Path(plots_dir),
                              None if wall_times is None else Path(wall_times))
    write_all_atomic(rendered)
    return {p.name: p for p in rendered}


def run_evaluate_stage(params: Params, finetuned: Path, processed: Path, subsets: Path,
                       metrics: Path, plots: Path, timings: Path,
                       pretrained: Path) -> dict[str, Path]:
    """The ``evaluate`` stage: :func:`run_evaluation` with params.yaml's models, settings,
    pre-trainings (their checkpoints in ``pretrained``) and ``evaluate`` options."""
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
        pretrained_models=pretrained,
    )
