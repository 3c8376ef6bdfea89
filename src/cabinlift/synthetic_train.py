"""How the synthetic training split for pre-training is built (params: ``pretrain.data``).

The paper pre-trains on every training pose of SyntheticCabin's chosen views with the exact 2D
projection. These knobs make the amount of synthetic data, the 2D source and augmentation study
axes. All off (the default) leaves the split byte for byte as the paper's, and only the training
split ever changes: validation and test stay as they are, so runs stay comparable. In the order
applied, each draw from its own generator seeded by ``pretrain.data.seed`` (one knob's draws never
depend on another knob's value):

1. **Amount** (``humans``, ``poses``): the training humans, sorted by name, in a seeded order, of
   which the first ``ceil(humans * n)`` are kept; then each kept human's poses (its rows: an image
   of the human in one view) in a seeded order of the human's own, the first ``ceil(poses * n)``
   kept (at least one each). With one seed a smaller fraction keeps a subset of a larger one's
   rows; kept rows stay in their order (1.0 keeps every row).
2. **Augmented copies** (``augment``): ``copies`` copies of every kept pose, appended after the
   originals (copy 1 of every pose, then copy 2, ...), each made from the pose's 3D (camera
   frame, metres): bone lengths scaled by ``exp(bone_scale * z)``, z standard normal per bone,
   one z shared by a bone and its left/right counterpart (a body is near-symmetric; independent
   sides would mostly add asymmetry), applied from the neck outward along
   :data:`~cabinlift.skeleton.COCO13_TREE` so a child moves with its parent; mirrored with
   probability ``flip`` (x -> -x, left/right joints swapped); seen by a perturbed virtual
   camera, i.e. rotated about the camera centre by normal angles of sd ``camera_jitter_deg``
   about x, then y, then z, and shifted by a normal offset of sd ``camera_jitter_m`` per axis.
   The copy's 2D is the pinhole projection of its 3D through the image's own camera (fitted to
   the image's exact 2D-3D pairs; the intrinsics cancel in :func:`~cabinlift.normalize.
   normalize_2d`, but the detector's pixel errors need the image's pixel scale), and its target
   is its 3D, neck-centred. A copy with a joint at or behind the camera plane is dropped.
3. **2D source** (``input_2d``): ``detector`` puts the simulated detector's errors
   (:mod:`cabinlift.keypoints.detector_errors`: a driver box by ``detect.simulated``, keypoint
   noise and arm swaps by ``keypoints2d.simulated``) on the pixel 2D of the originals and of
   every copy. SyntheticCabin annotates every joint in 3D, so every joint stays a target; a joint
   whose visibility is below 2 (self-occluded, or outside the image) gets a hidden joint's noise
   (``hidden_noise_factor``), as occluded joints do in the backend (a copy keeps its pose's
   visibility, swapped when mirrored). The box is not clipped to the image (the loader keeps no
   image size) and no pose is missed: ``miss_rate`` and the scores do not apply.

Normalize then normalises every pose as it does all poses (and drops one whose 2D has no extent);
the report counts every step.
"""

from __future__ import annotations

import math
import zlib
from fractions import Fraction
from typing import Any

import numpy as np

from cabinlift.config import DetectSimulated, KeypointsSimulated, Params, PretrainAugment, PretrainData
from cabinlift.keypoints.detector_errors import driver_box, keypoint_errors
from cabinlift.skeleton import COCO13_FLIP_PAIRS, COCO13_TREE, L_SHOULDER, NUM_JOINTS, R_SHOULDER

#: A SyntheticCabin visibility below this is a joint the detector does not see (COCO: 2 visible,
#: 1 labelled but occluded, 0 outside the image).
VISIBLE = 2


def _flip_order() -> np.ndarray:
    order = np.arange(NUM_JOINTS)
    for a, b in COCO13_FLIP_PAIRS:
        order[a], order[b] = b, a
    return order


#: Each COCO-13 joint's left/right counterpart (itself for the nose).
FLIP_ORDER: np.ndarray = _flip_order()


def _bone_groups() -> np.ndarray:
    """Per bone of COCO13_TREE, the index of the bone whose draw it takes: the first of it and
    its mirror image."""
    index = {bone: i for i, bone in enumerate(COCO13_TREE)}
    mirror = [(p if p < 0 else int(FLIP_ORDER[p]), int(FLIP_ORDER[c])) for p, c in COCO13_TREE]
    return np.array([min(i, index[m]) for i, m in enumerate(mirror)])


BONE_GROUPS: np.ndarray = _bone_groups()


def changes_split(cfg: PretrainData) -> bool:
    """Whether ``pretrain.data`` changes the synthetic training split (a knob is on)."""
    return cfg.humans < 1 or cfg.poses < 1 or cfg.input_2d != "ground_truth" or cfg.augment.copies > 0


def stream(seed: int, *names: str) -> np.random.Generator:
    """The generator of one kind of draw (named by ``names``) under ``pretrain.data.seed``."""
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def first_share(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of the first ``ceil(fraction * n)`` (at least 1) of a seeded permutation
    of ``range(n)``: nested in ``fraction`` for one generator state. The product is taken of the
    fraction as written (0.55 * 100 is 55, not 55.00000000000001)."""
    take = max(1, math.ceil(Fraction(repr(fraction)) * n))
    return np.sort(rng.permutation(n)[:take])


def select_rows(human: np.ndarray, humans: float, poses: float, seed: int) -> np.ndarray:
    """Indices of the rows kept of the training rows of ``human`` (N,) names (see the module
    docstring, 1.), in their order."""
    names = sorted(set(np.asarray(human).tolist()))
    if not names:
        return np.zeros(0, dtype=np.int64)
    kept = [names[i] for i in first_share(len(names), humans, stream(seed, "humans"))]
    rows = [own[first_share(len(own), poses, stream(seed, "poses", name))]
            for name in kept for own in [np.flatnonzero(human == name)]]
    return np.sort(np.concatenate(rows))


def mirror(xyz: np.ndarray, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 13, 3) camera-frame poses mirrored (x -> -x) with left and right joints swapped, and
    their (N, 13) flags swapped alike."""
    return xyz[:, FLIP_ORDER] * np.array([-1.0, 1.0, 1.0]), hidden[:, FLIP_ORDER]


def scale_bones(xyz: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(N, 13, 3) poses with the bone ``(parent, child)`` of :data:`COCO13_TREE` ``b`` scaled by
    ``factors[:, b]``, from the neck outward: each child keeps its direction from its parent and
    moves with it; the neck stays."""
    out = np.array(xyz, dtype=np.float64, copy=True)
    neck = 0.5 * (out[:, L_SHOULDER] + out[:, R_SHOULDER])
    for b, (parent, child) in enumerate(COCO13_TREE):
        old = neck if parent < 0 else xyz[:, parent]
        new = neck if parent < 0 else out[:, parent]
        out[:, child] = new + factors[:, b, None] * (xyz[:, child] - old)
    return out


def rotations(angles_deg: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations by (N, 3) angles about x, then y, then z (degrees)."""
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones(len(a)), np.zeros(len(a))
    rx = np.stack([one, zero, zero, zero, c[:, 0], -s[:, 0], zero, s[:, 0], c[:, 0]], 1)
    ry = np.stack([c[:, 1], zero, s[:, 1], zero, one, zero, -s[:, 1], zero, c[:, 1]], 1)
    rz = np.stack([c[:, 2], -s[:, 2], zero, s[:, 2], c[:, 2], zero, zero, zero, one], 1)
    rx, ry, rz = (r.reshape(-1, 3, 3) for r in (rx, ry, rz))
    return rz @ ry @ rx


def move_camera(xyz: np.ndarray, angles_deg: np.ndarray, shift_m: np.ndarray) -> np.ndarray:
    """(N, 13, 3) camera-frame poses as a camera rotated and shifted by (N, 3) ``angles_deg``
    and ``shift_m`` sees them: each pose rotated about the camera centre, then shifted."""
    return np.einsum("nij,nkj->nki", rotations(angles_deg), xyz) + shift_m[:, None, :]


def fit_pinhole(px: np.ndarray, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pose, the pinhole camera ``px = scale * (x/z, y/z) + offset`` (each (N, 2)) fitted by
    least squares to its (N, J, 2) pixels and (N, J, 3) camera-frame points (exact when the
    pixels are their projection, as SyntheticCabin's are)."""
    t = xyz[..., :2] / xyz[..., 2:3]
    dt, du = t - t.mean(axis=1, keepdims=True), px - px.mean(axis=1, keepdims=True)
    scale = (dt * du).sum(axis=1) / (dt**2).sum(axis=1)
    return scale, px.mean(axis=1) - scale * t.mean(axis=1)


def project(xyz: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """(N, J, 2) pixels of (N, J, 3) camera-frame points through :func:`fit_pinhole`'s cameras."""
    return scale[:, None, :] * xyz[..., :2] / xyz[..., 2:3] + offset[:, None, :]


def augment(xyz: np.ndarray, hidden: np.ndarray, cfg: PretrainAugment,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One augmented copy of (N, 13, 3) camera-frame poses and their (N, 13) hidden flags (module
    docstring, 2.). Every draw is made whatever the knobs, so each knob's draws are the same
    when another is switched."""
    n = len(xyz)
    z = rng.standard_normal((n, len(COCO13_TREE)))
    flipped = rng.random(n) < cfg.flip
    angles = rng.standard_normal((n, 3)) * cfg.camera_jitter_deg
    shift = rng.standard_normal((n, 3)) * cfg.camera_jitter_m
    out = scale_bones(xyz, np.exp(cfg.bone_scale * z[:, BONE_GROUPS]))
    hidden = hidden.copy()
    out[flipped], hidden[flipped] = mirror(out[flipped], hidden[flipped])
    return move_camera(out, angles, shift), hidden


def detector_2d(px: np.ndarray, hidden: np.ndarray, box_cfg: DetectSimulated,
                kp_cfg: KeypointsSimulated, rng: np.random.Generator) -> np.ndarray:
    """(N, 13, 2) pixels as the simulated detector finds them (module docstring, 3.)."""
    return keypoint_errors(px, driver_box(px, box_cfg, rng), hidden, kp_cfg, rng)


def build_train(params: Params, px: np.ndarray, xyz: np.ndarray, visibility: np.ndarray,
                human: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """The synthetic training split under ``pretrain.data``, from the training poses normalize
    keeps: (N, 13, 2) pixels, (N, 13, 3) camera-frame metres, (N, 13) visibility, (N,) human
    names. Returns, per pose of the split, the row it comes from, its (M, 13, 2) pixel 2D and
    (M, 13, 3) camera-frame 3D (for normalize to normalise as every pose), and the report of
    what was kept."""
    cfg = params.pretrain.data
    rows = select_rows(human, cfg.humans, cfg.poses, cfg.seed)
    px_k = np.asarray(px, dtype=np.float64)[rows]
    xyz_k = np.asarray(xyz, dtype=np.float64)[rows]
    hidden_k = np.asarray(visibility)[rows] < VISIBLE
    blocks = [(px_k, xyz_k, hidden_k)]
    if cfg.augment.copies:
        scale, offset = fit_pinhole(px_k, xyz_k)
        for k in range(1, cfg.augment.copies + 1):
            moved, hidden = augment(xyz_k, hidden_k, cfg.augment, stream(cfg.seed, "augment", str(k)))
            blocks.append((project(moved, scale, offset), moved, hidden))
    source, pixels, points, behind = [], [], [], 0
    for k, (uv, pts, hidden) in enumerate(blocks):
        if cfg.input_2d == "detector":
            uv = detector_2d(uv, hidden, params.detect.simulated, params.keypoints2d.simulated,
                             stream(cfg.seed, "detector", str(k)))
        keep = np.all(pts[..., 2] > 0, axis=1) if k else np.ones(len(pts), bool)
        behind += int((~keep).sum())
        source.append(rows[keep])
        pixels.append(uv[keep])
        points.append(pts[keep])
    names = np.asarray(human)
    report = {
        "humans": {"kept": len(set(names[rows].tolist())), "of": len(set(names.tolist()))},
        "poses": {"kept": len(rows), "of": len(names)}, "input_2d": cfg.input_2d,
        "copies": sum(len(s) for s in source[1:]), "copies_behind_camera": behind,
    }
    return np.concatenate(source), np.concatenate(pixels), np.concatenate(points), report
