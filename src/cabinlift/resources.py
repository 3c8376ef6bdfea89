"""How many CPU threads a stage's process computes on: one rule for every stage.

PyTorch (and the OpenMP pool under it) starts with one intra-op thread per core and spins its
threads while they wait. On a machine where other work holds some cores, a training step split
over every core stalls on the busy ones: measured on 2 shared cores, a pre-training ran 5.5x
(once 40x) slower on the default 2 threads than on 1. So each stage sets its thread count
explicitly from ``threads`` in params.yaml: ``auto`` is the number of cores this process may run
on; a number is taken as it is (set 1 on a busy shared machine). Training splits that budget
over its parallel stacks (``train.workers``).
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def resolve_threads(value: int | str) -> int:
    """``threads`` of params.yaml: ``auto`` -> :func:`available_cores`, else the integer."""
    return available_cores() if value == "auto" else int(value)


def use_threads(n: int) -> None:
    """Compute on ``n`` intra-op threads from now on (PyTorch; numpy's own loops are single
    threaded)."""
    import torch

    torch.set_num_threads(n)
