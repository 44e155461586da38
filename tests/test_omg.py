"""OMG's selection steps: importance sampling, local-distinctiveness pruning, blur split, and the surgery after them."""

from __future__ import annotations

import pytest
import torch

from splatpack.errors import SplatpackError
from splatpack.omg.densify import blur_split_mask
from splatpack.omg.depth_reinit import per_view_counts, unproject, view_points
from splatpack.omg.pruning import PRESETS, distinctiveness, keep_by_score_mass, ld_scores, tau_of
from splatpack.omg.sampling import knn_distance, restart_values, sample_by_importance, sample_count
from splatpack.sort.morton import morton_order


def _scores(n=5000, seed=0):
    """Heavy-tailed importances with a third exactly zero (never dominant), as trained scenes have."""
    g = torch.Generator().manual_seed(seed)
    s = torch.exp(torch.randn(n, generator=g, dtype=torch.float64) * 2)
    s[torch.randperm(n, generator=g)[: n // 3]] = 0.0
    return s


@pytest.mark.parametrize("ratio", [0.1, 0.5, 1.0])
def test_sampling_keeps_the_requested_count_of_nonzero_scores(ratio):
    s = _scores()
    picked = sample_by_importance(s, ratio, torch.Generator().manual_seed(1))
    nonzero = int((s > 0).sum())
    assert len(picked) == sample_count(s, ratio) == round(ratio * nonzero)
    assert (s[picked] > 0).all()
    assert torch.equal(picked, torch.unique(picked))  # sorted, no repeats
    if ratio == 1.0:
        assert torch.equal(picked, torch.nonzero(s > 0).reshape(-1))


def test_sampling_favours_important_gaussians():
    s = torch.tensor([1.0] * 50 + [100.0] * 50, dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    heavy = sum(int((sample_by_importance(s, 0.2, g) >= 50).sum()) for _ in range(20))
    # 20 draws of 20 out of 100: about 0.99 * 400 expected from the heavy half, 50 % for uniform sampling.
    assert heavy > 0.9 * 400


def test_sampling_rejects_bad_input():
    with pytest.raises(SplatpackError, match="ratio"):
        sample_by_importance(torch.ones(4), 0.0)
    with pytest.raises(SplatpackError, match="non-negative"):
        sample_by_importance(torch.tensor([1.0, -1.0]), 0.5)


def test_restart_values_are_knn_scales_identity_rotations_and_opacity_01():
    g = torch.Generator().manual_seed(3)
    means = torch.rand(300, 3, generator=g, dtype=torch.float64)
    v = restart_values(means)
    dist = torch.cdist(means, means)
    brute = torch.sort(dist, dim=1).values[:, 1:4].pow(2).mean(dim=1).sqrt()
    torch.testing.assert_close(knn_distance(means), brute)
    torch.testing.assert_close(v["scales"], torch.log(brute)[:, None].repeat(1, 3))
    assert torch.equal(v["quats"], torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64).expand(300, 4))
    torch.testing.assert_close(torch.sigmoid(v["opacities"]), torch.full((300, 1), 0.1, dtype=torch.float64))


@pytest.mark.parametrize("preset", list(PRESETS))
def test_pruning_removes_at_most_the_allowed_score_mass(preset):
    tau = tau_of(preset)
    s = _scores(20000, seed=4)
    keep = keep_by_score_mass(s, tau)
    total = float((s + 1e-6).sum())
    pruned_mass = float((s[~keep] + 1e-6).sum())
    assert pruned_mass <= (1 - tau) * total
    # ... and it prunes as much as allowed: the cheapest survivor would take it past the limit.
    assert pruned_mass + float(s[keep].min() + 1e-6) > (1 - tau) * total
    assert 0 < int((~keep).sum()) < len(s)


def test_pruning_presets_are_monotone_and_validated():
    s = _scores(20000, seed=5)
    kept = [int(keep_by_score_mass(s, tau_of(p)).sum()) for p in ("XS", "S", "M", "L", "XL")]
    assert kept == sorted(kept) and kept[0] < kept[-1]
    with pytest.raises(SplatpackError, match="unknown OMG preset"):
        tau_of("XXL")


def _smooth_colour_field(n=4000, seed=6):
    """Colours that vary smoothly with position: neighbours look alike, random pairs do not."""
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g, dtype=torch.float64)
    colours = torch.stack([torch.sin(3 * means[:, 0]), means[:, 1], torch.cos(2 * means[:, 2])], dim=1)
    return means, colours


def test_neighbourhoods_compare_what_they_say():
    means, colours = _smooth_colour_field()
    n = len(means)
    order = morton_order(means)
    # Morton: the mean distance to the rank-order predecessor and successor.
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n)
    inner = order[1:-1]
    expected = (
        (colours[inner] - colours[order[:-2]]).abs().mean(1) + (colours[inner] - colours[order[2:]]).abs().mean(1)
    ) / 2
    torch.testing.assert_close(distinctiveness(colours, means, "morton")[inner], expected)
    # k-NN: brute-force nearest neighbours.
    nn = torch.sort(torch.cdist(means, means), dim=1).indices[:, 1:5]
    brute = (colours[:, None] - colours[nn]).abs().mean(dim=(1, 2))
    torch.testing.assert_close(distinctiveness(colours, means, "knn", k=4), brute)
    # Spatial neighbourhoods see a smooth field as locally uniform; the released code's indexing does not.
    local = distinctiveness(colours, means, "knn", k=4).mean()
    morton = distinctiveness(colours, means, "morton").mean()
    released = distinctiveness(colours, means, "released").mean()
    assert local < 0.2 * released and morton < 0.5 * released


def test_ld_scores_weigh_importance_by_distinctiveness():
    means, colours = _smooth_colour_field(500)
    importance = torch.rand(500, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    d = distinctiveness(colours, means, "knn", k=3)
    torch.testing.assert_close(
        ld_scores(importance, colours, means, neighbourhood="knn", k=3, lambda_ld=2.0), importance * d**2
    )
    with pytest.raises(SplatpackError, match="neighbourhood"):
        distinctiveness(colours, means, "grid")


def test_blur_split_threshold_is_one_5000th_of_the_image():
    dominant_max = torch.tensor([0, 96, 97, 500])
    # 640 x 760 / 5000 = 97.28 pixels
    assert blur_split_mask(dominant_max, 640, 760).tolist() == [False, False, False, True]
    assert blur_split_mask(torch.tensor([1, 2]), 40, 30).tolist() == [True, True]  # 0.24 px: any dominance


def _camera(width=32, height=24):
    """A camera 3 units from the origin looking at it (world-to-camera, OpenCV axes) and its intrinsics."""
    angle = 0.4
    rot = torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, torch.cos(torch.tensor(angle)), -torch.sin(torch.tensor(angle))],
         [0.0, torch.sin(torch.tensor(angle)), torch.cos(torch.tensor(angle))]], dtype=torch.float64,
    )  # fmt: skip
    viewmat = torch.eye(4, dtype=torch.float64)
    viewmat[:3, :3], viewmat[:3, 3] = rot, torch.tensor([0.2, -0.1, 3.0], dtype=torch.float64)
    K = torch.tensor([[30.0, 0, width / 2 - 0.3], [0, 31.0, height / 2 + 0.2], [0, 0, 1]], dtype=torch.float64)
    return viewmat, K


def test_unprojected_points_project_back_to_their_pixel_centres_at_their_depth():
    viewmat, K = _camera()
    g = torch.Generator().manual_seed(0)
    depth = 1.0 + 4.0 * torch.rand(24, 32, generator=g, dtype=torch.float64)
    pixels = torch.randperm(24 * 32, generator=g)[:100]
    world = unproject(depth, pixels, viewmat, K)
    cam = world @ viewmat[:3, :3].T + viewmat[:3, 3]
    assert torch.allclose(cam[:, 2], depth.reshape(-1)[pixels])
    uv = (cam[:, :2] / cam[:, 2:]) * torch.stack([K[0, 0], K[1, 1]]) + torch.stack([K[0, 2], K[1, 2]])
    assert torch.allclose(uv[:, 0], (pixels % 32).double() + 0.5)
    assert torch.allclose(uv[:, 1], (pixels // 32).double() + 0.5)


def test_depth_points_come_only_from_covered_pixels_with_their_image_colours():
    viewmat, K = _camera()
    depth = torch.full((24, 32), 2.0, dtype=torch.float64)
    alpha = torch.zeros(24, 32, dtype=torch.float64)
    alpha[5:9, 10:20] = torch.linspace(0.1, 1.0, 40, dtype=torch.float64).reshape(4, 10)  # 40 covered pixels
    image = torch.rand(24, 32, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    points, colours = view_points(depth, alpha, image, viewmat, K, 25, torch.Generator().manual_seed(2))
    assert points.shape == (25, 3) and colours.shape == (25, 3)
    cam = points @ viewmat[:3, :3].T + viewmat[:3, 3]
    u = (cam[:, 0] / cam[:, 2] * K[0, 0] + K[0, 2] - 0.5).round().long()
    v = (cam[:, 1] / cam[:, 2] * K[1, 1] + K[1, 2] - 0.5).round().long()
    assert (alpha[v, u] > 0).all() and len(set(zip(u.tolist(), v.tolist()))) == 25  # covered, each at most once
    assert torch.equal(colours, image[v, u])
    # More points than covered pixels: every covered pixel once, nothing from the empty rest of the view.
    points, _ = view_points(depth, alpha, image, viewmat, K, 1000, torch.Generator().manual_seed(2))
    assert points.shape == (40, 3)
    none, _ = view_points(depth, torch.zeros_like(alpha), image, viewmat, K, 10, torch.Generator())
    assert none.shape == (0, 3)


def test_depth_points_are_shared_evenly_between_views():
    assert per_view_counts(10, 4) == [3, 3, 2, 2] and sum(per_view_counts(3_500_000, 42)) == 3_500_000
    with pytest.raises(SplatpackError):
        per_view_counts(10, 0)
