"""``splatpack compress IN OUT``: convert a splat file into a compressed format."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated, Literal

import tyro

from splatpack.commands import OptionalInt
from splatpack.distill.options import DistillOptions
from splatpack.edit.nonfinite import Policy

SOG_PRESETS = ("tiny", "small", "balanced", "high")
SPK_PRESETS = ("XS", "S", "M", "L", "XL")


@dataclasses.dataclass
class Command:
    """Compress a splat file. The output format comes from OUT's extension (.spk, .spz, .sog, .splat, .ply)
    unless --format says otherwise. Any format splatpack reads is accepted as input. .spk (splatpack's own, the
    smallest): the scene distilled against renders of itself (OMG's pruning to the fewest Gaussians that keep
    the picture, attributes fitted and sub-vector quantized; minutes on a CPU, progress shown; the summary gives
    the held-out render PSNR against the input), or with --steps 0 every Gaussian quantized directly.
    PLY, compressed PLY, SPZ, .splat and SOG without SH bands run on numpy alone; SOG with SH bands (the palette
    k-means) or --sort plas, LOD SOG, glTF and .spk load PyTorch, a few seconds more."""

    input: tyro.conf.Positional[Path]
    """Input splat file (.ply, .compressed.ply, .spz, .splat, .sog or a SOG folder/meta.json, .spk)."""
    output: tyro.conf.Positional[Path]
    """Output file; written to a temporary file and renamed into place when complete."""
    format: Literal["ply", "compressed-ply", "spz", "splat", "sog", "glb", "lod-sog", "spk"] | None = None
    """Output format (default: from OUT's extension)."""
    sh_degree: OptionalInt = None
    """Keep spherical harmonics up to this degree (0-3; default: all the input has)."""
    spz_version: Literal[2, 3, 4] = 4
    """SPZ format version to write (4: zstd streams, the reference's default; 2/3: gzip, for older readers)."""
    preset: Literal["tiny", "small", "balanced", "high", "XS", "S", "M", "L", "XL"] | None = None
    """Size preset. SOG: tiny / small / balanced (default) / high (SH palette and codebook sizes). .spk: XS
    (default, the fewest Gaussians) / S / M / L / XL (OMG's pruning keeps 96 / 98 / 99 / 99.9 / 99.99 % of the
    importance-distinctiveness score mass)."""
    sort: Literal["morton", "plas", "none"] = "morton"
    """How SOG orders Gaussians into its 2D textures: morton (Morton order of the centres, row by row: the
    smallest files on every scene measured, and no PyTorch), plas (PLAS on position, scale and colour; needs
    PyTorch, slower) or none (the input order)."""
    spk_positions: str = "fp16"
    """How .spk stores positions: fp16 (OMG's choice) or fixed<bits> (1-21 bits per axis over the bounding box:
    fixed16 is finer for scenes far from the origin, ~40 % more position bytes)."""
    seed: int = 0
    """Seed for the sort and codebook k-means (same seed, same bytes)."""
    nonfinite: Policy = "clamp"
    """NaN/Inf values in the input: clamp (infinite opacities and scales become the largest finite value; NaN is
    refused), drop (remove those Gaussians) or error."""
    lod_level: OptionalInt = None
    """For an LOD SOG input (lod-meta.json): read only this level (0 = finest; default: all levels)."""
    lod_levels: int = 3
    """Levels of detail of an LOD SOG output (OUT named lod-meta.json): each level half the one before, built by
    merging neighbouring Gaussians (moment matching)."""
    normals: bool = False
    """PLY output only: write the zero nx, ny, nz properties of the original 3DGS layout (12 bytes per Gaussian
    more; no splat reader needs them, splat-transform leaves them out too)."""
    distill: Annotated[DistillOptions, tyro.conf.arg(name="")] = dataclasses.field(default_factory=DistillOptions)
    """.spk output only (see DistillOptions)."""
    quiet: bool = False
    """No progress bars: only the summary line."""
    verbose: bool = False
    """A line per finished stage (read, sort, palette, encode, write) with its time; in a log (not a terminal) also
    a line every few seconds with the running stage's progress and ETA (without it a log gets the summary only)."""

    def run(self) -> None:
        from splatpack import progress

        with progress.reporting(progress.mode_of(self.quiet, self.verbose)):
            self._run()

    def _run(self) -> None:
        import splatpack.io as sio
        from splatpack import progress
        from splatpack.errors import SplatpackError
        from splatpack.io.files import human_bytes, path_size, ratio_text
        from splatpack.io.lod_sog import lod_option

        start = time.perf_counter()
        in_fmt = sio.detect_format(self.input)
        out_fmt = self.format or sio.format_from_name(self.output)
        if out_fmt is None:
            raise SplatpackError("cannot tell the output format from the name; pass --format", self.output)
        if self.normals and out_fmt != "ply":
            raise SplatpackError(f"--normals applies to PLY output only, not {out_fmt}", self.output)
        with progress.stage("read"):
            splats = sio.read(
                self.input, format=in_fmt, nonfinite=self.nonfinite, arrays="numpy", **lod_option(self.lod_level)
            )
        if self.sh_degree is not None:
            if not 0 <= self.sh_degree <= 3:
                raise SplatpackError(f"--sh-degree {self.sh_degree} is out of range 0-3")
            splats = splats.with_sh_degree(min(self.sh_degree, splats.sh_degree))
        preset = self._preset(out_fmt)
        if out_fmt == "spk" and self.distill.steps > 0:
            self._distil(splats, in_fmt, preset, start)
            return
        options = {
            "spz": {"version": self.spz_version},
            "sog": {"sort": self.sort, "seed": self.seed, "preset": preset},
            "lod-sog": {"lod_levels": self.lod_levels, "seed": self.seed, "preset": preset},
            "spk": {"positions": self.spk_positions, "seed": self.seed},
            "ply": {"normals": self.normals},
        }.get(out_fmt, {})
        with progress.stage("write"):
            sio.write(splats, self.output, format=out_fmt, inputs=(self.input,), **options)
        in_size, out_size = path_size(self.input), path_size(self.output)
        print(
            f"{self.input} ({in_fmt}, {human_bytes(in_size)}) -> {self.output} ({out_fmt}, {human_bytes(out_size)}): "
            f"{len(splats):,} Gaussians, SH degree {splats.sh_degree}, "
            + (f"{self.sort} grid order, " if out_fmt == "sog" else "")
            + f"{ratio_text(in_size, out_size)} than the input, "
            f"{out_size / max(len(splats), 1):.2f} B/Gaussian, {time.perf_counter() - start:.1f} s"
        )

    def _preset(self, out_fmt: str) -> str | None:
        """The size preset for ``out_fmt``: the one given, or the format's default (XS for .spk, balanced for
        SOG); one of the other family fails. Formats without presets ignore it."""
        from splatpack.errors import SplatpackError

        family, default = {"spk": (SPK_PRESETS, "XS"), "sog": (SOG_PRESETS, "balanced")}.get(
            "sog" if out_fmt == "lod-sog" else out_fmt, ((), None)
        )
        if self.preset is None or not family:
            return default
        if self.preset not in family:
            raise SplatpackError(f"--preset {self.preset} is not a {out_fmt} preset; choose {', '.join(family)}")
        return self.preset

    def _distil(self, splats, in_fmt: str, preset: str, start: float) -> None:
        from splatpack.distill.run import distil_to_file
        from splatpack.errors import SplatpackError
        from splatpack.io.files import human_bytes, path_size, ratio_text

        try:
            report = distil_to_file(splats, self.output, self.distill, preset=preset, seed=self.seed,
                                    positions=self.spk_positions)  # fmt: skip
        except SplatpackError as exc:
            raise SplatpackError(exc.problem, exc.path or self.input) from None
        in_size = path_size(self.input)
        target = (
            ""
            if report["target_psnr"] is None
            else f" (target {report['target_psnr']:.1f} dB "
            + ("met)" if report["target_met"] else "missed even at XL)")
        )
        print(
            f"{self.input} ({in_fmt}, {human_bytes(in_size)}) -> {self.output} (spk {report['preset']}, "
            f"{human_bytes(report['bytes'])}): {report['gaussians_before']:,} -> {report['gaussians_after']:,} "
            f"Gaussians, {ratio_text(in_size, report['bytes'])} than the input, "
            f"{report['bytes_per_gaussian']:.2f} B/Gaussian, held-out render PSNR {report['held_out_psnr']:.2f} dB "
            f"SSIM {report['held_out_ssim']:.4f} against the input ({report['views_held_out']} views){target}, "
            f"{time.perf_counter() - start:.1f} s"
        )
