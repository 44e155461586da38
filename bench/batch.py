"""``splatpack batch compress`` (1 and 2 local workers) against a plain shell loop of ``splatpack compress``.

Generates ``--scenes`` random PLY scenes (``--gaussians`` each, SH degree 3), then compresses all of them to SPZ
three ways, each a fresh output folder:

- ``loop``: ``for f in IN/*.ply; do python -m splatpack.cli compress "$f" OUT/...; done`` in bash;
- ``batch-1``, ``batch-2``: ``python -m splatpack.cli batch compress IN OUT --format spz --workers N``.

All three start one Python per file (batch tasks are child processes), so the difference between ``loop`` and
``batch-1`` is what the engine costs: cluster start-up plus a per-task overhead (scheduling, records, staging,
rename), reported as ``(batch wall - sum of task wall / workers) x workers / tasks`` and as a share of the mean
task, and from the workers' time lines (``timeline``: the same without a worker's idle tail). Every run's
load average is recorded: on a shared machine the 2-worker speed-up is bounded by the cores nobody else uses.
Prints a table and writes ``bench/results/batch.json``.

    .venv/bin/python bench/batch.py [--scenes 20] [--gaussians 50000] [--modes loop,batch-1,batch-2] [--out batch]

The modes run in the order given: on a machine whose load drifts, run a second time in the reverse order.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import Column, print_table, write_results

from splatpack.io import ply
from splatpack.scene import Splats


def generate(folder: Path, scenes: int, gaussians: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(scenes):
        path = folder / f"scene{i:02d}.ply"
        if not path.exists():
            ply.write(Splats.random(gaussians, 3, seed=i), path)
        paths.append(path)
    return paths


def run_loop(inputs: Path, out: Path) -> dict:
    out.mkdir(parents=True)
    script = (
        f'for f in {shlex.quote(str(inputs))}/*.ply; do {shlex.quote(sys.executable)} -m splatpack.cli compress "$f" '
        f'{shlex.quote(str(out))}/"$(basename "$f" .ply)".spz || exit 1; done'
    )
    start = time.perf_counter()
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    # compress prints its own in-process time last ("..., 1.9 s"): the rest of each run is interpreter start-up.
    inside = [float(m) for m in re.findall(r", ([\d.]+) s$", proc.stdout, flags=re.M)]
    return {"wall_seconds": wall, "in_process_seconds": sum(inside), "tasks": len(inside)}


def timeline(tasks: list[dict]) -> dict:
    """Per-task engine cost from the workers' time lines (each record's worker, start and end): the worker-side
    work around each task's command (fingerprint, staging, rename, record) plus the gap from one task's end to the
    next one's start on the same worker. What it leaves out is the idle tail of a worker that ran out of tasks
    while another still ran its last one (load balance, not a per-task cost)."""
    by_worker: dict[str, list[dict]] = {}
    for t in tasks:
        by_worker.setdefault(t["worker"], []).append(t)
    around = gaps = 0.0
    for runs in by_worker.values():
        runs.sort(key=lambda t: t["started_at"])
        around += sum(t["finished_at"] - t["started_at"] - t["seconds"] for t in runs)
        gaps += sum(b["started_at"] - a["finished_at"] for a, b in zip(runs, runs[1:]))
    n = len(tasks)
    return {
        "worker_side_per_task_seconds": around / n,
        "gap_per_task_seconds": gaps / max(1, n - len(by_worker)),
        "timeline_overhead_per_task_seconds": (around + gaps) / n,
    }


def run_batch(inputs: Path, out: Path, workers: int) -> dict:
    cmd = [sys.executable, "-m", "splatpack.cli", "batch", "compress", str(inputs), str(out), "--format", "spz"]
    start = time.perf_counter()
    subprocess.run([*cmd, "--workers", str(workers), "--quiet"], check=True)
    wall = time.perf_counter() - start
    summary = json.loads((out / "batch.json").read_text())
    task_seconds = sum(t["seconds"] for t in summary["tasks"])
    n = len(summary["tasks"])
    engine = summary["wall_seconds"]  # from the first record check to batch.json; the rest is start-up and close
    overhead = (engine - task_seconds / workers) / n * workers  # per task, on one worker's time line
    lines = timeline(summary["tasks"])
    return {
        **lines,
        "timeline_overhead_per_task_share": lines["timeline_overhead_per_task_seconds"] / (task_seconds / n),
        "wall_seconds": wall,
        "engine_seconds": engine,
        "startup_and_close_seconds": wall - engine,
        "task_seconds": task_seconds,
        "tasks": n,
        "ok": summary["counts"]["ok"],
        "overhead_per_task_seconds": overhead,
        "overhead_per_task_share": overhead / (task_seconds / n),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=20)
    ap.add_argument("--gaussians", type=int, default=50_000)
    ap.add_argument("--modes", default="loop,batch-1,batch-2")
    ap.add_argument("--work", type=Path, default=None, help="folder for the scenes and outputs (default: a temp dir)")
    ap.add_argument("--out", default="batch", help="results name (bench/results/NAME.json) or a .json path")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        work = args.work or Path(tmp)
        inputs = generate(work / "in", args.scenes, args.gaussians)
        input_bytes = sum(p.stat().st_size for p in inputs)
        rows = {}
        for mode in args.modes.split(","):
            out = work / f"out-{mode}-{time.time_ns()}"
            load_before = os.getloadavg()[0]
            row = run_loop(work / "in", out) if mode == "loop" else run_batch(work / "in", out, int(mode.split("-")[1]))
            row.update(
                load_before=load_before,
                load_after=os.getloadavg()[0],
                scenes_per_second=args.scenes / row["wall_seconds"],
                input_mb_per_second=input_bytes / 1e6 / row["wall_seconds"],
            )
            rows[mode] = row
            print(f"{mode}: {row['wall_seconds']:.1f} s", flush=True)

    print_table(
        [{"mode": mode, **r} for mode, r in rows.items()],
        [
            Column("mode", "mode"),
            Column("wall s", "wall_seconds", ".1f"),
            Column("scenes/s", "scenes_per_second", ".3f"),
            Column("MB/s", "input_mb_per_second", ".2f"),
            Column("engine s", "engine_seconds", ".1f"),
            Column("start+close s", "startup_and_close_seconds", ".1f"),
            Column("task s (sum)", lambda r: r.get("task_seconds", r.get("in_process_seconds")), ".1f"),
            Column("overhead/task s", "overhead_per_task_seconds", ".2f"),
            Column(
                "overhead %", lambda r: r.get("overhead_per_task_share") and 100 * r["overhead_per_task_share"], ".1f"
            ),
            Column("worker-side/task s", "worker_side_per_task_seconds", ".3f"),
            Column("gap/task s", "gap_per_task_seconds", ".3f"),
            Column(
                "timeline %",
                lambda r: r.get("timeline_overhead_per_task_share") and 100 * r["timeline_overhead_per_task_share"],
                ".1f",
            ),
            Column("load before", "load_before", ".1f"),
            Column("load after", "load_after", ".1f"),
        ],
        title=f"{args.scenes} scenes of {args.gaussians:,} Gaussians (SH 3) -> SPZ",
    )
    derived = {}
    if {"batch-1", "batch-2"} <= rows.keys():
        derived["speedup_2_over_1_wall"] = rows["batch-1"]["wall_seconds"] / rows["batch-2"]["wall_seconds"]
        derived["speedup_2_over_1_engine"] = rows["batch-1"]["engine_seconds"] / rows["batch-2"]["engine_seconds"]
    if {"loop", "batch-1"} <= rows.keys():
        derived["batch_1_over_loop_wall"] = rows["batch-1"]["wall_seconds"] / rows["loop"]["wall_seconds"]
    if "loop" in rows and rows["loop"]["tasks"]:
        derived["loop_startup_share"] = 1 - rows["loop"]["in_process_seconds"] / rows["loop"]["wall_seconds"]
    for name, value in derived.items():
        print(f"{name}: {value:.3f}")
    write_results(
        args.out,
        {"scenes": args.scenes, "gaussians": args.gaussians, "input_bytes": input_bytes, "modes": rows, **derived},
    )


if __name__ == "__main__":
    main()
