"""What ``splatpack compress IN OUT.spk`` runs: from a read scene to the written file, its report JSON and its
side-by-side PNG, as ``DistillOptions`` say."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from splatpack.distill.fit import DistillConfig
from splatpack.distill.options import DistillOptions
from splatpack.distill.report import compress_scene
from splatpack.distill.rig import camera_views, virtual_views
from splatpack.errors import SplatpackError
from splatpack.io import spk
from splatpack.io.atomic import atomic_output
from splatpack.scene import Splats


def _device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise SplatpackError("--device cuda: no CUDA device is available")
    return torch.device("cuda" if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()) else "cpu")


def distil_to_file(
    source: Splats,
    output: str | os.PathLike,
    options: DistillOptions,
    *,
    preset: str = "XS",
    seed: int = 0,
    positions: str = "fp16",
) -> dict:
    """Distil ``source`` into ``output`` (.spk) as ``options`` say; returns the report (also written as JSON,
    with its PNG, when ``options.report`` is set)."""
    if options.views < 2 or options.size < 16:
        raise SplatpackError(f"--views {options.views} / --size {options.size}: need >= 2 views of >= 16 px")
    spk.check_options(positions, "morton")  # refused before minutes of fitting, not after
    device = _device(options.device)
    source = source.to(device)
    if options.cameras is not None:
        fit, held = camera_views(options.cameras, width=options.size)
    else:
        fit, held, _ = virtual_views(source, views=options.views, width=options.size, rig=options.rig, seed=seed)
    config = DistillConfig(preset=preset, steps=options.steps, seed=seed, half_positions=positions == "fp16")
    png = None if options.report is None else Path(options.report).with_suffix(".png")
    report = compress_scene(
        source, output, fit, held, config=config, target_psnr=options.target_psnr, positions=positions, png=png
    )
    report["device"] = str(device)
    report["rig"] = "cameras" if options.cameras is not None else options.rig
    if options.report is not None:
        with atomic_output(options.report) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report
