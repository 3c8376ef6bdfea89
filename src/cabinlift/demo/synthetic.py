"""The demo's "synthetic" domain: SyntheticCabin-like renders of random reachable seated poses.

Like the real SyntheticCabin IR 1M, poses are not activities: every pose is drawn independently
— seat position and recline, trunk flexion/bend/twist and head orientation uniformly within joint
limits, and each hand sent by inverse kinematics to a random reachable target (anywhere in the
reachable cabin space, on the steering wheel, or near the face) — for 16 virtual humans with a
wider body range than the real drivers, and rendered as exact pinhole keypoints from all ten
views. Keypoints follow a rendering rig's joint conventions (:func:`sample_body` "rig"), not
OpenPose's.
"""

from __future__ import annotations

import numpy as np

from cabinlift.demo.cabin import (
    CENTRE_Y,
    body_penetration,
    look_at_rotations,
    synthetic_camera,
    wheel_point,
)
from cabinlift.demo.kinematics import (
    DEG,
    POSE_PARAMS,
    Body,
    limbs_fk,
    normalize,
    sample_body,
    trunk_fk,
)
from cabinlift.formats.synthetic_cabin import SyntheticHuman, write_annotation
from cabinlift.skeleton import COCO17, COCO17_TO_BODY25, SYNTHETIC_CABIN17

#: Keypoints written per human: the 17 COCO joints in SyntheticCabin order, then extras (the
#: data set has more than 17; readers use only the first 17).
_COCO_TO_BODY25 = dict(zip(COCO17, COCO17_TO_BODY25, strict=True))
KEYPOINTS: tuple[str, ...] = tuple(_COCO_TO_BODY25[n] for n in SYNTHETIC_CABIN17) + (
    "neck", "midHip")

#: Uniform ranges (degrees, or metres for pel_*) of the random pose parameters.
POSE_RANGES = {
    "pel_x": (-0.03, 0.03), "pel_y": (-0.02, 0.02), "pel_z": (-0.02, 0.02),
    "pel_yaw": (-12, 12), "pel_pitch": (-30, -6), "pel_roll": (-7, 7),
    "lum_flex": (-8, 30), "lum_lat": (-15, 15), "lum_twist": (-18, 18),
    "tho_flex": (-10, 25), "tho_lat": (-15, 15), "tho_twist": (-30, 30),
    "head_pitch": (-35, 50), "head_roll": (-25, 25), "neck_fwd": (0, 25),
    "l_swivel": (-10, 80), "r_swivel": (-10, 80), "knee_out": (-5, 25),
}
HEAD_YAW_REL = 85  # |head yaw - trunk yaw| limit, degrees


def make_human(rng: np.random.Generator, stature_range: tuple[float, float],
               ratio_sd: float) -> Body:
    """A virtual human: stature uniform over the given range (wider than the real drivers'),
    proportions with a larger spread."""
    female = bool(rng.random() < 0.5)
    stature = float(rng.uniform(*stature_range))
    return sample_body(rng, female=female, stature=stature, ratio_sd=ratio_sd, convention="rig")


def _hand_targets(rng, body: Body, tr, shoulder: np.ndarray, side: float,
                  seat: np.ndarray) -> np.ndarray:
    """Random reachable hand targets (n,3): 20 % on the steering wheel rim, 15 % near the face,
    otherwise anywhere within reach that is inside the cabin and outside the body."""
    n = shoulder.shape[0]
    kind = rng.random(n)
    out = np.empty((n, 3))
    wheel = kind < 0.20
    out[wheel] = wheel_point(rng.uniform(-150, 150, wheel.sum()) * DEG)
    face = (kind >= 0.20) & (kind < 0.35)
    off = rng.normal(0.0, 1.0, (face.sum(), 3)) * np.array([0.06, 0.08, 0.07])
    out[face] = tr.head_pivot[face] + np.einsum(
        "nij,nj->ni", tr.r_head[face], off + np.array([0.14, 0.05 * side, -0.08]))
    free = np.flatnonzero(kind >= 0.35)
    todo = free
    for _ in range(50):
        if todo.size == 0:
            break
        d = normalize(rng.normal(size=(todo.size, 3)))
        r = body.arm * np.cbrt(rng.uniform(0.03, 0.97, todo.size))
        cand = shoulder[todo] + d * r[:, None]
        rel = cand - seat[todo]
        tho = np.einsum("nji,nj->ni", tr.r_tho[todo], cand - tr.neck_base[todo])
        ok = (
            (cand[:, 0] < 0.50) & (cand[:, 2] < 0.95) & (cand[:, 1] < 0.45)
            & (cand[:, 1] > CENTRE_Y - 0.55)
            & ~((tho[:, 0] < 0.10) & (np.abs(tho[:, 1]) < 0.17) & (tho[:, 2] < 0.05)
                & (tho[:, 2] > -body.lumbar - body.thoracic))  # inside the trunk
            & ~((rel[:, 0] < -0.28) & (np.abs(rel[:, 1]) < 0.27) & (rel[:, 2] < 0.8))  # seat
            & (rel[:, 2] > -0.05 - 0.4 * np.clip(rel[:, 0] - 0.25, 0, None))  # above the seat
        )
        out[todo[ok]] = cand[ok]
        if (~ok).any():
            out[todo[~ok]] = cand[~ok]  # kept if the budget runs out
        todo = todo[~ok]
    return out


def random_poses(rng: np.random.Generator, body: Body, n: int) -> dict[str, np.ndarray]:
    """``n`` random reachable seated poses of one virtual human: car-frame keypoints."""
    q = {}
    for p in POSE_PARAMS:
        if p == "head_yaw":
            continue
        lo, hi = POSE_RANGES[p]
        scale = 1.0 if p.startswith("pel_") and p[-1] in "xyz" else DEG
        q[p] = rng.uniform(lo, hi, n) * scale
    trunk_yaw = q["pel_yaw"] + q["lum_twist"] + q["tho_twist"]
    q["head_yaw"] = trunk_yaw + rng.uniform(-HEAD_YAW_REL, HEAD_YAW_REL, n) * DEG
    seat = np.stack([
        -0.40 * (body.stature - 1.72) + rng.uniform(-0.10, 0.10, n),
        rng.uniform(-0.03, 0.03, n), rng.uniform(-0.04, 0.05, n)], axis=-1)
    tr = trunk_fk(body, q, seat)
    legs = (body.thigh + body.shank) / 0.86
    feet = [seat + np.stack([rng.uniform(0.52, 0.72, n) * legs, side * rng.uniform(0.05, 0.25, n),
                             rng.uniform(-0.34, -0.20, n)], axis=-1) for side in (1.0, -1.0)]
    lh = _hand_targets(rng, body, tr, tr.points["lShoulder0"], 1.0, seat)
    rh = _hand_targets(rng, body, tr, tr.points["rShoulder0"], -1.0, seat)
    return limbs_fk(body, q, tr, lh, rh, feet[0], feet[1]), tr


def render(
    rng: np.random.Generator, pts: dict[str, np.ndarray], tr, body: Body, view: str,
    jitter_m: float,
) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Project poses into one view (camera pose jittered per image: the data set spans several
    car interiors). Returns camera parameters, 3D (n,K,3) camera frame, 2D (n,K,2), visibility
    (n,K) (2 visible, 1 self-occluded, 0 outside the image or behind the camera) and boxes.
    The 2D is the exact pinhole projection of the 3D for every keypoint, also for the few (feet,
    in the close Dashboard view) that fall behind the camera plane; their visibility is 0."""
    nominal, calib = synthetic_camera(view)
    n = pts["nose"].shape[0]
    names = list(KEYPOINTS)
    world = np.stack([pts[k] for k in names], axis=1)
    pos = nominal.position + rng.normal(0.0, jitter_m, (n, 3))
    target = nominal.position + nominal.rotation[2] + rng.normal(0.0, 0.03, (n, 3))
    rots = look_at_rotations(pos, target)
    xyz = np.einsum("nij,nkj->nki", rots, world - pos[:, None, :])
    z = np.where(np.abs(xyz[..., 2]) < 1e-3, 1e-3, xyz[..., 2])  # exact, also behind the camera
    uv = np.stack([calib.fx * xyz[..., 0] / z + calib.cx, calib.fy * xyz[..., 1] / z + calib.cy],
                  axis=-1)
    inside = (xyz[..., 2] > 0.05) & calib.in_image(uv)
    pen = body_penetration(pos, names, pts, tr, body)
    vis = np.where(inside, np.where(pen > 0.0, 1, 2), 0)
    front = np.where(inside[..., None], uv, np.nan)
    lo = np.nan_to_num(np.nanmin(front, axis=1), nan=0.0)
    hi = np.nan_to_num(np.nanmax(front, axis=1), nan=0.0)
    size = hi - lo
    lo = lo - size * np.array([0.10, 0.25])  # head top above the eyes, clothing
    hi = hi + size * np.array([0.10, 0.05])
    lo = np.clip(lo, 0, [calib.width, calib.height])
    hi = np.clip(hi, 0, [calib.width, calib.height])
    box = np.concatenate([lo, hi - lo], axis=1)
    cam = {"name": view, "intrinsics": {"fx": calib.fx, "fy": calib.fy, "cx": calib.cx,
                                        "cy": calib.cy, "width": calib.width,
                                        "height": calib.height}}
    return cam, xyz, uv, vis, box


def write_human(
    gt_dir, name: str, rng: np.random.Generator, body: Body, n_poses: int, views: list[str],
    jitter_m: float,
) -> int:
    """Generate and write all images of one virtual human; returns the number of files."""
    pts, tr = random_poses(rng, body, n_poses)
    count = 0
    for view in views:
        cam, xyz, uv, vis, box = render(rng, pts, tr, body, view, jitter_m)
        for i in range(n_poses):
            img = f"{name}_{i:05d}_{view}.png"
            write_annotation(
                gt_dir / f"{name}_{i:05d}_{view}.json", img, cam,
                [SyntheticHuman(name, uv[i], vis[i], xyz[i], tuple(box[i]))],
            )
            count += 1
    return count
