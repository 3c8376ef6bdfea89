"""The training stages: fine-tuning runs are deterministic (the same params give identical
per-run records), the run store reuses finished runs, and the units run are those of the Ray
executor (tests/test_ray_cluster.py)."""

from __future__ import annotations

import copy
import json

import numpy as np
import torch
from tinydata import write_processed

from cabinlift import config
from cabinlift.executors import function_name
from cabinlift.training import units
from cabinlift.training.plan import run_seed
from cabinlift.training.stages import run_finetune_all, run_pretrain_stage

PARAMS = config.read_yaml("params.yaml")


def _params():
    p = copy.deepcopy(PARAMS)
    p["lifters"]["simplebl"].update(linear_size=32, num_stage=1, dropout=0.5)
    p["train"]["max_epochs"] = 3
    p["train"]["val_every"] = 1
    p["train"]["device"] = "cpu"
    p["store"]["dir"] = None
    return p


def _processed(tmp_path):
    return write_processed(tmp_path, PARAMS)


def run_finetune(p, model, setting, init, processed, subset, out_root, pretrained=None,
                 timings_dir=None, store=None):
    """One setting of a fine-tuning stage; its outputs go to ``out_root/<setting>``."""
    return run_finetune_all(config.build(p), model, init, processed, subset.parent, out_root,
                            pretrained, timings_dir, [setting], store)[setting]


def run_pretrain(p, processed, out, store=None, timings_dir=None):
    """The pre-training stage of SimpleBL into ``out/simplebl``, its summary into
    ``out/simplebl.json``, with the run store folder ``store`` (None: none)."""
    p = copy.deepcopy(p)
    p["store"]["dir"] = None if store is None else str(store)
    return run_pretrain_stage(config.build(p), ["simplebl"], processed, out, out,
                              timings_dir)["simplebl"]


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
    pa = np.load(tmp_path / "a" / "pct25" / "predictions.npz")["pred"]
    pb = np.load(tmp_path / "b" / "pct25" / "predictions.npz")["pred"]
    assert pa.shape == (8, 60, 13, 3) and np.array_equal(pa, pb)
    saved = json.loads((tmp_path / "a" / "pct25" / "runs.json").read_text())
    assert [r["test_mpjpe"] for r in saved] == [r["test_mpjpe"] for r in a]
    # wall times are logged beside the outputs, never inside them
    assert all("wall_time_s" not in r for r in saved)
    log = json.loads((tmp_path / "logs" / "finetune" / "scratch" / "simplebl" / "pct25.json")
                     .read_text())
    assert [t["repetition"] for t in log] == list(range(8))
    assert [t["wall_time_s"] for t in log] == [r["wall_time_s"] for r in a]
    # the executor's record names the unit functions, those the Ray executor runs too
    # (tests/test_ray_cluster.py compares the two)
    record = (tmp_path / "logs" / "units" / "finetune_scratch_simplebl.jsonl").read_text()
    assert {json.loads(line)["fn"] for line in record.splitlines()} == {
        function_name(units.train_stack)}

    summary = run_pretrain(p, processed, tmp_path / "pt")
    saved = json.loads((tmp_path / "pt" / "simplebl.json").read_text())
    assert "wall_time_s" not in saved and [s["seed"] for s in saved["seeds"]] == [0, 1, 2]
    assert summary["epochs_run"] == 3
    assert sorted(f.name for f in (tmp_path / "pt" / "simplebl").iterdir()) == [
        "seed0.pt", "seed1.pt", "seed2.pt"]
    c = run_finetune(p, "simplebl", "pct25", "pretrained", processed,
                     processed / "subsets" / "pct25.json", tmp_path / "c",
                     tmp_path / "pt" / "simplebl")
    assert [r["test_mpjpe"] for r in c] != [r["test_mpjpe"] for r in a]
    # the runs of a setting start from the pre-trainings in turn
    assert [r["pretrain_seed"] for r in c] == [0, 1, 2, 0, 1, 2, 0, 1]


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
    assert (tmp_path / "w2a" / "pct50" / "predictions.npz").read_bytes() == (
        tmp_path / "w2b" / "pct50" / "predictions.npz").read_bytes()
    for a, b in zip(out["w1"], out["w2a"], strict=True):  # one vs two intra-op threads
        assert (a["epochs_run"], a["best_epoch"]) == (b["epochs_run"], b["best_epoch"])
        assert abs(a["test_mpjpe"] - b["test_mpjpe"]) < 0.1


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_store_reuses_finished_runs_with_identical_outputs(tmp_path, capsys):
    """A second run of a stage reuses every stored run and writes the same bytes; a change
    of a parameter the runs read, or a damaged entry, trains again."""
    from cabinlift.training.store import RunStore

    processed = _processed(tmp_path)
    p = _params()
    subset = processed / "subsets" / "pct25.json"
    run_finetune(p, "simplebl", "pct25", "scratch", processed, subset, tmp_path / "plain")
    store = RunStore(tmp_path / "store")
    first = run_finetune(p, "simplebl", "pct25", "scratch", processed, subset, tmp_path / "a",
                         store=store)
    assert len(store.entries()) == 8 and not any(r["reused"] for r in first)
    capsys.readouterr()
    again = run_finetune(p, "simplebl", "pct25", "scratch", processed, subset, tmp_path / "b",
                         store=store)
    log = capsys.readouterr().err
    assert all(r["reused"] for r in again)
    assert log.count(": reused ") == 8 and ": trained " not in log
    assert _files(tmp_path / "plain" / "pct25") == _files(tmp_path / "a" / "pct25") == _files(
        tmp_path / "b" / "pct25")

    store.entries()[0].write_bytes(b"damaged")  # e.g. a disk error: trained again
    p2 = _params()
    run_finetune(p2, "simplebl", "pct25", "scratch", processed, subset, tmp_path / "c",
                 store=store)
    assert capsys.readouterr().err.count(": trained ") == 1
    assert _files(tmp_path / "c" / "pct25") == _files(tmp_path / "a" / "pct25")

    p2["train"]["lr"] = 0.002  # a parameter every run reads: nothing matches
    run_finetune(p2, "simplebl", "pct25", "scratch", processed, subset, tmp_path / "d",
                 store=store)
    assert capsys.readouterr().err.count(": trained ") == 8
    assert len(store.entries()) == 16


def test_store_keys_follow_the_starting_checkpoint(tmp_path, capsys):
    """The eight-subject setting's three seeds start from the three pre-trainings in turn:
    changing the second pre-training's checkpoint retrains exactly the run that starts from it
    (run 01), and a stage given the same checkpoints again trains nothing."""
    from cabinlift.training.store import RunStore

    processed = _processed(tmp_path)
    p = _params()
    subset = processed / "subsets" / "subj8.json"
    store = RunStore(tmp_path / "store")
    pt = tmp_path / "pt" / "simplebl"
    run_pretrain(p, processed, tmp_path / "pt", store=store.root)
    first = [(pt / f"seed{j}.pt").read_bytes() for j in range(3)]
    assert len(set(first)) == 3  # three seeds, three pre-trainings
    a = run_finetune(p, "simplebl", "subj8", "pretrained", processed, subset, tmp_path / "a",
                     pt, store=store)
    assert [(r["repetition"], r["seed"], r["pretrain_seed"]) for r in a] == [
        (0, 0, 0), (1, 1, 1), (2, 2, 2)]
    run_pretrain(p, processed, tmp_path / "pt", store=store.root)
    assert [(pt / f"seed{j}.pt").read_bytes() for j in range(3)] == first
    capsys.readouterr()
    ckpt = torch.load(pt / "seed1.pt", weights_only=True)
    next(iter(ckpt["state_dict"].values())).mul_(0.5)
    torch.save(ckpt, pt / "seed1.pt")
    b = run_finetune(p, "simplebl", "subj8", "pretrained", processed, subset, tmp_path / "b",
                     pt, store=store)
    log = capsys.readouterr().err
    assert log.count(": trained ") == 1 and "subj8 run 01: trained" in log, log
    assert [r["test_mpjpe"] for r in b][::2] == [r["test_mpjpe"] for r in a][::2]
    assert b[1]["test_mpjpe"] != a[1]["test_mpjpe"]


def test_snapshots_change_no_output_and_are_removed_once_runs_are_stored(tmp_path, capsys):
    """Fine-tuning stacks that snapshot every epoch write the bytes of stacks that do not, and
    leave only their finished runs in the store."""
    from cabinlift.training.store import RunStore

    processed = _processed(tmp_path)
    p = _params()
    p["train"]["runs_per_group"] = 4
    subset = processed / "subsets" / "pct25.json"
    run_finetune(p, "simplebl", "pct25", "scratch", processed, subset, tmp_path / "plain")
    store = RunStore(tmp_path / "store", snapshot_every_epochs=1)
    run_finetune(p, "simplebl", "pct25", "scratch", processed, subset, tmp_path / "a",
                 store=store)
    assert _files(tmp_path / "a" / "pct25") == _files(tmp_path / "plain" / "pct25")
    assert len(store.entries()) == 8 and store.snapshots() == []
    assert "snapshot" not in capsys.readouterr().err
