"""Fewer Gaussians that look alike from afar: neighbours merged by moment matching (for LOD levels).

Neighbours are consecutive Gaussians in Morton order of their centres, merged in pairs per pass. A merged
Gaussian keeps its parts' combined opacity and their second moments:

- weights ``w_i = alpha_i * s_i1 s_i2 s_i3`` (opacity times volume: how much each part contributes);
- centre ``mu = sum w_i mu_i / sum w_i``; covariance ``sum w_i (Sigma_i + (mu_i - mu)(mu_i - mu)^T) / sum w_i``,
  factored back into a rotation and three scales by eigendecomposition;
- opacity the union ``1 - prod(1 - alpha_i)`` (light passing through both parts passes through the merge);
- colour (every SH coefficient) the weighted mean.
"""

from __future__ import annotations

import math

import torch

from splatpack.errors import SplatpackError
from splatpack.render._torch_impl import rotation_matrices
from splatpack.scene import Splats
from splatpack.sort.morton import morton_order

# Opacities stay below 1 so logits stay finite.
_ALPHA_MAX = 1 - 1e-6


def _quats_of(rot: torch.Tensor) -> torch.Tensor:
    """(N, 4) wxyz quaternions of (N, 3, 3) rotation matrices."""
    from scipy.spatial.transform import Rotation

    xyzw = torch.from_numpy(Rotation.from_matrix(rot.numpy()).as_quat())
    return xyzw[:, [3, 0, 1, 2]]


def merge_pairs(splats: Splats) -> Splats:
    """One pass: Gaussians 2i and 2i+1 of the Morton order merged (an odd last one is kept as it is)."""
    n = len(splats)
    if n < 2:
        return splats.clone()
    s = splats.detach().to("cpu", torch.float64)[morton_order(splats.means)]
    pairs = n // 2
    a, b = s[torch.arange(0, 2 * pairs, 2)], s[torch.arange(1, 2 * pairs, 2)]
    alpha = torch.stack([a.opacities, b.opacities])  # (2, P)
    w = alpha * torch.stack([a.scales.prod(dim=1), b.scales.prod(dim=1)])
    w = torch.where(w.sum(dim=0) > 0, w, torch.ones_like(w))  # fully transparent pairs: plain average
    w = w / w.sum(dim=0)
    mu = w[0, :, None] * a.means + w[1, :, None] * b.means
    cov = torch.zeros(pairs, 3, 3, dtype=torch.float64)
    for wi, part in zip(w, (a, b)):
        rs = rotation_matrices(part.quats) * part.scales[:, None, :]
        d = part.means - mu
        cov += wi[:, None, None] * (rs @ rs.transpose(1, 2) + d[:, :, None] * d[:, None, :])
    values, vectors = torch.linalg.eigh(cov)
    vectors = vectors * torch.where(torch.det(vectors) < 0, -1.0, 1.0)[:, None, None]  # a proper rotation
    union = (1 - (1 - alpha).prod(dim=0)).clamp(1e-12, _ALPHA_MAX)
    tiny = torch.finfo(torch.float32).tiny
    merged = Splats(
        means=mu,
        quats=_quats_of(vectors),
        log_scales=0.5 * torch.log(values.clamp_min(tiny**2)),
        opacity_logits=torch.log(union) - torch.log1p(-union),
        sh0=w[0, :, None, None] * a.sh0 + w[1, :, None, None] * b.sh0,
        shN=w[0, :, None, None] * a.shN + w[1, :, None, None] * b.shN,
    )
    rest = s[2 * pairs :]
    return Splats.cat([merged, rest]).to(splats.dtype)


def decimate(splats: Splats, target: int) -> Splats:
    """Merge neighbours (``merge_pairs`` passes) until at most ``target`` Gaussians remain."""
    if target < 1:
        raise SplatpackError(f"cannot decimate to {target} Gaussians; the target must be at least 1")
    out = splats
    for _ in range(max(0, math.ceil(math.log2(max(len(splats), 1) / target))) + 1):
        if len(out) <= target:
            break
        out = merge_pairs(out)
    return out
