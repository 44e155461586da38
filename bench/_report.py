"""What every benchmark script shares: an aligned table on stdout, and ``bench/results/<name>.json`` saying when,
where and how the figures were measured (date, machine, command line) next to the results.

    from _report import Column, print_table, write_results
    print_table(rows, [Column("N", "gaussians", ","), Column("MB/s", lambda r: r["mb"] / r["s"], ".0f")])
    write_results("ply", {"rows": rows})

Scripts import it as ``_report`` (``python bench/x.py`` puts bench/ on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))  # the scripts run from a checkout, installed or not

from splatpack.io.atomic import atomic_output  # noqa: E402


def utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


STARTED = utc_now()  # when the benchmark script started (it imports this module first)


def machine() -> dict:
    """Where the figures come from: CPU count and load (the dev machine is shared), Python/torch, platform, GPU."""
    import torch

    return {
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "node": platform.node(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


@dataclass(frozen=True)
class Column:
    header: str
    value: str | Callable[[dict], object]  # a row key, or a function of the row
    fmt: str = ""  # format spec of the value, e.g. ".2f", ",", ">10.3e"

    def cell(self, row: dict) -> str:
        v = row.get(self.value) if isinstance(self.value, str) else self.value(row)
        return "-" if v is None else format(v, self.fmt)


def table(rows: Iterable[dict], columns: Sequence[Column]) -> str:
    """Rows as text columns: text left-aligned, numbers right-aligned, each as wide as its widest cell."""
    cells = [[c.cell(r) for c in columns] for r in rows]
    widths = [max([len(c.header)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(line[i]) for line in cells) and bool(cells) for i in range(len(columns))]

    def fmt_line(values: Sequence[str]) -> str:
        parts = (v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric))
        return "  ".join(parts).rstrip()

    return "\n".join([fmt_line([c.header for c in columns]), *(fmt_line(line) for line in cells)])


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("%x"))
    except ValueError:
        return text == "-"
    return True


def print_table(rows: Iterable[dict], columns: Sequence[Column], title: str | None = None) -> None:
    if title:
        print(title)
    print(table(rows, columns), flush=True)


def write_results(name: str | os.PathLike, results: dict, *, started: str = STARTED) -> Path:
    """Write ``results`` with the date, machine and command line to ``bench/results/<name>.json`` (or to ``name``
    when it is a path ending in .json), atomically; returns the path."""
    path = Path(name) if str(name).endswith(".json") else RESULTS / f"{name}.json"
    meta = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "started": started,
        "finished": utc_now(),
        "machine": machine(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps({"meta": meta, **results}, indent=2) + "\n")
    print(f"wrote {path}")
    return path
