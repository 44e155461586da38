"""Differentiable Gaussian-splat rendering with one entry point and interchangeable backends.

``rasterize`` takes activated parameters (so any parameterization can feed it) and returns colour, opacity,
expected depth and the per-Gaussian ``info`` that gsplat's densification strategies read. Backends register
here (``splatpack.render.registry`` says what one provides):

- ``"torch"``: our pure-torch tile rasterizer (any device, float32/float64, exact gsplat cut-offs);
- ``"gsplat"``: gsplat 1.5.3's CUDA ``rasterization`` (CUDA tensors only);
- ``ops``: ``"view_contributions"`` (per-Gaussian importance W, A, M; ``importance_kernel``: splatpack's own
  kernel from ``cuda/`` on CPU or CUDA, the torch reference where it does not build);
- ``"auto"``: the highest-priority backend that runs here and takes the tensors' device (gsplat for CUDA
  tensors when its CUDA ops load, else torch).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import Tensor

from splatpack.errors import SplatpackError
from splatpack.render import _gsplat, _torch_impl, importance_kernel
from splatpack.render.registry import AUTO, Backend, RasterInputs, RasterOptions, available_backends, register, resolve

__all__ = ["RasterOptions", "RenderOutput", "available_backends", "rasterize", "render_splats"]

RASTERIZE_MODES = ("classic", "antialiased")

# "view_contributions": importance accumulation (W, A, M), by the kernel in cuda/ when it builds, else torch.
register(
    Backend(
        "torch", _torch_impl.rasterize, _torch_impl.DEFAULT_TILE_SIZE, lambda: True, None, priority=0,
        ops={"view_contributions": importance_kernel.view_contributions},
    )
)  # fmt: skip
register(
    Backend(
        "gsplat", _gsplat.rasterize, _gsplat.DEFAULT_TILE_SIZE, _gsplat.cuda_ops_load, frozenset({"cuda"}),
        priority=10, needs="CUDA tensors and gsplat's CUDA ops",
    )
)  # fmt: skip


@dataclass
class RenderOutput:
    rgb: Tensor  # (C, H, W, 3) composited colour (+ background * (1 - alpha) when backgrounds are given)
    alpha: Tensor  # (C, H, W, 1) accumulated opacity
    depth: Tensor  # (C, H, W, 1) expected depth sum(w_i z_i) / alpha, 0 where alpha == 0
    info: dict  # per-Gaussian data for densification (gsplat DefaultStrategy keys + "visible")


def _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, opts: RasterOptions):
    sh_degree, backgrounds = opts.sh_degree, opts.backgrounds
    n = means.shape[0]
    shapes = {
        "means": (means, (n, 3)),
        "quats": (quats, (n, 4)),
        "scales": (scales, (n, 3)),
        "opacities": (opacities, (n,)),
    }
    for name, (t, shape) in shapes.items():
        if tuple(t.shape) != shape:
            raise SplatpackError(f"{name} has shape {tuple(t.shape)}, expected {shape}")
    if sh_degree is None:
        if tuple(colors.shape) != (n, 3):
            raise SplatpackError(f"colors has shape {tuple(colors.shape)}, expected ({n}, 3) without sh_degree")
    else:
        if sh_degree not in (0, 1, 2, 3):
            raise SplatpackError(f"SH degree {sh_degree} is out of range 0-3")
        k = (sh_degree + 1) ** 2
        if colors.ndim != 3 or colors.shape[0] != n or colors.shape[1] < k or colors.shape[2] != 3:
            raise SplatpackError(f"colors has shape {tuple(colors.shape)}, expected ({n}, >={k}, 3) SH coefficients")
    c = viewmats.shape[0]
    if viewmats.shape != (c, 4, 4) or Ks.shape != (c, 3, 3):
        raise SplatpackError(f"viewmats {tuple(viewmats.shape)} / Ks {tuple(Ks.shape)} must be (C, 4, 4) / (C, 3, 3)")
    if backgrounds is not None and tuple(backgrounds.shape) != (c, 3):
        raise SplatpackError(f"backgrounds has shape {tuple(backgrounds.shape)}, expected ({c}, 3)")
    if opts.rasterize_mode not in RASTERIZE_MODES:
        raise SplatpackError(f"unknown rasterize_mode {opts.rasterize_mode!r}; choose classic or antialiased")


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
    backend: str = AUTO,
    **options,
) -> RenderOutput:
    """Render N activated Gaussians into C cameras.

    means (N, 3); quats (N, 4) (w, x, y, z), any norm; scales (N, 3) standard deviations; opacities (N,) in
    (0, 1); colors (N, 3) RGB, or SH coefficients (N, K, 3), K >= (sh_degree + 1)^2, when ``sh_degree`` is
    given. viewmats (C, 4, 4) world-to-camera, OpenCV axes (x right, y down, z forward); Ks (C, 3, 3)
    pinhole intrinsics, pixel centres at (x + 0.5, y + 0.5).
    ``options`` are the fields of ``RasterOptions``: sh_degree, backgrounds (C, 3), near_plane, far_plane,
    eps2d, rasterize_mode ("classic" / "antialiased"), tile_size (None: the backend's fastest, 16 for gsplat,
    8 for torch; images do not depend on it) and absgrad (backward also sets ``info["means2d"].absgrad``
    (C, N, 2), the sums over pixels of each pixel's absolute screen-space gradient, as gsplat does).
    ``info`` holds means2d (C, N, 2) (call ``retain_grad()`` on it for screen-space gradients), radii
    (C, N, 2) int32 (0 = culled), depths (C, N), conics, opacities, visible (C, N), width, height, n_cameras,
    tile_size, n_intersections, backend and gaussian_ids (None: results are per camera and Gaussian, not packed).
    """
    opts = RasterOptions(**options)
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, opts)
    chosen, impl = resolve(backend, means.device)
    opts = dataclasses.replace(opts, tile_size=chosen.tile_size if opts.tile_size is None else int(opts.tile_size))
    inputs = RasterInputs(means, quats, scales, opacities, colors, viewmats, Ks, int(width), int(height))
    r = impl(inputs, opts)
    return RenderOutput(r.rgb, r.alpha, r.depth, r.info(inputs.width, inputs.height, opts.tile_size, chosen.name))


def render_splats(
    splats, viewmats: Tensor, Ks: Tensor, width: int, height: int, *, sh_degree: int | None = None, **kwargs
) -> RenderOutput:
    """Render a ``Splats`` scene (activations applied here); ``sh_degree`` defaults to the scene's."""
    return rasterize(
        splats.means, splats.quats, splats.scales, splats.opacities, splats.sh, viewmats, Ks, width, height,
        sh_degree=splats.sh_degree if sh_degree is None else sh_degree, **kwargs,
    )  # fmt: skip
