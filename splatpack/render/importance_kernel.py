"""Importance accumulation (W, A, M per Gaussian and view) by splatpack's kernel in ``cuda/``: the signature and
results of ``splatpack.render.importance.view_contributions``, registered as the ``"view_contributions"`` op of
the render backends. The projection and tile plan are the torch renderer's (``_torch_impl``); the kernel (CPU
twin or CUDA) walks each pixel front to back over its tile's pairs and stops where the pixel stops, instead of
evaluating every padded pair of a chunk. The torch reference runs when the kernel does not (no compiler,
``SPLATPACK_KERNELS=torch``, float64 inputs).
"""

from __future__ import annotations

import torch
from torch import Tensor

from splatpack import kernels
from splatpack.render import _torch_impl, importance


@torch.no_grad()
def view_contributions(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    rasterize_mode: str = "classic",
    tile_size: int = _torch_impl.DEFAULT_TILE_SIZE,
) -> importance.ViewContributions:
    """W, A and M of N activated Gaussians in C cameras (see ``splatpack.render.importance``), all (C, N)."""
    native = kernels.ops(means.device) if means.dtype == torch.float32 else None
    if native is None:
        return importance.view_contributions(
            means, quats, scales, opacities, viewmats, Ks, width, height, near_plane=near_plane,
            far_plane=far_plane, eps2d=eps2d, rasterize_mode=rasterize_mode, tile_size=tile_size,
        )  # fmt: skip
    plan, coefs = importance.tile_pairs(
        means, quats, scales, opacities, viewmats, Ks, width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, rasterize_mode=rasterize_mode, tile_size=tile_size,
    )  # fmt: skip
    coefs = coefs.contiguous()
    offsets = torch.zeros(plan.n_tiles + 1, dtype=torch.int64, device=coefs.device)
    torch.cumsum(plan.tile_counts, 0, out=offsets[1:])
    per_pair = native.tile_importance(coefs, offsets, tile_size, plan.tiles_x, plan.tiles_y, width, height)

    shape = viewmats.shape[0], means.shape[0]
    return importance.ViewContributions(*(importance.per_gaussian(plan, v, shape) for v in per_pair))
