"""Shared fixtures: the real data folder, the npm peers, small scenes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPLATPACK_SHARED_DATA", ROOT.parent / "shared" / "data"))
NODE_CACHE = ROOT / ".cache" / "node"
# Peers pinned so interop results do not drift under us.
NODE_PEERS = ("@playcanvas/splat-transform@3.7.0", "spz-js@1.2.5")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real captures and splat files); tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (only on developer machines)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def node_peers() -> Path:
    """Folder whose ``node_modules`` holds the pinned npm peers, installed on first use."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed: the npm peers cannot run on this machine")
    marker = NODE_CACHE / "node_modules" / ".bin" / "splat-transform"
    spz_js = NODE_CACHE / "node_modules" / "spz-js" / "package.json"
    if not (marker.exists() and spz_js.exists()):
        NODE_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(NODE_CACHE), "--no-audit", "--no-fund", *NODE_PEERS],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return NODE_CACHE


@pytest.fixture(scope="session")
def splat_transform(node_peers: Path) -> Path:
    """Path of PlayCanvas's ``splat-transform`` CLI."""
    return node_peers / "node_modules" / ".bin" / "splat-transform"


@pytest.fixture(scope="session")
def demo_scene() -> Path:
    """The default demo scene in ``data/demo``, generated on first use and whenever its parameters changed."""
    from splatpack.datasets.demo_scene import generate_demo_scene

    return generate_demo_scene(ROOT / "data" / "demo")


@pytest.fixture(scope="session")
def browser_stack():
    """Headless Chromium and playwright-core (see tests/browser/harness.py); skips where they cannot be set up."""
    from browser.harness import Unavailable, ensure_chromium, ensure_playwright

    try:
        ensure_chromium()
        ensure_playwright()
    except Unavailable as exc:
        pytest.skip(f"headless Chromium is not available: {exc}")
