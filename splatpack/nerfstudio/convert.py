"""What the nerfstudio model, its export and its evaluation share: a splatfacto-family model's Gaussians as
``Splats``, and the near plane training culls at. Cameras convert with ``splatpack.datasets.cameras``."""

from __future__ import annotations

import torch

from splatpack.scene import Splats

# Gaussians nearer to a camera than this (nerfstudio's normalised units) are culled, as splatfacto does.
NEAR_PLANE = 0.01


def splats_of(model) -> Splats:
    """The Gaussians of any splatfacto-family model as ``Splats`` (nerfstudio frame, detached, float32, CPU).

    ``model.means`` is world space for both (ours decodes it from log space when stored so); ``shs_0`` is the DC
    coefficient also when ``sh_degree`` is 0 and the model renders ``sigmoid(features_dc)``.
    """
    with torch.no_grad():
        return Splats(
            means=model.means.detach().float().cpu(),
            quats=model.quats.detach().float().cpu(),
            log_scales=model.scales.detach().float().cpu(),
            opacity_logits=model.opacities.detach().float().cpu().reshape(-1),
            sh0=model.shs_0.detach().float().cpu()[:, None, :],
            shN=model.shs_rest.detach().float().cpu(),
        )
