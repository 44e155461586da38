"""Does the CPU renderer train? Plain photometric optimisation on the demo scene, held-out PSNR/SSIM.

Runs the issue's check (500 steps from random initialisation, fixed Gaussian count) and, for comparison, the
same budget from the scene's seed points with densification (what ``splatpack demo`` ran before it trained
``splatpack-omg``).
Prints a table and writes bench/results/train_demo.json.

    .venv/bin/python bench/train_demo.py [--steps 500] [--scene data/demo]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _report import Column, print_table, write_results

from splatpack.datasets.demo_scene import generate_demo_scene
from splatpack.datasets.seed_points import load_seed_points
from splatpack.datasets.transforms import load_transforms
from splatpack.evaluation import Views, evaluate
from splatpack.train.trainer import TrainConfig, init_from_points, random_init, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--scene", type=Path, default=Path("data/demo"))
    ap.add_argument("--random-gaussians", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=Path("bench/results/train_demo.json"))
    args = ap.parse_args()

    scene = generate_demo_scene(args.scene)
    train_set = load_transforms(scene / "transforms.json", split="train")
    test_set = load_transforms(scene / "transforms.json", split="test")
    heldout = Views.of_cameras(test_set)
    points, colours = load_seed_points(scene)
    runs = {
        "random init, fixed count": (random_init(train_set, args.random_gaussians, 1, seed=0), False),
        "seed points + densification": (init_from_points(points, colours, 1), True),
    }
    rows = []
    for name, (init, densify) in runs.items():
        before = evaluate(init, heldout)
        start = time.perf_counter()
        result = train(init, train_set, TrainConfig(steps=args.steps, densify=densify))
        seconds = time.perf_counter() - start
        after = evaluate(result, heldout)
        rows.append(
            {
                "run": name,
                "steps": args.steps,
                "gaussians_start": len(init),
                "gaussians_end": len(result),
                "psnr_before": before["psnr"],
                "psnr": after["psnr"],
                "ssim": after["ssim"],
                "train_seconds": seconds,
                "seconds_per_step": seconds / args.steps,
            }
        )
    print_table(
        rows,
        [
            Column("run", "run"),
            Column("steps", "steps", "d"),
            Column("N start", "gaussians_start", "d"),
            Column("N end", "gaussians_end", "d"),
            Column("PSNR0", "psnr_before", ".2f"),
            Column("PSNR", "psnr", ".2f"),
            Column("SSIM", "ssim", ".3f"),
            Column("s/step", "seconds_per_step", ".3f"),
        ],
    )
    scene_info = {
        "scene": str(scene),
        "train_views": len(train_set.images),
        "test_views": len(test_set.images),
        "resolution": [train_set.width, train_set.height],
    }
    write_results(args.out, {"scene": scene_info, "rows": rows})


if __name__ == "__main__":
    main()
