"""Every computing stage sets its thread count from ``threads`` in params.yaml."""

from __future__ import annotations

import os

import pytest
import torch
from cliutil import write_params

from cabinlift import cli, config, numerics
from cabinlift.resources import available_cores, resolve_threads, thread_budget
from cabinlift.training.plan import training_workers

PARAMS = config.read_yaml("params.yaml")


def test_auto_is_the_cores_of_the_affinity_mask():
    assert resolve_threads("auto") == len(os.sched_getaffinity(0)) == available_cores()
    assert resolve_threads(3) == 3


@pytest.fixture
def restore_threads():
    saved = torch.get_num_threads()
    yield
    torch.set_num_threads(saved)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("mode", ["native", "portable"])
def test_a_stage_computes_on_the_configured_threads(tmp_path, threads, mode, restore_threads):
    """The budget is ``threads``; PyTorch computes on all of it in native numerics, on one
    thread in portable numerics (a sum split over threads rounds by their number)."""
    torch.set_num_threads(7)
    params = write_params(tmp_path / "params.yaml", PARAMS, threads=threads,
                          **{"numerics.mode": mode})
    # a stage that fails fast (no processed arrays) after the command line set the threads
    assert cli.main(["--params", str(params), "pretrain", "--processed", str(tmp_path),
                     "--out", str(tmp_path / "s")]) == 1
    assert torch.get_num_threads() == (threads if mode == "native" else 1)
    assert thread_budget() == threads
    # training splits that budget: one worker per thread, each on one thread
    assert training_workers(config.build(PARAMS), "cpu") == threads
    numerics.apply("portable")  # as the other tests compute


def test_bad_threads_is_named(tmp_path, capsys):
    params = write_params(tmp_path / "params.yaml", PARAMS, threads=0)
    assert cli.main(["--params", str(params), "subsets"]) == 1
    assert "key 'threads' must be 'auto' or an integer >= 1, got 0" in capsys.readouterr().err
