"""``splatpack batch`` on a real 2-worker Dask cluster bound to 127.0.0.1.

One cluster serves the whole module (starting one costs seconds). Failures, reruns, a worker killed by PID
while its task runs, and two tiny nerfstudio trainings all go through it; the CLI reaches it with --scheduler.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import splatpack.io as sio
from splatpack.batch.cluster import open_cluster
from splatpack.batch.engine import run_batch
from splatpack.batch.records import DIGEST, fingerprint, is_finished, staging_dir
from splatpack.batch.tasks import compress_tasks, find_inputs, train_tasks
from splatpack.cli import main
from splatpack.errors import SplatpackError
from splatpack.scene import Splats

N = 1500  # Gaussians per small scene
OPTIONS = {"sh_degree": None, "spz_version": 4}


@pytest.fixture(scope="module")
def cluster():
    with open_cluster(workers=2, retries=2) as (client, info):
        assert info.local and info.workers == 2 and info.address.startswith("tcp://127.0.0.1:")
        yield client


def _scenes(folder: Path, count: int, *, corrupt: str | None = None) -> dict[str, Splats]:
    """``count`` small PLY scenes under ``folder`` (some in a subfolder), plus an optional truncated one."""
    scenes = {}
    for i in range(count):
        rel = f"s{i}.ply" if i % 2 else f"sub/s{i}.ply"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        scenes[rel] = Splats.random(N, 1, seed=i)
        sio.write(scenes[rel], folder / rel)
    if corrupt:
        data = (folder / next(iter(scenes))).read_bytes()
        (folder / corrupt).write_bytes(data[: len(data) // 3])
    return scenes


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _cli(*args: str) -> int:
    return main(["batch", "compress", *args, "--quiet"])


def test_compress_failure_rerun_and_change(cluster, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    scenes = _scenes(src, 4, corrupt="broken.ply")
    address = cluster.scheduler.address

    assert _cli(str(src), str(out), "--format", "spz", "--scheduler", address) == 2
    summary = json.loads((out / "batch.json").read_text())
    assert summary["counts"] == {"ok": 4, "failed": 1, "skipped": 0}
    failed = [t for t in summary["tasks"] if t["status"] == "failed"]
    assert [t["name"] for t in failed] == ["broken.ply"]
    assert "broken.ply" in failed[0]["error"] and "\n" not in failed[0]["error"]
    # Exactly the four outputs (mirroring the tree), the records and batch.json: no partial or temporary file.
    outputs = {rel.replace(".ply", ".spz") for rel in scenes}
    assert _files(out) - {"batch.json"} - {p for p in _files(out) if p.startswith(".batch/records/")} == outputs
    assert not staging_dir(out).exists()
    for rel, scene in scenes.items():
        decoded = sio.read(out / rel.replace(".ply", ".spz"))
        assert len(decoded) == N
        assert torch.allclose(decoded.means, scene.means, atol=1e-2)  # SPZ's 12-bit fixed-point positions
        row = next(t for t in summary["tasks"] if t["name"] == rel)
        size = (out / rel.replace(".ply", ".spz")).stat().st_size
        assert row["bytes"] == size and row["gaussians"] == N and row["bytes_per_gaussian"] == size / N

    mtimes = {rel: (out / rel).stat().st_mtime_ns for rel in outputs}
    assert _cli(str(src), str(out), "--format", "spz", "--scheduler", address) == 2  # the broken file still fails
    summary = json.loads((out / "batch.json").read_text())
    assert summary["counts"] == {"ok": 0, "failed": 1, "skipped": 4}
    assert {rel: (out / rel).stat().st_mtime_ns for rel in outputs} == mtimes

    # A changed input is redone, the rest skipped; the corrupt file, now removed, is no longer a task.
    sio.write(Splats.random(N, 1, seed=99), src / "s1.ply")
    (src / "broken.ply").unlink()
    assert _cli(str(src), str(out), "--format", "spz", "--scheduler", address) == 0
    summary = json.loads((out / "batch.json").read_text())
    assert summary["counts"] == {"ok": 1, "failed": 0, "skipped": 3}
    assert [t["name"] for t in summary["tasks"] if t["status"] == "ok"] == ["s1.ply"]


def test_records_compare_contents_and_options(tmp_path):
    path = tmp_path / "a.ply"
    path.write_bytes(b"one")
    first = fingerprint(path)
    record = {"status": "ok", "options": {"format": "spz"}, "inputs": first}
    assert is_finished(record, first, {"format": "spz"}, path)
    assert not is_finished(record, first, {"format": "sog"}, path)  # other options: redo
    assert not is_finished(record, first, {"format": "spz"}, tmp_path / "missing.spz")  # output gone: redo
    path.write_bytes(b"two")
    assert not is_finished(record, fingerprint(path, first), {"format": "spz"}, path)  # other contents: redo
    # A file whose size and mtime match its previous entry keeps that entry's hash (it is not read again).
    now = fingerprint(path)
    assert fingerprint(path, {"a.ply": {**now["a.ply"], DIGEST: "kept"}})["a.ply"][DIGEST] == "kept"
    # A record of an older digest (SHA-256) never matches: the task is redone, not skipped on a missing field.
    old = {"a.ply": {"size": 3, "mtime_ns": 0, "sha256": "00"}}
    assert not is_finished({**record, "inputs": old}, now, {"format": "spz"}, path)


def test_inputs_glob_and_output_names(tmp_path):
    _scenes(tmp_path / "in", 3)
    root, files = find_inputs(str(tmp_path / "in" / "**" / "*.ply"), tmp_path / "out")
    assert root == tmp_path / "in" and len(files) == 3
    tasks = compress_tasks(str(tmp_path / "in"), tmp_path / "out", "sog", OPTIONS, threads=1)
    assert sorted(t.output.relative_to(tmp_path / "out").as_posix() for t in tasks) == [
        "s1.sog",
        "sub/s0.sog",
        "sub/s2.sog",
    ]
    with pytest.raises(SplatpackError, match="no splat files"):
        find_inputs(str(tmp_path / "nothing*.ply"), tmp_path / "out")
    with pytest.raises(SplatpackError, match="inside OUT_DIR"):
        compress_tasks(str(tmp_path / "in"), tmp_path / "in", "ply", OPTIONS, threads=1)


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_worker_task_reruns(cluster, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _scenes(src, 3)
    tasks = compress_tasks(str(src), out, "spz", OPTIONS, threads=1)
    result = {}
    runner = threading.Thread(target=lambda: result.update(run_batch(cluster, tasks, out, retries=2)))
    runner.start()
    try:
        # A task is running once its attempt counter exists; its command is then starting up (seconds).
        started = _wait_for(
            lambda: [t for t in tasks if (staging_dir(out) / t.key / "attempts").exists()], 120, "a task to start"
        )
        victim = started[0]

        def worker_of_victim():
            return next((w for w, keys in cluster.processing().items() if any(victim.key in k for k in keys)), None)

        address = _wait_for(worker_of_victim, 30, "the scheduler to place the task")
        pid = cluster.run(os.getpid, workers=[address])[address]
        assert not victim.output.exists()
        os.kill(pid, signal.SIGKILL)  # a process of the cluster this module started
    finally:
        runner.join(timeout=300)
    assert not runner.is_alive()
    assert result["counts"] == {"ok": 3, "failed": 0, "skipped": 0}
    row = next(t for t in result["tasks"] if t["name"] == victim.name)
    # The killed attempt was counted and the task ran again (on a loaded machine Dask may also reschedule a task
    # whose worker missed heartbeats, so more than one rerun is allowed).
    assert row["attempts"] >= 2
    assert sio.read(victim.output).means.shape == (N, 3)
    assert not staging_dir(out).exists()
    assert not [p for p in _files(out) if p.endswith(".tmp")]


_LIFELINE_PARENT = """
import os, subprocess, sys
child = subprocess.Popen(
    [sys.executable, "-c", "from splatpack.batch.lifeline import bind_to_parent; bind_to_parent(); "
     "print('armed', flush=True); import time; time.sleep(120)"],
    env={**os.environ, "SPLATPACK_PARENT_PID": str(os.getpid())}, stdout=subprocess.PIPE, text=True,
)
assert child.stdout.readline() == "armed\\n"
print(child.pid, flush=True)
child.wait()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"  # a zombie has died (its reaper may not have looked yet)
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_task_command_dies_with_the_process_that_started_it():
    parent = subprocess.Popen([sys.executable, "-c", _LIFELINE_PARENT], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        os.kill(parent.pid, signal.SIGKILL)  # the worker dies mid-task
        parent.wait(timeout=30)
        _wait_for(lambda: not _alive(child), 30, "the orphaned command to be killed")
    finally:
        parent.kill()
    # A command whose named parent is already gone when it starts exits at once instead of running unwatched.
    gone = subprocess.run(
        [sys.executable, "-c", "from splatpack.batch.lifeline import bind_to_parent; bind_to_parent(); print('ran')"],
        env={**os.environ, "SPLATPACK_PARENT_PID": "1"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert gone.returncode == 128 + signal.SIGKILL and gone.stdout == ""


def test_unregistered_method_is_one_line(tmp_path):
    with pytest.raises(SplatpackError, match="'splatpack-nowhere' is not registered") as err:
        train_tasks([tmp_path], tmp_path / "out", "splatpack-nowhere", [], threads=1)
    assert "\n" not in str(err.value) and "splatpack-base" in str(err.value)  # lists what is registered


# The fast schedule of tests/test_nerfstudio_method.py, cut to 30 steps, images shrunk 4x, SPZ export only.
TINY_TRAINING = [
    "--max-num-iterations",
    "30",
    "--steps-per-eval-image",
    "1000000",
    "--steps-per-eval-all-images",
    "1000000",
    "--steps-per-save",
    "1000000",
    "--pipeline.datamanager.camera-res-scale-factor",
    "0.25",
    "--pipeline.model.num-downscales",
    "0",
    "--pipeline.model.warmup-length",
    "10",
    "--pipeline.model.refine-every",
    "10",
    "--pipeline.model.stop-split-at",
    "20",
    "--pipeline.model.sh-degree-interval",
    "10",
    "--pipeline.model.export-formats",
    "spz",  # one export: each is rendered from the 40 held-out views for the report
]


@pytest.mark.slow
def test_train_two_demo_scenes(cluster, demo_scene, tmp_path):
    pytest.importorskip("nerfstudio")
    data = []
    for name in ("left", "right"):
        shutil.copytree(demo_scene, tmp_path / name)
        data.append(tmp_path / name)
    out = tmp_path / "runs"
    tasks = train_tasks(data, out, "splatpack-base", TINY_TRAINING, threads=1)
    summary = run_batch(cluster, tasks, out, retries=0)
    assert summary["counts"] == {"ok": 2, "failed": 0, "skipped": 0}, summary
    for row, task in zip(summary["tasks"], tasks):
        export = task.output / "splatpack_export"
        report = json.loads((export / "report.json").read_text())
        assert (task.output / "config.yml").exists()
        assert len(sio.read(export / "scene.spz")) == report["num_gaussians"] == row["gaussians"] > 0
        # The row gives the export's size and held-out PSNR from the method's own report; 30 steps lift the
        # seed cloud's ~11 dB (tests/test_nerfstudio_method.py) to ~13.3 dB (measured).
        assert row["file"] == "scene.spz" and row["bytes"] == report["files"]["scene.spz"]["bytes"]
        assert row["psnr"] == report["files"]["scene.spz"]["psnr"] > 12.0
