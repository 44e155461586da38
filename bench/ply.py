"""Standard 3DGS PLY speed: write and read time of random scenes (default 1M Gaussians at SH degree 3).

Each case is written and read ``repeats`` times after one warm-up; the median is reported (the first
read of a fresh file comes from the page cache, as it would right after training). Prints a table and
writes bench/results/ply.json.

    .venv/bin/python bench/ply.py [--repeats 3] [--cases 1000000x3,1000000x0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from splatpack.io import ply
from splatpack.io.atomic import atomic_output
from splatpack.scene import Splats

RESULTS = Path(__file__).resolve().parent / "results" / "ply.json"


def run_case(n: int, sh_degree: int, repeats: int) -> dict:
    splats = Splats.random(n, sh_degree, seed=0)
    writes, reads = [], []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scene.ply"
        for _ in range(repeats + 1):  # the first pass warms allocators and the page cache
            start = time.perf_counter()
            ply.write(splats, path)
            writes.append(time.perf_counter() - start)
            start = time.perf_counter()
            back = ply.read(path)
            reads.append(time.perf_counter() - start)
        size = path.stat().st_size
    exact = all(torch.equal(getattr(back, f), getattr(splats, f)) for f in Splats.FIELDS)
    return {
        "gaussians": n,
        "sh_degree": sh_degree,
        "file_mb": size / 1e6,
        "write_s": statistics.median(writes[1:]),
        "read_s": statistics.median(reads[1:]),
        "round_trip_exact": exact,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="1000000x3,1000000x0", help="comma-separated GAUSSIANSxSH_DEGREE list")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rows = [run_case(*map(int, case.split("x")), args.repeats) for case in args.cases.split(",")]
    print(f"{'gaussians':>9} {'SH':>3} {'file MB':>8} {'write s':>8} {'read s':>7} {'MB/s w':>7} {'MB/s r':>7} exact")
    for r in rows:
        print(
            f"{r['gaussians']:>9} {r['sh_degree']:>3} {r['file_mb']:>8.1f} {r['write_s']:>8.3f} {r['read_s']:>7.3f} "
            f"{r['file_mb'] / r['write_s']:>7.0f} {r['file_mb'] / r['read_s']:>7.0f} {r['round_trip_exact']}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(RESULTS) as tmp:
        tmp.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
