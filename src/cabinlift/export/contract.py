"""The normalisation contract of an exported lifter: what its input is, what its output is.

Stored in the exported file itself (ONNX ``metadata_props``, a TorchScript extra file) under
:data:`KEY`, as JSON, so that the file is all a user needs: the input is the normalised 13-joint
2D of :func:`cabinlift.normalize.normalize_2d` (the module says how to make it from COCO-17
pixels), the output neck-centred 3D joints in millimetres in the camera's axes.
"""

from __future__ import annotations

import json
from typing import Any

from cabinlift.errors import CabinliftError
from cabinlift.skeleton import COCO13

#: The metadata key (ONNX) and extra-file name (TorchScript) of the contract.
KEY = "cabinlift"
#: Version of the contract's layout: bumped when its keys change meaning.
VERSION = 1
INPUT = "x2d"
PIXEL_INPUT = "keypoints"
FOUND_INPUT = "found"
OUTPUT = "pose3d_mm"
ERROR_OUTPUT = "error_mm"
LIFTABLE_OUTPUT = "liftable"
#: What an exported file takes: the normalised 2D, or COCO-17 pixels normalised in the graph.
INPUT_KINDS = ("normalised", "pixels")

NORMALISATION = (
    "From COCO-17 keypoints in pixels (any image size), keep the first 13 (nose to hips, in "
    "the order of 'joints'); a keypoint not found counts in no extent and is 0. Subtract the "
    "neck, the midpoint of the two shoulders (both must be found); divide x by the horizontal "
    "and y by the vertical extent (max - min over the found joints). A pose without both "
    "shoulders or with fewer than min_valid_joints found joints is not lifted.")
AXES = ("the camera's axes: x right, y down, z forward (away from the camera), origin at the "
        "neck, in millimetres")


def _inputs(kind: str, min_valid_joints: int) -> list[dict[str, Any]]:
    if kind == "normalised":
        return [{"name": INPUT, "shape": ["N", len(COCO13), 2], "dtype": "float32",
                 "meaning": "normalised 2D joints", "normalisation": NORMALISATION,
                 "min_valid_joints": min_valid_joints}]
    return [{"name": PIXEL_INPUT, "shape": ["N", 17, 2], "dtype": "float32",
             "meaning": "COCO-17 keypoints in pixels (x right, y down; any image size), "
                        "normalised inside the graph: " + NORMALISATION,
             "min_valid_joints": min_valid_joints},
            {"name": FOUND_INPUT, "shape": ["N", 17], "dtype": "float32",
             "meaning": "1 where the keypoint was found, 0 where not"}]


def contract(model: str, hparams: dict[str, Any], target_unit_mm: float, error_head: bool,
             min_valid_joints: int, meta: dict[str, Any], inputs: str = "normalised"
             ) -> dict[str, Any]:
    """The contract of an exported ``model`` (and the run it came from: ``meta``) taking
    ``inputs`` (:data:`INPUT_KINDS`)."""
    if inputs not in INPUT_KINDS:
        raise CabinliftError(f"unknown input {inputs!r}; expected one of {', '.join(INPUT_KINDS)}")
    outputs = [{"name": OUTPUT, "shape": ["N", len(COCO13), 3], "dtype": "float32",
                "meaning": f"neck-centred 3D joints; {AXES}"}]
    if error_head:
        outputs.append({"name": ERROR_OUTPUT, "shape": ["N", len(COCO13), 3],
                        "dtype": "float32",
                        "meaning": "JointFormer's predicted absolute error of each coordinate "
                                   "of the pose, in millimetres"})
    if inputs == "pixels":
        outputs.append({"name": LIFTABLE_OUTPUT, "shape": ["N"], "dtype": "bool",
                        "meaning": "whether the pose can be lifted (both shoulders, "
                                   "min_valid_joints found joints, non-zero extents); the "
                                   "other outputs of a pose that cannot are meaningless"})
    return {
        "version": VERSION, "model": model, "hparams": hparams, "joints": list(COCO13),
        "input_kind": inputs, "inputs": _inputs(inputs, min_valid_joints),
        "outputs": outputs, "trained_unit_mm": target_unit_mm,
        "run": {k: meta[k] for k in ("init", "setting", "repetition") if k in meta},
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True)


def loads(text: str | bytes, source: str) -> dict[str, Any]:
    """The contract read back from a file's metadata (``source`` names the file)."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise CabinliftError(f"{source}: its '{KEY}' metadata is not a cabinlift export "
                             f"contract of version {VERSION}; export the checkpoint again")
    return doc
