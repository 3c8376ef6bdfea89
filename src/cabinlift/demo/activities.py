"""Drive&Act mid-level activities as keyframe scripts for the demo's "real" drivers.

A script is a list of keyframes (time, pose parameters, hand targets). Hand targets are
attached to a frame — the car (steering wheel, cup holder, display, back seat), the seat (lap),
the thorax (phone held in front of the chest) or the head (phone at the ear, cup at the mouth) —
and are re-evaluated every frame, so a phone at the ear follows the head. Between keyframes
every quantity follows a minimum-jerk profile (Flash & Hogan 1985), the standard model of smooth
human point-to-point movements. Durations scale with each subject's speed; amplitudes, hands
and targets vary with the subject's habits and at random, so the same activity never repeats
exactly.

Activity names are the Drive&Act mid-level class names (34 classes; the ones a seated driver
can perform without leaving the seat are scripted). Steering corrections happen inside
``sitting_still`` for subjects who rest their hands on the wheel: Drive&Act has no "driving"
mid-level class (its recordings are of a car in autonomous mode).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cabinlift.demo.cabin import CENTRE_Y, wheel_point
from cabinlift.demo.kinematics import DEG, POSE_PARAMS, Body, look_angles

Hand = tuple[str, tuple[float, float, float]]  # (anchor, offset in the anchor's frame)


@dataclass
class Habits:
    """How one subject sits and moves (seat position, posture habits); drawn once per subject,
    so that subjects differ beyond their body proportions."""

    seat: np.ndarray  # H-point in the car frame
    recline: float
    slouch_lum: float
    slouch_tho: float
    lean: float
    yaw0: float
    neck_fwd: float
    head_pitch0: float
    swivel: tuple[float, float]
    rest: str  # "wheel" | "lap" | "mixed"
    grip: tuple[float, float]  # clock angles of left/right hand on the rim
    lap: tuple[float, float, float]
    dominant: str  # "l" | "r"
    speed: float
    head_amp: float
    sway: float
    weights: dict[str, float] = field(default_factory=dict)
    feet: tuple[np.ndarray, np.ndarray] = (np.zeros(3), np.zeros(3))


def sample_habits(rng: np.random.Generator, body: Body) -> Habits:
    """Seat position follows stature (taller drivers slide back), plus personal preference."""
    s = body.stature
    seat = np.array([-0.42 * (s - 1.72) + rng.normal(0, 0.025), rng.normal(0, 0.01),
                     rng.normal(0, 0.015)])
    legs = (body.thigh + body.shank) / 0.86
    rest = str(rng.choice(["wheel", "lap", "mixed"], p=[0.55, 0.25, 0.20]))
    w = rng.dirichlet(np.full(len(ACTIVITIES), 1.5))
    feet = (
        seat + np.array([0.64 * legs + rng.normal(0, 0.03), 0.15 + rng.normal(0, 0.02), -0.30]),
        seat + np.array([0.66 * legs + rng.normal(0, 0.03), -0.13 + rng.normal(0, 0.02), -0.30]),
    )
    return Habits(
        seat=seat, recline=rng.uniform(13, 24) * DEG, slouch_lum=rng.normal(3, 4) * DEG,
        slouch_tho=rng.normal(5, 4) * DEG, lean=rng.normal(0, 2.5) * DEG,
        yaw0=rng.normal(0, 3) * DEG, neck_fwd=rng.uniform(4, 18) * DEG,
        head_pitch0=rng.normal(2, 4) * DEG,
        swivel=(rng.uniform(5, 35) * DEG, rng.uniform(5, 35) * DEG), rest=rest,
        grip=(-rng.uniform(50, 100) * DEG, rng.uniform(50, 100) * DEG),
        lap=(rng.uniform(0.38, 0.62) * body.thigh, rng.uniform(0.07, 0.13),
             rng.uniform(0.08, 0.14)),
        dominant="r" if rng.random() < 0.85 else "l", speed=rng.uniform(0.75, 1.3),
        head_amp=rng.uniform(0.7, 1.1), sway=rng.uniform(0.6, 1.4),
        weights=dict(zip(ACTIVITIES, w.tolist(), strict=True)), feet=feet,
    )


class Script:
    """Keyframes of one run; each call appends keyframes starting from the last state."""

    def __init__(self, body: Body, habits: Habits, rng: np.random.Generator) -> None:
        self.body, self.h, self.rng = body, habits, rng
        self.t = 0.0
        self.keys: list[tuple[float, dict]] = [(0.0, self.rest_state())]

    # -- state helpers ------------------------------------------------------------------------
    def rest_state(self) -> dict:
        h = self.h
        st = dict.fromkeys(POSE_PARAMS, 0.0)
        st.update(
            pel_pitch=-h.recline, pel_yaw=h.yaw0, pel_roll=h.lean * 0.5, lum_flex=h.slouch_lum,
            lum_lat=h.lean, tho_flex=h.slouch_tho, head_pitch=h.head_pitch0, head_yaw=h.yaw0,
            neck_fwd=h.neck_fwd, l_swivel=h.swivel[0], r_swivel=h.swivel[1], knee_out=8 * DEG,
        )
        st["lh"], st["rh"] = self.rest_hands()
        return st

    def rest_hands(self) -> tuple[Hand, Hand]:
        h = self.h
        lx, ly, lz = h.lap
        lap_l: Hand = ("seat", (lx, ly, lz))
        lap_r: Hand = ("seat", (lx, -ly, lz))
        wl: Hand = ("car", tuple(wheel_point(h.grip[0]).tolist()))  # type: ignore[assignment]
        wr: Hand = ("car", tuple(wheel_point(h.grip[1]).tolist()))  # type: ignore[assignment]
        if h.rest == "wheel":
            return wl, wr
        if h.rest == "lap":
            return lap_l, lap_r
        return (lap_l, wr) if h.dominant == "r" else (wl, lap_r)

    @property
    def state(self) -> dict:
        return self.keys[-1][1]

    def dur(self, base: float) -> float:
        return base * self.h.speed * self.rng.uniform(0.85, 1.15)

    def go(self, base: float, hold: float = 0.0, **changes) -> None:
        """Move to a new state in ``base`` seconds (scaled by the subject), then hold."""
        st = {**self.state, **changes}
        self.t += self.dur(base)
        self.keys.append((self.t, st))
        if hold > 0:
            self.t += hold
            self.keys.append((self.t, st))

    def hold(self, seconds: float) -> None:
        self.t += seconds
        self.keys.append((self.t, dict(self.state)))

    def to_rest(self, base: float = 0.9, hold: float = 0.0) -> None:
        self.go(base, hold, **self.rest_state())

    def look(self, target: np.ndarray, amount: float = 1.0) -> dict:
        """Head yaw/pitch that look at a car-frame point (eyes about 0.63 m above the H-point)."""
        eye = self.h.seat + np.array([0.0, 0.0, 0.36 * self.body.stature])
        yaw, pitch = look_angles(eye, np.asarray(target))
        return {"head_yaw": float(yaw) * amount * self.h.head_amp + self.h.yaw0,
                "head_pitch": float(pitch) * amount + self.h.head_pitch0}

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def n(self, sd: float) -> float:
        return float(self.rng.normal(0.0, sd))

    def side(self, dominant: bool = True) -> tuple[str, float]:
        """Hand key and lateral sign (+1 left) of the dominant (or other) hand."""
        d = self.h.dominant if dominant else ("l" if self.h.dominant == "r" else "r")
        return d + "h", (1.0 if d == "l" else -1.0)


def _car(x: float, y: float, z: float, seat: np.ndarray | None = None) -> Hand:
    if seat is not None:
        x, y, z = (np.array([x, y, z]) + seat).tolist()
    return ("car", (float(x), float(y), float(z)))


# ---------------------------------------------------------------------------------------------
# the activities
# ---------------------------------------------------------------------------------------------


def sitting_still(sc: Script) -> None:
    h = sc.h
    end = sc.t + sc.u(5, 14)
    while sc.t < end:
        r = sc.rng.random()
        if h.rest in ("wheel", "mixed") and r < 0.5:  # steering corrections
            d = sc.n(7 * DEG) if sc.rng.random() < 0.8 else sc.n(25 * DEG)
            ch = {}
            if h.rest == "wheel" or h.dominant == "l":
                ch["lh"] = _car(*wheel_point(h.grip[0] + d))
            if h.rest == "wheel" or h.dominant == "r":
                ch["rh"] = _car(*wheel_point(h.grip[1] + d))
            sc.go(sc.u(0.6, 1.4), sc.u(0.5, 2.5), **ch)
        elif r < 0.75:  # mirror or instrument glance
            tgt = [np.array([0.6, 0.95, 0.55]), np.array([0.6, -1.3, 0.55]),
                   np.array([0.8, CENTRE_Y, 0.66]), np.array([0.45, 0.0, 0.25])][sc.rng.integers(4)]
            sc.go(0.5, sc.u(0.4, 1.2), **sc.look(tgt, sc.u(0.6, 0.9)))
            sc.go(0.5, sc.u(0.5, 2.0), head_yaw=h.yaw0 + sc.n(4 * DEG),
                  head_pitch=h.head_pitch0 + sc.n(3 * DEG))
        else:  # shift in the seat
            sc.go(sc.u(0.8, 1.5), sc.u(1.0, 3.0), pel_x=sc.n(0.015), pel_y=sc.n(0.01),
                  lum_flex=h.slouch_lum + sc.n(3 * DEG), tho_lat=sc.n(3 * DEG))
    sc.to_rest(0.8)


def fastening_seat_belt(sc: Script) -> None:
    s = sc.h.seat
    sc.go(1.0, 0.3, lh=_car(-0.30, 0.31, 0.58, s), tho_twist=sc.u(8, 18) * DEG,
          lum_lat=sc.u(-8, -2) * DEG, head_yaw=sc.u(35, 60) * DEG * sc.h.head_amp,
          head_pitch=sc.u(-5, 5) * DEG, l_swivel=sc.u(30, 60) * DEG)
    sc.go(0.8, 0.1, lh=("thorax", (0.18, 0.08, -0.08)), tho_twist=0.0, lum_lat=0.0,
          head_yaw=sc.u(-10, 10) * DEG, head_pitch=sc.u(10, 25) * DEG, l_swivel=15 * DEG)
    sc.go(0.9, sc.u(0.4, 1.0), lh=("seat", (0.06, -0.19, 0.07)), rh=("seat", (0.08, -0.22, 0.10)),
          head_yaw=sc.u(-30, -12) * DEG, head_pitch=sc.u(25, 40) * DEG,
          tho_twist=sc.u(-10, -3) * DEG)
    sc.to_rest(0.9)


def unfastening_seat_belt(sc: Script) -> None:
    s = sc.h.seat
    sc.go(0.8, sc.u(0.3, 0.6), rh=("seat", (0.06, -0.21, 0.07)), head_yaw=sc.u(-30, -12) * DEG,
          head_pitch=sc.u(25, 40) * DEG)
    sc.go(0.7, 0.1, lh=("thorax", (0.14, -0.04, -0.18)))
    sc.go(1.0, 0.3, lh=_car(-0.22, 0.30, 0.55, s), rh=sc.rest_hands()[1],
          head_yaw=sc.u(30, 50) * DEG * sc.h.head_amp, tho_twist=sc.u(5, 15) * DEG,
          l_swivel=sc.u(30, 60) * DEG)
    sc.to_rest(0.9)


def drinking(sc: Script) -> None:
    k, sgn = sc.side()
    cup = np.array([0.20 + sc.n(0.03), CENTRE_Y + 0.06 + sc.n(0.03), 0.04])
    sc.go(0.9, 0.4, **{k: _car(*cup)}, **sc.look(cup, 0.8))
    for _ in range(int(sc.rng.integers(1, 3))):
        sc.go(1.0, sc.u(1.0, 2.5), **{k: ("head", (0.15, 0.03 * sgn, -0.12))},
              head_pitch=-sc.u(5, 22) * DEG, head_yaw=sc.h.yaw0 + sc.n(5 * DEG),
              **{k[0] + "_swivel": sc.u(20, 50) * DEG})
        sc.go(0.8, sc.u(0.5, 2.0), **{k: ("thorax", (0.28, 0.06 * sgn, -0.26))},
              head_pitch=sc.h.head_pitch0 + sc.n(4 * DEG))
    sc.go(0.9, 0.3, **{k: _car(*cup)}, **sc.look(cup, 0.8))
    sc.to_rest(0.9)


def eating(sc: Script) -> None:
    k, sgn = sc.side()
    box = (0.30 + sc.n(0.02), 0.02 * -sgn, 0.14)
    sc.go(0.8, 0.6, lh=("seat", (box[0], box[1] + 0.07, box[2])),
          rh=("seat", (box[0], box[1] - 0.07, box[2])), head_pitch=sc.u(25, 40) * DEG)
    for _ in range(int(sc.rng.integers(2, 5))):
        sc.go(0.8, sc.u(0.4, 1.0), **{k: ("head", (0.14, 0.02 * sgn, -0.11))},
              head_pitch=sc.u(-5, 10) * DEG)
        sc.go(0.7, sc.u(0.8, 2.0), **{k: ("seat", box)}, head_pitch=sc.u(20, 38) * DEG)
    sc.to_rest(0.9)


def talking_on_phone(sc: Script) -> None:
    k, sgn = sc.side(dominant=sc.rng.random() < 0.8)
    pocket = np.array([0.18 + sc.n(0.03), CENTRE_Y + 0.08, 0.05])
    sc.go(0.8, 0.3, **{k: _car(*pocket)}, **sc.look(pocket, 0.7))
    sc.go(1.0, 0.3, **{k: ("head", (0.01, 0.10 * sgn, -0.11))},
          **{k[0] + "_swivel": sc.u(25, 60) * DEG}, head_roll=-sgn * sc.u(3, 10) * DEG,
          head_pitch=sc.h.head_pitch0 + sc.n(4 * DEG), head_yaw=sc.h.yaw0)
    end = sc.t + sc.u(5, 14)
    while sc.t < end:
        sc.go(sc.u(0.8, 1.5), sc.u(1.0, 3.0), head_yaw=sc.h.yaw0 + sc.n(15 * DEG),
              head_pitch=sc.h.head_pitch0 + sc.n(6 * DEG), tho_lat=sc.n(4 * DEG))
    sc.go(0.9, 0.3, **{k: _car(*pocket)}, **sc.look(pocket, 0.7))
    sc.to_rest(0.9)


def interacting_with_phone(sc: Script) -> None:
    k, sgn = sc.side()
    two = sc.rng.random() < 0.5
    base = (0.30 + sc.n(0.03), 0.0, -0.24 + sc.n(0.03))
    ch = {k: ("thorax", (base[0], 0.03 * sgn, base[2]))}
    if two:
        ch[("l" if k[0] == "r" else "r") + "h"] = ("thorax", (base[0], -0.06 * sgn, base[2]))
    sc.go(0.9, 0.5, **ch, head_pitch=sc.u(28, 45) * DEG, head_yaw=sc.h.yaw0 + sc.n(6 * DEG))
    end = sc.t + sc.u(4, 12)
    while sc.t < end:
        ch = {kk: ("thorax", (base[0] + sc.n(0.02), v[1][1] + sc.n(0.015), base[2] + sc.n(0.02)))
              for kk, v in ch.items()}
        sc.go(sc.u(0.4, 0.8), sc.u(0.5, 1.5), **ch, head_pitch=sc.u(25, 45) * DEG)
    sc.to_rest(0.9)


def using_multimedia_display(sc: Script) -> None:
    disp = np.array([0.56, CENTRE_Y, 0.30])
    sc.go(1.0, 0.3, rh=_car(*(disp + np.array([0.0, 0.05, 0.0]))), **sc.look(disp, 0.9),
          tho_twist=-sc.u(2, 10) * DEG)
    for _ in range(int(sc.rng.integers(2, 6))):
        p = disp + np.array([0.0, sc.n(0.05), sc.n(0.04)])
        sc.go(sc.u(0.3, 0.7), sc.u(0.3, 1.2), rh=_car(*p), **sc.look(disp, sc.u(0.7, 1.0)))
    sc.to_rest(1.0)


_PLACES = {
    "passenger_seat": (np.array([0.05, -0.70, 0.10]), "rh"),
    "glove_box": (np.array([0.42, -0.68, 0.18]), "rh"),
    "back_seat": (np.array([-0.50, -0.42, 0.22]), "rh"),
    "footwell": (np.array([0.30, -0.55, -0.10]), "rh"),
    "door_pocket": (np.array([0.25, 0.40, 0.05]), "lh"),
    "console": (np.array([0.10, CENTRE_Y + 0.05, 0.08]), "rh"),
}


def _reach_pose(sc: Script, target: np.ndarray) -> dict:
    """Trunk lean/twist and gaze a driver uses to reach a far point."""
    rel = target - sc.h.seat
    yaw = np.arctan2(rel[1], rel[0])
    far = np.hypot(rel[0], rel[1])
    ch = {"tho_twist": float(np.clip(yaw * 0.3, -35 * DEG, 25 * DEG)) + sc.n(4 * DEG),
          "lum_twist": float(np.clip(yaw * 0.15, -20 * DEG, 15 * DEG)),
          "lum_lat": float(np.clip(-np.sign(rel[1]) * far * 15 * DEG, -18 * DEG, 18 * DEG)),
          "lum_flex": sc.h.slouch_lum + (sc.u(10, 22) * DEG if rel[0] > 0.2 or rel[2] < 0 else 0.0)}
    amount = 0.6 if rel[0] < -0.2 else 0.9
    ch.update(sc.look(target, amount))
    return ch


def fetching_an_object(sc: Script, placing: bool = False) -> None:
    names = list(_PLACES)
    place = names[int(sc.rng.integers(len(names)))]
    tgt, k = _PLACES[place]
    tgt = tgt + np.array([sc.n(0.04), sc.n(0.04), sc.n(0.03)])
    hold_pt: Hand = ("seat", (0.28, (0.05 if k == "lh" else -0.05), 0.22))
    if placing:
        sc.go(0.8, 0.4, **{k: hold_pt}, head_pitch=sc.u(15, 30) * DEG)
    sc.go(1.2, sc.u(0.3, 0.9), **{k: _car(*tgt)}, **_reach_pose(sc, tgt))
    if not placing:
        sc.go(1.0, sc.u(0.5, 2.0), **{k: hold_pt}, tho_twist=0.0, lum_twist=0.0,
              lum_lat=0.0, lum_flex=sc.h.slouch_lum, head_pitch=sc.u(15, 30) * DEG,
              head_yaw=sc.h.yaw0)
    sc.to_rest(1.0)


def placing_an_object(sc: Script) -> None:
    fetching_an_object(sc, placing=True)


def looking_or_moving_around(sc: Script) -> None:
    for _ in range(int(sc.rng.integers(1, 3))):
        sgn = 1.0 if sc.rng.random() < 0.5 else -1.0
        yaw = sgn * sc.u(50, 85) * DEG * sc.h.head_amp
        sc.go(0.9, sc.u(0.6, 2.0), head_yaw=yaw, head_pitch=sc.u(-5, 15) * DEG,
              tho_twist=sgn * sc.u(8, 25) * DEG, lum_twist=sgn * sc.u(0, 10) * DEG,
              pel_yaw=sc.h.yaw0 + sgn * sc.u(0, 6) * DEG)
        sc.go(0.8, sc.u(0.3, 1.0), head_yaw=sc.h.yaw0 + sc.n(5 * DEG), tho_twist=0.0,
              lum_twist=0.0, pel_yaw=sc.h.yaw0, head_pitch=sc.h.head_pitch0)
    sc.to_rest(0.7)


def _jacket(sc: Script, on: bool) -> None:
    first = "rh" if sc.rng.random() < 0.5 else "lh"
    second = "lh" if first == "rh" else "rh"
    sg = {"lh": 1.0, "rh": -1.0}
    sc.go(1.0, 0.3, lum_flex=sc.h.slouch_lum + sc.u(10, 22) * DEG,
          head_pitch=sc.u(10, 30) * DEG)
    for k, other in ((first, second), (second, first)):
        s = sg[k]
        behind = ("thorax", (-0.10, 0.30 * s, -0.12 if on else -0.05))
        sc.go(1.2, sc.u(0.3, 0.8), **{k: behind, other: ("thorax", (0.25, 0.05 * s, -0.18))},
              **{k[0] + "_swivel": sc.u(40, 80) * DEG},
              tho_twist=s * sc.u(10, 25) * DEG, head_yaw=s * sc.u(15, 40) * DEG)
        sc.go(0.9, sc.u(0.2, 0.6), **{k: ("thorax", (0.02, 0.36 * s, 0.10))})
    sc.go(0.8, sc.u(0.3, 0.8), lh=("thorax", (0.12, 0.13, 0.02)),
          rh=("thorax", (0.12, -0.13, 0.02)), tho_twist=0.0, head_yaw=sc.h.yaw0,
          lum_flex=sc.h.slouch_lum, l_swivel=sc.u(20, 50) * DEG, r_swivel=sc.u(20, 50) * DEG)
    sc.to_rest(1.0)


def putting_on_jacket(sc: Script) -> None:
    _jacket(sc, on=True)


def taking_off_jacket(sc: Script) -> None:
    _jacket(sc, on=False)


def _sunglasses(sc: Script, on: bool) -> None:
    two = sc.rng.random() < 0.6
    k, sgn = sc.side()
    ch = {k: ("head", (0.22, 0.06 * sgn, -0.10))}
    if two:
        ch[("l" if k == "rh" else "r") + "h"] = ("head", (0.22, -0.06 * sgn, -0.10))
    if on:
        sc.go(0.8, 0.4, **ch, head_pitch=sc.u(10, 25) * DEG)
    ch = {kk: ("head", (0.07, np.sign(v[1][1]) * 0.10, -0.05)) for kk, v in ch.items()}
    sc.go(0.9, sc.u(0.4, 1.0), **ch, head_pitch=sc.h.head_pitch0 + sc.n(5 * DEG),
          l_swivel=sc.u(30, 60) * DEG, r_swivel=sc.u(30, 60) * DEG)
    if not on:
        ch = {kk: ("head", (0.25, np.sign(v[1][1]) * 0.06, -0.12)) for kk, v in ch.items()}
        sc.go(0.8, 0.4, **ch, head_pitch=sc.u(10, 25) * DEG)
    sc.to_rest(0.9)


def putting_on_sunglasses(sc: Script) -> None:
    _sunglasses(sc, on=True)


def taking_off_sunglasses(sc: Script) -> None:
    _sunglasses(sc, on=False)


def pressing_automation_button(sc: Script) -> None:
    if sc.rng.random() < 0.6:
        p = wheel_point(sc.u(70, 100) * DEG, radius=0.11)
    else:
        p = np.array([0.38, -0.22, 0.14])
    sc.go(0.8, sc.u(0.3, 0.7), rh=_car(*p), **sc.look(p, 0.7))
    sc.to_rest(0.8)


def _reading(sc: Script, wide: float, pitch: tuple[float, float], turns: bool) -> None:
    x, z = 0.34 + sc.n(0.03), -0.20 + sc.n(0.03)
    sc.go(1.0, 0.5, lh=("thorax", (x, wide, z)), rh=("thorax", (x, -wide, z)),
          head_pitch=sc.u(*pitch) * DEG, l_swivel=sc.u(10, 35) * DEG,
          r_swivel=sc.u(10, 35) * DEG)
    end = sc.t + sc.u(6, 16)
    while sc.t < end:
        if turns and sc.rng.random() < 0.5:
            sc.go(0.6, 0.3, rh=("thorax", (x + 0.02, wide * 0.7, z + 0.03)))
            sc.go(0.6, sc.u(1.0, 3.0), rh=("thorax", (x, -wide, z)))
        else:
            sc.go(sc.u(0.6, 1.2), sc.u(1.0, 3.0), head_pitch=sc.u(*pitch) * DEG,
                  head_yaw=sc.h.yaw0 + sc.n(6 * DEG))
    sc.to_rest(1.0)


def reading_magazine(sc: Script) -> None:
    _reading(sc, 0.13, (25, 42), turns=True)


def reading_newspaper(sc: Script) -> None:
    _reading(sc, 0.22, (15, 32), turns=True)


def working_on_laptop(sc: Script) -> None:
    x = 0.38 + sc.n(0.03)
    sc.go(1.0, 0.5, lh=("seat", (x, 0.11, 0.24)), rh=("seat", (x, -0.11, 0.24)),
          head_pitch=sc.u(30, 45) * DEG, lum_flex=sc.h.slouch_lum + sc.u(0, 10) * DEG)
    end = sc.t + sc.u(6, 16)
    while sc.t < end:
        sc.go(sc.u(0.3, 0.6), sc.u(0.3, 1.5), lh=("seat", (x + sc.n(0.015), 0.11 + sc.n(0.02),
                                                            0.24)),
              rh=("seat", (x + sc.n(0.015), -0.11 + sc.n(0.02), 0.24)),
              head_pitch=sc.u(28, 45) * DEG)
    sc.to_rest(1.0)


def writing(sc: Script) -> None:
    k, sgn = sc.side()
    o = "lh" if k == "rh" else "rh"
    sc.go(1.0, 0.3, **{o: ("seat", (0.30, -0.12 * sgn, 0.18)), k: ("seat", (0.32, 0.0, 0.18))},
          head_pitch=sc.u(35, 50) * DEG)
    end = sc.t + sc.u(5, 12)
    while sc.t < end:
        sc.go(sc.u(0.4, 0.9), sc.u(0.2, 0.8),
              **{k: ("seat", (0.32 + sc.n(0.02), sgn * sc.u(-0.03, 0.06), 0.18))})
    sc.to_rest(0.9)


def _bottle(sc: Script) -> None:
    k, sgn = sc.side()
    o = "lh" if k == "rh" else "rh"
    sc.go(0.9, 0.2, **{o: ("thorax", (0.28, -0.02 * sgn, -0.28)),
                       k: ("thorax", (0.29, -0.02 * sgn, -0.18))}, head_pitch=sc.u(20, 35) * DEG)
    for _ in range(int(sc.rng.integers(2, 4))):
        sc.go(0.35, 0.1, **{k[0] + "_swivel": sc.u(40, 70) * DEG})
        sc.go(0.35, 0.1, **{k[0] + "_swivel": sc.u(5, 25) * DEG})
    sc.to_rest(0.9)


def opening_bottle(sc: Script) -> None:
    _bottle(sc)


def closing_bottle(sc: Script) -> None:
    _bottle(sc)


def preparing_food(sc: Script) -> None:
    sc.go(0.9, 0.3, lh=("seat", (0.30, 0.08, 0.18)), rh=("seat", (0.31, -0.06, 0.20)),
          head_pitch=sc.u(30, 45) * DEG)
    end = sc.t + sc.u(4, 10)
    while sc.t < end:
        sc.go(sc.u(0.4, 0.8), sc.u(0.3, 1.0), rh=("seat", (0.31 + sc.n(0.03), -0.06 + sc.n(0.03),
                                                            0.20 + sc.n(0.03))))
    sc.to_rest(0.9)


#: Scripted activities (Drive&Act mid-level names) -> script function.
ACTIVITIES: dict[str, Callable[[Script], None]] = {
    "sitting_still": sitting_still,
    "fastening_seat_belt": fastening_seat_belt,
    "unfastening_seat_belt": unfastening_seat_belt,
    "drinking": drinking,
    "eating": eating,
    "opening_bottle": opening_bottle,
    "closing_bottle": closing_bottle,
    "preparing_food": preparing_food,
    "talking_on_phone": talking_on_phone,
    "interacting_with_phone": interacting_with_phone,
    "using_multimedia_display": using_multimedia_display,
    "fetching_an_object": fetching_an_object,
    "placing_an_object": placing_an_object,
    "looking_or_moving_around (e.g. searching)": looking_or_moving_around,
    "putting_on_jacket": putting_on_jacket,
    "taking_off_jacket": taking_off_jacket,
    "putting_on_sunglasses": putting_on_sunglasses,
    "taking_off_sunglasses": taking_off_sunglasses,
    "pressing_automation_button": pressing_automation_button,
    "reading_magazine": reading_magazine,
    "reading_newspaper": reading_newspaper,
    "working_on_laptop": working_on_laptop,
    "writing": writing,
}

_BELT = ("fastening_seat_belt", "unfastening_seat_belt")


def script_run(
    body: Body, habits: Habits, rng: np.random.Generator, seconds: float
) -> tuple[Script, list[tuple[str, float, float]]]:
    """Keyframes of one run of ``seconds`` and its activity segments (name, start, end in s).

    A run starts by fastening the seat belt (mostly), then draws activities from the subject's
    preferences with short unannotated pauses in between, and ends unfastening it if time allows.
    """
    sc = Script(body, habits, rng)
    segs: list[tuple[str, float, float]] = []
    names = [a for a in ACTIVITIES if a not in _BELT]
    w = np.array([habits.weights[a] for a in names])
    w = w / w.sum()
    sc.hold(rng.uniform(0.5, 2.0))

    def do(name: str) -> None:
        t0 = sc.t
        ACTIVITIES[name](sc)
        segs.append((name, t0, sc.t))
        sc.hold(rng.uniform(0.3, 2.5))

    if rng.random() < 0.8:
        do("fastening_seat_belt")
    last = ""
    while sc.t < seconds - 12.0:
        name = names[int(rng.choice(len(names), p=w))]
        if name == last:
            continue
        do(name)
        last = name
    if sc.t < seconds - 6.0:
        do("unfastening_seat_belt")
    if sc.t < seconds:
        sc.hold(seconds - sc.t + 1.0)
    return sc, segs
