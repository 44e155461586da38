"""Small helpers shared by the file commands."""

from __future__ import annotations

from pathlib import Path


def path_size(path: Path) -> int:
    """Bytes of a file, or of every file in a folder (unbundled SOG)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
