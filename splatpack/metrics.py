"""Image quality metrics that need no downloaded weights: PSNR and SSIM (pytorch-msssim).

Images are float tensors in [0, 1], channels last: (H, W, 3) or a batch (B, H, W, 3). Batch results are the
mean of per-image values, as 3DGS papers report them.
"""

from __future__ import annotations

import torch
from pytorch_msssim import ssim as _ssim


def _batched(img: torch.Tensor) -> torch.Tensor:
    if img.ndim == 3:
        img = img[None]
    if img.ndim != 4 or img.shape[-1] not in (1, 3):
        raise ValueError(f"expected (H, W, C) or (B, H, W, C) images, got shape {tuple(img.shape)}")
    return img


def psnr(img: torch.Tensor, ref: torch.Tensor) -> float:
    """Mean over images of ``10 log10(1 / MSE)``; values are clamped to [0, 1] first."""
    a, b = _batched(img).clamp(0, 1).double(), _batched(ref).clamp(0, 1).double()
    mse = ((a - b) ** 2).flatten(1).mean(dim=1).clamp_min(1e-20)
    return float((-10.0 * torch.log10(mse)).mean())


def ssim(img: torch.Tensor, ref: torch.Tensor) -> float:
    """Mean SSIM (11x11 Gaussian window, sigma 1.5, as in 3DGS evaluation)."""
    a = _batched(img).clamp(0, 1).permute(0, 3, 1, 2).float()
    b = _batched(ref).clamp(0, 1).permute(0, 3, 1, 2).float()
    return float(_ssim(a, b, data_range=1.0, size_average=False).mean())
