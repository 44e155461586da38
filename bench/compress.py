"""Size, fidelity and speed of every output format, splatpack vs PlayCanvas splat-transform, in one run.

For each input scene (written as a standard 3DGS PLY first) this encodes:

- ours: SPZ v4, SOG (presets small / balanced / high, sort from ``--sort``), .splat and .spk, each by running the
  ``splatpack compress`` CLI as a subprocess (so both sides pay their interpreter / node start-up); .spk once
  per ``--spk-presets`` preset, distilled (``--spk-steps`` steps, ``--spk-views`` virtual views at
  ``--spk-size`` px: the scene's own renders are the targets), plus ``spk raw`` (``--steps 0``: every
  Gaussian, attributes quantized directly);
- peer: ``splat-transform`` 3.7.0 to .spz and to .sog (``-g cpu``: SOG's k-means on the CPU, no GPU here).

Every output is decoded with OUR readers (they match the peer's decoders, see tests/) and compared to the
original: per-attribute errors after matching Gaussians by nearest centre (SOG and .splat reorder them), and
PSNR / SSIM of renders of the decoded scene against renders of the original from ``--views`` cameras on a
sphere around the robust centre (2nd-98th percentile box), looking inward, 60 degree FOV, OpenCV axes.
.splat keeps SH degree 0 only, so its render loss includes the dropped view-dependent colour.

Inputs (``--inputs``, comma-separated):
  small   Splats.random(50_000, 3, seed=0): quick, exercises the SH path of SOG;
  biker   ../shared/data/splats/biker.compressed.ply decoded with our reader (skipped if the data is absent);
  1m      Splats.random(1_000_000, 3, seed=0): slow (rendered at min(--size, 128) px);
  a path  any splat file we read (e.g. a plugin-trained scene's exported scene.ply).

    .venv/bin/python bench/compress.py [--inputs small,biker] [--views 16] [--size 256] [--sort plas]

Prints one table per input and writes all rows plus metadata to ``--out`` (bench/results/compress.json), and
a rate-distortion plot per input (bytes against render PSNR, every writer) beside it as
``<out stem>-<input>.png``.

The render cameras here are not the ones a distillation fits (16 views on a sphere 10 % farther out than its
64-view rig), so the .spk PSNR is on unseen views.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _report import ROOT, Column, print_table, write_results

from splatpack.evaluation import Views, attribute_errors, render_views, score
from splatpack.io import ply, read
from splatpack.render.cameras import pinhole, sphere_cameras
from splatpack.scene import Splats

PEER = ROOT / ".cache" / "node" / "node_modules" / ".bin" / "splat-transform"
OURS = ROOT / ".venv" / "bin" / "splatpack"
BIKER = ROOT.parent / "shared" / "data" / "splats" / "biker.compressed.ply"
PRESETS = ("small", "balanced", "high")
BIG_SIZE = 128  # render size cap for the 1M case, to bound time and memory on a 2-core machine


# ---------------------------------------------------------------------------------------------- inputs


def load_input(name: str, small_n: int) -> tuple[Splats, str] | None:
    """The scene for ``name`` and a description, or None (with a message) when its data is missing."""
    if name == "small":
        return Splats.random(small_n, 3, seed=0), f"Splats.random({small_n:_}, 3, seed=0)"
    if name == "1m":
        return Splats.random(1_000_000, 3, seed=0), "Splats.random(1_000_000, 3, seed=0)"
    if name == "biker":
        if not BIKER.exists():
            print(f"skipping biker: {BIKER} is absent")
            return None
        return read(BIKER), f"{BIKER.name} decoded by splatpack"
    if Path(name).is_file():
        return read(name), f"{Path(name).name} decoded by splatpack"
    raise SystemExit(f"unknown input {name!r}; choose from small, biker, 1m or give a splat file")


# ---------------------------------------------------------------------------------------------- encoding


def _peak_rss_mb(pid: int) -> float | None:
    """VmHWM of a running process: its peak resident memory since its exec (ru_maxrss would include the
    forking benchmark's own memory, which a child inherits across exec)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def timed(cmd: list[str], timeout: float) -> tuple[float, float] | None:
    """(wall seconds, peak resident MB) of ``cmd``, or None if it ran past ``timeout`` (it is killed)."""
    start = time.perf_counter()
    peak = 0.0
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        while proc.poll() is None:
            peak = max(peak, _peak_rss_mb(proc.pid) or 0.0)
            if time.perf_counter() - start > timeout:
                proc.kill()
                proc.wait()
                return None
            time.sleep(0.02)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.read().decode()[-2000:]}")
    return wall, peak


def encodings(src: Path, d: Path, args) -> list[tuple[str, str, Path, list[str]]]:
    """(format, writer, output path, command) for every output of one input PLY."""
    sort = args.sort
    jobs = [
        ("spz", "splatpack", d / "ours.spz", [str(OURS), "compress", str(src), str(d / "ours.spz")]),
        ("spz", "splat-transform", d / "peer.spz", [str(PEER), "-q", "-w", str(src), str(d / "peer.spz")]),
    ]
    for preset in PRESETS:
        out = d / f"ours-{preset}.sog"
        jobs.append(
            (
                f"sog {preset}",
                f"splatpack {sort}",
                out,
                [str(OURS), "compress", str(src), str(out), "--sort", sort, "--preset", preset],
            )
        )
    jobs.append(
        ("sog", "splat-transform", d / "peer.sog", [str(PEER), "-q", "-w", "-g", "cpu", str(src), str(d / "peer.sog")])
    )
    jobs.append(("splat", "splatpack", d / "ours.splat", [str(OURS), "compress", str(src), str(d / "ours.splat")]))
    jobs.append(
        (
            "spk raw",
            "splatpack",
            d / "ours-raw.spk",
            [str(OURS), "compress", str(src), str(d / "ours-raw.spk"), "--steps", "0"],
        )
    )
    distill = ["--steps", str(args.spk_steps), "--views", str(args.spk_views), "--size", str(args.spk_size), "--quiet"]
    for preset in args.spk_presets.split(","):
        out = d / f"ours-{preset}.spk"
        jobs.append(
            (
                f"spk {preset}",
                "splatpack",
                out,
                [str(OURS), "compress", str(src), str(out), "--preset", preset, *distill],
            )
        )
    return jobs


def plot(name: str, rows: list[dict], path: Path) -> None:
    """Bytes (log) against render PSNR for every encoding of one input, one marker per writer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for writer, marker in (("splatpack", "o"), ("splat-transform", "s")):
        mine = [r for r in rows if r["writer"].startswith(writer) and "psnr" in r]
        ax.scatter([r["bytes"] for r in mine], [r["psnr"] for r in mine], marker=marker, label=writer)
        for r in mine:
            ax.annotate(r["format"], (r["bytes"], r["psnr"]), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("file size (bytes)")
    ax.set_ylabel("render PSNR against the original (dB)")
    ax.set_title(f"{name}: size against fidelity")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- fidelity


def cameras(scene: Splats, views: int, size: int) -> Views:
    """``views`` cameras on a Fibonacci sphere around the robust centre, looking at it, 60 degree field of view."""
    lo, hi = np.percentile(scene.means.numpy(), [2, 98], axis=0)
    radius = float(np.linalg.norm(hi - lo) / 2)
    distance = 1.1 * radius / math.sin(math.radians(30))  # the percentile box's sphere fits the 60 degree view
    return Views(sphere_cameras((lo + hi) / 2, distance, views), pinhole(size, size, 60, views), [(size, size)] * views)


# ---------------------------------------------------------------------------------------------- report


COLUMNS = [
    Column("format", "format"),
    Column("writer", "writer"),
    Column("bytes", "bytes", ","),
    Column("B/G", "bytes_per_gaussian", ".2f"),
    Column("ratio", "ratio_vs_ply", ".2f"),
    Column("enc s", "encode_s", ".2f"),
    Column("enc MB", "encode_peak_mb", ".0f"),
    Column("dec s", "decompress_s", ".2f"),
    Column("dec MB", "decompress_peak_mb", ".0f"),
    Column("PSNR", "psnr", ".2f"),
    Column("SSIM", "ssim", ".4f"),
    *(
        Column(header, lambda r, k=key: r["errors"].get(k, 0), fmt)
        for header, key, fmt in (
            ("pos max", "means_max", ".2e"),
            ("pos mean", "means_mean", ".2e"),
            ("sh0 mean", "sh0_mean", ".2e"),
            ("shN mean", "shN_mean", ".2e"),
            ("opa mean", "opacity_mean", ".2e"),
            ("rot° mean", "quat_deg_mean", ".3f"),
        )
    ),
]


def print_input_table(name: str, info: dict, rows: list[dict]) -> None:
    print(
        f"\n== {name}: {info['description']} — {info['gaussians']:,} Gaussians, SH {info['sh_degree']}, "
        f"PLY {info['ply_bytes']:,} B; renders {info['views']} views at {info['size']} px (PSNR/SSIM vs original)"
    )
    print("   encode s = wall time of the CLI subprocess (splatpack compress / splat-transform), start-up included")
    print(
        "   enc/dec MB = peak resident memory of that subprocess; dec s = `decompress` to PLY by the writer's own tool"
    )
    for r in rows:
        if "timed_out_s" in r:
            print(f"   {r['format']} / {r['writer']}: encode gave up after {r['timed_out_s']:.0f} s")
    print_table([r for r in rows if "timed_out_s" not in r], COLUMNS)


def run_input(name: str, args, tmp: Path) -> dict | None:
    loaded = load_input(name, args.small_n)
    if loaded is None:
        return None
    scene, description = loaded
    d = tmp / Path(name).name
    d.mkdir()
    src = d / "in.ply"
    ply.write(scene, src)
    size = min(args.size, BIG_SIZE) if len(scene) > 500_000 else args.size
    batch = 2 if len(scene) > 500_000 else 4
    views = cameras(scene, args.views, size)
    t = time.perf_counter()
    reference = render_views(scene, views, batch=batch, backend="torch")
    render_s = time.perf_counter() - t
    info = {
        "description": description, "gaussians": len(scene), "sh_degree": scene.sh_degree,
        "ply_bytes": src.stat().st_size, "views": args.views, "size": size, "sort": args.sort,
        "reference_render_s": round(render_s, 2),
        "reference_mean_alpha_coverage": float((torch.stack(reference).sum(-1) > 0).float().mean()),
    }  # fmt: skip
    print(
        f"[{name}] reference renders: {render_s:.1f} s, {info['reference_mean_alpha_coverage']:.0%} of pixels covered",
        flush=True,
    )
    rows = []
    for fmt, writer, out, cmd in encodings(src, d, args):
        if fmt.split()[0] not in args.formats.split(","):
            continue
        encoded = timed(cmd, args.timeout)
        if encoded is None:
            print(f"[{name}] {fmt} / {writer}: gave up after {args.timeout:.0f} s", flush=True)
            rows.append({"format": fmt, "writer": writer, "command": " ".join(cmd), "timed_out_s": args.timeout})
            continue
        encode_s, encode_mb = encoded
        # Each writer's own tool turns its file back into a standard PLY (what `decompress` costs a user).
        back = out.with_suffix(".decoded.ply")
        tool = [str(OURS), "decompress"] if writer.startswith("splatpack") else [str(PEER), "-q", "-w"]
        decompress_s, decompress_mb = timed(tool + [str(out), str(back)], args.timeout) or (math.nan, math.nan)
        t = time.perf_counter()
        decoded = read(out)
        decode_s = time.perf_counter() - t
        quality = score(render_views(decoded, views, batch=batch, backend="torch"), reference)
        nbytes = out.stat().st_size
        rows.append({
            "format": fmt, "writer": writer,
            "command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
            "bytes": nbytes, "bytes_per_gaussian": nbytes / len(scene), "ratio_vs_ply": info["ply_bytes"] / nbytes,
            "encode_s": round(encode_s, 2), "encode_peak_mb": round(encode_mb, 1),
            "decompress_s": round(decompress_s, 2), "decompress_peak_mb": round(decompress_mb, 1),
            "decode_s": round(decode_s, 2), "decoded_gaussians": len(decoded),
            **quality,
            "errors": attribute_errors(scene, decoded),
        })  # fmt: skip
        print(
            f"[{name}] {fmt} / {writer}: {nbytes:,} B, encode {encode_s:.1f} s, PSNR {rows[-1]['psnr']:.2f}", flush=True
        )
    print_input_table(name, info, rows)
    picture = Path(args.out).with_name(f"{Path(args.out).stem}-{Path(name).stem}.png")
    plot(name, [r for r in rows if "timed_out_s" not in r], picture)
    print(f"[{name}] rate-distortion plot: {picture}")
    return {"input": info, "rows": rows, "plot": str(picture)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--inputs",
        default="small,biker",
        help="comma-separated cases: small, biker, 1m or splat file paths (default: small,biker)",
    )
    parser.add_argument(
        "--formats", default="spz,sog,splat,spk", help="comma-separated subset of spz, sog, splat, spk (default: all)"
    )
    parser.add_argument("--views", type=int, default=16, help="render viewpoints per scene (default 16)")
    parser.add_argument("--size", type=int, default=256, help="square render size in px (1M case: at most 128)")
    parser.add_argument("--sort", choices=("plas", "morton"), default="plas", help="Gaussian order for our SOG writer")
    parser.add_argument(
        "--small-n", type=int, default=50_000, help="Gaussians in the 'small' SH3 scene (default 50000)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="give up on one encode after this many seconds "
        "(splat-transform's CPU SOG k-means on SH3 scenes is slow; default 1800)",
    )
    parser.add_argument("--spk-presets", default="XS,S,M,L,XL", help=".spk presets to distil (default XS,S,M,L,XL)")
    parser.add_argument("--spk-steps", type=int, default=1000, help="distillation steps per .spk (default 1000)")
    parser.add_argument("--spk-views", type=int, default=64, help="virtual views a distillation fits (default 64)")
    parser.add_argument("--spk-size", type=int, default=256, help="width of those views in px (default 256)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "compress.json"), help="JSON results path")
    args = parser.parse_args()
    for tool in (PEER, OURS):
        if not tool.exists():
            raise SystemExit(f"{tool} is missing (npm peers: run the SPZ/SOG tests once; ours: pip install -e .)")

    results = []
    with tempfile.TemporaryDirectory(dir=ROOT / ".cache") as tmp:
        for name in args.inputs.split(","):
            r = run_input(name.strip(), args, Path(tmp))
            if r is not None:
                results.append(r)
    write_results(args.out, {"peer": "splat-transform 3.7.0", "results": results})


if __name__ == "__main__":
    main()
