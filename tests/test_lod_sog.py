"""LOD SOG (lod-meta.json): decimation by moment matching, our writer read by splat-transform, splat-transform's
writer read by us, the CLI and the viewer's choice of level."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

import splatpack.io as sio
from splatpack.cli import main
from splatpack.edit.decimate import decimate, merge_pairs
from splatpack.errors import SplatpackError
from splatpack.io import lod_sog
from splatpack.render._torch_impl import rotation_matrices
from splatpack.scene import Splats


def _cov(s: Splats) -> torch.Tensor:
    rs = rotation_matrices(s.quats.double()) * s.scales.double()[:, None, :]
    return rs @ rs.transpose(1, 2)


def _peer(tool, *args):
    return subprocess.run(
        [tool, "-q", "-w", "-g", "cpu", *map(str, args)], check=True, capture_output=True, timeout=300
    )


def _assert_level_read_alike(tool, path, level: int, tmp_path) -> None:
    """splat-transform's decode of one level (-L) equals ours, Gaussian for Gaussian."""
    out = tmp_path / f"level{level}.ply"
    _peer(tool, path, "-L", str(level), out)
    theirs, mine = sio.read(out), sio.read(path, lod_level=level)
    assert len(theirs) == len(mine)
    assert torch.allclose(theirs.means, mine.means, atol=1e-4)
    assert torch.allclose(theirs.log_scales, mine.log_scales, atol=1e-4)
    assert torch.allclose(theirs.opacities, mine.opacities, atol=1e-3)


def test_merging_two_gaussians_keeps_their_moments_and_combined_opacity():
    s = Splats.random(2, 1, seed=3).to(torch.float64)
    merged = merge_pairs(s)
    assert len(merged) == 1
    alpha = s.opacities
    w = alpha * s.scales.prod(dim=1)
    w = w / w.sum()
    mu = (w[:, None] * s.means).sum(dim=0)
    d = s.means - mu
    cov = (w[:, None, None] * (_cov(s) + d[:, :, None] * d[:, None, :])).sum(dim=0)
    assert torch.allclose(merged.means[0], mu, atol=1e-12)
    assert torch.allclose(_cov(merged)[0], cov, atol=1e-10)
    assert torch.allclose(merged.opacities[0], 1 - (1 - alpha).prod(), atol=1e-12)
    assert torch.allclose(merged.shN[0], (w[:, None, None] * s.shN).sum(dim=0), atol=1e-12)


def test_decimate_reaches_the_target_in_halving_passes():
    s = Splats.random(1001, 0, seed=5, extent=2.0)
    assert len(decimate(s, 600)) == 501  # one pass: 500 pairs and the odd one
    assert len(decimate(s, 250)) == 126  # three passes: 1001 -> 501 -> 251 -> 126
    assert len(decimate(s, 5000)) == 1001
    with pytest.raises(SplatpackError, match="at least 1"):
        decimate(s, 0)


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lod") / "out"
    scene = Splats.random(3000, 0, seed=8, extent=3.0)
    lod_sog.write(scene, folder / "lod-meta.json", lod_levels=3, chunk_gaussians=1024, chunk_extent=2, chunk_min=256)
    return scene, folder / "lod-meta.json"


def test_our_lod_layout_and_reading(ours):
    scene, path = ours
    meta = json.loads(path.read_text())
    assert meta["version"] == 1 and meta["counts"] == [3000, 1500, 750] and meta["lodLevels"] == 3
    assert all((path.parent / name).is_file() for name in meta["filenames"])
    assert len(meta["filenames"]) >= 4  # level 0 spans several files of about 1024
    assert sio.detect_format(path) == sio.detect_format(path.parent) == "lod-sog"
    assert len(sio.read(path)) == 5250
    level0 = sio.read(path, lod_level=0)
    d = torch.cdist(level0.means.double(), scene.means.double()).min(dim=1).values
    assert len(level0) == 3000 and float(d.max()) < 0.01
    with pytest.raises(SplatpackError, match="levels 0-2"):
        sio.read(path, lod_level=3)


def test_splat_transform_reads_every_level_of_ours(ours, tmp_path, splat_transform):
    _, path = ours
    for level in range(3):
        _assert_level_read_alike(splat_transform, path, level, tmp_path)


def test_we_read_splat_transforms_lod(tmp_path, splat_transform):
    fine, coarse = tmp_path / "fine.ply", tmp_path / "coarse.ply"
    sio.write(Splats.random(2500, 0, seed=1, extent=3.0), fine)
    sio.write(decimate(sio.read(fine), 600), coarse)
    path = tmp_path / "peer" / "lod-meta.json"
    _peer(splat_transform, fine, "-l", "0", coarse, "-l", "1", "--lod-chunk-count", "1", "--lod-chunk-extent", "2",
          "--lod-chunk-min", "1", path)  # fmt: skip
    assert lod_sog.level_counts(path) == [2500, len(sio.read(coarse))]
    assert lod_sog.describe(path)["chunks"] > 1
    for level in range(2):
        _assert_level_read_alike(splat_transform, path, level, tmp_path)


def test_compress_writes_lod_and_the_viewer_picks_the_finest_level_within_budget(tmp_path, capsys):
    from viewer.loading import load_scene

    src = tmp_path / "in.ply"
    sio.write(Splats.random(1200, 0, seed=2), src)
    out = tmp_path / "out" / "lod-meta.json"
    assert main(["compress", str(src), str(out), "--lod-levels", "3"]) == 0
    line = capsys.readouterr().out
    assert "(lod-sog" in line and "smaller than the input" in line
    assert lod_sog.level_counts(out) == [1200, 600, 300]
    assert load_scene(out, max_splats=700).total == 600
    assert load_scene(out, max_splats=10_000).total == 1200
    assert load_scene(out, max_splats=10).total == 300  # the coarsest when none fits
    assert main(["info", str(out), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    folder_bytes = sum(p.stat().st_size for p in out.parent.rglob("*") if p.is_file())
    assert facts["bytes"] == folder_bytes and facts["levels"] == 3 and facts["gaussians"] == 2100
    assert main(["info", str(out), "--json", "--lod-level", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["gaussians"] == 600
    assert main(["decompress", str(out), str(tmp_path / "coarse.ply"), "--lod-level", "2"]) == 0
    assert len(sio.read(tmp_path / "coarse.ply")) == 300
    assert main(["compress", str(src), str(tmp_path / "x.spz"), "--lod-level", "1"]) == 2
    assert "in.ply: lod_level does not apply to ply files" in capsys.readouterr().err


def test_every_form_of_a_scene_counts_all_its_bytes_and_the_summary_says_larger(tmp_path, capsys):
    src = tmp_path / "in.ply"
    sio.write(Splats.random(800, 1, seed=6), src)
    folder = tmp_path / "scene.sog.d"
    assert main(["compress", str(src), str(folder), "--sort", "morton"]) == 0
    capsys.readouterr()
    sizes = {}
    for form in (folder, folder / "meta.json"):
        assert main(["info", str(form), "--json"]) == 0
        sizes[form.name] = json.loads(capsys.readouterr().out)["bytes"]
    assert sizes["scene.sog.d"] == sizes["meta.json"] == sum(p.stat().st_size for p in folder.iterdir())
    spz = tmp_path / "small.spz"
    assert main(["compress", str(src), str(spz)]) == 0
    assert "x smaller than the input" in capsys.readouterr().out
    assert main(["compress", str(spz), str(tmp_path / "big.ply")]) == 0
    ratio = (tmp_path / "big.ply").stat().st_size / spz.stat().st_size
    assert f"{ratio:.1f}x larger than the input" in capsys.readouterr().out
