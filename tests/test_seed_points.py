"""Seed point clouds: one colour rule for ns-process-data's PLYs, COLMAP points and the nerfstudio dataparser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from splatpack.datasets import colmap as cm
from splatpack.datasets import load_seed_points
from splatpack.datasets.seed_points import read_point_ply
from splatpack.errors import SplatpackError


def _colmap_points(n: int = 300) -> cm.ColmapPoints:
    rng = np.random.default_rng(0)
    rgb = np.stack([np.arange(n) % 256, (np.arange(n) * 7) % 256, 255 - np.arange(n) % 256], axis=1)
    return cm.ColmapPoints(
        ids=np.arange(1, n + 1, dtype=np.uint64),
        xyz=rng.normal(size=(n, 3)),
        rgb=rgb.astype(np.uint8),
        error=np.zeros(n),
        track_offsets=np.zeros(n + 1, dtype=np.int64),
        tracks=np.zeros((0, 2), dtype=np.int32),
    )


def _write_ply(path: Path, xyz: np.ndarray, colours: dict[str, np.ndarray] | None = None) -> Path:
    fields = [("x", "f4"), ("y", "f4"), ("z", "f4")] + [(k, v.dtype.str) for k, v in (colours or {}).items()]
    vertex = np.empty(len(xyz), dtype=fields)
    vertex["x"], vertex["y"], vertex["z"] = xyz.T
    for key, values in (colours or {}).items():
        vertex[key] = values
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(path))
    return path


def test_ns_process_data_ply_reads_as_the_colmap_points(tmp_path):
    """nerfstudio's own COLMAP -> PLY writer (ns-process-data, uint8 colours) and points3D.bin give the same seed."""
    colmap_utils = pytest.importorskip("nerfstudio.process_data.colmap_utils")
    points = _colmap_points()
    cm.write_points3d_binary(points, tmp_path / "points3D.bin")
    colmap_utils.create_ply_from_colmap("sparse_pc.ply", tmp_path, tmp_path, None)
    xyz_ply, rgb_ply = load_seed_points(tmp_path / "sparse_pc.ply")
    xyz_bin, rgb_bin = load_seed_points(tmp_path / "points3D.bin")
    assert rgb_ply.dtype == torch.float32 and torch.equal(rgb_ply, rgb_bin)
    assert torch.equal(rgb_bin, torch.from_numpy(points.rgb.astype(np.float32) / 255.0))
    torch.testing.assert_close(xyz_ply, xyz_bin, atol=1e-6, rtol=0)  # the writer prints 6 decimals


def test_dataparser_passes_nerfstudio_the_file_colours(tmp_path):
    """The open3d-free dataparser hands nerfstudio the uint8 colours of the file, as open3d + nerfstudio would."""
    pytest.importorskip("nerfstudio")
    from splatpack.nerfstudio.dataparser import SplatpackDataParserConfig

    points = _colmap_points()
    rgb = {c: points.rgb[:, i] for i, c in enumerate(("red", "green", "blue"))}
    path = _write_ply(tmp_path / "seed.ply", points.xyz.astype(np.float32), rgb)
    parser = SplatpackDataParserConfig(data=tmp_path).setup()
    transform = torch.tensor([[0.0, -1.0, 0.0, 0.5], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, -2.0]])
    out = parser._load_3D_points(path, transform, 0.5)
    assert out["points3D_rgb"].dtype == torch.uint8 and torch.equal(out["points3D_rgb"], torch.from_numpy(points.rgb))
    # open3d (nerfstudio's reader) divides by 255 and nerfstudio multiplies back, truncating: exact for uint8.
    open3d_rule = (points.rgb / 255.0 * 255).astype(np.uint8)
    assert np.array_equal(open3d_rule, points.rgb)
    xyz = torch.from_numpy(points.xyz.astype(np.float32))
    torch.testing.assert_close(out["points3D_xyz"], 0.5 * (xyz @ transform[:, :3].T + transform[:, 3]))


def test_float_wide_and_missing_colours(tmp_path):
    xyz = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    floats = np.array([0.0, 0.25, 1.0, 1.5, -0.5], dtype=np.float32)
    path = _write_ply(tmp_path / "f.ply", xyz, {"red": floats, "green": floats, "blue": floats})
    got_xyz, rgb = read_point_ply(path)
    assert np.array_equal(got_xyz, xyz)
    assert np.array_equal(rgb[:, 0], [0.0, 0.25, 1.0, 1.0, 0.0])  # [0, 1] floats, clipped
    wide = np.array([0, 65535, 32768, 1, 0], dtype=np.uint16)
    _, rgb16 = read_point_ply(_write_ply(tmp_path / "u16.ply", xyz, {"red": wide, "green": wide, "blue": wide}))
    np.testing.assert_allclose(rgb16[:, 0], wide / 65535.0, rtol=1e-6)
    _, grey = read_point_ply(_write_ply(tmp_path / "plain.ply", xyz))
    assert np.array_equal(grey, np.full((5, 3), 0.5, dtype=np.float32))


def test_bad_seed_files_name_the_file(tmp_path):
    (tmp_path / "junk.ply").write_bytes(b"not a ply")
    with pytest.raises(SplatpackError, match="junk.ply: not a point-cloud PLY"):
        load_seed_points(tmp_path / "junk.ply")
    with pytest.raises(SplatpackError, match="gone.ply: no such file"):
        load_seed_points(tmp_path / "gone.ply")
    (tmp_path / "transforms.json").write_text("{}")
    with pytest.raises(SplatpackError, match="no ply_file_path"):
        load_seed_points(tmp_path / "transforms.json")
