"""nerfstudio-data parser that reads the ``ply_file_path`` seed cloud with plyfile instead of open3d.

nerfstudio reads the seed with open3d, a ~900 MB dependency splatpack does not install; everything else
(poses, orientation, centring, scaling, splits) is nerfstudio's own parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from nerfstudio.data.dataparsers.nerfstudio_dataparser import Nerfstudio, NerfstudioDataParserConfig

from splatpack.errors import SplatpackError


def read_seed_points(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) float32 positions and (N, 3) uint8 colours of a point-cloud PLY (grey where it has no colour)."""
    from plyfile import PlyData

    try:
        vertex = PlyData.read(str(path))["vertex"].data
    except (OSError, ValueError, KeyError) as exc:
        raise SplatpackError(f"cannot read the seed point cloud: {exc}", path) from None
    names = vertex.dtype.names
    xyz = np.stack([vertex[c] for c in ("x", "y", "z")], axis=1).astype(np.float32)
    if all(c in names for c in ("red", "green", "blue")):
        rgb = np.stack([vertex[c] for c in ("red", "green", "blue")], axis=1)
        if rgb.dtype.kind == "f":  # float colours in [0, 1]
            rgb = np.round(np.clip(rgb, 0, 1) * 255)
        rgb = rgb.astype(np.uint8)
    else:
        rgb = np.full_like(xyz, 128, dtype=np.uint8)
    return xyz, rgb


@dataclass
class SplatpackDataParserConfig(NerfstudioDataParserConfig):
    """nerfstudio-data (transforms.json, instant-ngp keys too) with an open3d-free seed point cloud."""

    _target: type = field(default_factory=lambda: SplatpackDataParser)
    load_3D_points: bool = True
    """Seed the Gaussians from ``ply_file_path`` in transforms.json when present."""


class SplatpackDataParser(Nerfstudio):
    config: SplatpackDataParserConfig

    def _load_3D_points(self, ply_file_path: Path, transform_matrix: torch.Tensor, scale_factor: float):
        xyz, rgb = read_seed_points(ply_file_path)
        if len(xyz) == 0:
            return None
        points = torch.from_numpy(xyz)
        points = torch.cat([points, torch.ones_like(points[:, :1])], dim=-1) @ transform_matrix.T
        return {"points3D_xyz": points * scale_factor, "points3D_rgb": torch.from_numpy(rgb)}
