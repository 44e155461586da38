"""Seed point clouds that Gaussians start from: point-cloud PLYs (``ply_file_path`` of a transforms.json, e.g.
ns-process-data's ``sparse_pc.ply``) and COLMAP ``points3D.bin``.

Colour rule (one for every caller, the training scripts and the nerfstudio dataparser alike): integer
``red green blue`` are scaled by their type's maximum (ns-process-data and COLMAP write uchar 0-255), float
ones are taken as [0, 1] and clipped, and a cloud without colours is grey. open3d, which nerfstudio reads the
PLY with, divides every type by 255: the same for uchar, but it would turn [0, 1] float colours black.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from splatpack.datasets import colmap
from splatpack.datasets.transforms import read_json
from splatpack.errors import SplatpackError

GREY = 0.5  # colour of points whose file has none


def read_point_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(P, 3) float32 positions and (P, 3) float32 colours in [0, 1] of a point-cloud PLY's ``vertex`` element."""
    from plyfile import PlyData, PlyParseError

    path = Path(path)
    if not path.is_file():
        raise SplatpackError("no such file", path)
    try:
        vertex = PlyData.read(str(path))["vertex"].data
        xyz = np.stack([vertex[c] for c in ("x", "y", "z")], axis=1).astype(np.float32)
    except (OSError, KeyError, ValueError, TypeError, PlyParseError) as exc:
        raise SplatpackError(f"not a point-cloud PLY with x y z ({exc})", path) from None
    names = vertex.dtype.names
    if not all(c in names for c in ("red", "green", "blue")):
        return xyz, np.full_like(xyz, GREY)
    rgb = np.stack([vertex[c] for c in ("red", "green", "blue")], axis=1)
    if rgb.dtype.kind == "f":
        return xyz, np.clip(rgb.astype(np.float32), 0.0, 1.0)
    if rgb.dtype.kind not in "ui":
        raise SplatpackError(f"colours of type {rgb.dtype} are not supported", path)
    return xyz, np.clip(rgb, 0, None).astype(np.float32) / float(np.iinfo(rgb.dtype).max)


def load_seed_points(path_or_folder: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Seed points ((P, 3) positions, (P, 3) colours in [0, 1]) of a scene.

    Accepts a point-cloud PLY, a ``points3D.bin``, a ``transforms.json`` (its ``ply_file_path``), or a scene
    folder (its transforms.json's ``ply_file_path``, else its COLMAP model).
    """
    path = Path(path_or_folder)
    json_path = path / "transforms.json" if path.is_dir() else path
    if json_path.suffix == ".json" and json_path.is_file():
        meta = read_json(json_path)
        if "ply_file_path" in meta:
            path = json_path.parent / meta["ply_file_path"]
        elif path == json_path:
            raise SplatpackError("transforms.json has no ply_file_path (no seed points)", json_path)
    if path.is_dir():
        path = colmap.find_model(path)[0] / "points3D.bin"
    if path.suffix.lower() == ".ply":
        xyz, rgb = read_point_ply(path)
    elif path.suffix.lower() == ".bin":
        points = colmap.read_points3d_binary(path)
        xyz, rgb = points.xyz.astype(np.float32), points.rgb.astype(np.float32) / 255.0
    else:
        raise SplatpackError("not a seed point file (expected .ply or points3D.bin)", path)
    return torch.from_numpy(xyz), torch.from_numpy(rgb)
