"""Depth re-initialisation (Mini-Splatting; OMG runs it at 5k and 10k of 30k): re-create every Gaussian from
points on the surfaces the current Gaussians render, so the set follows the geometry instead of the history
of clone and split.

Per training view: the current scene's expected depth and accumulated opacity (1 - T) are rendered; pixels are
drawn without replacement with probability proportional to that opacity (empty sky cannot be drawn), lifted to
3D at their depth and coloured from the training image. The model replaces all Gaussians by these points and
restarts them as sampling does (``sampling.restart_values``: k-NN scales, identity rotation, opacity 0.1).
"""

from __future__ import annotations

import torch
from torch import Tensor

from splatpack.errors import SplatpackError


def per_view_counts(total: int, views: int) -> list[int]:
    """``total`` points shared as evenly as possible between ``views`` views (the first ones get the remainder)."""
    if views <= 0 or total < 0:
        raise SplatpackError(f"cannot share {total} depth points between {views} views")
    base, extra = divmod(total, views)
    return [base + (i < extra) for i in range(views)]


def unproject(depth: Tensor, pixels: Tensor, viewmat: Tensor, K: Tensor) -> Tensor:
    """World points (M, 3) at pixel centres ``pixels`` (M,) (flat indices into the (H, W) ``depth``) at their
    depth; ``viewmat`` (4, 4) world-to-camera (OpenCV axes), ``K`` (3, 3), pixel centres at (x + 0.5, y + 0.5)."""
    width = depth.shape[1]
    v, u = pixels // width, pixels % width
    z = depth.reshape(-1)[pixels]
    x = (u.to(z.dtype) + 0.5 - K[0, 2]) / K[0, 0] * z
    y = (v.to(z.dtype) + 0.5 - K[1, 2]) / K[1, 1] * z
    cam = torch.stack([x, y, z], dim=-1)
    rot, trans = viewmat[:3, :3], viewmat[:3, 3]
    return (cam - trans) @ rot  # R^T (p - t), as row vectors


def view_points(
    depth: Tensor, alpha: Tensor, image: Tensor, viewmat: Tensor, K: Tensor, count: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Up to ``count`` surface points of one view and their colours: depth, alpha (H, W), image (H, W, 3) in
    [0, 1]. Fewer when fewer pixels are covered (a pixel is drawn at most once)."""
    weight = alpha.reshape(-1).double().clamp_min(0)
    covered = int((weight > 0).sum())
    count = min(count, covered)
    if count == 0:
        return depth.new_zeros(0, 3), image.new_zeros(0, 3)
    pixels = torch.multinomial(weight.cpu(), count, replacement=False, generator=generator).to(depth.device)
    return unproject(depth, pixels, viewmat, K), image.reshape(-1, 3)[pixels]
