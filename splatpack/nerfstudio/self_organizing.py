"""Self-Organizing Gaussian grids (Morgenstern et al., ECCV 2024): the training pieces independent of nerfstudio.

(Not the SOG file format: PlayCanvas's ``.sog`` container is ``splatpack.io.sog``.)

- log-space positions: the optimised parameter is ``y = sign(x) log1p|x|`` (finer steps near the origin);
- the square grid: keep the ``floor(sqrt N)^2`` most opaque Gaussians so every attribute is an ``s x s`` image;
- the smoothness ("neighbour") loss: each raw attribute image is pulled towards a detached blur of itself.

Sorting reorders the parameters with ``splatpack.train.ops``, which moves the optimizer and strategy state too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

# The paper's smoothness kernel: 5 taps, Gaussian sigma 3 (kornia gaussian_blur2d, applied as 1x5 then 5x1).
BLUR_TAPS = 5
BLUR_SIGMA = 3.0


def log_encode(x: torch.Tensor) -> torch.Tensor:
    """World position -> log-space parameter, ``sign(x) log1p|x|``."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def log_decode(y: torch.Tensor) -> torch.Tensor:
    """Log-space parameter -> world position, ``sign(y) expm1|y|``."""
    return torch.sign(y) * torch.expm1(torch.abs(y))


def grid_side(n: int) -> int:
    """Side of the largest square grid that ``n`` Gaussians fill."""
    return math.isqrt(n)


def square_keep_indices(opacity_logits: torch.Tensor) -> torch.Tensor:
    """Indices (ascending) of the ``floor(sqrt N)^2`` most opaque Gaussians: the rest are dropped."""
    n = opacity_logits.shape[0]
    s = grid_side(n)
    if s * s == n:
        return torch.arange(n, device=opacity_logits.device)
    keep = torch.topk(opacity_logits.reshape(n), s * s).indices
    return torch.sort(keep).values


def as_grid(values: torch.Tensor) -> torch.Tensor:
    """(s*s, ...) parameter -> (s, s, C) image; raises if the count is not a square."""
    n = values.shape[0]
    s = grid_side(n)
    if s * s != n:
        raise ValueError(f"{n} Gaussians do not form a square grid")
    return values.reshape(s, s, -1)


def _gaussian_taps(device, dtype) -> torch.Tensor:
    x = torch.arange(BLUR_TAPS, device=device, dtype=dtype) - (BLUR_TAPS - 1) / 2
    taps = torch.exp(-(x**2) / (2 * BLUR_SIGMA**2))
    return taps / taps.sum()


def smoothness_blur(grid: torch.Tensor) -> torch.Tensor:
    """The smoothness loss's target: the paper's fixed separable 5-tap Gaussian blur (sigma 3) of an (s, s, C)
    image, circular in x (columns), reflect in y (rows).

    Circular x lets the row-major 1-D order wrap from one row end into the next row's start. (PLAS's own blur,
    ``splatpack.sort.plas.radius_blur``, widens with the sorting radius instead.)
    """
    s, _, c = grid.shape
    img = grid.permute(2, 0, 1)[None]  # (1, C, s, s)
    taps = _gaussian_taps(grid.device, grid.dtype)
    half = BLUR_TAPS // 2
    img = F.pad(img, (half, half, 0, 0), mode="circular")
    img = F.conv2d(img, taps.view(1, 1, 1, -1).expand(c, 1, 1, BLUR_TAPS), groups=c)
    # Reflect padding needs at least half+1 rows; a tiny grid falls back to replicate.
    img = F.pad(img, (0, 0, half, half), mode="reflect" if s > half else "replicate")
    img = F.conv2d(img, taps.view(1, 1, -1, 1).expand(c, 1, BLUR_TAPS, 1), groups=c)
    return img[0].permute(1, 2, 0)


def smoothness_loss(grids: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """``sum_k w_k / sum_j w_j * Huber(blur(stopgrad G_k), G_k)`` over the attribute images (delta 1, mean)."""
    total = sum(w for name, w in weights.items() if w > 0)
    loss = None
    for name, w in weights.items():
        if w <= 0:
            continue
        g = grids[name]
        term = (w / total) * F.huber_loss(g, smoothness_blur(g.detach()), delta=1.0)
        loss = term if loss is None else loss + term
    if loss is None:
        raise ValueError("smoothness loss needs at least one attribute with a positive weight")
    return loss
