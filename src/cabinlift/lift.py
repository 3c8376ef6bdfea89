"""``cabinlift lift``: apply a trained lifter to 2D keypoints someone has, and write 3D poses.

This is what a user does with the models the pipeline trains. Inputs (COCO-17 keypoints in
pixels) are normalised exactly as the ``normalize`` stage does (13 upper-body joints,
neck-centred, x and y divided by the pose's horizontal and vertical extent), the checkpoint's
model predicts neck-centred 3D joints, and those are written in millimetres.

Accepted inputs:

* COCO-format JSON: ``{"images": [...], "annotations": [...]}`` or a results list
  ``[{"image_id", "keypoints", "score"}, ...]``; one output pose per person entry
  (``category_id`` 1, COCO's person, or none; other integers are skipped).
* The interim keypoint format: one ``<recording>.keypoints2d.csv`` file, or a directory holding
  them (``data/interim/keypoints2d``); one output pose per detected frame. A file with a header
  and no rows (a recording none of whose frames was sampled) gives no pose.

Missing keypoints: COCO writes a keypoint nobody labelled as ``x = 0, y = 0, v = 0``, and a
results list gives each keypoint a score. A COCO keypoint whose third value (``v``, the score,
or its ``keypoint_scores`` entry where given) is 0 or less is *missing*
(:func:`cabinlift.keypoints.precomputed.found_keypoints`; ``v`` 1, labelled but occluded, is
found), as the ``precomputed`` backend reads such files; in an interim CSV a keypoint is missing
where it has no coordinates, exactly as the ``normalize`` stage reads it (a low score there is a
confidence: the stage uses the keypoint). A missing keypoint counts in no extent and its
normalised input is 0 (at the neck), as :func:`cabinlift.normalize.normalize_2d` treats joints
not found. The lifters were trained on poses with every joint found (a
detector places every joint), so the 3D of a pose with missing joints is less certain, and a
guess for the missing joints themselves: the output names them. A pose is skipped, with its
reason, by the rule the ``normalize`` stage drops frames by
(:func:`cabinlift.normalize.joint_checks`, applied here to the 2D keypoints found): a missing
shoulder (``no_neck``), fewer than ``min_valid_joints`` of the 13 joints found
(``few_valid_joints``: params.yaml's ``normalize.min_valid_joints`` where the command finds one,
else :data:`cabinlift.normalize.DEFAULT_MIN_VALID_JOINTS`), or no horizontal or vertical extent
(``degenerate_2d``). An input with no pose at all (no person entry, no detected frame) is an
error; one whose poses are all skipped gives an output of no poses and the counts.

Outputs, chosen by the suffix of ``--out``: ``.npz`` (per lifted pose: ``pose3d`` (N, 13, 3)
float32 mm, ``x2d`` the normalised inputs, ``missing`` (N, 13) bool, ``source``, ``file_id``,
``file_name``, ``frame_id``, ``image_id``, ``instance``, ``score``; and ``joints``) or ``.json``
(the same per pose, as a list of objects, ``missing`` as joint names; plus the skipped poses
with their reason). The command prints a summary: poses lifted, skipped (by reason), and lifted
with missing joints.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cabinlift.atomic import write_atomic
from cabinlift.errors import CabinliftError
from cabinlift.export.runtime import ExportedLifter, is_exported, load_exported
from cabinlift.keypoints import interim
from cabinlift.keypoints.precomputed import found_keypoints, is_person, load_json, parse_instance
from cabinlift.lifters import Lifter, available
from cabinlift.normalize import (
    DEFAULT_MIN_VALID_JOINTS,
    DROP_REASONS,
    drop_reasons,
    joint_checks,
    normalize_2d,
)
from cabinlift.skeleton import COCO13, NUM_JOINTS
from cabinlift.training.checkpoints import build_with_weights, read_checkpoint
from cabinlift.training.data import predict, resolve_device

KEYPOINTS_SUFFIX = ".keypoints2d.csv"


@dataclass
class LoadedLifter:
    """A lifter ready to predict, with what its checkpoint says about units and joints: a
    PyTorch ``model`` rebuilt from a checkpoint, or a file ``cabinlift export`` wrote
    (``exported``, already in millimetres)."""

    name: str
    model: Lifter | None
    target_unit_mm: float
    path: Path
    hparams: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    exported: ExportedLifter | None = None

    def predict(self, x2d: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Neck-centred 3D joints (N, 13, 3) in mm of normalised 2D poses (N, 13, 2)."""
        if self.exported is not None:
            return self.exported.predict(x2d, batch_size).astype(np.float32)
        device = next(self.model.parameters()).device
        x = torch.as_tensor(x2d, dtype=torch.float32, device=device)
        pred = predict(self.model, x, batch_size) * self.target_unit_mm
        return pred.cpu().numpy().astype(np.float32)


@dataclass
class Poses2D:
    """2D poses to lift (pixels, COCO-17) with where each came from."""

    xy: np.ndarray  # (N, 17, 2)
    found: np.ndarray  # (N, 17) bool: False for a missing keypoint
    source: np.ndarray  # (N,) str: the file each pose was read from
    file_id: np.ndarray  # (N,) str: Drive&Act file id of an interim CSV ('' for COCO input)
    file_name: np.ndarray  # (N,) str: COCO image file_name ('' when unknown)
    frame_id: np.ndarray  # (N,) int64, -1 when unknown
    image_id: np.ndarray  # (N,) str, '' when unknown
    instance: np.ndarray  # (N,) int64: index of the person entry in its file (-1 for CSV rows)
    score: np.ndarray  # (N,) float64 person score (NaN when unknown)


@dataclass
class Lifted:
    """What :func:`lift_poses` made of each input pose."""

    pose3d: np.ndarray  # (N, 13, 3) float32 mm, NaN where skipped
    x2d: np.ndarray  # (N, 13, 2) float32 normalised inputs
    missing: np.ndarray  # (N, 13) bool: joints whose keypoint is missing
    skipped: np.ndarray  # (N,) str: why a pose is not lifted (DROP_REASONS), '' where it is

    @property
    def ok(self) -> np.ndarray:
        return self.skipped == ""


def load_lifter(path: str | Path, device: str = "cpu") -> LoadedLifter:
    """Rebuild the model a checkpoint (written by pretrain/finetune) was trained as, with its
    weights and its output unit; or load a file ``cabinlift export`` wrote (ONNX, TorchScript;
    on the CPU)."""
    path = Path(path)
    if is_exported(path):
        exported = load_exported(path)
        doc = exported.contract
        if list(doc["joints"]) != list(COCO13):
            raise CabinliftError(f"{path}: exported joints {doc['joints']} differ from "
                                 f"{list(COCO13)}")
        return LoadedLifter(exported.name, None, 1.0, path, dict(doc["hparams"]),
                            dict(doc.get("run", {})), exported)
    if path.is_dir():
        raise CabinliftError(
            f"{path}: is a directory; expected a checkpoint file (.pt) written by pretrain or "
            "finetune, e.g. models/finetuned/<init>/<model>/<setting>/run00.pt"
        )
    ckpt = read_checkpoint(path)
    name = ckpt["model"]
    if name not in available():
        raise CabinliftError(f"{path}: unknown model {name!r}; expected one of {available()}")
    meta = ckpt.get("meta") or {}
    joints = meta.get("joints", list(COCO13))
    if list(joints) != list(COCO13):
        raise CabinliftError(f"{path}: checkpoint joints {joints} differ from {list(COCO13)}")
    unit = meta.get("target_unit_mm")
    if unit is None:
        raise CabinliftError(
            f"{path}: the checkpoint does not record its output unit ('target_unit_mm'); "
            "re-run the stage that wrote it (pretrain or finetune)"
        )
    model = build_with_weights(
        path, name, ckpt["hparams"], ckpt["state_dict"],
        fix="use a checkpoint written by the pretrain or finetune stage, or re-run the stage that "
            "wrote this one",
    )
    model.eval()
    return LoadedLifter(name, model.to(resolve_device(device, "option --device")), float(unit),
                        path, dict(ckpt["hparams"]), dict(meta))


def read_coco(path: Path) -> Poses2D:
    """Person entries of a COCO JSON (object with annotations, or a results list)."""
    doc = load_json(path)
    if isinstance(doc, dict):
        if "annotations" not in doc:
            raise CabinliftError(f"{path}: expected key 'annotations' (COCO format)")
        anns, label = doc["annotations"], "annotations"
        images = doc.get("images", [])
    elif isinstance(doc, list):
        anns, label, images = doc, "entry", []
    else:
        raise CabinliftError(f"{path}: expected a COCO JSON object or a results list")
    if not isinstance(anns, list) or not isinstance(images, list):
        raise CabinliftError(f"{path}: 'annotations' and 'images' must be lists")
    names = {str(img.get("id")): str(img.get("file_name", "")) for img in images
             if isinstance(img, dict)}
    xy, found, image_id, inst, score = [], [], [], [], []
    for i, ann in enumerate(anns):
        where = f"{path}: {label}[{i}]" if label == "annotations" else f"{path}: entry {i}"
        if isinstance(ann, dict) and not is_person(where, ann):
            continue
        person = parse_instance(where, ann)
        xy.append(person.keypoints)
        found.append(found_keypoints(person.keypoint_scores))
        image_id.append(str(ann.get("image_id", "")))
        inst.append(i)
        score.append(person.score)
    n = len(xy)
    return Poses2D(
        xy=np.asarray(xy, dtype=np.float64).reshape(n, 17, 2),
        found=np.asarray(found, dtype=bool).reshape(n, 17),
        source=np.full(n, str(path)),
        file_id=np.full(n, ""),
        file_name=np.asarray([names.get(a, "") for a in image_id], dtype=str).reshape(n),
        frame_id=np.full(n, -1, dtype=np.int64),
        image_id=np.asarray(image_id, dtype=str),
        instance=np.asarray(inst, dtype=np.int64),
        score=np.asarray(score, dtype=np.float64),
    )


def read_interim(path: Path) -> Poses2D:
    """Detected frames of one interim keypoints CSV, or of every such CSV below a directory."""
    if path.is_dir():
        files = sorted(path.rglob(f"*{KEYPOINTS_SUFFIX}"))
        if not files:
            raise CabinliftError(f"{path}: no *{KEYPOINTS_SUFFIX} files below this directory")
        root = path
    else:
        files, root = [path], None
    parts = []
    for f in files:
        kp = interim.read_keypoints(f)
        det = kp.detected
        n = int(det.sum())
        rel = f.relative_to(root).as_posix() if root is not None else f.name
        file_id = rel[: -len(KEYPOINTS_SUFFIX)]
        parts.append(Poses2D(
            xy=kp.xy[det], found=interim.placed(kp.xy[det]), source=np.full(n, str(f)),
            file_id=np.full(n, file_id), file_name=np.full(n, ""),
            frame_id=kp.frame_id[det], image_id=np.full(n, ""),
            instance=np.full(n, -1, dtype=np.int64),
            score=np.full(n, np.nan),
        ))
    return Poses2D(*(np.concatenate([getattr(p, k) for p in parts])
                     for k in Poses2D.__dataclass_fields__))


def read_inputs(path: str | Path) -> Poses2D:
    """COCO JSON (``.json``) or the interim keypoint format (a ``.csv`` file or a directory)."""
    path = Path(path)
    if path.is_dir() or path.name.endswith(".csv"):
        return read_interim(path)
    if path.suffix == ".json":
        return read_coco(path)
    if not path.exists():
        raise CabinliftError(f"{path}: input not found")
    raise CabinliftError(
        f"{path}: expected COCO-format keypoints (.json), an interim keypoints file "
        f"(*{KEYPOINTS_SUFFIX}) or a directory of them"
    )


def lift_poses(lifter: LoadedLifter, poses: Poses2D,
               min_valid_joints: int = DEFAULT_MIN_VALID_JOINTS, batch_size: int = 4096
               ) -> Lifted:
    """Normalise and lift, missing keypoints masked as the module says; a pose the
    ``normalize`` stage would drop is skipped (NaN) with its reason."""
    found = poses.found[:, :NUM_JOINTS]
    has_neck, enough = joint_checks(found, min_valid_joints)
    x2d, ok2d = normalize_2d(np.nan_to_num(poses.xy[:, :NUM_JOINTS]), found)
    skipped = drop_reasons(has_neck, enough, ok2d)
    ok = skipped == ""
    out = np.full((len(x2d), NUM_JOINTS, 3), np.nan, dtype=np.float32)
    if ok.any() and lifter.exported is not None and lifter.exported.takes_pixels:
        # a file that normalises in its graph gets the pixels, as a car would feed it
        out[ok], _ = lifter.exported.predict_pixels(np.nan_to_num(poses.xy[ok]), poses.found[ok])
    elif ok.any():
        out[ok] = lifter.predict(x2d[ok], batch_size)
    return Lifted(out, x2d.astype(np.float32), ~found, skipped)


def _counts(lifted: Lifted) -> dict[str, Any]:
    """Poses lifted, skipped (by reason) and lifted with missing joints."""
    ok = lifted.ok
    return {
        "lifted": int(ok.sum()),
        "skipped": int((~ok).sum()),
        "skipped_by_reason": {r: int((lifted.skipped == r).sum()) for r in DROP_REASONS},
        "with_missing_joints": int((ok & lifted.missing.any(axis=1)).sum()),
    }


def _names(missing: np.ndarray) -> list[str]:
    return [COCO13[j] for j in np.flatnonzero(missing)]


def _where(poses: Poses2D, k: int) -> dict[str, Any]:
    """Where pose ``k`` came from, as the JSON output gives it (unknown ids left out)."""
    item: dict[str, Any] = {"source": str(poses.source[k])}
    if poses.file_id[k]:
        item["file_id"] = str(poses.file_id[k])
    if poses.file_name[k]:
        item["file_name"] = str(poses.file_name[k])
    if poses.frame_id[k] >= 0:
        item["frame_id"] = int(poses.frame_id[k])
    if poses.image_id[k]:
        item["image_id"] = str(poses.image_id[k])
    if poses.instance[k] >= 0:
        item["instance"] = int(poses.instance[k])
    if np.isfinite(poses.score[k]):
        item["score"] = round(float(poses.score[k]), 5)
    return item


def _json_doc(lifter: LoadedLifter, poses: Poses2D, lifted: Lifted, min_valid_joints: int
              ) -> dict[str, Any]:
    items = [{**_where(poses, k), "missing": _names(lifted.missing[k]),
              "pose3d": [[round(float(c), 3) for c in j] for j in lifted.pose3d[k]]}
             for k in np.flatnonzero(lifted.ok)]
    skipped = [{**_where(poses, k), "reason": str(lifted.skipped[k]),
                "missing": _names(lifted.missing[k])}
               for k in np.flatnonzero(~lifted.ok)]
    return {
        "model": lifter.name,
        "checkpoint": str(lifter.path),
        "units": "mm, neck-centred (neck = midpoint of the shoulders), camera axes",
        "joints": list(COCO13),
        "min_valid_joints": min_valid_joints,
        **_counts(lifted),
        "poses": items,
        "skipped_poses": skipped,
    }


def run_lift(checkpoint: str | Path, inputs: str | Path, out: str | Path, device: str = "cpu",
             min_valid_joints: int = DEFAULT_MIN_VALID_JOINTS) -> dict[str, Any]:
    """Lift every pose of ``inputs`` with ``checkpoint`` and write ``out`` (.npz or .json).
    Poses that cannot be normalised are skipped and counted by reason. Returns a short
    summary."""
    out = Path(out)
    if out.suffix not in (".npz", ".json"):
        raise CabinliftError(f"{out}: the output must end in .npz or .json")
    lifter = load_lifter(checkpoint, device)
    poses = read_inputs(inputs)
    if len(poses.xy) == 0:
        raise CabinliftError(f"{inputs}: no 2D poses to lift (no person entry / detected frame)")
    lifted = lift_poses(lifter, poses, min_valid_joints)
    ok = lifted.ok
    if out.suffix == ".json":
        doc = _json_doc(lifter, poses, lifted, min_valid_joints)
        data: str | bytes = json.dumps(doc) + "\n"
    else:
        buf = io.BytesIO()
        np.savez(
            buf, pose3d=lifted.pose3d[ok], x2d=lifted.x2d[ok], missing=lifted.missing[ok],
            source=poses.source[ok], file_id=poses.file_id[ok], file_name=poses.file_name[ok],
            frame_id=poses.frame_id[ok], image_id=poses.image_id[ok],
            instance=poses.instance[ok], score=poses.score[ok], joints=np.asarray(COCO13),
        )
        data = buf.getvalue()
    write_atomic(out, data)
    return {"model": lifter.name, **_counts(lifted), "min_valid_joints": min_valid_joints,
            "out": str(out)}
