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
steps instead of one extra per step).

Part 2, the compact attributes (section 2.4-2.5), also switchable:

- at ``fields_at`` (15k) the MLP fields (``splatpack.omg.fields``) take over DC colour, opacity and the SH bands;
  each Gaussian keeps a static feature T (started from its colour) and a view feature V (zeros). Before the
  switch OMG trains SH degree 0; after it the degree rises by one every ``sh_degree_interval`` steps. Ours, not
  the paper's: for ``fields_warm_start_steps`` the new fields are first fitted to the Gaussians' current colours
  and opacities (no rendering, a second or two), so short runs do not spend their remaining steps recovering
  from random heads; the fields see positions rounded to half precision (straight through), exactly what a
  ``.spk`` file stores, so decoding reproduces the trained colours;
- at ``svq_at`` (29k) scales, rotations and [T, V] are replaced by sub-vector codebooks (``splatpack.quant.svq``);
  indices and codebooks are frozen (OMG fine-tunes its codebooks at lr 1e-8, i.e. not at all), positions and
  fields keep training;
- ``compact_scene()`` is the model as a ``CompactScene``, what ``.spk`` stores.

With the fields off, LD pruning compares DC colours; with them on, the learned static features T, as OMG does.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from gsplat.strategy import ops as gsplat_ops
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes
from nerfstudio.utils.rich_utils import CONSOLE

from splatpack.datasets.cameras import camera_to_viewmats
from splatpack.nerfstudio.convert import NEAR_PLANE
from splatpack.nerfstudio.model import SplatpackModel, SplatpackModelConfig, features_dc_of
from splatpack.omg.compact import CompactScene, canonical_quats, codebook_cap
from splatpack.omg.densify import blur_split_mask
from splatpack.omg.depth_reinit import per_view_counts, view_points
from splatpack.omg.field_bake import FieldConfig
from splatpack.omg.fields import AttributeFields
from splatpack.omg.pruning import keep_by_score_mass, ld_scores, tau_of
from splatpack.omg.sampling import restart_values, sample_by_importance
from splatpack.quant import svq
from splatpack.quant.svq import SvqCode
from splatpack.render import rasterize
from splatpack.render.importance import Importance, accumulate_importance
from splatpack.scene import SH_C0, SH_REST_COUNT, rgb_to_sh0
from splatpack.train import ops

# A step no run reaches: the event is off.
OFF = -1
# Per-Gaussian learned features of the fields: static T and view V (gauss_params names).
FEATURES = ("features_static", "features_view")
# What SVQ quantizes, by gauss_params name (features = [T, V]), and the config field holding (length, entries).
SVQ_TARGETS = {"scales": "svq_scale", "quats": "svq_rotation", "features": "svq_appearance"}


@dataclass
class OmgModelConfig(SplatpackModelConfig):
    """splatpack's plain 3DGS model with OMG's sampling, LD pruning and Mini-Splatting densification."""

    _target: type = field(default_factory=lambda: OmgModel)
    depth_reinit_at: tuple[int, ...] = (5000, 10000)
    """Steps of Mini-Splatting's depth re-initialisation, which re-creates every Gaussian from points drawn on the
    rendered depth of the training views (OMG: 5k and 10k; empty: off)."""
    depth_reinit_points: int = 3_500_000
    """Points (= Gaussians) each depth re-initialisation creates, over all training views (Mini-Splatting: 3.5M;
    0: as many as there are Gaussians at that step)."""
    depth_reinit_from_random: bool = False
    """Depth re-initialisation also when training did not start from a seed cloud (random points, or ``init
    feedforward``). Off: the rendered depth of a random start is still noise at 1/6 of a run (fox, 1000 steps,
    seed 42: 14.64 dB with it against 23.29 dB without; Mini-Splatting always starts from SfM points), and
    re-creating a feed-forward start would discard it."""
    sample_at: int = 15000
    """Step of the intersection-preserving sampling (-1: off)."""
    sample_ratio: float = 0.5
    """Share of the Gaussians with a nonzero importance that sampling keeps."""
    sample_restart: bool = True
    """Restart the sampled Gaussians as OMG does (k-NN scales, identity rotations, opacity 0.1, moments zeroed,
    position LR rewound); False keeps their trained values and optimizer state (for short runs, which have no
    15k steps left to re-converge)."""
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
    fields_at: int = 15000
    """Step the MLP fields take over DC colour, opacity and SH (-1: raw per-Gaussian attributes throughout)."""
    fields: FieldConfig = field(default_factory=FieldConfig)
    """Sizes of the fields (OMG's: 16 frequencies, 64 wide, 13-D space feature, T and V of 3)."""
    fields_warm_start_steps: int = 200
    """Steps fitting new fields to the current colours and opacities at the switch (0: random heads, as OMG)."""
    fields_lr_warmup: int = 100
    """Steps over which the fields' learning rate rises linearly from 1 % to its configured value."""
    fields_lr_milestones: tuple[int, ...] = (1000, 3500, 6000)
    """Steps after ``fields_at`` at which the fields' learning rate is multiplied by ``fields_lr_gamma``."""
    fields_lr_gamma: float = 0.33
    """Factor of each learning-rate milestone."""
    svq_at: int = 29000
    """Step of the sub-vector quantization of scales, rotations and features (-1: off)."""
    svq_scale: tuple[int, int] = (1, 64)
    """(sub-vector length, codebook entries) for the log scales (OMG: 3 x 1-D x 64)."""
    svq_rotation: tuple[int, int] = (2, 512)
    """... for the rotations (OMG: 2 x 2-D x 512)."""
    svq_appearance: tuple[int, int] = (2, 1024)
    """... for [T, V] (OMG: 3 x 2-D x 1024); without fields, for DC colour, opacity and SH rest."""
    svq_sh_rest: tuple[int, int] = (45, 4096)
    """... for the SH rest without fields: one palette sub-vector, as ``CompactScene.from_splats`` (23 two-value
    sub-vectors would cost ~4x the bytes at the same PSNR)."""
    svq_rows_per_entry: int = 16
    """Codebooks hold at most N / this many entries (a power of two): OMG's sizes suit ~500k Gaussians; on a
    10k scene a 1024-entry codebook would cost more bytes than the indices it saves."""

    export_formats: tuple[str, ...] = ("ply", "spz", "sog", "spk")
    """Formats written by the end-of-training export (.spk: the compact scene itself)."""

    # Mini-Splatting's densification: 3DGS's thresholds, no opacity reset; no SOG grid, loss or log positions.
    sog_grid: bool = False
    smoothness_lambda: float = 0.0
    log_positions: bool = False
    refine_every: int = 100
    densify_grad_thresh: float = 2e-4
    cull_alpha_thresh: float = 0.005
    densify_size_thresh: float = 0.01
    reset_alpha_every: int = 0


def _map(code: SvqCode | np.ndarray, fn) -> SvqCode | np.ndarray:
    """An elementwise function of an attribute's values: applied to the codebook entries of an SVQ code."""

    def apply(a: np.ndarray) -> np.ndarray:
        return fn(torch.from_numpy(a)).numpy()

    return SvqCode([apply(b) for b in code.codebooks], code.indices) if isinstance(code, SvqCode) else apply(code)


class OmgModel(SplatpackModel):
    config: OmgModelConfig

    def populate_modules(self):
        super().populate_modules()
        cfg = self.config
        tau_of(cfg.preset)  # a bad preset fails at start-up, not at the pruning step
        later = [e for e in (cfg.stop_split_at, cfg.sample_at, cfg.prune_at) if e != OFF]
        following = [e for e in (cfg.sample_at, cfg.fields_at, cfg.prune_at, cfg.svq_at) if e != OFF]
        if cfg.depth_reinit_at and following and max(cfg.depth_reinit_at) >= min(following):
            raise ValueError("depth re-initialisation re-creates every Gaussian: it must come before sampling, "
                             "the fields, pruning and SVQ")  # fmt: skip
        if cfg.svq_at != OFF and later and cfg.svq_at <= max(later):
            raise ValueError(
                "SVQ freezes the Gaussians' attributes: svq_at must come after densification, sampling and pruning"
            )
        self._schedulers = {}
        self._train_cameras = None
        self._train_images = None  # the datamanager's cached training images (depth re-initialisation's colours)
        self._generator = torch.Generator().manual_seed(cfg.seed)
        self.omg_events: list[tuple[str, int, int, int]] = []  # (event, step, Gaussians before, after)
        self.importance_seconds = 0.0  # wall time spent accumulating importance (the goal: < 10 % of training)
        n = self.num_points
        for name in FEATURES:  # unused until the fields switch on; here from the start so optimizers know them
            self.gauss_params[name] = torch.nn.Parameter(torch.zeros(n, 3))
        self.fields = AttributeFields(FieldConfig(**{**cfg.fields.to_dict(), "sh_rest": SH_REST_COUNT[cfg.sh_degree]}))
        self.register_buffer("fields_on", torch.tensor(False))  # in the checkpoint, as are the SVQ tensors
        # Frozen SVQ codebooks and indices by name ("<target>_<sub-vector>" / "<target>"), in the checkpoint.
        self.svq_books = torch.nn.ParameterDict()
        self.svq_indices = torch.nn.ParameterDict()
        self._field_cache = None

    # ------------------------------------------------------------------ compact attributes

    @property
    def fields_active(self) -> bool:
        """Whether the MLP fields give colour, opacity and SH (after ``fields_at``)."""
        return bool(self.fields_on)

    def get_gaussian_param_groups(self):
        groups = super().get_gaussian_param_groups()
        return groups | {name: [self.gauss_params[name]] for name in FEATURES}

    def get_param_groups(self):
        return super().get_param_groups() | {"fields": list(self.fields.parameters())}

    def active_sh_degree(self) -> int:
        cfg = self.config
        if cfg.fields_at == OFF:
            return super().active_sh_degree()
        if self.step < cfg.fields_at:  # OMG trains view-independent colour until the fields exist
            return 0
        return min((self.step - cfg.fields_at) // cfg.sh_degree_interval, cfg.sh_degree)

    def _quantized(self, target: str) -> torch.Tensor:
        books = [self.svq_books[f"{target}_{s}"] for s in range(self.svq_indices[target].shape[1])]
        return svq.lookup(books, self.svq_indices[target])

    def _raw_or_quantized(self, name: str) -> torch.Tensor:
        raw = self.gauss_params[name]
        return self._quantized(name).reshape(raw.shape) if name in self.svq_indices else raw

    @property
    def scales(self):
        return self._raw_or_quantized("scales")

    @property
    def quats(self):
        return self._raw_or_quantized("quats")

    @property
    def features(self) -> torch.Tensor:
        """(N, 6) [T, V], the fields' per-Gaussian input."""
        if "features" in self.svq_indices:
            return self._quantized("features")
        return torch.cat([self.gauss_params[name] for name in FEATURES], dim=1)

    def field_positions(self) -> torch.Tensor:
        """Positions as the fields see them: rounded to half precision, what ``.spk`` stores (gradients pass)."""
        means = self.means
        return means + (means.half().float() - means).detach()

    def field_attributes(self) -> dict[str, torch.Tensor]:
        """features_dc (N, 3), opacities (N, 1), features_rest (N, K, 3) from the fields."""
        if self._field_cache is not None:
            return self._field_cache
        dc, opacity, rest = self.fields(self.field_positions(), self.features)
        return {"features_dc": dc, "opacities": opacity[:, None], "features_rest": rest}

    def _appearance(self, name: str) -> torch.Tensor:
        if self.fields_active:
            return self.field_attributes()[name]
        return self._raw_or_quantized(name)

    @property
    def features_dc(self):
        return self._appearance("features_dc")

    @property
    def features_rest(self):
        return self._appearance("features_rest")

    @property
    def opacities(self):
        return self._appearance("opacities")

    def get_outputs(self, camera):
        # One evaluation of the fields per render, shared by the three appearance properties.
        self._field_cache = self.field_attributes() if self.fields_active else None
        try:
            return super().get_outputs(camera)
        finally:
            self._field_cache = None

    def load_state_dict(self, state, **kwargs):
        # Codebooks and indices exist only after SVQ: make room for the checkpoint's before loading it.
        for key, value in state.items():
            for prefix, store in (("svq_books.", self.svq_books), ("svq_indices.", self.svq_indices)):
                if key.startswith(prefix):
                    store[key[len(prefix) :]] = torch.nn.Parameter(torch.zeros_like(value), requires_grad=False)
        return super().load_state_dict(state, **kwargs)

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
            self._train_images = getattr(pipeline.datamanager, "cached_train", None)
        return callbacks

    # ------------------------------------------------------------------ importance

    def _training_views(self) -> list[tuple[int, int, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The training views at the current training resolution, grouped by image size: (width, height, view
        indices, viewmats, Ks) per size."""
        if self._train_cameras is None:
            raise RuntimeError("OMG's importance needs the training cameras (set when training starts)")
        # A copy: rescaling truncates odd image sizes, so scaling the dataset's cameras down and back would not
        # restore them.
        cameras = copy.deepcopy(self._train_cameras).to(self.device)
        cameras.rescale_output_resolution(1 / self._get_downscale_factor())
        widths, heights = cameras.width.reshape(-1).tolist(), cameras.height.reshape(-1).tolist()
        viewmats = camera_to_viewmats(cameras.camera_to_worlds)
        Ks = cameras.get_intrinsics_matrices()
        groups = []
        for w, h in sorted(set(zip(widths, heights))):
            views = torch.tensor([i for i, size in enumerate(zip(widths, heights)) if size == (w, h)])
            groups.append((int(w), int(h), views, viewmats[views], Ks[views]))
        return groups

    def _activated(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Detached means, quaternions, scales and opacities (N,), as the renderer takes them."""
        opacities = torch.sigmoid(self.opacities.detach()).reshape(-1)
        return self.means.detach(), self.quats.detach(), torch.exp(self.scales.detach()), opacities

    @torch.no_grad()
    def training_view_importance(self) -> list[tuple[int, int, Importance]]:
        """Importance over all training views at the current training resolution, one entry per image size."""
        start = time.perf_counter()
        activated = self._activated()
        results = []
        for w, h, _, viewmats, Ks in self._training_views():
            imp = accumulate_importance(
                *activated, viewmats, Ks, w, h,
                cameras_per_chunk=self.config.importance_cameras_per_chunk,
                near_plane=NEAR_PLANE, rasterize_mode=self.config.rasterize_mode,
            )  # fmt: skip
            results.append((w, h, imp))
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
        if step in cfg.depth_reinit_at:
            if self.starts_from_seed_cloud or cfg.depth_reinit_from_random:
                self.depth_reinit()
            else:
                CONSOLE.log(f"OMG depth re-initialisation skipped at step {step}: training did not start from a "
                            "seed cloud (depth_reinit_from_random=False)")  # fmt: skip
        if step == cfg.sample_at:
            self.sample()
        if step == cfg.fields_at:
            self.switch_to_fields()
        if step == cfg.prune_at:
            self.prune_ld()
        if step == cfg.svq_at:
            self.quantize()
        self._set_fields_lr(step + 1)

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
        """Intersection-preserving sampling: keep ``sample_ratio`` of the important Gaussians and restart them
        (unless ``sample_restart`` is False).

        The survivors are a fresh start (Mini-Splatting re-creates them): new values for scales, rotations and
        opacities, positions and colours kept, and zero optimizer moments and densification statistics for all.
        """
        before = self.num_points
        keep = sample_by_importance(self.importance_score().cpu(), self.config.sample_ratio, self._generator)
        keep = keep.to(self.device)
        if not self.config.sample_restart:
            ops.select(self.gauss_params, self.optimizers, self.strategy_state, keep)
            self._log("sample", before)
            return self.num_points
        values = {name: p.detach()[keep] for name, p in self.gauss_params.items()}
        values.update(restart_values(self.means.detach()[keep]))
        self._replace_all(values)
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

    def _replace_all(self, values: dict[str, torch.Tensor]) -> None:
        """Replace every Gaussian by new ones, ``values`` (M, ...) per parameter, with fresh optimizer moments and
        densification statistics."""
        everything = torch.ones(self.num_points, dtype=torch.bool, device=self.device)
        ops.remove(self.gauss_params, self.optimizers, self.strategy_state, everything)
        ops.append(self.gauss_params, self.optimizers, self.strategy_state, values)

    def _train_image(self, index: int, width: int, height: int) -> torch.Tensor:
        """Training image ``index`` as (height, width, 3) floats in [0, 1] (area-resampled to the render size)."""
        if self._train_images is None:
            raise RuntimeError("depth re-initialisation needs the cached training images (set when training starts)")
        image = self._train_images[index]["image"][..., :3].to(self.device)
        image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        if tuple(image.shape[:2]) != (height, width):
            image = F.interpolate(image.permute(2, 0, 1)[None], size=(height, width), mode="area")[0].permute(1, 2, 0)
        return image

    @torch.no_grad()
    def depth_reinit(self) -> int:
        """Mini-Splatting's depth re-initialisation (``splatpack.omg.depth_reinit``); returns the new count."""
        if len(self.svq_indices):
            raise RuntimeError("depth re-initialisation after SVQ would leave the codebook indices behind")
        before = self.num_points
        groups = self._training_views()
        counts = iter(per_view_counts(self.config.depth_reinit_points or before, sum(len(g[2]) for g in groups)))
        means, quats, scales, opacities = self._activated()
        points, colours = [], []
        for w, h, views, viewmats, Ks in groups:
            for j, index in enumerate(views.tolist()):
                out = rasterize(
                    means, quats, scales, opacities, torch.zeros_like(means), viewmats[j : j + 1], Ks[j : j + 1],
                    w, h, near_plane=NEAR_PLANE, rasterize_mode=self.config.rasterize_mode,
                )  # fmt: skip
                p, c = view_points(
                    out.depth[0, ..., 0], out.alpha[0, ..., 0], self._train_image(index, w, h), viewmats[j], Ks[j],
                    next(counts), self._generator,
                )  # fmt: skip
                points.append(p)
                colours.append(c)
        points, colours = torch.cat(points), torch.cat(colours).clamp(1e-3, 1 - 1e-3)
        if len(points) == 0:
            self._log("depth_reinit (nothing rendered; kept the Gaussians)", before)
            return before
        values = {name: p.new_zeros((len(points), *p.shape[1:])) for name, p in self.gauss_params.items()}
        values["means"] = points
        values["features_dc"] = features_dc_of(colours, self.config.sh_degree)
        values.update(restart_values(points))
        self._replace_all(values)
        self._log("depth_reinit", before)
        return self.num_points

    @torch.no_grad()
    def prune_ld(self) -> int:
        """Local-distinctiveness pruning at the preset's tau; returns the number of Gaussians left."""
        cfg = self.config
        before = self.num_points
        if self.fields_active:
            colour = self.gauss_params["features_static"]  # OMG compares the learned static features
        else:
            colour = SH_C0 * self.features_dc if cfg.sh_degree > 0 else torch.sigmoid(self.features_dc)
        scores = ld_scores(
            self.importance_score(), colour.detach(), self.means.detach(),
            lambda_ld=cfg.ld_lambda, neighbourhood=cfg.ld_neighbourhood, k=cfg.ld_neighbours,
        )  # fmt: skip
        keep = keep_by_score_mass(scores, tau_of(cfg.preset))
        ops.select(self.gauss_params, self.optimizers, self.strategy_state, keep.to(self.device))
        self._log("prune", before)
        return self.num_points

    @torch.no_grad()
    def _rgb(self) -> torch.Tensor:
        dc = self.gauss_params["features_dc"]
        return SH_C0 * dc + 0.5 if self.config.sh_degree > 0 else torch.sigmoid(dc)

    def switch_to_fields(self) -> None:
        """The fields take over appearance: T starts as each Gaussian's colour, V at zero; the heads are fitted
        to the current DC terms and opacities for ``fields_warm_start_steps`` (module docstring)."""
        cfg = self.config
        with torch.no_grad():
            self.gauss_params["features_static"].copy_(self._rgb())
            self.gauss_params["features_view"].zero_()
            targets = (
                self.gauss_params["features_dc"].detach().clone(),
                self.gauss_params["opacities"].detach().clone(),
            )
        positions = self.field_positions().detach()
        heads = [p for name, p in self.fields.named_parameters() if not name.startswith("view.")]
        fit = torch.optim.Adam(heads, lr=1e-2)
        for _ in range(cfg.fields_warm_start_steps):
            dc, opacity, _ = self.fields(positions, self.features.detach())
            loss = torch.nn.functional.mse_loss(dc, targets[0]) + torch.nn.functional.mse_loss(
                opacity, targets[1][:, 0]
            )
            fit.zero_grad()
            loss.backward()
            fit.step()
        self.fields_on.fill_(True)
        self._log("fields", self.num_points)

    def _set_fields_lr(self, step: int) -> None:
        """OMG's schedule of the fields' learning rate: linear warm-up, then steps down at the milestones."""
        cfg = self.config
        optimizer = self.optimizers.get("fields") if isinstance(self.optimizers, dict) else None
        if optimizer is None or cfg.fields_at == OFF or step < cfg.fields_at:
            return
        since = step - cfg.fields_at
        factor = min(1.0, 0.01 + 0.99 * since / max(cfg.fields_lr_warmup, 1))
        factor *= cfg.fields_lr_gamma ** sum(since >= m for m in cfg.fields_lr_milestones)
        for group in optimizer.param_groups:
            group["lr"] = optimizer.defaults["lr"] * factor

    def _svq_targets(self) -> dict[str, tuple[torch.Tensor, tuple[int, int]]]:
        """What SVQ quantizes in this stage: name -> (values, (sub-vector length, entries))."""
        cfg = self.config
        quats = canonical_quats(self.gauss_params["quats"].detach())
        targets = {"scales": (self.gauss_params["scales"].detach(), cfg.svq_scale), "quats": (quats, cfg.svq_rotation)}
        if self.fields_active:
            return targets | {"features": (self.features.detach(), cfg.svq_appearance)}
        n = self.num_points
        raw = {
            name: self.gauss_params[name].detach().reshape(n, -1)
            for name in ("features_dc", "opacities", "features_rest")
        }
        settings = {
            "features_dc": cfg.svq_appearance,
            "opacities": cfg.svq_appearance,
            "features_rest": cfg.svq_sh_rest,
        }
        return targets | {name: (v, settings[name]) for name, v in raw.items() if v.shape[1]}

    @torch.no_grad()
    def quantize(self) -> None:
        """Sub-vector quantization of scales, rotations and appearance; the model renders the codebooks from now on."""
        start = time.perf_counter()
        cap = codebook_cap(self.num_points, self.config.svq_rows_per_entry)
        for target, (values, (length, entries)) in self._svq_targets().items():
            code = svq.fit(values, length, min(entries, cap), seed=self.config.seed)
            for s, book in enumerate(code.codebooks):
                self.svq_books[f"{target}_{s}"] = torch.nn.Parameter(
                    torch.from_numpy(book).to(self.device), requires_grad=False
                )
            self.svq_indices[target] = torch.nn.Parameter(
                torch.from_numpy(code.indices).to(self.device), requires_grad=False
            )
        self._log(f"svq ({time.perf_counter() - start:.1f} s)", self.num_points)

    def _code(self, target: str, values: torch.Tensor) -> SvqCode | np.ndarray:
        if target in self.svq_indices:
            idx = self.svq_indices[target]
            books = [self.svq_books[f"{target}_{s}"].detach().cpu().numpy() for s in range(idx.shape[1])]
            return SvqCode(books, idx.cpu().numpy())
        return values.detach().float().cpu().numpy().reshape(self.num_points, -1)

    @torch.no_grad()
    def compact_scene(self, to_data: tuple[np.ndarray, np.ndarray, float] | None = None) -> CompactScene:
        """The model as a ``CompactScene`` in its training frame; ``to_data`` = (rotation, translation, scale) to
        the data frame. Positions are the half-precision values the fields see; unquantized attributes (SVQ off or
        not reached) are stored raw."""
        n = self.num_points
        rotation, translation, scale = to_data or (np.eye(3), np.zeros(3), 1.0)
        attributes = {"log_scales": self._code("scales", self.gauss_params["scales"]),
                      "quats": self._code("quats", self.gauss_params["quats"])}  # fmt: skip
        fields = config = None
        if self.fields_active:
            attributes["features"] = self._code("features", self.features)
            config, fields = self.fields.to_arrays()
        else:
            sh0 = self._code("features_dc", self.gauss_params["features_dc"])
            attributes["sh0"] = sh0 if self.config.sh_degree > 0 else _map(sh0, lambda v: rgb_to_sh0(torch.sigmoid(v)))
            attributes["opacity_logits"] = self._code("opacities", self.gauss_params["opacities"])
            attributes["shN"] = self._code("features_rest", self.gauss_params["features_rest"].reshape(n, -1))
        return CompactScene(
            positions=self.field_positions().detach().cpu().numpy(),
            attributes=attributes,
            sh_degree=self.config.sh_degree,
            fields=fields,
            field_config=config,
            rotation=rotation,
            translation=translation,
            scale=scale,
        )
