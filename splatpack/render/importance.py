"""Per-Gaussian importance from the renderer: how much each Gaussian contributes to a set of views.

For Gaussian i and view v (OMG, Lee et al. 2025, Eq. 7, after Mini-Splatting's rasterizer):

- ``W(i, v)``: the sum over pixels of its blending weight ``alpha * T``;
- ``A(i, v)``: the number of pixels it is composited into (alpha >= 1/255, before the pixel stopped);
- ``M(i, v)``: the number of pixels where it has the largest blending weight (ties: the front-most).

``view_contributions`` computes the three for a few cameras at once with the torch renderer's projection and
tile plan (so the cut-offs are exactly the renderer's); a CUDA kernel of the same signature can replace it.
``accumulate_importance`` walks a camera list in chunks and keeps only per-Gaussian running sums, so memory is
bounded by one chunk's render whatever the number of views. No gradients are recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from splatpack.errors import SplatpackError
from splatpack.render import _torch_impl, registry

METRICS = ("indoor", "outdoor")


@dataclass
class ViewContributions:
    """Per camera and Gaussian contributions of one camera chunk, all (C, N)."""

    weight: Tensor  # W: sum over pixels of alpha * T (float)
    covered: Tensor  # A: pixels composited into (int64)
    dominant: Tensor  # M: pixels where it is the largest-weight contributor (int64)


@dataclass
class Importance:
    """Per-Gaussian sums over all views, all (N,)."""

    weight: Tensor  # sum_v W(i, v)
    weight_per_pixel: Tensor  # sum over views with M(i, v) > 0 of W(i, v) / A(i, v)
    dominant: Tensor  # sum_v M(i, v)
    dominant_max: Tensor  # max_v M(i, v) (Mini-Splatting's blur split reads it)

    def score(self, metric: str = "indoor") -> Tensor:
        """OMG's importance: indoor ``sum_v W``, outdoor ``sum_{v: M > 0} W / A``; 0 when never dominant."""
        if metric not in METRICS:
            raise SplatpackError(f"unknown importance metric {metric!r}; choose indoor or outdoor")
        raw = self.weight if metric == "indoor" else self.weight_per_pixel
        return torch.where(self.dominant > 0, raw, torch.zeros_like(raw))


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
) -> ViewContributions:
    """W, A and M of N activated Gaussians (as ``splatpack.render.rasterize`` takes them) in C cameras."""
    plan, coefs = tile_pairs(
        means, quats, scales, opacities, viewmats, Ks, width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, rasterize_mode=rasterize_mode, tile_size=tile_size,
    )  # fmt: skip
    m = len(plan.pair_ids)
    # One extra pair at index m collects the padding (its alpha is exactly 0, see _torch_impl._padded).
    coefs_p = _torch_impl._padded(coefs, coefs.new_zeros(m, 0))[0]
    neg_terms = -_torch_impl.pixel_terms(tile_size, coefs.dtype, coefs.device)
    weight = coefs.new_zeros(m + 1)
    covered = torch.zeros(m + 1, dtype=torch.int64, device=coefs.device)
    dominant = torch.zeros(m + 1, dtype=torch.int64, device=coefs.device)
    # Tiles overhang the image when its size is not a multiple of the tile size; those pixels do not count.
    r = torch.arange(tile_size, device=coefs.device)
    py, px = torch.meshgrid(r, r, indexing="ij")
    px, py = px.reshape(-1), py.reshape(-1)
    tiles_per_cam = plan.tiles_x * plan.tiles_y
    for tiles, idx in plan.chunks:
        alpha, _, w = _torch_impl._chunk_weights(neg_terms, coefs_p[idx])  # (B, P, K)
        local = tiles % tiles_per_cam
        x = (local % plan.tiles_x)[:, None] * tile_size + px
        y = (local // plan.tiles_x)[:, None] * tile_size + py
        inside = ((x < width) & (y < height)).to(w.dtype)[..., None]  # (B, P, 1)
        w.mul_(inside)
        flat = idx.reshape(-1)
        weight.index_add_(0, flat, w.sum(dim=1).reshape(-1))
        covered.index_add_(0, flat, ((alpha > 0) & (inside > 0)).sum(dim=1).reshape(-1))
        best_w, best_k = w.max(dim=2)  # first maximum: the front-most pair wins ties
        owner = idx.gather(1, best_k)  # (B, P) pair index of each pixel's dominant contributor
        dominant.index_add_(0, owner[best_w > 0], torch.ones_like(owner[best_w > 0]))

    shape = viewmats.shape[0], means.shape[0]
    return ViewContributions(*(per_gaussian(plan, v[:m], shape) for v in (weight, covered, dominant)))


def tile_pairs(
    means, quats, scales, opacities, viewmats, Ks, width, height, *, near_plane, far_plane, eps2d, rasterize_mode,
    tile_size,
):  # fmt: skip
    """The torch renderer's tile plan and per-pair coefficients of a scene: the cut-offs every importance path
    (this reference, the native kernel) shares with rendering."""
    proj = _torch_impl.project(
        means, quats, scales, opacities, viewmats, Ks, width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, antialiased=rasterize_mode == "antialiased",
    )  # fmt: skip
    plan = _torch_impl.plan_tiles(proj, width, height, tile_size)
    return plan, _torch_impl.pair_coefficients(proj, plan, tile_size)


def per_gaussian(plan, per_pair: Tensor, shape: tuple[int, int]) -> Tensor:
    """Per-pair values summed into (cameras, Gaussians)."""
    n_cams, n = shape
    return per_pair.new_zeros(n_cams * n).index_add_(0, plan.pair_ids, per_pair).reshape(n_cams, n)


@torch.no_grad()
def accumulate_importance(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    cameras_per_chunk: int = 4,
    contributions: Callable[..., ViewContributions] | None = None,
    **render_kwargs,
) -> Importance:
    """Sum each Gaussian's contributions over the V cameras ``viewmats`` (V, 4, 4) / ``Ks`` (V, 3, 3).

    Cameras are rendered ``cameras_per_chunk`` at a time; ``render_kwargs`` (near_plane, far_plane, eps2d,
    rasterize_mode, tile_size) go to ``contributions``, the per-chunk function: by default the best available
    render backend's ``"view_contributions"`` op (``splatpack.render.registry``), else pass ``view_contributions``.
    """
    if contributions is None:
        contributions = registry.resolve(registry.AUTO, means.device, op="view_contributions")[1]
    n = means.shape[0]
    weight = means.new_zeros(n)
    per_pixel = means.new_zeros(n)
    dominant = torch.zeros(n, dtype=torch.int64, device=means.device)
    dominant_max = torch.zeros(n, dtype=torch.int64, device=means.device)
    for start in range(0, viewmats.shape[0], max(1, int(cameras_per_chunk))):
        stop = start + max(1, int(cameras_per_chunk))
        c = contributions(
            means, quats, scales, opacities, viewmats[start:stop], Ks[start:stop], width, height, **render_kwargs
        )
        weight += c.weight.sum(dim=0).to(weight.dtype)
        shown = c.dominant > 0
        ratio = c.weight / c.covered.clamp_min(1).to(c.weight.dtype)
        per_pixel += torch.where(shown, ratio, torch.zeros_like(ratio)).sum(dim=0).to(per_pixel.dtype)
        dominant += c.dominant.sum(dim=0)
        dominant_max = torch.maximum(dominant_max, c.dominant.max(dim=0).values)
    return Importance(weight, per_pixel, dominant, dominant_max)
