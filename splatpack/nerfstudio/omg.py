"""The ``splatpack-omg`` nerfstudio model: Optimized Minimal Gaussians, part 1 (the fewest Gaussians that keep quality).

splatpack's plain 3DGS model (``splatpack-base``) with OMG's training events (ALGORITHMS.md section 2.1), each
switchable; the defaults are the paper's 30k schedule:

- Mini-Splatting densification up to ``stop_split_at`` (15k): 3DGS's gradient clone/split every 100 steps, prune
  opacity < 0.005, **no opacity reset**, and the **blur split** of Gaussians dominating more than H*W/5000
  pixels of some training view;
- **intersection-preserving sampling** at ``sample_at`` (15k): keep ``sample_ratio`` of the Gaussians with a
  nonzero importance, drawn by importance, restarted with k-NN scales, identity rotations and opacity 0.1, and
  the position learning rate rewound to its value at ``sample_lr_rewind_to`` (5k);
- **local-distinctiveness pruning** at ``prune_at`` (20k) at the size preset's tau (XS..XL).

Importance is accumulated over all training views with ``splatpack.render.importance`` at the training
resolution. Mini-Splatting tracks the blur criterion over the views seen between refinements; here it is
evaluated over all training views at each refinement step (one forward pass per view every ``refine_every``
steps instead of one extra per step). Appearance for the LD term is the DC colour (part 2 of the issue
replaces it with OMG's learned static feature), and SH degree follows ``sh_degree`` as in the baseline.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
from gsplat.strategy import ops as gsplat_ops
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes
from nerfstudio.utils.rich_utils import CONSOLE

from splatpack.datasets.cameras import camera_to_viewmats
from splatpack.nerfstudio.convert import NEAR_PLANE
from splatpack.nerfstudio.model import SplatpackModel, SplatpackModelConfig
from splatpack.omg.densify import blur_split_mask
from splatpack.omg.pruning import keep_by_score_mass, ld_scores, tau_of
from splatpack.omg.sampling import restart_values, sample_by_importance
from splatpack.render.importance import Importance, accumulate_importance
from splatpack.scene import SH_C0
from splatpack.train import ops

# A step no run reaches: the event is off.
OFF = -1


@dataclass
class OmgModelConfig(SplatpackModelConfig):
    """splatpack's plain 3DGS model with OMG's sampling, LD pruning and Mini-Splatting densification."""

    _target: type = field(default_factory=lambda: OmgModel)
    sample_at: int = 15000
    """Step of the intersection-preserving sampling (-1: off)."""
    sample_ratio: float = 0.5
    """Share of the Gaussians with a nonzero importance that sampling keeps."""
    sample_lr_rewind_to: int = 5000
    """After sampling, the position learning rate continues from its value at this step (OMG: 5000)."""
    prune_at: int = 20000
    """Step of the local-distinctiveness pruning (-1: off)."""
    preset: str = "XS"
    """Size preset: the share tau of the LD score mass that survives (XS 0.96, S 0.98, M 0.99, L 0.999, XL 0.9999)."""
    ld_lambda: float = 2.0
    """Exponent of the distinctiveness term."""
    ld_neighbourhood: str = "released"
    """Neighbours the distinctiveness compares with: knn, morton (the paper's intent) or released (OMG's code)."""
    ld_neighbours: int = 2
    """K for the knn neighbourhood (morton and released compare with two)."""
    importance_metric: str = "indoor"
    """indoor (sum of blending weights) or outdoor (mean weight per covered pixel over the views it leads)."""
    blur_split: bool = True
    """Mini-Splatting's forced split of Gaussians that dominate more than H*W/5000 pixels of a view."""
    importance_cameras_per_chunk: int = 4
    """Training views rendered at once when accumulating importance (memory bound)."""

    # Mini-Splatting's densification: 3DGS's thresholds, no opacity reset; no SOG grid, loss or log positions.
    sog_grid: bool = False
    smoothness_lambda: float = 0.0
    log_positions: bool = False
    refine_every: int = 100
    densify_grad_thresh: float = 2e-4
    cull_alpha_thresh: float = 0.005
    densify_size_thresh: float = 0.01
    reset_alpha_every: int = 0


class OmgModel(SplatpackModel):
    config: OmgModelConfig

    def populate_modules(self):
        super().populate_modules()
        tau_of(self.config.preset)  # a bad preset fails at start-up, not at the pruning step
        self._schedulers = {}
        self._train_cameras = None
        self._generator = torch.Generator().manual_seed(self.config.seed)
        self.omg_events: list[tuple[str, int, int, int]] = []  # (event, step, Gaussians before, after)
        self.importance_seconds = 0.0  # wall time spent accumulating importance (the goal: < 10 % of training)

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> list[TrainingCallback]:
        callbacks = super().get_training_callbacks(training_callback_attributes)
        optimizers = training_callback_attributes.optimizers
        pipeline = training_callback_attributes.pipeline
        if optimizers is not None:
            self._schedulers = optimizers.schedulers
        if pipeline is not None:
            self._train_cameras = pipeline.datamanager.train_dataset.cameras
        return callbacks

    # ------------------------------------------------------------------ importance

    @torch.no_grad()
    def training_view_importance(self) -> list[tuple[int, int, Importance]]:
        """Importance over all training views at the current training resolution, one entry per image size."""
        if self._train_cameras is None:
            raise RuntimeError("OMG's importance needs the training cameras (set when training starts)")
        start = time.perf_counter()
        # A copy: rescaling truncates odd image sizes, so scaling the dataset's cameras down and back would not
        # restore them.
        cameras = copy.deepcopy(self._train_cameras).to(self.device)
        scale = self._get_downscale_factor()
        cameras.rescale_output_resolution(1 / scale)
        widths, heights = cameras.width.reshape(-1).tolist(), cameras.height.reshape(-1).tolist()
        viewmats = camera_to_viewmats(cameras.camera_to_worlds)
        Ks = cameras.get_intrinsics_matrices()
        means, quats = self.means.detach(), self.quats.detach()
        scales = torch.exp(self.scales.detach())
        opacities = torch.sigmoid(self.opacities.detach()).reshape(-1)
        results = []
        for w, h in sorted(set(zip(widths, heights))):
            views = torch.tensor([i for i, size in enumerate(zip(widths, heights)) if size == (w, h)])
            imp = accumulate_importance(
                means, quats, scales, opacities, viewmats[views], Ks[views], int(w), int(h),
                cameras_per_chunk=self.config.importance_cameras_per_chunk,
                near_plane=NEAR_PLANE, rasterize_mode=self.config.rasterize_mode,
            )  # fmt: skip
            results.append((int(w), int(h), imp))
        self.importance_seconds += time.perf_counter() - start
        return results

    def importance_score(self) -> torch.Tensor:
        """OMG's importance (the configured metric) of every Gaussian over the training views."""
        return sum(imp.score(self.config.importance_metric) for _, _, imp in self.training_view_importance())

    # ------------------------------------------------------------------ events

    def step_post_backward(self, step):
        refines = self._refines_at(step)
        super().step_post_backward(step)
        cfg = self.config
        if cfg.blur_split and refines:
            self.blur_split()
        if step == cfg.sample_at:
            self.sample()
        if step == cfg.prune_at:
            self.prune_ld()

    def _log(self, event: str, before: int) -> None:
        self.omg_events.append((event, self.step, before, self.num_points))
        CONSOLE.log(
            f"OMG {event} at step {self.step}: {before} -> {self.num_points} Gaussians "
            f"(importance so far {self.importance_seconds:.1f} s)"
        )

    @torch.no_grad()
    def blur_split(self) -> int:
        """Force-split the Gaussians that dominate too large a share of some training view; returns how many."""
        mask = None
        for w, h, imp in self.training_view_importance():
            m = blur_split_mask(imp.dominant_max, w, h)
            mask = m if mask is None else mask | m
        count = int(mask.sum())
        if count:
            gsplat_ops.split(self.gauss_params, self.optimizers, self.strategy_state, mask.to(self.device))
        self._log("blur_split", self.num_points - count)
        return count

    @torch.no_grad()
    def sample(self) -> int:
        """Intersection-preserving sampling: keep ``sample_ratio`` of the important Gaussians and restart them.

        The survivors are a fresh start (Mini-Splatting re-creates them): new values for scales, rotations and
        opacities, positions and colours kept, and zero optimizer moments and densification statistics for all.
        """
        before = self.num_points
        keep = sample_by_importance(self.importance_score().cpu(), self.config.sample_ratio, self._generator)
        keep = keep.to(self.device)
        values = {name: p.detach()[keep] for name, p in self.gauss_params.items()}
        values.update(restart_values(self.means.detach()[keep]))
        ops.remove(
            self.gauss_params,
            self.optimizers,
            self.strategy_state,
            torch.ones(before, dtype=torch.bool, device=self.device),
        )
        ops.append(self.gauss_params, self.optimizers, self.strategy_state, values)
        scheduler = self._schedulers.get("means")
        if scheduler is not None:
            # OMG continues with update_learning_rate(step - sample_at + rewind_to): move the schedule back.
            scheduler.last_epoch -= self.config.sample_at - self.config.sample_lr_rewind_to
            lrs = [base * fn(scheduler.last_epoch) for base, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
            for group, lr in zip(scheduler.optimizer.param_groups, lrs):
                group["lr"] = lr
            scheduler._last_lr = lrs
        self._log("sample", before)
        return self.num_points

    @torch.no_grad()
    def prune_ld(self) -> int:
        """Local-distinctiveness pruning at the preset's tau; returns the number of Gaussians left."""
        cfg = self.config
        before = self.num_points
        colour = SH_C0 * self.features_dc.detach() + 0.5 if cfg.sh_degree > 0 else torch.sigmoid(self.features_dc)
        scores = ld_scores(
            self.importance_score(), colour.detach(), self.means.detach(),
            lambda_ld=cfg.ld_lambda, neighbourhood=cfg.ld_neighbourhood, k=cfg.ld_neighbours,
        )  # fmt: skip
        keep = keep_by_score_mass(scores, tau_of(cfg.preset))
        ops.select(self.gauss_params, self.optimizers, self.strategy_state, keep.to(self.device))
        self._log("prune", before)
        return self.num_points
