"""Fine-tuning runs are deterministic: the same params give identical per-run records."""

from __future__ import annotations

import copy
import json

import numpy as np

from cabinlift import config
from cabinlift.arrays import save_arrays
from cabinlift.experiments import run_finetune, run_pretrain, run_seed
from cabinlift.subsets import write_subsets

PARAMS = config.load_params("params.yaml")


def _params():
    p = copy.deepcopy(PARAMS)
    p["lifters"]["simplebl"] = {"linear_size": 32, "num_stage": 1, "dropout": 0.5}
    p["train"]["max_epochs"] = 3
    p["train"]["val_every"] = 1
    p["train"]["device"] = "cpu"
    return p


def _split(rng, n, subjects):
    x = rng.normal(size=(n, 13, 2)).astype(np.float32)
    y = (x.reshape(n, 26) @ rng.normal(size=(26, 39))).reshape(n, 13, 3) * 100
    return {"x2d": x, "y3d": y.astype(np.float32), "mask": rng.random((n, 13)) > 0.1,
            "subject": np.asarray(subjects, np.int64)}


def _processed(tmp_path):
    rng = np.random.default_rng(0)
    train_subjects = np.repeat(np.arange(1, 9), 40)
    save_arrays(tmp_path / "real_train.npz", _split(rng, 320, train_subjects))
    save_arrays(tmp_path / "real_val.npz", _split(rng, 40, np.full(40, 10)))
    save_arrays(tmp_path / "real_test.npz", _split(rng, 60, np.full(60, 11)))
    for split in ("train", "val", "test"):
        save_arrays(tmp_path / f"synthetic_{split}.npz", _split(rng, 100, np.zeros(100)))
    write_subsets(train_subjects, config.settings(PARAMS), 0, 2, tmp_path / "subsets")
    return tmp_path


def _strip(records):
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in records]


def test_finetune_is_deterministic_and_pretrained_differs(tmp_path):
    processed = _processed(tmp_path)
    p = _params()
    a = run_finetune(p, "simplebl", "pct25", "scratch", processed,
                     processed / "subsets" / "pct25.json", tmp_path / "a", None, tmp_path / "logs")
    b = run_finetune(p, "simplebl", "pct25", "scratch", processed,
                     processed / "subsets" / "pct25.json", tmp_path / "b")
    assert len(a) == 8 and _strip(a) == _strip(b)
    pa = np.load(tmp_path / "a" / "predictions.npz")["pred"]
    pb = np.load(tmp_path / "b" / "predictions.npz")["pred"]
    assert pa.shape == (8, 60, 13, 3) and np.array_equal(pa, pb)
    saved = json.loads((tmp_path / "a" / "runs.json").read_text())
    assert [r["test_mpjpe"] for r in saved] == [r["test_mpjpe"] for r in a]
    # wall times are logged beside the outputs, never inside them
    assert all("wall_time_s" not in r for r in saved)
    log = json.loads((tmp_path / "logs" / "finetune" / "scratch" / "simplebl" / "pct25.json")
                     .read_text())
    assert [t["repetition"] for t in log] == list(range(8))
    assert [t["wall_time_s"] for t in log] == [r["wall_time_s"] for r in a]

    summary = run_pretrain(p, "simplebl", processed, tmp_path / "pt.pt", tmp_path / "pt.json")
    assert "wall_time_s" not in json.loads((tmp_path / "pt.json").read_text())
    assert summary["epochs_run"] == 3
    c = run_finetune(p, "simplebl", "pct25", "pretrained", processed,
                     processed / "subsets" / "pct25.json", tmp_path / "c", tmp_path / "pt.pt")
    assert [r["test_mpjpe"] for r in c] != [r["test_mpjpe"] for r in a]


def test_run_seed_is_stable_and_distinct():
    assert run_seed(0, "simplebl", "pct5", 0) == run_seed(0, "simplebl", "pct5", 0)
    assert len({run_seed(0, "simplebl", "pct5", r) for r in range(8)}) == 8


def test_runs_trained_in_groups_equal_runs_trained_alone(tmp_path):
    processed = _processed(tmp_path)
    out = {}
    for group in (1, 3):  # 8 runs: one at a time, or 3 + 3 + 2 vectorised
        p = _params()
        p["train"]["runs_per_group"] = group
        out[group] = run_finetune(p, "simplebl", "subj1", "scratch", processed,
                                  processed / "subsets" / "subj1.json", tmp_path / str(group))
    for a, b in zip(out[1], out[3], strict=True):
        assert (a["epochs_run"], a["best_epoch"]) == (b["epochs_run"], b["best_epoch"])
        assert abs(a["test_mpjpe"] - b["test_mpjpe"]) < 0.1


def test_bad_runs_per_group_is_named(tmp_path):
    import pytest

    from cabinlift.errors import CabinliftError

    processed = _processed(tmp_path)
    p = _params()
    p["train"]["runs_per_group"] = 0
    with pytest.raises(CabinliftError, match="train.runs_per_group"):
        run_finetune(p, "simplebl", "subj1", "scratch", processed,
                     processed / "subsets" / "subj1.json", tmp_path / "x")


def test_parallel_workers_are_deterministic_and_match_one_worker(tmp_path):
    processed = _processed(tmp_path)
    out = {}
    for name, workers in (("w1", 1), ("w2a", 2), ("w2b", 2)):
        p = _params()
        p["train"]["workers"] = workers
        out[name] = run_finetune(p, "simplebl", "pct50", "scratch", processed,
                                 processed / "subsets" / "pct50.json", tmp_path / name)
    # which thread trains which run never matters: identical bytes
    assert (tmp_path / "w2a" / "predictions.npz").read_bytes() == (
        tmp_path / "w2b" / "predictions.npz").read_bytes()
    for a, b in zip(out["w1"], out["w2a"], strict=True):  # one vs two intra-op threads
        assert (a["epochs_run"], a["best_epoch"]) == (b["epochs_run"], b["best_epoch"])
        assert abs(a["test_mpjpe"] - b["test_mpjpe"]) < 0.1
