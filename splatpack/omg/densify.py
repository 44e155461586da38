"""Mini-Splatting's blur split: a Gaussian that is the largest contributor of too many pixels is a blur.

OMG keeps Mini-Splatting's densification: the gradient-driven clone/split of 3DGS without opacity resets, plus
a forced split of every Gaussian that dominates more than ``H * W / 5000`` pixels in some view.
"""

from __future__ import annotations

from torch import Tensor

# Mini-Splatting: split when the dominated area exceeds this fraction of the image.
BLUR_AREA_FRACTION = 1.0 / 5000.0


def blur_split_mask(dominant_max: Tensor, width: int, height: int, fraction: float = BLUR_AREA_FRACTION) -> Tensor:
    """(N,) bool: Gaussians whose most dominated view (``Importance.dominant_max``) exceeds ``fraction`` of it."""
    return dominant_max > width * height * fraction
