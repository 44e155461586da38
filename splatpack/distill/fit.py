"""Self-distillation: a compact scene fitted to renders of the original, without the original's training images.

The original scene is the teacher. Given virtual (or the user's) views:

1. **targets**: the original rendered from every fitted view (no gradients, a few views at a time);
2. **prune**: OMG's importance over those views and local-distinctiveness pruning at the preset's tau
   (``splatpack.omg.pruning``; the DC colour is the appearance feature, as in OMG before its fields exist);
3. **fit**: the survivors' raw attributes trained against the targets (loss ``(1 - w) L1 + w (1 - SSIM)``, as
   3DGS), positions through half precision when the file stores them so (straight through);
4. **quantize**: at ``svq_share`` of the steps, every attribute is sub-vector quantized in the layout of
   ``CompactScene.from_splats``; the rest of the steps train the codebook entries and positions with the
   indices fixed, so the file's own values are what gets fitted.

The result is the ``CompactScene`` a ``.spk`` stores. Everything runs on the scene's device (CUDA when given
CUDA tensors, with gsplat when it loads; the torch renderer and our CPU kernels otherwise).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from pytorch_msssim import ssim as msssim_ssim
from torch import Tensor

from splatpack import progress
from splatpack.distill.rig import extent
from splatpack.errors import SplatpackError
from splatpack.evaluation import Views, render_views
from splatpack.omg.compact import CompactScene
from splatpack.omg.pruning import keep_by_score_mass, ld_scores, tau_of
from splatpack.quant.svq import SvqCode, lookup
from splatpack.render import rasterize
from splatpack.render.importance import accumulate_importance
from splatpack.scene import SH_REST_COUNT, Splats

# 3DGS's learning rates, by CompactScene attribute name (positions: times the scene radius).
LEARNING_RATES = {
    "positions": 1.6e-4, "log_scales": 5e-3, "quats": 1e-3, "opacity_logits": 2.5e-2, "sh0": 2.5e-3, "shN": 1.25e-4,
}  # fmt: skip


@dataclass
class DistillConfig:
    """How a scene is distilled (``distill``)."""

    preset: str = "XS"
    """LD pruning preset: share tau of the score mass kept (XS 0.96, S 0.98, M 0.99, L 0.999, XL 0.9999)."""
    steps: int = 1000
    """Optimisation steps in all (one fitted view per step)."""
    svq_share: float = 0.7
    """Share of the steps before the attributes are quantized (the rest fit the codebooks)."""
    ld_lambda: float = 2.0
    """Exponent of the distinctiveness term of the LD score."""
    ld_neighbourhood: str = "released"
    """Neighbours LD compares with: released (OMG's code), knn or morton."""
    ssim_weight: float = 0.2
    """Weight of (1 - SSIM) in the loss (3DGS: 0.2)."""
    lr_scale: float = 1.0
    """Multiplies every learning rate."""
    half_positions: bool = True
    """Fit positions through half precision (the .spk default stores them so)."""
    seed: int = 0
    """Seed of the view order and the codebook k-means."""


@dataclass
class DistillResult:
    compact: CompactScene
    kept: int  # Gaussians after pruning
    source: int  # Gaussians in the original
    final_loss: float


def render_targets(source: Splats, views: Views) -> list[Tensor]:
    """(H, W, 3) renders of the original from every view, in chunks (memory: one chunk's render)."""
    targets = []
    with progress.stage("render", len(views)) as stage:
        for i in range(0, len(views), 4):
            part = dataclasses.replace(
                views, viewmats=views.viewmats[i : i + 4], Ks=views.Ks[i : i + 4], sizes=views.sizes[i : i + 4]
            )
            targets += render_views(source, part)
            stage.advance(len(part))
    return targets


def ld_scores_over(source: Splats, views: Views, config: DistillConfig) -> Tensor:
    """(N,) OMG's LD pruning scores of ``source``: importance over ``views`` (all one size) times distinctiveness."""
    width, height = views.sizes[0]
    if any(size != (width, height) for size in views.sizes):
        raise SplatpackError("distillation views must share one image size")
    s = source.detach()
    imp = accumulate_importance(
        s.means, s.unit_quats, s.scales, s.opacities, views.viewmats.to(s.device), views.Ks.to(s.device),
        width, height, near_plane=views.near_plane,
    )  # fmt: skip
    return ld_scores(
        imp.score("indoor"), s.base_rgb, s.means, lambda_ld=config.ld_lambda, neighbourhood=config.ld_neighbourhood
    )


def prune(source: Splats, views: Views, config: DistillConfig, scores: Tensor | None = None) -> Tensor:
    """Sorted indices of the Gaussians LD pruning keeps at the preset's tau (``scores``: ``ld_scores_over``'s,
    computed here when not given)."""
    scores = ld_scores_over(source, views, config) if scores is None else scores
    return torch.nonzero(keep_by_score_mass(scores, tau_of(config.preset))).reshape(-1)


class _Trainable(torch.nn.Module):
    """A compact scene's positions and attributes as parameters: raw arrays, or codebooks with fixed indices."""

    def __init__(self, compact: CompactScene, device: torch.device) -> None:
        super().__init__()
        self.compact = compact
        self.positions = torch.nn.Parameter(torch.from_numpy(compact.positions.copy()).to(device))
        self.raw = torch.nn.ParameterDict()
        self.books = torch.nn.ParameterDict()
        self.indices: dict[str, Tensor] = {}
        for name, attr in compact.attributes.items():
            if isinstance(attr, SvqCode):
                for s, book in enumerate(attr.codebooks):
                    self.books[f"{name}_{s}"] = torch.nn.Parameter(torch.from_numpy(book.copy()).to(device))
                self.indices[name] = torch.from_numpy(attr.indices).to(device)
            else:
                self.raw[name] = torch.nn.Parameter(torch.from_numpy(np.array(attr, np.float32)).to(device))

    def _books(self, name: str) -> list[torch.nn.Parameter]:
        """The codebooks of an SVQ'd attribute, in sub-vector order."""
        return [self.books[f"{name}_{s}"] for s in range(self.indices[name].shape[1])]

    def param_groups(self, radius: float, lr_scale: float) -> list[dict]:
        groups = [{"params": [self.positions], "lr": LEARNING_RATES["positions"] * radius * lr_scale}]
        for name in self.compact.attributes:
            params = [self.raw[name]] if name in self.raw else self._books(name)
            params = [p for p in params if p.numel()]
            if params:
                groups.append({"params": params, "lr": LEARNING_RATES[name] * lr_scale})
        return groups

    def attribute(self, name: str) -> Tensor:
        if name in self.raw:
            return self.raw[name]
        return lookup(self._books(name), self.indices[name])

    def splats(self, half_positions: bool) -> Splats:
        """The scene these parameters render, differentiable in them."""
        n, k = len(self.compact), SH_REST_COUNT[self.compact.sh_degree]
        means = self.positions
        if half_positions:  # what the file will hold, with the gradient of the unrounded values
            means = means + (means.half().float() - means).detach()
        return Splats(
            means=means,
            quats=self.attribute("quats"),
            log_scales=self.attribute("log_scales"),
            opacity_logits=self.attribute("opacity_logits").reshape(n),
            sh0=self.attribute("sh0").reshape(n, 1, 3),
            shN=self.attribute("shN").reshape(n, k, 3),
        )

    def to_compact(self) -> CompactScene:
        attrs = {}
        for name, attr in self.compact.attributes.items():
            if isinstance(attr, SvqCode):
                attrs[name] = SvqCode([b.detach().cpu().numpy() for b in self._books(name)], attr.indices)
            else:
                attrs[name] = self.raw[name].detach().cpu().numpy()
        positions = self.positions.detach().cpu().numpy()
        return dataclasses.replace(self.compact, positions=positions, attributes=attrs)


def _raw_compact(splats: Splats) -> CompactScene:
    """``splats`` in the no-MLP layout with every attribute raw (the fitting phase before quantization)."""
    unquantized = dict.fromkeys(("scale", "rotation", "appearance", "sh_rest"))
    return CompactScene.from_splats(splats, **unquantized)


def _fit(
    model: _Trainable, views: Views, targets: list[Tensor], steps: range, total: int, config: DistillConfig,
    radius: float, order: Tensor, stage: progress.Stage,
) -> float:  # fmt: skip
    optimizer = torch.optim.Adam(model.param_groups(radius, config.lr_scale), eps=1e-15)
    positions_lr = optimizer.param_groups[0]["lr"]
    loss_value = math.nan
    for step in steps:
        # 3DGS's exponential position decay (to 1/100 over the run).
        optimizer.param_groups[0]["lr"] = positions_lr * 0.01 ** (step / max(total, 1))
        v = int(order[step % len(order)])
        width, height = views.sizes[v]
        s = model.splats(config.half_positions)
        out = rasterize(
            s.means, s.quats, s.scales, s.opacities, s.sh, views.viewmats[v : v + 1].to(s.means.device),
            views.Ks[v : v + 1].to(s.means.device), width, height, sh_degree=s.sh_degree,
            near_plane=views.near_plane,
        )  # fmt: skip
        pred, target = out.rgb[0].clamp(0, 1), targets[v].to(out.rgb.device)
        l1 = (pred - target).abs().mean()
        d_ssim = 1 - msssim_ssim(pred.permute(2, 0, 1)[None], target.permute(2, 0, 1)[None], data_range=1.0)
        loss = (1 - config.ssim_weight) * l1 + config.ssim_weight * d_ssim
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_value = loss.item()
        stage.advance()
    return loss_value


def distill(
    source: Splats,
    views: Views,
    config: DistillConfig | None = None,
    *,
    targets: list[Tensor] | None = None,
    scores: Tensor | None = None,
) -> DistillResult:
    """Fit a compact scene to renders of ``source`` from ``views`` (module docstring). ``targets``
    (``render_targets``) and ``scores`` (``ld_scores_over``) do not depend on the preset: a caller trying
    several presets passes them, computed once."""
    config = config or DistillConfig()
    if config.steps < 0 or not 0.0 <= config.svq_share <= 1.0:
        raise SplatpackError("distillation needs steps >= 0 and svq_share in [0, 1]")
    if len(views) == 0:
        raise SplatpackError("distillation needs at least one view to fit")
    targets = render_targets(source, views) if targets is None else targets
    with progress.stage("prune"):
        keep = prune(source, views, config, scores)
    kept = source.detach()[keep.to(source.device)]
    radius = extent(kept).radius
    device = source.means.device
    order = torch.randperm(len(views), generator=torch.Generator().manual_seed(config.seed))
    switch = int(round(config.svq_share * config.steps))
    with progress.stage("fit", config.steps) as stage:
        model = _Trainable(_raw_compact(kept), device)
        loss = _fit(model, views, targets, range(0, switch), config.steps, config, radius, order, stage)
        fitted = model.splats(half_positions=False).detach()
        quantized = CompactScene.from_splats(fitted.to("cpu"), seed=config.seed)  # then fit the codebooks
        model = _Trainable(quantized, device)
        loss = _fit(model, views, targets, range(switch, config.steps), config.steps, config, radius, order, stage)
    return DistillResult(model.to_compact(), kept=len(kept), source=len(source), final_loss=loss)
