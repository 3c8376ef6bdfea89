"""The evaluation's one results object, and every output as a function of it alone."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from evalgrid import MODELS, SETTINGS, make_grid, md_table, options, typed_settings

from cabinlift.evaluation.compute import compute_results, load_inputs
from cabinlift.evaluation.evaluate import METRICS_OUTPUTS, PLOTS_OUTPUTS, render_outputs
from cabinlift.evaluation.results import EvaluationResults, TestSetInfo
from cabinlift.evaluation.settings import parse_settings
from cabinlift.evaluation.table import (
    TABLE1_SECTIONS,
    gain_section,
    notes_section,
    table1_markdown,
)


def _results(tmp: Path) -> EvaluationResults:
    root, test_npz = make_grid(tmp)
    inputs = load_inputs(root, test_npz, MODELS, train_npz=test_npz.with_name("real_train.npz"),
                         subsets_dir=test_npz.with_name("subsets"), pretrain_dir=tmp / "pretrain")
    return compute_results(inputs, MODELS, parse_settings(typed_settings(SETTINGS)), options())


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> EvaluationResults:
    return _results(tmp_path_factory.mktemp("results"))


def test_results_hold_the_grid(results: EvaluationResults) -> None:
    r = results
    assert r.models == ("semgcn", "simplebl")
    assert [s.name for s in r.settings] == ["pct50", "subj2", "subj8"]
    assert len(r.cells) == 2 * 2 * 3 + 2  # models x inits x settings, + "none" per model
    assert r.cells["semgcn", "scratch", "subj2"].mean == pytest.approx(25.0, abs=1e-3)
    assert r.cells["simplebl", "pretrained", "none"].mean == pytest.approx(60.0, abs=1e-3)
    assert len(r.tests) == 2 * 3
    # simplebl pct50: pre-trained 21 mm against scratch 100, 200, 300 mm, same subject each
    assert r.tests["simplebl", "pct50"].mean_diff == pytest.approx(-179.0, abs=1e-3)
    assert r.train_frames("pct50") == 101.0  # 100 + repetition 0, 1, 2, in every cell
    # steps 100 (r + 1), + 7 when pre-trained: (200 + 207) / 2; "none" cells are not counted
    assert r.steps("pct50") == 203.5
    # no single-subject full-fraction setting: the first with more than one run
    assert r.per_joint_setting.name == "pct50"
    # 10 frames of subjects 11-13, 13 joints less the 6 unannotated; eating, drinking, unknown
    assert r.test_set == TestSetInfo("real_test.npz", 10, (11, 12, 13), 124, 3)
    assert r.pretrain.keys() == {"semgcn"}
    assert r.above_mean_pose("simplebl", "scratch", "pct50")  # 200 mm: worse than a constant


def test_the_qualitative_frame(results: EvaluationResults) -> None:
    q = results.qualitative
    assert (q.model, q.inits) == ("semgcn", ("scratch", "pretrained"))  # the first model
    # all data = subj8, where PT SemGCN and PT SimpleBL tie at 12 mm: the first one counts
    assert q.selection["reference"] == {"model": "semgcn", "init": "pretrained",
                                        "setting": "subj8"}
    assert q.mask.all()  # a fully annotated frame
    errors = {(p.init, p.setting.name): round(p.error, 2) for p in q.panels}
    assert errors == {  # repetition 0 of each setting
        ("scratch", "pct50"): 30.0, ("scratch", "subj2"): 20.0, ("scratch", "subj8"): 15.0,
        ("pretrained", "pct50"): 20.0, ("pretrained", "subj2"): 18.0,
        ("pretrained", "subj8"): 12.0,
    }
    info = q.info()
    assert info["valid_joints"] == 13 and info["frame_mpjpe"]["scratch"]["pct50"] == 30.0


def test_results_are_frozen(results: EvaluationResults) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        results.alpha = 0.5  # type: ignore[misc]
    with pytest.raises(TypeError):
        results.cells["semgcn", "scratch", "pct50"] = None  # type: ignore[index]


def test_outputs_are_rendered_from_the_results_alone(
    tmp_path: Path, evaluated: dict[str, Path]
) -> None:
    """With every input deleted, the results still render the very bytes the stage wrote."""
    r = _results(tmp_path / "in")
    shutil.rmtree(tmp_path / "in")
    rendered = render_outputs(r, tmp_path / "metrics", tmp_path / "plots")
    assert [p.name for p in rendered] == [*METRICS_OUTPUTS, *PLOTS_OUTPUTS]
    assert [p.name for p in rendered] == list(evaluated)  # the stage writes them in this order
    for path, data in rendered.items():
        written = evaluated[path.name].read_bytes()
        assert (data if isinstance(data, bytes) else data.encode()) == written, path.name
    assert not (tmp_path / "metrics").exists()  # rendering writes nothing


def test_table1_md_is_its_sections_in_order(results: EvaluationResults) -> None:
    sections = [section(results) for section in TABLE1_SECTIONS]
    assert table1_markdown(results) == "\n".join(["# Table 1", ""] + sum(sections, []))
    assert [s[0] for s in sections[:-1]] == [
        "## Average test-set MPJPE [mm] by amount of fine-tuning data",
        "## Spread and significance: mean ± std over runs",
        "## Pre-training effect: PT − scratch MPJPE [mm] over matched runs",
        "## What pre-training is worth: scratch frames to reach each PT cell",
        "## How far fine-tuning moves the pre-trained weights: relative change [%]; gain kept [mm]",
        "## P-MPJPE [mm] (prediction Procrustes-aligned onto ground truth per frame), mean over "
        "runs",
        "## 3DPCK@150 mm [%] (valid joints within 150 mm), mean over runs",
        "## AUC of 3DPCK over 0–150 mm (31 thresholds) [%], mean over runs",
        "## Convergence: runs stopped early / runs best at the last check / runs",
    ]
    assert all(s[-1] == "" for s in sections[:-1])  # each ends with a blank line
    assert sections[-1] == []  # every cell has its runs, every run its partner: no notes


def test_gain_section_known_differences(results: EvaluationResults) -> None:
    rows = md_table("\n".join(gain_section(results)), "## Pre-training effect")
    assert [r[0] for r in rows] == ["PT SemGCN", "PT SimpleBL"]
    # SemGCN, eight subjects: one pair, 12 - 15 mm, no CI
    assert rows[0][3] == "-3.0 (n=1)"
    # SimpleBL, 50 %: differences -79, -179, -279 mm: mean -179, std 100, 95 % CI half-width
    # t(0.975, 2 dof) * 100 / sqrt(3) = 4.3027 * 57.735 = 248.41
    assert rows[1][1].startswith("-179.0 [-427.4, +69.4] p=")


def test_notes_section_names_the_cells_short_of_runs(results: EvaluationResults) -> None:
    settings = tuple(dataclasses.replace(s, runs=4) if s.name == "subj2" else s
                     for s in results.settings)
    r = dataclasses.replace(results, settings=settings)
    assert notes_section(r) == [
        "Runs differing from the configured repetitions: SemGCN / Two subjects: 2 of 4; "
        "PT SemGCN / Two subjects: 2 of 4; SimpleBL / Two subjects: 2 of 4; "
        "PT SimpleBL / Two subjects: 2 of 4.",
        "",
    ]
