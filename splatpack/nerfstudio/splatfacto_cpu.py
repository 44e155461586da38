"""Run nerfstudio's own, unmodified ``SplatfactoModel`` on a machine without CUDA.

splatfacto 1.1.5 stops on a CPU-only machine at (1) torchmetrics LPIPS, which downloads AlexNet weights when the
model is built, (2) hard-coded ``.cuda()`` calls, (3) gsplat's CUDA rasterization. Inside
``splatfacto_on_cpu()`` its rasterization call is answered by ``splatpack.render.rasterize`` (torch backend),
``Tensor.cuda`` returns the tensor itself, and LPIPS is replaced by a module that refuses to run. Used to load
splatfacto checkpoints for ``splatpack export`` and to train splatfacto in ``bench/train.py``. With CUDA
available it changes nothing.
"""

from __future__ import annotations

import contextlib

import torch


def _rasterization_on_cpu(
    means,
    quats,
    scales,
    opacities,
    colors,
    viewmats,
    Ks,
    width,
    height,
    *,
    near_plane,
    far_plane,
    render_mode,
    sh_degree,
    rasterize_mode,
    absgrad=False,
    **_unused,
):
    """gsplat's ``rasterization`` as splatfacto calls it, answered by our torch renderer."""
    from splatpack.render import rasterize

    out = rasterize(
        means,
        quats,
        scales,
        opacities,
        colors,
        viewmats,
        Ks,
        width,
        height,
        sh_degree=sh_degree,
        near_plane=near_plane,
        far_plane=far_plane,
        rasterize_mode=rasterize_mode,
        backend="torch",
        absgrad=absgrad,
    )
    render = out.rgb if render_mode == "RGB" else torch.cat([out.rgb, out.depth], dim=-1)
    return render, out.alpha, out.info


def for_cpu_training(cfg):
    """Point a splatfacto ``TrainerConfig`` at the CPU (in place; no-op with CUDA). Its own densification
    settings stay: our renderer computes the absgrad they use."""
    if not torch.cuda.is_available():
        cfg.machine.device_type = "cpu"
    return cfg


class _NoLPIPS(torch.nn.Module):
    def forward(self, *args):
        raise RuntimeError("LPIPS is unavailable here: its AlexNet weights would have to be downloaded")


@contextlib.contextmanager
def splatfacto_on_cpu():
    """Let nerfstudio's SplatfactoModel be built, trained and rendered without CUDA for the block's duration."""
    if torch.cuda.is_available():
        yield
        return
    import nerfstudio.models.splatfacto as splatfacto
    import torchmetrics.image.lpip as lpip

    saved = (splatfacto.rasterization, torch.Tensor.cuda, lpip.LearnedPerceptualImagePatchSimilarity)
    splatfacto.rasterization = _rasterization_on_cpu
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    lpip.LearnedPerceptualImagePatchSimilarity = lambda **kwargs: _NoLPIPS()
    try:
        yield
    finally:
        splatfacto.rasterization, torch.Tensor.cuda, lpip.LearnedPerceptualImagePatchSimilarity = saved
