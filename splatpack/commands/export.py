"""``splatpack export CONFIG.yml OUT_DIR``: a trained ``ns-train`` run to .ply/.spz/.sog(/.spk) plus a report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tyro


@dataclasses.dataclass
class Command:
    """Export a trained `ns-train splatpack` (or splatpack-base, or splatfacto) run in the input data's own frame.

    Writes the run's export formats (scene.ply, scene.spz, scene.sog; splatpack-omg also its compact scene.spk),
    or the formats chosen, into OUT_DIR and report.json with each file's size and the PSNR/SSIM of the held-out
    views rendered from the file as read back.
    """

    config: tyro.conf.Positional[Path]
    """The run's config.yml (outputs/<experiment>/splatpack/<timestamp>/config.yml)."""
    out_dir: tyro.conf.Positional[Path]
    """Folder for the exported files (created if missing)."""
    formats: tuple[str, ...] | None = None
    """Formats to write (default: the method's end-of-training export formats; spk works for any run, post hoc
    for methods without a compact form)."""
    sog_preset: str = "tiny"
    """SOG quality preset: tiny, small, balanced or high (the SH palette size, smallest first)."""

    def run(self) -> None:
        from splatpack.errors import SplatpackError

        if not self.config.is_file():
            raise SplatpackError("no such run config", self.config)
        from nerfstudio.models.splatfacto import SplatfactoModel
        from nerfstudio.utils.eval_utils import eval_setup

        from splatpack.io.files import human_bytes
        from splatpack.nerfstudio.export import export_pipeline  # the package allowlists checkpoint contents
        from splatpack.nerfstudio.splatfacto_cpu import splatfacto_on_cpu

        with splatfacto_on_cpu():  # a splatfacto run's model cannot even be built on a CPU-only machine otherwise
            _, pipeline, _, _ = eval_setup(self.config, test_mode="test")
        if not isinstance(pipeline.model, SplatfactoModel):
            raise SplatpackError(
                f"the run's model is {type(pipeline.model).__name__}, not a Gaussian splatting model", self.config
            )
        formats = self.formats or getattr(pipeline.model.config, "export_formats", ("ply", "spz", "sog"))
        report = export_pipeline(pipeline, self.out_dir, formats=formats, sog_preset=self.sog_preset)
        for name, entry in report["files"].items():
            quality = f"  PSNR {entry['psnr']:.2f}  SSIM {entry['ssim']:.4f}" if "psnr" in entry else ""
            print(f"{self.out_dir / name}: {human_bytes(entry['bytes'])}{quality}")
        print(f"{self.out_dir / 'report.json'}")
