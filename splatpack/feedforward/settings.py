"""Settings of a feed-forward training run (``splatpack.feedforward.trainer``), as one dataclass that tyro turns
into ``splatpack feedforward train``'s options; importing it costs no PyTorch, so ``--help`` stays fast."""

from __future__ import annotations

import dataclasses
import math

from splatpack.errors import SplatpackError
from splatpack.feedforward.config import FeedForwardConfig

# Settings field -> ``losses.LossWeights`` field. Checkpoints written before these existed trained with all 0.
LOSS_WEIGHTS = {
    "frustum_weight": "frustum",
    "scale_reg": "scale",
    "rotation_reg": "rotation",
    "sh_reg": "sh",
    "opacity_reg": "opacity",
    "consistency_opacity": "consistency_opacity",
    "consistency_depth": "consistency_depth",
}


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """What a training run does, besides the model's sizes (``FeedForwardConfig``)."""

    steps: int = 2000
    """Optimiser steps in all (a resumed run continues up to this count)."""
    resolution: int = 64
    """Side of the square procedural views (a multiple of the patch); feedforward run resizes its input to it."""
    views: int = 8
    """Views rendered of each procedural scene."""
    context: int = 6
    """Of those, views the model sees each step; the others are the targets it is scored on."""
    train_scenes: int = 256
    """Procedural scenes in the training pool (seeds drawn from --seed, all below the held-out seeds)."""
    heldout_scenes: int = 4
    """Held-out scenes (seeds 1,000,000 + i, the same for every run) scored at each evaluation and at the end."""
    lr: float = 5e-4
    """Peak AdamW learning rate (GlobalSplat's)."""
    weight_decay: float = 1e-6
    """AdamW weight decay (GlobalSplat's)."""
    warmup: float = 0.03
    """Share of the steps spent warming the learning rate up; it then decays to 2 % along a cosine."""
    ssim_weight: float = 0.2
    """Weight of D-SSIM against MSE in the rendering loss."""
    clip: float = 1.0
    """Gradient-norm clip."""
    frustum_weight: float = 1e-2
    """Soft frustum constraint: weight of the mean distance of centres outside every context frustum (GlobalSplat's
    1e-2; 0: off)."""
    scale_reg: float = 1e-2
    """Decoder scale regulariser: weight of the anisotropy hinge beyond --max-anisotropy (GlobalSplat's 1e-2)."""
    rotation_reg: float = 1e-2
    """Decoder rotation regulariser: weight of (|q| - 1)^2 of the raw quaternions (GlobalSplat's 1e-2)."""
    sh_reg: float = 1e-2
    """Decoder SH regulariser: weight of the squared excess of SH coefficients over --sh-cap (GlobalSplat's 1e-2)."""
    opacity_reg: float = 0.0
    """Decoder opacity regulariser: weight of the mean opacity (off, as in GlobalSplat's released checkpoint)."""
    sh_cap: float = 5.0
    """SH soft cap of --sh-reg (GlobalSplat's)."""
    max_anisotropy: float = 10.0
    """Largest axis ratio --scale-reg lets a Gaussian have for free."""
    consistency_opacity: float = 1e-3
    """Subset consistency of rendered opacity (GlobalSplat's 1e-3). With this or --consistency-depth on and >= 3
    context views, each step runs the model on two interleaved context subsets sharing the extreme views (two
    forward passes and renders instead of one) and matches their renders in the targets."""
    consistency_depth: float = 1e-2
    """Subset consistency of rendered depth, where both subsets' renders cover a pixel (GlobalSplat's 1e-2)."""
    stage_starts: tuple[int, ...] = (300, 600, 1200)
    """Steps at which coarse-to-fine stages 1, 2, 3 begin (beyond the model's last stage they are ignored)."""
    fade: int = 100
    """Steps over which each stage fades into the next."""
    seed: int = 0
    """Seed of the weights, the training pool and every step's choices."""
    checkpoint_every: int = 500
    """Write the resumable checkpoint (and evaluate) every this many steps, and at the end."""

    def __post_init__(self) -> None:
        if min(self.steps, self.views, self.context, self.train_scenes, self.checkpoint_every, self.resolution) < 1:
            raise SplatpackError("steps, views, context, train_scenes, checkpoint_every and resolution must be >= 1")
        if self.context >= self.views:
            raise SplatpackError(f"context {self.context} leaves no target view out of {self.views} views")
        if self.heldout_scenes < 0 or self.seed < 0:
            raise SplatpackError("heldout_scenes and seed must be non-negative")
        weights = [getattr(self, name) for name in LOSS_WEIGHTS]
        if min(weights) < 0 or not all(math.isfinite(v) for v in weights):
            raise SplatpackError(f"the loss weights ({', '.join(LOSS_WEIGHTS)}) must be finite and non-negative")
        if not (self.sh_cap > 0 and self.max_anisotropy >= 1):
            raise SplatpackError("sh_cap must be positive and max_anisotropy at least 1")

    def loss_weights(self):
        """The ``losses.LossWeights`` of these settings."""
        from splatpack.feedforward.losses import LossWeights  # torch: not needed to parse the command line

        return LossWeights(**{field: getattr(self, name) for name, field in LOSS_WEIGHTS.items()},
                           sh_cap=self.sh_cap, max_anisotropy=self.max_anisotropy)  # fmt: skip

    def curriculum(self, cfg: FeedForwardConfig):
        """The ``train.Curriculum`` of these stage starts, cut to the model's stages."""
        from splatpack.feedforward.train import Curriculum  # torch: not needed to parse the command line

        return Curriculum(starts=self.stage_starts[: cfg.stages], fade=self.fade)

    def lr_at(self, step: int) -> float:
        """Linear warm-up over ``warmup`` of the run, then cosine decay from ``lr`` to 2 % of it."""
        warm = max(1, round(self.warmup * self.steps))
        if step < warm:
            return self.lr * (step + 1) / warm
        t = (step - warm) / max(1, self.steps - warm)
        return self.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))
