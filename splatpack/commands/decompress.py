"""``splatpack decompress IN OUT.ply``: any supported file back to a standard 3DGS PLY."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import tyro

from splatpack.edit.nonfinite import Policy


@dataclasses.dataclass
class Command:
    """Decode any splat file splatpack reads into a standard 3DGS PLY (Inria layout) that every tool opens."""

    input: tyro.conf.Positional[Path]
    """Input splat file (.spk, .spz, .sog, SOG folder, .splat, .compressed.ply, .ply); a .spk file's MLP fields
    (if any) are evaluated once per Gaussian and baked into colour, opacity and SH."""
    output: tyro.conf.Positional[Path]
    """Output .ply file (written atomically)."""
    nonfinite: Policy = "clamp"
    """NaN/Inf values in the input: clamp (infinite opacities and scales become the largest finite value; NaN is
    refused), drop (remove those Gaussians) or error."""
    lod_level: int | None = None
    """For an LOD SOG input (lod-meta.json): read only this level (0 = finest; default: all levels)."""

    def run(self) -> None:
        from rich.console import Console

        import splatpack.io as sio
        from splatpack.io.files import human_bytes, path_size
        from splatpack.io.lod_sog import lod_option

        console = Console(stderr=True)
        start = time.perf_counter()
        in_fmt = sio.detect_format(self.input)
        with console.status(f"reading {self.input}"):
            splats = sio.read(self.input, format=in_fmt, nonfinite=self.nonfinite, **lod_option(self.lod_level))
        with console.status(f"writing {self.output}"):
            sio.write(splats, self.output, format="ply", inputs=(self.input,))
        print(
            f"{self.input} ({in_fmt}, {human_bytes(path_size(self.input))}) -> {self.output} "
            f"(ply, {human_bytes(path_size(self.output))}): {len(splats):,} Gaussians, SH degree {splats.sh_degree}, "
            f"{time.perf_counter() - start:.1f} s"
        )
