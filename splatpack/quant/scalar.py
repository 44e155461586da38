"""Scalar codebooks: exact-start 1-D k-means of all the values of an array into ``k`` float32 centroids.

numpy only, so file conversions that need scalar codebooks (SOG's scales and colours) run without torch; a torch
tensor in gives tensors back.
"""

from __future__ import annotations

import numpy as np


def _lloyd_1d(v: np.ndarray, prefix: np.ndarray, centroids: np.ndarray, iterations: int) -> np.ndarray:
    """Lloyd iterations on sorted ``v``: every cell is a contiguous run, found by binary search."""
    for _ in range(iterations):
        cuts = np.searchsorted(v, (centroids[1:] + centroids[:-1]) / 2)
        start = np.concatenate([[0], cuts])
        end = np.concatenate([cuts, [len(v)]])
        size = end - start
        new = np.sort(np.where(size > 0, (prefix[end] - prefix[start]) / np.maximum(size, 1), centroids))
        if np.array_equal(new, centroids):
            break
        centroids = new
    return centroids


def _histogram_dp(v: np.ndarray, k: int, bins: int) -> np.ndarray | None:
    """Squared-error-optimal ``k`` centroids of ``v`` (sorted) pre-binned into ``bins`` runs (exact
    dynamic programming over bin boundaries, vectorised per centroid count); None when there are too few
    distinct bins to need it."""
    rank = np.linspace(0.0, 1.0, len(v))
    spread = (v - v[0]) / (v[-1] - v[0])
    # Bin edges halfway between rank and value space: fine where the data is dense, still present in the tails.
    b = np.minimum(((0.5 * rank + 0.5 * spread) * bins).astype(np.int64), bins - 1)
    cnt = np.bincount(b, minlength=bins).astype(np.float64)
    keep = cnt > 0
    cnt, sm, sq = (
        cnt[keep],
        np.bincount(b, weights=v, minlength=bins)[keep],
        np.bincount(b, weights=v * v, minlength=bins)[keep],
    )
    h = len(cnt)
    if h <= k:
        return None
    w, s1, s2 = (np.concatenate([[0.0], np.cumsum(a)]) for a in (cnt, sm, sq))
    a, j = np.arange(h)[:, None], np.arange(h)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = (s2[j + 1] - s2[a]) - (s1[j + 1] - s1[a]) ** 2 / (w[j + 1] - w[a])
    cost = np.where(j >= a, np.maximum(cost, 0.0), np.inf)  # cost[a, j]: one centroid for bins a..j
    dp = cost[0].copy()
    splits = np.empty((k, h), np.int64)
    cols = np.arange(h)
    for m in range(1, k):
        total = dp[:-1, None] + cost[1:, :]  # last run starts at bin s + 1
        splits[m] = total.argmin(axis=0)
        dp = total[splits[m], cols]
    centroids, end = np.empty(k), h - 1
    for m in range(k - 1, -1, -1):
        first = splits[m][end] + 1 if m else 0
        centroids[m] = (s1[end + 1] - s1[first]) / (w[end + 1] - w[first])
        end = first - 1
    return centroids


def kmeans_1d(values, k: int = 256, iterations: int = 2000, bins: int = 512):
    """1-D k-means codebook of all the scalars in ``values`` (any shape): (``k`` float32 centroids ascending,
    int64 labels shaped like ``values``).

    Lloyd alone lands in very different local optima depending on its start (quantile starts starve the
    tails, uniform starts the dense middle), so the start is the exact optimum over a fine histogram, and
    Lloyd on the full data polishes it (each 1-D iteration is one binary search of the ``k - 1`` cell edges).
    """
    tensor = values if hasattr(values, "detach") else None  # a torch tensor (torch itself is not imported here)
    if tensor is not None:
        values = tensor.detach().cpu().numpy()
    flat = np.asarray(values, dtype=np.float64).ravel()
    v = np.sort(flat)
    prefix = np.concatenate([[0.0], np.cumsum(v)])
    start = _histogram_dp(v, k, bins) if v[-1] > v[0] else None
    if start is None:  # few distinct values: quantiles already hit them all
        start = v[np.minimum((np.arange(k) + 0.5) / k * len(v), len(v) - 1).astype(np.int64)]
    centroids = _lloyd_1d(v, prefix, start, iterations).astype(np.float32)
    # Labels from the float32 values a file stores, so a decoder sees the nearest stored entry.
    stored = centroids.astype(np.float64)
    labels = np.searchsorted((stored[1:] + stored[:-1]) / 2, flat, side="right").reshape(np.shape(values))
    if tensor is not None:
        import torch

        return torch.from_numpy(centroids).to(tensor.device), torch.from_numpy(labels).to(tensor.device)
    return centroids, labels
