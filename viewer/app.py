"""The viewer's viser server: one or two scenes (A/B), file facts, point budget, camera, screenshots, uploads.

All GUI callbacks run on viser's thread pool, so every change of viewer state happens under one lock.
Scene nodes are shared by every connected tab; view-dependent colour follows the tab whose camera moved last.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import viser

from splatpack.errors import SplatpackError
from splatpack.io.atomic import atomic_output
from splatpack.io.files import human_bytes
from viewer.gaussians import CameraPose, base_rgbs, budget_indices, covariances, initial_camera, opacities
from viewer.guard import Guard
from viewer.loading import LoadedScene, load_upload
from viewer.shading import view_rgbs

log = logging.getLogger("splatpack.view")

SLOTS = ("A", "B")
# World up axis: -y for OpenCV/COLMAP-trained scenes (the usual), +y for OpenGL/three.js-style scenes (many
# SuperSplat-edited files, biker.spz among them), +z for Blender-style ones.
UP_AXES = {"-y": (0.0, -1.0, 0.0), "+y": (0.0, 1.0, 0.0), "+z": (0.0, 0.0, 1.0), "-z": (0.0, 0.0, -1.0)}
FOV = np.deg2rad(50.0)
ARRIVAL_GRACE_S = 10.0
DEFAULT_MAX_UPLOAD_BYTES = 500 << 20


def save_screenshot(image: np.ndarray, folder: Path, stem: str) -> tuple[Path, bytes]:
    """Encode ``image`` (H, W, 3 or 4 uint8) as PNG into ``folder`` under a time-stamped name; returns the path
    and the PNG bytes (offered as a download too)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    data = buf.getvalue()
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}"
    path = Path(folder).expanduser() / f"splatpack-{stem}-{stamp}.png"
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return path, data


def facts_markdown(scenes: Sequence[LoadedScene | None], shown_counts: Sequence[int], shown: int) -> str:
    """A markdown table of file facts, one column per loaded slot; the shown slot is marked."""
    cols = [(i, s) for i, s in enumerate(scenes) if s is not None]
    head = " | ".join(f"{SLOTS[i]}{' (shown)' if i == shown else ''}" for i, _ in cols)
    rows = {
        "file": lambda i, s: s.name.replace("|", "\\|"),
        "format": lambda i, s: s.format,
        "Gaussians shown / total": lambda i, s: f"{shown_counts[i]:,} / {s.total:,}",
        "SH degree": lambda i, s: str(s.splats.sh_degree),
        "file size": lambda i, s: human_bytes(s.file_bytes),
        "bytes / Gaussian": lambda i, s: f"{s.file_bytes / s.total:.2f}",
        "decode time": lambda i, s: f"{s.decode_seconds:.2f} s",
    }
    lines = [f"| | {head} |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(fn(i, s) for i, s in cols) + " |" for label, fn in rows.items()]
    return "\n".join(lines)


class Viewer:
    """A running viewer for ``scenes`` (one, or two to compare). Starts serving on construction."""

    def __init__(
        self,
        scenes: Sequence[LoadedScene],
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        max_splats: int = 1_000_000,
        up: str = "-y",
        screenshot_dir: Path = Path("."),
        settle_seconds: float = 0.3,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        allow_origins: tuple[str, ...] = (),
    ):
        if not 1 <= len(scenes) <= 2:
            raise ValueError("the viewer shows one scene, or two to compare")
        self._lock = threading.RLock()
        self.scenes: list[LoadedScene | None] = [*scenes, None][:2]
        self.handles: list[viser.GaussianSplatHandle | None] = [None, None]
        self.shown_counts = [0, 0]
        self.shown = 0
        self.max_splats = int(max_splats)
        self.up = np.array(UP_AXES[up])
        self.settle_seconds = settle_seconds
        self.screenshot_dir = Path(screenshot_dir)
        # Camera position the view-dependent colours are evaluated for (the initial camera until a tab moves),
        # and per slot the position its current colours were evaluated for (None: view-independent colours).
        self.camera_position: np.ndarray | None = None
        self._coloured_for: list[np.ndarray | None] = [None, None]
        self._drawn: list = [None, None]  # per slot, the Splats subset on screen (the budget's choice)
        self._pending_camera: np.ndarray | None = None
        self._settle_timer: threading.Timer | None = None
        self._view_distance = 1.0  # initial camera's distance to the scene centre (set with the camera)

        self.max_upload_bytes = int(max_upload_bytes)
        self.server = viser.ViserServer(host=host, port=port, label="splatpack", verbose=False)
        # Only the page this server serves may connect, and uploads stay under the cap (see viewer.guard).
        self.guard = Guard(
            self.server,
            max_upload_bytes=self.max_upload_bytes,
            on_refused_upload=self._upload_refused,
            extra_origins=tuple(allow_origins),
        )
        self.host = host
        self.port = self.server.get_port()
        self.server.scene.set_up_direction(tuple(self.up))
        self.server.initial_camera.fov = FOV
        self._build_gui(up)
        with self._lock:
            self._set_initial_camera()
            for slot, scene in enumerate(self.scenes):
                if scene is not None:
                    self._draw(slot)
            self._refresh_gui()
        self.server.on_client_connect(self._client_connected)

    # ------------------------------------------------------------------ public

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        with self._lock:
            if self._settle_timer is not None:
                self._settle_timer.cancel()
        self.server.stop()

    def set_max_splats(self, n: int) -> None:
        """Show at most ``n`` Gaussians per scene: the most important by opacity x volume."""
        with self._lock:
            self.max_splats = max(1, int(n))
            for slot, scene in enumerate(self.scenes):
                if scene is not None:
                    self._draw(slot)
            self._refresh_gui()

    def show(self, slot: int) -> None:
        """Show scene A (0) or B (1), keeping every tab's camera where it is."""
        with self._lock:
            if self.scenes[slot] is None:
                return
            self.shown = slot
            if self._colours_stale(slot):
                self._recolour(slot)
            for i, handle in enumerate(self.handles):
                if handle is not None:
                    handle.visible = i == slot
            self._refresh_gui()

    def set_camera_position(self, position) -> None:
        """Re-evaluate view-dependent colour of the shown scene for a camera at ``position``."""
        with self._lock:
            self.camera_position = np.asarray(position, dtype=np.float64)
            if self._colours_stale(self.shown):
                self._recolour(self.shown)

    def replace_scene(self, slot: int, scene: LoadedScene) -> None:
        with self._lock:
            self.scenes[slot] = scene
            self._draw(slot)
        self.show(slot)

    # ------------------------------------------------------------------ drawing

    def _sh_active(self, slot: int) -> bool:
        scene = self.scenes[slot]
        return bool(self.gui_sh.value) and scene is not None and scene.splats.sh_degree > 0

    def _colours_stale(self, slot: int) -> bool:
        if not self._sh_active(slot):
            return self._coloured_for[slot] is not None
        done = self._coloured_for[slot]
        # Moves below 0.1 % of the viewing distance change no colour visibly, and every recolour resends the
        # whole splat buffer (32 B per Gaussian): the camera a tab reports on connecting is such a move.
        return done is None or np.linalg.norm(done - self.camera_position) > 1e-3 * self._view_distance

    def _colours(self, slot: int, sub) -> np.ndarray:
        if self._sh_active(slot):
            self._coloured_for[slot] = self.camera_position.copy()
            return view_rgbs(sub.means, sub.sh, self.camera_position)
        self._coloured_for[slot] = None
        return base_rgbs(sub)

    def _draw(self, slot: int) -> None:
        scene = self.scenes[slot]
        within = self.max_splats >= scene.total  # no copy when the whole scene fits the budget
        sub = scene.splats if within else scene.splats[budget_indices(scene.order, self.max_splats)]
        self._drawn[slot] = sub
        arrays = dict(
            centers=sub.means.numpy(),
            covariances=covariances(sub),
            rgbs=self._colours(slot, sub),
            opacities=opacities(sub),
        )
        if self.handles[slot] is None:
            self.handles[slot] = self.server.scene.add_gaussian_splats(
                f"/splats_{SLOTS[slot]}", **arrays, visible=slot == self.shown
            )
        else:
            self.handles[slot].set_gaussians(**arrays)
        self.shown_counts[slot] = len(sub)

    def _recolour(self, slot: int) -> None:
        start = time.perf_counter()
        self.handles[slot].rgbs = self._colours(slot, self._drawn[slot])
        log.debug("recoloured %s in %.3f s", SLOTS[slot], time.perf_counter() - start)

    # ------------------------------------------------------------------ camera

    def _set_initial_camera(self) -> CameraPose:
        pose = initial_camera(self.scenes[self.shown].splats.means, FOV, self.up)
        cam = self.server.initial_camera
        cam.up = pose.up
        cam.position = pose.position
        cam.look_at = pose.look_at
        if self.camera_position is None:
            self.camera_position = pose.position
        self._view_distance = float(np.linalg.norm(pose.position - pose.look_at))
        return pose

    def reset_camera(self, clients: Sequence[viser.ClientHandle]) -> None:
        """Put ``clients``' cameras (and the initial camera) back on the shown scene."""
        with self._lock:
            pose = self._set_initial_camera()
        for client in clients:
            with client.atomic():
                client.camera.up_direction = pose.up
                client.camera.fov = FOV
                client.camera.position = pose.position
                client.camera.look_at = pose.look_at

    def _client_connected(self, client: viser.ClientHandle) -> None:
        connected = time.monotonic()
        arrived = False

        def moved(camera: viser.CameraHandle) -> None:
            # A loading tab reports the browser's default cameras before it applies the initial camera
            # (viser 1.1.1). The colours already suit the initial camera, and recolouring for each default would
            # resend the whole buffer while the tab loads; so follow a tab's camera only once it has reached the
            # initial camera (or after a grace period, for tabs that start elsewhere).
            nonlocal arrived
            if not arrived:
                at_initial = np.linalg.norm(camera.position - self.server.initial_camera.position)
                arrived = at_initial <= 1e-3 * self._view_distance or time.monotonic() - connected > ARRIVAL_GRACE_S
                if not arrived or at_initial <= 1e-3 * self._view_distance:
                    return
            self._camera_moved(camera)

        client.camera.on_update(moved)

    def _camera_moved(self, camera: viser.CameraHandle) -> None:
        # Debounce: recolour once the camera has been still for settle_seconds, not on every drag message.
        with self._lock:
            self._pending_camera = np.array(camera.position, dtype=np.float64)
            if self._settle_timer is not None:
                self._settle_timer.cancel()
            self._settle_timer = threading.Timer(self.settle_seconds, self._camera_settled)
            self._settle_timer.daemon = True
            self._settle_timer.start()

    def _camera_settled(self) -> None:
        with self._lock:
            if self._pending_camera is not None:
                self.set_camera_position(self._pending_camera)

    # ------------------------------------------------------------------ GUI

    def _build_gui(self, up: str) -> None:
        gui = self.server.gui
        self.gui_show = gui.add_button_group("Show", SLOTS, hint="Swap between the two files from the same viewpoint")
        self.gui_facts = gui.add_markdown("")
        with gui.add_folder("View"):
            self.gui_reset = gui.add_button("Reset camera", hint="Look at the scene's centre from outside it")
            self.gui_up = gui.add_dropdown(
                "Up direction",
                tuple(UP_AXES),
                initial_value=up,
                hint="-y: OpenCV / COLMAP scenes, +y: OpenGL / three.js, +z: Blender",
            )
            self.gui_budget = gui.add_number(
                "Max splats",
                self.max_splats,
                min=1,
                step=1,
                hint="Show only this many Gaussians, the most important by opacity x volume",
            )
            self.gui_sh = gui.add_checkbox(
                "View-dependent colour", True, hint="Re-evaluate spherical harmonics when the camera stops"
            )
        with gui.add_folder("Screenshot"):
            self.gui_shot_dir = gui.add_text("Folder", str(self.screenshot_dir.resolve()))
            self.gui_shot = gui.add_button("Save screenshot")
        with gui.add_folder("Open"):
            self.gui_open = gui.add_upload_button("Open file", hint="Replace the shown scene with another file")
            self.gui_compare = gui.add_upload_button("Compare with file (B)", hint="Load a second file as B")
        self.gui_status = gui.add_markdown("")

        self.gui_show.on_click(lambda event: self.show(SLOTS.index(event.target.value)))
        self.gui_reset.on_click(lambda event: self.reset_camera([event.client] if event.client else []))
        self.gui_up.on_update(self._up_changed)
        self.gui_budget.on_update(lambda event: self.set_max_splats(event.target.value))
        self.gui_sh.on_update(lambda event: self._sh_toggled())
        self.gui_shot.on_click(self._screenshot_clicked)
        self.gui_open.on_upload(lambda event: self._uploaded(event, None))
        self.gui_compare.on_upload(lambda event: self._uploaded(event, 1))

    def _refresh_gui(self) -> None:
        self.gui_show.visible = self.scenes[1] is not None
        self.gui_facts.content = facts_markdown(self.scenes, self.shown_counts, self.shown)

    def _up_changed(self, event) -> None:
        with self._lock:
            self.up = np.array(UP_AXES[event.target.value])
            self.server.scene.set_up_direction(tuple(self.up))
        self.reset_camera(list(self.server.get_clients().values()))

    def _sh_toggled(self) -> None:
        with self._lock:
            for slot, scene in enumerate(self.scenes):
                if scene is not None and self._colours_stale(slot):
                    self._recolour(slot)

    def report_error(self, message: str, client: viser.ClientHandle | None = None) -> None:
        """Show ``message`` in the log, the GUI's status line and a notification; the server keeps running."""
        log.error(message)
        self.gui_status.content = f"**Error:** {message}"
        for c in [client] if client is not None else self.server.get_clients().values():
            c.add_notification("splatpack", message, color="red", with_close_button=True)

    def _uploaded(self, event, slot: int | None) -> None:
        upload = event.target.value
        target = self.shown if slot is None else slot
        try:
            scene = load_upload(upload.name, upload.content, max_bytes=self.max_upload_bytes)
        except SplatpackError as exc:
            self.report_error(str(exc), event.client)
            return
        except Exception as exc:  # a reader bug must not take the viewer down with it
            log.exception("reading upload %s failed", upload.name)
            self.report_error(f"{upload.name}: could not read it ({type(exc).__name__}: {exc})", event.client)
            return
        log.info("loaded %s as %s: %s, %d Gaussians", scene.name, SLOTS[target], scene.format, scene.total)
        self.gui_status.content = f"Loaded **{scene.name}** as {SLOTS[target]}."
        self.replace_scene(target, scene)
        if slot is None and event.client is not None:
            self.reset_camera([event.client])

    def _upload_refused(self, client_id: int, problem: str) -> None:
        self.report_error(problem, self.server.get_clients().get(client_id))

    def _screenshot_clicked(self, event) -> None:
        client = event.client
        if client is None:
            return
        # Ask for the tab's own aspect: viser stretches splats when the requested aspect differs.
        width = client.camera.image_width
        height = max(1, round(width / client.camera.aspect))
        try:
            image = client.get_render(height, width, transport_format="png", timeout=60)
            stem = Path(self.scenes[self.shown].name).stem.replace(".", "_") or "view"
            path, data = save_screenshot(image, Path(self.gui_shot_dir.value), stem)
        except (SplatpackError, TimeoutError, RuntimeError) as exc:
            self.report_error(f"screenshot failed: {exc}", client)
            return
        log.info("saved screenshot %s (%dx%d)", path, width, height)
        self.gui_status.content = f"Saved screenshot `{path}`."
        client.send_file_download(path.name, data)
