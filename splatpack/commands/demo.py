"""``splatpack demo``: the main job on the embedded scene — generate, train, compress, report quality and size."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import tyro


@dataclasses.dataclass
class Command:
    """Generate the demo scene (if needed), train it on the CPU, write compressed files and report their quality."""

    scene: Path = Path("data/demo")
    """Where the generated demo scene lives (generated on first use, deterministic)."""
    out: Path = Path("outputs/demo")
    """Folder for the trained scene in every format and report.json."""
    steps: int = 1500
    """Training steps (one view each)."""
    sh_degree: int = 1
    """Highest SH degree to train."""
    formats: tuple[str, ...] = ("ply", "spz", "sog")
    """Formats to write and evaluate (decoded files are rendered against the held-out views)."""
    seed: int = 0
    """Seed for scene generation, initialisation and view sampling."""
    quiet: tyro.conf.Suppress[bool] = False

    def run(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.table import Table

        from splatpack.datasets.demo_scene import generate_demo_scene
        from splatpack.datasets.seed_points import load_seed_points
        from splatpack.datasets.transforms import load_transforms
        from splatpack.evaluation import Views, evaluate, round_trip
        from splatpack.io.atomic import atomic_output
        from splatpack.train.trainer import TrainConfig, init_from_points, train

        console = Console(quiet=self.quiet)
        t0 = time.perf_counter()
        scene_dir = generate_demo_scene(self.scene, seed=self.seed)
        train_set = load_transforms(scene_dir / "transforms.json", split="train")
        test_set = load_transforms(scene_dir / "transforms.json", split="test")
        points, colours = load_seed_points(scene_dir)
        console.log(
            f"scene {scene_dir}: {len(train_set.images)} training / {len(test_set.images)} held-out views at "
            f"{train_set.width}x{train_set.height}, {len(points)} seed points"
        )

        cfg = TrainConfig(steps=self.steps, sh_degree=self.sh_degree, seed=self.seed)
        init = init_from_points(points, colours, cfg.sh_degree)
        with Progress(
            TextColumn("training"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} loss {task.fields[loss]:.4f} {task.fields[n]} Gaussians"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("train", total=cfg.steps, loss=float("nan"), n=len(init))
            splats = train(
                init, train_set, cfg, progress=lambda step, loss, n: bar.update(task, advance=1, loss=loss, n=n)
            )
        train_seconds = time.perf_counter() - t0

        self.out.mkdir(parents=True, exist_ok=True)
        heldout = Views.of_cameras(test_set)
        rows = [{"file": "(trained, in memory)", "bytes": None, **evaluate(splats, heldout)}]
        for r in round_trip(splats, self.formats, self.out, heldout):
            rows.append({"file": str(r.path), "bytes": r.bytes, **r.scores})

        table = Table(title=f"demo scene: {len(splats)} Gaussians, SH degree {cfg.sh_degree}, {cfg.steps} steps")
        has_lpips = "lpips" in rows[0]  # only when its weights are on disk
        for col in ("file", "size", "B/Gaussian", "held-out PSNR", "SSIM") + (("LPIPS",) if has_lpips else ()):
            table.add_column(col)
        for r in rows:
            size = "-" if r["bytes"] is None else f"{r['bytes'] / 1e6:.3f} MB"
            bpg = "-" if r["bytes"] is None else f"{r['bytes'] / len(splats):.1f}"
            lpips = (f"{r['lpips']:.4f}",) if has_lpips else ()
            table.add_row(r["file"], size, bpg, f"{r['psnr']:.2f} dB", f"{r['ssim']:.4f}", *lpips)
        console.print(table)
        report = {
            "gaussians": len(splats),
            "steps": cfg.steps,
            "train_seconds": train_seconds,
            "total_seconds": time.perf_counter() - t0,
            "results": rows,
        }
        with atomic_output(self.out / "report.json") as tmp:
            tmp.write_text(json.dumps(report, indent=2))
        console.log(f"done in {report['total_seconds']:.0f} s; report written to {self.out / 'report.json'}")
