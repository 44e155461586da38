"""Connect to the Dask cluster a batch runs on: an existing scheduler, or a local cluster sized to the machine.

Local clusters bind 127.0.0.1 only. Their workers are processes with one task thread each (a task is a child
process, so the worker itself is idle; processes let a dead worker be replaced without taking the others down),
and every task gets ``cores // workers`` threads so torch never oversubscribes the cores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
from collections.abc import Iterator

from splatpack.errors import SplatpackError


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    address: str
    workers: int
    gpu_workers: int
    """Workers that advertise a ``GPU`` resource."""
    dashboard: str | None
    """Dashboard address, when the scheduler serves one (needs bokeh)."""
    local: bool
    threads_per_task: int | None
    """Threads each task may use (local clusters); None: the workers' own environment decides."""


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _dashboard(client, local: bool) -> str | None:
    # The scheduler's HTTP server always runs; its dashboard pages exist only where bokeh is installed.
    if local and importlib.util.find_spec("bokeh") is None:
        return None
    return client.dashboard_link if "dashboard" in client.scheduler_info().get("services", {}) else None


def _info(client, *, local: bool, threads: int | None) -> ClusterInfo:
    workers = client.scheduler_info()["workers"].values()
    gpus = sum(1 for w in workers if w.get("resources", {}).get("GPU", 0) >= 1)
    return ClusterInfo(client.scheduler.address, len(workers), gpus, _dashboard(client, local), local, threads)


@contextlib.contextmanager
def open_cluster(
    scheduler: str | None = None,
    workers: int | None = None,
    *,
    gpus: int = 0,
    threads_per_task: int | None = None,
    retries: int = 2,
) -> Iterator[tuple[object, ClusterInfo]]:
    """Yield ``(client, info)``; a local cluster started here is closed on exit.

    ``scheduler``: address of an existing scheduler (``tcp://host:8786``); otherwise a local cluster of
    ``workers`` processes (default: one per GPU given in ``gpus``, else one per core), each advertising
    ``GPU=1`` when ``gpus``. ``retries``: how many worker deaths a task survives (the local scheduler's
    ``allowed-failures``; a remote scheduler keeps its own setting).
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise SplatpackError(f"cannot reach the Dask scheduler: {exc}", scheduler) from None
        with client:
            yield client, _info(client, local=False, threads=threads_per_task)
        return

    cores = cpu_count()
    n = workers or gpus or cores
    if n < 1:
        raise SplatpackError(f"--workers must be at least 1 (got {n})")
    threads = threads_per_task or max(1, cores // n)
    settings = {
        "distributed.scheduler.allowed-failures": retries,
        # Forked workers start in ~0.05 s; spawned ones re-import distributed and cost ~1 s of every batch. The
        # client process is lean (no torch, no CUDA) and tasks exec fresh interpreters, so forking is safe here.
        "distributed.worker.multiprocessing-method": "fork",
    }
    # The settings stay in force while the cluster lives: a nanny reads them again when it restarts a lost worker.
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.CRITICAL,  # a lost worker is reported in the batch's table, not as tracebacks
            resources={"GPU": 1} if gpus else None,
            # Workers import the task code while the cluster starts, not in the first task.
            preload=["splatpack.batch.worker"],
        )
        with cluster, Client(cluster) as client:
            yield client, _info(client, local=True, threads=threads)
