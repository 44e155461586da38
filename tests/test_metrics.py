import math

import torch

from splatpack.metrics import lpips, psnr, ssim


def test_psnr_known_value_and_identity():
    ref = torch.zeros(8, 8, 3)
    img = torch.full((8, 8, 3), 0.1)
    assert math.isclose(psnr(img, ref), 20.0, rel_tol=1e-6)
    assert psnr(ref, ref) > 150


def test_ssim_orders_degradations():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 32, 32, 3, generator=g)
    small = (ref + 0.02 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    large = (ref + 0.2 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    assert math.isclose(ssim(ref, ref), 1.0, abs_tol=1e-6)
    assert 1.0 > ssim(small, ref) > ssim(large, ref) > 0.0


def test_lpips_feeds_the_module_clamped_channels_first_batches():
    class MeanAbs(torch.nn.Module):  # stands in for torchmetrics' LPIPS, whose weights are not on this machine
        def forward(self, a, b):
            assert a.shape == b.shape == (2, 3, 8, 6) and 0 <= float(a.min()) and float(a.max()) <= 1
            return (a - b).abs().mean()

    g = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 8, 6, 3, generator=g)
    img = ref + 0.5  # clamped to 1 before scoring
    assert math.isclose(lpips(img, ref, MeanAbs()), float((img.clamp(0, 1) - ref).abs().mean()), rel_tol=1e-6)
