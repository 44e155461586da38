"""Scene edits (splatpack.edit) and ``splatpack transform``: similarity transforms against rendering, exact filter
counts, merging, ordering, and parity with splat-transform's actions."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

import splatpack.io as sio
from splatpack.cli import main
from splatpack.edit import filters
from splatpack.edit.rigid import euler_matrix, quaternion_matrix, similarity
from splatpack.errors import SplatpackError
from splatpack.scene import Splats


def _viewmats(n: int, radius: float) -> torch.Tensor:
    from splatpack.render.cameras import look_at

    g = torch.Generator().manual_seed(4)
    eyes = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1) * radius
    return look_at(eyes, up=(0.0, 0.0, 1.0), dtype=torch.float64)


@pytest.mark.parametrize("degree", [1, 3])
def test_rotated_scene_renders_as_the_camera_rotated_the_other_way(degree):
    """Moving the scene by x -> s R x + t and the cameras with it gives the same images: SH rotate with the scene."""
    from splatpack.render import render_splats

    scene = Splats.random(500, degree, seed=7, extent=0.6).map(lambda t: t.double())
    scene.shN.mul_(3.0)  # strong view dependence, so an unrotated SH shows
    rot, shift, s = euler_matrix((90.0, 20.0, -35.0)), torch.tensor([0.4, -0.3, 0.2], dtype=torch.float64), 1.7
    moved = similarity(scene, rotation=rot, translation=shift, scale=s)
    viewmats = _viewmats(3, 2.5)
    # x_cam = R_v x + t_v with x = R^T (x' - t) / s; scaling x_cam by s leaves the image unchanged.
    moved_views = viewmats.clone()
    moved_views[:, :3, :3] = viewmats[:, :3, :3] @ rot.T
    moved_views[:, :3, 3] = s * viewmats[:, :3, 3] - (viewmats[:, :3, :3] @ rot.T @ shift)
    K = torch.tensor([[[70.0, 0, 40], [0, 70.0, 30], [0, 0, 1]]], dtype=torch.float64).repeat(3, 1, 1)
    before = render_splats(scene, viewmats, K, 80, 60)
    after = render_splats(moved, moved_views, K, 80, 60)
    assert before.alpha.mean() > 0.2
    assert (before.rgb - after.rgb).abs().max() < 1e-6
    unrotated = Splats(**{**{f: getattr(moved, f) for f in Splats.FIELDS}, "shN": scene.shN})
    assert (render_splats(unrotated, moved_views, K, 80, 60).rgb - before.rgb).abs().max() > 1e-2


def test_quaternion_and_euler_agree_and_bad_rotations_are_refused():
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_euler("xyz", [10, 20, 30], degrees=True).as_quat()
    assert np.allclose(quaternion_matrix((2 * w, 2 * x, 2 * y, 2 * z)), euler_matrix((10, 20, 30)), atol=1e-12)
    with pytest.raises(SplatpackError, match="not a rotation"):
        quaternion_matrix((0, 0, 0, 0))
    with pytest.raises(SplatpackError, match="not a rotation"):
        similarity(Splats.random(3), rotation=torch.diag(torch.tensor([1.0, 1.0, -1.0])))
    with pytest.raises(SplatpackError, match="positive"):
        similarity(Splats.random(3), scale=0.0)


def test_filters_keep_exact_counts():
    s = Splats.create(10)
    s.means[:, 0] = torch.arange(10, dtype=torch.float32)  # x = 0..9
    s.opacity_logits[:] = torch.logit(torch.linspace(0.01, 0.99, 10))
    s.log_scales[:, 1] = torch.log(torch.arange(1, 11, dtype=torch.float32))  # largest scale 1..10
    assert int(filters.box_mask(s, (2, -1, -1), (5, 1, 1)).sum()) == 4  # inclusive: 2, 3, 4, 5
    assert int(filters.sphere_mask(s, (0, 0, 0), 3.0).sum()) == 4
    assert int(filters.value_mask(s, "opacity", "lt", 0.05).sum()) == 1  # only 0.01
    assert int(filters.value_mask(s, "opacity_raw", "gte", 0.0).sum()) == 5
    assert int(filters.value_mask(s, "scale", "gt", 7.5).sum()) == 3
    assert int(filters.value_mask(s, "scale_1", "lte", 2.0).sum()) == 2
    assert int(filters.value_mask(s, "x", "neq", 3).sum()) == 9
    top = filters.most_important(s, 3)
    assert top.tolist() == [7, 8, 9]  # largest opacity x volume, in file order
    with pytest.raises(SplatpackError, match="unknown attribute 'colour'"):
        filters.attribute(s, "colour")
    with pytest.raises(SplatpackError, match="f_rest values"):
        filters.attribute(s, "f_rest_0")
    sh = Splats.random(4, 1, seed=2)
    assert torch.equal(filters.attribute(sh, "f_rest_4"), sh.shN[:, 1, 1])  # channel-major: G of coefficient 1


def test_morton_reorder_is_a_permutation_along_the_curve():
    s = Splats.random(300, seed=3)
    m = filters.morton_reorder(s)
    assert sorted(m.means[:, 0].tolist()) == sorted(s.means[:, 0].tolist())
    from splatpack.sort.morton import morton_codes

    codes = morton_codes(m.means)
    assert bool((codes[1:] >= codes[:-1]).all())


def test_transform_command_logs_each_step(tmp_path, capsys):
    a, b = tmp_path / "a.ply", tmp_path / "b.spz"
    sio.write(Splats.random(2000, 3, seed=1, extent=2.0), a)
    sio.write(Splats.random(1000, 1, seed=2, extent=2.0), b)
    out = tmp_path / "out.ply"
    argv = ["transform", str(a), str(b), str(out), "-r", "90", "0", "0", "-s", "2", "-t", "1", "0", "0"]
    argv += ["-B", "-3", "-3", "-3", "3", "3", "3", "-V", "opacity,gte,0.3", "--top", "500", "-m"]
    assert main(argv) == 0
    log = capsys.readouterr().out
    merged = Splats.cat([sio.read(a), sio.read(b)])
    moved = similarity(merged, rotation=euler_matrix((90, 0, 0)), translation=(1, 0, 0), scale=2.0)
    n_box = int(filters.box_mask(moved, (-3,) * 3, (3,) * 3).sum())
    boxed = moved[filters.box_mask(moved, (-3,) * 3, (3,) * 3)]
    n_op = int(filters.value_mask(boxed, "opacity", "gte", 0.3).sum())
    assert "merge: kept 3,000 of 3,000" in log
    assert f"box: kept {n_box:,} of 3,000" in log and 0 < n_box < 3000
    assert f"opacity gte 0.3: kept {n_op:,} of {n_box:,}" in log
    assert f"top 500: kept 500 of {n_op:,}" in log and "Morton order: kept 500 of 500" in log
    got = sio.read(out)
    assert len(got) == 500 and got.sh_degree == 3
    # Every written Gaussian is one of the moved ones, unchanged by the filters.
    expect = boxed[filters.value_mask(boxed, "opacity", "gte", 0.3)]
    d = torch.cdist(got.means.double(), expect.means.double()).min(dim=1).values
    assert float(d.max()) < 1e-5
    assert main(["transform", str(a), str(tmp_path / "x.ply"), "-V", "opacity,gte"]) == 2
    assert "expected NAME,CMP,VALUE" in capsys.readouterr().err
    assert (
        main(["transform", str(a), str(tmp_path / "x.ply"), "-r", "1", "2", "3", "--quaternion", "1", "0", "0", "0"])
        == 2
    )
    assert main(["transform", str(a), str(tmp_path / "x.ply"), "-S", "100", "100", "100", "1"]) == 2
    assert "kept no Gaussians" in capsys.readouterr().err and not (tmp_path / "x.ply").exists()


def test_rotation_and_translation_match_splat_transform(tmp_path, splat_transform):
    """splat-transform acts in PlayCanvas's frame (file x and y negated): its -r a,b,c -t u,v,w is ours with
    a, b, u, v negated. Same positions, rotations and scales."""
    src = tmp_path / "in.ply"
    scene = Splats.random(200, 0, seed=9)
    sio.write(scene, src)
    peer = tmp_path / "peer.ply"
    subprocess.run(
        [splat_transform, "-q", "-w", src, "-r", "30,40,50", "-t", "1,2,3", "-s", "1.5", peer],
        check=True,
        capture_output=True,
        timeout=120,
    )
    theirs = sio.read(peer)
    # Its actions run in command-line order: rotate, translate, then scale (which scales the translation too).
    ours = similarity(
        similarity(scene, rotation=euler_matrix((-30, -40, 50)), translation=(-1.0, -2.0, 3.0)), scale=1.5
    )
    assert torch.allclose(theirs.means, ours.means, atol=1e-5)
    assert torch.allclose(theirs.log_scales, ours.log_scales, atol=1e-5)
    dots = (theirs.unit_quats * ours.unit_quats).sum(dim=1).abs()
    assert float(dots.min()) > 1 - 1e-5
    assert np.isclose(float(theirs.opacity_logits[0]), float(scene.opacity_logits[0]), atol=1e-6)


def test_user_story_peer_ply_with_infinite_opacities_to_lod_sog_and_back(tmp_path, splat_transform, capsys):
    """A PLY from splat-transform with +Inf opacities (as its guitar sample has) -> upright, cropped, floaters
    dropped -> LOD SOG with 3 levels -> splat-transform reads it -> the viewer's loader shows it."""
    import plyfile

    from viewer.loading import load_scene

    scene = Splats.random(3000, 1, seed=12, extent=2.0)
    scene.opacity_logits[::7] = 12.0  # opacity byte 255 in a compressed PLY: +Inf once splat-transform decodes it
    scene.opacity_logits[1::9] = -6.0  # faint floaters for the opacity filter
    compressed = tmp_path / "capture.compressed.ply"
    sio.write(scene, compressed)
    peer_ply = tmp_path / "guitar.ply"
    subprocess.run([splat_transform, "-q", "-w", compressed, peer_ply], check=True, capture_output=True, timeout=180)
    infinite = int(np.isinf(plyfile.PlyData.read(str(peer_ply))["vertex"]["opacity"]).sum())
    assert infinite > 300
    with pytest.raises(SplatpackError, match="NaN/Inf values"):
        sio.read(peer_ply, nonfinite="error")

    out = tmp_path / "site" / "lod-meta.json"
    argv = ["transform", str(peer_ply), str(out), "-r", "90", "0", "0", "-B", "-1.5", "-1.5", "-1.5", "1.5", "1.5"]
    argv += ["1.5", "-V", "opacity,gte,0.05", "--lod-levels", "3"]
    assert main(argv) == 0
    log = capsys.readouterr().out
    read = sio.read(peer_ply)
    upright = similarity(read, rotation=euler_matrix((90, 0, 0)))
    boxed = upright[filters.box_mask(upright, (-1.5,) * 3, (1.5,) * 3)]
    kept = int(filters.value_mask(boxed, "opacity", "gte", 0.05).sum())
    assert f"box: kept {len(boxed):,} of 3,000" in log and f"opacity gte 0.05: kept {kept:,} of {len(boxed):,}" in log
    assert 0 < kept < len(boxed) < 3000
    from splatpack.io import lod_sog

    counts = lod_sog.level_counts(out)
    assert len(counts) == 3 and counts[0] == kept and counts[2] < counts[1] < counts[0]
    level0 = tmp_path / "level0.ply"
    subprocess.run(
        [splat_transform, "-q", "-w", "-g", "cpu", out, "-L", "0", level0], check=True, capture_output=True, timeout=180
    )
    theirs = sio.read(level0)
    assert len(theirs) == kept and bool(torch.isfinite(theirs.opacity_logits).all())
    # The upright scene: y of the stored centres is the input's z (rotation about x by 90 degrees).
    assert torch.allclose(
        theirs.means.sort(dim=0).values, sio.read(out, lod_level=0).means.sort(dim=0).values, atol=1e-4
    )
    shown = load_scene(out, max_splats=counts[1])
    assert shown.total == counts[1] and shown.format == "lod-sog"
    assert float(shown.splats.opacities.max()) > 0.99  # the clamped +Inf opacities survive as opaque Gaussians
