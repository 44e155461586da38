"""``splatpack batch compress|train``: many files or scenes as tasks on a Dask cluster (local by default)."""

from __future__ import annotations

import dataclasses
import shlex
import typing
from pathlib import Path
from typing import Annotated, Literal

import tyro

from splatpack.commands import compress

# compress's output formats, made required: each output's name comes from its input's, not from OUT's extension.
_OUTPUT_FORMAT = next(t for t in typing.get_args(typing.get_type_hints(compress.Command)["format"]) if t is not None)
_PER_FILE = ("input", "output", "format")  # compress fields the batch sets per task


@dataclasses.dataclass(kw_only=True)  # after each command's own fields, whatever their defaults
class _Cluster:
    scheduler: str | None = None
    """Address of a running Dask scheduler (tcp://HOST:8786); default: a local cluster on 127.0.0.1."""
    workers: int | None = None
    """Workers of the local cluster (default: one per core for compress; one per GPU, else 1, for train)."""
    retries: int = 2
    """Extra attempts for a task whose process was killed or whose worker died."""
    quiet: bool = False
    """No progress bar and no table (batch.json is written all the same)."""


def _execute(tasks, out_dir: Path, opts: _Cluster, *, gpus: int = 0, train: bool = False) -> None:
    """Run ``tasks`` on the chosen cluster, print the table, fail (exit 2) when any task failed."""
    from rich.console import Console

    from splatpack.batch.cluster import open_cluster
    from splatpack.batch.engine import run_batch
    from splatpack.errors import SplatpackError

    console = Console(stderr=True, quiet=opts.quiet)
    # One training per GPU, or one at a time with every core on a CPU machine; one file per core for compress.
    workers = opts.workers or (max(gpus, 1) if train else None)
    with open_cluster(opts.scheduler, workers, gpus=gpus, retries=opts.retries) as (client, info):
        where = "local cluster" if info.local else "cluster"
        console.print(f"{where} {info.address}: {info.workers} workers, {len(tasks)} tasks")
        console.print(f"dashboard: {info.dashboard or 'not served (the Dask dashboard needs bokeh)'}")
        tasks = [
            dataclasses.replace(t, threads=info.threads_per_task, gpu_per_worker=info.local and gpus > 0) for t in tasks
        ]
        # On GPU workers each training claims one GPU; on CPU workers (one task thread each) no claim is needed.
        resources = {"GPU": 1} if train and info.gpu_workers else None
        summary = run_batch(client, tasks, out_dir, retries=opts.retries, resources=resources, console=console)
    Console(quiet=opts.quiet).print(_table(summary))
    failed = summary["counts"]["failed"]
    if failed:
        raise SplatpackError(f"{failed} of {len(tasks)} tasks failed (errors above and in batch.json)", out_dir)


def _table(summary: dict):
    from rich.table import Table

    from splatpack.io.files import human_bytes

    c = summary["counts"]
    table = Table(
        title=f"{c['ok']} done, {c['skipped']} skipped (already done), {c['failed']} failed "
        f"in {summary['wall_seconds']:.1f} s on {summary['workers']} workers"
    )
    for col in ("task", "status", "size", "B/Gaussian", "PSNR", "time", "error"):
        table.add_column(col)
    for row in summary["tasks"]:
        size, bpg, psnr, secs = row.get("bytes"), row.get("bytes_per_gaussian"), row.get("psnr"), row.get("seconds")
        table.add_row(
            row["name"],
            row["status"],
            "-" if size is None else human_bytes(size),
            "-" if bpg is None else f"{bpg:.2f}",
            "-" if psnr is None else f"{psnr:.2f} dB",
            "-" if secs is None else f"{secs:.1f} s",
            row.get("error") or "",
        )
    return table


@dataclasses.dataclass
class Compress(_Cluster, compress.Command):
    """Compress every splat file under IN_DIR (or matching a glob) into OUT_DIR, one Dask task per file.
    Outputs mirror the input tree; a rerun skips files already done with the same options. Every option of
    ``splatpack compress`` applies to each file."""

    input: Annotated[tyro.conf.Positional[str], tyro.conf.arg(metavar="IN_DIR_OR_GLOB")]
    """Input folder (searched recursively) or glob, e.g. 'scans/**/*.ply' (quote it)."""
    output: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="OUT_DIR")]
    """Output folder: outputs, per-task records (.batch/) and batch.json."""
    format: _OUTPUT_FORMAT = dataclasses.field(default=dataclasses.MISSING)  # required (compress's is optional)
    """Output format of every file."""

    def run(self) -> None:
        from splatpack.batch.tasks import compress_tasks

        options = {}
        for f in dataclasses.fields(compress.Command):
            value = getattr(self, f.name)
            if f.name in _PER_FILE:
                continue
            if dataclasses.is_dataclass(value):  # an option group whose flags compress shows unprefixed (--steps)
                options.update({g.name: getattr(value, g.name) for g in dataclasses.fields(value)})
            else:
                options[f.name] = value
        tasks = compress_tasks(self.input, self.output, self.format, options, threads=None)
        _execute(tasks, self.output, self)


@dataclasses.dataclass
class Train(_Cluster):
    """Train one nerfstudio run per dataset folder (what ns-train does), one Dask task each. Each run exports
    its files and report.json as the method does (OUT_DIR/<folder>/<method>/batch/splatpack_export)."""

    data: Annotated[tyro.conf.Positional[tuple[Path, ...]], tyro.conf.arg(metavar="DATA_DIR")]
    """Dataset folders (transforms.json or COLMAP), one training each; folder names must differ."""
    method: Literal["splatpack", "splatpack-base", "splatpack-omg"] = "splatpack"
    """nerfstudio method (it must be registered through the nerfstudio.method_configs entry points)."""
    out_dir: Path = Path("outputs/batch")
    """Output folder: one nerfstudio run per dataset, per-task records (.batch/) and batch.json."""
    ns_train_args: str = ""
    """Extra ns-train options for every run, one quoted string: --ns-train-args='--max-num-iterations 2000'."""

    def run(self) -> None:
        from splatpack.batch.tasks import train_tasks

        tasks = train_tasks(list(self.data), self.out_dir, self.method, shlex.split(self.ns_train_args), threads=None)
        _execute(tasks, self.out_dir, self, gpus=0 if self.scheduler else _local_gpus(), train=True)


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count()


Command = Annotated[Compress, tyro.conf.subcommand("compress")] | Annotated[Train, tyro.conf.subcommand("train")]
