"""Grid sorting: PLAS time and neighbour quality against Morton order and random order.

For each grid side S, a structured random scene of S*S Gaussians (points on a few surfaces, colour and scale
varying smoothly over them, plus noise) gives SOG's 9-D sort key; the key is laid out in an S x S grid in
input (random) order, in Morton order and in PLAS order, and each layout's neighbour distance and VAD on the
key are measured (wall and CPU time: on a shared machine the CPU time is the fairer figure). With splatpack's PLAS
kernel built (cuda/), ``plas`` runs it and ``plas_torch`` the torch reference in the same run (the orders must be
identical; the row keeps the torch / kernel time ratio). Prints a table and writes bench/results/sort.json (after
every size, so a cut-short run keeps what it measured).

    .venv/bin/python bench/sort.py [--sizes 256,512,1024] [--paper] [--seed 0] [--out bench/results/sort.json]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from unittest import mock

import torch
from _report import RESULTS, Column, print_table, write_results

from splatpack import kernels
from splatpack.scene import Splats
from splatpack.sort import FAST_PLAS, PAPER_PLAS, grid_order, self_organizing_key
from splatpack.sort.quality import neighbour_distance, vad

METHODS = ("random", "morton", "plas", "plas_torch", "plas_paper")


def structured_scene(n: int, seed: int) -> Splats:
    """Gaussians on 4 random spheres and a ground plane, colour and size smooth over each surface."""
    g = torch.Generator().manual_seed(seed)
    surface = torch.randint(5, (n,), generator=g)
    u, v = torch.rand(n, generator=g), torch.rand(n, generator=g)
    centres = torch.rand(5, 3, generator=g) * 4 - 2
    radii = 0.3 + torch.rand(5, generator=g)
    theta, phi = 2 * math.pi * u, torch.acos(2 * v - 1)
    sphere = torch.stack([torch.sin(phi) * torch.cos(theta), torch.sin(phi) * torch.sin(theta), torch.cos(phi)], 1)
    means = centres[surface] + radii[surface, None] * sphere
    ground = surface == 4
    means[ground] = torch.stack([u[ground] * 8 - 4, torch.full_like(u[ground], -2.5), v[ground] * 8 - 4], 1)
    base = Splats.random(n, seed=seed)
    rgb = 0.5 + 0.4 * torch.sin(means * 1.7 + surface[:, None].float()) + 0.05 * torch.randn(n, 3, generator=g)
    log_scales = math.log(0.02) + 0.3 * torch.sin(means.sum(1, keepdim=True)) + 0.2 * torch.randn(n, 3, generator=g)
    return Splats(
        means, base.quats, log_scales, base.opacity_logits, ((rgb - 0.5) / 0.28209479177387814)[:, None], base.shN
    )


def measure(side: int, seed: int, paper: bool) -> dict:
    key = self_organizing_key(structured_scene(side * side, seed))
    row = {
        "side": side,
        "gaussians": side * side,
        "key_dims": key.shape[1],
        "torch_threads_outside_plas": torch.get_num_threads(),
    }
    # "plas" runs splatpack's PLAS kernel when it builds (cuda/), "plas_torch" the torch reference beside it.
    row["plas_kernel"] = kernels.ops("cpu") is not None
    orders = {}
    for name, method, schedule in (
        ("random", "none", None),
        ("morton", "morton", None),
        ("plas", "plas", FAST_PLAS),
        ("plas_torch", "plas", FAST_PLAS),
        ("plas_paper", "plas", PAPER_PLAS),
    ):
        if (name == "plas_paper" and not paper) or (name == "plas_torch" and not row["plas_kernel"]):
            continue
        with mock.patch.dict(os.environ, {kernels.ENV: "torch"} if name == "plas_torch" else {}):
            start, cpu_start = time.perf_counter(), time.process_time()
            order, width = grid_order(key, method, width=side, seed=seed, plas_schedule=schedule)
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        grid = key[order].reshape(side, width, -1)
        if name == "plas_torch":  # the kernel must not change the result
            row["plas_torch_same_order"] = bool(torch.equal(order, orders["plas"]))
            row["plas_torch_over_kernel"] = {"wall": seconds / row["plas"]["seconds"],
                                             "cpu": cpu_seconds / row["plas"]["cpu_seconds"]}  # fmt: skip
        orders[name] = order
        row[name] = {
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "neighbour_distance": neighbour_distance(grid),
            "vad": vad(grid),
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512,1024", help="comma-separated grid sides")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paper", action="store_true", help="also run PLAS with the paper's (slow) schedule")
    parser.add_argument("--out", type=Path, default=RESULTS / "sort.json", help="JSON results file")
    args = parser.parse_args()

    rows = []
    for side in map(int, args.sizes.split(",")):
        rows.append(measure(side, args.seed, args.paper))
        ratio = rows[-1].get("plas_torch_over_kernel")
        if ratio:
            print(f"{side}x{side} PLAS torch / kernel: {ratio['wall']:.2f}x wall, {ratio['cpu']:.2f}x CPU, "
                  f"same order: {rows[-1]['plas_torch_same_order']}", flush=True)  # fmt: skip
        print(f"{side}x{side} done", flush=True)
        write_results(args.out, {"rows": rows})  # after every size, so a cut-short run keeps what it measured
    per_method = [{"grid": f"{r['side']}x{r['side']}", "n": r["gaussians"], "method": m, **r[m]}
                  for r in rows for m in METHODS if m in r]  # fmt: skip
    print_table(
        per_method,
        [
            Column("grid", "grid"),
            Column("N", "n", "d"),
            Column("method", "method"),
            Column("time s", "seconds", ".2f"),
            Column("CPU s", "cpu_seconds", ".2f"),
            Column("nb dist", "neighbour_distance", ".4f"),
            Column("VAD", "vad", ".4f"),
        ],
    )


if __name__ == "__main__":
    main()
