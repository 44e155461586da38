"""Headless Chromium (Debian's) driven by npm playwright-core, and the viewer as a subprocess: shared by
tests/test_viewer.py and bench/viewer.py.

Nothing here downloads a browser: Chromium comes from apt, playwright-core (pinned) from npm into
``.cache/node``, and ``driver.mjs`` is pointed at ``/usr/bin/chromium``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
NODE_CACHE = ROOT / ".cache" / "node"
PLAYWRIGHT = "playwright-core@1.65.1"
CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path(__file__).with_name("driver.mjs")
URL_LINE = re.compile(r"open (http://\S+)")


class Unavailable(RuntimeError):
    """The browser stack cannot be set up on this machine (the reason is the message)."""


def ensure_chromium() -> Path:
    """Debian's chromium, installed with apt when missing (as root, ~1-2 min)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise Unavailable("chromium is not installed and apt-get as root is not available to install it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise Unavailable(f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}")
    if not CHROMIUM.exists():
        raise Unavailable("apt-get installed chromium but /usr/bin/chromium is missing")
    return CHROMIUM


def ensure_playwright() -> Path:
    """``node_modules/playwright-core`` in ``.cache/node`` (pinned; npm-installed on first use)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise Unavailable("node/npm are not installed")
    package = NODE_CACHE / "node_modules" / "playwright-core"
    wanted = PLAYWRIGHT.rsplit("@", 1)[1]
    if (package / "package.json").exists() and json.loads((package / "package.json").read_text())["version"] == wanted:
        return package
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    done = subprocess.run(
        ["npm", "install", "--prefix", str(NODE_CACHE), "--no-audit", "--no-fund", PLAYWRIGHT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise Unavailable(f"npm install {PLAYWRIGHT} failed: {done.stderr.strip()[-300:]}")
    return package


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """One headless Chromium page behind ``driver.mjs``; call methods named like the driver's commands."""

    def __init__(self, width: int = 1280, height: int = 800):
        chromium = ensure_chromium()
        package = ensure_playwright()
        self._profile = tempfile.TemporaryDirectory(prefix="splatpack-chromium-")
        self._proc = subprocess.Popen(
            ["node", str(DRIVER), str(chromium), self._profile.name, str(width), str(height)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PLAYWRIGHT_CORE_DIR=str(package), PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1"),
        )
        self._next_id = 0

    def call(self, cmd: str, **args):
        self._next_id += 1
        self._proc.stdin.write(json.dumps({"id": self._next_id, "cmd": cmd, **args}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"browser driver exited (status {self._proc.wait()}) during {cmd}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise RuntimeError(f"browser {cmd} failed: {reply['error']}")
        return reply["result"]

    def screenshot(self, path: Path, timeout: float = 120) -> np.ndarray:
        """Screenshot of the page as (H, W, 3) uint8 (a page busy drawing can take long to give one)."""
        from PIL import Image

        self.call("screenshot", path=str(path), timeout=int(timeout * 1000))
        return np.asarray(Image.open(path).convert("RGB"))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._proc.stdin.write(json.dumps({"cmd": "close"}) + "\n")
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# Where the viewer draws the scene and nothing else: the middle of the page, clear of viser's software-WebGL
# notification (top left, ~310 x 150 px), GUI panel (right, ~340 px wide) and axes gizmo (bottom left).
def scene_region(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return image[160 : h - 80, 320 : w - 360]


def drawn_fraction(image: np.ndarray, background=(255, 255, 255), tolerance: int = 24) -> float:
    """Fraction of the scene region whose colour differs from the background by more than ``tolerance``."""
    region = scene_region(image).astype(np.int16)
    diff = np.abs(region - np.asarray(background, dtype=np.int16)).max(axis=-1)
    return float((diff > tolerance).mean())


def wait_until(predicate, timeout: float, interval: float = 0.5):
    """Poll ``predicate()`` until it returns something other than None/False; returns it, or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout:.0f} s")
        time.sleep(interval)


class ViewerProcess:
    """``splatpack view ARGS`` in a subprocess; stopped with SIGINT to its own PID."""

    def __init__(self, args: list[str], cwd: Path, startup_timeout: float = 120):
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "splatpack.cli", "view", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        # Drain the output on a thread so a chatty viewer never blocks on a full pipe.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.url = wait_until(self._url, startup_timeout, interval=0.1)
        except BaseException:
            self.stop()
            raise

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def _url(self) -> str | None:
        for line in list(self.lines):
            match = URL_LINE.search(line)
            if match:
                return match.group(1)
        if self.proc.poll() is not None:
            self._reader.join(timeout=5)
            raise RuntimeError(f"viewer exited with {self.proc.returncode}:\n{self.output}")
        return None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        return self.proc.returncode

    def __enter__(self) -> ViewerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
