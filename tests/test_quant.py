"""k-means quantizers: 1-D codebooks are optimal where brute force can tell, vector k-means lowers its
distortion every iteration, is repeatable under a seed, and assigns the same labels however it is chunked."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from splatpack.quant import kmeans as km
from splatpack.quant.scalar import kmeans_1d


def _sse(x: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> float:
    return float(((x - centroids.astype(np.float64)[labels]) ** 2).sum())


def _best_partition_sse(v: np.ndarray, k: int) -> float:
    """Brute force over every split of sorted ``v`` into ``k`` contiguous runs (1-D optimal cells are runs)."""
    v = np.sort(v)
    best = np.inf
    for cuts in itertools.combinations(range(1, len(v)), k - 1):
        runs = np.split(v, cuts)
        best = min(best, sum(((r - r.mean()) ** 2).sum() for r in runs))
    return best


def _exact_dp_sse(v: np.ndarray, k: int) -> float:
    """Textbook O(k n^2) dynamic programme over the raw sorted values."""
    v = np.sort(v)
    n = len(v)
    s1, s2 = np.concatenate([[0], np.cumsum(v)]), np.concatenate([[0], np.cumsum(v * v)])

    def cost(a, b):  # values a..b-1 in one cell
        return s2[b] - s2[a] - (s1[b] - s1[a]) ** 2 / (b - a)

    dp = [cost(0, b) if b else np.inf for b in range(n + 1)]
    for _ in range(1, k):
        dp = [min((dp[a] + cost(a, b) for a in range(1, b)), default=np.inf) for b in range(n + 1)]
    return dp[n]


@pytest.mark.parametrize("seed", range(12))
def test_kmeans_1d_matches_brute_force_on_small_sets(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(6, 13)), int(rng.integers(2, 5))
    v = np.concatenate([rng.normal(0, 1, n - 3), rng.normal(5, 0.2, 3)])
    if seed % 3 == 0:
        v[1] = v[0]  # a repeated value
    book, labels = kmeans_1d(v, k=k)
    assert book.shape == (k,) and book.dtype == np.float32 and np.all(np.diff(book) >= 0)
    assert _sse(v, book, labels) == pytest.approx(_best_partition_sse(v, k), rel=1e-5, abs=1e-9)


def test_kmeans_1d_matches_exact_dp():
    rng = np.random.default_rng(7)
    v = np.concatenate([rng.standard_t(3, 150), rng.normal(9, 0.05, 30)])
    book, labels = kmeans_1d(v, k=8)
    assert _sse(v, book, labels) == pytest.approx(_exact_dp_sse(v, 8), rel=1e-5)


def test_kmeans_1d_is_lloyd_optimal():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, 20000), rng.normal(8, 0.1, 500)])
    book, labels = kmeans_1d(x, k=16)
    assert np.all(np.diff(book) >= 0)
    # Each label is the nearest entry and each entry the mean of its cell (Lloyd's fixed point).
    assert np.array_equal(np.abs(x[:, None] - book[None, :].astype(np.float64)).argmin(1), labels)
    for j in range(16):
        assert abs(x[labels == j].mean() - book[j]) < 1e-3 * max(1, abs(book[j]))
    # Beats a uniform 16-level grid by a wide margin on this skewed data.
    grid = np.linspace(x.min(), x.max(), 16)
    uniform = np.abs(x[:, None] - grid[None]).min(1)
    assert np.mean((x - book[labels]) ** 2) < 0.5 * np.mean(uniform**2)


def test_kmeans_1d_any_shape_and_tensors():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 3))
    book, labels = kmeans_1d(x, k=32)
    assert labels.shape == (300, 3)
    tbook, tlabels = kmeans_1d(torch.from_numpy(x), k=32)
    assert isinstance(tbook, torch.Tensor) and np.array_equal(tbook.numpy(), book)
    assert np.array_equal(tlabels.numpy(), labels)
    few, lab = kmeans_1d(np.array([1.0, 1.0, 2.0]), k=4)  # fewer distinct values than entries
    assert set(few[lab].tolist()) == {1.0, 2.0}


def _clustered(n: int, d: int, centres: int, seed: int, noise: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d))
    return (c[rng.integers(0, centres, n)] + noise * rng.normal(size=(n, d))).astype(np.float32)


def test_assign_chunked_equals_unchunked_and_brute_force():
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.normal(size=(3000, 7)).astype(np.float32))
    c = torch.from_numpy(rng.normal(size=(500, 7)).astype(np.float32))
    whole = km.assign(x, c, chunk_bytes=1 << 40)
    for chunk in (1, 4 * 500 * 37, 4 * 500 * 1000):  # one row, 37 rows (uneven tail), 1000 rows per chunk
        assert torch.equal(km.assign(x, c, chunk_bytes=chunk), whole)
    d = ((x.double()[:, None] - c.double()[None]) ** 2).sum(-1)
    best = d.min(1).values
    chosen = d[torch.arange(len(x)), whole]
    assert torch.all(chosen - best <= 1e-5 * (1 + best))  # nearest up to float32 rounding on near ties
    assert (whole == d.argmin(1)).float().mean() > 0.999


def test_lloyd_distortion_never_rises():
    x = torch.from_numpy(_clustered(4000, 5, 60, seed=4))
    errors = []
    for iterations in range(8):
        c, lab = km.lloyd(x, 40, iterations, torch.Generator().manual_seed(1))
        errors.append(float(((x - c[lab]) ** 2).sum()))
    assert all(b <= a * (1 + 1e-6) for a, b in zip(errors, errors[1:]))
    assert errors[-1] < 0.8 * errors[0]


def test_palette_kmeans_shapes_quality_and_seed():
    x = _clustered(4000, 9, 100, seed=1, noise=0.01)
    cb, labels = km.kmeans_palette(x, 256, iterations=10, seed=0)
    assert cb.shape == (256, 9) and cb.dtype == np.float32 and labels.min() >= 0 and labels.max() < 256
    assert np.sqrt(((cb[labels] - x) ** 2).sum(1)).mean() < 0.1
    again, again_labels = km.kmeans_palette(x, 256, iterations=10, seed=0)
    assert np.array_equal(again, cb) and np.array_equal(again_labels, labels)
    other, _ = km.kmeans_palette(x, 256, iterations=10, seed=1)
    assert not np.array_equal(other, cb)
    tc, tl = km.kmeans_palette(torch.from_numpy(x), 256, iterations=10, seed=0)
    assert isinstance(tc, torch.Tensor) and np.array_equal(tc.numpy(), cb) and np.array_equal(tl.numpy(), labels)
    few, lab = km.kmeans_palette(x[:50], 1024)
    assert np.array_equal(few, x[:50]) and np.array_equal(lab, np.arange(50))


@pytest.mark.parametrize("d", [1, 2])
def test_palette_kmeans_low_dimensions(d):
    """Sub-vector codebooks: 1-D and 2-D rows, a few hundred entries."""
    x = _clustered(6000, d, 300, seed=d)
    cb, labels = km.kmeans_palette(x, 256, iterations=15, seed=0)
    assert cb.shape == (256, d)
    # Far better than the best single centroid, and labels are each row's nearest entry.
    assert _sse(x, cb, labels) < 0.05 * float(((x - x.mean(0)) ** 2).sum())
    assert np.array_equal(labels, km.assign(torch.from_numpy(x), torch.from_numpy(cb)).numpy())


def test_inverted_file_probing_every_cell_is_exact():
    x = torch.from_numpy(_clustered(3000, 5, 50, seed=6))
    centroids = x[:200].clone()
    first, quota = np.array([0, 70, 120, 120]), np.array([70, 50, 0, 80])  # one empty cell
    near = torch.tensor([0, 1, 2, 3]).repeat(len(x), 1)
    index = km._InvertedFile(x, near, first, quota)
    assert torch.equal(index.assign(centroids), km.assign(x, centroids))
    # Probing only each row's own cell restricts it to that cell's label range.
    own = torch.randint(0, 2, (len(x), 1), generator=torch.Generator().manual_seed(0))
    labels = km._InvertedFile(x, own, first, quota).assign(centroids)
    lo = torch.from_numpy(first)[own[:, 0]]
    assert torch.all((labels >= lo) & (labels < lo + torch.from_numpy(quota)[own[:, 0]]))


def test_palette_kmeans_inverted_file_fits_like_flat(monkeypatch):
    """Beyond the pass budget each row searches only its nearest cells' centroids: every entry is still used
    and the fit matches flat k-means."""
    x = _clustered(6000, 6, 400, seed=5)
    flat_c, flat_l = km.kmeans_palette(x, 512, iterations=10, seed=0)
    monkeypatch.setattr(km, "PALETTE_PASS_BUDGET", 1.0)
    c, labels = km.kmeans_palette(x, 512, iterations=10, seed=0)
    assert c.shape == (512, 6) and len(np.unique(labels)) > 480
    assert not np.array_equal(c, flat_c)  # the inverted file really ran
    assert _sse(x, c, labels) < 1.05 * _sse(x, flat_c, flat_l)
    again = km.kmeans_palette(x, 512, iterations=10, seed=0)
    assert np.array_equal(again[0], c) and np.array_equal(again[1], labels)
