"""The gsplat 1.5.3 CUDA backend: ``gsplat.rasterization`` with its outputs mapped to ours."""

from __future__ import annotations

from torch import Tensor

DEFAULT_TILE_SIZE = 16  # gsplat's kernels are tuned for 16x16 tiles


def rasterize(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    sh_degree: int | None,
    backgrounds: Tensor | None,
    near_plane: float,
    far_plane: float,
    eps2d: float,
    rasterize_mode: str,
    tile_size: int,
    absgrad: bool,
):
    """Same contract as ``splatpack.render._torch_impl.rasterize``; CUDA tensors only."""
    from gsplat import rasterization

    colors_depth, alpha, meta = rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, sh_degree=sh_degree, packed=False,
        tile_size=tile_size, backgrounds=backgrounds, render_mode="RGB+ED", rasterize_mode=rasterize_mode,
        absgrad=absgrad,
    )  # fmt: skip
    info = {
        "means2d": meta["means2d"],
        "radii": meta["radii"],
        "depths": meta["depths"],
        "conics": meta["conics"],
        "opacities": meta["opacities"],
        "visible": (meta["radii"] > 0).all(dim=-1),
        "gaussian_ids": None,
        "width": width,
        "height": height,
        "n_cameras": meta["n_cameras"],
        "tile_size": tile_size,
        "n_intersections": int(meta["isect_ids"].numel()),
    }
    return colors_depth[..., :3], alpha, colors_depth[..., 3:4], info
