"""Seated-body kinematics shared by both demo domains.

Frames: the car frame has x forward, y left, z up (ISO 8855), metres, origin at the reference
H-point (hip point) of the driver seat. A body is a chain pelvis -> lumbar -> thorax -> neck ->
head with two arms and two legs; joint angles are vectorised over poses (N,). Arms and legs are
posed by analytic two-link inverse kinematics to a hand/foot target plus a swivel angle of the
elbow/knee about the root-target axis, so bone lengths are exact in every pose.

Anthropometry: segment lengths are stature ratios from Drillis & Contini (1966) as tabulated in
Winter, *Biomechanics and Motor Control of Human Movement* (upper arm 0.186 H, forearm 0.146 H,
thigh 0.245 H, shank 0.246 H, hip-to-shoulder 0.288 H); stature from DIN 33402-2 (men
1.755 +- 0.070 m, women 1.628 +- 0.065 m). Keypoint *conventions* differ between the domains the
way they do between OpenPose triangulations (Drive&Act) and a rendering rig (SyntheticCabin):
OpenPose hips sit higher and wider than the rig's hip joint centres, its ears/eyes are surface
points, the rig's are further inside the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

DEG = np.pi / 180.0

MALE_STATURE = (1.755, 0.070)
FEMALE_STATURE = (1.628, 0.065)

#: Segment ratios to stature (Drillis & Contini); shoulder/hip widths are keypoint distances.
RATIOS = {
    "upper_arm": 0.186, "forearm": 0.146, "thigh": 0.245, "shank": 0.246,
    "lumbar": 0.130, "thoracic": 0.158, "neck": 0.057,
}


def rx(a: np.ndarray) -> np.ndarray:
    """Rotations (N,3,3) about x; positive leans the z axis toward -y (to the body's right)."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], axis=-1).reshape(*np.shape(a), 3, 3)


def ry(a: np.ndarray) -> np.ndarray:
    """Rotations about y; positive tilts z toward +x (flexion forward, head looking down)."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], axis=-1).reshape(*np.shape(a), 3, 3)


def rz(a: np.ndarray) -> np.ndarray:
    """Rotations about z; positive turns x toward +y (to the left)."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], axis=-1).reshape(*np.shape(a), 3, 3)


def ypr(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    return rz(yaw) @ ry(pitch) @ rx(roll)


def apply(r: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors: r (N,3,3) with v (N,3) or (3,)."""
    if v.ndim == 1:
        return r @ v
    return np.einsum("nij,nj->ni", r, v)


def normalize(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


@dataclass(frozen=True)
class Body:
    """Segment lengths (metres) and keypoint offsets of one person under one convention."""

    stature: float
    female: bool
    upper_arm: float
    forearm: float
    thigh: float
    shank: float
    lumbar: float
    thoracic: float
    neck: float
    shoulder_width: float
    hip_width: float
    hip_up: float  # hip keypoints above the pelvis origin (convention)
    shoulder_down: float  # shoulder keypoints below the neck base (convention)
    head: float  # head size factor (1 = adult mean)
    ear: tuple[float, float, float]  # head-frame offsets from the head pivot (x fwd, y left, z up)
    eye: tuple[float, float, float]
    nose: tuple[float, float, float]

    @property
    def arm(self) -> float:
        return self.upper_arm + self.forearm


def sample_body(
    rng: np.random.Generator, *, female: bool, stature: float | None = None,
    ratio_sd: float = 0.03, convention: str = "openpose",
) -> Body:
    """Draw one person's proportions: stature from the sex's table unless given, every segment
    ratio scaled by its own N(1, ratio_sd) factor (people differ in proportions, not only size)."""
    if stature is None:
        mu, sd = FEMALE_STATURE if female else MALE_STATURE
        stature = float(np.clip(rng.normal(mu, sd), mu - 2.5 * sd, mu + 2.5 * sd))
    h = stature

    def seg(name: str) -> float:
        return float(RATIOS[name] * h * rng.normal(1.0, ratio_sd))

    head = float((h / 1.72) ** 0.4 * rng.normal(1.0, ratio_sd * 0.7))
    sw = (0.196 if female else 0.212) * h * rng.normal(1.0, ratio_sd * 1.3)
    if convention == "openpose":
        hw = (0.152 if female else 0.140) * h * rng.normal(1.0, ratio_sd * 1.3)
        hip_up, sh_down = 0.035, 0.012
        ear, eye, nose = (-0.005, 0.073, 0.025), (0.088, 0.032, 0.052), (0.118, 0.0, 0.012)
    elif convention == "rig":
        hw = (0.112 if female else 0.102) * h * rng.normal(1.0, ratio_sd * 1.3)
        hip_up, sh_down = -0.005, 0.03
        ear, eye, nose = (-0.018, 0.068, 0.022), (0.072, 0.031, 0.050), (0.108, 0.0, 0.010)
    else:
        raise ValueError(f"unknown convention {convention!r}")
    return Body(
        stature=h, female=female, upper_arm=seg("upper_arm"), forearm=seg("forearm"),
        thigh=seg("thigh"), shank=seg("shank"), lumbar=seg("lumbar"), thoracic=seg("thoracic"),
        neck=seg("neck"), shoulder_width=float(sw), hip_width=float(hw), hip_up=hip_up,
        shoulder_down=sh_down, head=head,
        ear=tuple(head * v for v in ear), eye=tuple(head * v for v in eye),  # type: ignore[arg-type]
        nose=tuple(head * v for v in nose),  # type: ignore[arg-type]
    )


#: Scalar pose parameters (radians / metres), vectorised over poses.
POSE_PARAMS: tuple[str, ...] = (
    "pel_x", "pel_y", "pel_z", "pel_yaw", "pel_pitch", "pel_roll",
    "lum_flex", "lum_lat", "lum_twist", "tho_flex", "tho_lat", "tho_twist",
    "head_yaw", "head_pitch", "head_roll", "neck_fwd", "l_swivel", "r_swivel", "knee_out",
)


@dataclass
class Trunk:
    """Result of the trunk/head pass: anchor frames and points that do not depend on the arms."""

    pelvis: np.ndarray  # (N,3) origin (mid-hip point of the rig)
    r_pel: np.ndarray  # (N,3,3)
    neck_base: np.ndarray
    r_tho: np.ndarray
    head_pivot: np.ndarray
    r_head: np.ndarray
    points: dict[str, np.ndarray]  # hips, shoulders (before shrug), face, neck

    def take(self, idx: np.ndarray | slice) -> Trunk:
        """The same poses restricted to ``idx``."""
        return Trunk(self.pelvis[idx], self.r_pel[idx], self.neck_base[idx], self.r_tho[idx],
                     self.head_pivot[idx], self.r_head[idx],
                     {k: v[idx] for k, v in self.points.items()})


def trunk_fk(body: Body, q: dict[str, np.ndarray], seat: np.ndarray) -> Trunk:
    """Pelvis, spine, shoulders and head for poses ``q`` with the seat H-point(s) ``seat``.

    Head angles are absolute (car frame: yaw left, pitch down, roll right) because people keep
    their gaze, not their head-to-trunk angle; the neck takes half of the head-thorax rotation.
    """
    p0 = seat + np.stack([q["pel_x"], q["pel_y"], q["pel_z"]], axis=-1)
    r_pel = ypr(q["pel_yaw"], q["pel_pitch"], q["pel_roll"])
    r_lum = r_pel @ ypr(q["lum_twist"], q["lum_flex"], q["lum_lat"])
    t12 = p0 + apply(r_lum, np.array([0.0, 0.0, body.lumbar]))
    r_tho = r_lum @ ypr(q["tho_twist"], q["tho_flex"], q["tho_lat"])
    nb = t12 + apply(r_tho, np.array([0.0, 0.0, body.thoracic]))
    r_head = ypr(q["head_yaw"], q["head_pitch"], q["head_roll"])
    rel = Rotation.from_matrix(np.swapaxes(r_tho, -1, -2) @ r_head).as_rotvec()
    r_neck = r_tho @ Rotation.from_rotvec(0.5 * rel).as_matrix() @ ry(q["neck_fwd"])
    pivot = nb + apply(r_neck, np.array([0.0, 0.0, body.neck]))
    pts: dict[str, np.ndarray] = {}
    hw, sw = body.hip_width / 2, body.shoulder_width / 2
    pts["lHip"] = p0 + apply(r_pel, np.array([0.0, hw, body.hip_up]))
    pts["rHip"] = p0 + apply(r_pel, np.array([0.0, -hw, body.hip_up]))
    pts["midHip"] = 0.5 * (pts["lHip"] + pts["rHip"])
    pts["lShoulder0"] = nb + apply(r_tho, np.array([-0.01, sw, -body.shoulder_down]))
    pts["rShoulder0"] = nb + apply(r_tho, np.array([-0.01, -sw, -body.shoulder_down]))
    ex, ey, ez = body.ear
    yx, yy, yz = body.eye
    pts["lEar"] = pivot + apply(r_head, np.array([ex, ey, ez]))
    pts["rEar"] = pivot + apply(r_head, np.array([ex, -ey, ez]))
    pts["lEye"] = pivot + apply(r_head, np.array([yx, yy, yz]))
    pts["rEye"] = pivot + apply(r_head, np.array([yx, -yy, yz]))
    pts["nose"] = pivot + apply(r_head, np.array(body.nose))
    return Trunk(p0, r_pel, nb, r_tho, pivot, r_head, pts)


def two_link_ik(
    root: np.ndarray, target: np.ndarray, l1: float, l2: float, ref: np.ndarray,
    fallback: np.ndarray, swivel: np.ndarray, side: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Middle (elbow/knee) and end (wrist/ankle) joints reaching for ``target``.

    Unreachable targets are approached as far as the limb allows (the end stops on the line to
    the target). ``swivel`` rotates the middle joint about the root-target axis away from
    ``ref`` towards the body's outside (``side`` +1 for left limbs, -1 for right limbs).
    """
    d = target - root
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    n = d / np.maximum(dist, 1e-9)
    dc = np.clip(dist, abs(l1 - l2) + 0.02, (l1 + l2) * 0.999)
    end = root + n * dc
    x = (l1 * l1 - l2 * l2 + dc * dc) / (2 * dc)
    r = np.sqrt(np.maximum(l1 * l1 - x * x, 0.0))
    u = ref - np.sum(ref * n, axis=-1, keepdims=True) * n
    uf = fallback - np.sum(fallback * n, axis=-1, keepdims=True) * n
    u = np.where(np.linalg.norm(u, axis=-1, keepdims=True) < 0.25, uf, u)
    u = normalize(u)
    v = side * np.cross(n, u)
    sw = swivel[:, None]
    mid = root + n * x + r * (np.cos(sw) * u + np.sin(sw) * v)
    return mid, end


def limbs_fk(
    body: Body, q: dict[str, np.ndarray], tr: Trunk, l_hand: np.ndarray, r_hand: np.ndarray,
    l_foot: np.ndarray, r_foot: np.ndarray,
) -> dict[str, np.ndarray]:
    """All keypoints (BODY_25 names, car frame) given the trunk pass and hand/foot targets.

    Shoulders rise and protract towards far or high targets (scapular motion), which is also
    what lets a seated driver reach the passenger seat.
    """
    pts = dict(tr.points)
    up = tr.r_tho[:, :, 2]
    for side, hand, name in ((1.0, l_hand, "l"), (-1.0, r_hand, "r")):
        s0 = pts.pop(f"{name}Shoulder0")
        d = hand - s0
        dist = np.linalg.norm(d, axis=-1)
        lift = 0.03 * np.clip(np.sum(d * up, axis=-1) / body.arm, 0.0, 1.0)
        reach = 0.045 * np.clip((dist / body.arm - 0.6) / 0.4, 0.0, 1.0)
        s = s0 + lift[:, None] * up + reach[:, None] * normalize(d)
        ref = apply(tr.r_tho, np.array([-0.25, 0.3 * side, -1.0]))
        fb = apply(tr.r_tho, np.array([-1.0, 0.2 * side, 0.0]))
        elbow, wrist = two_link_ik(s, hand, body.upper_arm, body.forearm, ref, fb,
                                   q[f"{name}_swivel"], side)
        pts[f"{name}Shoulder"], pts[f"{name}Elbow"], pts[f"{name}Wrist"] = s, elbow, wrist
    pts["neck"] = 0.5 * (pts["lShoulder"] + pts["rShoulder"]) + 0.015 * up
    for side, foot, name in ((1.0, l_foot, "l"), (-1.0, r_foot, "r")):
        hip = pts[f"{name}Hip"]
        ref = apply(tr.r_pel, np.array([0.0, 0.35 * side, 1.0]))
        fb = apply(tr.r_pel, np.array([1.0, 0.0, 0.0]))
        knee, ankle = two_link_ik(hip, foot, body.thigh, body.shank, ref, fb, q["knee_out"], side)
        pts[f"{name}Knee"], pts[f"{name}Ankle"] = knee, ankle
    return pts


def anchor_frames(tr: Trunk) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Origins and rotations of the frames hand targets can be attached to: the car, the seat
    (moves with the pelvis, not reclined: the lap), the thorax and the head."""
    n = tr.pelvis.shape[0]
    eye = np.broadcast_to(np.eye(3), (n, 3, 3))
    return {
        "car": (np.zeros((n, 3)), eye),
        "seat": (tr.pelvis, eye),
        "thorax": (tr.neck_base, tr.r_tho),
        "head": (tr.head_pivot, tr.r_head),
    }


def look_angles(eye: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Head yaw (left +) and pitch (down +) that point the face from ``eye`` at ``target``."""
    d = np.asarray(target, dtype=float) - np.asarray(eye, dtype=float)
    yaw = np.arctan2(d[..., 1], d[..., 0])
    pitch = np.arctan2(-d[..., 2], np.hypot(d[..., 0], d[..., 1]))
    return yaw, pitch
