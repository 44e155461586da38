"""PLAS and Morton grid orders: valid permutations, determinism, sorting quality, keys and measures."""

from __future__ import annotations

import math

import pytest
import torch

from splatpack.errors import SplatpackError
from splatpack.scene import Splats
from splatpack.sort import grid_order, self_organizing_key
from splatpack.sort.morton import morton_codes, morton_order
from splatpack.sort.plas import plas_sort, radius_blur, radius_schedule
from splatpack.sort.quality import neighbour_distance, vad


def _is_permutation(order: torch.Tensor, n: int) -> bool:
    return order.dtype == torch.int64 and torch.equal(torch.sort(order.reshape(-1)).values, torch.arange(n))


def _gradient(h: int, w: int) -> torch.Tensor:
    """A smooth colour image: red across, green down, blue along the diagonal."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([x, y, (x + y) / 2], dim=-1)


def _shuffled(grid: torch.Tensor, seed: int) -> torch.Tensor:
    flat = grid.reshape(-1, grid.shape[2])
    return flat[torch.randperm(flat.shape[0], generator=torch.Generator().manual_seed(seed))].reshape(grid.shape)


@pytest.mark.parametrize("shape", [(16, 16), (12, 20), (2, 9), (7, 3)])
def test_plas_returns_a_permutation_of_the_cells(shape):
    grid = torch.rand(*shape, 4, generator=torch.Generator().manual_seed(1))
    result = plas_sort(grid, seed=3)
    assert result.shape == shape
    assert _is_permutation(result, shape[0] * shape[1])
    sorted_grid = grid.reshape(-1, 4)[result].reshape(*shape, 4)
    # The same vectors, rearranged to a smoother grid.
    assert neighbour_distance(sorted_grid) < neighbour_distance(grid)


def test_plas_refuses_bad_grids():
    for bad in (torch.rand(1, 8, 3), torch.rand(8, 8), torch.full((4, 4, 2), float("nan"))):
        with pytest.raises(SplatpackError):
            plas_sort(bad)


def test_plas_is_deterministic_per_seed():
    grid = torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(2))
    a, b, c = plas_sort(grid, seed=5), plas_sort(grid, seed=5), plas_sort(grid, seed=6)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_plas_recovers_a_shuffled_gradient():
    image = _gradient(32, 32)
    shuffled = _shuffled(image, seed=0)
    order = plas_sort(shuffled, seed=0).reshape(-1)
    plas = neighbour_distance(shuffled.reshape(-1, 3)[order].reshape(32, 32, 3))
    morton, width = grid_order(shuffled.reshape(-1, 3), "morton")
    morton_nd = neighbour_distance(shuffled.reshape(-1, 3)[morton].reshape(-1, width, 3))
    random = neighbour_distance(shuffled)
    ideal = neighbour_distance(image)
    assert plas < random / 8
    assert plas < morton_nd
    assert plas < 3 * ideal


def test_radius_schedule_follows_the_reference():
    radii = radius_schedule(64, 64, 1.0, 0.95)
    assert radii[0] == 31 and radii[-1] == 1
    assert len(radii) == 67  # 31 * 0.95^k stays >= 1 for k = 0..66
    assert radius_schedule(2, 2, 1.0, 0.95) == [0]


def test_morton_codes_match_hand_computed_values():
    # With 2 bits per axis the bounding box [0, 3]^3 maps each coordinate to itself.
    points = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [2, 1, 0], [1, 2, 3], [3, 3, 3]])
    # (2,1,0): x=10b -> bit 3, y=01b -> bit 1: 0b1010 = 10. (1,2,3): x bit 0, y bit 4, z bits 2 and 5: 1+16+4+32.
    assert morton_codes(points, bits=2).tolist() == [0, 1, 2, 4, 10, 53, 63]
    assert morton_order(points[[6, 4, 0, 5]], bits=2).tolist() == [2, 1, 3, 0]
    big = torch.tensor([[0.0, 0, 0], [1, 1, 1]])
    assert morton_codes(big).tolist() == [0, 2**63 - 1]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 10, 40])
@pytest.mark.parametrize("method", ["plas", "morton", "none"])
def test_grid_order_is_a_permutation_for_any_count(n, method):
    scene = Splats.random(n, seed=n)
    order, width = grid_order(scene, method)
    assert _is_permutation(order, n)
    assert width == max(1, math.ceil(math.sqrt(n)))


def test_grid_order_plas_beats_morton_and_random_on_a_structured_scene():
    g = torch.Generator().manual_seed(0)
    n = 30 * 30 + 7  # a partial last row
    t = torch.rand(n, generator=g)
    means = torch.stack([torch.cos(6 * t), torch.sin(6 * t), t], dim=1)  # points on a helix
    scene = Splats.random(n, seed=1)
    scene = Splats(
        means,
        scene.quats,
        torch.log(0.01 + 0.05 * t)[:, None].expand(n, 3).contiguous(),
        scene.opacity_logits,
        torch.stack([t, 1 - t, t * t], 1)[:, None, :],
        scene.shN,
    )
    key = self_organizing_key(scene)
    scores = {}
    for method in ("plas", "morton", "none"):
        order, width = grid_order(scene, method)
        full = n // width * width
        scores[method] = neighbour_distance(key[order[:full]].reshape(-1, width, key.shape[1]))
    assert scores["plas"] < scores["morton"] < scores["none"] / 2


def test_self_organizing_key_standardises_each_attribute_as_a_whole():
    scene = Splats.random(500, sh_degree=1, seed=3)
    scene.means[:, 0] *= 10  # one channel wider than the others: not rescaled per channel
    key = self_organizing_key(scene)
    assert key.shape == (500, 9)
    for block in (key[:, 0:3], key[:, 3:6], key[:, 6:9]):
        assert abs(float(block.mean())) < 1e-5
        assert float(block.std(unbiased=False)) == pytest.approx(1.0, rel=1e-5)
    assert float(key[:, 0].std()) > 3 * float(key[:, 1].std())
    # Activated scale, not log-scale: the z-scores follow exp(log_scales).
    s = scene.scales
    assert torch.allclose(key[:, 6:9], (s - s.mean()) / s.std(unbiased=False), atol=1e-5)
    weighted = self_organizing_key(scene, {"xyz": 2.0, "opacity": 1.0, "rotation": 0.0})
    assert weighted.shape == (500, 4)
    assert float(weighted[:, :3].std(unbiased=False)) == pytest.approx(2.0, rel=1e-5)
    with pytest.raises(SplatpackError):
        self_organizing_key(scene, {"colour": 1.0})


def test_quality_measures_on_hand_computed_grids():
    square = torch.tensor([[[0.0], [1.0]], [[3.0], [5.0]]])
    # Horizontal |diffs| 1, 2; vertical 3, 4.
    assert neighbour_distance(square) == pytest.approx(2.5)
    assert vad(square) == pytest.approx(0.25)
    row = torch.tensor([[[0.0, 0.0], [3.0, 4.0], [3.0, 4.0]]])
    # Neighbour vectors differ by (3, 4) then (0, 0): L2 5 and 0. |diffs| 3, 4, 0, 0: variance 3.1875.
    assert neighbour_distance(row) == pytest.approx(2.5)
    assert vad(row) == pytest.approx(3.1875)
    with pytest.raises(SplatpackError):
        neighbour_distance(torch.zeros(1, 1, 3))


@pytest.mark.parametrize("size", [3, 5, 9, 15])
def test_blur_is_a_gaussian_with_circular_x_and_reflect_y_borders(size):
    grid = torch.rand(2, 16, 17, generator=torch.Generator().manual_seed(size), dtype=torch.float64).float()
    half = size // 2
    w = torch.exp(-((torch.arange(size) - half).double() ** 2) / (2 * size**2))
    w = w / w.sum()
    # Direct convolution with explicit borders: x wraps around, y mirrors without repeating the edge.
    px = torch.cat([grid[..., -half:], grid, grid[..., :half]], dim=2).double()
    bx = sum(w[j] * px[..., j : j + 17] for j in range(size))
    rows = torch.cat([torch.arange(half, 0, -1), torch.arange(16), torch.arange(14, 14 - half, -1)])
    py = bx[:, rows]
    expected = sum(w[j] * py[:, j : j + 16] for j in range(size))
    assert torch.allclose(radius_blur(grid, size, size).double(), expected, atol=1e-5)
