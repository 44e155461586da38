"""Our SOG writer vs splat-transform's on the same scene: file size, per-texture bytes, time, and per-attribute
error of each decode against the original.

    .venv/bin/python bench/sog_size.py [--input SCENE] [--n N] [--sort plas morton] [--sh-degree D]

Default input: ../shared/data/splats/biker.compressed.ply (a real capture). Both writers sort Gaussians, so
decodes are matched to the original by nearest centre before errors are taken. Writes bench/results/sog_size.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from scipy.spatial import cKDTree

from splatpack.io import ply, read, sog
from splatpack.scene import Splats

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / ".cache" / "node" / "node_modules" / ".bin" / "splat-transform"


def errors(src: Splats, decoded: Splats) -> dict[str, float]:
    _, idx = cKDTree(decoded.means.numpy()).query(src.means.numpy())
    d = decoded[torch.from_numpy(idx)]
    out = {
        "means_mean_abs": float((d.means - src.means).abs().mean()),
        "quat_mean_angle_deg": float(
            torch.rad2deg(2 * torch.acos((d.unit_quats * src.unit_quats).sum(1).abs().clamp(max=1))).mean()
        ),
        "log_scales_mean_abs": float((d.log_scales - src.log_scales).abs().mean()),
        "log_scales_rmse": float((d.log_scales - src.log_scales).pow(2).mean().sqrt()),
        "opacity_mean_abs": float((d.opacities - src.opacities).abs().mean()),
        "sh0_mean_abs": float((d.sh0 - src.sh0).abs().mean()),
        "sh0_rmse": float((d.sh0 - src.sh0).pow(2).mean().sqrt()),
    }
    if src.shN.shape[1]:
        out["shN_mean_abs"] = float((d.shN - src.shN).abs().mean())
    return out


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
                    "errors": errors(src, sog.read(path)),
                }
            )
    base = results[0]["bytes"]
    print(f"scene: {args.input} ({len(src)} Gaussians, SH degree {src.sh_degree})")
    print(f"{'writer':<26}{'bytes':>10}{'vs peer':>9}{'s':>8}  " + "  ".join(results[0]["textures"]))
    for r in results:
        print(
            f"{r['writer']:<26}{r['bytes']:>10}{r['bytes'] / base:>9.3f}{r['seconds']:>8.1f}  "
            + "  ".join(str(v) for v in r["textures"].values())
        )
    print()
    keys = list(results[0]["errors"])
    print(f"{'writer':<26}" + "".join(f"{k:>22}" for k in keys))
    for r in results:
        print(f"{r['writer']:<26}" + "".join(f"{r['errors'][k]:>22.3e}" for k in keys))
    out = ROOT / "bench" / "results" / "sog_size.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "input": args.input,
                "n": len(src),
                "sh_degree": src.sh_degree,
                "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
