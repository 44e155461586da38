"""Local-distinctiveness (LD) pruning (OMG Eq. 8): drop Gaussians that matter little and look like their neighbours.

score_i = importance_i * (mean over neighbours j of ||f_i - f_j||_1 / D)^lambda, with f the appearance feature
(D = 3 channels: the DC colour here, OMG's learned static feature once it exists). The lowest-score Gaussians
holding at most ``1 - tau`` of the total score mass are pruned; tau comes from the size preset.

Neighbourhoods (``NEIGHBOURHOODS``):

- ``"knn"``: the K nearest Gaussians in space (the paper's intent);
- ``"morton"``: the Gaussians just before and after in Morton order (the paper's approximation, K = 2);
- ``"released"``: what OMG's released code compares: the Morton-sorted features at positions ``order[i] +- 1``
  where ``order`` is the sorting permutation, not its inverse, so in effect two random other Gaussians and
  a measure of distinctiveness from the whole scene's colours (ALGORITHMS.md section 2.3).
"""

from __future__ import annotations

import torch
from scipy.spatial import cKDTree
from torch import Tensor

from splatpack.errors import SplatpackError
from splatpack.sort.morton import morton_order

# tau (share of the score mass that survives) of OMG's size presets.
PRESETS = {"XS": 0.96, "S": 0.98, "M": 0.99, "L": 0.999, "XL": 0.9999}
NEIGHBOURHOODS = ("knn", "morton", "released")
LAMBDA_LD = 2.0
# OMG adds this to every score before the cumulative threshold, so zero-score Gaussians still weigh a little.
SCORE_EPS = 1e-6


def tau_of(preset: str) -> float:
    if preset not in PRESETS:
        raise SplatpackError(f"unknown OMG preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset]


def _neighbours(means: Tensor, neighbourhood: str, k: int) -> Tensor:
    """(N, K) indices of the Gaussians each one is compared with."""
    n = means.shape[0]
    if neighbourhood == "knn":
        kk = min(k + 1, n)
        pts = means.detach().double().cpu().numpy()
        _, idx = cKDTree(pts).query(pts, k=kk)
        return torch.from_numpy(idx.reshape(n, kk)[:, 1:]).to(means.device)
    order = morton_order(means.detach())
    if neighbourhood == "morton":
        rank = torch.empty_like(order)
        rank[order] = torch.arange(n, device=means.device)
        pos = rank
    elif neighbourhood == "released":
        pos = order  # the released code's indexing (see the module docstring)
    else:
        raise SplatpackError(f"unknown LD neighbourhood {neighbourhood!r}; choose one of {', '.join(NEIGHBOURHOODS)}")
    # Ends of the order compare with their one existing neighbour twice.
    before = (pos - 1).where(pos > 0, pos + 1).clamp(0, n - 1)
    after = (pos + 1).where(pos < n - 1, pos - 1).clamp(0, n - 1)
    return torch.stack([order[before], order[after]], dim=1)


def distinctiveness(features: Tensor, means: Tensor, neighbourhood: str = "released", k: int = 2) -> Tensor:
    """(N,) mean over the neighbours of the per-channel mean L1 feature distance (``k`` is used by "knn")."""
    if features.shape[0] != means.shape[0]:
        raise SplatpackError(f"{features.shape[0]} features for {means.shape[0]} Gaussians")
    if means.shape[0] < 2:
        return torch.zeros(means.shape[0], dtype=features.dtype, device=features.device)
    nb = _neighbours(means, neighbourhood, k)
    feats = features.reshape(features.shape[0], -1)
    return (feats[:, None, :] - feats[nb]).abs().mean(dim=(1, 2))


def ld_scores(
    importance: Tensor,
    features: Tensor,
    means: Tensor,
    *,
    lambda_ld: float = LAMBDA_LD,
    neighbourhood: str = "released",
    k: int = 2,
) -> Tensor:
    """OMG's pruning score ``importance * distinctiveness ** lambda_ld``, (N,)."""
    return importance * distinctiveness(features, means, neighbourhood, k) ** lambda_ld


def keep_by_score_mass(scores: Tensor, tau: float) -> Tensor:
    """(N,) bool: keep all but the lowest scores that together hold at most ``1 - tau`` of the total mass.

    OMG's threshold: sort ascending (each score + 1e-6) and find the first position where the cumulative share
    exceeds ``1 - tau``. The released code also prunes the Gaussian at that position (its mass then overshoots
    ``1 - tau`` by one Gaussian); here it and its ties survive, so the pruned mass never exceeds ``1 - tau``.
    """
    if not 0.0 < tau <= 1.0:
        raise SplatpackError(f"tau must be in (0, 1], got {tau}")
    s = scores.double() + SCORE_EPS
    if s.numel() == 0:
        return torch.zeros(0, dtype=torch.bool, device=scores.device)
    ordered = torch.sort(s).values
    share = torch.cumsum(ordered, 0) / ordered.sum()
    limit = torch.tensor([1.0 - tau], dtype=share.dtype, device=share.device)
    first = min(int(torch.searchsorted(share, limit, right=True)), len(share) - 1)
    return s >= ordered[first]
