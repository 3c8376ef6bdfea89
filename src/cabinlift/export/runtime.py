"""An exported lifter loaded back: ONNX through onnxruntime, TorchScript through PyTorch,
each with the contract its file holds; ``predict`` maps normalised 2D to millimetres."""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cabinlift.errors import CabinliftError
from cabinlift.export import contract as cx

ONNX_SUFFIX = ".onnx"


@dataclass
class ExportedLifter:
    """A lifter from an exported file; ``run`` maps (N, 13, 2) float32 to its outputs."""

    path: Path
    format: str
    contract: dict[str, Any]
    run: Any

    @property
    def name(self) -> str:
        return str(self.contract["model"])

    def predict(self, x2d: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Neck-centred 3D joints (N, 13, 3) in millimetres of normalised 2D (N, 13, 2)."""
        x = np.ascontiguousarray(x2d, dtype=np.float32)
        parts = [self.run(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, *x.shape[1:2], 3), np.float32)


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive written by ``cabinlift export`` (a zip holding the contract)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith(f"/extra/{cx.KEY}") for n in z.namelist())


def is_exported(path: str | Path) -> bool:
    path = Path(path)
    return path.is_file() and (path.suffix == ONNX_SUFFIX or is_torchscript(path))


def _onnx(path: Path) -> ExportedLifter:
    import onnx
    import onnxruntime as ort

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for a bad file
        raise CabinliftError(f"{path}: not a readable ONNX file ({exc})") from None
    props = {p.key: p.value for p in model.metadata_props}
    if cx.KEY not in props:
        raise CabinliftError(f"{path}: an ONNX file without cabinlift's contract (metadata "
                             f"'{cx.KEY}'); export it with `cabinlift export`")
    doc = cx.loads(props[cx.KEY], str(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return ExportedLifter(path, "onnx", doc, lambda x: session.run(None, {cx.INPUT: x}))


def _torchscript(path: Path) -> ExportedLifter:
    extra = {cx.KEY: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates TorchScript
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    doc = cx.loads(extra[cx.KEY], str(path))

    def run(x: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            out = module(torch.from_numpy(x))
        return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]

    return ExportedLifter(path, "torchscript", doc, run)


def load_exported(path: str | Path) -> ExportedLifter:
    """The exported lifter in ``path`` (ONNX by its suffix, else TorchScript)."""
    path = Path(path)
    if not path.is_file():
        raise CabinliftError(f"{path}: exported lifter not found")
    return _onnx(path) if path.suffix == ONNX_SUFFIX else _torchscript(path)
