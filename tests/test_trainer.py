"""The small photometric trainer (splatpack.train.trainer): the background it composites is what it fits against."""

from __future__ import annotations

import torch

from splatpack.datasets.cameras import CameraSet
from splatpack.render import render_splats
from splatpack.train.trainer import TrainConfig, init_from_points, train

SIDE = 16


def _grey_views(level: float) -> CameraSet:
    """Two views of nothing but a uniform grey, looking down +z from z = -3."""
    viewmats = torch.eye(4).repeat(2, 1, 1)
    viewmats[:, 2, 3] = 3.0
    viewmats[1, 0, 3] = 0.2
    Ks = torch.tensor([[20.0, 0, SIDE / 2], [0, 20.0, SIDE / 2], [0, 0, 1]]).repeat(2, 1, 1)
    return CameraSet(torch.full((2, SIDE, SIDE, 3), level), viewmats, Ks, ["a", "b"], SIDE, SIDE)


def _composite_error(splats, cams: CameraSet, background: torch.Tensor) -> float:
    out = render_splats(splats, cams.viewmats, cams.Ks, SIDE, SIDE, backgrounds=background.expand(2, 3))
    return float((out.rgb - cams.images).abs().max())


def test_training_fits_the_composite_over_its_background():
    cams = _grey_views(0.6)
    g = torch.Generator().manual_seed(0)
    # A few faint red Gaussians in view: over a grey background they are the only error there is.
    start = init_from_points(torch.randn(8, 3, generator=g) * 0.3, torch.tensor([[1.0, 0, 0]]).repeat(8, 1), 0)
    grey = torch.full((3,), 0.6)
    before = _composite_error(start, cams, grey)
    fitted = train(start, cams, TrainConfig(steps=60, sh_degree=0, densify=False, background=(0.6, 0.6, 0.6)))
    after = _composite_error(fitted, cams, grey)
    assert before > 0.02 and after < before / 2
    # Over black (the default), the same start must grow grey Gaussians to cover the views instead.
    black = train(start, cams, TrainConfig(steps=60, sh_degree=0, densify=False))
    assert _composite_error(black, cams, torch.zeros(3)) > after
