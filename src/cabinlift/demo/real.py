"""The demo's "real" domain: Drive&Act-like recordings of 15 seated drivers.

Per run: an activity script (keyframes, :mod:`cabinlift.demo.activities`) is interpolated with
minimum-jerk profiles at 30 fps, physiological sway/tremor is added as smooth noise, the body is
posed by forward kinematics (arms/legs by two-link IK), and the keypoints are expressed in the
inner_mirror camera frame. Annotation follows how Drive&Act's 3D poses were made (OpenPose in
three views, triangulated; joints occluded in at least two views left out): a keypoint is
written as zeros when its sight line from the mirror camera is deeply occluded — by the driver's
own head/trunk/arms/thighs, the steering wheel, the dashboard or the seat — beyond a per-joint
tolerance that stands for the other two views, or when it leaves the image, plus short random
drop-outs (triangulation failures). Annotated joints carry triangulation noise (smooth
per-joint offsets plus jitter). Ankles and feet are never annotated (0 % in Drive&Act's
inner_mirror data), nor is ``background``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import ndtri

from cabinlift.camera import INNER_MIRROR
from cabinlift.demo.activities import Habits, Script, sample_habits, script_run
from cabinlift.demo.cabin import (
    INNER_MIRROR_POSE,
    body_penetration,
    cabin_penetration,
    wheel_penetration,
)
from cabinlift.demo.kinematics import (
    DEG,
    POSE_PARAMS,
    Body,
    anchor_frames,
    limbs_fk,
    sample_body,
    trunk_fk,
)
from cabinlift.skeleton import DRIVE_ACT_JOINTS

#: Keypoints the demo poses (BODY_25 names); the other DRIVE_ACT_JOINTS stay zero.
POSED = (
    "nose", "lEye", "rEye", "lEar", "rEar", "lShoulder", "rShoulder", "lElbow", "rElbow",
    "lWrist", "rWrist", "lHip", "rHip", "lKnee", "rKnee", "neck", "midHip",
)

#: Per joint: occlusion tolerance (penetration depth still annotated: the other two views and
#: OpenPose's guesses cover it) and drop-out rate (triangulation failures).
ANNOTATION_MODEL: dict[str, tuple[float, float]] = {
    "nose": (0.9, 0.01), "lEye": (0.55, 0.02), "rEye": (0.9, 0.015),
    "lEar": (-0.02, 0.04), "rEar": (0.6, 0.04),
    "lShoulder": (0.9, 0.04), "rShoulder": (0.9, 0.015),
    "lElbow": (0.6, 0.05), "rElbow": (0.7, 0.03),
    "lWrist": (0.55, 0.05), "rWrist": (0.6, 0.04),
    "lHip": (0.7, 0.05), "rHip": (0.75, 0.04),
    "lKnee": (-0.4, 0.0), "rKnee": (-0.4, 0.0),
    "neck": (0.9, 0.02), "midHip": (0.75, 0.04),
}

#: The steering wheel hides points from the mirror (and front) cameras but not from the side
#: views Drive&Act also triangulated with, so it counts half.
WHEEL_WEIGHT = 0.5

_OCCLUSION_STRIDE = 3

_ANCHORS = ("car", "seat", "thorax", "head")

#: Smooth physiological noise: parameter -> (sd, correlation time in s).
_SWAY = {
    "pel_x": (0.004, 1.0), "pel_y": (0.003, 1.0), "pel_z": (0.002, 1.0),
    "pel_yaw": (1.0 * DEG, 1.0), "pel_pitch": (0.8 * DEG, 1.0), "pel_roll": (0.8 * DEG, 1.0),
    "lum_flex": (1.0 * DEG, 0.8), "lum_lat": (0.8 * DEG, 0.8), "lum_twist": (1.0 * DEG, 0.8),
    "tho_flex": (1.2 * DEG, 0.6), "tho_lat": (1.0 * DEG, 0.6), "tho_twist": (1.2 * DEG, 0.6),
    "head_yaw": (3.0 * DEG, 0.4), "head_pitch": (2.0 * DEG, 0.4), "head_roll": (1.5 * DEG, 0.5),
    "l_swivel": (4.0 * DEG, 0.5), "r_swivel": (4.0 * DEG, 0.5), "knee_out": (2.0 * DEG, 1.5),
}


@dataclass
class Subject:
    """One demo participant: ``vp{index}`` with a body and seating/moving habits."""

    index: int
    body: Body
    habits: Habits


def make_subject(index: int, rng: np.random.Generator, female_fraction: float) -> Subject:
    female = bool(rng.random() < female_fraction)
    body = sample_body(rng, female=female, ratio_sd=0.03, convention="openpose")
    return Subject(index, body, sample_habits(rng, body))


def smooth_noise(rng: np.random.Generator, n: int, channels: int, corr_s: float,
                 fps: float) -> np.ndarray:
    """(n, channels) Gaussian noise with unit sd and a correlation time of ``corr_s`` seconds."""
    sigma = max(corr_s * fps / 2.0, 0.5)
    pad = int(4 * sigma) + 1
    w = rng.standard_normal((n + 2 * pad, channels))
    out = gaussian_filter1d(w, sigma, axis=0, mode="nearest")[pad:pad + n]
    return out * np.sqrt(2.0 * np.sqrt(np.pi) * sigma)


def _keyframe_arrays(sc: Script) -> tuple[np.ndarray, np.ndarray, dict]:
    times = np.array([t for t, _ in sc.keys])
    params = np.array([[st[p] for p in POSE_PARAMS] for _, st in sc.keys], dtype=np.float64)
    hands = {}
    for k in ("lh", "rh"):
        anchor = np.array([_ANCHORS.index(st[k][0]) for _, st in sc.keys])
        offset = np.array([st[k][1] for _, st in sc.keys], dtype=np.float64)
        hands[k] = (anchor, offset)
    return times, params, hands


def run_frames(seconds: float, fps: float) -> int:
    """The number of frames of a run of ``seconds`` at ``fps``."""
    return int(round(seconds * fps))


def simulate_run(
    subject: Subject, rng: np.random.Generator, seconds: float, fps: float
) -> tuple[dict[str, np.ndarray], list[tuple[str, int, int]], dict]:
    """Pose one run. Returns car-frame keypoints (F,3) per POSED name, the activity segments in
    frames (name, start, end exclusive), and the trunk/pose data the occlusion model needs."""
    body, h = subject.body, subject.habits
    sc, segs = script_run(body, h, rng, seconds)
    times, params, hands = _keyframe_arrays(sc)
    n = run_frames(seconds, fps)
    t = np.arange(n) / fps
    k = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    span = np.maximum(times[k + 1] - times[k], 1e-9)
    u = np.clip((t - times[k]) / span, 0.0, 1.0)
    s = u * u * u * (10 - 15 * u + 6 * u * u)  # minimum jerk
    qv = params[k] + s[:, None] * (params[k + 1] - params[k])
    q = {p: qv[:, i].copy() for i, p in enumerate(POSE_PARAMS)}
    for p, (sd, corr) in _SWAY.items():
        q[p] += sd * h.sway * smooth_noise(rng, n, 1, corr, fps)[:, 0]
    seat = np.broadcast_to(h.seat, (n, 3))
    tr = trunk_fk(body, q, seat)
    frames = anchor_frames(tr)
    origins = np.stack([frames[a][0] for a in _ANCHORS])  # (4, n, 3)
    rots = np.stack([np.broadcast_to(frames[a][1], (n, 3, 3)) for a in _ANCHORS])
    idx = np.arange(n)
    targets = {}
    for key, (anchor, offset) in hands.items():
        p0 = origins[anchor[k], idx] + np.einsum("nij,nj->ni", rots[anchor[k], idx], offset[k])
        p1 = origins[anchor[k + 1], idx] + np.einsum(
            "nij,nj->ni", rots[anchor[k + 1], idx], offset[k + 1])
        tgt = p0 + s[:, None] * (p1 - p0)
        tgt += 0.008 * h.sway * smooth_noise(rng, n, 3, 0.5, fps)
        tgt += 0.0015 * smooth_noise(rng, n, 3, 0.06, fps)
        targets[key] = tgt
    feet = [np.broadcast_to(f, (n, 3)) + 0.005 * smooth_noise(rng, n, 3, 2.0, fps)
            for f in h.feet]
    pts = limbs_fk(body, q, tr, targets["lh"], targets["rh"], feet[0], feet[1])
    fsegs = [(name, int(round(a * fps)), min(int(round(b * fps)), n)) for name, a, b in segs]
    fsegs = [(name, a, b) for name, a, b in fsegs if b > a]
    return pts, fsegs, {"trunk": tr, "q": q}


def annotate(
    subject: Subject, pts: dict[str, np.ndarray], extra: dict, rng: np.random.Generator,
    fps: float, label_noise_mm: float, label_jitter_mm: float, empty_frame_rate: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Drive&Act-style 3D annotation of one run: (F, 26, 3) metres in the inner_mirror frame and
    (F, 26) confidences, zeros for unannotated joints (see the module docstring)."""
    cam = INNER_MIRROR_POSE.position
    names = list(POSED)
    p = np.stack([pts[nm] for nm in names], axis=1)  # (F, J, 3) car frame
    n = p.shape[0]
    # Occlusion changes smoothly with the motion: evaluate it every few frames, interpolate.
    sub = np.unique(np.r_[np.arange(0, n, _OCCLUSION_STRIDE), n - 1])
    ps = p[sub]
    pen_s = np.maximum(
        body_penetration(cam, names, {k: v[sub] for k, v in pts.items()},
                         extra["trunk"].take(sub), subject.body),
        cabin_penetration(cam, ps, subject.habits.seat),
    ) + WHEEL_WEIGHT * np.clip(wheel_penetration(cam, ps), 0.0, 1.0)
    frames = np.arange(n)
    pen = np.stack([np.interp(frames, sub, pen_s[:, i]) for i in range(len(names))], axis=1)
    xyz = INNER_MIRROR_POSE.to_camera(p)
    inside = INNER_MIRROR.in_image(INNER_MIRROR.project(xyz), margin=-5.0)
    tol = np.array([ANNOTATION_MODEL[nm][0] for nm in names])
    drop = np.array([ANNOTATION_MODEL[nm][1] for nm in names])
    wobble = smooth_noise(rng, n, len(names), 0.3, fps)
    fail = smooth_noise(rng, n, len(names), 0.25, fps)
    with np.errstate(divide="ignore"):
        fail_thr = np.where(drop > 0, ndtri(1.0 - np.maximum(drop, 1e-12)), np.inf)
    annotated = inside & (pen + 0.2 * wobble < tol) & (fail < fail_thr)
    # Drive&Act's neck / midHip come with the shoulders / hips they sit between.
    j = {nm: i for i, nm in enumerate(names)}
    annotated[:, j["neck"]] &= annotated[:, j["lShoulder"]] | annotated[:, j["rShoulder"]]
    annotated[:, j["midHip"]] &= annotated[:, j["lHip"]] | annotated[:, j["rHip"]]
    # Frames where triangulation found no person at all: short bursts.
    if empty_frame_rate > 0:
        burst = smooth_noise(rng, n, 1, 0.1, fps)[:, 0]
        annotated &= (burst < ndtri(1.0 - empty_frame_rate))[:, None]
    noise = (label_noise_mm / 1000.0) * smooth_noise(rng, n, len(names) * 3, 0.4, fps)
    noise += (label_jitter_mm / 1000.0) * rng.standard_normal((n, len(names) * 3))
    xyz = xyz + noise.reshape(n, len(names), 3)
    conf = 0.86 - 0.3 * np.clip(pen + 0.6, 0.0, 1.2) + 0.06 * smooth_noise(
        rng, n, len(names), 0.5, fps)
    conf = np.clip(conf, 0.05, 0.99)
    out_xyz = np.zeros((n, len(DRIVE_ACT_JOINTS), 3))
    out_p = np.zeros((n, len(DRIVE_ACT_JOINTS)))
    for i, nm in enumerate(names):
        col = DRIVE_ACT_JOINTS.index(nm)
        a = annotated[:, i]
        out_xyz[a, col] = xyz[a, i]
        out_p[a, col] = conf[a, i]
    return out_xyz, out_p
