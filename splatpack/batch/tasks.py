"""The tasks of a batch: one per input file (compress) or per dataset folder (train), each a command line.

A task is plain data (picklable, so it travels to any Dask worker): the command to run with the worker's Python,
the input it is made from, the output it produces, and the options that, with the input's contents, decide
whether an earlier run of it can be reused.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import re
from importlib.metadata import entry_points
from pathlib import Path

import splatpack.io as sio
from splatpack.batch.records import STATE_DIR, staging_dir
from splatpack.errors import SplatpackError

TRAIN_TIMESTAMP = "batch"  # nerfstudio's run folder name under OUT_DIR/<scene>/<method>/


@dataclasses.dataclass(frozen=True)
class Task:
    key: str
    """Record name and Dask key stem: unique within OUT_DIR, file-name safe."""
    kind: str
    """"compress" or "train"."""
    name: str
    """Shown in the progress and the table: the input relative to the batch's root."""
    source: Path
    """Input file or dataset folder (its contents are fingerprinted)."""
    output: Path
    """Final output: the compressed file, or the training run folder."""
    argv: tuple[str, ...]
    """Arguments to the worker's Python interpreter."""
    options: dict
    """Everything besides the input that decides the output (compared on reruns)."""
    staged: Path | None = None
    """Where the command writes the output before it is renamed onto ``output`` (None: written in place)."""
    threads: int | None = None
    """CPU threads the command may use (OMP_NUM_THREADS and friends); None keeps the worker's environment."""
    gpu_per_worker: bool = False
    """Expose only GPU number <worker name> to the command (local cluster with one worker per GPU)."""


def _key(kind: str, rel: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", rel)[-80:]
    return f"{kind}-{slug}-{hashlib.sha1(rel.encode()).hexdigest()[:8]}"


def option_args(options: dict) -> list[str]:
    """``{"spz_version": 3, "sh_degree": None}`` -> ``["--spz-version", "3"]`` (None means "not given")."""
    args = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None:
            continue
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, (list, tuple)):
            args += [flag, *map(str, value)]
        else:
            args += [flag, str(value)]
    return args


def find_inputs(source: str, out_dir: Path) -> tuple[Path, list[Path]]:
    """The splat files named by ``source`` (a folder, searched recursively, or a glob) and the root they are
    relative to. Files under ``out_dir`` (an earlier batch's outputs) are left out."""
    path = Path(source)
    if path.is_dir():
        root, found = path, [p for p in path.rglob("*") if p.is_file()]
    else:
        found = [Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file()]
        magic = next((i for i, part in enumerate(path.parts) if glob.has_magic(part)), len(path.parts) - 1)
        root = Path(*path.parts[:magic]) if magic else Path(".")
    out = out_dir.resolve()
    if out == root.resolve() or out in root.resolve().parents:
        raise SplatpackError("the inputs are inside OUT_DIR; choose an OUT_DIR outside them", out_dir)
    files = sorted(p for p in found if _is_splat_file(p) and out not in p.resolve().parents)
    if not files:
        raise SplatpackError("no splat files found (.ply, .compressed.ply, .spz, .splat, .sog)", source)
    return root, files


def _is_splat_file(path: Path) -> bool:
    """A file in a format splatpack reads; an unbundled SOG folder's meta.json is not a scene file of its own."""
    fmt = sio.format_from_name(path)
    return fmt is not None and (fmt != "sog" or path.name.lower().endswith(".sog"))


def _swap_ending(rel: str, out_format: str) -> str:
    """``a/b.compressed.ply`` -> ``a/b.spz`` for SPZ: the input's format ending replaced by the output's."""
    endings = sorted((e for _, ends in sio.FORMATS.values() for e in ends), key=len, reverse=True)
    ending = next(e for e in endings if rel.lower().endswith(e))
    return rel[: -len(ending)] + sio.FORMATS[out_format][1][0]


def compress_tasks(source: str, out_dir: Path, out_format: str, options: dict, *, threads: int | None) -> list[Task]:
    """One ``splatpack compress`` per input file; outputs mirror the input tree under ``out_dir``."""
    if out_format not in sio.FORMATS:
        raise SplatpackError(f"unknown output format {out_format!r}; known formats: {', '.join(sio.FORMATS)}")
    root, files = find_inputs(source, out_dir)
    tasks, seen = [], {}
    options = {"format": out_format, **options}
    for path in files:
        rel = _swap_ending(path.relative_to(root).as_posix(), out_format)
        if rel in seen:
            raise SplatpackError(f"{seen[rel]} and {path} would both be written to {out_dir / rel}", path)
        seen[rel] = path
        output = out_dir / rel
        key = _key("compress", rel)
        staged = staging_dir(out_dir) / key / output.name
        argv = ("-m", "splatpack.cli", "compress", str(path), str(staged), *option_args(options))
        tasks.append(
            Task(key, "compress", path.relative_to(root).as_posix(), path, output, argv, options, staged, threads)
        )
    return tasks


def registered_methods() -> set[str]:
    """nerfstudio methods registered by plugins (the ``nerfstudio.method_configs`` entry points)."""
    return {ep.name for ep in entry_points(group="nerfstudio.method_configs")}


def train_tasks(
    data_dirs: list[Path],
    out_dir: Path,
    method: str,
    ns_train_args: list[str],
    *,
    threads: int | None,
    gpu_per_worker: bool = False,
) -> list[Task]:
    """One ``ns-train METHOD --data DIR`` per dataset folder, run in ``OUT_DIR/<folder name>/<method>/batch``."""
    if method not in registered_methods():
        raise SplatpackError(
            f"method {method!r} is not registered (no nerfstudio.method_configs entry point); "
            f"registered: {', '.join(sorted(registered_methods())) or 'none'}"
        )
    if not data_dirs:
        raise SplatpackError("give at least one dataset folder")
    tasks, seen = [], {}
    for data in data_dirs:
        if not data.is_dir():
            raise SplatpackError("not a dataset folder", data)
        if data.name in seen or data.name == STATE_DIR:
            raise SplatpackError(f"two dataset folders are named {data.name!r} ({seen.get(data.name)})", data)
        seen[data.name] = data
        output = out_dir / data.name / method / TRAIN_TIMESTAMP
        argv = (
            "-m",
            "nerfstudio.scripts.train",
            method,
            "--data",
            str(data),
            "--output-dir",
            str(out_dir),
            "--experiment-name",
            data.name,
            "--timestamp",
            TRAIN_TIMESTAMP,
            "--vis",
            "tensorboard",  # the viewer would keep ns-train alive after training and listen on 0.0.0.0
            *ns_train_args,
        )
        options = {"method": method, "ns_train_args": list(ns_train_args)}
        key = _key("train", f"{data.name}/{method}")
        tasks.append(Task(key, "train", data.name, data, output, argv, options, None, threads, gpu_per_worker))
    return tasks
