"""Intersection-preserving sampling (OMG section 3.2, after Mini-Splatting): fewer Gaussians, same coverage.

Gaussians are drawn without replacement with probability proportional to their importance, so the ones that
carry the image are kept while the whole scene stays covered; never-dominant (zero-score) ones cannot survive.
The survivors restart from their position and colour: isotropic k-NN scales, identity rotation, opacity 0.1
(``restart_values``; the model applies them with ``splatpack.train.ops``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from splatpack.errors import SplatpackError

# What the survivors restart with (Mini-Splatting's / OMG's re-initialisation).
RESTART_OPACITY = 0.1
KNN_NEIGHBOURS = 3


def sample_count(score: Tensor, ratio: float) -> int:
    """How many Gaussians sampling keeps: ``ratio`` of those with a nonzero score (OMG: 0.5 N * share > 0)."""
    if not 0.0 < ratio <= 1.0:
        raise SplatpackError(f"sampling ratio must be in (0, 1], got {ratio}")
    return int(round(ratio * int((score > 0).sum())))


def sample_by_importance(score: Tensor, ratio: float, generator: torch.Generator | None = None) -> Tensor:
    """Sorted indices of ``sample_count(score, ratio)`` Gaussians drawn without replacement with p ~ score."""
    if score.ndim != 1 or bool((score < 0).any()) or not bool(torch.isfinite(score).all()):
        raise SplatpackError("importance scores must be a finite, non-negative (N,) tensor")
    count = sample_count(score, ratio)
    if count == 0:
        return torch.zeros(0, dtype=torch.int64, device=score.device)
    # multinomial draws zero-probability entries only once the positive ones run out, which count rules out.
    picked = torch.multinomial(score.double(), count, replacement=False, generator=generator)
    return torch.sort(picked).values


def knn_distance(points: Tensor, k: int = KNN_NEIGHBOURS) -> Tensor:
    """(N,) root mean square distance of each point to its ``k`` nearest other points (1 for a lone point).

    3DGS's ``distCUDA2`` (which Mini-Splatting's re-initialisation uses) averages squared distances.
    """
    n = points.shape[0]
    kk = min(k + 1, n)  # the point itself comes back first
    pts = points.detach().double().cpu().numpy()
    dist, _ = cKDTree(pts).query(pts, k=kk)
    rms = np.sqrt((dist[:, 1:] ** 2).mean(axis=1)) if kk > 1 else np.ones(n)
    return torch.from_numpy(rms).to(points.dtype).to(points.device)


def restart_values(means: Tensor) -> dict[str, Tensor]:
    """Raw (splatfacto-parameterised) log-scales, quaternions and opacity logits the survivors restart with."""
    n = means.shape[0]
    log_scale = torch.log(knn_distance(means).clamp_min(math.sqrt(1e-7)))  # 3DGS clamps dist^2 at 1e-7
    quats = torch.zeros(n, 4, dtype=means.dtype, device=means.device)
    quats[:, 0] = 1.0
    logit = math.log(RESTART_OPACITY / (1.0 - RESTART_OPACITY))
    return {
        "scales": log_scale[:, None].repeat(1, 3),
        "quats": quats,
        "opacities": torch.full((n, 1), logit, dtype=means.dtype, device=means.device),
    }
