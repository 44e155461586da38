"""Per-Gaussian importance (W, A, M) against the brute-force compositor, and OMG's two aggregations."""

from __future__ import annotations

import pytest
import torch
from _dense_reference import dense_render
from test_render import cameras, make_scene

from splatpack.errors import SplatpackError
from splatpack.render import rasterize
from splatpack.render.importance import accumulate_importance, view_contributions

# Not multiples of the 8-pixel tile: the overhanging pixels of the last tile row and column must not count.
WIDTH, HEIGHT = 37, 29


def _scene():
    means, quats, scales, opacities, sh = make_scene(n=200, sh_degree=0, seed=4)
    return means, quats, scales, opacities, torch.sigmoid(sh[:, 0])


def _four_cameras():
    viewmats, Ks = cameras(WIDTH, HEIGHT)
    return torch.cat([viewmats, viewmats.flip(0)]), torch.cat([Ks, Ks])


@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_contributions_match_the_dense_compositor(mode):
    means, quats, scales, opacities, colors = _scene()
    viewmats, Ks = cameras(WIDTH, HEIGHT)
    ref, stats = {}, {}
    dense_render(
        means, quats, scales, opacities, colors, viewmats, Ks, WIDTH, HEIGHT,
        rasterize_mode=mode, stats=stats, contributions=ref,
    )  # fmt: skip
    assert stats["stopped_pixels"] > 0 and stats["skipped_faint"] > 0  # both cut-offs shape W, A and M here
    ours = view_contributions(means, quats, scales, opacities, viewmats, Ks, WIDTH, HEIGHT, rasterize_mode=mode)
    assert torch.equal(ours.covered, ref["covered"])
    assert torch.equal(ours.dominant, ref["dominant"])
    assert float((ours.weight - ref["weight"]).abs().max()) < 1e-6
    # Many Gaussians that blend into a view lead no pixel of it.
    assert 0 < int((ours.dominant[0] > 0).sum()) < int((ours.covered[0] > 0).sum())


def test_weights_sum_to_the_rendered_opacity():
    """Per view, the Gaussians' weights add up to the image's accumulated alpha; dominant pixels to its covered ones."""
    means, quats, scales, opacities, colors = _scene()
    viewmats, Ks = cameras(WIDTH, HEIGHT)
    out = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, WIDTH, HEIGHT, backend="torch")
    ours = view_contributions(means, quats, scales, opacities, viewmats, Ks, WIDTH, HEIGHT)
    alpha = out.alpha.reshape(2, -1)
    torch.testing.assert_close(ours.weight.sum(dim=1), alpha.sum(dim=1), rtol=1e-10, atol=1e-9)
    assert torch.equal(ours.dominant.sum(dim=1), (alpha > 0).sum(dim=1))


def test_accumulation_over_chunks_is_the_papers_aggregation():
    means, quats, scales, opacities, colors = _scene()
    viewmats, Ks = _four_cameras()
    ref = {}
    dense_render(means, quats, scales, opacities, colors, viewmats, Ks, WIDTH, HEIGHT, contributions=ref)
    w, a, m = ref["weight"], ref["covered"], ref["dominant"]
    shown = m > 0
    indoor = torch.where(shown.any(0), w.sum(0), 0.0)
    outdoor = torch.where(shown, w / a.clamp_min(1), 0.0).sum(0)
    for per_chunk in (1, 3, 8):
        imp = accumulate_importance(
            means, quats, scales, opacities, viewmats, Ks, WIDTH, HEIGHT, cameras_per_chunk=per_chunk
        )
        torch.testing.assert_close(imp.score("indoor"), indoor, rtol=0, atol=1e-6)
        torch.testing.assert_close(imp.score("outdoor"), outdoor, rtol=0, atol=1e-6)
        assert torch.equal(imp.dominant, m.sum(0))
        assert torch.equal(imp.dominant_max, m.max(0).values)
    # "0 when never dominant": Gaussians that blend into pixels without ever leading one score nothing.
    blended_only = (w.sum(0) > 0) & ~shown.any(0)
    assert blended_only.any()
    assert (imp.score("indoor")[blended_only] == 0).all() and (imp.score("outdoor")[blended_only] == 0).all()
    assert (imp.score("indoor")[shown.any(0)] > 0).all()


def test_unknown_metric_is_a_one_line_error():
    means, quats, scales, opacities, _ = _scene()
    viewmats, Ks = cameras(WIDTH, HEIGHT)
    imp = accumulate_importance(means, quats, scales, opacities, viewmats, Ks, WIDTH, HEIGHT)
    with pytest.raises(SplatpackError, match="unknown importance metric"):
        imp.score("mixed")
