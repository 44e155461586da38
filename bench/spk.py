"""``.spk`` decode speed: a 1M-Gaussian OMG-layout file (MLP fields, SVQ indices at OMG's codebook sizes) decoded
to a standard PLY, whole process (``splatpack decompress``, interpreter and imports included) and in process
(read + bake, and each part alone). Median of ``--repeats`` after one warm-up. Goal (issue 19): < 5 s on CPU.

The scene is synthetic but shaped like a trained one where it matters for speed: positions on a few noisy
surfaces (so the position coder sees clustered points), indices drawn from skewed distributions, trained-size
fields (random weights; baking cost does not depend on their values).

    .venv/bin/python bench/spk.py [--gaussians 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import Column, print_table, write_results

from splatpack.io import spk
from splatpack.omg.compact import CompactScene
from splatpack.omg.fields import AttributeFields
from splatpack.quant.svq import SvqCode


def synthetic_scene(n: int, seed: int = 0) -> CompactScene:
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(8, 3))
    plane = rng.integers(0, 8, n)
    p = rng.uniform(-1, 1, size=(n, 3))
    p -= (p * normals[plane]).sum(1, keepdims=True) * normals[plane] / (normals[plane] ** 2).sum(1, keepdims=True)
    p += rng.normal(scale=0.01, size=(n, 3))

    def code(subvectors: int, width: int, entries: int) -> SvqCode:
        books = [rng.normal(size=(entries, width)) for _ in range(subvectors)]
        skew = rng.zipf(1.3, size=(n, subvectors)) % entries  # a few entries used often, as k-means gives
        return SvqCode(books, skew)

    config, weights = AttributeFields().to_arrays()
    return CompactScene(
        positions=p,
        attributes={"log_scales": code(3, 1, 64), "quats": code(2, 2, 512), "features": code(3, 2, 1024)},
        sh_degree=3,
        fields=weights,
        field_config=config,
    )


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: page cache, allocators, imports
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gaussians", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    scene = synthetic_scene(args.gaussians)
    exe = str(Path(sys.executable).with_name("splatpack"))
    with tempfile.TemporaryDirectory() as folder:
        path, out = Path(folder) / "scene.spk", Path(folder) / "scene.ply"
        spk.write_compact(scene, path)
        facts = spk.describe(path) | {"bytes": path.stat().st_size}
        compact = spk.read_compact(path)
        steps = {
            "read_compact (decode sections)": lambda: spk.read_compact(path),
            "to_splats (bake the MLP fields)": compact.to_splats,
            "spk.read (both)": lambda: spk.read(path),
            "splatpack decompress scene.spk scene.ply (whole process)": lambda: subprocess.run(
                [exe, "decompress", str(path), str(out)], check=True, capture_output=True
            ),
        }
        rows = [{"step": step, "seconds": median_seconds(fn, args.repeats)} for step, fn in steps.items()]
    print(f"{args.gaussians} Gaussians, {facts['bytes'] / args.gaussians:.2f} B/G; sections {facts['sections']}")
    print_table(rows, [Column("step", "step"), Column("median s", "seconds", ".2f")])
    write_results("spk", {"gaussians": args.gaussians, "repeats": args.repeats, "file": facts, "rows": rows})


if __name__ == "__main__":
    main()
