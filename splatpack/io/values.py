"""Value rules every writer applies the same way: degenerate rotations and linear scales.

- A zero quaternion has no rotation: every writer stores the identity for it (never NaN or a non-unit value).
- A log scale whose linear value overflows float32 is an infinite value, refused like NaN/Inf; one that
  underflows to 0 is clamped to the smallest normal float32 (a vanishingly small, still valid Gaussian).
"""

from __future__ import annotations

import numpy as np

from splatpack.errors import SplatpackError

F32_MAX_LOG = float(np.log(np.finfo(np.float32).max))
F32_TINY = float(np.finfo(np.float32).tiny)


def unit_quaternions(q: np.ndarray, *, w_index: int = 0) -> np.ndarray:
    """Rows of ``q`` divided by their norm, in ``q``'s dtype, summing squares in column order (SPZ's reference
    order for xyzw rows); zero rows become the identity, whose real part sits in column ``w_index``."""
    q = np.array(q, copy=True)
    sq = q * q
    norm = np.sqrt(((sq[:, 0] + sq[:, 1]) + sq[:, 2]) + sq[:, 3])
    zero = norm == 0
    q[zero] = 0
    q[zero, w_index] = 1
    norm[zero] = 1
    return q / norm[:, None]


def linear_scales(log_scales: np.ndarray, path=None) -> np.ndarray:
    """float32 ``exp(log_scales)``: refused where it overflows float32, clamped to ``F32_TINY`` where it underflows."""
    log_scales = np.asarray(log_scales, dtype=np.float64)
    over = (log_scales > F32_MAX_LOG).reshape(len(log_scales), -1).any(axis=1)
    if over.any():
        raise SplatpackError(
            f"{int(over.sum())} Gaussian(s) have a log scale above {F32_MAX_LOG:.2f}, whose linear scale is "
            f"infinite in float32 (first at index {int(over.argmax())})",
            path,
        )
    return np.maximum(np.exp(log_scales), F32_TINY).astype(np.float32)
