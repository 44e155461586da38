"""The evaluation path: synthetic cameras, chunked rendering, scoring, file round trips and attribute errors."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from splatpack.evaluation import Views, attribute_errors, evaluate, render_views, round_trip, score
from splatpack.metrics import local_lpips
from splatpack.render import render_splats
from splatpack.render.cameras import fibonacci_sphere, look_at, pinhole, sphere_cameras
from splatpack.scene import Splats


def _project(viewmats, K, point):
    cam = viewmats[:, :3, :3] @ torch.as_tensor(point, dtype=viewmats.dtype) + viewmats[:, :3, 3]
    return (cam[:, :2] / cam[:, 2:]) * K[0, [0, 1], [0, 1]] + K[0, :2, 2], cam[:, 2]


def test_look_at_puts_the_target_at_the_principal_point_with_up_upwards():
    eyes = torch.tensor([[3.0, 1.0, 2.0], [-2.0, 4.0, 0.5], [0.1, -0.2, 5.0]], dtype=torch.float64)
    target = torch.tensor([0.2, -0.3, 0.4], dtype=torch.float64)
    up = (0.0, 0.0, 1.0)
    viewmats = look_at(eyes, target, up, dtype=torch.float64)
    K = pinhole(64, 48, 60, 3, dtype=torch.float64)
    rot = viewmats[:, :3, :3]
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(3, 3, 3))
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(3, dtype=torch.float64))
    xy, depth = _project(viewmats, K, target)
    torch.testing.assert_close(xy, torch.tensor([[32.0, 24.0]] * 3, dtype=torch.float64))
    torch.testing.assert_close(depth, (eyes - target).norm(dim=1))
    above, _ = _project(viewmats, K, target + 0.05 * torch.tensor(up, dtype=torch.float64))
    assert (above[:, 1] < 24.0 - 1e-3).all()  # image y grows downwards
    assert float(K[0, 0, 0]) == pytest.approx(32 / math.tan(math.radians(30)))


def test_sphere_cameras_surround_the_centre_and_look_at_it():
    dirs = fibonacci_sphere(64, torch.float64)
    torch.testing.assert_close(dirs.norm(dim=1), torch.ones(64, dtype=torch.float64))
    assert float(dirs.mean(dim=0).norm()) < 0.02  # evenly spread
    centre = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    viewmats = sphere_cameras(centre, 3.0, 64, dtype=torch.float64)
    eyes = torch.linalg.inv(viewmats)[:, :3, 3]
    torch.testing.assert_close((eyes - centre).norm(dim=1), torch.full((64,), 3.0, dtype=torch.float64))
    xy, depth = _project(viewmats, pinhole(10, 10, 60, 1, dtype=torch.float64), centre)
    torch.testing.assert_close(xy, torch.full((64, 2), 5.0, dtype=torch.float64))
    torch.testing.assert_close(depth, torch.full((64,), 3.0, dtype=torch.float64))


def _scene(n=300, sh_degree=1):
    return Splats.random(n, sh_degree, seed=1, extent=0.7)


def _views(sizes, images=None, background=None):
    viewmats = sphere_cameras((0.0, 0.0, 0.0), 3.0, len(sizes))
    Ks = torch.stack([pinhole(w, h, 50)[0] for w, h in sizes])
    return Views(viewmats, Ks, sizes, images, background)


def test_render_views_groups_views_of_one_size_and_composites_the_background():
    scene = _scene()
    sizes = [(24, 16), (24, 16), (24, 16), (20, 20), (24, 16)]
    background = torch.tensor([0.2, 0.7, 0.4])
    views = _views(sizes, background=background)
    one_by_one = render_views(scene, views, batch=1)
    batched = render_views(scene, views, batch=3)
    assert [tuple(r.shape) for r in batched] == [(h, w, 3) for w, h in sizes]
    for a, b in zip(one_by_one, batched):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    r = render_splats(scene, views.viewmats[3:4], views.Ks[3:4], 20, 20)
    expected = (r.rgb + (1 - r.alpha) * background).clamp(0, 1)[0]
    torch.testing.assert_close(batched[3], expected, rtol=0, atol=1e-6)
    assert float(r.alpha.max()) > 0.5 and float(r.alpha.min()) < 0.5  # the background shows somewhere


def test_score_known_values_and_rgba_targets():
    g = torch.Generator().manual_seed(0)
    gt = [torch.rand(16, 16, 3, generator=g) * 0.8 for _ in range(3)]
    offset = [img + 0.1 for img in gt]
    s = score(offset, gt)
    assert s["psnr"] == pytest.approx(20.0, abs=1e-4) and 0 < s["ssim"] < 1
    assert ("lpips" in s) == (local_lpips()[0] is not None)  # LPIPS only when its weights are on disk
    same = score(gt, gt)
    assert same["psnr"] > 150 and same["ssim"] == pytest.approx(1.0, abs=1e-6)
    # RGBA ground truth is composited over the background before scoring.
    background = torch.tensor([0.1, 0.9, 0.5])
    alpha = torch.rand(16, 16, 1, generator=g)
    rgba = torch.cat([gt[0], alpha], dim=-1)
    composite = gt[0] * alpha + (1 - alpha) * background
    assert score([composite], [rgba], background)["psnr"] > 100
    assert score([composite], [rgba])["psnr"] < 40  # over black it is another image


def test_evaluate_on_a_camera_set_and_round_trips(tmp_path):
    scene = _scene(sh_degree=2)
    views = _views([(32, 24)] * 4)
    images = torch.stack(render_views(scene, views))
    cameras = SimpleNamespace(viewmats=views.viewmats, Ks=views.Ks, width=32, height=24, images=images)
    heldout = Views.of_cameras(cameras)
    own = evaluate(scene, heldout)
    assert own["psnr"] > 100 and own["views"] == 4 and own["render_seconds_per_view"] > 0
    blurred = Splats(**{**{f: getattr(scene, f) for f in Splats.FIELDS}, "log_scales": scene.log_scales + 0.3})
    assert evaluate(blurred, heldout)["psnr"] < 40

    results = round_trip(scene, ["ply", "spz"], tmp_path / "out", heldout, options={"spz": {"version": 3}})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scene.ply", "scene.spz"]  # no leftovers
    ply_rt, spz_rt = results
    assert (ply_rt.format, ply_rt.path.name, ply_rt.num_gaussians) == ("ply", "scene.ply", len(scene))
    assert ply_rt.bytes == ply_rt.path.stat().st_size and spz_rt.bytes == spz_rt.path.stat().st_size
    assert ply_rt.scores["psnr"] > 100  # PLY is lossless
    assert 30 < spz_rt.scores["psnr"] < 100
    assert round_trip(scene, ["ply"], tmp_path / "unscored", None)[0].scores == {}


def test_attribute_errors_match_gaussians_by_centre():
    src = _scene(n=500, sh_degree=2)
    order = torch.randperm(len(src), generator=torch.Generator().manual_seed(0))
    shuffled = src[order]
    same = attribute_errors(src, shuffled)
    assert all(v == 0 for k, v in same.items() if not k.startswith("quat_deg"))
    assert same["quat_deg_max"] < 0.1  # acos of float32 dot products a rounding below 1

    moved = src[order]
    moved.means = moved.means + torch.tensor([1e-4, 0.0, 0.0])
    half_angle = math.radians(10) / 2  # 10 degrees about z, composed with each rotation
    turn = torch.tensor([math.cos(half_angle), 0.0, 0.0, math.sin(half_angle)])
    w1, x1, y1, z1 = turn
    w2, x2, y2, z2 = moved.unit_quats.unbind(-1)
    moved.quats = torch.stack([w1 * w2 - z1 * z2, w1 * x2 - z1 * y2, w1 * y2 + z1 * x2, w1 * z2 + z1 * w2], dim=-1)
    err = attribute_errors(src, moved)
    assert err["means_max"] == pytest.approx(1e-4, rel=1e-2)
    assert err["means_mean"] == pytest.approx(1e-4 / 3, rel=1e-2)
    assert err["means_rmse"] == pytest.approx(1e-4 / math.sqrt(3), rel=1e-2)
    assert err["quat_deg_mean"] == pytest.approx(10.0, abs=0.01) and err["sh0_max"] == 0

    dropped = src.with_sh_degree(0)  # a format without the higher bands decodes them as zeros
    err = attribute_errors(src, dropped)
    assert err["shN_max"] == pytest.approx(float(src.shN.abs().max()))
    assert "shN_max" not in attribute_errors(dropped, dropped)


def test_local_lpips_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    model, why = local_lpips()
    assert model is None and ("not on disk" in why or "unavailable" in why)
    assert not any(tmp_path.iterdir())  # nothing was fetched
