"""``splatpack info FILE``: what a splat file holds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import tyro

from splatpack.commands import OptionalInt
from splatpack.edit.nonfinite import Policy


@dataclasses.dataclass
class Command:
    """Print a splat file's format and version, Gaussian count, SH degree, bounding box, size and bytes per Gaussian."""

    file: tyro.conf.Positional[Path]
    """Any file splatpack reads."""
    json: bool = False
    """Print one JSON object instead of a table."""
    nonfinite: Policy = "clamp"
    """NaN/Inf values in the input: clamp (infinite opacities and scales become the largest finite value; NaN is
    refused), drop (remove those Gaussians) or error."""
    lod_level: OptionalInt = None
    """For an LOD SOG input (lod-meta.json): read only this level (0 = finest; default: all levels)."""

    def run(self) -> None:
        from rich.console import Console
        from rich.table import Table

        import splatpack.io as sio
        from splatpack.io.files import human_bytes, path_size
        from splatpack.io.lod_sog import lod_option

        fmt = sio.detect_format(self.file)
        module = sio.format_module(fmt)
        facts = {"file": str(self.file), "format": fmt}
        if hasattr(module, "describe"):
            facts.update(module.describe(self.file))
        splats = sio.read(self.file, format=fmt, nonfinite=self.nonfinite, arrays="numpy", **lod_option(self.lod_level))
        lo, hi = splats.bounds()
        size = path_size(self.file)
        facts.update(
            gaussians=len(splats),
            sh_degree=splats.sh_degree,
            bbox_min=[round(float(v), 6) for v in lo],
            bbox_max=[round(float(v), 6) for v in hi],
            bytes=size,
            bytes_per_gaussian=round(size / len(splats), 3),
        )
        if self.json:
            print(json.dumps(facts, default=str))
            return
        table = Table(show_header=False)
        for key, value in facts.items():
            table.add_row(key, human_bytes(value) if key == "bytes" else str(value))
        Console().print(table)
