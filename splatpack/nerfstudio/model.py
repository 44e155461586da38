"""The ``splatpack`` nerfstudio model: splatfacto rendered through ``splatpack.render``, with Self-Organizing grids.

It subclasses ``SplatfactoModel`` so everything in nerfstudio that expects splatfacto (``ns-export
gaussian-splat``, ``ns-eval``, ``ns-render``, ``ns-viewer``) keeps working. What changes:

- rendering goes through ``splatpack.render.rasterize`` (gsplat on CUDA, a pure-torch renderer on CPU), and no
  code path calls ``.cuda()``, so training runs on a CPU machine with no extra flags;
- LPIPS is built only when its AlexNet weights are already on disk (torchmetrics would download them);
- Self-Organizing Gaussians (all switchable): square grid, PLAS sorting, the smoothness loss on the sorted
  attribute images, log-space positions. Densification changes N, so the grid is re-squared and re-sorted
  after every refinement step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from gsplat.strategy import DefaultStrategy
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.models.splatfacto import (
    RGB2SH,
    SplatfactoModel,
    SplatfactoModelConfig,
    num_sh_bases,
    random_quat_tensor,
)
from nerfstudio.utils.colors import get_color
from nerfstudio.utils.rich_utils import CONSOLE
from pytorch_msssim import SSIM

from splatpack.datasets.cameras import camera_to_viewmats
from splatpack.metrics import local_lpips
from splatpack.nerfstudio import self_organizing
from splatpack.nerfstudio.convert import NEAR_PLANE, splats_of
from splatpack.nerfstudio.export import export_pipeline
from splatpack.train import ops

# gsplat's DefaultStrategy resets opacities every ``reset_every`` steps; "never" is a step no run reaches.
NEVER = 1 << 62
FEEDFORWARD_PLACEHOLDERS = 16  # Gaussians an init-feedforward model holds until step 0 (a 4 x 4 grid)


@dataclass
class SplatpackModelConfig(SplatfactoModelConfig):
    """splatfacto's options, plus Self-Organizing Gaussians (defaults: the paper's settings)."""

    _target: type = field(default_factory=lambda: SplatpackModel)
    sog_grid: bool = True
    """Keep N a square number and the Gaussians PLAS-sorted into an s x s grid (needed by the smoothness loss)."""
    sort_every: int = 1000
    """Re-sort the grid every this many steps after ``warmup_length`` (and after every densification)."""
    sort_weights: dict[str, float] = field(default_factory=lambda: {"xyz": 1.0, "features_dc": 1.0, "scaling": 1.0})
    """Sort-key weights by SOG attribute name (xyz, features_dc, features_rest, opacity, scaling, rotation);
    the paper sorts by z-normalised position, DC colour and linear scale."""
    sort_improvement_break: float = 1e-4
    """PLAS stops a radius when an iteration improves its objective by less than this fraction."""
    smoothness_lambda: float = 1.0
    """Weight of the smoothness loss; 0 turns it off."""
    smoothness_weights: dict[str, float] = field(default_factory=lambda: {"opacities": 1.0, "quats": 10.0})
    """Attribute images (raw parameters, by gauss_params name) the loss smooths, and their weights (normalised)."""
    log_positions: bool = True
    """Optimise positions in log space, ``y = sign(x) log1p|x|``."""
    seed: int = 0
    """Seed of the sorting's random shuffles."""
    init: Literal["seed", "random", "feedforward"] = "seed"
    """Where the Gaussians start: the data's seed point cloud (a random cloud when it has none or with
    random_init), a random cloud (num_random, random_scale), or the feed-forward model's prediction from the
    training views, in the dataparser's frame (placed when training starts: step 0 replaces placeholders)."""
    init_checkpoint: Path | None = None
    """Feed-forward checkpoint for init feedforward (a run's model.pt; default: the shipped one, none yet)."""
    init_views: int = 8
    """Training views (evenly spread) the feed-forward model reads for init feedforward."""
    export_at_end: bool = True
    """Write .ply/.spz/.sog (in the input data's own frame) and a quality report when training finishes."""
    export_formats: tuple[str, ...] = ("ply", "spz", "sog")
    """Formats written by the end-of-training export."""
    export_sog_preset: str = "tiny"
    """SOG quality preset of that export (tiny, small, balanced, high): trained SH rest coefficients are small,
    and the tiny palette (1/16 of splat-transform's) costs ~0.05 dB of held-out PSNR (see BENCHMARKS.md)."""

    # SOG's densification (paper, section "Training"): fewer, later refinements and a stricter prune.
    refine_every: int = 1000
    densify_grad_thresh: float = 7e-5
    use_absgrad: bool = False
    cull_alpha_thresh: float = 0.1
    densify_size_thresh: float = 0.1
    reset_alpha_every: int = 0
    """Every this many refinement steps, reset the alpha; 0 never resets (SOG)."""


def features_dc_of(rgb: torch.Tensor, sh_degree: int) -> torch.Tensor:
    """The ``features_dc`` that render colour ``rgb``: the SH DC coefficient, or at SH degree 0 (where splatfacto
    renders sigmoid(features_dc)) its logit."""
    return RGB2SH(rgb) if sh_degree > 0 else torch.logit(rgb, eps=1e-10)


def _local_lpips():
    """torchmetrics LPIPS when the AlexNet weights are already on disk, else None (it would download them)."""
    model, why_not = local_lpips()
    if model is None:
        CONSOLE.log(f"[yellow]LPIPS is skipped in metrics: {why_not}")
    return model


class SplatpackModel(SplatfactoModel):
    config: SplatpackModelConfig

    # ------------------------------------------------------------------ set-up

    @property
    def starts_from_seed_cloud(self) -> bool:
        """Whether training starts from the data's seed points (not random points or a feed-forward prediction)."""
        cfg = self.config
        return self.seed_points is not None and not cfg.random_init and cfg.init == "seed"

    def populate_modules(self):
        cfg = self.config
        if cfg.smoothness_lambda > 0 and not cfg.sog_grid:
            raise ValueError("the smoothness loss needs the square grid: set sog_grid True or smoothness_lambda 0")
        if self.starts_from_seed_cloud:
            means = self.seed_points[0].float()
        else:
            # init feedforward: a few placeholders, replaced at step 0 (_init_from_feedforward) once the model
            # sees the training views the prediction needs.
            count = FEEDFORWARD_PLACEHOLDERS if cfg.init == "feedforward" else cfg.num_random
            means = (torch.rand((count, 3)) - 0.5) * cfg.random_scale
        distances, _ = self.k_nearest_sklearn(means, 3)
        scales = torch.log(torch.from_numpy(distances).mean(dim=-1, keepdim=True).repeat(1, 3))
        n = means.shape[0]
        quats = random_quat_tensor(n)
        dim_sh = num_sh_bases(cfg.sh_degree)
        if self.starts_from_seed_cloud and self.seed_points[1].shape[0] > 0:
            rgb = self.seed_points[1].float() / 255
            # sh_degree 0 renders sigmoid(features_dc), as splatfacto does.
            features_dc = features_dc_of(rgb, cfg.sh_degree)
        else:
            features_dc = torch.rand(n, 3)
        features_rest = torch.zeros(n, dim_sh - 1, 3)
        opacities = torch.logit(0.1 * torch.ones(n, 1))
        if cfg.log_positions:
            means = self_organizing.log_encode(means)
        self.gauss_params = torch.nn.ParameterDict(
            {
                "means": torch.nn.Parameter(means),
                "scales": torch.nn.Parameter(scales),
                "quats": torch.nn.Parameter(quats),
                "features_dc": torch.nn.Parameter(features_dc),
                "features_rest": torch.nn.Parameter(features_rest),
                "opacities": torch.nn.Parameter(opacities),
            }
        )
        self.camera_optimizer = cfg.camera_optimizer.setup(num_cameras=self.num_train_data, device="cpu")

        from torchmetrics.image import PeakSignalNoiseRatio

        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.ssim = SSIM(data_range=1.0, size_average=True, channel=3)
        self.lpips = _local_lpips()
        self.step = 0
        self.optimizers = {}
        self.crop_box = None
        if cfg.background_color == "random":
            # viser's default background: what eval and the viewer show.
            self.background_color = torch.tensor([0.1490, 0.1647, 0.2157])
        else:
            self.background_color = get_color(cfg.background_color)
        if cfg.use_bilateral_grid:
            from nerfstudio.model_components.lib_bilagrid import BilateralGrid

            self.bil_grids = BilateralGrid(
                num=self.num_train_data, grid_X=cfg.grid_shape[0], grid_Y=cfg.grid_shape[1], grid_W=cfg.grid_shape[2]
            )
        resets = cfg.reset_alpha_every > 0
        self.strategy = DefaultStrategy(
            prune_opa=cfg.cull_alpha_thresh,
            grow_grad2d=cfg.densify_grad_thresh,
            grow_scale3d=cfg.densify_size_thresh,
            grow_scale2d=cfg.split_screen_size,
            prune_scale3d=cfg.cull_scale_thresh,
            prune_scale2d=cfg.cull_screen_size,
            refine_scale2d_stop_iter=cfg.stop_screen_size_at,
            refine_start_iter=cfg.warmup_length,
            refine_stop_iter=cfg.stop_split_at,
            reset_every=cfg.reset_alpha_every * cfg.refine_every if resets else NEVER,
            refine_every=cfg.refine_every,
            pause_refine_after_reset=self.num_train_data + cfg.refine_every if resets else 0,
            absgrad=cfg.use_absgrad,
            revised_opacity=False,
            verbose=True,
        )
        self.strategy_state = self.strategy.initialize_state(scene_scale=1.0)
        if cfg.sog_grid:
            self.square_and_sort()

    # ------------------------------------------------------------------ parameters

    @property
    def means(self):
        """World-space centres (decoded from log space when ``log_positions``)."""
        raw = self.gauss_params["means"]
        return self_organizing.log_decode(raw) if self.config.log_positions else raw

    def grid(self, name: str) -> torch.Tensor:
        """The raw parameter ``name`` as its (s, s, C) grid image."""
        return self_organizing.as_grid(self.gauss_params[name])

    # ------------------------------------------------------------------ Self-Organizing grid

    @torch.no_grad()
    def square_and_sort(self) -> None:
        """Drop the least opaque Gaussians down to a square count, then PLAS-sort them into the grid."""
        from splatpack.sort import self_organizing_key
        from splatpack.sort.plas import plas_sort

        keep = self_organizing.square_keep_indices(self.gauss_params["opacities"].detach().reshape(-1))
        splats = splats_of(self)[keep.cpu()]
        s = self_organizing.grid_side(len(splats))
        key = self_organizing_key(splats, self.config.sort_weights)
        order = plas_sort(
            key.reshape(s, s, -1),
            seed=self.config.seed + self.step,
            improvement_break=self.config.sort_improvement_break,
        ).reshape(-1)
        ops.select(self.gauss_params, self.optimizers, self.strategy_state, keep[order.to(keep.device)])

    def _refines_at(self, step: int) -> bool:
        """Whether gsplat's DefaultStrategy grows/prunes Gaussians after this step (its own condition)."""
        st = self.strategy
        return (
            step < st.refine_stop_iter
            and step > st.refine_start_iter
            and step % st.refine_every == 0
            and step % st.reset_every >= st.pause_refine_after_reset
        )

    def step_post_backward(self, step):
        assert step == self.step
        refines = self._refines_at(step)
        means = self.gauss_params["means"]
        if refines and self.config.log_positions:
            # Splitting samples new centres around world positions: hand the strategy world-space means.
            means.data = self_organizing.log_decode(means.data)
        super().step_post_backward(step)
        if refines and self.config.log_positions:
            means = self.gauss_params["means"]
            means.data = self_organizing.log_encode(means.data)
        cfg = self.config
        if cfg.sog_grid and (refines or (step > cfg.warmup_length and step % cfg.sort_every == 0)):
            self.square_and_sort()

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> list[TrainingCallback]:
        callbacks = super().get_training_callbacks(training_callback_attributes)
        if self.config.export_at_end and training_callback_attributes.trainer is not None:
            callbacks.append(
                TrainingCallback(
                    [TrainingCallbackLocation.AFTER_TRAIN],
                    self._export_after_training,
                    args=[training_callback_attributes.pipeline, training_callback_attributes.trainer],
                )
            )
        if self.config.init == "feedforward" and training_callback_attributes.pipeline is not None:
            # Step 0 only: a resumed run starts later and keeps its trained Gaussians.
            callbacks.append(
                TrainingCallback(
                    [TrainingCallbackLocation.BEFORE_TRAIN_ITERATION],
                    self._init_from_feedforward,
                    iters=(0,),
                    args=[training_callback_attributes.pipeline],
                )
            )
        return callbacks

    @torch.no_grad()
    def _init_from_feedforward(self, pipeline, step):
        """Replace every Gaussian by the feed-forward prediction (``splatpack.feedforward.nerfstudio_init``)."""
        from splatpack.feedforward.nerfstudio_init import pipeline_splats
        from splatpack.scene import sh0_to_rgb

        cfg = self.config
        splats = pipeline_splats(pipeline, cfg.init_checkpoint, cfg.init_views, self.device)
        splats = splats.with_sh_degree(cfg.sh_degree)
        values = {name: p.new_zeros((len(splats), *p.shape[1:])) for name, p in self.gauss_params.items()}
        values.update({k: v.to(self.device) for k, v in ops.params_from_splats(splats, "splatfacto").items()})
        if cfg.sh_degree == 0:
            rgb = sh0_to_rgb(values["features_dc"]).clamp(1e-3, 1 - 1e-3)
            values["features_dc"] = features_dc_of(rgb, 0)
        if cfg.log_positions:
            values["means"] = self_organizing.log_encode(values["means"])
        before = self.num_points
        everything = torch.ones(before, dtype=torch.bool, device=self.device)
        ops.remove(self.gauss_params, self.optimizers, self.strategy_state, everything)
        ops.append(self.gauss_params, self.optimizers, self.strategy_state, values)
        if cfg.sog_grid:
            self.square_and_sort()
        CONSOLE.log(f"feed-forward init: {before} placeholders -> {self.num_points} predicted Gaussians")

    def _export_after_training(self, pipeline, trainer, step):
        out_dir = Path(trainer.base_dir) / "splatpack_export"
        report = export_pipeline(
            pipeline, out_dir, formats=self.config.export_formats, sog_preset=self.config.export_sog_preset
        )
        for name, entry in report["files"].items():
            quality = f", held-out PSNR {entry['psnr']:.2f} SSIM {entry['ssim']:.4f}" if "psnr" in entry else ""
            CONSOLE.log(f"splatpack export {out_dir / name}: {entry['bytes']} bytes{quality}")

    # ------------------------------------------------------------------ rendering

    def active_sh_degree(self) -> int:
        """SH degree rendered at the current step (+1 every ``sh_degree_interval`` steps up to ``sh_degree``)."""
        return min(self.step // self.config.sh_degree_interval, self.config.sh_degree)

    def get_outputs(self, camera: Cameras) -> dict[str, torch.Tensor | list]:
        from splatpack.render import rasterize

        if not isinstance(camera, Cameras):
            return {}
        if self.training:
            assert camera.shape[0] == 1, "Only one camera at a time"
            camera_to_worlds = self.camera_optimizer.apply_to_camera(camera)
        else:
            camera_to_worlds = camera.camera_to_worlds

        crop_ids = None
        if self.crop_box is not None and not self.training:
            crop_ids = self.crop_box.within(self.means).squeeze()
            if crop_ids.sum() == 0:
                return self.get_empty_outputs(
                    int(camera.width.item()), int(camera.height.item()), self.background_color
                )

        def crop(t):
            return t if crop_ids is None else t[crop_ids]

        colors = torch.cat((crop(self.features_dc)[:, None, :], crop(self.features_rest)), dim=1)
        if self.config.sh_degree > 0:
            sh_degree = self.active_sh_degree()
        else:
            colors = torch.sigmoid(colors[:, 0, :])
            sh_degree = None

        scale_fac = self._get_downscale_factor()
        camera.rescale_output_resolution(1 / scale_fac)
        viewmats = camera_to_viewmats(camera_to_worlds)
        Ks = camera.get_intrinsics_matrices().to(self.device)
        width, height = int(camera.width.item()), int(camera.height.item())
        self.last_size = (height, width)
        camera.rescale_output_resolution(scale_fac)

        out = rasterize(
            crop(self.means),
            crop(self.quats),
            torch.exp(crop(self.scales)),
            torch.sigmoid(crop(self.opacities)).squeeze(-1),
            colors,
            viewmats,
            Ks,
            width,
            height,
            sh_degree=sh_degree,
            near_plane=NEAR_PLANE,
            far_plane=1e10,
            rasterize_mode=self.config.rasterize_mode,
            absgrad=self.training and self.config.use_absgrad,
        )
        self.info = out.info
        if self.training:
            self.strategy.step_pre_backward(
                self.gauss_params, self.optimizers, self.strategy_state, self.step, self.info
            )

        background = self._get_background_color()
        alpha = out.alpha
        rgb = torch.clamp(out.rgb + (1 - alpha) * background, 0.0, 1.0)
        if self.config.use_bilateral_grid and self.training:
            if camera.metadata is not None and "cam_idx" in camera.metadata:
                rgb = self._apply_bilateral_grid(rgb, camera.metadata["cam_idx"], height, width)
        depth = None
        if self.config.output_depth_during_training or not self.training:
            depth = torch.where(alpha > 0, out.depth, out.depth.detach().max()).squeeze(0)
        if background.shape[0] == 3 and not self.training:
            background = background.expand(height, width, 3)
        return {"rgb": rgb.squeeze(0), "depth": depth, "accumulation": alpha.squeeze(0), "background": background}

    # ------------------------------------------------------------------ losses and metrics

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> dict[str, torch.Tensor]:
        loss_dict = super().get_loss_dict(outputs, batch, metrics_dict)
        if self.training and self.config.smoothness_lambda > 0:
            grids = {name: self.grid(name) for name in self.config.smoothness_weights}
            loss_dict["sog_smoothness"] = self.config.smoothness_lambda * self_organizing.smoothness_loss(
                grids, self.config.smoothness_weights
            )
        return loss_dict

    def get_image_metrics_and_images(self, outputs, batch):
        if self.lpips is not None:
            return super().get_image_metrics_and_images(outputs, batch)
        gt = self.composite_with_background(self.get_gt_img(batch["image"]), outputs["background"])
        pred = outputs["rgb"]
        combined = torch.cat([gt, pred], dim=1)
        gt_b, pred_b = gt.permute(2, 0, 1)[None], pred.permute(2, 0, 1)[None]
        metrics = {"psnr": float(self.psnr(gt_b, pred_b).item()), "ssim": float(self.ssim(gt_b, pred_b))}
        return metrics, {"img": combined}
