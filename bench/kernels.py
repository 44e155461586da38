"""splatpack's own kernels (cuda/) against their torch references, in the same run: time, CPU time, memory.

Cases: importance accumulation (W, A, M over cameras, ``splatpack.render.importance_kernel``) on a demo-sized
scene (30k Gaussians around the demo's seed points, its 42 training views at 160x120) and on a 1M-Gaussian
scene (a few of the same views), and PLAS of 1M Gaussians (SOG's key of bench/sort.py's structured scene,
``FAST_PLAS``). Each case runs once per path (``SPLATPACK_KERNELS=torch``: the reference; ``native``: the CPU
twin, or the CUDA kernel with ``--device cuda``) in a fresh subprocess, so peak memory is its own; the outputs
are compared (PLAS orders must be identical; importance: how many Gaussians' M differ, which happens only where
two weights tie within float rounding, and the largest relative W difference). CPU time is the fairer figure on
a shared machine. Prints a table and writes bench/results/kernels.json.

    .venv/bin/python bench/kernels.py [--cases importance-demo,importance-1m,plas-1m] [--device cpu|cuda]
        [--plas-side 1000] [--big-views 4] [--out bench/results/kernels.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import ROOT, Column, print_table, write_results

CASES = ("importance-demo", "importance-1m", "plas-1m")
PATHS = ("torch", "native")


def _demo_inputs(n: int, views: int | None, device: str):
    """Gaussians scattered around the demo scene's seed points and its training cameras (all, or ``views``)."""
    import torch

    from splatpack.datasets import generate_demo_scene, load_seed_points, load_transforms

    scene = generate_demo_scene(ROOT / "data" / "demo")
    cams = load_transforms(scene, split="train")
    points = load_seed_points(scene / "sparse_pc.ply")[0].to(torch.float32)
    g = torch.Generator().manual_seed(0)
    means = points[torch.randint(len(points), (n,), generator=g)] + 0.03 * torch.randn(n, 3, generator=g)
    # Smaller Gaussians when there are more of them, so a 1M scene covers the views about as densely.
    log_scale = -3.5 - 0.5 * torch.log10(torch.tensor(n / 3e4)).clamp_min(0)
    scales = torch.exp(torch.randn(n, 3, generator=g) * 0.4 + log_scale)
    opacities = torch.sigmoid(torch.randn(n, generator=g) * 2)
    pick = (
        torch.arange(len(cams.viewmats)) if views is None else torch.linspace(0, len(cams.viewmats) - 1, views).long()
    )
    tensors = [means, torch.randn(n, 4, generator=g), scales, opacities, cams.viewmats[pick], cams.Ks[pick]]
    return [t.to(device) for t in tensors], cams.width, cams.height


def run_case(case: str, device: str, plas_side: int, big_views: int, out: Path) -> dict:
    import psutil
    import torch

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    if case.startswith("importance"):
        from splatpack.render import importance, importance_kernel

        n, views = (30_000, None) if case == "importance-demo" else (1_000_000, big_views)
        args, width, height = _demo_inputs(n, views, device)

        def work():
            return importance.accumulate_importance(
                *args, width, height, contributions=importance_kernel.view_contributions
            )

        size = {"gaussians": n, "views": args[4].shape[0], "image": f"{width}x{height}"}
    else:
        from sort import structured_scene

        from splatpack.sort import FAST_PLAS, self_organizing_key
        from splatpack.sort.plas import plas_sort

        key = self_organizing_key(structured_scene(plas_side * plas_side, 0)).reshape(plas_side, plas_side, -1)
        key = key.to(device)

        def work():
            return plas_sort(key, seed=0, **FAST_PLAS)

        size = {"gaussians": plas_side * plas_side, "views": None, "image": f"grid {plas_side}x{plas_side}"}
    from splatpack import kernels

    kernels.ops(device)  # load the extension (or fall back) before the clock starts
    if device == "cuda":
        torch.zeros(1, device=device)  # CUDA context
        torch.cuda.reset_peak_memory_stats()
    rss_before = psutil.Process().memory_info().rss
    sync()
    start, cpu_start = time.perf_counter(), time.process_time()
    result = work()
    sync()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if case.startswith("importance"):
        torch.save({k: getattr(result, k).cpu() for k in ("weight", "dominant", "dominant_max")}, out)
    else:
        torch.save({"order": result.cpu()}, out)
    extra = {}
    if device == "cuda" and case.startswith("importance"):
        # The GPU goal compares importance with one gsplat forward rasterization of the same views.
        from splatpack.render import rasterize

        means, quats, scales, opacities, viewmats, Ks = args
        colors = torch.full_like(means, 0.5)
        for _ in range(2):  # the first call loads gsplat's CUDA ops
            sync()
            t = time.perf_counter()
            rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width, height, backend="gsplat")
            sync()
        extra["gsplat_forward_s"] = time.perf_counter() - t
    return {
        **size,
        **extra,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_gb": peak / 2**30,
        "peak_above_setup_gb": max(peak - rss_before, 0) / 2**30,
        "cuda_peak_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
        "threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],
    }


def _agreement(case: str, ref_file: Path, ours_file: Path) -> dict:
    import torch

    ref, ours = torch.load(ref_file), torch.load(ours_file)
    if case.startswith("plas"):
        return {"identical": bool(torch.equal(ref["order"], ours["order"]))}
    # Counts can differ where two weights of a pixel tie within float rounding (the reference's exponents come
    # from a BLAS product, the kernel's term by term): report how many Gaussians' sums differ, and by how much.
    scale = float(ref["weight"].abs().max().clamp_min(1e-30))
    differ = ref["dominant"] != ours["dominant"]
    return {
        "dominant_mismatches": int(differ.sum()),
        "dominant_max_mismatches": int((ref["dominant_max"] != ours["dominant_max"]).sum()),
        "dominant_max_abs_diff": int((ref["dominant"] - ours["dominant"]).abs().max()),
        "dominant_total": int(ref["dominant"].sum()),
        "weight_max_rel_diff": float((ref["weight"] - ours["weight"]).abs().max()) / scale,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--plas-side", type=int, default=1000, help="PLAS grid side (1000: 1M Gaussians)")
    parser.add_argument("--big-views", type=int, default=4, help="views of the 1M-Gaussian importance case")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file (default bench/results/kernels.json)")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: CASE OUTPUT_FILE, print JSON
    args = parser.parse_args()
    if args.one:
        result = run_case(args.one[0], args.device, args.plas_side, args.big_views, Path(args.one[1]))
        print(json.dumps(result))
        return

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            if case not in CASES:
                parser.error(f"unknown case {case!r}")
            files = {}
            for path in PATHS:
                files[path] = Path(tmp) / f"{case}-{path}.pt"
                cmd = [sys.executable, __file__, "--one", case, str(files[path]), "--device", args.device,
                       "--plas-side", str(args.plas_side), "--big-views", str(args.big_views)]  # fmt: skip
                env = {**os.environ, "SPLATPACK_KERNELS": path}
                done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
                rows.append({"case": case, "path": path, "device": args.device, **json.loads(done.stdout)})
                print(f"{case} {path}: {rows[-1]['seconds']:.2f} s ({rows[-1]['cpu_seconds']:.2f} s CPU)", flush=True)
            torch_row, native_row = rows[-2], rows[-1]
            native_row.update(_agreement(case, files["torch"], files["native"]))
            native_row["speedup_wall"] = torch_row["seconds"] / native_row["seconds"]
            native_row["speedup_cpu"] = torch_row["cpu_seconds"] / native_row["cpu_seconds"]
    print_table(
        rows,
        [
            Column("case", "case"),
            Column("path", "path"),
            Column("N", "gaussians", ","),
            Column("views", "views"),
            Column("s", "seconds", ".2f"),
            Column("CPU s", "cpu_seconds", ".2f"),
            Column("x wall", "speedup_wall", ".1f"),
            Column("x CPU", "speedup_cpu", ".1f"),
            Column("peak RSS GB", "peak_rss_gb", ".2f"),
            Column("+setup GB", "peak_above_setup_gb", ".2f"),
            Column("CUDA GB", "cuda_peak_gb", ".2f"),
            Column("gsplat fwd s", "gsplat_forward_s", ".3f"),
            Column("same order", lambda r: None if "identical" not in r else ("yes" if r["identical"] else "NO")),
            Column("M differs", "dominant_mismatches"),
            Column("W rel diff", "weight_max_rel_diff", ".1e"),
            Column("load", "load_average_1min", ".1f"),
        ],
        title=f"splatpack kernels vs torch references ({args.device})",
    )
    write_results(args.out or ("kernels" if args.device == "cpu" else "kernels_cuda"), {"rows": rows})


if __name__ == "__main__":
    main()
