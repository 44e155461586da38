"""A small, dependency-light photometric trainer: optimise a ``Splats`` against posed images.

This is the trainer behind ``splatpack demo`` and the renderer's end-to-end check. It optimises a fixed number
of Gaussians (no densification) with Adam on the 3DGS loss ``(1 - λ) L1 + λ (1 - SSIM)``, one random training
view per step, and raises the SH degree every ``sh_interval`` steps as 3DGS does. The full method (densification,
Self-Organizing grids, nerfstudio integration) lives in ``splatpack.nerfstudio``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from pytorch_msssim import ssim as ssim_fn
from scipy.spatial import cKDTree

from splatpack.datasets.cameras import CameraSet
from splatpack.render import render_splats
from splatpack.scene import Splats, rgb_to_sh0
from splatpack.train.ops import params_from_splats, splats_from_params


@dataclasses.dataclass
class TrainConfig:
    steps: int = 500
    """Optimisation steps (one training view each)."""
    sh_degree: int = 1
    """Highest SH degree trained; raised one band every ``sh_interval`` steps."""
    sh_interval: int = 150
    ssim_lambda: float = 0.2
    """Weight of the D-SSIM term in the photometric loss."""
    lr_means: float = 1.6e-3
    """Position learning rate, relative to the scene extent (decays 100x over the run)."""
    lr_log_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacity: float = 5e-2
    lr_sh0: float = 2.5e-3
    lr_shN: float = 2.5e-3 / 20
    densify: bool = True
    """Grow (clone/split) and prune Gaussians with gsplat's DefaultStrategy."""
    refine_every: int = 100
    grow_grad2d: float = 2e-4
    """Screen-space gradient above which a Gaussian is cloned or split."""
    seed: int = 0
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Colour composited behind every render (what uncovered pixels show)."""


def scene_extent(cameras: CameraSet) -> tuple[torch.Tensor, float]:
    """Centre and radius of the camera constellation (the scale the position learning rate follows)."""
    centres = torch.linalg.inv(cameras.viewmats)[:, :3, 3]
    centre = centres.mean(dim=0)
    return centre, float((centres - centre).norm(dim=1).max())


def init_from_points(points: torch.Tensor, colours: torch.Tensor, sh_degree: int, opacity: float = 0.1) -> Splats:
    """Gaussians at the given points: isotropic scale = mean distance to the 3 nearest neighbours."""
    n = points.shape[0]
    k = min(4, n)  # the point itself plus up to 3 neighbours
    dist, _ = cKDTree(points.numpy()).query(points.numpy(), k=k)
    knn = torch.from_numpy(dist[:, 1:].mean(axis=1) if k > 1 else np.ones(n)).float()
    splats = Splats.create(n, sh_degree)
    splats.means = points.float().clone()
    splats.log_scales = torch.log(knn.clamp_min(1e-6))[:, None].repeat(1, 3).float()
    splats.opacity_logits = torch.full((n,), math.log(opacity / (1 - opacity)))
    splats.sh0 = rgb_to_sh0(colours.float())[:, None, :]
    return splats


def random_init(cameras: CameraSet, n: int, sh_degree: int, seed: int, opacity: float = 0.1) -> Splats:
    """``n`` random points with random colours in a box around the scene centre (half the camera radius)."""
    g = torch.Generator().manual_seed(seed)
    centre, radius = scene_extent(cameras)
    points = centre + (torch.rand(n, 3, generator=g) * 2 - 1) * radius * 0.5
    return init_from_points(points, torch.rand(n, 3, generator=g), sh_degree, opacity)


def _photometric_loss(render: torch.Tensor, target: torch.Tensor, ssim_lambda: float) -> torch.Tensor:
    l1 = (render - target).abs().mean()
    s = ssim_fn(render.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2), data_range=1.0, size_average=True)
    return (1 - ssim_lambda) * l1 + ssim_lambda * (1 - s)


def train(splats: Splats, cameras: CameraSet, cfg: TrainConfig, *, progress=None) -> Splats:
    """Optimise ``splats`` (copied, any SH degree padded to ``cfg.sh_degree``) on ``cameras``; returns the result.

    With ``cfg.densify`` gsplat's ``DefaultStrategy`` clones, splits and prunes Gaussians from ``cfg.refine_every``
    steps on until 70% of the run (our renderer's ``info`` carries what it needs, on CPU too).
    ``progress(step, loss, n_gaussians)`` is called every step when given (the CLI drives a progress bar with it).
    """
    from gsplat.strategy import DefaultStrategy

    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    _, radius = scene_extent(cameras)
    start = splats.with_sh_degree(cfg.sh_degree)
    # gsplat's densification strategy addresses parameters by its own names.
    params = torch.nn.ParameterDict(
        {name: torch.nn.Parameter(value.detach().clone()) for name, value in params_from_splats(start).items()}
    )
    lrs = {
        "means": cfg.lr_means * radius,
        "quats": cfg.lr_quats,
        "scales": cfg.lr_log_scales,
        "opacities": cfg.lr_opacity,
        "sh0": cfg.lr_sh0,
        "shN": cfg.lr_shN,
    }
    optimizers = {
        k: torch.optim.Adam([{"params": [params[k]], "lr": lr, "name": k}], eps=1e-15) for k, lr in lrs.items()
    }
    strategy = DefaultStrategy(
        refine_start_iter=cfg.refine_every,
        refine_stop_iter=int(cfg.steps * 0.7),
        refine_every=cfg.refine_every,
        reset_every=10**9,  # opacity resets need long runs to recover from
        grow_grad2d=cfg.grow_grad2d,
    )
    state = strategy.initialize_state(scene_scale=radius) if cfg.densify else None
    backgrounds = torch.tensor([cfg.background], dtype=torch.float32)
    decay = 0.01 ** (1 / max(cfg.steps, 1))  # positions: exponential decay to 1% of the initial rate
    for step in range(cfg.steps):
        degree = min(cfg.sh_degree, step // cfg.sh_interval)
        i = int(torch.randint(len(cameras.images), (1,), generator=g))
        current = splats_from_params(params)
        out = render_splats(
            current, cameras.viewmats[i : i + 1], cameras.Ks[i : i + 1], cameras.width, cameras.height,
            sh_degree=degree, backgrounds=backgrounds,
        )  # fmt: skip
        loss = _photometric_loss(out.rgb, cameras.images[i : i + 1], cfg.ssim_lambda)
        if state is not None:
            strategy.step_pre_backward(params, optimizers, state, step, out.info)
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if state is not None:
            strategy.step_post_backward(params, optimizers, state, step, out.info, packed=False)
        for opt in optimizers.values():
            opt.step()
        optimizers["means"].param_groups[0]["lr"] *= decay
        if progress is not None:
            progress(step, loss.item(), len(params["means"]))
    return splats_from_params(params).detach()
