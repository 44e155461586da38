"""Generate the embedded demo scene.

Usage: python data/generate.py [--out data/demo] [--views N] [--extra-test-views N] [--width W] [--height H] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from splatpack.datasets.demo_scene import generate_demo_scene
from splatpack.errors import SplatpackError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the embedded demo scene.")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "demo", help="output folder")
    parser.add_argument("--views", type=int, default=48, help="number of camera views (default 48)")
    parser.add_argument("--test-every", type=int, default=8, help="hold out every N-th view for test (default 8)")
    parser.add_argument(
        "--extra-test-views", type=int, default=34, help="held-out views between the ring's cameras (default 34)"
    )
    parser.add_argument("--width", type=int, default=160, help="image width in pixels (default 160)")
    parser.add_argument("--height", type=int, default=120, help="image height in pixels (default 120)")
    parser.add_argument("--seed", type=int, default=0, help="seed for textures and seed points (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="regenerate even when the folder is up to date")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        out = generate_demo_scene(
            args.out,
            n_views=args.views,
            test_every=args.test_every,
            extra_test_views=args.extra_test_views,
            width=args.width,
            height=args.height,
            seed=args.seed,
            overwrite=args.overwrite,
        )
    except SplatpackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"demo scene in {out} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
