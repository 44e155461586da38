"""``splatpack demo``: the main job on the embedded scene — generate, train, compress, report quality and size."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Literal

import tyro


@dataclasses.dataclass
class Command:
    """Generate the demo scene (if needed), train it on the CPU with OMG's compact pipeline (minimal Gaussians,
    sub-vector quantization; the MLP attribute fields stay off at CPU lengths, see short_run), write it in every
    format and score each decoded file."""

    scene: Path = Path("data/demo")
    """Where the generated demo scene lives (generated on first use, deterministic)."""
    out: Path = Path("outputs/demo")
    """Folder for the trained scene in every format, report.json and the training run."""
    steps: int = 1500
    """Training steps (one view each); OMG's events run at the paper's fractions of them."""
    method: Literal["splatpack-omg", "splatpack", "splatpack-base"] = "splatpack-omg"
    """nerfstudio method to train: OMG (compact .spk), Self-Organizing Gaussians, or the plain 3DGS baseline."""
    preset: Literal["XS", "S", "M", "L", "XL"] = "XS"
    """OMG's size preset (share of the importance mass LD pruning keeps)."""
    formats: tuple[str, ...] = ("ply", "spz", "sog", "spk")
    """Formats to write and evaluate (decoded files are rendered against the held-out views)."""
    seed: int = 42
    """Seed for initialisation, view order, sampling and the quantizers."""
    quiet: tyro.conf.Suppress[bool] = False

    def run(self) -> None:
        from rich.console import Console
        from rich.table import Table

        from splatpack.datasets.demo_scene import generate_demo_scene
        from splatpack.io.atomic import atomic_output
        from splatpack.nerfstudio.export import export_pipeline
        from splatpack.nerfstudio.short_run import configure_short_run, method_trainer_config, train

        console = Console(quiet=self.quiet)
        t0 = time.perf_counter()
        scene_dir = generate_demo_scene(self.scene)
        cfg = method_trainer_config(self.method)
        configure_short_run(cfg, self.method, scene_dir, self.out / "runs", self.steps, self.seed)
        if self.method == "splatpack-omg":
            cfg.pipeline.model.preset = self.preset
        console.log(f"scene {scene_dir}: training {self.method} for {self.steps} steps on the CPU-sized schedule")
        trainer, train_seconds = train(cfg)
        report = export_pipeline(trainer.pipeline, self.out, formats=self.formats, sog_preset="tiny")
        views = report["heldout_views"]
        n = report["num_gaussians"]
        trained = {"file": "(trained, in memory)", "bytes": None, "views": views}
        rows = [trained | {k: report[f"trained_{k}"] for k in ("psnr", "ssim")}]
        for name, entry in report["files"].items():
            rows.append({"file": str(self.out / name), "bytes": entry["bytes"], "views": views,
                         "psnr": entry["psnr"], "ssim": entry["ssim"]})  # fmt: skip

        table = Table(title=f"demo scene, {self.method}: {n} Gaussians, {self.steps} steps, {views} held-out views")
        for col in ("file", "size", "B/Gaussian", "held-out PSNR", "SSIM"):
            table.add_column(col)
        for r in rows:
            size = "-" if r["bytes"] is None else f"{r['bytes'] / 1e6:.3f} MB"
            bpg = "-" if r["bytes"] is None else f"{r['bytes'] / max(n, 1):.1f}"
            table.add_row(r["file"], size, bpg, f"{r['psnr']:.2f} dB", f"{r['ssim']:.4f}")
        console.print(table)
        summary = {
            "method": self.method,
            "gaussians": n,
            "steps": self.steps,
            "train_seconds": train_seconds,
            "total_seconds": time.perf_counter() - t0,
            "omg_events": [list(e) for e in getattr(trainer.pipeline.model, "omg_events", [])],
            "results": rows,
        }
        with atomic_output(self.out / "report.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
        console.log(f"done in {summary['total_seconds']:.0f} s; report written to {self.out / 'report.json'}")
