"""``splatpack view FILE [FILE2]``: look at splat files in a browser (viser), optionally comparing two."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Literal

import tyro

from splatpack.edit.nonfinite import Policy


@dataclasses.dataclass
class Command:
    """Serve a browser viewer for a splat file (any format splatpack reads); with a second file, an A/B toggle
    swaps between them from the same viewpoint. Runs until Ctrl-C."""

    file: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="FILE")]
    """Splat file to show (A)."""
    file2: Annotated[tyro.conf.Positional[Path | None], tyro.conf.arg(metavar="[FILE2]")] = None
    """Optional second file to compare with (B), e.g. the compressed version of FILE."""
    host: str = "127.0.0.1"
    """Address to listen on (0.0.0.0 makes the viewer reachable from other machines)."""
    port: int = 8080
    """Port to listen on; when it is taken, the next free one is used and printed."""
    max_splats: int = 1_000_000
    """Point budget: show at most this many Gaussians, the most important by opacity x volume."""
    up: Literal["-y", "+y", "+z", "-z"] = "-y"
    """World up axis: -y for OpenCV/COLMAP-trained scenes (most PLYs), +y for OpenGL/three.js-style ones, +z for
    Blender-style ones. The GUI can change it too."""
    screenshot_dir: Path = Path(".")
    """Folder where the GUI's screenshot button saves PNGs."""
    nonfinite: Policy = "clamp"
    """NaN/Inf values in the input: clamp (infinite opacities and scales become the largest finite value; NaN is
    refused), drop (remove those Gaussians) or error."""
    max_upload_mb: float = 500.0
    """Largest file the GUI's Open / Compare buttons accept, in MB (what it may decode to is bounded by the readers'
    own limits)."""
    allow_origin: tuple[str, ...] = ()
    """Extra web page origins allowed to connect (e.g. https://viewer.example behind a reverse proxy); by default
    only the page the viewer serves itself may, so no other site open in the browser can drive it."""

    def run(self) -> None:
        import logging
        import signal
        import sys

        from splatpack.errors import SplatpackError
        from viewer.app import Viewer
        from viewer.loading import load_scene

        if self.max_splats < 1:
            raise SplatpackError(f"--max-splats must be at least 1, got {self.max_splats}")
        if not 0 <= self.port <= 65535:
            raise SplatpackError(f"--port must be 0-65535, got {self.port}")
        if not self.max_upload_mb > 0:
            raise SplatpackError(f"--max-upload-mb must be positive, got {self.max_upload_mb}")
        logging.basicConfig(level=logging.INFO, format="splatpack view: %(message)s", stream=sys.stderr)
        scenes = [
            load_scene(p, nonfinite=self.nonfinite, max_splats=self.max_splats)
            for p in (self.file, self.file2)
            if p is not None
        ]
        viewer = Viewer(
            scenes,
            host=self.host,
            port=self.port,
            max_splats=self.max_splats,
            up=self.up,
            screenshot_dir=self.screenshot_dir,
            max_upload_bytes=int(self.max_upload_mb * 1e6),
            allow_origins=self.allow_origin,
        )
        if self.port not in (0, viewer.port):
            print(f"splatpack view: port {self.port} is in use; using port {viewer.port}", flush=True)
        for slot, scene in zip("AB", scenes):
            print(
                f"splatpack view: {slot} = {scene.name} ({scene.format}, {scene.total:,} Gaussians, "
                f"SH degree {scene.splats.sh_degree}, decoded in {scene.decode_seconds:.2f} s)",
                flush=True,
            )
        print(f"splatpack view: open {viewer.url}  (Ctrl-C to stop)", flush=True)
        # Stop cleanly on Ctrl-C and on SIGTERM, even when started with SIGINT ignored (as a background job).
        previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            wait_forever()
        except KeyboardInterrupt:
            print("splatpack view: stopped", flush=True)
        finally:
            viewer.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def wait_forever() -> None:
    """Block until interrupted (the server runs on its own threads)."""
    import time

    while True:
        time.sleep(3600)
