"""The exported graph: a lifter in eval mode whose outputs are in millimetres, written as ONNX
(onnxruntime runs it) or TorchScript (PyTorch without this package runs it), with the contract
(:mod:`.contract`) in the file."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cabinlift.atomic import write_atomic
from cabinlift.errors import CabinliftError
from cabinlift.export import contract as cx
from cabinlift.lifters import Lifter
from cabinlift.normalize import MIN_EXTENT
from cabinlift.skeleton import L_SHOULDER, NUM_JOINTS, R_SHOULDER

FORMATS = ("onnx", "torchscript")
#: The ONNX operator set the files are written with (onnxruntime 1.32 runs up to 23).
OPSET = 18


class InMillimetres(nn.Module):
    """``lifter`` with its outputs scaled from training units to millimetres; with
    ``error_head`` (JointFormer) also the predicted absolute error of its last layer."""

    def __init__(self, lifter: Lifter, unit_mm: float, error_head: bool = False) -> None:
        super().__init__()
        if error_head and not hasattr(lifter, "forward_all"):
            raise CabinliftError(f"{type(lifter).__name__} has no error-prediction head "
                                 "(only JointFormer has one)")
        self.lifter = lifter.eval()
        self.error_head = error_head
        self.register_buffer("unit", torch.tensor(float(unit_mm)), persistent=False)

    def forward(self, x2d: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.error_head:
            poses, errors = self.lifter.forward_all(x2d)
            return poses[-1] * self.unit, errors[-1].abs() * self.unit
        return self.lifter(x2d) * self.unit


class FromPixels(nn.Module):
    """COCO-17 pixel keypoints and their found flags in, normalised inside the graph exactly as
    :func:`cabinlift.normalize.normalize_2d` does (in float32), then ``inner``; also outputs
    whether each pose is liftable by :func:`cabinlift.normalize.joint_checks`' rule (both
    shoulders, ``min_valid_joints`` found joints, non-zero extents): the outputs of a pose
    that is not are meaningless."""

    def __init__(self, inner: InMillimetres, min_valid_joints: int) -> None:
        super().__init__()
        self.inner = inner
        self.min_valid_joints = min_valid_joints

    def forward(self, keypoints: torch.Tensor, found: torch.Tensor) -> tuple[torch.Tensor, ...]:
        xy = keypoints[:, :NUM_JOINTS]
        valid = found[:, :NUM_JOINTS] > 0.5
        mask = valid.unsqueeze(-1)
        neck = 0.5 * (xy[:, L_SHOULDER] + xy[:, R_SHOULDER])
        inf = torch.full_like(xy, float("inf"))
        extent = torch.where(mask, xy, -inf).amax(dim=1) - torch.where(mask, xy, inf).amin(dim=1)
        wide = extent > MIN_EXTENT
        safe = torch.where(wide, extent, torch.ones_like(extent))
        x2d = torch.where(mask, (xy - neck.unsqueeze(1)) / safe.unsqueeze(1),
                          torch.zeros_like(xy))
        liftable = (wide.all(dim=-1) & valid[:, L_SHOULDER] & valid[:, R_SHOULDER]
                    & (valid.sum(dim=-1) >= self.min_valid_joints))
        out = self.inner(x2d)
        return (*(out if isinstance(out, tuple) else (out,)), liftable)


def _example() -> torch.Tensor:
    """A batch of inputs to trace with (any values: the graph has no data-dependent branch)."""
    return torch.randn(4, NUM_JOINTS, 2, generator=torch.Generator().manual_seed(0))


def _example_pixels() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(4, 17, 2, generator=g) * 500, torch.ones(4, 17)


def _inputs(module: nn.Module) -> tuple[list[str], tuple[torch.Tensor, ...]]:
    if isinstance(module, FromPixels):
        return [cx.PIXEL_INPUT, cx.FOUND_INPUT], _example_pixels()
    return [cx.INPUT], (_example(),)


def _names(module: nn.Module) -> list[str]:
    inner = module.inner if isinstance(module, FromPixels) else module
    names = [cx.OUTPUT, cx.ERROR_OUTPUT] if inner.error_head else [cx.OUTPUT]
    return [*names, cx.LIFTABLE_OUTPUT] if isinstance(module, FromPixels) else names


def onnx_bytes(module: nn.Module, doc: dict[str, Any]) -> bytes:
    """The ONNX file of ``module`` (batch size free) with ``doc`` in its metadata."""
    import onnx

    outputs = _names(module)
    inputs, example = _inputs(module)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
        torch.onnx.export(module, example, buf, input_names=inputs,
                          output_names=outputs, opset_version=OPSET, dynamo=False,
                          dynamic_axes={n: {0: "N"} for n in [*inputs, *outputs]})
    model = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(model, {cx.KEY: cx.dumps(doc)})
    return model.SerializeToString()


def torchscript_bytes(module: nn.Module, doc: dict[str, Any]) -> bytes:
    """The TorchScript archive of ``module`` (traced) with ``doc`` as an extra file."""
    with warnings.catch_warnings(), torch.no_grad():
        # torch 2.14 deprecates TorchScript, and the tracer flags shape arithmetic over the
        # feature width (constant for a lifter); the parity tests check what it records
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, _inputs(module)[1], check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf, _extra_files={cx.KEY: cx.dumps(doc)})
    return buf.getvalue()


def write_export(module: nn.Module, doc: dict[str, Any], fmt: str, out: Path) -> None:
    """Write ``module`` as ``fmt`` to ``out`` (atomically: a failed export leaves nothing)."""
    if fmt not in FORMATS:
        raise CabinliftError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    data = onnx_bytes(module, doc) if fmt == "onnx" else torchscript_bytes(module, doc)
    write_atomic(out, data)
