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

from splatpack.datasets.seed_points import read_point_ply


@dataclass
class SplatpackDataParserConfig(NerfstudioDataParserConfig):
    """nerfstudio-data (transforms.json, instant-ngp keys too) with an open3d-free seed point cloud."""

    _target: type = field(default_factory=lambda: SplatpackDataParser)
    load_3D_points: bool = True
    """Seed the Gaussians from ``ply_file_path`` in transforms.json when present."""


class SplatpackDataParser(Nerfstudio):
    config: SplatpackDataParserConfig

    def _load_3D_points(self, ply_file_path: Path, transform_matrix: torch.Tensor, scale_factor: float):
        xyz, rgb = read_point_ply(ply_file_path)
        if len(xyz) == 0:
            return None
        points = torch.from_numpy(xyz)
        points = torch.cat([points, torch.ones_like(points[:, :1])], dim=-1) @ transform_matrix.T
        # nerfstudio's models take seed colours as uint8 0-255.
        rgb_u8 = torch.from_numpy(np.round(rgb * 255.0).astype(np.uint8))
        return {"points3D_xyz": points * scale_factor, "points3D_rgb": rgb_u8}
