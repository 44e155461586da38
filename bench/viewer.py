"""Time from ``splatpack view FILE`` start to the first drawn frame in headless Chromium, and bytes per Gaussian
sent to the browser.

Cases: the real ``biker.spz`` (shared data) and a generated 1M-Gaussian PLY (SH degree 3) under a point budget
(software WebGL needs 50-100 s per frame at 1M splats; ``--cases biker,1m,1m-full`` also tries the default budget).

"First drawn frame" = the first page screenshot whose scene region (middle of the page, clear of the GUI) has
more than 2 % non-background pixels; the clock runs from launching the viewer process (Python start, decode,
server start, browser load, websocket transfer, sort and draw), with Chromium already running on a blank page.
Screenshots of a software-WebGL page take seconds, so the figure is an upper bound with that granularity
(reported as ``poll_s``). Bytes are counted on the page's websocket (every frame the server sent until the
first drawn frame, GUI messages included) and divided by the Gaussians shown.

    .venv/bin/python bench/viewer.py [--cases biker,1m,1m-full] [--budget-1m 100000] [--timeout 400]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from _report import ROOT, Column, print_table, write_results

sys.path.insert(0, str(ROOT / "tests"))
from browser.harness import Browser, ViewerProcess, drawn_fraction, free_port, wait_until  # noqa: E402

SHARED = Path(os.environ.get("SPLATPACK_SHARED_DATA", ROOT.parent / "shared" / "data"))
DECODE_LINE = re.compile(r"A = .*\(([\w-]+), ([\d,]+) Gaussians, SH degree (\d), decoded in ([\d.]+) s\)")


def run_case(name: str, path: Path, budget: int, timeout: float, workdir: Path) -> dict:
    with Browser(1280, 720) as browser:
        browser.call("goto", url="about:blank")
        start = time.monotonic()
        viewer = ViewerProcess([str(path), "--port", str(free_port()), "--max-splats", str(budget)], cwd=workdir)
        with viewer:
            t_url = time.monotonic() - start
            browser.call("goto", url=viewer.url)
            polls = []

            def drawn():
                t0 = time.monotonic()
                left = timeout - (t0 - start)
                try:
                    image = browser.screenshot(workdir / f"{name}.png", timeout=max(left, 1))
                except RuntimeError:  # no screenshot in time: the page is still busy with its first frame
                    return None
                finally:
                    polls.append(time.monotonic() - t0)
                return time.monotonic() - start if drawn_fraction(image) > 0.02 else None

            try:
                t_frame = wait_until(drawn, timeout, interval=0.2)
            except TimeoutError:
                t_frame = None
            ws_bytes = browser.call("stats")["ws_bytes_received"]
        match = DECODE_LINE.search(viewer.output)
        fmt, total = match.group(1), int(match.group(2).replace(",", ""))
        degree, decode = int(match.group(3)), float(match.group(4))
    shown = min(total, budget)
    return {
        "case": name,
        "file": str(path),
        "format": fmt,
        "gaussians": total,
        "sh_degree": degree,
        "file_bytes": path.stat().st_size,
        "budget": budget,
        "shown": shown,
        "decode_s": decode,
        "url_printed_s": round(t_url, 2),
        "first_frame_s": None if t_frame is None else round(t_frame, 2),
        "timeout_s": timeout,
        "poll_s": round(sum(polls) / max(len(polls), 1), 2),
        "ws_bytes": ws_bytes,
        "ws_bytes_per_shown_gaussian": round(ws_bytes / shown, 2),
        "screenshot": str(workdir / f"{name}.png"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-1m", type=int, default=100_000, help="point budget for the 1M file")
    parser.add_argument(
        "--cases", default="biker,1m", help="comma-separated: biker, 1m (under --budget-1m), 1m-full (default budget)"
    )
    parser.add_argument("--timeout", type=float, default=400, help="seconds to wait for a first frame")
    parser.add_argument("--keep", type=Path, default=None, help="folder for the screenshots (default: temporary)")
    args = parser.parse_args()

    import torch

    import splatpack.io.ply as ply
    from splatpack.scene import Splats

    rows = []
    with tempfile.TemporaryDirectory(prefix="splatpack-bench-viewer-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        wanted = set(args.cases.split(","))
        cases = []
        biker = SHARED / "splats" / "biker.spz"
        if "biker" in wanted and biker.exists():
            cases.append(("biker.spz", biker, 1_000_000))
        elif "biker" in wanted:
            print(f"skipping biker: {biker} is absent")
        big = Path(tmp) / "random-1m.ply"
        if wanted & {"1m", "1m-full"}:
            ply.write(Splats.random(1_000_000, sh_degree=3, seed=0, dtype=torch.float32), big)
        if "1m" in wanted:
            cases.append((f"random-1m@{args.budget_1m}", big, args.budget_1m))
        if "1m-full" in wanted:
            cases.append(("random-1m@1000000", big, 1_000_000))
        for name, path, budget in cases:
            load = os.getloadavg()[0]
            row = run_case(name.replace("@", "-at-"), path, budget, args.timeout, work)
            row["case"], row["load_avg_1min_at_start"] = name, round(load, 2)
            rows.append(row)
            print(f"  {name}: first frame {row['first_frame_s']} s", flush=True)
            write_results("viewer", {"rows": rows})

    def first_frame(r: dict) -> str:
        if r["first_frame_s"] is None:
            return f"none (>{r['timeout_s']:.0f})"
        return f"{r['first_frame_s']:.1f}"

    print_table(
        rows,
        [
            Column("case", "case"),
            Column("Gaussians", "gaussians", ","),
            Column("budget", "shown", ","),
            Column("decode s", "decode_s", ".2f"),
            Column("URL s", "url_printed_s", ".1f"),
            Column("first frame s", first_frame),
            Column("poll s", "poll_s", ".1f"),
            Column("WS B/Gaussian", "ws_bytes_per_shown_gaussian", ".2f"),
            Column("load", "load_avg_1min_at_start"),
        ],
    )


if __name__ == "__main__":
    main()
