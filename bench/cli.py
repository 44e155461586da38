"""Whole-process wall time and peak memory of file conversions: the ``splatpack`` CLI vs PlayCanvas splat-transform.

Each conversion runs as its own process (interpreter or node start-up included, as a user pays it), under GNU
``time`` for the peak resident memory (``%M``: the child's own high-water mark, not the benchmark's), with the
wall time taken around it. The two tools run pairwise alternating (ours, peer, ours, peer, ...) ``--repeats``
times; the table shows medians and the ours/peer ratios.

Conversions, for every input: to SPZ, to SOG (splat-transform with ``-g cpu``: no GPU), to PLY; then each tool's
SPZ and SOG decoded back to PLY by the same tool. Inputs (``--inputs``, comma-separated):

  guitar   the PlayCanvas guitar sample (``--guitar PATH``, default ../shared/data/splats/guitar.compressed.ply
           or guitar.ply; skipped when absent);
  biker    ../shared/data/splats/biker.compressed.ply (skipped when absent);
  90k      Splats.random(90_854, 3, seed=0) written as a PLY: the guitar sample's count and SH degree, for
           machines without the sample (random attributes: a timing input, not a realistic size one);
  500k     Splats.random(500_000, 2, seed=0) written as a PLY;
  1m       Splats.random(1_000_000, 3, seed=0) written as a PLY;
  small    Splats.random(--small-n, 1, seed=0) (a quick check of the script itself);
  a path   any splat file both tools read.

    .venv/bin/python bench/cli.py [--inputs guitar,biker,500k,1m] [--targets spz,sog,ply] [--repeats 3]

Run it on an idle machine: the figures are wall times. Writes bench/results/cli.json (``--out``).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from _report import ROOT, Column, print_table, write_results

PEER = ROOT / ".cache" / "node" / "node_modules" / ".bin" / "splat-transform"
OURS = ROOT / ".venv" / "bin" / "splatpack"
DATA = ROOT.parent / "shared" / "data" / "splats"
GNU_TIME = Path("/usr/bin/time")
TARGETS = {"spz": ".spz", "sog": ".sog", "ply": ".ply"}
GENERATED = {"90k": (90_854, 3), "500k": (500_000, 2), "1m": (1_000_000, 3)}


def prepare(name: str, args, work: Path) -> tuple[Path, str] | None:
    """The input file for ``name`` and a description, or None (with a message) when its data is missing."""
    if name in GENERATED or name == "small":
        from splatpack.io import ply
        from splatpack.scene import Splats

        n, degree = GENERATED.get(name, (args.small_n, 1))
        path = work / f"{name}.ply"
        ply.write(Splats.random(n, degree, seed=0), path)
        return path, f"Splats.random({n:_}, {degree}, seed=0) as PLY"
    if name in ("guitar", "biker"):
        given = args.guitar if name == "guitar" else None
        candidates = [Path(given)] if given else [DATA / f"{name}.compressed.ply", DATA / f"{name}.ply"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            print(f"skipping {name}: none of {', '.join(map(str, candidates))} exists")
            return None
        return found, found.name
    if Path(name).exists():
        return Path(name), Path(name).name
    raise SystemExit(f"unknown input {name!r}; choose from guitar, biker, 90k, 500k, 1m, small or a splat file")


def measure(cmd: list[str], timeout: float) -> dict:
    """Wall seconds and peak resident MB of ``cmd`` as one process; ``timed_out`` when it ran past ``timeout``."""
    with tempfile.NamedTemporaryFile(suffix=".time") as report, tempfile.TemporaryFile() as err:
        full = [str(GNU_TIME), "-f", "%M", "-o", report.name, *cmd] if GNU_TIME.exists() else cmd
        start = time.perf_counter()
        # Its own session, so a timeout kills the whole tree (time, node or python, their threads).
        proc = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT, start_new_session=True)
        # A blocking wait with a timer to kill: Popen.wait(timeout) polls with sleeps of up to 50 ms, which
        # rounded every sub-second run up to the next poll.
        killer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        killer.start()
        try:
            proc.wait()
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
        if proc.returncode == -signal.SIGKILL and wall >= timeout:
            return {"timed_out": True, "wall_s": None, "peak_mb": None}
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.read().decode()[-2000:]}")
        text = Path(report.name).read_text().split() if GNU_TIME.exists() else []
        peak = int(text[-1]) / 1024 if text else None
    return {"timed_out": False, "wall_s": wall, "peak_mb": peak}


def command(tool: str, src: Path, out: Path, target: str) -> list[str]:
    if tool == "splatpack":
        verb = "decompress" if target == "decode" else "compress"
        return [str(OURS), verb, str(src), str(out), "--quiet"]
    gpu = ["-g", "cpu"] if target == "sog" or src.suffix == ".sog" else []
    return [str(PEER), "-q", "-w", *gpu, str(src), str(out)]


def pairwise(label: str, jobs: dict[str, tuple[list[str], Path]], args) -> dict[str, list[dict]]:
    """Run each tool's job ``--repeats`` times, alternating tools; samples per tool (a tool that timed out once
    is not run again)."""
    samples: dict[str, list[dict]] = {tool: [] for tool in jobs}
    for repeat in range(args.repeats):
        for tool, (cmd, out) in jobs.items():
            if samples[tool] and samples[tool][-1]["timed_out"]:
                continue
            if out.is_dir():
                shutil.rmtree(out)
            elif out.exists():
                out.unlink()
            sample = measure(cmd, args.timeout)
            samples[tool].append(sample)
            shown = "timed out" if sample["timed_out"] else f"{sample['wall_s']:.2f} s, {sample['peak_mb'] or 0:.0f} MB"
            print(f"   {label} {tool} #{repeat + 1}: {shown}", flush=True)
    return samples


def summary(input_name: str, conversion: str, samples: dict[str, list[dict]]) -> dict:
    row = {"input": input_name, "conversion": conversion, "samples": samples}
    for tool, key in (("splatpack", "ours"), ("splat-transform", "peer")):
        done = [s for s in samples.get(tool, []) if not s["timed_out"]]
        row[f"{key}_s"] = statistics.median(s["wall_s"] for s in done) if done else None
        peaks = [s["peak_mb"] for s in done if s["peak_mb"] is not None]
        row[f"{key}_mb"] = statistics.median(peaks) if peaks else None
        row[f"{key}_timed_out"] = any(s["timed_out"] for s in samples.get(tool, []))
    for what in ("s", "mb"):
        ours, peer = row[f"ours_{what}"], row[f"peer_{what}"]
        row[f"ratio_{what}"] = ours / peer if ours is not None and peer else None
    return row


def run_input(name: str, args, work: Path) -> list[dict]:
    prepared = prepare(name, args, work)
    if prepared is None:
        return []
    src, description = prepared
    print(f"\n== {name}: {description}", flush=True)
    tools = ["splatpack"] + (["splat-transform"] if PEER.exists() else [])
    d = work / Path(name).name.replace(".", "_")
    d.mkdir(exist_ok=True)
    rows = []
    for target in args.targets:
        outs = {tool: d / f"{tool}{TARGETS[target]}" for tool in tools}
        jobs = {tool: (command(tool, src, outs[tool], target), outs[tool]) for tool in tools}
        rows.append(summary(name, f"-> {target}", pairwise(f"-> {target}", jobs, args)))
        if target == "ply":
            continue
        decoded = {tool: d / f"{tool}-{target}-decoded.ply" for tool in tools}
        jobs = {
            tool: (command(tool, outs[tool], decoded[tool], "decode"), decoded[tool])
            for tool in tools
            if outs[tool].exists()  # an encode that timed out left nothing to decode
        }
        rows.append(summary(name, f"{target} -> ply", pairwise(f"{target} -> ply", jobs, args)))
    return rows


COLUMNS = [
    Column("input", "input"),
    Column("conversion", "conversion"),
    Column("ours s", "ours_s", ".2f"),
    Column("peer s", "peer_s", ".2f"),
    Column("ours/peer s", "ratio_s", ".2f"),
    Column("ours MB", "ours_mb", ".0f"),
    Column("peer MB", "peer_mb", ".0f"),
    Column("ours/peer MB", "ratio_mb", ".2f"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", default="guitar,biker,500k,1m")
    parser.add_argument("--targets", default="spz,sog,ply")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per process before it is killed")
    parser.add_argument("--guitar", default=None, help="path of the guitar sample")
    parser.add_argument("--small-n", type=int, default=20_000)
    parser.add_argument("--out", default="cli")
    args = parser.parse_args()
    args.targets = [t for t in args.targets.split(",") if t]
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        raise SystemExit(f"unknown targets {unknown}; choose from {', '.join(TARGETS)}")
    if not PEER.exists():
        print(f"splat-transform is not installed at {PEER} (the tests install it): timing splatpack alone")
    # A pip install byte-compiles the package; a shell with PYTHONDONTWRITEBYTECODE (CI, some containers) would
    # otherwise make every timed run compile splatpack's sources again (~0.1 s that no user pays).
    compileall.compile_dir(ROOT / "splatpack", quiet=1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        for name in [n for n in args.inputs.split(",") if n]:
            rows += run_input(name, args, Path(tmp))
    print("\nmedians of", args.repeats, "pairwise alternating runs; whole process (start-up included)")
    print_table(rows, COLUMNS)
    for r in rows:
        for key, tool in (("ours", "splatpack"), ("peer", "splat-transform")):
            if r[f"{key}_timed_out"]:
                print(f"   {r['input']} {r['conversion']}: {tool} ran past {args.timeout:.0f} s")
    write_results(
        args.out,
        {
            "peer": "splat-transform 3.7.0",
            "repeats": args.repeats,
            "rss": "GNU time %M" if GNU_TIME.exists() else None,
            "bytecode": "splatpack byte-compiled before the runs, as pip install does",
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
