"""``splatpack export CONFIG.yml OUT_DIR``: a trained ``ns-train splatpack`` run to .ply/.spz/.sog plus a report."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Tuple

import tyro

_FULL_LOAD = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


@dataclasses.dataclass
class Command:
    """Export a trained `ns-train splatpack` (or splatpack-base) run in the input data's own frame.

    Writes scene.ply, scene.spz and scene.sog (or the formats chosen) into OUT_DIR and report.json with each
    file's size and the PSNR/SSIM of the held-out views rendered from the file as read back.
    """

    config: tyro.conf.Positional[Path]
    """The run's config.yml (outputs/<experiment>/splatpack/<timestamp>/config.yml)."""
    out_dir: tyro.conf.Positional[Path]
    """Folder for the exported files (created if missing)."""
    formats: Tuple[str, ...] = ("ply", "spz", "sog")
    """Formats to write."""

    def run(self) -> None:
        from splatpack.errors import SplatpackError

        if not self.config.is_file():
            raise SplatpackError("no such run config", self.config)
        from nerfstudio.utils.eval_utils import eval_setup

        from splatpack.commands._common import human_bytes
        from splatpack.nerfstudio.export import export_pipeline
        from splatpack.nerfstudio.model import SplatpackModel

        # nerfstudio 1.1.5 checkpoints hold more than tensors, and torch >= 2.6 loads weights only by default;
        # the checkpoint is the user's own training output, so load it in full for this one call.
        previous = os.environ.get(_FULL_LOAD)
        os.environ[_FULL_LOAD] = "1"
        try:
            _, pipeline, _, _ = eval_setup(self.config, test_mode="test")
        finally:
            if previous is None:
                del os.environ[_FULL_LOAD]
            else:
                os.environ[_FULL_LOAD] = previous
        if not isinstance(pipeline.model, SplatpackModel):
            raise SplatpackError(f"the run's model is {type(pipeline.model).__name__}, not a splatpack model", self.config)
        report = export_pipeline(pipeline, self.out_dir, formats=self.formats)
        for name, entry in report["files"].items():
            quality = f"  PSNR {entry['psnr']:.2f}  SSIM {entry['ssim']:.4f}" if "psnr" in entry else ""
            print(f"{self.out_dir / name}: {human_bytes(entry['bytes'])}{quality}")
        print(f"{self.out_dir / 'report.json'}")
