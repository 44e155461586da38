"""How well a grid is sorted: small differences between neighbouring cells compress well."""

from __future__ import annotations

import torch

from splatpack.errors import SplatpackError


def _check(grid: torch.Tensor) -> torch.Tensor:
    if grid.ndim != 3 or grid.shape[0] * (grid.shape[1] - 1) + grid.shape[1] * (grid.shape[0] - 1) < 1:
        raise SplatpackError(f"grid quality needs an (H, W, C) grid with at least two cells, got {tuple(grid.shape)}")
    return grid.to(torch.float64)


def neighbour_distance(grid: torch.Tensor) -> float:
    """Mean L2 distance between horizontally and vertically adjacent cells of an (H, W, C) grid."""
    g = _check(grid)
    dx = torch.linalg.vector_norm(g[:, 1:] - g[:, :-1], dim=-1)
    dy = torch.linalg.vector_norm(g[1:] - g[:-1], dim=-1)
    return float((dx.sum() + dy.sum()) / (dx.numel() + dy.numel()))


def vad(grid: torch.Tensor) -> float:
    """PLAS's VAD: mean over x and y of the variance of the absolute neighbour differences (all channels)."""
    g = _check(grid)
    parts = [d.abs().var(unbiased=False) for d in (g[:, 1:] - g[:, :-1], g[1:] - g[:-1]) if d.numel()]
    return float(sum(parts) / len(parts))
