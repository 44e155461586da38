"""``compress_scene``: distil a scene into a ``.spk`` file and say how faithful the file is.

Fidelity is measured on what a user gets: the written file is read back and rendered from held-out views (never
fitted) beside the original. The report (a dict, written as JSON on request) holds sizes, bytes per Gaussian,
Gaussians before and after, held-out PSNR / SSIM against the original, and what ran; the PNG puts original and
compressed renders of a few held-out views side by side.

With ``target_psnr`` the presets are tried from the smallest (XS) up, and the first whose file reaches the
target on the held-out views is kept (each try is a full distillation).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import torch

from splatpack.distill.fit import DistillConfig, distill, ld_scores_over, render_targets
from splatpack.evaluation import Views, render_views, score
from splatpack.io import spk
from splatpack.io.atomic import atomic_output
from splatpack.omg.pruning import PRESETS
from splatpack.scene import Splats

PNG_VIEWS = 3  # held-out views in the side-by-side picture


def side_by_side(originals: list[torch.Tensor], compressed: list[torch.Tensor], path: str | os.PathLike) -> None:
    """A PNG with one row per view: original on the left, compressed on the right (written atomically)."""
    from PIL import Image

    rows = [torch.cat([a, b], dim=1) for a, b in zip(originals, compressed, strict=True)]
    picture = (torch.cat(rows, dim=0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
    with atomic_output(path) as tmp:
        Image.fromarray(np.ascontiguousarray(picture)).save(tmp, format="PNG")


def _try(source, fit, held, held_targets, config, out, positions, teacher) -> tuple[dict, list[torch.Tensor]]:
    result = distill(source, fit, config, **teacher)
    spk.write_compact(result.compact, out, positions=positions)
    decoded = spk.read(out).to(source.device)
    renders = render_views(decoded, held)
    quality = score(renders, held_targets)
    facts = {
        "preset": config.preset,
        "gaussians_before": result.source,
        "gaussians_after": len(decoded),
        "bytes": Path(out).stat().st_size,
        "held_out_psnr": quality.get("psnr"),
        "held_out_ssim": quality.get("ssim"),
        "final_loss": result.final_loss,
    }
    return facts, renders


def compress_scene(
    source: Splats,
    out: str | os.PathLike,
    fit: Views,
    held: Views,
    *,
    config: DistillConfig | None = None,
    target_psnr: float | None = None,
    positions: str = "fp16",
    png: str | os.PathLike | None = None,
) -> dict:
    """Distil ``source`` into the ``.spk`` file ``out`` (atomically), fitting the views ``fit``, and report its
    fidelity on ``held`` (views from ``splatpack.distill.rig``: ``virtual_views`` or ``camera_views``)."""
    start = time.perf_counter()
    config = config or DistillConfig()
    held_targets = render_targets(source, held)
    presets = [config.preset] if target_psnr is None else list(PRESETS)[list(PRESETS).index(config.preset) :]

    def met(facts: dict) -> bool:
        return (facts["held_out_psnr"] or 0.0) >= target_psnr

    # What the fitted views show and how OMG scores each Gaussian do not depend on the preset: once for all tries.
    teacher = {}
    if len(presets) > 1:
        teacher = {"targets": render_targets(source, fit), "scores": ld_scores_over(source, fit, config)}
    tries = []
    for preset in presets:
        facts, renders = _try(
            source, fit, held, held_targets, dataclasses.replace(config, preset=preset), out, positions, teacher
        )
        tries.append(facts)
        if target_psnr is None or met(facts):
            break
    report = {
        **tries[-1],
        "output": str(out),
        "bytes_per_gaussian": tries[-1]["bytes"] / max(tries[-1]["gaussians_after"], 1),
        "views_fitted": len(fit),
        "views_held_out": len(held),
        "view_size": list(fit.sizes[0]),
        "steps": config.steps,
        "target_psnr": target_psnr,
        "target_met": None if target_psnr is None else met(tries[-1]),
        "tries": tries,
        "seconds": time.perf_counter() - start,
    }
    if png is not None:
        side_by_side(held_targets[:PNG_VIEWS], renders[:PNG_VIEWS], png)
        report["png"] = str(png)
    return report
