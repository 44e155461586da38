"""Real spherical harmonics up to degree 3, in the 3DGS convention (coefficient-major, DC first)."""

from __future__ import annotations

import torch
from torch import Tensor

from splatpack.sh import sh_basis_terms


def sh_basis(degree: int, dirs: Tensor) -> Tensor:
    """(..., (degree+1)^2) basis values at unit directions ``dirs`` (..., 3)."""
    return torch.stack(sh_basis_terms(degree, *dirs.unbind(-1)), dim=-1)


def sh_to_rgb(degree: int, dirs: Tensor, coeffs: Tensor) -> Tensor:
    """Colour (..., 3) seen along ``dirs`` (..., 3, any length) from ``coeffs`` (..., K, 3), K >= (degree+1)^2.

    ``clamp_min(sum + 0.5, 0)`` as in 3DGS: the +0.5 makes zero coefficients mid-grey.
    """
    k = (degree + 1) ** 2
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    basis = sh_basis(degree, dirs)
    return torch.clamp_min((basis[..., None] * coeffs[..., :k, :]).sum(dim=-2) + 0.5, 0.0)
