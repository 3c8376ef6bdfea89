"""Cabin geometry of the demo: steering wheel, dashboard, seats, and the cameras of both domains.

All positions are in the car frame (x forward, y left, z up, metres; origin at the driver seat's
reference H-point). The driver sits left of the car's centre line (y = -0.37), as in Drive&Act's
left-hand-drive car; the inner_mirror camera hangs at the rear-view mirror, ahead of and to the
right of the driver, so it sees the driver's right side and the far (left) ear mostly not.

Occlusion is geometric: a keypoint is hidden from a camera by an occluder when the segment from
the camera centre to (just short of) the keypoint passes through it. Penetration is reported as
a signed depth (> 0: through the occluder, 1: through its axis), which the domains turn into
"unannotated"/"not visible" decisions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cabinlift.camera import Calibration
from cabinlift.demo.kinematics import DEG, Body, Trunk, normalize

#: Steering wheel: centre, rim radius, column tilt (wheel plane normal leans back-up).
WHEEL_CENTRE = np.array([0.30, 0.0, 0.30])
WHEEL_RADIUS = 0.185
WHEEL_TILT = 28 * DEG
WHEEL_NORMAL = np.array([-np.cos(WHEEL_TILT), 0.0, np.sin(WHEEL_TILT)])  # towards the driver
WHEEL_UP = np.array([np.sin(WHEEL_TILT), 0.0, np.cos(WHEEL_TILT)])  # 12 o'clock direction
WHEEL_RIGHT = np.array([0.0, -1.0, 0.0])  # 3 o'clock direction

#: Lower dashboard (knee bolster, footwell front) as a box (x, y, z ranges); the camera sits
#: above it, so it hides what is below and ahead of the knees.
DASHBOARD = (np.array([0.50, -1.30, -0.45]), np.array([1.20, 0.55, 0.20]))

#: Steering column shroud and knee bolster under the wheel: hides the knees from the front.
KNEE_BOLSTER = (np.array([0.32, -0.45, -0.45]), np.array([1.20, 0.45, 0.15]))

#: Car centre line and passenger seat (for reach targets).
CENTRE_Y = -0.37


def wheel_point(angle: np.ndarray | float, radius: float = WHEEL_RADIUS) -> np.ndarray:
    """Point on the rim at a clock angle (radians; 0 = 12 o'clock, + = clockwise, i.e. right)."""
    a = np.asarray(angle, dtype=float)[..., None]
    return WHEEL_CENTRE + radius * (np.cos(a) * WHEEL_UP + np.sin(a) * WHEEL_RIGHT)


@dataclass(frozen=True)
class CameraPose:
    """Where a camera is in the car frame. ``rotation`` rows are the camera's x (right), y (down)
    and z (optical axis) in car coordinates, so ``X_cam = rotation @ (X - position)``."""

    position: np.ndarray
    rotation: np.ndarray

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points) - self.position) @ self.rotation.T


def look_at_rotations(position: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """World-to-camera rotations (..., 3, 3) of cameras at ``position`` looking at ``target``
    with the image's down axis near the car's down, rolled by ``roll`` radians."""
    z = normalize(np.asarray(target, dtype=float) - np.asarray(position, dtype=float))
    x = normalize(np.cross(z, np.array([0.0, 0.0, 1.0])))
    y = np.cross(z, x)
    c, s = np.cos(roll), np.sin(roll)
    x, y = c * x + s * y, -s * x + c * y
    return np.stack([x, y, z], axis=-2)


def look_at(position: np.ndarray, target: np.ndarray, roll: float = 0.0) -> CameraPose:
    """Camera at ``position`` looking at ``target`` (see :func:`look_at_rotations`)."""
    position = np.asarray(position, dtype=float)
    return CameraPose(position, look_at_rotations(position, target, roll))


#: Drive&Act inner_mirror camera placement in the demo car (its intrinsics are the real ones).
INNER_MIRROR_POSE = look_at(np.array([0.80, -0.36, 0.66]), np.array([0.0, -0.20, 0.30]))

#: SyntheticCabin views: position, look-at target, roll (deg), image size, focal length (px).
#: Placements follow the view names; none coincides with the Drive&Act inner_mirror.
SYNTHETIC_CAMERAS: dict[str, tuple[tuple, tuple, float, tuple[int, int], float]] = {
    "A_Pillar_Codriver": ((0.55, -1.02, 0.82), (-0.05, 0.0, 0.40), 0.0, (1280, 960), 600.0),
    "A_Pillar_Driver": ((0.52, 0.42, 0.80), (-0.05, -0.05, 0.40), 0.0, (1280, 960), 560.0),
    "Dashboard": ((0.62, 0.0, 0.40), (-0.05, 0.0, 0.45), 0.0, (1280, 800), 520.0),
    "Front": ((0.88, 0.0, 0.55), (-0.05, 0.0, 0.38), 0.0, (1280, 960), 760.0),
    "Front_Left": ((0.80, 0.38, 0.55), (-0.05, 0.0, 0.38), 0.0, (1280, 960), 680.0),
    "Front_Right": ((0.74, -0.78, 0.55), (-0.05, 0.0, 0.38), 0.0, (1280, 960), 680.0),
    "Front_TopLeft": ((0.72, 0.35, 0.98), (-0.05, 0.0, 0.35), 0.0, (1280, 960), 640.0),
    "Front_TopRight": ((0.72, -0.62, 0.98), (-0.05, 0.0, 0.35), 0.0, (1280, 960), 640.0),
    "OMS_01": ((0.74, -0.37, 0.30), (-0.05, 0.0, 0.48), 0.0, (1280, 960), 560.0),
    "Rear_Mirror": ((0.80, -0.37, 0.72), (-0.60, -0.37, 0.25), 0.0, (1280, 960), 430.0),
}


def synthetic_camera(view: str) -> tuple[CameraPose, Calibration]:
    """Nominal pose and pinhole intrinsics (no distortion) of a SyntheticCabin view."""
    pos, target, roll, (w, h), f = SYNTHETIC_CAMERAS[view]
    pose = look_at(np.array(pos), np.array(target), roll * DEG)
    return pose, Calibration(fx=f, fy=f, cx=w / 2, cy=h / 2, width=w, height=h)


# --------------------------------------------------------------------------------------------
# occlusion
# --------------------------------------------------------------------------------------------


def segment_distance(p0, p1, q0, q1) -> np.ndarray:
    """Closest distance between segments p0-p1 and q0-q1 (broadcast over leading axes)."""
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a = np.sum(d1 * d1, -1)
    e = np.sum(d2 * d2, -1)
    f = np.sum(d2 * r, -1)
    c = np.sum(d1 * r, -1)
    b = np.sum(d1 * d2, -1)
    a = np.maximum(a, 1e-12)
    denom = a * e - b * b
    e_safe = np.maximum(e, 1e-12)
    point = e <= 1e-12  # second segment degenerate (a sphere's centre)
    s = np.where(denom > 1e-12, np.clip((b * f - c * e) / np.maximum(denom, 1e-12), 0, 1), 0.0)
    s = np.where(point, np.clip(-c / a, 0, 1), s)
    t = np.where(point, 0.0, (b * s + f) / e_safe)
    s = np.where(t < 0, np.clip(-c / a, 0, 1), np.where(t > 1, np.clip((b - c) / a, 0, 1), s))
    t = np.clip(t, 0, 1)
    diff = (p0 + s[..., None] * d1) - (q0 + t[..., None] * d2)
    return np.linalg.norm(diff, axis=-1)


def _rays(cam: np.ndarray, pts: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Segments from the camera centre to ``margin`` short of each point."""
    d = pts - cam
    n = np.linalg.norm(d, axis=-1, keepdims=True)
    end = cam + d * np.clip(1 - margin / np.maximum(n, 1e-9), 0, 1)
    return np.broadcast_to(cam, pts.shape), end


def capsule_pen(cam, pts, a, b, radius, margin=0.03) -> np.ndarray:
    """Penetration (N,J) of camera->point segments into capsules a-b (N,3) of ``radius``."""
    p0, p1 = _rays(cam, pts, margin)
    d = segment_distance(p0, p1, a[:, None, :], b[:, None, :])
    return 1.0 - d / radius


def ellipsoid_pen(cam, pts, a, b, rot, semi, margin=0.03) -> np.ndarray:
    """Penetration into an elliptic capsule with axis a-b and cross-section semi-axes ``semi``
    (x, y, z) in the rotated frame ``rot`` (N,3,3): scaled to a unit capsule."""
    p0, p1 = _rays(cam, pts, margin)
    inv = 1.0 / np.asarray(semi)

    def loc(v):  # (N,...,3) -> scaled local coordinates
        if v.ndim == 2:
            return np.einsum("nji,nj->ni", rot, v) * inv
        return np.einsum("nji,nkj->nki", rot, v) * inv

    d = segment_distance(loc(p0), loc(p1), loc(a)[:, None, :], loc(b)[:, None, :])
    return 1.0 - d


def box_pen(cam, pts, lo, hi, margin=0.03) -> np.ndarray:
    """1 where the camera->point segment crosses the axis-aligned box [lo, hi], else -1."""
    p0, p1 = _rays(cam, pts, margin)
    d = p1 - p0
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo - p0) / d
        t2 = (hi - p0) / d
    tmin = np.where(d == 0, np.where((p0 >= lo) & (p0 <= hi), -np.inf, np.inf), np.minimum(t1, t2))
    tmax = np.where(d == 0, np.where((p0 >= lo) & (p0 <= hi), np.inf, -np.inf), np.maximum(t1, t2))
    enter = np.max(tmin, axis=-1)
    leave = np.min(tmax, axis=-1)
    hit = (enter <= leave) & (leave >= 0) & (enter <= 1)
    return np.where(hit, 1.0, -1.0)


#: Keypoints tested for occlusion, and the occluders each keypoint belongs to (never tested).
BODY_OCCLUDER_OWNERS = {
    "l_upper": ("lShoulder", "lElbow"), "l_fore": ("lElbow", "lWrist"),
    "r_upper": ("rShoulder", "rElbow"), "r_fore": ("rElbow", "rWrist"),
    "l_thigh": ("lHip", "lKnee"), "r_thigh": ("rHip", "rKnee"),
    "trunk": ("lShoulder", "rShoulder", "lHip", "rHip", "midHip", "neck"),
    "head": (),
}


def body_penetration(
    cam: np.ndarray, names: list[str], pts: dict[str, np.ndarray], tr: Trunk, body: Body,
) -> np.ndarray:
    """Deepest penetration (N,J) of each named keypoint's sight line into the person's own
    body: head (ellipsoid), trunk (elliptic cylinder), arms and thighs (capsules).

    ``cam`` is one camera centre (3,) or one per pose (N,3).
    """
    cam = np.asarray(cam, dtype=float)
    if cam.ndim == 2:
        cam = cam[:, None, :]
    p = np.stack([pts[n] for n in names], axis=1)
    s = body.stature / 1.75
    out = np.full(p.shape[:2], -np.inf)

    def upd(pen, occ):
        own = BODY_OCCLUDER_OWNERS[occ]
        mask = np.array([n not in own for n in names])
        out[:, mask] = np.maximum(out[:, mask], pen[:, mask])

    hc = tr.head_pivot + np.einsum("nij,j->ni", tr.r_head, np.array([0.0, 0.0, 0.04 * body.head]))
    hs = np.array([0.083, 0.068, 0.10]) * body.head
    upd(ellipsoid_pen(cam, p, hc, hc, tr.r_head, hs), "head")
    up = tr.r_tho[:, :, 2]
    ta = tr.pelvis + 0.08 * up
    tb = tr.neck_base - 0.06 * up
    upd(ellipsoid_pen(cam, p, ta, tb, tr.r_tho, np.array([0.10 * s, 0.13 * s, 0.08 * s])), "trunk")
    for side in ("l", "r"):
        upd(capsule_pen(cam, p, pts[f"{side}Shoulder"], pts[f"{side}Elbow"], 0.045 * s),
            f"{side}_upper")
        upd(capsule_pen(cam, p, pts[f"{side}Elbow"], pts[f"{side}Wrist"], 0.038 * s),
            f"{side}_fore")
        upd(capsule_pen(cam, p, pts[f"{side}Hip"], pts[f"{side}Knee"], 0.075 * s),
            f"{side}_thigh")
    return out


def wheel_penetration(cam: np.ndarray, p: np.ndarray, margin: float = 0.03) -> np.ndarray:
    """Penetration (N,J) of sight lines into the steering wheel, modelled in its plane: rim
    (tube radius 2.2 cm), hub (7.5 cm) and three spokes (3, 9 and 6 o'clock, 2 cm wide)."""
    p0, p1 = _rays(cam, p, margin)
    d0 = np.sum((p0 - WHEEL_CENTRE) * WHEEL_NORMAL, -1)
    d1 = np.sum((p1 - WHEEL_CENTRE) * WHEEL_NORMAL, -1)
    crosses = (d0 * d1) < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(crosses, d0 / (d0 - d1), 0.0)
    hit = p0 + t[..., None] * (p1 - p0) - WHEEL_CENTRE
    a = np.sum(hit * WHEEL_UP, -1)
    b = np.sum(hit * WHEEL_RIGHT, -1)
    rho = np.hypot(a, b)
    pen = 1.0 - np.abs(rho - WHEEL_RADIUS) / 0.022
    pen = np.maximum(pen, np.where(rho < 0.075, 1.0, -1.0))
    spoke = np.minimum(np.abs(a), np.where(a < 0, np.abs(b), np.inf))  # 3/9 and 6 o'clock
    on_spoke = (rho >= 0.075) & (rho <= WHEEL_RADIUS)
    pen = np.maximum(pen, np.where(on_spoke, 1.0 - spoke / 0.02, -1.0))
    return np.where(crosses, pen, -1.0)


def cabin_penetration(cam: np.ndarray, p: np.ndarray, seat: np.ndarray) -> np.ndarray:
    """Penetration (N,J) of sight lines into the parts of the car that hide a point from every
    front camera: the dashboard and knee bolster (knees, feet, footwell) and the driver seat's
    backrest (hands behind the seat), at ``seat``, the subject's H-point."""
    out = np.maximum(box_pen(cam, p, DASHBOARD[0], DASHBOARD[1]),
                     box_pen(cam, p, KNEE_BOLSTER[0], KNEE_BOLSTER[1]))
    back_lo = seat + np.array([-0.75, -0.27, 0.05])
    back_hi = seat + np.array([-0.30, 0.27, 0.80])
    return np.maximum(out, box_pen(cam, p, back_lo, back_hi))
