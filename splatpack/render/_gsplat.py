"""The gsplat 1.5.3 CUDA backend: ``gsplat.rasterization`` with its outputs mapped to ours."""

from __future__ import annotations

import functools

import torch

from splatpack.render.registry import Raster, RasterInputs, RasterOptions

DEFAULT_TILE_SIZE = 16  # gsplat's kernels are tuned for 16x16 tiles


@functools.lru_cache(maxsize=1)
def cuda_ops_load() -> bool:
    """Whether CUDA is present and gsplat's compiled CUDA ops import."""
    if not torch.cuda.is_available():
        return False
    try:
        from gsplat.cuda._backend import _C
    except ImportError:
        return False
    return _C is not None


def rasterize(inputs: RasterInputs, options: RasterOptions) -> Raster:
    """The backend contract (``splatpack.render.registry``); CUDA tensors only."""
    from gsplat import rasterization

    o = options
    colors_depth, alpha, meta = rasterization(
        *inputs,
        near_plane=o.near_plane, far_plane=o.far_plane, eps2d=o.eps2d, sh_degree=o.sh_degree, packed=False,
        tile_size=o.tile_size, backgrounds=o.backgrounds, render_mode="RGB+ED", rasterize_mode=o.rasterize_mode,
        absgrad=o.absgrad,
    )  # fmt: skip
    return Raster(
        rgb=colors_depth[..., :3],
        alpha=alpha,
        depth=colors_depth[..., 3:4],
        means2d=meta["means2d"],
        radii=meta["radii"],
        depths=meta["depths"],
        conics=meta["conics"],
        opacities=meta["opacities"],
        n_intersections=int(meta["isect_ids"].numel()),
    )
