"""Our SOG writer vs splat-transform's on the same scene: file size, per-texture bytes, time, and per-attribute
error of each decode against the original.

    .venv/bin/python bench/sog_size.py [--input SCENE] [--n N] [--sort plas morton] [--sh-degree D]

Default input: ../shared/data/splats/biker.compressed.ply (a real capture). Both writers sort Gaussians, so
decodes are matched to the original by nearest centre before errors are taken. Writes bench/results/sog_size.json.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from _report import ROOT, Column, print_table, write_results

from splatpack.evaluation import attribute_errors
from splatpack.io import ply, read, sog
from splatpack.scene import Splats

PEER = ROOT / ".cache" / "node" / "node_modules" / ".bin" / "splat-transform"
# The error figures shown (``splatpack.evaluation.attribute_errors`` keys; the JSON keeps them all).
SHOWN_ERRORS = (
    "means_mean", "quat_deg_mean", "log_scales_mean", "log_scales_rmse", "opacity_mean", "sh0_mean", "sh0_rmse",
    "shN_mean",
)  # fmt: skip


def synthetic_sh(s: Splats, degree: int) -> Splats:
    """Give an SH0 capture smooth view-dependent bands (a function of position) so shN paths are measured."""
    if degree == 0:
        return s
    k = {1: 3, 2: 8, 3: 15}[degree]
    g = torch.Generator().manual_seed(0)
    m = s.means
    bands = torch.stack([torch.sin(m[:, 0] * (j + 1) + m[:, 1] * j - m[:, 2]) for j in range(k)], 1)
    s.shN = 0.1 * bands[:, :, None] * torch.tensor([1.0, 0.8, 0.6]) + 0.02 * torch.randn(len(s), k, 3, generator=g)
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", default=str(ROOT.parent / "shared" / "data" / "splats" / "biker.compressed.ply"))
    ap.add_argument("--n", type=int, default=0, help="use only the first N Gaussians (0: all)")
    ap.add_argument("--sort", nargs="+", default=["plas", "morton"])
    ap.add_argument("--sh-degree", type=int, default=0, help="add synthetic SH bands up to this degree")
    args = ap.parse_args()

    src = read(args.input)
    if args.n:
        src = src[: args.n]
    src = synthetic_sh(src, args.sh_degree)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ply.write(src, tmp / "in.ply")
        t = time.perf_counter()
        subprocess.run(
            [str(PEER), "-w", "-g", "cpu", str(tmp / "in.ply"), str(tmp / "theirs.sog")],
            check=True,
            capture_output=True,
        )
        rows.append(("splat-transform 3.7.0", tmp / "theirs.sog", time.perf_counter() - t))
        for method in args.sort:
            t = time.perf_counter()
            sog.write(src, tmp / f"ours-{method}.sog", sort=method)
            rows.append((f"splatpack sort={method}", tmp / f"ours-{method}.sog", time.perf_counter() - t))
        results = []
        for name, path, seconds in rows:
            info = sog.describe(path)
            results.append(
                {
                    "writer": name,
                    "bytes": path.stat().st_size,
                    "seconds": round(seconds, 2),
                    "textures": {k: v["bytes"] for k, v in info["textures"].items()},
                    "errors": attribute_errors(src, sog.read(path)),
                }
            )
    base = results[0]["bytes"]
    textures = list(results[0]["textures"])
    print_table(
        results,
        [
            Column("writer", "writer"),
            Column("bytes", "bytes", "d"),
            Column("vs peer", lambda r: r["bytes"] / base, ".3f"),
            Column("s", "seconds", ".1f"),
            *(Column(t, lambda r, t=t: r["textures"].get(t), "d") for t in textures),
        ],
        title=f"scene: {args.input} ({len(src)} Gaussians, SH degree {src.sh_degree})",
    )
    print()
    shown = [k for k in SHOWN_ERRORS if k in results[0]["errors"]]
    print_table(
        results, [Column("writer", "writer")] + [Column(k, lambda r, k=k: r["errors"][k], ".3e") for k in shown]
    )
    write_results("sog_size", {"input": args.input, "n": len(src), "sh_degree": src.sh_degree, "results": results})


if __name__ == "__main__":
    main()
