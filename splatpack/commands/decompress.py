"""``splatpack decompress IN OUT.ply``: any supported file back to a standard 3DGS PLY."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import tyro

from splatpack.commands import OptionalInt
from splatpack.edit.nonfinite import Policy


@dataclasses.dataclass
class Command:
    """Decode any splat file splatpack reads into a standard 3DGS PLY (Inria layout) that every tool opens.
    Runs on numpy alone (no PyTorch start-up) for every input but .spk and glTF."""

    input: tyro.conf.Positional[Path]
    """Input splat file (.spk, .spz, .sog, SOG folder, .splat, .compressed.ply, .ply); a .spk file's MLP fields
    (if any) are evaluated once per Gaussian and baked into colour, opacity and SH."""
    output: tyro.conf.Positional[Path]
    """Output .ply file (written atomically)."""
    nonfinite: Policy = "clamp"
    """NaN/Inf values in the input: clamp (infinite opacities and scales become the largest finite value; NaN is
    refused), drop (remove those Gaussians) or error."""
    lod_level: OptionalInt = None
    """For an LOD SOG input (lod-meta.json): read only this level (0 = finest; default: all levels)."""
    normals: bool = False
    """Write the zero nx, ny, nz properties of the original 3DGS layout (12 bytes per Gaussian
    more; no splat reader needs them, splat-transform leaves them out too)."""
    quiet: bool = False
    """No progress bars: only the summary line."""
    verbose: bool = False
    """A line per finished stage (read, sort, palette, encode, write) with its time; in a log (not a terminal) also
    a line every few seconds with the running stage's progress and ETA (without it a log gets the summary only)."""

    def run(self) -> None:
        import splatpack.io as sio
        from splatpack import progress
        from splatpack.io.files import human_bytes, path_size
        from splatpack.io.lod_sog import lod_option

        start = time.perf_counter()
        with progress.reporting(progress.mode_of(self.quiet, self.verbose)):
            in_fmt = sio.detect_format(self.input)
            with progress.stage("read"):
                splats = sio.read(
                    self.input, format=in_fmt, nonfinite=self.nonfinite, arrays="numpy", **lod_option(self.lod_level)
                )
            with progress.stage("write"):
                sio.write(splats, self.output, format="ply", inputs=(self.input,), normals=self.normals)
        print(
            f"{self.input} ({in_fmt}, {human_bytes(path_size(self.input))}) -> {self.output} "
            f"(ply, {human_bytes(path_size(self.output))}): {len(splats):,} Gaussians, SH degree {splats.sh_degree}, "
            f"{time.perf_counter() - start:.1f} s"
        )
