"""PLY <-> SPZ v4: splatpack vs PlayCanvas splat-transform on a generated scene (default 1M Gaussians, SH 3).

Every step runs as a subprocess (so both sides pay their interpreter start-up), timed by wall clock, with the
child's peak RSS from ``/usr/bin/time`` (``os.wait4`` would report this process's RSS: Linux keeps the
high-water mark across fork + exec). Our children also report the time spent in the SPZ codec alone.
Prints a table and writes ``bench/results/spz.json``.

    .venv/bin/python bench/spz.py [--n 1000000] [--sh-degree 3]

Needs the npm peers in ``.cache/node`` (installed by the test suite's ``node_peers`` fixture).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import ROOT, Column, print_table, write_results

from splatpack.io import ply
from splatpack.scene import Splats

SPLAT_TRANSFORM = ROOT / ".cache" / "node" / "node_modules" / ".bin" / "splat-transform"
TIME = Path("/usr/bin/time")
# Each prints the seconds spent in the SPZ codec itself (PLY parsing / writing excluded).
OURS_COMPRESS = """import sys, time
from splatpack.io import ply, spz
s = ply.read(sys.argv[1]); t = time.perf_counter(); spz.write(s, sys.argv[2]); print(time.perf_counter() - t)"""
OURS_DECOMPRESS = """import sys, time
from splatpack.io import ply, spz
t = time.perf_counter(); s = spz.read(sys.argv[1]); print(time.perf_counter() - t); ply.write(s, sys.argv[2])"""
IMPORT_ONLY = "import splatpack.io.ply, splatpack.io.spz"


def run(cmd: list[str]) -> dict:
    """Wall time and peak RSS of one child process (and the codec seconds it prints, if any)."""
    with tempfile.NamedTemporaryFile(mode="r") as rss:
        wrapped = [str(TIME), "-f", "%M", "-o", rss.name, *cmd] if TIME.exists() else cmd
        start = time.perf_counter()
        proc = subprocess.run(wrapped, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        peak = round(int(rss.read().split()[-1]) / 1024, 1) if TIME.exists() else None
    out = proc.stdout.split()
    codec = round(float(out[0]), 3) if out and cmd[0] == sys.executable else None
    return {"wall_s": round(wall, 3), "peak_rss_mib": peak, "codec_s": codec}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--sh-degree", type=int, default=3)
    args = parser.parse_args()
    if not SPLAT_TRANSFORM.exists():
        raise SystemExit(f"{SPLAT_TRANSFORM} is missing: run the SPZ tests once (they npm-install the peers)")

    py = sys.executable
    with tempfile.TemporaryDirectory(dir=ROOT / ".cache") as tmp:
        d = Path(tmp)
        ply.write(Splats.random(args.n, args.sh_degree), d / "in.ply")
        steps = {
            "python start + imports": run([py, "-c", IMPORT_ONLY]),
            "ours PLY->SPZ": run([py, "-c", OURS_COMPRESS, str(d / "in.ply"), str(d / "ours.spz")]),
            "splat-transform PLY->SPZ": run([str(SPLAT_TRANSFORM), "-q", "-w", str(d / "in.ply"), str(d / "peer.spz")]),
            "ours SPZ->PLY": run([py, "-c", OURS_DECOMPRESS, str(d / "ours.spz"), str(d / "ours.ply")]),
            "splat-transform SPZ->PLY": run(
                [str(SPLAT_TRANSFORM), "-q", "-w", str(d / "peer.spz"), str(d / "peer.ply")]
            ),
        }
        sizes = {name: (d / name).stat().st_size for name in ("in.ply", "ours.spz", "peer.spz")}
        identical = (d / "ours.spz").read_bytes() == (d / "peer.spz").read_bytes()

    result = {
        "scene": {"gaussians": args.n, "sh_degree": args.sh_degree, "generator": "Splats.random(n, degree, seed=0)"},
        "steps": steps,
        "bytes": {"ply": sizes["in.ply"], "ours_spz": sizes["ours.spz"], "splat_transform_spz": sizes["peer.spz"]},
        "spz_files_identical": identical,
    }
    print_table(
        [{"step": name, **m} for name, m in steps.items()],
        [
            Column("step", "step"),
            Column("wall s", "wall_s", ".2f"),
            Column("codec s", "codec_s", ".2f"),
            Column("peak MiB", "peak_rss_mib", ".0f"),
        ],
        title=f"SPZ v4, {args.n:,} Gaussians, SH degree {args.sh_degree} (PLY {sizes['in.ply'] / 2**20:.1f} MiB)",
    )
    print(
        f"SPZ size: ours {sizes['ours.spz']:,} B, splat-transform {sizes['peer.spz']:,} B, identical bytes: {identical}"
    )
    write_results("spz", result)


if __name__ == "__main__":
    main()
