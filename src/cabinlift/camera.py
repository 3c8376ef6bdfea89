"""Pinhole camera with Brown-Conrady distortion, as described by Drive&Act calibration files.

Drive&Act's inner_mirror camera has strong barrel distortion (k1 = -0.2661) and 2D detectors
run on the distorted frames, so projecting 3D ground truth for the simulated 2D backend (and
for the demo's rendering) must apply the same distortion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def quaternion_to_matrix(w: float, x: float, y: float, z: float) -> np.ndarray:
    """Rotation matrix of a (not necessarily unit) quaternion (w, x, y, z)."""
    q = np.array([w, x, y, z], dtype=np.float64)
    n = np.linalg.norm(q)
    if n == 0:
        raise ValueError("quaternion has zero norm")
    w, x, y, z = q / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass(frozen=True)
class Calibration:
    """Intrinsics, distortion and extrinsics of one camera (Drive&Act calibration JSON fields).

    Extrinsics map a point from the reference frame into the camera frame:
    ``X_cam = R(rotation) @ X + translation``. For Drive&Act inner_mirror they are the identity,
    because the 3D annotations are already in that camera's frame (x right, y down, z forward).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    k1: float = 0.0
    k2: float = 0.0
    k3: float = 0.0
    p1: float = 0.0
    p2: float = 0.0
    rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)  # quaternion w, x, y, z
    translation: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """Apply the extrinsics to points of shape (..., 3)."""
        r = quaternion_to_matrix(*self.rotation)
        return np.asarray(points, dtype=np.float64) @ r.T + np.asarray(self.translation)

    def project(self, points: np.ndarray, *, distort: bool = True) -> np.ndarray:
        """Project (..., 3) points (reference frame, metres) to (..., 2) pixel coordinates.

        Points at or behind the camera plane (z <= 1 mm) give NaN.
        """
        p = self.to_camera(points)
        z = p[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = np.where(z > 1e-3, p[..., 0] / z, np.nan)
            yn = np.where(z > 1e-3, p[..., 1] / z, np.nan)
        if distort:
            xn, yn = self.distort_normalized(xn, yn)
        return np.stack([self.fx * xn + self.cx, self.fy * yn + self.cy], axis=-1)

    def distort_normalized(self, xn: np.ndarray, yn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Brown-Conrady radial (k1, k2, k3) and tangential (p1, p2) distortion of normalised
        image coordinates (OpenCV's convention)."""
        r2 = xn * xn + yn * yn
        radial = 1 + self.k1 * r2 + self.k2 * r2 * r2 + self.k3 * r2 * r2 * r2
        xd = xn * radial + 2 * self.p1 * xn * yn + self.p2 * (r2 + 2 * xn * xn)
        yd = yn * radial + self.p1 * (r2 + 2 * yn * yn) + 2 * self.p2 * xn * yn
        return xd, yd

    def in_image(self, pixels: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Boolean mask (...,) of pixel coordinates inside the image (NaN counts as outside)."""
        u, v = pixels[..., 0], pixels[..., 1]
        with np.errstate(invalid="ignore"):
            return (
                (u >= -margin) & (u < self.width + margin)
                & (v >= -margin) & (v < self.height + margin)
            )


#: The Drive&Act inner_mirror (NIR, ids_1) calibration: the paper's "center_mirror" view.
INNER_MIRROR = Calibration(
    fx=567.0, fy=567.0, cx=640.0, cy=512.0, width=1280, height=1024, k1=-0.2661, k2=0.0549,
)
