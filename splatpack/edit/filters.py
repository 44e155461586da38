"""Which Gaussians to keep: boolean masks (box, sphere, attribute thresholds) and the K most important.

Attribute names follow the PLY properties and splat-transform's ``-V``: ``x y z``, ``rot_0..3``,
``f_rest_<i>`` (file numbering: channel-major) compare stored values; ``opacity`` (0-1), ``scale_0..2``
(linear standard deviations) and ``f_dc_0..2`` (base colour, 0-1) compare the values a user sees, and a
``_raw`` suffix (``opacity_raw``: the logit) compares the stored one. ``scale`` is the largest of the three
linear scales.
"""

from __future__ import annotations

import operator
import re

import numpy as np

from splatpack.errors import SplatpackError
from splatpack.scene import SH_C0, Splats

COMPARATORS = {
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "eq": operator.eq,
    "neq": operator.ne,
}
_INDEXED = re.compile(r"(x|y|z|rot_[0-3]|scale_[0-2]|f_dc_[0-2]|f_rest_(?:0|[1-9][0-9]*))(_raw)?\Z")


def attribute(splats: Splats, name: str):
    """(N,) values of the attribute ``name`` (see the module docstring); raises for unknown names."""
    if name in ("opacity", "opacity_raw"):
        return splats.opacities if name == "opacity" else splats.opacity_logits
    if name == "scale":
        scales = splats.scales
        return scales.max(axis=1) if splats.is_numpy else scales.max(dim=1).values
    m = _INDEXED.match(name)
    if m is None:
        raise SplatpackError(
            f"unknown attribute {name!r}; use x, y, z, opacity, scale, scale_0-2, rot_0-3, f_dc_0-2 or f_rest_<i> "
            "(a _raw suffix compares the stored value)"
        )
    base, raw = m.group(1), m.group(2) is not None
    if base in "xyz":
        return splats.means[:, "xyz".index(base)]
    index = int(base.rsplit("_", 1)[1])
    if base.startswith("rot_"):
        return splats.quats[:, index]
    if base.startswith("scale_"):
        return splats.log_scales[:, index] if raw else splats.scales[:, index]
    if base.startswith("f_dc_"):
        dc = splats.sh0[:, 0, index]
        return dc if raw else dc * SH_C0 + 0.5
    k = splats.shN.shape[1]
    if index >= 3 * k:
        raise SplatpackError(
            f"attribute {name!r} does not exist: the scene has {3 * k} f_rest values (SH degree {splats.sh_degree})"
        )
    return splats.shN[:, index % k, index // k]  # f_rest_{c*K + j} is shN[:, j, c]


def value_mask(splats: Splats, name: str, comparator: str, value: float):
    """Gaussians whose attribute ``name`` compares to ``value`` as ``comparator`` (lt lte gt gte eq neq) says."""
    if comparator not in COMPARATORS:
        raise SplatpackError(f"unknown comparator {comparator!r}; use one of {', '.join(COMPARATORS)}")
    return COMPARATORS[comparator](attribute(splats, name), value)


def box_mask(splats: Splats, lo, hi):
    """Gaussians whose centre lies in the axis-aligned box [lo, hi] (inclusive)."""
    means = splats.means if splats.is_numpy else splats.means.detach().cpu().numpy()
    lo, hi = np.asarray(lo, dtype=means.dtype), np.asarray(hi, dtype=means.dtype)
    if bool((lo > hi).any()):
        raise SplatpackError(f"box minimum {lo.tolist()} exceeds its maximum {hi.tolist()} on some axis")
    return _like(splats, ((means >= lo) & (means <= hi)).all(axis=1))


def sphere_mask(splats: Splats, centre, radius: float):
    """Gaussians whose centre lies within ``radius`` of ``centre`` (inclusive)."""
    if not radius >= 0:
        raise SplatpackError(f"sphere radius must be non-negative, got {radius}")
    means = splats.means if splats.is_numpy else splats.means.detach().cpu().numpy()
    centre = np.asarray(centre, dtype=np.float64)
    return _like(splats, ((means.astype(np.float64) - centre) ** 2).sum(axis=1) <= float(radius) ** 2)


def _like(splats: Splats, mask: np.ndarray):
    """``mask`` as the scene's array kind (a torch scene gets a tensor on its device)."""
    if splats.is_numpy:
        return mask
    import torch

    return torch.from_numpy(mask).to(splats.device)


def most_important(splats: Splats, k: int):
    """Indices (in file order) of the ``k`` Gaussians with the largest opacity x volume: the viewer's order
    (a torch tensor: the viewer's ranking is torch's, so this imports torch)."""
    from viewer.gaussians import budget_indices, importance_order

    if k < 0:
        raise SplatpackError(f"cannot keep a negative number of Gaussians ({k})")
    return budget_indices(importance_order(splats.torch()), k)


def morton_reorder(splats: Splats) -> Splats:
    """The scene in Morton (Z-order) order of its centres, so neighbours in space are neighbours in the file."""
    from splatpack.sort.morton import morton_order

    if len(splats) == 0:
        return splats
    return splats[morton_order(splats.means)]
