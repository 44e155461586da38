"""Writers other pipelines ask for: glTF binary with KHR_gaussian_splatting, and PlayCanvas compressed PLY; both
checked against splat-transform (it writes .glb but does not read it: ours must equal its file; it reads
compressed PLY: its decode of ours must equal ours)."""

from __future__ import annotations

import json
import struct
import subprocess

import numpy as np
import pytest
import torch

import splatpack.io as sio
from splatpack.io import gltf
from splatpack.scene import Splats


def _run(tool, *args):
    subprocess.run([tool, "-q", "-w", *map(str, args)], check=True, capture_output=True, timeout=180)


def _glb_attributes(path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20 : 20 + length])
    binary = data[20 + length + 8 :]
    prim = doc["meshes"][0]["primitives"][0]
    assert prim["mode"] == 0 and prim["extensions"]["KHR_gaussian_splatting"]["kernel"] == "ellipse"
    return {name: gltf._accessor(doc, binary, index, path) for name, index in prim["attributes"].items()}


@pytest.fixture(scope="module")
def scene_ply(tmp_path_factory):
    path = tmp_path_factory.mktemp("writers") / "scene.ply"
    sio.write(Splats.random(1500, 3, seed=21, extent=2.0), path)
    return path


def test_glb_equals_splat_transforms_and_reads_back(scene_ply, tmp_path, splat_transform):
    ours, theirs = tmp_path / "ours.glb", tmp_path / "theirs.glb"
    sio.write(sio.read(scene_ply), ours)
    _run(splat_transform, scene_ply, theirs)
    a, b = _glb_attributes(ours), _glb_attributes(theirs)
    assert sorted(a) == sorted(b) and len(a) == 5 + 16  # POSITION COLOR_0 ROTATION SCALE OPACITY + 16 SH
    for name in a:
        if name.endswith(":ROTATION"):  # q and -q are one rotation
            dots = np.abs((a[name] * b[name]).sum(axis=1))
            assert dots.min() > 1 - 1e-6, name
        else:
            tol = 1.5 / 255 if name == "COLOR_0" else 1e-5
            assert np.abs(a[name] - b[name]).max() <= tol * max(1.0, np.abs(b[name]).max()), name
    original = sio.read(scene_ply)
    for path in (ours, theirs):
        assert sio.detect_format(path) == "glb"
        back = sio.read(path)
        assert back.sh_degree == 3
        assert torch.allclose(back.means, original.means, atol=1e-6)
        assert torch.allclose(back.log_scales, original.log_scales, atol=1e-5)
        assert torch.allclose(back.opacity_logits, original.opacity_logits, atol=1e-4)
        assert torch.allclose(back.sh, original.sh, atol=1e-5)
        assert float((back.unit_quats * original.unit_quats).sum(dim=1).abs().min()) > 1 - 1e-6


def test_compressed_ply_is_read_alike_by_splat_transform(scene_ply, tmp_path, splat_transform):
    original = sio.read(scene_ply)
    out = tmp_path / "scene.compressed.ply"
    sio.write(original, out)
    assert sio.detect_format(out) == "compressed-ply"
    ours = sio.read(out)
    peer = tmp_path / "peer.ply"
    _run(splat_transform, out, peer)
    theirs = sio.read(peer)
    assert len(ours) == len(theirs) == 1500 and theirs.sh_degree == 3
    assert torch.allclose(ours.means, theirs.means, atol=1e-5)
    assert torch.allclose(ours.log_scales, theirs.log_scales, atol=1e-4)
    assert torch.allclose(ours.sh0, theirs.sh0, atol=1e-4)
    assert torch.allclose(ours.shN, theirs.shN, atol=1e-4)
    assert torch.allclose(ours.opacities, theirs.opacities, atol=1e-4)
    assert float((ours.unit_quats * theirs.unit_quats).sum(dim=1).abs().min()) > 1 - 1e-5
    # Bounded against the original (the file is in Morton order: match each decoded Gaussian to its source).
    nearest = torch.cdist(ours.means.double(), original.means.double()).min(dim=1)
    src = original[nearest.indices]
    extent = (original.means.max(0).values - original.means.min(0).values).max()
    assert float(nearest.values.max()) < float(extent) / 1023  # one 10-bit step of the whole box at worst
    assert float((ours.opacities - src.opacities).abs().max()) <= 0.5 / 255 + 1e-6
    assert float((ours.shN - src.shN).abs().max()) <= 8 / 256 + 1e-6
    assert float((ours.unit_quats * src.unit_quats).sum(dim=1).abs().min()) > 0.999
