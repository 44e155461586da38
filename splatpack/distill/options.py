"""The options of a post-hoc distillation, as ``splatpack compress`` shows them (no torch import here: the
command's other formats run without it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal, Optional

Rig = Literal["auto", "orbit", "inside", "both"]
# typing.Optional, not ``X | None``: for a PEP 604 union tyro imports typeguard to check the default (~0.1 s on
# every compress, as splatpack.commands.OptionalInt says).
OptionalPath = Optional[Path]  # noqa: UP045
OptionalFloat = Optional[float]  # noqa: UP045


@dataclasses.dataclass
class DistillOptions:
    """Post-hoc distillation into .spk (splatpack's own format). Renders of the input are the targets: no
    training images are needed."""

    steps: int = 1000
    """Optimisation steps fitting the pruned, quantized scene to the renders (0: no distillation: every
    Gaussian kept, attributes quantized directly, seconds instead of minutes, several times larger)."""
    views: int = 64
    """Virtual cameras (every 8th held out to measure the result), unless --cameras is given."""
    size: int = 256
    """Width in pixels of the rendered views (height 3/4 of it for virtual cameras)."""
    rig: Rig = "auto"
    """Virtual cameras: orbit (around the scene), inside (near its centre, looking out: rooms, unbounded
    captures), both, or auto (both when the scene has a far background shell, else orbit)."""
    cameras: OptionalPath = None
    """The capture's own cameras instead (transforms.json or a COLMAP folder; poses in the scene's frame)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to render and fit (auto: CUDA when available)."""
    target_psnr: OptionalFloat = None
    """Aim at a held-out PSNR (dB, against the original's renders) instead of a preset: presets are tried from
    the given one (XS by default) up until one reaches it."""
    report: OptionalPath = None
    """Write the fidelity report here as JSON (and the side-by-side PNG beside it, same name, .png)."""
