"""k-means quantizers: scalar codebooks (exact-start 1-D k-means) and vector palettes (Lloyd k-means).

Inputs are numpy arrays or torch tensors of any row count and dimension; results come back as numpy for numpy
input and as tensors (on the compute device) for tensor input. ``device`` picks where the vector k-means runs
(default: the tensor's own device, CPU for numpy). Memory stays bounded for any ``k``: nearest-centroid
distances are computed for a few rows at a time (``ASSIGN_CHUNK_BYTES``), never as a whole (N, k) matrix.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# Bytes of one chunk of the (rows, k) float32 distance matrix: small enough to stay near the CPU caches,
# large enough that each chunk is one efficient matrix product.
ASSIGN_CHUNK_BYTES = 16 * 2**20
# Multiply-adds one Lloyd assignment pass of the palette may cost before it is split in two levels
# (~1-2 s on a 2-core CPU).
PALETTE_PASS_BUDGET = 4e10


# ---------------------------------------------------------------------------------------------- 1-D codebooks


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
    tensor = values if isinstance(values, torch.Tensor) else None
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
        return torch.from_numpy(centroids).to(tensor.device), torch.from_numpy(labels).to(tensor.device)
    return centroids, labels


# ---------------------------------------------------------------------------------------------- vector k-means


def assign(x: torch.Tensor, centroids: torch.Tensor, chunk_bytes: int = ASSIGN_CHUNK_BYTES) -> torch.Tensor:
    """(N,) int64 index of the nearest centroid (squared L2) for every row of ``x`` (N, D), ``chunk_bytes``
    of the (N, k) distance matrix at a time."""
    c_sq = (centroids * centroids).sum(dim=1)
    rows = max(1, chunk_bytes // (x.element_size() * max(len(centroids), 1)))
    out = torch.empty(len(x), dtype=torch.int64, device=x.device)
    for i in range(0, len(x), rows):
        out[i : i + rows] = torch.addmm(c_sq, x[i : i + rows], centroids.T, alpha=-2).argmin(dim=1)
    return out


def _cluster_sums(x: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """(k, D) per-cluster sums in float64; one flat bincount beats index_add_ on a busy multi-core CPU."""
    d = x.shape[1]
    flat = (labels[:, None] * d + torch.arange(d, device=x.device)).reshape(-1)
    return torch.bincount(flat, weights=x.reshape(-1).double(), minlength=k * d).reshape(k, d)


def lloyd(x: torch.Tensor, k: int, iterations: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain k-means of the rows of ``x`` (N >= k) from ``k`` distinct random rows drawn with the CPU generator
    ``gen``: (centroids (k, D), labels (N,)); stops early at a fixed point, empty clusters keep their centroid."""
    centroids = x[torch.randperm(len(x), generator=gen)[:k].to(x.device)].clone()
    labels = assign(x, centroids)
    for _ in range(iterations):
        sums = _cluster_sums(x, labels, k)
        counts = torch.bincount(labels, minlength=k)
        filled = counts > 0
        centroids[filled] = (sums[filled] / counts[filled, None]).to(x.dtype)
        new = assign(x, centroids)
        if torch.equal(new, labels):
            break
        labels = new
    return centroids, labels


def _split_quota(sizes: np.ndarray, k: int) -> np.ndarray:
    """Largest-remainder split of ``k`` centroids over groups of ``sizes`` rows, never more than a group's rows."""
    share = sizes * (k / sizes.sum())
    quota = np.floor(share).astype(np.int64)
    spare = np.argsort(-(share - quota) + (quota >= sizes) * 2.0, kind="stable")
    short = k - int(quota.sum())
    for g in spare:
        if short == 0:
            break
        if quota[g] < sizes[g]:
            quota[g] += 1
            short -= 1
    return quota


def kmeans_palette(x, k: int, iterations: int = 10, seed: int = 0, device: str | torch.device | None = None):
    """k-means of the (N, D) rows into ``k`` centroids: (float32 centroids (k', D), int64 labels (N,)).

    Flat k-means when one assignment pass (N*k*D) fits ``PALETTE_PASS_BUDGET``: it fits measurably better than
    any split (BENCHMARKS.md, SOG). Beyond that (a 1M scene's 64k palette would be ~3e12 per pass) the rows are
    first split into the fewest coarse clusters that bring a pass within budget, and each is split into
    centroids in proportion to its size. Fine centroids of one coarse cluster get consecutive labels, so similar
    rows get similar labels (which SOG's label texture rewards). With ``k >= N`` every row is its own entry.
    Same input, ``seed`` and device: same result.
    """
    as_numpy = not isinstance(x, torch.Tensor)
    if as_numpy:
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    else:
        xt = x.detach().to(torch.float32).contiguous()
    if device is not None:
        xt = xt.to(device)

    def out(centroids: torch.Tensor, labels: torch.Tensor):
        return (centroids.cpu().numpy(), labels.cpu().numpy()) if as_numpy else (centroids, labels)

    n = len(xt)
    if n <= k:
        return out(xt.clone(), torch.arange(n, device=xt.device))
    gen = torch.Generator().manual_seed(seed)
    coarse_k = min(int(math.ceil(n * k * xt.shape[1] / PALETTE_PASS_BUDGET)), int(math.sqrt(k)))
    if coarse_k <= 1:
        return out(*lloyd(xt, k, iterations, gen))
    # The coarse split only has to be roughly right: fit it on a sample, then assign everything.
    sample = xt[torch.randperm(n, generator=gen)[: min(n, 64 * coarse_k)].to(xt.device)]
    coarse, _ = lloyd(sample, coarse_k, iterations, gen)
    groups = assign(xt, coarse)
    sizes = torch.bincount(groups, minlength=coarse_k).cpu().numpy()
    quota = _split_quota(sizes, k)
    order = torch.argsort(groups, stable=True)
    centroids = torch.empty(k, xt.shape[1], device=xt.device)
    labels = torch.empty(n, dtype=torch.int64, device=xt.device)
    start, first = 0, 0
    for size, kg in zip(sizes.tolist(), quota.tolist()):
        idx = order[start : start + size]
        start += size
        if kg == 0:
            continue
        c, lab = lloyd(xt[idx], kg, iterations, gen)
        centroids[first : first + kg] = c
        labels[idx] = lab + first
        first += kg
    return out(centroids[:first], labels)
