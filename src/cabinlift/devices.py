"""Which device of this machine a device name means (``auto``, ``cpu``, ``cuda``, ``cuda:N``),
with a one-line error for one it lacks: what the local executor's units compute on
(:func:`cabinlift.executors.unit_device`) and what ``cabinlift lift --device`` runs on."""

from __future__ import annotations

import torch

from cabinlift.errors import CabinliftError


def resolve_device(name: str, source: str = "params.yaml: key 'train.device'") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU. ``source`` names where ``name`` came
    from (a params key, a command-line option) for the error message."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise CabinliftError(
            f"{source}: unknown device {name!r} (expected cpu, cuda, cuda:N or auto)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CabinliftError(
            f"{source} asks for CUDA ({name!r}), which is not available on this machine")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise CabinliftError(f"{source} asks for {name!r}, but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 ...)")
    return device
