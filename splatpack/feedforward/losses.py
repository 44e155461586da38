"""GlobalSplat's training terms besides the rendering loss (``../shared/docs/ALGORITHMS.md`` §3.1 item 7), as pure
functions of the predicted Gaussians and their renders; ``train.train_step`` weighs and sums them.

The paper gives the weights (frustum 1e-2; scale, rotation and SH regularisers 1e-2 with an SH soft cap of 5;
subset consistency of rendered opacity 1e-3 and depth 1e-2, with a symmetric stop-gradient; the decoder
opacity regulariser off) but not every form. Where it is silent, the choices here are:

- ``frustum_loss``: the distance (canonical units: camera constellation diameter 1) by which a centre lies
  outside the nearest context-camera frustum (its four side planes and the renderer's near plane), averaged over
  the Gaussians; zero for a centre some context camera sees. Linear in the distance, so a centre far behind
  the cameras is pulled back at a bounded rate.
- ``scale_regularizer``: a hinge on anisotropy, log(s_max / s_min) beyond log(``max_ratio``): needles thinner
  than 1 : ``max_ratio`` are what sparse views cannot pin down (the decoder already bounds each scale).
- ``rotation_regularizer``: (|q| - 1)^2 of the raw quaternions the renderer normalises, which keeps them away
  from 0 where normalisation is ill-conditioned (the paper's 6-D rotations have the same need). On a merged
  Gaussian, |q| < 1 where its candidates disagree, so it also asks a token's candidates to agree on rotation.
- ``sh_regularizer``: relu(|c| - cap)^2 of every SH coefficient, the paper's soft cap of 5.
- ``opacity_regularizer``: mean opacity (an L1 sparsity pull); the paper's released checkpoint has it off.
- ``subset_split`` / ``symmetric_consistency``: the context split into two interleaved subsets sharing the two
  extreme views (by index: views are numbered along the capture path); each subset's prediction is rendered into
  the targets, and each side's opacity (depth) is pulled towards the other's stopped-gradient value by an L1
  distance, halved per side. Depth only counts where both renders cover the pixel (weight a_1 a_2, detached).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from splatpack.render import RasterOptions

NEAR_PLANE = RasterOptions.near_plane  # the renderer's cull: nearer centres are outside every frustum


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Weights of the terms beside the rendering loss (0: the term is off and not computed). The defaults are
    all off, the loss of a plain ``train_step``; ``TrainSettings.loss_weights`` gives the paper's."""

    frustum: float = 0.0
    scale: float = 0.0
    rotation: float = 0.0
    sh: float = 0.0
    opacity: float = 0.0
    consistency_opacity: float = 0.0
    consistency_depth: float = 0.0
    sh_cap: float = 5.0
    max_anisotropy: float = 10.0

    @property
    def consistency(self) -> bool:
        return self.consistency_opacity > 0 or self.consistency_depth > 0


def frustum_loss(means: Tensor, c2w: Tensor, Ks: Tensor, width: int, height: int, near: float = NEAR_PLANE) -> Tensor:
    """Mean over (N, 3) ``means`` of the summed distances outside the planes of the nearest of the (V, 4, 4)
    camera-to-world ``c2w`` / (V, 3, 3) ``Ks`` frusta of ``width`` x ``height`` images (same frame as the means)."""
    rot, centre = c2w[:, :3, :3], c2w[:, :3, 3]
    p = torch.einsum("vji,vnj->vni", rot, means[None] - centre[:, None])  # camera coordinates (V, N, 3)
    fx, fy, cx, cy = Ks[:, 0, 0], Ks[:, 1, 1], Ks[:, 0, 2], Ks[:, 1, 2]
    zero = torch.zeros_like(fx)
    # Inward normals of the planes through the camera centre bounding 0 <= u <= width, 0 <= v <= height.
    normals = torch.stack(
        [
            torch.stack([fx, zero, cx], -1),
            torch.stack([-fx, zero, width - cx], -1),
            torch.stack([zero, fy, cy], -1),
            torch.stack([zero, -fy, height - cy], -1),
        ],
        dim=1,
    )  # (V, 4, 3)
    sides = torch.einsum("vnk,vpk->vnp", p, normals / normals.norm(dim=-1, keepdim=True))
    outside = torch.relu(-sides).sum(-1) + torch.relu(near - p[..., 2])
    return outside.min(dim=0).values.mean()


def scale_regularizer(log_scales: Tensor, max_ratio: float = 10.0) -> Tensor:
    """Mean hinge of log(s_max / s_min) beyond log(``max_ratio``) over (..., 3) log standard deviations."""
    spread = log_scales.amax(dim=-1) - log_scales.amin(dim=-1)
    return torch.relu(spread - math.log(max_ratio)).mean()


def rotation_regularizer(quats: Tensor) -> Tensor:
    """Mean (|q| - 1)^2 over (..., 4) raw quaternions."""
    return ((quats.norm(dim=-1) - 1) ** 2).mean()


def sh_regularizer(sh: Tensor, cap: float = 5.0) -> Tensor:
    """Mean of relu(|c| - cap)^2 over every SH coefficient c."""
    return (torch.relu(sh.abs() - cap) ** 2).mean()


def opacity_regularizer(opacity_logits: Tensor) -> Tensor:
    """Mean opacity."""
    return torch.sigmoid(opacity_logits).mean()


def subset_split(context: list[int]) -> tuple[list[int], list[int]]:
    """Two interleaved subsets of ``context`` (>= 3 distinct views) that share its first and last view by index;
    each ascending, so both start from the same (first) camera, whose axes the canonical frame takes."""
    views = sorted(set(context))
    if len(views) < 3:
        raise ValueError(f"subset consistency needs >= 3 distinct context views, got {len(views)}")
    first, middle, last = views[0], views[1:-1], views[-1]
    return [first, *middle[0::2], last], [first, *middle[1::2], last]


def symmetric_consistency(a: Tensor, b: Tensor, weight: Tensor | None = None) -> Tensor:
    """Half of mean w |a - sg(b)| plus half of mean w |sg(a) - b| (sg: stop-gradient; w: ``weight``, default 1):
    the value is the mean weighted distance, and each side moves half-way towards the other."""
    w = 1.0 if weight is None else weight.detach()
    return 0.5 * ((w * (a - b.detach()).abs()).mean() + (w * (a.detach() - b).abs()).mean())
