"""Orders that put similar Gaussians next to each other in a 2-D grid (for image-codec formats such as SOG).

``self_organizing_key`` builds the Self-Organizing Gaussians paper's sort key (activated attributes, each
standardised as a whole, weighted per attribute; the SOG file writer uses its own texture-domain key,
``splatpack.io.sog.texture_key``), ``grid_order`` turns a scene (or a key) into a grid layout with PLAS or
Morton order; ``plas``, ``morton`` and ``quality`` hold the algorithms and the measures.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from splatpack.errors import SplatpackError
from splatpack.scene import Splats
from splatpack.sort.morton import morton_codes_2d, morton_order

if TYPE_CHECKING:
    import torch

    from splatpack.sort.plas import plas_sort

__all__ = [
    "self_organizing_key",
    "grid_order",
    "plas_sort",
    "morton_order",
    "DEFAULT_WEIGHTS",
    "FAST_PLAS",
    "PAPER_PLAS",
]

# SOG's sorting weights (config ours_q_sh_local_test.yaml): position, DC colour and scale; the rest off.
DEFAULT_WEIGHTS = {
    "xyz": 1.0,
    "features_dc": 1.0,
    "scaling": 1.0,
    "features_rest": 0.0,
    "opacity": 0.0,
    "rotation": 0.0,
}

# PLAS schedules: FAST_PLAS for file compression (~6x faster than the paper's, ~10 % higher neighbour distance;
# figures in BENCHMARKS.md, PLAS).
FAST_PLAS = {"radius_decay": 0.8, "improvement_break": 1e-3}
PAPER_PLAS = {"radius_decay": 0.95, "improvement_break": 1e-4}

# SOG's attribute names, each with its activated value (what SOG sorts by).
_ACTIVATED = {
    "xyz": lambda s: s.means,
    "features_dc": lambda s: s.sh0.reshape(len(s), -1),
    "features_rest": lambda s: s.shN.reshape(len(s), -1),
    "opacity": lambda s: s.opacities[:, None],
    "scaling": lambda s: s.scales,
    "rotation": lambda s: s.unit_quats,
}


def __getattr__(name: str):
    # plas_sort loads torch: imported on first use, so Morton-only callers (compressed PLY) stay numpy-only.
    if name == "plas_sort":
        from splatpack.sort.plas import plas_sort

        return plas_sort
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _standardise(t: torch.Tensor) -> torch.Tensor:
    """(t - mean) / std over the whole tensor, not per channel (as SOG); a constant tensor becomes zeros."""
    std = t.std(unbiased=False)
    return (t - t.mean()) / (std if std > 0 else 1.0)


def self_organizing_key(splats: Splats, weights: dict | None = None) -> torch.Tensor:
    """(N, D) float32 key: concat over attributes of ``w_k * z(activated attr_k)``, zero-weight ones left out;
    ``z`` standardises each attribute as a whole, so an attribute's channels keep their relative spread."""
    import torch

    weights = DEFAULT_WEIGHTS if weights is None else weights
    unknown = sorted(set(weights) - set(_ACTIVATED))
    if unknown:
        raise SplatpackError(f"unknown sort-key attribute(s) {unknown}; known: {sorted(_ACTIVATED)}")
    attrs = {name: _ACTIVATED[name](splats).to(torch.float32) for name, w in weights.items() if w}
    parts = [float(weights[name]) * _standardise(t) for name, t in attrs.items() if t.shape[1] > 0]
    if not parts:
        raise SplatpackError("the sort key is empty: every weight is zero (or names an empty attribute)")
    return torch.cat(parts, dim=1)


def _morton_layout(positions: torch.Tensor, width: int) -> torch.Tensor:
    """Morton order of the points placed along a 2-D Z-curve of the W-wide grid, so that both grid axes
    (not only rows) hold nearby points."""
    import torch

    n = positions.shape[0]
    cells = torch.arange(n, device=positions.device)
    curve = torch.sort(morton_codes_2d(cells // width, cells % width), stable=True).indices
    order = torch.empty_like(cells)
    order[curve] = morton_order(positions)
    return order


def _fill_last_row(key: torch.Tensor, order_full: torch.Tensor, rest: torch.Tensor, width: int) -> torch.Tensor:
    """Order the leftover Gaussians of a partial last row by the column of their nearest cell in the row above."""
    import torch

    above = key[order_full[-width:]]
    nearest = torch.cdist(key[rest].to(torch.float32), above.to(torch.float32)).argmin(dim=1)
    return rest[torch.sort(nearest, stable=True).indices]


def grid_order(
    splats_or_key: Splats | torch.Tensor,
    method: str = "plas",
    *,
    width: int | None = None,
    seed: int = 0,
    progress: bool = False,
    plas_schedule: dict | None = None,
) -> tuple[torch.Tensor, int]:
    """A permutation ``order`` of all N Gaussians and the grid width W (default ceil(sqrt(N))).

    Placing ``splats[order]`` row-major into a W-wide grid (last row possibly partial) puts similar Gaussians
    next to each other. ``method``: "plas" sorts the full rows with PLAS on the sort key and fits the
    leftovers under the row above; "morton" lays the Morton order of the positions (a key's first 3
    columns) along a 2-D Z-curve; "none" keeps the input order. ``plas_schedule`` holds ``plas_sort``'s
    schedule options (default ``FAST_PLAS``; ``PAPER_PLAS`` for the published schedule).
    """
    import torch

    from splatpack.sort.plas import plas_sort

    if isinstance(splats_or_key, Splats) and len(splats_or_key) < 2:
        return torch.arange(len(splats_or_key), device=splats_or_key.device), 1
    if isinstance(splats_or_key, Splats):
        key, positions = self_organizing_key(splats_or_key), splats_or_key.means
    elif isinstance(splats_or_key, torch.Tensor) and splats_or_key.ndim == 2:
        key, positions = splats_or_key, splats_or_key[:, :3]
    else:
        raise SplatpackError("grid_order takes a Splats scene or an (N, D) key tensor")
    n = key.shape[0]
    width = max(1, math.ceil(math.sqrt(n))) if width is None else int(width)
    if width < 1:
        raise SplatpackError(f"grid width must be at least 1, got {width}")
    if method not in ("plas", "morton", "none"):
        raise SplatpackError(f"unknown grid order method {method!r}; use 'plas', 'morton' or 'none'")
    rows = n // width
    if method == "none" or n < 2:
        return torch.arange(n, device=key.device), width
    if method == "morton" or rows < 2 or width < 2 or positions.shape[1] < 3:
        # PLAS needs at least a 2x2 grid; Morton order needs 3-D positions.
        if positions.shape[1] < 3:
            return torch.arange(n, device=key.device), width
        return _morton_layout(positions, width), width
    full = rows * width
    grid = key[:full].reshape(rows, width, -1)
    order_full = (
        plas_sort(grid, seed=seed, progress=progress, **(plas_schedule or FAST_PLAS)).reshape(-1).to(key.device)
    )
    if full == n:
        return order_full, width
    rest = _fill_last_row(key, order_full, torch.arange(full, n, device=key.device), width)
    return torch.cat([order_full, rest]), width
