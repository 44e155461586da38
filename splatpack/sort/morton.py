"""Morton (Z-order) codes: sort 3-D points so that points close in space are mostly close in the order.

Points are torch tensors or numpy arrays (file conversion runs without torch); both give the same codes and order.
"""

from __future__ import annotations

import numpy as np

from splatpack.errors import SplatpackError

# Masks that spread the low 21 bits of an integer to every third bit (bit i goes to bit 3i).
_SPREAD3 = (
    (32, 0x1F00000000FFFF),
    (16, 0x1F0000FF0000FF),
    (8, 0x100F00F00F00F00F),
    (4, 0x10C30C30C30C30C3),
    (2, 0x1249249249249249),
)
# The same for 2-D codes (bit i goes to bit 2i), 31 bits.
_SPREAD2 = (
    (16, 0x0000FFFF0000FFFF),
    (8, 0x00FF00FF00FF00FF),
    (4, 0x0F0F0F0F0F0F0F0F),
    (2, 0x3333333333333333),
    (1, 0x5555555555555555),
)


def _spread(v, steps):
    for shift, mask in steps:
        v = (v | (v << shift)) & mask
    return v


def quantize(points, bits: int):
    """(N, 3) integer cells in [0, 2^bits - 1]^3 of the points' bounding box (each axis scaled to its extent)."""
    top = (1 << bits) - 1
    if isinstance(points, np.ndarray):
        lo = points.min(axis=0)
        extent = np.maximum(points.max(axis=0) - lo, np.finfo(points.dtype).tiny)
        return np.clip(np.round((points - lo) / extent * top), 0, top).astype(np.int64)
    import torch

    lo = points.min(dim=0).values
    extent = (points.max(dim=0).values - lo).clamp_min(torch.finfo(points.dtype).tiny)
    return ((points - lo) / extent * top).round().clamp(0, top).to(torch.int64)


def morton_codes(points, bits: int = 21):
    """(N,) int64 3-D Morton codes: x in bit 3i, y in bit 3i+1, z in bit 3i+2 of the quantized position."""
    if points.ndim != 2 or points.shape[1] != 3:
        raise SplatpackError(f"Morton codes need (N, 3) points, got shape {tuple(points.shape)}")
    if not 1 <= bits <= 21:
        raise SplatpackError(f"Morton codes take 1-21 bits per axis (63-bit codes), got {bits}")
    if isinstance(points, np.ndarray):
        if points.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        q = quantize(points.astype(np.float64), bits)
    else:
        import torch

        if points.shape[0] == 0:
            return torch.zeros(0, dtype=torch.int64, device=points.device)
        q = quantize(points.to(torch.float64), bits)
    return _spread(q[:, 0], _SPREAD3) | (_spread(q[:, 1], _SPREAD3) << 1) | (_spread(q[:, 2], _SPREAD3) << 2)


def morton_order(points, bits: int = 21):
    """(N,) int64 permutation that sorts the points by Morton code (ties keep their input order)."""
    codes = morton_codes(points, bits)
    if isinstance(codes, np.ndarray):
        return np.argsort(codes, kind="stable")
    import torch

    return torch.sort(codes, stable=True).indices


def morton_codes_2d(rows, cols):
    """2-D Morton codes of integer grid cells (torch): column in the even bits, row in the odd bits."""
    import torch

    return _spread(cols.to(torch.int64), _SPREAD2) | (_spread(rows.to(torch.int64), _SPREAD2) << 1)
