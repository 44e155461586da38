"""Standard 3DGS PLY speed: write and read time of random scenes (default 1M Gaussians at SH degree 3).

Each case is written and read ``repeats`` times after one warm-up; the median is reported (the first
read of a fresh file comes from the page cache, as it would right after training). Prints a table and
writes bench/results/ply.json.

    .venv/bin/python bench/ply.py [--repeats 3] [--cases 1000000x3,1000000x0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _report import Column, print_table, write_results

from splatpack.io import ply
from splatpack.scene import Splats


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
    print_table(
        rows,
        [
            Column("gaussians", "gaussians", "d"),
            Column("SH", "sh_degree", "d"),
            Column("file MB", "file_mb", ".1f"),
            Column("write s", "write_s", ".3f"),
            Column("read s", "read_s", ".3f"),
            Column("MB/s w", lambda r: r["file_mb"] / r["write_s"], ".0f"),
            Column("MB/s r", lambda r: r["file_mb"] / r["read_s"], ".0f"),
            Column("exact", "round_trip_exact"),
        ],
    )
    write_results("ply", {"rows": rows})


if __name__ == "__main__":
    main()
