"""Read a splat file for the viewer, keeping the facts the GUI shows (format, size, decode time)."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import torch

import splatpack.io as sio
from splatpack.errors import SplatpackError
from splatpack.io.files import path_size
from splatpack.scene import Splats
from viewer.gaussians import importance_order


@dataclasses.dataclass
class LoadedScene:
    name: str
    format: str
    splats: Splats
    file_bytes: int
    decode_seconds: float
    order: torch.Tensor  # importance order, most important first (see gaussians.importance_order)

    @property
    def total(self) -> int:
        return len(self.splats)


def load_scene(
    path: str | Path, name: str | None = None, *, nonfinite: str | None = None, max_splats: int | None = None
) -> LoadedScene:
    """Read ``path`` with ``splatpack.io`` (``nonfinite``: the NaN/Inf policy); raises ``SplatpackError`` for
    anything unreadable. Of an LOD SOG only the finest level within ``max_splats`` is read (all without one)."""
    path = Path(path)
    fmt = sio.detect_format(path)
    start = time.perf_counter()
    options = {}
    if fmt == "lod-sog" and max_splats is not None:
        from splatpack.io.lod_sog import finest_level_within

        options["lod_level"] = finest_level_within(path, max_splats)
    splats = sio.read(path, format=fmt, nonfinite=nonfinite, **options)
    decode_seconds = time.perf_counter() - start
    if len(splats) == 0:
        raise SplatpackError("the file holds no Gaussians", path)
    splats = splats.detach().to("cpu", torch.float32).validate(source=str(path))
    return LoadedScene(
        name=name or path.name,
        format=fmt,
        splats=splats,
        file_bytes=path_size(path),
        decode_seconds=decode_seconds,
        order=importance_order(splats),
    )


def load_upload(filename: str, content: bytes, *, max_bytes: int) -> LoadedScene:
    """Read an uploaded file: the readers take paths, and the name's ending helps format detection.

    Uploads over ``max_bytes`` are refused; what one may decode to is bounded by the readers' own limits
    (declared sizes against stored bytes, see ``splatpack.io.files``), so the upload cap bounds memory too.
    """
    safe_name = Path(filename).name or "upload"
    if len(content) > max_bytes:
        raise SplatpackError(f"upload of {len(content)} bytes exceeds the viewer's cap of {max_bytes} bytes", safe_name)
    with tempfile.TemporaryDirectory(prefix="splatpack-upload-") as tmp:
        path = Path(tmp) / safe_name
        path.write_bytes(content)
        try:
            return load_scene(path, name=safe_name)
        except SplatpackError as exc:
            # Name the file the user picked, not the temporary copy.
            raise SplatpackError(exc.problem, safe_name) from None
