"""Run a batch of tasks on a Dask cluster: skip finished ones, submit the rest, follow them, write batch.json.

Every failure ends as a row of the result (a bad input's one-line error, or Dask's word on a task whose workers
kept dying); none stops the other tasks.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

from splatpack.batch.records import fingerprint, is_finished, read_record, staging_dir
from splatpack.batch.tasks import Task
from splatpack.batch.worker import EVENT_TOPIC, run_task
from splatpack.io.atomic import atomic_output

SUMMARY_FIELDS = (
    "name",
    "status",
    "error",
    "output",
    "bytes",
    "input_bytes",
    "gaussians",
    "bytes_per_gaussian",
    "psnr",
    "trained_psnr",
    "file",
    "files",
    "seconds",
    "worker",
    "started_at",
    "finished_at",
    "attempts",
    "options",
)


def finished_record(task: Task, out_dir: Path) -> dict | None:
    """The record of an earlier run of exactly this task whose output is still there, else None."""
    record = read_record(out_dir, task.key)
    if record is None or record.get("status") != "ok":
        return None  # no need to look at the input
    inputs = fingerprint(task.source, record.get("inputs"))  # hashes only files whose size or mtime changed
    return record if is_finished(record, inputs, task.options, task.output) else None


def _failed(task: Task, error: BaseException) -> dict:
    message = " ".join(str(error).split()) or type(error).__name__
    return {"key": task.key, "kind": task.kind, "name": task.name, "status": "failed", "error": message}


class _Progress:
    """One rich progress bar over the tasks: done, failed, skipped, running, and the time left."""

    def __init__(self, console, total: int):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.counts = {"ok": 0, "failed": 0, "skipped": 0}
        self.running: set[str] = set()
        self.ended_keys: set[str] = set()
        self.bar = Progress(
            TextColumn("batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=console is None,
        )
        self.task = self.bar.add_task("batch", total=total, state=self._state())

    def _state(self) -> str:
        c = self.counts
        return f"done {c['ok']} failed {c['failed']} skipped {c['skipped']} running {len(self.running)}"

    def started(self, key: str) -> None:
        if key not in self.ended_keys:  # a worker's event can arrive after the task's result
            self.running.add(key)
            self.bar.update(self.task, state=self._state())

    def ended(self, key: str, status: str) -> None:
        self.ended_keys.add(key)
        self.running.discard(key)
        self.counts[status] += 1
        self.bar.update(self.task, advance=1, state=self._state())


def run_batch(client, tasks: list[Task], out_dir: Path, *, retries: int = 2, resources=None, console=None) -> dict:
    """Run ``tasks`` on ``client``'s cluster; return (and write to ``OUT_DIR/batch.json``) the summary.

    ``retries``: extra attempts of a task whose command was killed; ``resources``: Dask worker resources each
    task claims (e.g. ``{"GPU": 1}``); ``console``: a rich console for the progress bar (None: silent).
    """
    from distributed import as_completed

    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = _Progress(console, len(tasks))
    rows: dict[str, dict] = {}
    todo = []
    for task in tasks:
        record = finished_record(task, out_dir)
        if record is None:
            todo.append(task)
        else:
            rows[task.key] = {**record, "status": "skipped"}
            progress.ended(task.key, "skipped")

    # Keys get a per-run suffix: a rerun on the same cluster must not be answered from the last run's results.
    run_id = uuid.uuid4().hex[:8]
    by_key = {f"{t.key}-{run_id}": t for t in todo}
    topic_handler = lambda event: progress.started(event[1]["key"])  # noqa: E731 (event = (time, message))
    client.subscribe_topic(EVENT_TOPIC, topic_handler)
    with progress.bar:
        try:
            futures = [
                client.submit(run_task, t, str(out_dir), key=k, retries=retries, pure=False, resources=resources)
                for k, t in by_key.items()
            ]
            for future in as_completed(futures):
                task = by_key[future.key]
                try:
                    row = future.result()
                except Exception as exc:  # noqa: BLE001 (a crashed task or a lost worker is a row, not an abort)
                    row = _failed(task, exc)
                rows[task.key] = row
                progress.ended(task.key, row["status"])
        finally:
            client.unsubscribe_topic(EVENT_TOPIC)
    # Every task has ended: what is left in the staging area is debris of killed attempts.
    shutil.rmtree(staging_dir(out_dir), ignore_errors=True)

    ordered = [rows[t.key] for t in tasks]
    summary = {
        "out_dir": str(out_dir),
        "scheduler": client.scheduler.address,
        "workers": len(client.scheduler_info()["workers"]),
        "wall_seconds": time.perf_counter() - start,
        "counts": dict(progress.counts),
        "tasks": [{f: row.get(f) for f in SUMMARY_FIELDS if f in row} for row in ordered],
    }
    with atomic_output(out_dir / "batch.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
