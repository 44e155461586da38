"""Standard 3DGS PLY through plyfile alone: an oracle for interop tests that is independent of splatpack.io.ply."""

from __future__ import annotations

import numpy as np
import plyfile
import torch

from splatpack.scene import Splats


def write_ply(splats: Splats, path) -> None:
    """Inria layout: x y z nx ny nz f_dc_* f_rest_* (channel-major) opacity scale_* rot_*."""
    n, k = len(splats), splats.shN.shape[1]
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(3 * k)]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    s = splats.detach().to("cpu", torch.float32)
    columns = [s.means, torch.zeros(n, 3), s.sh0[:, 0], s.shN.transpose(1, 2).reshape(n, 3 * k)]
    columns += [s.opacity_logits[:, None], s.log_scales, s.quats]
    table = torch.cat(columns, dim=1).numpy()
    rows = np.empty(n, dtype=[(name, "<f4") for name in names])
    for i, name in enumerate(names):
        rows[name] = table[:, i]
    plyfile.PlyData([plyfile.PlyElement.describe(rows, "vertex")]).write(str(path))


def read_ply(path) -> Splats:
    """Any property order (splat-transform writes its own), f_rest transposed back to coefficient-major."""
    v = plyfile.PlyData.read(str(path))["vertex"]
    names = {p.name for p in v.properties}
    k = sum(name.startswith("f_rest_") for name in names) // 3

    def col(*keys: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([np.asarray(v[key], dtype=np.float32) for key in keys], axis=1))

    n = v.count
    rest = col(*[f"f_rest_{i}" for i in range(3 * k)]) if k else torch.zeros(n, 0)
    return Splats(
        means=col("x", "y", "z"),
        quats=col("rot_0", "rot_1", "rot_2", "rot_3"),
        log_scales=col("scale_0", "scale_1", "scale_2"),
        opacity_logits=col("opacity")[:, 0],
        sh0=col("f_dc_0", "f_dc_1", "f_dc_2")[:, None, :],
        shN=rest.reshape(n, 3, k).transpose(1, 2).contiguous(),
    )
