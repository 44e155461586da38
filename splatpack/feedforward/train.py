"""One training step of the feed-forward model: predict Gaussians from context views, render them into target
views with ``splatpack.render`` and descend on MSE + D-SSIM plus GlobalSplat's frustum, decoder and
subset-consistency terms (``splatpack.feedforward.losses``), and the coarse-to-fine curriculum."""

from __future__ import annotations

import dataclasses

import torch
from pytorch_msssim import ssim

from splatpack.feedforward import losses
from splatpack.feedforward.losses import LossWeights
from splatpack.feedforward.model import FeedForwardModel, Prediction, canonical_frame
from splatpack.feedforward.scenes import MultiViewScene
from splatpack.render import RenderOutput, rasterize


@dataclasses.dataclass(frozen=True)
class Curriculum:
    """The coarse-to-fine capacity schedule: stage s starts at step ``starts[s - 1]``; for ``fade`` steps from
    then on the output fades from stage s - 1 into s (``model(..., stage=s - 1, blend=t)``). GlobalSplat starts
    stages 1-3 at 10k / 20k / 50k of 220k steps with a 2,000-step fade; these defaults are scaled to CPU runs."""

    starts: tuple[int, ...] = (300, 600, 1200)
    fade: int = 100

    def at(self, step: int) -> tuple[int, float]:
        """(stage, blend) for training step ``step``."""
        stage = sum(step >= start for start in self.starts)
        if stage and step < self.starts[stage - 1] + self.fade:
            return stage - 1, (step - self.starts[stage - 1] + 1) / (self.fade + 1)
        return stage, 0.0


def photometric_loss(rendered: torch.Tensor, target: torch.Tensor, ssim_weight: float = 0.2) -> torch.Tensor:
    """(1 - w) MSE + w (1 - SSIM) of (C, H, W, 3) images in [0, 1]."""
    s = ssim(rendered.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2), data_range=1.0, size_average=True)
    return (1 - ssim_weight) * torch.mean((rendered - target) ** 2) + ssim_weight * (1 - s)


def render_targets(
    pred: Prediction, c2w: torch.Tensor, Ks: torch.Tensor, width: int, height: int, background: torch.Tensor
) -> RenderOutput:
    """Render scene 0 of ``pred`` into (V, 4, 4) target cameras given in the context cameras' frame, over a
    uniform ``background`` (3,) colour. The render happens in the canonical frame, so the renderer's near plane
    (0.01) is 1 % of the camera constellation's diameter."""
    viewmats = torch.linalg.inv(pred.frame.cameras_to_canonical(c2w[None])[0])
    means, quats, scales, opacities, sh = pred.gaussians.render_inputs(0)
    sh_degree = int(sh.shape[1] ** 0.5) - 1
    backgrounds = background.expand(len(viewmats), 3)
    return rasterize(
        means, quats, scales, opacities, sh, viewmats, Ks, width, height, sh_degree=sh_degree, backgrounds=backgrounds
    )


def decoder_terms(pred: Prediction, c2w: torch.Tensor, Ks: torch.Tensor, width: int, height: int, w: LossWeights):
    """The weighted frustum and decoder-regulariser terms of scene 0 of ``pred``, predicted from the (V, 4, 4)
    context cameras ``c2w`` / ``Ks`` (the cameras' frame); terms of weight 0 are not computed."""
    g = pred.gaussians
    terms = []
    if w.frustum:
        cams = pred.frame.cameras_to_canonical(c2w[None])[0]
        terms.append(w.frustum * losses.frustum_loss(g.means[0], cams, Ks, width, height))
    if w.scale:
        terms.append(w.scale * losses.scale_regularizer(g.log_scales[0], w.max_anisotropy))
    if w.rotation:
        terms.append(w.rotation * losses.rotation_regularizer(g.quats[0]))
    if w.sh:
        terms.append(w.sh * losses.sh_regularizer(g.sh[0], w.sh_cap))
    if w.opacity:
        terms.append(w.opacity * losses.opacity_regularizer(g.opacity_logits[0]))
    return sum(terms)


def train_step(
    model: FeedForwardModel,
    optimizer: torch.optim.Optimizer,
    scene: MultiViewScene,
    context,
    targets,
    *,
    stage: int | None = None,
    blend: float = 0.0,
    ssim_weight: float = 0.2,
    clip: float = 1.0,
    weights: LossWeights | None = None,
) -> float:
    """One optimiser step on ``scene``: views ``context`` in, views ``targets`` rendered; returns the loss.

    With a subset-consistency weight and >= 3 context views, the model runs on each of the two subsets of
    ``losses.subset_split`` (as GlobalSplat trains: two forward passes, never the whole context): the rendering
    and decoder terms are their mean, plus the consistency of the two renders' opacity and depth in the targets
    (depth in units of the whole context's camera diameter, as each subset's canonical unit differs)."""
    w = weights or LossWeights()
    model.train()
    optimizer.zero_grad(set_to_none=True)
    height, width = scene.images.shape[1:3]
    subsets = [context]
    if w.consistency:
        views = torch.arange(len(scene.images))[context].tolist()
        if len(set(views)) >= 3:  # fewer: the two subsets would be the same views
            subsets = list(losses.subset_split(views))
    loss, renders = 0.0, []
    for views in subsets:
        images, c2w, Ks = scene.views(views)
        pred = model(images, c2w, Ks, stage=stage, blend=blend)
        # What the Gaussians leave uncovered shows the context views' mean colour: known at test time, and it
        # keeps an untrained model's loss informative instead of comparing against black.
        background = images.reshape(-1, 3).mean(dim=0)
        out = render_targets(pred, scene.c2w[targets], scene.Ks[targets], width, height, background)
        loss = loss + photometric_loss(out.rgb, scene.images[targets], ssim_weight) / len(subsets)
        loss = loss + decoder_terms(pred, c2w[0], Ks[0], width, height, w) / len(subsets)
        renders.append((out, pred.frame.scale[0]))
    if len(renders) == 2:
        (a, scale_a), (b, scale_b) = renders
        unit = canonical_frame(scene.c2w[context][None]).scale[0]
        if w.consistency_opacity:
            loss = loss + w.consistency_opacity * losses.symmetric_consistency(a.alpha, b.alpha)
        if w.consistency_depth:
            depth_a, depth_b = a.depth * (scale_a / unit), b.depth * (scale_b / unit)
            loss = loss + w.consistency_depth * losses.symmetric_consistency(depth_a, depth_b, a.alpha * b.alpha)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return float(loss.detach())
