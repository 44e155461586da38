"""Renderer speed and memory: forward + backward of the torch backend on random scenes.

Each case runs in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own. Prints a table and writes
bench/results/render.json.

    .venv/bin/python bench/render.py [--repeats 3] [--cases 5000x128,50000x256]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from _report import Column, print_table, write_results

DEFAULT_CASES = "5000x128,5000x256,50000x128,50000x256"


def run_case(n: int, size: int, repeats: int, sh_degree: int, tile_size: int, threads: int) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    from splatpack.render import render_splats
    from splatpack.render.cameras import look_at, pinhole
    from splatpack.scene import Splats

    splats = Splats.random(n, sh_degree, seed=0).map(lambda t: t.requires_grad_())
    # One camera 3 units in front of the scene's unit cube, 60 degree field of view.
    viewmats, Ks = look_at([(0.0, 0.0, -3.0)], up=(0.0, -1.0, 0.0)), pinhole(size, size, 60)
    weights = torch.rand(1, size, size, 3, generator=torch.Generator().manual_seed(0))
    times = []
    for _ in range(repeats + 1):  # the first run warms up allocators and caches
        start, cpu_start = time.perf_counter(), time.process_time()
        out = render_splats(splats, viewmats, Ks, size, size, backend="torch", tile_size=tile_size or None)
        forward = time.perf_counter() - start
        ((out.rgb * weights).sum() + out.depth.mean()).backward()
        times.append((forward, time.perf_counter() - start, time.process_time() - cpu_start))
    # Median by wall time; CPU time (all threads) is the figure that survives a machine shared with others.
    forward, total, cpu = sorted(times[1:], key=lambda t: t[1])[len(times[1:]) // 2]
    return {
        "gaussians": n,
        "size": size,
        "sh_degree": sh_degree,
        "tile_size": out.info["tile_size"],
        "intersections": out.info["n_intersections"],
        "mean_alpha": float(out.alpha.mean()),
        "forward_s": forward,
        "forward_backward_s": total,
        "forward_backward_cpu_s": cpu,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=DEFAULT_CASES, help="comma-separated GAUSSIANSxSIZE list")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sh-degree", type=int, default=3)
    parser.add_argument("--tile-size", type=int, default=0, help="0: the backend's default")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run a single case, print JSON
    args = parser.parse_args()
    if args.one:
        n, size = map(int, args.one.split("x"))
        print(json.dumps(run_case(n, size, args.repeats, args.sh_degree, args.tile_size, args.threads)))
        return

    rows = []
    for case in args.cases.split(","):
        cmd = [sys.executable, __file__, "--one", case, "--repeats", str(args.repeats), "--sh-degree",
               str(args.sh_degree), "--tile-size", str(args.tile_size), "--threads", str(args.threads)]  # fmt: skip
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    print_table(
        rows,
        [
            Column("gaussians", "gaussians", "d"),
            Column("size", lambda r: f"{r['size']}x{r['size']}"),
            Column("isects", "intersections", "d"),
            Column("fwd s", "forward_s", ".3f"),
            Column("fwd+bwd s", "forward_backward_s", ".3f"),
            Column("cpu s", "forward_backward_cpu_s", ".3f"),
            Column("peak RSS GB", "peak_rss_gb", ".2f"),
            Column("load", "load_average_1min", ".1f"),
        ],
        title=f"torch backend, SH degree {args.sh_degree}, tile {rows[0]['tile_size']}, {rows[0]['threads']} threads",
    )
    write_results("render", {"rows": rows})


if __name__ == "__main__":
    main()
