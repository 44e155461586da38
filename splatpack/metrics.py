"""Image quality metrics: PSNR and SSIM (pytorch-msssim), which need no weights, and LPIPS (torchmetrics,
AlexNet), which is only built when its weights are already on disk: torchmetrics would download them.

Images are float tensors in [0, 1], channels last: (H, W, 3) or a batch (B, H, W, 3). Batch results are the
mean of per-image values, as 3DGS papers report them.
"""

from __future__ import annotations

from pathlib import Path

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


def local_lpips() -> tuple[torch.nn.Module | None, str]:
    """(torchmetrics' LPIPS module, "") when the AlexNet weights are already on disk, else (None, why not)."""
    try:
        from torchvision.models import AlexNet_Weights

        weights = Path(torch.hub.get_dir()) / "checkpoints" / Path(AlexNet_Weights.IMAGENET1K_V1.url).name
    except Exception as exc:  # torchvision may be unusable on a CPU-only torch
        return None, f"torchvision models are unavailable ({exc})"
    if not weights.exists():
        return None, f"AlexNet weights are not on disk ({weights})"
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    return LearnedPerceptualImagePatchSimilarity(normalize=True), ""


def lpips(img: torch.Tensor, ref: torch.Tensor, model: torch.nn.Module) -> float:
    """Mean LPIPS of images against references with a module from ``local_lpips`` (lower is better)."""
    a = _batched(img).clamp(0, 1).permute(0, 3, 1, 2).float()
    b = _batched(ref).clamp(0, 1).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        return float(model(a, b))
