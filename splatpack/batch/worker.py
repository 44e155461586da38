"""What a Dask worker does with one task: run its command in a child process, put the output in place, record it.

A child process per task keeps a crash, a leak or a thread pool of one task away from the worker and the other
tasks, and makes the task exactly the command a user would type. The child is killed when its worker dies
(Linux parent-death signal), so a lost worker leaves no process writing behind the retry's back; whatever it
had written stays in the task's staging folder, which the next attempt clears.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

from splatpack.batch.cluster import cpu_count
from splatpack.batch.lifeline import PARENT_PID
from splatpack.batch.records import fingerprint, staging_dir, write_record
from splatpack.batch.tasks import Task

EVENT_TOPIC = "splatpack-batch"  # workers announce "task started" on it; the client's progress bar listens
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_BOX = "│╭╮╰╯─┃━ "  # tyro draws its errors in boxes


class TaskCrashed(Exception):
    """The task's process was killed or crashed (signal, out of memory): worth retrying elsewhere."""


def error_line(stderr: str) -> str:
    """The one line that says what went wrong: splatpack's ``error:`` line, else the last line with words."""
    lines = [ln.strip(_BOX) for ln in stderr.splitlines()]
    lines = [ln for ln in lines if re.search(r"[A-Za-z0-9]", ln)]
    for ln in reversed(lines):
        if ln.startswith("splatpack: error: "):
            return ln.removeprefix("splatpack: error: ")
    return lines[-1] if lines else "failed without a message"


def _environment(task: Task) -> dict:
    """The command's environment: the worker's, less what Dask's nanny set for the worker process itself
    (aggressive allocator trimming, one BLAS thread, a fixed hash seed), with the task's share of the cores."""
    import dask
    from distributed import get_worker

    env = dict(os.environ)
    injected = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), "PYTHONHASHSEED": "6640"}
    for name, value in injected.items():
        if env.get(name) == str(value):
            del env[name]
    # Without a share from the client (a remote cluster): the cores this worker may use, split among its slots.
    threads = task.threads or max(1, cpu_count() // get_worker().state.nthreads)
    env.update({name: str(threads) for name in _THREAD_VARIABLES})
    env[PARENT_PID] = str(os.getpid())
    if task.gpu_per_worker:
        env["CUDA_VISIBLE_DEVICES"] = str(get_worker().name)
    return env


def _current_worker():
    """The Dask worker running this task, or None when ``run_task`` is called directly."""
    from distributed import get_worker

    try:
        return get_worker()
    except ValueError:
        return None


def _announce(worker, key: str) -> None:
    if worker is not None:
        worker.log_event(EVENT_TOPIC, {"key": key, "state": "running"})


def _begin_attempt(folder) -> int:
    """Clear what an earlier, interrupted attempt left in the task's staging folder; return this attempt's number."""
    counter = folder / "attempts"
    attempts = int(counter.read_text()) + 1 if counter.exists() else 1
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    counter.write_text(str(attempts))
    return attempts


def _compress_figures(task: Task, stdout: str) -> dict:
    os.makedirs(task.output.parent, exist_ok=True)
    os.replace(task.staged, task.output)  # same filesystem: the output appears complete or not at all
    size = task.output.stat().st_size
    found = re.search(r"([\d,]+) Gaussians", stdout)
    gaussians = int(found.group(1).replace(",", "")) if found else None
    return {
        "bytes": size,
        "input_bytes": task.source.stat().st_size,
        "gaussians": gaussians,
        "bytes_per_gaussian": size / gaussians if gaussians else None,
    }


def _train_figures(task: Task) -> dict:
    """Size and held-out PSNR of the smallest file the method exported (its ``report.json``), if it exported."""
    try:
        report = json.loads((task.output / "splatpack_export" / "report.json").read_text())
    except (OSError, ValueError):
        return {}
    files = report.get("files", {})
    smallest = min(files, key=lambda name: files[name]["bytes"], default=None)
    gaussians = report.get("num_gaussians")
    figures = {"gaussians": gaussians, "trained_psnr": report.get("trained_psnr"), "files": files}
    if smallest is not None:
        size = files[smallest]["bytes"]
        figures.update(
            file=smallest,
            bytes=size,
            bytes_per_gaussian=size / gaussians if gaussians else None,
            psnr=files[smallest].get("psnr"),
        )
    return figures


def run_task(task: Task, out_dir) -> dict:
    """Run ``task`` and return its record (also written to ``OUT_DIR/.batch/records``).

    A command that fails on its input (exit status 1 or 2: a bad file, a diverging run) gives a ``failed``
    record with its one-line error and is not retried; a command killed by a signal raises ``TaskCrashed`` so
    that Dask's ``retries`` run it again.
    """
    from pathlib import Path

    out_dir = Path(out_dir)
    started_at = time.time()
    worker = _current_worker()
    _announce(worker, task.key)
    staging = staging_dir(out_dir) / task.key
    attempts = _begin_attempt(staging)
    inputs = fingerprint(task.source)
    if task.kind == "train" and task.output.exists():
        shutil.rmtree(task.output)  # an unfinished run of this task (it has no ok record, or we would not be here)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *task.argv],
        env=_environment(task),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode < 0 or proc.returncode > 128:
        raise TaskCrashed(f"{task.name}: the command was killed (status {proc.returncode}): {error_line(proc.stderr)}")
    record = {
        "key": task.key,
        "kind": task.kind,
        "name": task.name,
        "source": str(task.source),
        "output": str(task.output),
        "options": task.options,
        "inputs": inputs,
        "attempts": attempts,
        "seconds": seconds,
        "worker": worker.address if worker is not None else None,
        "started_at": started_at,
    }
    if proc.returncode == 0:
        figures = _compress_figures(task, proc.stdout) if task.kind == "compress" else _train_figures(task)
        record.update(status="ok", error=None, **figures)
    else:
        record.update(status="failed", error=error_line(proc.stderr))
    shutil.rmtree(staging, ignore_errors=True)
    # The record is the mark of completion, so it is written last; its end time covers the task's own work.
    record["finished_at"] = time.time()
    write_record(out_dir, task.key, record)
    return record
