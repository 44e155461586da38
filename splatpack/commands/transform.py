"""``splatpack transform IN... OUT``: merge, move, filter and reorder splat files, writing any format."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Literal

import tyro

from splatpack.edit.nonfinite import Policy


def _alias(flag: str):
    return tyro.conf.arg(aliases=(flag,))


@dataclasses.dataclass
class Command:
    """Edit splat files and write the result in any format (from OUT's extension). The steps run in this order,
    each printing how many Gaussians it kept: read every IN (--nonfinite), merge them (SH degrees padded to
    the highest), scale, rotate, translate, then the filters (box, sphere, values: in output coordinates),
    keep the most important, cut the SH degree, Morton order, write. Rotations are right-handed in the file's
    own frame; splat-transform's -r a,b,c / -t a,b,c act in PlayCanvas's frame (x and y negated) and equal
    -r -a -b c / -t -a -b c here. Runs on numpy alone except --top, rotating SH bands above degree 0, reading
    or writing glTF or .spk and writing SOG or LOD SOG, which load PyTorch (a few seconds)."""

    paths: Annotated[tyro.conf.Positional[list[Path]], tyro.conf.arg(metavar="IN... OUT")]
    """One or more input splat files (any format splatpack reads), then the output file."""
    scale: Annotated[float, _alias("-s")] = 1.0
    """Uniform scale factor about the origin."""
    rotate: Annotated[tuple[float, float, float] | None, _alias("-r")] = None
    """Euler angles in degrees: about x, then y, then z (fixed axes)."""
    quaternion: tuple[float, float, float, float] | None = None
    """Rotation as a quaternion W X Y Z (instead of --rotate; normalised)."""
    translate: Annotated[tuple[float, float, float] | None, _alias("-t")] = None
    """Translation X Y Z, applied after the scale and rotation."""
    nonfinite: Annotated[Policy, _alias("-N")] = "clamp"
    """NaN/Inf values in the inputs: clamp (infinite opacities and scales become the largest finite value; NaN is
    refused), drop (remove those Gaussians) or error."""
    box: Annotated[tuple[float, float, float, float, float, float] | None, _alias("-B")] = None
    """Keep Gaussians whose centre is inside the box MINX MINY MINZ MAXX MAXY MAXZ."""
    sphere: Annotated[tuple[float, float, float, float] | None, _alias("-S")] = None
    """Keep Gaussians whose centre is inside the sphere X Y Z RADIUS."""
    value: Annotated[tuple[str, ...], _alias("-V"), tyro.conf.UseAppendAction] = ()
    """Keep Gaussians where NAME,CMP,VALUE holds (repeatable), e.g. opacity,gte,0.05 or scale,lt,0.5; CMP is
    lt lte gt gte eq neq; names as splat-transform's -V: x y z opacity (0-1) scale (largest) scale_0-2 (linear)
    f_dc_0-2 (colour) rot_0-3 f_rest_<i>, and NAME_raw for the stored value."""
    top: int | None = None
    """Keep the TOP most important Gaussians (opacity x volume, as the viewer's point budget)."""
    sh_degree: Annotated[int | None, _alias("-H")] = None
    """Keep spherical harmonics up to this degree (0-3)."""
    morton: Annotated[bool, _alias("-m")] = False
    """Reorder the Gaussians by the Morton code of their centres."""
    lod_level: int | None = None
    """For LOD SOG inputs (lod-meta.json): read only this level (0 = finest; default: all levels)."""
    format: Literal["ply", "compressed-ply", "spz", "splat", "sog", "glb", "lod-sog"] | None = None
    """Output format (default: from OUT's extension)."""
    lod_levels: int = 3
    """Levels of detail of an LOD SOG output (OUT named lod-meta.json), each half the one before."""
    normals: bool = False
    """PLY output only: write the zero nx, ny, nz properties of the original 3DGS layout (12 bytes per Gaussian
    more; no splat reader needs them, splat-transform leaves them out too)."""
    quiet: bool = False
    """Print only the final 'wrote' line: no per-step counts, no progress."""
    verbose: bool = False
    """A line per finished stage (read, write) with its time; in a log also the running stage's progress."""

    def run(self) -> None:
        from splatpack import progress

        with progress.reporting(progress.mode_of(self.quiet, self.verbose)):
            self._run()

    def _run(self) -> None:
        import numpy as np

        import splatpack.io as sio
        from splatpack import progress
        from splatpack.edit import filters
        from splatpack.edit.rigid import euler_matrix, quaternion_matrix, similarity
        from splatpack.errors import SplatpackError
        from splatpack.io.lod_sog import lod_option
        from splatpack.scene import Splats

        if len(self.paths) < 2:
            raise SplatpackError("transform needs at least one input and an output: splatpack transform IN... OUT")
        *inputs, output = self.paths
        if self.rotate is not None and self.quaternion is not None:
            raise SplatpackError("give the rotation once: --rotate (Euler degrees) or --quaternion, not both")
        if self.sh_degree is not None and not 0 <= self.sh_degree <= 3:
            raise SplatpackError(f"--sh-degree {self.sh_degree} is out of range 0-3")
        out_fmt = self.format or sio.format_from_name(output)
        if out_fmt is None:
            raise SplatpackError("cannot tell the output format from the name; pass --format", output)
        if self.normals and out_fmt != "ply":
            raise SplatpackError(f"--normals applies to PLY output only, not {out_fmt}", output)
        tests = [_parse_value(v) for v in self.value]

        def say(line: str) -> None:
            if not self.quiet:
                print(line, flush=True)

        def step(name: str, before: int, after: Splats) -> Splats:
            say(f"{name}: kept {len(after):,} of {before:,} Gaussians")
            return after

        parts = []
        for path in inputs:
            fmt = sio.detect_format(path)
            options = lod_option(self.lod_level) if fmt == "lod-sog" else {}  # applies to the LOD inputs only
            with progress.stage("read"):
                part = sio.read(path, format=fmt, nonfinite=self.nonfinite, arrays="numpy", **options)
            say(f"read {path} ({fmt}): {len(part):,} Gaussians, SH degree {part.sh_degree}")
            parts.append(part)
        splats = parts[0] if len(parts) == 1 else step("merge", sum(map(len, parts)), Splats.cat(parts))
        rotation = None
        if self.rotate is not None:
            rotation = euler_matrix(self.rotate)
        elif self.quaternion is not None:
            rotation = quaternion_matrix(self.quaternion)
        if rotation is not None or self.translate is not None or self.scale != 1.0:
            splats = step(
                "scale/rotate/translate",
                len(splats),
                similarity(splats, rotation=rotation, translation=self.translate, scale=self.scale),
            )
        if self.box is not None:
            splats = step("box", len(splats), splats[filters.box_mask(splats, self.box[:3], self.box[3:])])
        if self.sphere is not None:
            splats = step("sphere", len(splats), splats[filters.sphere_mask(splats, self.sphere[:3], self.sphere[3])])
        for name, comparator, threshold in tests:
            mask = filters.value_mask(splats, name, comparator, threshold)
            splats = step(f"{name} {comparator} {threshold:g}", len(splats), splats[mask])
        if self.top is not None:
            splats = step(f"top {self.top:,}", len(splats), splats[filters.most_important(splats, self.top)])
        if self.sh_degree is not None and self.sh_degree < splats.sh_degree:
            splats = splats.with_sh_degree(self.sh_degree)
            say(f"SH degree: {splats.sh_degree}")
        if self.morton:
            splats = step("Morton order", len(splats), filters.morton_reorder(splats))
        if len(splats) == 0:
            raise SplatpackError("the edits kept no Gaussians; nothing to write", output)
        splats = splats.numpy(np.float32)
        options = {"lod-sog": {"lod_levels": self.lod_levels}, "ply": {"normals": self.normals}}.get(out_fmt, {})
        with progress.stage("write"):
            sio.write(splats, output, format=out_fmt, inputs=tuple(inputs), **options)
        print(f"wrote {output} ({out_fmt}): {len(splats):,} Gaussians, SH degree {splats.sh_degree}", flush=True)


def _parse_value(text: str) -> tuple[str, str, float]:
    """``NAME,CMP,VALUE`` as splat-transform's -V writes it."""
    from splatpack.edit.filters import COMPARATORS
    from splatpack.errors import SplatpackError

    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3 or parts[1] not in COMPARATORS:
        raise SplatpackError(f"--value {text!r}: expected NAME,CMP,VALUE with CMP one of {', '.join(COMPARATORS)}")
    try:
        return parts[0], parts[1], float(parts[2])
    except ValueError:
        raise SplatpackError(f"--value {text!r}: {parts[2]!r} is not a number") from None
