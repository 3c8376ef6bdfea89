"""How many CPU threads a stage's process computes on: one rule for every stage.

PyTorch (and the OpenMP pool under it) starts with one intra-op thread per core and spins its
threads while they wait. On a machine where other work holds some cores, a training step split
over every core stalls on the busy ones: measured on 2 shared cores, a pre-training ran 5.5x
(once 40x) slower on the default 2 threads than on 1. So each stage sets its thread count
explicitly from ``threads`` in params.yaml: ``auto`` is the number of cores this process may run
on; a number is taken as it is (set 1 on a busy shared machine). Training splits that budget
over its parallel stacks (``train.workers``). In portable numerics every computation runs on one
intra-op thread (:func:`cabinlift.numerics.unit_threads`): the budget is then how many units of
work run at once.
"""

from __future__ import annotations

import os

_budget: list[int] = []  # the budget set by use_threads(), if any


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def resolve_threads(value: int | str) -> int:
    """``threads`` of params.yaml: ``auto`` -> :func:`available_cores`, else the integer."""
    return available_cores() if value == "auto" else int(value)


def use_threads(n: int) -> None:
    """A budget of ``n`` threads from now on: PyTorch computes on ``n`` intra-op threads, or on
    one in portable numerics (numpy's own loops are single threaded)."""
    import torch

    from cabinlift.numerics import unit_threads

    _budget[:] = [n]
    torch.set_num_threads(unit_threads(n, 1))


def thread_budget() -> int:
    """The threads a stage may use at once (:func:`use_threads`; PyTorch's before any)."""
    if _budget:
        return _budget[0]
    import torch

    return torch.get_num_threads()
