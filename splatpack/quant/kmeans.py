"""Vector k-means palettes (Lloyd, or an inverted file for large ones); scalar codebooks are in ``quant.scalar``.

Inputs are numpy arrays or torch tensors of any row count and dimension; results come back as numpy for numpy
input and as tensors (on the compute device) for tensor input. ``device`` picks where the vector k-means runs
(default: the tensor's own device, CPU for numpy). Memory stays bounded for any ``k``: nearest-centroid
distances are computed for a few rows at a time (``ASSIGN_CHUNK_BYTES``), never as a whole (N, k) matrix.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from splatpack.torch_threads import torch_threads

# Bytes of one chunk of the (rows, k) float32 distance matrix: small enough to stay near the CPU caches,
# large enough that each chunk is one efficient matrix product.
ASSIGN_CHUNK_BYTES = 16 * 2**20
# Multiply-adds one exact Lloyd assignment pass of the palette may cost (~5-20 s on a 2-core CPU); beyond it
# the palette k-means searches an inverted file instead.
PALETTE_PASS_BUDGET = 4e10
# Inverted file: centroids per coarse cell, and how many nearest cells each row searches.
IVF_CELL = 64
IVF_PROBES = 4
# Rows per chunk of the centroid update (bounds its (rows * D) index temporaries).
_SUM_ROWS = 65536


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
    """(k, D) per-cluster sums in float64; flat bincounts (one per chunk of rows) beat index_add_ on a busy
    multi-core CPU."""
    d = x.shape[1]
    cols = torch.arange(d, device=x.device)
    sums = None
    for i in range(0, len(x), _SUM_ROWS):
        flat = (labels[i : i + _SUM_ROWS, None] * d + cols).reshape(-1)
        part = torch.bincount(flat, weights=x[i : i + _SUM_ROWS].reshape(-1).double(), minlength=k * d)
        sums = part if sums is None else sums.add_(part)
    return sums.reshape(k, d)


def _update(x: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor) -> None:
    """Lloyd's update step in place: every centroid becomes the mean of its rows; empty ones stay."""
    k = len(centroids)
    sums = _cluster_sums(x, labels, k)
    counts = torch.bincount(labels, minlength=k)
    filled = counts > 0
    centroids[filled] = (sums[filled] / counts[filled, None]).to(x.dtype)


def lloyd(x: torch.Tensor, k: int, iterations: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain k-means of the rows of ``x`` (N >= k) from ``k`` distinct random rows drawn with the CPU generator
    ``gen``: (centroids (k, D), labels (N,)); stops early at a fixed point, empty clusters keep their centroid."""
    centroids = x[torch.randperm(len(x), generator=gen)[:k].to(x.device)].clone()
    labels = assign(x, centroids)
    for _ in range(iterations):
        _update(x, labels, centroids)
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


def _nearest(x: torch.Tensor, centroids: torch.Tensor, count: int) -> torch.Tensor:
    """(N, count) indices of the ``count`` nearest centroids of every row, nearest first (chunked as ``assign``)."""
    c_sq = (centroids * centroids).sum(dim=1)
    rows = max(1, ASSIGN_CHUNK_BYTES // (x.element_size() * len(centroids)))
    out = torch.empty(len(x), count, dtype=torch.int64, device=x.device)
    for i in range(0, len(x), rows):
        d = torch.addmm(c_sq, x[i : i + rows], centroids.T, alpha=-2)
        out[i : i + rows] = d.topk(count, dim=1, largest=False, sorted=True).indices
    return out


class _InvertedFile:
    """Candidate centroids per row: centroids live in coarse cells (a cell owns a contiguous label range),
    and each row is compared only with the centroids of its ``probes`` nearest cells."""

    def __init__(self, x: torch.Tensor, near: torch.Tensor, first: np.ndarray, quota: np.ndarray):
        self.shape = near.shape
        flat = near.reshape(-1)
        # (row, probe) pairs grouped by cell, with the rows' values gathered once: each pass then reads every
        # cell's rows as one contiguous block (N * probes * D floats; the gathers cost more than the distances).
        self.pairs = torch.argsort(flat, stable=True)
        self.x = x[self.pairs // near.shape[1]]
        self.offsets = np.concatenate([[0], np.cumsum(torch.bincount(flat, minlength=len(quota)).cpu().numpy())])
        self.first, self.quota = first, quota

    def assign(self, centroids: torch.Tensor) -> torch.Tensor:
        dist = torch.full((len(self.pairs),), math.inf, device=self.x.device)
        label = torch.zeros(len(self.pairs), dtype=torch.int64, device=self.x.device)
        c_sq = (centroids * centroids).sum(dim=1)
        for cell, (lo, kc) in enumerate(zip(self.first.tolist(), self.quota.tolist())):
            a, b = int(self.offsets[cell]), int(self.offsets[cell + 1])
            if kc == 0 or a == b:
                continue
            cen, csq = centroids[lo : lo + kc], c_sq[lo : lo + kc]
            step = max(1, ASSIGN_CHUNK_BYTES // (self.x.element_size() * kc))
            for i in range(a, b, step):
                j = min(i + step, b)
                # ||x||^2 is left out of every distance alike, so cells compare fairly.
                d = torch.addmm(csq, self.x[i:j], cen.T, alpha=-2)
                idx = d.argmin(dim=1)
                dist[i:j] = d.gather(1, idx[:, None])[:, 0]
                label[i:j] = idx + lo
        # Back to (row, probe) order; the nearest candidate wins (ties: the nearer cell).
        by_row = torch.empty_like(dist).index_put_((self.pairs,), dist).view(self.shape)
        lab_row = torch.empty_like(label).index_put_((self.pairs,), label).view(self.shape)
        return lab_row.gather(1, by_row.argmin(dim=1, keepdim=True))[:, 0]


def _ivf_lloyd(x: torch.Tensor, k: int, iterations: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd k-means whose assignment searches an inverted file: ~``IVF_PROBES * IVF_CELL`` distances per
    row and pass instead of ``k``. Coarse cells come from k-means of a sample; each cell gets centroids in
    proportion to its rows, started at distinct random rows of the cell."""
    n, d = x.shape
    cells = max(1, min(math.ceil(k / IVF_CELL), n // IVF_CELL))
    sample = x[torch.randperm(n, generator=gen)[: min(n, 64 * cells)].to(x.device)]
    coarse, _ = lloyd(sample, cells, iterations, gen)
    near = _nearest(x, coarse, min(IVF_PROBES, cells))
    home = near[:, 0]
    sizes = torch.bincount(home, minlength=cells).cpu().numpy()
    quota = _split_quota(sizes, k)
    first = np.concatenate([[0], np.cumsum(quota)[:-1]]).astype(np.int64)
    order = torch.argsort(home, stable=True)
    centroids = torch.empty(int(quota.sum()), d, device=x.device)
    start = 0
    for cell, (size, kc) in enumerate(zip(sizes.tolist(), quota.tolist())):
        members = order[start : start + size]
        start += size
        if kc:
            pick = torch.randperm(size, generator=gen)[:kc].to(x.device)
            centroids[first[cell] : first[cell] + kc] = x[members[pick]]
    index = _InvertedFile(x, near, first, quota)
    labels = index.assign(centroids)
    for _ in range(iterations):
        _update(x, labels, centroids)
        new = index.assign(centroids)
        if torch.equal(new, labels):
            break
        labels = new
    return centroids, labels


def kmeans_palette(x, k: int, iterations: int = 10, seed: int = 0, device: str | torch.device | None = None):
    """k-means of the (N, D) rows into ``k`` centroids: (float32 centroids (k', D), int64 labels (N,)).

    Exact Lloyd (flat) when one assignment pass (N*k*D) fits ``PALETTE_PASS_BUDGET``. Beyond that (a 500k
    scene's 64k palette would be ~8e11 per pass) each row searches only the centroids of its ``IVF_PROBES``
    nearest coarse cells (an inverted file over the centroids), which fits as well as flat k-means at a small
    fraction of the cost (BENCHMARKS.md, "SOG encoder"). A cell's centroids get consecutive labels, so similar
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
    n = len(xt)
    if n <= k:
        centroids, labels = xt.clone(), torch.arange(n, device=xt.device)
    else:
        gen = torch.Generator().manual_seed(seed)
        fit = lloyd if n * k * xt.shape[1] <= PALETTE_PASS_BUDGET else _ivf_lloyd
        # Thousands of short passes: on a busy 2-core CPU a thread team's barriers cost more than they save
        # (flat 60k x 8192 x 24: 1 thread 2.3x faster than 2, inverted file ~14x; BENCHMARKS.md).
        with torch_threads(1 if xt.device.type == "cpu" else torch.get_num_threads()):
            centroids, labels = fit(xt, k, iterations, gen)
    if as_numpy:
        return centroids.cpu().numpy(), labels.cpu().numpy()
    return centroids, labels
