"""Synthetic cameras for rendering a scene without a capture: look-at poses, views spread over a sphere, and
pinhole intrinsics from a field of view. (Cameras read from datasets live in ``splatpack.datasets``.)

Poses are world-to-camera matrices with OpenCV axes (x right, y down, z forward), as ``splatpack.render`` takes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def look_at(eyes, targets=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0), *, dtype=torch.float32) -> Tensor:
    """(C, 4, 4) world-to-camera matrices of cameras at ``eyes`` (C, 3) facing ``targets`` ((C, 3) or (3,)).

    Image up (camera -y) leans towards ``up`` ((3,) or (C, 3), any vector not parallel to a view direction).
    """
    eyes = torch.as_tensor(eyes, dtype=dtype).reshape(-1, 3)
    targets = torch.as_tensor(targets, dtype=dtype).expand_as(eyes)
    up = torch.as_tensor(up, dtype=dtype).expand_as(eyes)
    forward = torch.nn.functional.normalize(targets - eyes, dim=-1)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, up), dim=-1)
    down = torch.linalg.cross(forward, right)
    rot = torch.stack([right, down, forward], dim=1)  # rows: camera axes in world coordinates
    viewmats = torch.eye(4, dtype=dtype).repeat(len(eyes), 1, 1)
    viewmats[:, :3, :3] = rot
    viewmats[:, :3, 3] = -(rot @ eyes[:, :, None])[:, :, 0]
    return viewmats


def fibonacci_sphere(n: int, dtype=torch.float32) -> Tensor:
    """(n, 3) unit vectors spread evenly over the sphere (a Fibonacci lattice, z from near +1 to near -1)."""
    i = torch.arange(n, dtype=dtype) + 0.5
    z = 1 - 2 * i / n
    phi = i * math.pi * (3 - math.sqrt(5))
    rho = torch.sqrt(1 - z**2)
    return torch.stack([rho * torch.cos(phi), rho * torch.sin(phi), z], dim=1)


def sphere_cameras(centre, distance: float, n: int, *, dtype=torch.float32) -> Tensor:
    """(n, 4, 4) cameras ``distance`` from ``centre`` on a Fibonacci sphere, each looking at the centre.

    No single up vector suits every direction on a sphere: each camera takes the world axis least aligned with
    its view direction, so the frame is always well defined.
    """
    centre = torch.as_tensor(centre, dtype=dtype)
    dirs = fibonacci_sphere(n, dtype)
    return look_at(centre + distance * dirs, centre, least_aligned_axes(dirs), dtype=dtype)


def least_aligned_axes(dirs: Tensor) -> Tensor:
    """(C, 3) the world axis least aligned with each direction of ``dirs`` (C, 3): an up vector for ``look_at``
    that is never parallel to the view direction."""
    return torch.eye(3, dtype=dirs.dtype, device=dirs.device)[dirs.abs().argmin(dim=1)]


def pinhole(width: int, height: int, fov_x_degrees: float, n: int = 1, *, dtype=torch.float32) -> Tensor:
    """(n, 3, 3) intrinsics of square pixels with the given horizontal field of view, centred principal point."""
    f = 0.5 * width / math.tan(math.radians(fov_x_degrees) / 2)
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]], dtype=dtype)
    return K.expand(n, 3, 3).contiguous()
