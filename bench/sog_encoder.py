"""SOG encoder time and memory on a generated scene: the SH palette k-means alone and a whole
``splatpack compress scene.ply out.sog``, each in its own process under GNU time (peak RSS), plus the time of
every encoder stage.

    .venv/bin/python bench/sog_encoder.py [--n 500000] [--sh-degree 2] [--repeats 1] [--ordered]
                                          [--sort morton|plas|none] [--skip palette,compress,stages]
                                          [--out bench/results/sog_encoder.json]

The scene is bench/sort.py's structured scene (Gaussians on four spheres and a ground plane, colour and size
smooth over them) in random input order, with bench/sog_size.py's synthetic SH bands (smooth in position plus
noise); ``--ordered`` writes it in Morton order instead (an already spatially ordered input). Needs GNU time
(``apt-get install time``). Prints a table and writes bench/results/sog_encoder.json.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
PYTHON = sys.executable
GNU_TIME = "/usr/bin/time"


def make_scene(n: int, sh_degree: int, ordered: bool, path: Path) -> None:
    from sog_size import synthetic_sh
    from sort import structured_scene

    from splatpack.io import ply
    from splatpack.sort import morton_order

    s = synthetic_sh(structured_scene(n, seed=0), sh_degree)
    if ordered:
        s = s[morton_order(s.means)]
    ply.write(s, path)


def _vm(field: str) -> int:
    """This process's VmRSS / VmHWM in bytes."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) * 1024


def palette_child(scene: Path) -> None:
    """Run the encoder's SH palette k-means alone on the scene; print one JSON line."""
    import numpy as np

    from splatpack.io import ply, sog
    from splatpack.quant.kmeans import kmeans_palette
    from splatpack.scene import SH_REST_COUNT

    s = ply.read(scene)
    n, k = len(s), SH_REST_COUNT[s.sh_degree]
    rest = s.shN[:, :k].permute(0, 2, 1).reshape(n, 3 * k).numpy().astype(np.float32)
    del s
    palette, iterations = sog.palette_size(n), sog.PRESETS["balanced"][1]
    rss_before = _vm("VmRSS")
    start = time.perf_counter()
    centroids, labels = kmeans_palette(rest, palette, iterations, 0)
    seconds = time.perf_counter() - start
    rmse = float(np.sqrt(((centroids[labels] - rest) ** 2).mean()))
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rss_before_bytes": rss_before,
                "hwm_bytes": _vm("VmHWM"),
                "palette": len(centroids),
                "sh_rmse": rmse,
            }
        )
    )


def stages_child(scene: Path, out: Path, sort: str) -> None:
    """Write the scene as SOG in-process with the encoder's stages wrapped in timers; print one JSON line."""
    from splatpack.io import ply, sog
    from splatpack.quant import kmeans

    times: dict[str, float] = {}

    def timed(name, fn):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[name] = times.get(name, 0.0) + time.perf_counter() - start

        return run

    start = time.perf_counter()
    s = ply.read(scene)
    times["read"] = time.perf_counter() - start
    # The encoder's own names for its order and codebooks; the palette k-means it imports at call time.
    sog.texel_order = timed("sort", sog.texel_order)
    sog.kmeans_1d = timed("codebooks", sog.kmeans_1d)
    kmeans.kmeans_palette = timed("palette", kmeans.kmeans_palette)
    sog._webp = timed("webp (summed over threads)", sog._webp)
    start = time.perf_counter()
    sog.write(s, out, sort=sort)
    times["write total"] = time.perf_counter() - start
    print(json.dumps(times))


def gnu_time(cmd: list[str]) -> tuple[str, float, int]:
    """(stdout, wall s, peak RSS bytes) of ``cmd`` run under GNU time -v."""
    proc = subprocess.run([GNU_TIME, "-v", *cmd], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{cmd} failed:\n{proc.stderr[-3000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) * 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    return proc.stdout, seconds, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500_000)
    ap.add_argument("--sh-degree", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--ordered", action="store_true", help="write the scene in Morton order")
    ap.add_argument("--sort", default="morton", help="grid order for compress and the stages run")
    ap.add_argument("--skip", default="", help="comma-separated: palette, compress, stages")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sog_encoder.json"))
    ap.add_argument("--child", choices=["palette", "stages"], help=argparse.SUPPRESS)
    ap.add_argument("--scene", help=argparse.SUPPRESS)
    ap.add_argument("--sog", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "palette":
        return palette_child(Path(args.scene))
    if args.child == "stages":
        return stages_child(Path(args.scene), Path(args.sog), args.sort)
    skip = set(filter(None, args.skip.split(",")))

    result: dict = {
        "n": args.n,
        "sh_degree": args.sh_degree,
        "ordered": args.ordered,
        "sort": args.sort,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scene, out = Path(tmp) / "scene.ply", Path(tmp) / "out.sog"
        make_scene(args.n, args.sh_degree, args.ordered, scene)
        result["scene_bytes"] = scene.stat().st_size
        me = [PYTHON, __file__, "--scene", str(scene)]
        if "palette" not in skip:
            runs = []
            for _ in range(args.repeats):
                stdout, wall, peak = gnu_time([*me, "--child", "palette"])
                runs.append({**json.loads(stdout.strip().splitlines()[-1]), "wall_seconds": wall, "peak_bytes": peak})
            result["palette"] = runs
            path.write_text(json.dumps(result, indent=2))  # after every step: a cut-short run keeps what it measured
            rows += [("palette k-means", r["seconds"], r["peak_bytes"], f"RMSE {r['sh_rmse']:.5f}") for r in runs]
        if "compress" not in skip:
            runs = []
            for _ in range(args.repeats):
                stdout, wall, peak = gnu_time(
                    [str(ROOT / ".venv" / "bin" / "splatpack"), "compress", str(scene), str(out), "--sort", args.sort]
                )
                runs.append({"wall_seconds": wall, "peak_bytes": peak, "bytes": out.stat().st_size, "summary": stdout})
            result["compress"] = runs
            path.write_text(json.dumps(result, indent=2))
            rows += [("splatpack compress", r["wall_seconds"], r["peak_bytes"], f"{r['bytes']:,} B") for r in runs]
        if "stages" not in skip:
            stdout, _, _ = gnu_time([*me, "--child", "stages", "--sog", str(out), "--sort", args.sort])
            result["stages"] = json.loads(stdout.strip().splitlines()[-1])

    print(
        f"scene: structured, {args.n:,} Gaussians, SH {args.sh_degree}, {'Morton' if args.ordered else 'random'} order"
    )
    print(f"{'step':<22}{'s':>9}{'peak MB':>10}  note")
    for name, seconds, peak, note in rows:
        print(f"{name:<22}{seconds:>9.1f}{peak / 1e6:>10.0f}  {note}")
    for name in ("palette", "compress"):
        if name in result and len(result[name]) > 1:
            key = "seconds" if name == "palette" else "wall_seconds"
            print(f"median {name}: {statistics.median(r[key] for r in result[name]):.1f} s")
    for stage, seconds in result.get("stages", {}).items():
        print(f"  stage {stage:<30}{seconds:>8.1f} s")
    path.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
