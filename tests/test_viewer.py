"""``splatpack view``: the viser viewer, in-process (no browser) and in a real headless Chromium."""

from __future__ import annotations

import math
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from browser.harness import (
    Browser,
    ViewerProcess,
    drawn_fraction,
    free_port,
    scene_region,
    wait_until,
)

import splatpack.io.ply as ply
from splatpack.cli import main
from splatpack.scene import Splats, rgb_to_sh0
from viewer.app import Viewer, facts_markdown, save_screenshot
from viewer.gaussians import budget_indices, covariances, importance_order, initial_camera, robust_bounds
from viewer.loading import load_scene
from viewer.shading import view_rgbs


def sphere_shell(n: int, *, invert: bool = False, centre=(0.5, -0.2, 3.0), seed: int = 0) -> Splats:
    """Gaussians on a unit sphere around ``centre``, coloured by their normal (inverted for the B file)."""
    g = torch.Generator().manual_seed(seed)
    normals = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
    s = Splats.create(n)
    s.means = normals + torch.tensor(centre)
    s.log_scales[:] = math.log(1.2 / math.sqrt(n))
    s.opacity_logits[:] = 3.0
    rgb = 0.5 + 0.5 * normals
    s.sh0 = rgb_to_sh0(1 - rgb if invert else rgb)[:, None, :]
    return s


@pytest.fixture
def viewer_factory():
    made = []

    def make(scenes, **kw):
        v = Viewer(scenes, host="127.0.0.1", port=free_port(), **kw)
        made.append(v)
        return v

    yield make
    for v in made:
        v.stop()


def _scene_file(tmp_path: Path, name: str, splats: Splats):
    path = tmp_path / name
    ply.write(splats, path)
    return load_scene(path)


# ---------------------------------------------------------------------------------------------- no browser


def test_budget_keeps_the_most_important_by_opacity_times_volume():
    s = Splats.random(2000, seed=3)
    k = 300
    picked = budget_indices(importance_order(s), k)
    score = (1 / (1 + np.exp(-s.opacity_logits.double().numpy()))) * np.exp(s.log_scales.double().numpy()).prod(1)
    expected = np.sort(np.argsort(-score, kind="stable")[:k])
    assert picked.tolist() == expected.tolist()
    # A budget above the count keeps everything; the order is file order either way.
    assert budget_indices(importance_order(s), 10**9).tolist() == list(range(2000))


def test_covariances_match_gsplat():
    from gsplat.cuda._torch_impl import _quat_scale_to_covar_preci

    # float64 in, so the only difference left is our float32 output rounding.
    s = Splats.random(500, seed=1, dtype=torch.float64)
    s.quats = s.quats * 3.0  # stored quaternions need not be unit
    ref, _ = _quat_scale_to_covar_preci(s.unit_quats, s.scales, compute_covar=True, compute_preci=False)
    np.testing.assert_allclose(covariances(s), ref.numpy(), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("degree", [1, 3])
def test_sh_colour_matches_gsplat_and_follows_the_camera(degree):
    from gsplat.cuda._torch_impl import _spherical_harmonics

    s = Splats.random(400, sh_degree=degree, seed=2)
    s.shN = s.shN * 3  # strong view dependence
    for cam in ([0.0, 0.0, -4.0], [3.0, 1.0, 2.0]):
        dirs = torch.nn.functional.normalize(s.means - torch.tensor(cam), dim=1)
        ref = (_spherical_harmonics(degree, dirs, s.sh) + 0.5).clamp(0, 1)
        np.testing.assert_allclose(view_rgbs(s.means, s.sh, cam), ref.numpy(), atol=1e-5)
    front, side = view_rgbs(s.means, s.sh, [0, 0, -4]), view_rgbs(s.means, s.sh, [4, 0, 0])
    assert np.abs(front - side).mean() > 0.05


@pytest.mark.parametrize("up", [None, (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)])
def test_initial_camera_looks_at_the_centre_from_outside_ignoring_outliers(up):
    s = sphere_shell(5000)
    outliers = torch.tensor([[500.0, 0, 0], [0, -800.0, 0], [0, 0, 900.0]]).repeat(20, 1)
    means = torch.cat([s.means, outliers])  # 60 far floaters: 1.2 %, inside the trimmed 2 %
    fov = math.radians(50)
    pose = initial_camera(means, fov) if up is None else initial_camera(means, fov, np.array(up))
    np.testing.assert_allclose(pose.look_at, [0.5, -0.2, 3.0], atol=0.1)
    np.testing.assert_array_equal(pose.up, [0, -1, 0] if up is None else up)  # default: OpenCV frames, y down
    lo, hi = robust_bounds(means)
    assert np.any((pose.position < lo) | (pose.position > hi)), "camera inside the scene's box"
    # Close enough that the sphere fills the view, yet every point of it is inside the field of view.
    to_points = s.means.double().numpy() - pose.position
    view_dir = (pose.look_at - pose.position) / np.linalg.norm(pose.look_at - pose.position)
    angles = np.arccos(to_points @ view_dir / np.linalg.norm(to_points, axis=1))
    assert angles.max() < fov / 2
    assert angles.max() > 0.7 * fov / 2
    # Right side up: seen from a little above (towards up), looking slightly down, far from straight down.
    assert -0.5 < float(view_dir @ pose.up) < -0.1


def test_bad_file_at_start_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "broken.ply"
    bad.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nend_header\n\x00\x01")
    assert main(["view", str(bad), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("splatpack: error: ") and "broken.ply" in err[0], err
    assert main(["view", str(tmp_path / "missing.spz")]) == 2
    assert "missing.spz: no such file" in capsys.readouterr().err


def test_port_in_use_moves_to_a_free_port_and_says_so(tmp_path, capsys, monkeypatch):
    from splatpack.commands import view

    path = tmp_path / "shell.ply"
    ply.write(sphere_shell(500), path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # The command runs until Ctrl-C: interrupt its wait at once.
        monkeypatch.setattr(view, "wait_forever", _interrupt)
        view.Command(file=path, port=port).run()
    out = capsys.readouterr().out
    used = int(out.split("using port ")[1].split()[0])
    assert f"port {port} is in use; using port {used}" in out
    assert used != port and f"open http://127.0.0.1:{used}" in out
    assert "stopped" in out


def _interrupt():
    raise KeyboardInterrupt


def test_viewer_budget_ab_and_view_dependent_colour(tmp_path, viewer_factory):
    a_splats = Splats.random(3000, sh_degree=2, seed=4)
    a_splats.shN = a_splats.shN * 3
    a = _scene_file(tmp_path, "a.ply", a_splats)
    b = _scene_file(tmp_path, "b.ply", sphere_shell(1000))
    v = viewer_factory([a, b], max_splats=1000, settle_seconds=0.05)
    assert v.handles[0].buffer.shape[0] == 1000 and v.handles[1].buffer.shape[0] == 1000
    assert v.handles[0].visible and not v.handles[1].visible
    # The drawn Gaussians are the budget's, with the activations viser wants.
    keep = budget_indices(a.order, 1000)
    np.testing.assert_array_equal(v.handles[0].centers, a_splats.means[keep].numpy())
    assert "1,000 / 3,000" in v.gui_facts.content and "1,000 / 1,000" in v.gui_facts.content

    # View-dependent colour: a settled camera move recolours A for the new position (debounced).
    before = v.handles[0].rgbs.copy()
    for x in np.linspace(4.0, 5.0, 5):  # a drag: only the last position counts
        v._camera_moved(SimpleNamespace(position=np.array([x, 0.0, 0.0])))
    wait_until(lambda: v._coloured_for[0] is not None and v._coloured_for[0][0] == 5.0 or None, 10, 0.02)
    expected = view_rgbs(a_splats.means[keep], a_splats.sh[keep], [5.0, 0.0, 0.0])
    assert np.abs(v.handles[0].rgbs.astype(int) - np.round(expected * 255)).max() <= 1
    assert np.abs(v.handles[0].rgbs.astype(int) - before.astype(int)).mean() > 5
    v.set_camera_position([5.0 + 1e-6, 0.0, 0.0])  # a jitter does not resend the buffer
    assert v._coloured_for[0][0] == 5.0

    # A/B keeps the camera and swaps visibility; B has SH degree 0 so it keeps its flat colours.
    v.show(1)
    assert v.handles[1].visible and not v.handles[0].visible
    assert "B (shown)" in v.gui_facts.content
    v.set_max_splats(200)
    assert v.handles[0].buffer.shape[0] == 200 and v.handles[1].buffer.shape[0] == 200
    assert "200 / 3,000" in v.gui_facts.content


def test_uploads_replace_the_scene_and_bad_uploads_only_report(tmp_path, viewer_factory, caplog):
    from viser import UploadedFile

    v = viewer_factory([_scene_file(tmp_path, "a.ply", sphere_shell(500))])
    bad = SimpleNamespace(target=SimpleNamespace(value=UploadedFile("junk.spz", b"not a splat file")), client=None)
    v._uploaded(bad, None)
    assert "**Error:** junk.spz:" in v.gui_status.content
    assert any("junk.spz" in r.message and r.levelname == "ERROR" for r in caplog.records)
    assert v.scenes[0].name == "a.ply"  # the shown scene is untouched

    good_path = tmp_path / "upload.ply"
    ply.write(sphere_shell(700, invert=True), good_path)
    good = SimpleNamespace(target=SimpleNamespace(value=UploadedFile("b.ply", good_path.read_bytes())), client=None)
    v._uploaded(good, 1)
    assert v.scenes[1].name == "b.ply" and v.handles[1].buffer.shape[0] == 700 and v.shown == 1
    assert v.gui_show.visible
    assert "b.ply" in facts_markdown(v.scenes, v.shown_counts, v.shown)


def test_save_screenshot_writes_the_png(tmp_path):
    from PIL import Image

    image = np.random.default_rng(0).integers(0, 256, size=(30, 40, 4), dtype=np.uint8)
    path, data = save_screenshot(image, tmp_path, "scene")
    assert path.parent == tmp_path and path.name.startswith("splatpack-scene-") and path.suffix == ".png"
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    assert path.read_bytes() == data


# ---------------------------------------------------------------------------------------------- real browser


@pytest.mark.slow
def test_browser_draws_splats_and_ab_toggle_screenshot_and_bad_upload(tmp_path, browser_stack):
    ply.write(sphere_shell(5000), tmp_path / "a.ply")
    ply.write(sphere_shell(5000, invert=True), tmp_path / "b.ply")
    (tmp_path / "broken.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n1 2\n")
    shots = tmp_path / "shots"
    shots.mkdir()
    port = free_port()
    with socket.socket() as busy:  # the requested port is taken: the viewer must move and say so
        busy.bind(("127.0.0.1", port))
        busy.listen()
        viewer = ViewerProcess(["a.ply", "b.ply", "--port", str(port), "--screenshot-dir", "shots"], cwd=tmp_path)
    with viewer, Browser(1024, 640) as browser:
        assert viewer.url != f"http://127.0.0.1:{port}" and f"port {port} is in use" in viewer.output
        browser.call("goto", url=viewer.url)

        def drawn(name):
            image = browser.screenshot(tmp_path / name)
            return image if drawn_fraction(image) > 0.3 else None

        def hue_spread(image) -> int:
            region = scene_region(image).reshape(-1, 3).astype(int)
            return int(np.ptp(region[(255 - region).max(axis=1) > 24], axis=0).min())

        # Splats, not a flat fill: the shell's normal colouring spans many hues. Waited for, as the first frames
        # of a loaded machine can show the shell half streamed in.
        def drawn_in_many_hues():
            image = drawn("a.png")
            return image if image is not None and hue_spread(image) > 100 else None

        a = wait_until(drawn_in_many_hues, 90)

        browser.call("click", role="button", name="B")

        def swapped():
            image = browser.screenshot(tmp_path / "b.png")
            diff = np.abs(scene_region(image).astype(int) - scene_region(a).astype(int)).max(axis=-1)
            return image if (diff > 60).mean() > 0.3 else None

        b = wait_until(swapped, 60)
        # B is A's colours inverted, seen from the same viewpoint: the same pixels are covered.
        covered_a = (255 - scene_region(a).astype(int)).max(axis=-1) > 24
        covered_b = (255 - scene_region(b).astype(int)).max(axis=-1) > 24
        assert (covered_a == covered_b).mean() > 0.97

        browser.call("click", role="button", name="Save screenshot")
        saved = wait_until(lambda: next(iter(shots.glob("splatpack-b-*.png")), None), 60)
        from PIL import Image

        assert Image.open(saved).size == (1024, 640)

        browser.call("upload", label="Open file", path=str(tmp_path / "broken.ply"))
        browser.call("wait_for_text", text="Error: broken.ply", timeout=60000)
        assert "broken.ply" in viewer.output  # and in the log
    assert viewer.stop() == 0
    assert "stopped" in viewer.output


# ---------------------------------------------------------------------------------------------- origin, upload cap


def _splat_scene(tmp_path: Path, splats: Splats):
    from splatpack.io import splat

    splat.write(splats, tmp_path / "a.splat")
    return load_scene(tmp_path / "a.splat")


def _ws(port: int, origin: str | None):
    import viser
    from websockets.sync.client import connect

    headers = {} if origin is None else {"Origin": origin}
    return connect(
        f"ws://127.0.0.1:{port}",
        additional_headers=headers,
        subprotocols=[f"viser-v{viser.__version__}"],  # past viser's own version check: the origin decides
        open_timeout=20,
    )


def _send(ws, type_name: str, **fields) -> None:
    import msgspec

    ws.send(msgspec.msgpack.encode({"type": type_name, **fields}))


def _upload(ws, button, name: str, data: bytes, *, declared: int | None = None, transfer: str = "t1") -> None:
    uuid = button._impl.uuid
    size = len(data) if declared is None else declared
    _send(
        ws,
        "FileTransferStartUpload",
        source_component_uuid=uuid,
        transfer_uuid=transfer,
        filename=name,
        mime_type="application/octet-stream",
        part_count=1,
        size_bytes=size,
    )
    _send(ws, "FileTransferPart", source_component_uuid=uuid, transfer_uuid=transfer, part_index=0, content=data)


def test_websocket_refuses_foreign_origins_and_accepts_its_own(tmp_path, viewer_factory):
    from websockets.exceptions import ConnectionClosed

    v = viewer_factory([_splat_scene(tmp_path, sphere_shell(100))])
    for foreign in (f"http://evil.example:{v.port}", f"http://127.0.0.1:{v.port + 1}", "null", None):
        with _ws(v.port, foreign) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=20)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008, foreign
        assert foreign in v.guard.refused_origins
    for own in (f"http://127.0.0.1:{v.port}", f"http://localhost:{v.port}"):
        with _ws(v.port, own) as ws:
            assert isinstance(ws.recv(timeout=20), bytes)  # the scene state arrives
    assert len(v.guard.refused_origins) == 4


def test_upload_cap_refuses_large_uploads_before_buffering(tmp_path, viewer_factory, caplog):
    from splatpack.io import splat

    v = viewer_factory([_splat_scene(tmp_path, sphere_shell(100))], max_upload_bytes=20_000)
    small = tmp_path / "small.splat"
    splat.write(sphere_shell(300), small)  # 9,600 bytes: under the cap
    with _ws(v.port, f"http://127.0.0.1:{v.port}") as ws:
        # viser counts a tab as connected (and routes its uploads) once it has reported its camera.
        camera = dict(wxyz=(1, 0, 0, 0), position=(0, 0, -3), fov=0.9, near=0.01, far=100.0, image_height=480)
        _send(ws, "ViewerCameraMessage", **camera, image_width=640, look_at=(0, 0, 0), up_direction=(0, -1, 0))
        _upload(ws, v.gui_open, "big.splat", bytes(32 * 1000), transfer="big")  # 32,000 declared: refused
        _upload(ws, v.gui_open, "liar.splat", bytes(32 * 1000), declared=320, transfer="liar")  # parts overrun
        _upload(ws, v.gui_open, "small.splat", small.read_bytes(), transfer="ok")
        wait_until(lambda: v.scenes[0].name == "small.splat" or None, 30)
    assert v.scenes[0].total == 300
    assert any("big.splat: upload of 32000 bytes refused" in r.message for r in caplog.records)
    # Nothing of the refused or overrunning transfers is left buffered in viser.
    assert not v.server.gui._current_file_upload_states.get("big")
    liar = v.server.gui._current_file_upload_states.get("liar")
    assert liar is None or not liar["parts"]


def test_ns_train_viewer_defaults_to_loopback():
    """nerfstudio's own default is 0.0.0.0; `ns-train splatpack` must keep its viewer on this machine."""
    pytest.importorskip("nerfstudio")
    from splatpack.nerfstudio.method import splatpack_base_method, splatpack_method

    for method in (splatpack_method, splatpack_base_method):
        assert method.config.viewer.websocket_host == "127.0.0.1"
