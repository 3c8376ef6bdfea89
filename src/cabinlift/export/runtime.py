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
from cabinlift.skeleton import NUM_JOINTS

ONNX_SUFFIX = ".onnx"


@dataclass
class ExportedLifter:
    """A lifter from an exported file; ``run`` maps its inputs (float32 arrays, in the order
    of the contract's ``inputs``) to the list of its outputs."""

    path: Path
    format: str
    contract: dict[str, Any]
    run: Any

    @property
    def name(self) -> str:
        return str(self.contract["model"])

    @property
    def takes_pixels(self) -> bool:
        return self.contract["input_kind"] == "pixels"

    def predict(self, x2d: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Neck-centred 3D joints (N, 13, 3) in millimetres of normalised 2D (N, 13, 2)."""
        if self.takes_pixels:
            raise CabinliftError(f"{self.path}: takes COCO-17 pixel keypoints, not normalised 2D")
        x = np.ascontiguousarray(x2d, dtype=np.float32)
        parts = [self.run(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, *x.shape[1:2], 3), np.float32)

    def predict_pixels(self, keypoints: np.ndarray, found: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """3D joints in mm (N, 13, 3) and whether each pose is liftable (N,), of COCO-17 pixel
        keypoints (N, 17, 2) and their found flags (N, 17)."""
        if not self.takes_pixels:
            raise CabinliftError(f"{self.path}: takes normalised 2D, not pixel keypoints")
        out = self.run(np.ascontiguousarray(keypoints, dtype=np.float32),
                       np.ascontiguousarray(found, dtype=np.float32))
        return out[0], np.asarray(out[-1], dtype=bool)

    def example(self, batch: int) -> tuple[np.ndarray, ...]:
        """Inputs of ``batch`` poses the file takes (for timing)."""
        rng = np.random.default_rng(0)
        if self.takes_pixels:
            kp = rng.uniform(0, 1000, (batch, 17, 2)).astype(np.float32)
            return kp, np.ones((batch, 17), dtype=np.float32)
        return (rng.normal(0, 0.3, (batch, NUM_JOINTS, 2)).astype(np.float32),)


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
    names = [spec["name"] for spec in doc["inputs"]]
    return ExportedLifter(path, "onnx", doc,
                          lambda *xs: session.run(None, dict(zip(names, xs, strict=True))))


def _torchscript(path: Path) -> ExportedLifter:
    extra = {cx.KEY: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates TorchScript
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    doc = cx.loads(extra[cx.KEY], str(path))

    def run(*xs: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            out = module(*(torch.from_numpy(x) for x in xs))
        return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]

    return ExportedLifter(path, "torchscript", doc, run)


def load_exported(path: str | Path) -> ExportedLifter:
    """The exported lifter in ``path`` (ONNX by its suffix, else TorchScript)."""
    path = Path(path)
    if not path.is_file():
        raise CabinliftError(f"{path}: exported lifter not found")
    return _onnx(path) if path.suffix == ONNX_SUFFIX else _torchscript(path)
