"""What the nerfstudio model, its export and its evaluation share: a splatfacto-family model's Gaussians as
``Splats``, and the near plane training culls at. Cameras convert with ``splatpack.datasets.cameras``."""

from __future__ import annotations

import torch

from splatpack.scene import Splats
from splatpack.train.ops import PARAM_NAMES, splats_from_params

# Gaussians nearer to a camera than this (nerfstudio's normalised units) are culled, as splatfacto does.
NEAR_PLANE = 0.01


def splats_of(model) -> Splats:
    """The Gaussians of any splatfacto-family model as ``Splats`` (nerfstudio frame, detached, float32, CPU).

    Read through the model's properties named like its ``gauss_params``: ``model.means`` is world space for both
    (ours decodes it from log space when stored so); the DC term is ``shs_0``, the SH coefficient also when
    ``sh_degree`` is 0 and the model renders ``sigmoid(features_dc)``.
    """
    with torch.no_grad():
        values = {name: getattr(model, name) for name in PARAM_NAMES["splatfacto"].values()}
        values["features_dc"] = model.shs_0
        return splats_from_params({k: v.detach().float().cpu() for k, v in values.items()}, "splatfacto")
