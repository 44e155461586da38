"""Peak memory and outcome of every crafted hostile file of tests/test_hostile_inputs.py (issue 13).

Each file goes through ``splatpack info`` and ``splatpack decompress`` in a forked child under RLIMIT_AS (its own
size + 1 GiB), as the test does; the peak RSS is the child's (interpreter and torch included). ``--tree DIR``
runs another checkout's splatpack on the same files (e.g. the code before the fix, from ``git archive``).

It also measures each reader's peak memory per Gaussian on valid files (``--ceiling-gaussians``, SH degree 0
and 3), the per-Gaussian ceiling README documents.

    python bench/reliability.py [--tree /tmp/old] [--ceiling-gaussians 200000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _report import ROOT, Column, print_table, write_results

sys.path.insert(0, str(ROOT / "tests"))
from test_hostile_inputs import CASES, ForkServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout whose splatpack to run")
    parser.add_argument("--name", default="reliability", help="results file name (bench/results/NAME.json)")
    parser.add_argument("--ceiling-gaussians", type=int, default=200_000, help="0 skips the per-Gaussian ceilings")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="splatpack-hostile-") as tmp:
        tmp = Path(tmp)
        server = ForkServer(tmp, root=args.tree.resolve())
        try:
            for name, make in CASES.items():
                folder = tmp / name
                folder.mkdir()
                path = make(folder)
                stored = sum(p.stat().st_size for p in [path, *path.rglob("*")] if p.is_file() and not p.is_symlink())
                for command in ("info", "decompress"):
                    argv = [command, str(path)] + ([str(folder / "out.ply")] if command == "decompress" else [])
                    rc, text, peak = server.run(argv=argv)
                    lines = text.strip().splitlines()
                    rows.append(
                        {
                            "case": name,
                            "command": command,
                            "stored_bytes": stored,
                            "exit": rc,
                            "lines": len(lines),
                            "peak_mb": peak / 2**20,
                            "message": (lines[-1] if lines else "")[:110],
                        }
                    )
            ceilings = _ceilings(server, tmp, args.ceiling_gaussians) if args.ceiling_gaussians else []
        finally:
            server.close()
    if ceilings:
        print_table(
            ceilings,
            [
                Column("format", "format"),
                Column("SH", "sh_degree"),
                Column("file B/Gaussian", "file_bytes_per_gaussian", ".1f"),
                Column("peak B/Gaussian", "peak_bytes_per_gaussian", ".0f"),
            ],
            title=f"reader peak memory above the interpreter's, {args.ceiling_gaussians:,} Gaussians",
        )
    print_table(
        rows,
        [
            Column("case", "case"),
            Column("command", "command"),
            Column("bytes", "stored_bytes", ","),
            Column("exit", "exit"),
            Column("lines", "lines"),
            Column("peak MB", "peak_mb", ".0f"),
            Column("last line", "message"),
        ],
        title=f"hostile files, splatpack of {args.tree}",
    )
    write_results(args.name, {"tree": str(args.tree), "rows": rows, "ceilings": ceilings})


def _ceilings(server: ForkServer, tmp: Path, n: int) -> list[dict]:
    """Peak RSS per Gaussian of each reader on valid random scenes, above a 10-Gaussian read's."""
    import splatpack.io as sio
    from splatpack.scene import Splats

    tiny = tmp / "tiny.splat"
    sio.write(Splats.random(10, 0), tiny)
    base = server.run(read="splat", path=str(tiny))[2]
    out = []
    for degree in (0, 3):
        scene = Splats.random(n, degree, seed=1)
        for fmt, ext, options in (
            ("ply", "ply", {}),
            ("spz", "spz", {}),
            ("sog", "sog", {"sort": "none"}),
            ("splat", "splat", {}),
        ):
            if fmt == "splat" and degree:
                continue  # .splat has no SH bands
            path = tmp / f"valid-{degree}.{ext}"
            sio.write(scene, path, **options)
            rc, text, peak = server.run(read=fmt, path=str(path))
            assert rc == 0, text
            out.append(
                {
                    "format": fmt,
                    "sh_degree": degree,
                    "file_bytes_per_gaussian": path.stat().st_size / n,
                    "peak_bytes_per_gaussian": (peak - base) / n,
                }
            )
    return out


if __name__ == "__main__":
    main()
