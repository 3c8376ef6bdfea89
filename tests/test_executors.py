"""The executor interface: results come back in submission order whatever order the units
finish in, a failed unit stops the rest and surfaces as one line naming it, and an unreachable
cluster is one line at once. (The ``executor`` section's values: tests/test_config.py; the Ray
executor on a real cluster: tests/test_ray_cluster.py.)"""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import numpy as np
import pytest
import torch

from cabinlift import config
from cabinlift.errors import CabinliftError
from cabinlift.executors import LocalExecutor, Unit, open_executor, unit_device


def _after(seconds: float, value: int, log: list[int]) -> int:
    time.sleep(seconds)
    log.append(value)
    return value * 10


def _fail(message: str) -> None:
    raise CabinliftError(message)


def _defect() -> None:
    {}["missing"]  # noqa: B018 - a KeyError, as a defect raises it


def _threads() -> int:
    return torch.get_num_threads()


@pytest.mark.parametrize("workers", [1, 3])
def test_results_come_in_submission_order(workers, tmp_path):
    finished: list[int] = []
    # with 3 workers the first unit finishes last
    units = [Unit(f"u{i}", _after, (d, i, finished)) for i, d in enumerate([0.3, 0.15, 0.0])]
    with LocalExecutor(workers, record=tmp_path / "units.jsonl") as ex:
        assert list(ex.map(units, "test")) == [0, 10, 20]
    assert finished == ([0, 1, 2] if workers == 1 else [2, 1, 0])
    record = [json.loads(line) for line in (tmp_path / "units.jsonl").read_text().splitlines()]
    assert sorted(r["unit"] for r in record) == ["u0", "u1", "u2"]
    assert all(r["node"].startswith("local:") and r["wall_s"] >= 0 for r in record)
    assert {r["fn"] for r in record} == {"test_executors._after"}  # the function each ran


def test_a_failed_unit_is_one_line_naming_it_and_stops_the_units_after_it():
    ran: list[int] = []
    units = [Unit("u0", _after, (0, 0, ran)),
             Unit("finetune scratch simplebl pct5 run 03", _fail, ("a.npz: bad row 4",)),
             Unit("u2", _after, (0, 2, ran))]
    results = LocalExecutor(1).map(units, "test")
    assert next(results) == 0
    with pytest.raises(CabinliftError) as err:
        next(results)
    assert str(err.value) == "finetune scratch simplebl pct5 run 03: a.npz: bad row 4"
    assert ran == [0]  # the unit after the failed one never ran


def test_a_defect_in_a_unit_is_named_by_its_type(capsys):
    with pytest.raises(CabinliftError) as err:
        list(LocalExecutor(2).map([Unit("pretrain semgcn", _defect)], "test"))
    assert str(err.value) == "pretrain semgcn: KeyError: 'missing'"
    assert "Traceback" in capsys.readouterr().err  # the defect's traceback is not lost


def test_queued_units_do_not_start_after_a_failure():
    ran: list[int] = []
    units = [Unit("bad", _fail, ("x",))] + [Unit(f"u{i}", _after, (0.2, i, ran))
                                            for i in range(6)]
    with pytest.raises(CabinliftError, match="^bad: x$"):
        list(LocalExecutor(2).map(units, "test"))
    assert len(ran) < 6


def test_pool_units_compute_on_their_share_of_threads():
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = list(LocalExecutor(2, threads=1).map([Unit("a", _threads), Unit("b", _threads)],
                                                    "test"))
        assert seen == [1, 1] and torch.get_num_threads() == 2  # restored afterwards
    finally:
        torch.set_num_threads(saved)


def test_map_is_lazy_in_a_single_worker():
    """One worker runs a unit only when its result is asked for, so a stage can write each
    output as soon as it is complete."""
    ran: list[int] = []
    results = LocalExecutor(1).map([Unit(f"u{i}", _after, (0, i, ran)) for i in range(3)], "t")
    assert ran == []
    next(results)
    assert ran == [0]
    results.close()


def test_an_address_nobody_answers_at_is_one_line(tmp_path, capsys):
    """Ray itself retries such an address for many minutes; the stage says at once."""
    import socket

    from cliutil import one_line_error, write_params
    from tinydata import write_processed

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = config.read_yaml("params.yaml")
    processed = write_processed(tmp_path / "processed", p)
    params = write_params(tmp_path / "params.yaml", p, **{
        "executor.kind": "ray", "executor.address": f"127.0.0.1:{port}", "store.dir": None})
    err = one_line_error(capsys, [
        "--timings", str(tmp_path / "logs"), "--params", str(params), "pretrain", "--model",
        "simplebl", "--processed", str(processed), "--out", str(tmp_path / "m"),
        "--summary", str(tmp_path / "s")])
    assert err == (f"cabinlift pretrain: error: {params}: key 'executor.address': nothing "
                   f"answers at '127.0.0.1:{port}' (Connection refused); start the cluster "
                   f"first (docs/cluster.md)")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("section", [None, config.Executor(
    kind="local", address=None, cpus_per_task=4, gpus_per_task=1, max_retries=3)])
def test_the_local_config_opens_a_local_executor(section):
    ex = open_executor(section, workers=3, threads=1)
    assert isinstance(ex, LocalExecutor) and (ex.workers, ex.threads) == (3, 1)
    assert not ex.unit_bars and ex.share(threading) is threading
    assert open_executor(section).unit_bars  # one unit at a time: its own bar shows


def test_the_device_of_units_is_the_executors_decision():
    """Locally this machine's devices; on Ray what a task reserves, whatever the stage's
    machine has (a task sees its own GPUs as cuda:0, ...)."""
    ray = config.Executor(kind="ray", address=None, cpus_per_task=1, gpus_per_task=0,
                          max_retries=3)
    assert unit_device(ray, "auto", "k") == "cpu"
    assert unit_device(ray.model_copy(update={"gpus_per_task": 0.5}), "auto", "k") == "cuda"
    assert unit_device(ray, "cuda", "k") == "cuda"  # the params check holds it to gpus_per_task
    assert unit_device(None, "cpu", "k") == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert unit_device(None, "auto", "k") == unit_device(ray.model_copy(
        update={"kind": "local"}), "auto", "k") == expected
    if not torch.cuda.is_available():
        with pytest.raises(CabinliftError, match="^key 'x' asks for CUDA .'cuda:1'., which is "
                                                 "not available on this machine$"):
            unit_device(None, "cuda:1", "key 'x'")


@dataclasses.dataclass(frozen=True)
class _Frames:
    frame_id: np.ndarray
    name: str


def test_read_only_arrays_become_writable_copies():
    """As a Ray task gets arrays from the object store; a unit always has them writable."""
    from cabinlift.executors import _writable

    frozen = np.arange(4)
    frozen.flags.writeable = False
    mine = np.zeros(2)
    args = ({"train": {"x2d": frozen}}, [_Frames(frozen, "a")], mine, "text")
    out = _writable(args)
    assert isinstance(out, tuple) and out[2] is mine and out[3] == "text"
    for array in (out[0]["train"]["x2d"], out[1][0].frame_id):
        assert array.flags.writeable and np.array_equal(array, frozen)
    assert out[1][0].name == "a" and not frozen.flags.writeable
