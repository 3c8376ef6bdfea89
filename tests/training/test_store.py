"""The store of finished runs: entries round-trip exactly, damaged ones are ignored, clean-up
keeps the most recently used entries under the bound."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from cabinlift.training.store import RunStore, StoredRun, digest


def _run(seed: int, size: int = 1000) -> StoredRun:
    g = torch.Generator().manual_seed(seed)
    big = torch.randn(4, size, generator=g)
    return StoredRun({"w": big[1]}, 12.5, 3, 4, 0.7,
                     [{"epoch": 1, "val_mpjpe": 20.0}], {"pred_mm": big[2:], "x": 1.5})


def test_round_trip_is_exact_and_holds_only_the_run(tmp_path):
    store = RunStore(tmp_path)
    run = _run(0)
    store.put("k1", run, {"model": "simplebl"})
    back = store.get("k1")
    assert back is not None and back.reused and not run.reused
    assert torch.equal(back.best_state["w"], run.best_state["w"])
    assert torch.equal(back.extra["pred_mm"], run.extra["pred_mm"]) and back.extra["x"] == 1.5
    assert (back.best_val_mpjpe, back.best_epoch, back.epochs_run, back.history) == (
        12.5, 3, 4, [{"epoch": 1, "val_mpjpe": 20.0}])
    # views were copied: the entry does not hold the whole 4 x 1000 storage
    assert store.path("k1").stat().st_size < 4 * 4 * 1000
    assert store.get("other") is None


def test_damaged_or_foreign_entries_are_not_trusted(tmp_path):
    store = RunStore(tmp_path)
    store.put("k1", _run(0), {})
    store.path("k1").write_bytes(store.path("k1").read_bytes()[:100])  # truncated
    assert store.get("k1") is None
    store.put("k2", _run(1), {})
    os.replace(store.path("k2"), store.path("k3"))  # an entry under another key
    assert store.get("k3") is None


def test_disabled_store_keeps_nothing(tmp_path):
    store = RunStore(None)
    store.put("k", _run(0), {})
    assert not store.enabled and store.get("k") is None and store.entries() == []
    assert store.clean() == (0, 0)


def test_clean_removes_least_recently_used_first(tmp_path):
    store = RunStore(tmp_path, max_bytes=None)
    for i, key in enumerate(("old", "mid", "new")):
        store.put(key, _run(i), {})
        os.utime(store.path(key), ns=(10**18 + i * 10**9,) * 2)
    store.get("old")  # reading an entry makes it the most recently used
    one = store.path("mid").stat().st_size
    removed, kept = store.clean(max_bytes=2.5 * one)
    assert removed == 1 and not store.path("mid").exists()
    assert store.path("old").exists() and store.path("new").exists()
    assert kept == store.size()
    assert store.clean(0)[0] == 2 and store.entries() == []


def test_snapshots_are_not_entries_but_take_space_like_them(tmp_path):
    store = RunStore(tmp_path)
    store.put("old", _run(0), {})
    os.utime(store.path("old"), ns=(10**18,) * 2)
    snap = store.snapshot_path(["k1", "k2"])
    assert snap.parent == tmp_path and snap.name.endswith(".snapshot.pt")
    assert store.snapshot_path(["k2", "k1"]) != snap  # named by the stack: keys in order
    snap.write_bytes(b"x" * 5000)
    assert store.entries() == [store.path("old")] and store.snapshots() == [snap]
    assert store.size() == store.path("old").stat().st_size + 5000
    assert store.clean(max_bytes=6000) == (1, 5000)  # least recently used first: the entry
    store.remove_snapshot(["k1", "k2"])
    assert store.snapshots() == [] and store.size() == 0
    assert RunStore(None).snapshot_path(["k1"]) is None
    assert store.snapshot_path(["k1", None]) is None  # a run without a key: no snapshot


def test_snapshot_settings_come_from_the_store_section():
    from cabinlift.config import Store

    store = RunStore.from_config(Store(dir="x", snapshot_every_epochs=5, snapshot_minutes=30))
    assert (store.snapshot_every_epochs, store.snapshot_minutes) == (5, 30.0)
    store = RunStore.from_config(Store(dir="x"))
    assert (store.snapshot_every_epochs, store.snapshot_minutes) == (None, None)
    assert not RunStore.from_config(None).enabled


def test_digest_tells_arrays_and_values_apart():
    a = np.arange(5, dtype=np.int64)
    assert digest([a, 1]) == digest([a.copy(), 1])
    assert digest([a, 1]) != digest([a[::-1].copy(), 1])
    assert digest([a, 1]) != digest([a.astype(np.int32), 1])
    assert digest({"x": 1}) != digest({"x": 1.5})


def test_store_command_reports_and_cleans(tmp_path, capsys):
    import json

    from cliutil import write_params

    from cabinlift import cli, config

    store = RunStore(tmp_path / "runs")
    for i in range(3):
        store.put(f"k{i}", _run(i), {})
    size = store.size()
    params = write_params(tmp_path / "params.yaml", config.read_yaml("params.yaml"),
                          **{"store.dir": str(store.root), "store.max_gb": 1})
    argv = ["--params", str(params), "store"]
    assert cli.main(argv + ["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info == {"dir": str(store.root), "entries": 3, "snapshots": 0, "bytes": size,
                    "size": cli.human_size(size), "max_bytes": 10**9, "max_size": "1 GB"}
    assert cli.main(argv + ["clean"]) == 0  # under the bound: nothing removed
    assert json.loads(capsys.readouterr().out)["removed"] == 0
    assert cli.main(argv + ["clean", "--max-gb", str(size * 0.7 / 1e9)]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 2
    assert cli.main(argv + ["clean", "--all"]) == 0
    assert store.entries() == []


def test_store_command_prints_sizes_a_person_reads(tmp_path, capsys):
    """``store info`` once printed bytes only (``"bytes": 3312345678``); each size now also
    comes as text, in the decimal GB of ``store.max_gb``, and the JSON still parses."""
    import json

    from cliutil import write_params

    from cabinlift import cli, config

    root = tmp_path / "runs"
    root.mkdir()
    old, new = root / "old.pt", root / "new.snapshot.pt"
    old.write_bytes(b"\0" * 1_260_000)
    new.write_bytes(b"\0" * 50_000)
    os.utime(old, (1_000_000, 1_000_000))  # least recently used
    params = write_params(tmp_path / "params.yaml", config.read_yaml("params.yaml"),
                          **{"store.dir": str(root), "store.max_gb": 10})
    argv = ["--params", str(params), "store"]
    assert cli.main(argv + ["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["bytes"], info["size"], info["max_bytes"], info["max_size"]) == (
        1_310_000, "1.3 MB", 10**10, "10 GB")
    assert cli.main(argv + ["clean", "--max-gb", "0.001"]) == 0
    clean = json.loads(capsys.readouterr().out)
    assert (clean["removed"], clean["bytes"], clean["size"], clean["freed_bytes"],
            clean["freed"]) == (1, 50_000, "50 kB", 1_260_000, "1.3 MB")
    assert [cli.human_size(n) for n in (0, 999, 1000, 1_250_000, 9_960_000, 3_312_345_678,
                                        1.2e13)] == [
        "0 B", "999 B", "1 kB", "1.2 MB", "10 MB", "3.3 GB", "12 TB"]


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf"])
def test_store_clean_refuses_a_bound_that_is_not_a_size(tmp_path, capsys, value):
    """``--max-gb -1`` once emptied the whole store; a bound must be a finite size >= 0."""
    from cliutil import one_line_error, write_params

    from cabinlift import config

    store = RunStore(tmp_path / "runs")
    store.put("k0", _run(0), {})
    params = write_params(tmp_path / "params.yaml", config.read_yaml("params.yaml"),
                          **{"store.dir": str(store.root)})
    err = one_line_error(capsys, ["--params", str(params), "store", "clean", f"--max-gb={value}"])
    assert err == (f"cabinlift store: error: --max-gb must be a finite number of GB >= 0 (0 "
                   f"empties the store, as --all does), got {value}")
    assert len(store.entries()) == 1


def test_training_stages_depend_on_exactly_the_code_the_store_keys(tmp_path):
    """DVC re-runs a training stage exactly when its runs' store keys change: no stage of
    dvc.yaml lists a source file; the finetune stages depend on the check stage's code manifest
    of their lifter, whose digest is the run store's code version; the pretrain stage, which
    trains every lifter of `models`, on the folder of those manifests, which holds nothing
    else."""
    import yaml

    from cabinlift.inputs import training_code
    from cabinlift.lifters import REGISTRY
    from cabinlift.training.store import code_version

    stages = yaml.safe_load(open("dvc.yaml"))["stages"]
    for name, stage in stages.items():
        stage = stage.get("do", stage)
        assert not [d for d in stage.get("deps", []) if d.startswith("src/")], name
    for name in ("finetune_scratch", "finetune_pretrained"):
        assert "data/inputs/code/training/${item}.json" in stages[name]["do"]["deps"], name
    assert "data/inputs/code/training" in stages["pretrain"]["deps"]
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in stages["check"]["outs"]]
    assert {o for o in outs if o.startswith("data/inputs/code/training/")} == {
        f"data/inputs/code/training/{m}.json" for m in REGISTRY}
    for model in REGISTRY:
        assert training_code(model)["digest"] == code_version(model)
