"""The disk and time ``cabinlift data check`` estimates: counts by hand from params and data."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from cliutil import typed

from cabinlift import config, estimate
from cabinlift.datacheck import RealData, SubjectData
from cabinlift.lifters import build_lifter

ROOT = Path(__file__).resolve().parents[1]
PARAMS = config.read_yaml(ROOT / "params.yaml")
CHANGES = {
    "models": ["simplebl"], "settings": ["pct50", "subj2"],
    "subsets.settings": {"pct50": {"subjects": 1, "fraction": 0.5, "repetitions": 2, "seeds": 1},
                         "subj2": {"subjects": 2, "fraction": 1.0, "repetitions": 1, "seeds": 3}},
    "normalize.real_splits": {"train": [1, 2], "val": [3], "test": [4]},
    "train.batch_size": 64, "train.max_epochs": 10, "pretrain.seeds": 2,
    "lifters.simplebl.linear_size": 32,
}
# subjects 1 and 2 train (40 and 60 sampled frames: 50 per subject), 4 tests (30 frames)
REAL = RealData(Path("root"), {1: SubjectData(2, 400, 40, 0), 2: SubjectData(2, 600, 60, 0),
                               3: SubjectData(1, 100, 10, 0), 4: SubjectData(2, 300, 30, 0)},
                videos=0, activity_chunks=None)


def test_the_workload_is_every_run_to_max_epochs():
    work = estimate.workload(typed(PARAMS, **CHANGES), REAL, synthetic_train=1000)
    assert work.frames_2d == 140
    assert work.test_frames == 30
    # pct50: 2 runs of 25 frames (1 step per epoch); subj2: 3 runs of 100 frames (2 steps)
    assert work.finetune_runs == 5
    assert work.finetune_steps == 10 * (2 * 1 + 3 * 2)
    # 1000 poses: 16 steps per epoch, 10 epochs, 2 pre-trainings
    assert (work.pretrain_runs, work.pretrain_steps) == (2, 2 * 10 * 16)


def test_pretraining_data_knobs_scale_the_synthetic_steps():
    knobs = {**CHANGES, "pretrain.data.humans": 0.5, "pretrain.data.augment.copies": 3}
    work = estimate.workload(typed(PARAMS, **knobs), REAL, synthetic_train=1000)
    assert work.pretrain_steps == 2 * 10 * 32  # 500 poses x 4 (each and 3 copies) = 2000


def test_disk_counts_every_checkpoint_and_the_test_predictions():
    params = typed(PARAMS, **CHANGES)
    work = estimate.workload(params, REAL, synthetic_train=1000)
    buf = io.BytesIO()
    torch.save(build_lifter("simplebl", **params.hparams("simplebl")).state_dict(), buf)
    one = buf.tell()
    assert estimate.checkpoint_bytes(params, "simplebl") == one
    disk = estimate.disk_bytes(params, work)
    # 2 pre-trainings + 5 runs x 2 inits; 10 runs x 30 test poses x 13 joints x 3 x 4 bytes
    assert disk == {"dvc_cache": 12 * one + 10 * 30 * 13 * 3 * 4, "run_store": 12 * one}


def test_time_is_the_steps_at_the_measured_cost_spread_over_the_cores(monkeypatch):
    params = typed(PARAMS, **CHANGES)
    work = estimate.workload(params, REAL, synthetic_train=1000)
    monkeypatch.setattr(estimate, "step_seconds", lambda p, m, d, s: 0.5)
    monkeypatch.setattr(estimate, "thread_budget", lambda: 2)
    t = estimate.timing(params, work, "cpu")
    assert (t.pretrain, t.finetune) == (320 * 0.5 / 2, 2 * 80 * 0.5 / 2)
    assert estimate.timing(params, work, "cuda").pretrain == 320 * 0.5  # one run at a time


def test_a_step_is_measured_on_one_thread_and_leaves_the_thread_count():
    params = typed(PARAMS, **CHANGES)
    torch.set_num_threads(2)
    seconds = estimate.step_seconds(params, "simplebl", "cpu", seconds=0.2)
    assert 0 < seconds < 1
    assert torch.get_num_threads() == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_a_step_on_the_gpu():
    assert estimate.step_seconds(typed(PARAMS, **CHANGES), "simplebl", "cuda", 0.2) > 0


def test_no_2d_cost_without_the_checkpoints(tmp_path):
    params = typed(PARAMS, **CHANGES, **{
        "detect.mmpose.checkpoint": str(tmp_path / "absent.pth")})
    assert estimate.frame_seconds_2d(params) is None

