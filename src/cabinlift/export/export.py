"""``cabinlift export``: a checkpoint written by pretrain/finetune as an ONNX or TorchScript
file with its contract, and the model card beside it."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cabinlift.atomic import write_atomic
from cabinlift.config import read_yaml
from cabinlift.errors import CabinliftError
from cabinlift.export import contract as cx
from cabinlift.export.card import model_card
from cabinlift.export.graph import FromPixels, InMillimetres, write_export
from cabinlift.export.runtime import load_exported
from cabinlift.jsonfiles import read_json
from cabinlift.lift import load_lifter
from cabinlift.normalize import DEFAULT_MIN_VALID_JOINTS

#: Batch sizes the card's latency is measured at: one driver per frame, and a batch.
LATENCY_BATCHES = (1, 64)


def median_call_seconds(fn: Callable[..., Any], args: tuple, calls: int) -> float:
    """Median wall seconds of ``calls`` calls of ``fn(*args)``."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def latency(path: Path, batches: tuple[int, ...] = LATENCY_BATCHES,
            calls: int = 50) -> dict[int, float]:
    """Median seconds per call of the exported file ``path`` at each batch size, on one CPU
    thread (after one warm-up call)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        loaded = load_exported(path)  # onnxruntime takes its threads at load
        out = {}
        for b in batches:
            inputs = loaded.example(b)
            loaded.run(*inputs)
            out[b] = median_call_seconds(loaded.run, inputs, calls)
        return out
    finally:
        torch.set_num_threads(threads)


def _optional(path: Path | None, read: Any) -> Any:
    return read(path) if path is not None and path.is_file() else None


def export_checkpoint(checkpoint: str | Path, fmt: str, out: str | Path,
                      error_head: bool = False, card: str | Path | None = None,
                      summary: str | Path | None = None, params: str | Path | None = None,
                      counts: str | Path | None = None,
                      min_valid_joints: int = DEFAULT_MIN_VALID_JOINTS,
                      inputs: str = "normalised") -> dict[str, Any]:
    """Write ``checkpoint``'s lifter to ``out`` as ``fmt`` taking ``inputs`` (normalised 2D,
    or COCO-17 pixels normalised in the graph) and, with ``card``, its model card (from
    ``summary``, ``params`` and ``counts`` where they exist); return the contract."""
    out = Path(out)
    lifter = load_lifter(checkpoint)
    if lifter.model is None:
        raise CabinliftError(f"{checkpoint}: already an exported file; export the checkpoint "
                             "(.pt written by pretrain or finetune) it came from")
    doc = cx.contract(lifter.name, lifter.hparams, lifter.target_unit_mm, error_head,
                      min_valid_joints, lifter.meta, inputs)
    module = InMillimetres(lifter.model, lifter.target_unit_mm, error_head)
    if inputs == "pixels":
        module = FromPixels(module, min_valid_joints)
    write_export(module.eval(), doc, fmt, out)
    if card is not None:
        text = model_card(doc, fmt, out,
                          _optional(Path(summary) if summary else None, read_json),
                          _optional(Path(params) if params else None, read_yaml),
                          _optional(Path(counts) if counts else None, read_json),
                          latency(out))
        write_atomic(Path(card), text)
    return doc
