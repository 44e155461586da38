"""File commands without PyTorch, PLY normals on request, and stage-by-stage progress (issue 15)."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import plyfile
import pytest

import splatpack.io as sio
from splatpack import progress
from splatpack.io import spk
from splatpack.omg.compact import CompactScene
from splatpack.scene import Splats

ROOT = Path(__file__).resolve().parents[1]
# Runs the CLI in a fresh interpreter and says on its last stderr line whether torch got imported.
PROBE = "import sys; from splatpack.cli import main; rc = main(sys.argv[1:]); print('torch', 'torch' in sys.modules, file=sys.stderr); sys.exit(rc)"  # noqa: E501


def cli(*args, probe: bool = False):
    head = [sys.executable, "-c", PROBE] if probe else [sys.executable, "-m", "splatpack.cli"]
    return subprocess.run([*head, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("files")
    scene = Splats.random(2000, sh_degree=2, seed=21)
    out = {"ply": d / "in.ply", "spz": d / "in.spz", "splat": d / "in.splat"}
    for path in out.values():
        sio.write(scene, path)
    out["sog"] = d / "in.sog"
    sio.write(scene, out["sog"], sort="morton")
    out["spk"] = d / "in.spk"
    spk.write_compact(_fields_scene(), out["spk"])
    return out


def _fields_scene() -> CompactScene:
    """An OMG-layout scene (MLP fields, SVQ'd geometry, SH 2) stored in a rotated, shifted, scaled frame: decoding
    it evaluates the fields and rotates the SH bands."""
    import torch

    from splatpack.omg.field_bake import FieldConfig
    from splatpack.omg.fields import AttributeFields
    from splatpack.quant import svq

    torch.manual_seed(0)
    net = AttributeFields(FieldConfig(frequencies=4, hidden=16, sh_rest=8))
    torch.nn.init.normal_(net.view[-1].weight, std=0.1)
    config, weights = net.to_arrays()
    rng = np.random.default_rng(3)
    n = 1500
    quats = rng.normal(size=(n, 4))
    attributes = {
        "log_scales": svq.fit(rng.normal(-3, 0.3, (n, 3)), 1, 64),
        "quats": svq.fit(quats / np.linalg.norm(quats, axis=1, keepdims=True), 2, 64),
        "features": rng.normal(size=(n, 6)),
    }
    c, s = np.cos(0.4), np.sin(0.4)
    return CompactScene(
        rng.normal(size=(n, 3)), attributes, 2, weights, config,
        rotation=[[c, -s, 0], [s, c, 0], [0, 0, 1]], translation=[0.5, 0, -1], scale=1.5,
    )  # fmt: skip


def test_help_does_not_import_torch():
    r = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom splatpack.cli import main\ntry:\n    main(['--help'])\n"
         "except SystemExit:\n    pass\nprint('torch' in sys.modules)"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert r.stdout.strip().endswith("False") and "compress" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["info", "{ply}"],
        ["info", "{spz}", "--json"],
        ["decompress", "{spz}", "{out}.ply"],
        ["decompress", "{sog}", "{out}.ply"],
        ["decompress", "{splat}", "{out}.ply"],
        ["compress", "{ply}", "{out}.spz"],
        ["compress", "{ply}", "{out}.splat"],
        ["compress", "{spz}", "{out}.ply", "--normals"],
        ["transform", "{ply}", "{spz}", "{out}.ply", "-s", "2", "-t", "1", "0", "0", "-B", "-5", "-5", "-5", "5", "5",
         "5", "-V", "opacity,gte,0.2", "-H", "1"],
        ["transform", "{splat}", "{out}.spz", "-r", "90", "0", "0"],
        ["transform", "{ply}", "{out}.ply", "-r", "30", "0", "10"],  # SH degree 2: the bands rotate in numpy
        ["info", "{spk}"],
        ["decompress", "{spk}", "{out}.ply"],  # MLP fields baked in numpy, SH rotated to the data frame
        ["compress", "{spk}", "{out}.spz"],
    ],
)  # fmt: skip
def test_file_commands_run_without_torch(files, tmp_path, argv):
    args = [a.format(**files, out=tmp_path / "out") for a in argv]
    r = cli(*args, probe=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "torch False", r.stderr


def test_numpy_reads_equal_torch_reads(files):
    for path in files.values():  # .spk: the numpy bake, then tensors sharing its arrays
        a, b = sio.read(path), sio.read(path, arrays="numpy")
        assert b.is_numpy and not a.is_numpy
        assert all(np.array_equal(getattr(a, f).numpy(), getattr(b, f)) for f in a.FIELDS), path


def test_normals_only_when_asked(files, tmp_path):
    """PLY output leaves out nx ny nz (as splat-transform does) unless --normals; both read back the same."""
    plain, normals = tmp_path / "plain.ply", tmp_path / "normals.ply"
    assert cli("decompress", files["spz"], plain).returncode == 0
    assert cli("decompress", files["spz"], normals, "--normals").returncode == 0
    names = {p: plyfile.PlyData.read(str(p))["vertex"].data.dtype.names for p in (plain, normals)}
    assert not {"nx", "ny", "nz"} & set(names[plain]) and {"nx", "ny", "nz"} <= set(names[normals])
    assert normals.stat().st_size - plain.stat().st_size == 2000 * 12 + 3 * len("property float nx\n")
    a, b = sio.read(plain, arrays="numpy"), sio.read(normals, arrays="numpy")
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in a.FIELDS)
    moved = tmp_path / "moved.ply"
    assert cli("transform", files["spz"], moved, "-s", "2", "--normals").returncode == 0
    assert {"nx", "ny", "nz"} <= set(plyfile.PlyData.read(str(moved))["vertex"].data.dtype.names)
    for command in ("compress", "transform"):
        r = cli(command, files["ply"], tmp_path / "x.spz", "--normals")
        assert r.returncode == 2 and "--normals applies to PLY output only" in r.stderr


def test_progress_lines_in_a_log_and_quiet(files, tmp_path):
    """Not a terminal: --verbose writes a line per finished stage (SOG's sort, palette and encode too) on stderr;
    --quiet writes only the summary line on stdout; a quick default run writes no progress at all."""
    out = tmp_path / "v.sog"
    r = cli("compress", files["ply"], out, "--sort", "morton", "--preset", "tiny", "--verbose")
    assert r.returncode == 0, r.stderr
    stages = [line.split(":")[1].strip() for line in r.stderr.splitlines() if line.startswith("splatpack: ")]
    assert stages == ["read", "sort", "palette", "encode", "write"], r.stderr
    assert all(" done in " in line for line in r.stderr.splitlines())
    for flag in ("--quiet", None):
        r = cli("compress", files["ply"], tmp_path / "q.spz", *([flag] if flag else []))
        assert r.returncode == 0 and r.stderr == "", r.stderr
        assert len(r.stdout.splitlines()) == 1 and "-> " in r.stdout and "Gaussians" in r.stdout
    r = cli("transform", files["ply"], tmp_path / "t.spz", "-s", "2", "--quiet")
    assert r.returncode == 0 and r.stdout.splitlines() == [
        f"wrote {tmp_path / 't.spz'} (spz): 2,000 Gaussians, SH degree 2"
    ]
    r = cli("compress", files["ply"], tmp_path / "x.spz", "--quiet", "--verbose")
    assert r.returncode == 2 and "contradict" in r.stderr


def test_long_stages_report_progress_and_eta(monkeypatch):
    """In a log, --verbose prints plain lines while a stage runs (here every 0 s) with the share done and an ETA
    from the rate so far, then the stage's time; without --verbose a log gets none."""
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    stream = io.StringIO()
    with progress.reporting("verbose", stream=stream, terminal=False):
        with progress.stage("palette", total=4) as s:
            time.sleep(0.01)
            s.advance()
            s.advance(2)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("splatpack: palette: 25% after ") and ", ETA " in lines[0]
    assert lines[1].startswith("splatpack: palette: 75% after ")
    assert lines[2].startswith("splatpack: palette: done in ") and len(lines) == 3
    silent = io.StringIO()
    with progress.reporting("normal", stream=silent, terminal=False), progress.stage("read", total=2) as s:
        s.advance()
    assert silent.getvalue() == ""


def test_terminal_bars_and_quiet_mode():
    stream = io.StringIO()
    with progress.reporting("verbose", stream=stream, terminal=True):
        with progress.stage("write", total=2) as s:
            s.advance(2)
    assert "write: done in" in stream.getvalue()
    quiet = io.StringIO()
    with progress.reporting("quiet", stream=quiet), progress.stage("read") as s:
        s.advance()
    assert quiet.getvalue() == ""
