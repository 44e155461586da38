"""antimatter15 ``.splat``: 32 bytes per Gaussian, no header, no SH.

Record layout (little-endian): position 3 x f32, scale 3 x f32 (linear, ``exp(log_scale)``), colour RGBA
4 x u8 (RGB = ``0.5 + C0 * sh0``, A = opacity, each x 255), rotation 4 x u8 (``q * 128 + 128`` of the unit
quaternion, w first). Bytes are rounded to nearest (antimatter15's converter truncates; rounding halves
the error and every reader decodes both the same way). Higher SH bands are dropped on write and zero on
read. Coordinates are stored as they are: like PLY, the format has no frame of its own.

The file has no magic number, so ``sniff`` never claims a file; ``.splat`` is recognised by its name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from splatpack.errors import SplatpackError
from splatpack.io.atomic import atomic_output
from splatpack.io.files import read_input_bytes
from splatpack.io.values import linear_scales, unit_quaternions
from splatpack.scene import SH_C0, Arrays, Splats

RECORD = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rotation", "u1", 4)])
# Opacities of exactly 0 or 1 would decode to an infinite logit.
ALPHA_EPS = 1e-6


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def write(splats: Splats, path: str | os.PathLike) -> None:
    """Write ``splats`` as ``.splat`` (SH bands above 0 are dropped: the format has none)."""
    splats.validate(source=os.fspath(path))
    if len(splats) == 0:
        raise SplatpackError("cannot write a .splat file with zero Gaussians", path)
    s = splats.numpy(np.float32)
    records = np.empty(len(s), RECORD)
    records["position"] = s.means
    records["scale"] = linear_scales(s.log_scales, path)
    records["rgba"][:, :3] = _to_u8((0.5 + SH_C0 * s.sh0[:, 0, :].astype(np.float64)) * 255)
    records["rgba"][:, 3] = _to_u8(s.opacities.astype(np.float64) * 255)
    records["rotation"] = _to_u8(unit_quaternions(s.quats.astype(np.float64)) * 128 + 128)
    with atomic_output(path) as tmp:
        records.tofile(tmp)


def _records(path) -> np.ndarray:
    p = Path(path)
    data = read_input_bytes(p, "a .splat file")
    if not data:
        raise SplatpackError("empty file: a .splat file holds at least one 32-byte record", p)
    if len(data) % RECORD.itemsize:
        raise SplatpackError(f"size {len(data)} is not a multiple of the 32-byte .splat record (truncated?)", p)
    return np.frombuffer(data, RECORD)


def read(path: str | os.PathLike, *, arrays: Arrays = "torch") -> Splats:
    """Read a ``.splat`` file into ``Splats`` (SH degree 0)."""
    r = _records(path)
    position = r["position"].astype(np.float32)
    scale = r["scale"].astype(np.float64)
    # NaN/Inf positions and scales follow the reading policy (Splats.from_numpy); a scale <= 0 has no log.
    bad = (scale <= 0).any(axis=1)
    if bad.any():
        raise SplatpackError(
            f"{int(bad.sum())} record(s) with a zero or negative scale (first at index {int(bad.argmax())})", path
        )
    q = (r["rotation"].astype(np.float64) - 128) / 128
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(norm > 0, q / np.where(norm > 0, norm, 1), [1.0, 0.0, 0.0, 0.0])
    rgba = r["rgba"].astype(np.float64) / 255
    alpha = np.clip(rgba[:, 3], ALPHA_EPS, 1 - ALPHA_EPS)
    return Splats.from_numpy(
        means=position,
        quats=q,
        log_scales=np.log(scale),
        opacity_logits=np.log(alpha / (1 - alpha)),
        sh0=(rgba[:, :3] - 0.5) / SH_C0,
        shN=np.zeros((len(r), 0, 3)),
        source=path,
        arrays=arrays,
    )


def sniff(path, head: bytes) -> bool:
    """Never: ``.splat`` has no magic number, so detection falls back to the file name."""
    return False


def describe(path: str | os.PathLike) -> dict:
    r = _records(path)
    return {"format": "splat", "count": len(r), "sh_degree": 0, "file_bytes": r.nbytes}
