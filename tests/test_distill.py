"""Post-hoc distillation into ``.spk``: camera rigs, the fit, the fidelity report (``splatpack.distill``)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

import splatpack.io as sio
from splatpack.distill.fit import DistillConfig, distill, prune
from splatpack.distill.report import compress_scene
from splatpack.distill.rig import (
    HELD_OUT_EVERY,
    INSIDE_SPREAD,
    camera_views,
    extent,
    inside_viewmats,
    orbit_viewmats,
    virtual_views,
)
from splatpack.errors import SplatpackError
from splatpack.evaluation import render_views, score
from splatpack.io import spk
from splatpack.scene import Splats, rgb_to_sh0


def textured_ball(n: int = 3000, seed: int = 0) -> Splats:
    """A sphere of radius 1 covered by small opaque Gaussians in colour bands and a checker: an object with
    structure at several scales, so that pruning and fitting have something to keep."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
    lat, lon = torch.asin(dirs[:, 2]), torch.atan2(dirs[:, 1], dirs[:, 0])
    checker = ((torch.floor(lat * 4) + torch.floor(lon * 4)) % 2)[:, None]
    bands = torch.stack([0.5 + 0.4 * torch.sin(3 * lat), 0.5 + 0.4 * torch.cos(2 * lon), 0.3 + 0.4 * checker[:, 0]], 1)
    rgb = (0.7 * bands + 0.3 * checker).clamp(0.02, 0.98)
    return Splats(
        means=dirs,
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=1),
        log_scales=torch.full((n, 3), math.log(0.05)),
        opacity_logits=torch.full((n,), 3.0),
        sh0=rgb_to_sh0(rgb)[:, None, :],
        shN=torch.zeros(n, 0, 3),
    )


# ---------------------------------------------------------------------------------------------- rigs


def test_extent_ignores_far_floaters_and_tells_surrounding_scenes():
    ball = textured_ball(2000)
    ext = extent(ball)
    assert ext.centre.norm() < 0.1 and 0.95 < ext.radius < 1.05 and not ext.surrounds
    floaters = Splats.random(10, seed=1, extent=1.0)
    floaters.means[:] = floaters.means * 0 + 500.0  # 0.5 % of the scene, far away
    assert extent(Splats.cat([ball, floaters])).radius == pytest.approx(ext.radius, rel=0.05)
    shell = textured_ball(2000, seed=2)
    shell.means[:] = shell.means * 20  # a far background all around (half the scene): it surrounds the viewer
    assert extent(Splats.cat([ball, shell])).surrounds
    solid = textured_ball(2000, seed=3)
    solid.means[:] = solid.means * torch.rand(2000, 1, generator=torch.Generator().manual_seed(0)) ** (1 / 3)
    assert not extent(solid).surrounds  # a solid object is not a surrounding capture


def test_orbit_cameras_frame_the_scene_and_inside_cameras_stand_in_it():
    ext = extent(textured_ball(2000))
    for viewmat in orbit_viewmats(ext, 12):
        centre_cam = viewmat[:3, :3] @ ext.centre + viewmat[:3, 3]
        assert centre_cam[:2].abs().max() < 1e-4 and centre_cam[2] > ext.radius  # on the axis, in front
    inside = inside_viewmats(ext, 12, seed=0)
    eyes = -torch.einsum("cji,cj->ci", inside[:, :3, :3], inside[:, :3, 3])  # camera centres -R^T t
    assert ((eyes - ext.centre).norm(dim=1) <= INSIDE_SPREAD * ext.core + 1e-5).all()


def test_virtual_views_hold_out_every_eighth_camera():
    fit, held, _ = virtual_views(textured_ball(500), views=32, width=40, rig="both")
    assert len(fit) + len(held) == 32 and len(held) == 32 // HELD_OUT_EVERY
    assert fit.sizes[0] == (40, 30) and held.images is None and fit.near_plane > 0
    with pytest.raises(SplatpackError):
        virtual_views(textured_ball(500), views=1, width=40)
    with pytest.raises(SplatpackError):
        virtual_views(textured_ball(500), views=8, width=40, rig="sideways")


def test_camera_views_are_the_captures_own_cameras_at_the_chosen_width(demo_scene):
    from splatpack.datasets.transforms import load_transforms

    fit, held = camera_views(demo_scene, width=80)
    cams = load_transforms(demo_scene, split="all")
    assert len(fit) + len(held) == len(cams.names) and len(held) == len(cams.names) // HELD_OUT_EVERY
    assert fit.sizes[0] == (80, 60) and cams.width == 160  # the demo capture is 160x120
    every = torch.cat([fit.viewmats, held.viewmats])
    assert all(any(torch.allclose(v, c, atol=1e-5) for c in cams.viewmats) for v in every)
    assert torch.allclose(fit.Ks[0, :2], cams.Ks[0, :2] / 2)


# ---------------------------------------------------------------------------------------------- fitting


@pytest.fixture(scope="module")
def ball_views():
    ball = textured_ball()
    fit, held, _ = virtual_views(ball, views=64, width=48)
    return ball, fit, held


def test_pruning_keeps_the_preset_share_of_the_score_mass(ball_views):
    ball, fit, _ = ball_views
    xs, xl = prune(ball, fit, DistillConfig(preset="XS")), prune(ball, fit, DistillConfig(preset="XL"))
    assert 0 < len(xs) < len(xl) <= len(ball)
    assert torch.equal(xs, torch.sort(xs).values)


def test_distilled_file_is_faithful_on_held_out_views(ball_views, tmp_path):
    """Fewer Gaussians, an SVQ'd file, and held-out renders close to the original's. Measured on this ball (seed
    0, 64 views at 48x36, preset M keeping 2,586 of 3,000): 31.63 dB after 150 steps, 29.45 dB for the pruned
    scene before any fitting or quantization; 30.5 dB asks the fit to more than make up for SVQ's loss."""
    ball, fit, held = ball_views
    report = compress_scene(
        ball, tmp_path / "ball.spk", fit, held, config=DistillConfig(preset="M", steps=150), png=tmp_path / "ball.png"
    )
    assert report["gaussians_after"] < report["gaussians_before"] == len(ball)
    print(f"held-out PSNR M: {report['held_out_psnr']:.2f} dB, {report['gaussians_after']} Gaussians")
    assert report["held_out_psnr"] > 30.5, report
    assert report["bytes"] == (tmp_path / "ball.spk").stat().st_size
    assert report["views_fitted"] == len(fit) and report["views_held_out"] == len(held)
    decoded = spk.read(tmp_path / "ball.spk")
    again = score(render_views(decoded, held), render_views(ball, held))
    assert again["psnr"] == pytest.approx(report["held_out_psnr"], abs=1e-4)  # the report scores the file
    from PIL import Image

    with Image.open(tmp_path / "ball.png") as picture:
        assert picture.size == (2 * 48, 3 * 36)  # original | compressed, three held-out views


def test_fitting_is_what_makes_the_file_faithful(ball_views):
    """The same pruning with zero steps (quantized straight away) is clearly worse than after fitting: XS keeps
    ~a third of the ball; measured 26.93 dB after 120 steps against 24.34 dB without."""
    ball, fit, held = ball_views
    targets = render_views(ball, held)

    def held_out_psnr(steps: int) -> float:
        compact = distill(ball, fit, DistillConfig(preset="XS", steps=steps)).compact
        return score(render_views(compact.to_splats().torch(), held), targets)["psnr"]

    fitted, unfitted = held_out_psnr(120), held_out_psnr(0)
    print(f"held-out PSNR XS: {fitted:.2f} dB fitted, {unfitted:.2f} dB unfitted")
    assert fitted > unfitted + 2.0


def test_distillation_is_deterministic_under_its_seed(ball_views, tmp_path):
    ball, fit, _ = ball_views
    for name in ("a", "b"):
        spk.write_compact(distill(ball, fit, DistillConfig(steps=20, seed=3)).compact, tmp_path / f"{name}.spk")
    assert (tmp_path / "a.spk").read_bytes() == (tmp_path / "b.spk").read_bytes()


def test_target_psnr_tries_larger_presets_until_it_is_met(ball_views, tmp_path):
    ball, fit, held = ball_views
    report = compress_scene(ball, tmp_path / "t.spk", fit, held, config=DistillConfig(steps=60), target_psnr=99.0)
    assert [t["preset"] for t in report["tries"]] == ["XS", "S", "M", "L", "XL"] and report["target_met"] is False
    sizes = [t["gaussians_after"] for t in report["tries"]]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    easy = compress_scene(ball, tmp_path / "e.spk", fit, held, config=DistillConfig(steps=60), target_psnr=5)
    assert [t["preset"] for t in easy["tries"]] == ["XS"] and easy["target_met"] is True


# ---------------------------------------------------------------------------------------------- command line


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "splatpack.cli", *map(str, args)], capture_output=True, text=True, timeout=600
    )


def test_compress_to_spk_distils_and_reports(tmp_path):
    """``splatpack compress in.ply out.spk`` end to end: summary line, report JSON + PNG, deterministic bytes."""
    ply = tmp_path / "ball.ply"
    sio.write(textured_ball(), ply)
    args = ("--steps", "40", "--views", "32", "--size", "32", "--seed", "5")
    r = _cli("compress", ply, tmp_path / "a.spk", *args, "--preset", "M", "--report", tmp_path / "a.json")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "a.json").read_text())
    assert "3,000 -> " in r.stdout and f"held-out render PSNR {report['held_out_psnr']:.2f} dB" in r.stdout
    assert report["preset"] == "M" and report["bytes"] == (tmp_path / "a.spk").stat().st_size
    assert (tmp_path / "a.png").stat().st_size > 0 and report["views_held_out"] == 4
    r = _cli("compress", ply, tmp_path / "b.spk", *args, "--preset", "M", "--quiet")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.spk").read_bytes() == (tmp_path / "b.spk").read_bytes()
    assert len(spk.read(tmp_path / "a.spk")) == report["gaussians_after"] < 3000


def test_compress_to_spk_refuses_bad_options_in_one_line(tmp_path):
    ply = tmp_path / "ball.ply"
    sio.write(textured_ball(500), ply)
    for extra, problem in (
        (("--preset", "tiny"), "not a spk preset"),
        (("--cameras", tmp_path / "nowhere.json"), "nowhere.json"),
        (("--size", "4"), "--size 4"),
        (("--spk-positions", "fp32"), "positions must be"),  # refused before any fitting
    ):
        r = _cli("compress", ply, tmp_path / "x.spk", "--steps", "5", *extra)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == 2 and len(lines) == 1 and problem in lines[0], (r.returncode, r.stderr)
        assert "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ball.ply"]  # nothing written
    r = _cli("compress", ply, tmp_path / "x.sog", "--preset", "XS")
    assert r.returncode == 2 and "not a sog preset" in r.stderr
