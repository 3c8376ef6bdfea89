"""Plausible, pipeline-normalised driver poses for tests that train or run lifters."""

from __future__ import annotations

import torch

from cabinlift.skeleton import L_SHOULDER, NUM_JOINTS, R_SHOULDER

# Neck-centred rest pose in metres, camera axes (x right, y down, z away from the camera).
_REST = {
    0: (0.0, -0.20, -0.10),  # nose
    1: (0.035, -0.24, -0.08), 2: (-0.035, -0.24, -0.08),  # eyes
    3: (0.08, -0.22, 0.0), 4: (-0.08, -0.22, 0.0),  # ears
    5: (0.19, 0.0, 0.0), 6: (-0.19, 0.0, 0.0),  # shoulders
    11: (0.14, 0.50, 0.03), 12: (-0.14, 0.50, 0.03),  # hips
}
_HEAD = (0, 1, 2, 3, 4)


def _rot_y(a: torch.Tensor) -> torch.Tensor:
    c, s, z, o = torch.cos(a), torch.sin(a), torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([c, z, s, z, o, z, -s, z, c], -1).view(-1, 3, 3)


def _rot_x(a: torch.Tensor) -> torch.Tensor:
    c, s, z, o = torch.cos(a), torch.sin(a), torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([o, z, z, z, c, -s, z, s, c], -1).view(-1, 3, 3)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def make_poses(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random upper-body poses: (normalised 2D (n, 13, 2), neck-centred 3D in m (n, 13, 3)).

    Random arm directions (mostly down/forward, towards a steering wheel), head yaw/pitch and
    body yaw; camera about 1 m away, pinhole projection; the 2D is normalised as the
    pipeline does: centred on mid-shoulders, x and y divided by the joints' horizontal and
    vertical extents.
    """
    g = torch.Generator().manual_seed(seed)

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=g)

    p = torch.zeros(n, NUM_JOINTS, 3)
    for j, xyz in _REST.items():
        p[:, j] = torch.tensor(xyz)
    head_rot = _rot_y(u(-0.6, 0.6, n)) @ _rot_x(u(-0.3, 0.3, n))
    p[:, _HEAD] = p[:, _HEAD] @ head_rot.transpose(1, 2)
    for sh, el, wr in ((5, 7, 9), (6, 8, 10)):
        d1 = _unit(torch.stack([u(-0.4, 0.4, n), u(0.1, 1.0, n), u(-1.0, 0.1, n)], -1))
        d2 = _unit(torch.stack([u(-0.6, 0.6, n), u(-0.5, 0.8, n), u(-1.0, 0.0, n)], -1))
        p[:, el] = p[:, sh] + 0.28 * d1
        p[:, wr] = p[:, el] + 0.25 * d2
    p = p @ _rot_y(u(-0.3, 0.3, n)).transpose(1, 2)
    cam = p + torch.stack([u(-0.1, 0.1, n), u(-0.05, 0.05, n), u(0.95, 1.05, n)], -1)[:, None]
    uv = 600.0 * cam[..., :2] / cam[..., 2:]
    uv = uv - 0.5 * (uv[:, L_SHOULDER] + uv[:, R_SHOULDER])[:, None]
    extent = uv.amax(dim=1) - uv.amin(dim=1)
    x2d = uv / extent[:, None]
    target = p - 0.5 * (p[:, L_SHOULDER] + p[:, R_SHOULDER])[:, None]
    return x2d.float(), target.float()
