"""Differentiable Gaussian-splat rendering with one entry point and interchangeable backends.

``rasterize`` takes activated parameters (so any parameterization can feed it) and returns colour, opacity,
expected depth and the per-Gaussian ``info`` that gsplat's densification strategies read. Backends:

- ``"torch"``: our pure-torch tile rasterizer (any device, float32/float64, exact gsplat cut-offs);
- ``"gsplat"``: gsplat 1.5.3's CUDA ``rasterization`` (CUDA tensors only);
- ``"auto"``: gsplat for CUDA tensors when its CUDA ops load, else torch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

from splatpack.errors import SplatpackError

BACKENDS = ("torch", "gsplat")
RASTERIZE_MODES = ("classic", "antialiased")


@dataclass
class RenderOutput:
    rgb: Tensor  # (C, H, W, 3) composited colour (+ background * (1 - alpha) when backgrounds are given)
    alpha: Tensor  # (C, H, W, 1) accumulated opacity
    depth: Tensor  # (C, H, W, 1) expected depth sum(w_i z_i) / alpha, 0 where alpha == 0
    info: dict  # per-Gaussian data for densification (gsplat DefaultStrategy keys + "visible")


@functools.lru_cache(maxsize=1)
def _gsplat_cuda_works() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        from gsplat.cuda._backend import _C
    except ImportError:
        return False
    return _C is not None


def available_backends() -> list[str]:
    """Backends that can run on this machine (``"torch"`` always)."""
    return ["torch", "gsplat"] if _gsplat_cuda_works() else ["torch"]


def _choose_backend(backend: str, device: torch.device) -> str:
    if backend == "auto":
        return "gsplat" if device.type == "cuda" and _gsplat_cuda_works() else "torch"
    if backend not in BACKENDS:
        raise SplatpackError(f"unknown render backend {backend!r}; choose one of auto, {', '.join(BACKENDS)}")
    if backend == "gsplat" and (device.type != "cuda" or not _gsplat_cuda_works()):
        raise SplatpackError(f"the gsplat backend needs CUDA tensors and gsplat's CUDA ops; got tensors on {device}")
    return backend


def _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree, backgrounds, rasterize_mode):
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
    if rasterize_mode not in RASTERIZE_MODES:
        raise SplatpackError(f"unknown rasterize_mode {rasterize_mode!r}; choose classic or antialiased")


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
    sh_degree: int | None = None,
    backgrounds: Tensor | None = None,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    rasterize_mode: str = "classic",
    backend: str = "auto",
    tile_size: int | None = None,
    absgrad: bool = False,
) -> RenderOutput:
    """Render N activated Gaussians into C cameras.

    means (N, 3); quats (N, 4) (w, x, y, z), any norm; scales (N, 3) standard deviations; opacities (N,) in
    (0, 1); colors (N, 3) RGB, or SH coefficients (N, K, 3), K >= (sh_degree + 1)^2, when ``sh_degree`` is
    given. viewmats (C, 4, 4) world-to-camera, OpenCV axes (x right, y down, z forward); Ks (C, 3, 3)
    pinhole intrinsics, pixel centres at (x + 0.5, y + 0.5); backgrounds (C, 3).
    ``info`` holds means2d (C, N, 2) (call ``retain_grad()`` on it for screen-space gradients), radii
    (C, N, 2) int32 (0 = culled), depths (C, N), visible (C, N), width, height, n_cameras, tile_size and
    gaussian_ids (None: results are per camera and Gaussian, not packed).
    ``tile_size`` None picks the backend's fastest (16 for gsplat, 8 for torch); images do not depend on it.
    ``absgrad``: backward also sets ``info["means2d"].absgrad`` (C, N, 2), the sums over pixels of each pixel's
    absolute screen-space gradient, as gsplat does (for absgrad densification).
    """
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree, backgrounds, rasterize_mode)
    chosen = _choose_backend(backend, means.device)
    args = (means, quats, scales, opacities, colors, viewmats, Ks, int(width), int(height))
    kwargs = dict(
        sh_degree=sh_degree, backgrounds=backgrounds, near_plane=near_plane, far_plane=far_plane,
        eps2d=eps2d, rasterize_mode=rasterize_mode, tile_size=tile_size, absgrad=absgrad,
    )  # fmt: skip
    if chosen == "gsplat":
        from splatpack.render._gsplat import DEFAULT_TILE_SIZE
        from splatpack.render._gsplat import rasterize as impl
    else:
        from splatpack.render._torch_impl import DEFAULT_TILE_SIZE
        from splatpack.render._torch_impl import rasterize as impl
    kwargs["tile_size"] = DEFAULT_TILE_SIZE if tile_size is None else int(tile_size)
    rgb, alpha, depth, info = impl(*args, **kwargs)
    info["backend"] = chosen
    return RenderOutput(rgb=rgb, alpha=alpha, depth=depth, info=info)


def render_splats(
    splats, viewmats: Tensor, Ks: Tensor, width: int, height: int, *, sh_degree: int | None = None, **kwargs
) -> RenderOutput:
    """Render a ``Splats`` scene (activations applied here); ``sh_degree`` defaults to the scene's."""
    return rasterize(
        splats.means, splats.quats, splats.scales, splats.opacities, splats.sh, viewmats, Ks, width, height,
        sh_degree=splats.sh_degree if sh_degree is None else sh_degree, **kwargs,
    )  # fmt: skip
