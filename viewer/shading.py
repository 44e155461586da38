"""View-dependent colour: evaluate each Gaussian's spherical harmonics for one camera position.

viser draws one flat RGB per splat, so the viewer re-evaluates the SH for the camera's position when the
camera settles and sends the new colours. The basis is ``splatpack.render.sh``'s (3DGS convention); the
contraction is an einsum, ~5x faster on CPU than broadcasting (N, K, 3) products, which matters at 1M splats.
"""

from __future__ import annotations

import numpy as np
import torch

from splatpack.render.sh import sh_basis


def view_rgbs(means: torch.Tensor, sh: torch.Tensor, camera_position) -> np.ndarray:
    """(N, 3) float32 colours ``clamp(0.5 + sum_k c_k Y_k(d), 0, 1)`` of Gaussians at ``means`` with
    coefficients ``sh`` (N, K, 3, DC first), seen from ``camera_position`` (d: unit camera -> centre)."""
    degree = int(round(sh.shape[1] ** 0.5)) - 1
    cam = torch.as_tensor(np.asarray(camera_position), dtype=means.dtype)
    dirs = torch.nn.functional.normalize(means - cam, dim=1)
    rgb = torch.einsum("nk,nkc->nc", sh_basis(degree, dirs), sh) + 0.5
    return rgb.clamp(0, 1).to(torch.float32).numpy()
