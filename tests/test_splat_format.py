"""antimatter15 ``.splat``: round trip within its 8-bit quantization, splat-transform reading our files, bad files."""

from __future__ import annotations

import math
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from peers.inria_ply import read_ply

from splatpack import io as splat_io
from splatpack.errors import SplatpackError
from splatpack.io import splat
from splatpack.io.values import F32_TINY
from splatpack.scene import SH_C0, Splats

COLOR_TOL = 0.5 / 255 / SH_C0 + 1e-5  # on sh0
ALPHA_TOL = 0.5 / 255 + 1e-6
ROT_TOL = 1e-4  # 1 - |<q, q'>| with 8 bits per component


def scene(n: int = 2000, seed: int = 0) -> Splats:
    s = Splats.random(n, 2, seed=seed)
    s.quats[:30] *= -3.0
    s.sh0[:10] *= 5  # beyond [0, 1] colour: clamped
    return s


def assert_matches(got: Splats, want: Splats, rot_tol: float = ROT_TOL) -> None:
    assert len(got) == len(want) and got.sh_degree == 0
    assert torch.equal(got.means, want.means)
    assert torch.allclose(got.log_scales, want.log_scales, atol=1e-5)
    assert (got.opacities - want.opacities).abs().max() <= ALPHA_TOL
    lo, hi = -0.5 / SH_C0, 0.5 / SH_C0
    assert (got.sh0 - want.sh0.clamp(lo, hi)).abs().max() <= COLOR_TOL
    assert (1 - (got.unit_quats * want.unit_quats).sum(dim=1).abs()).max() <= rot_tol


def test_round_trip(tmp_path):
    s = scene()
    splat.write(s, tmp_path / "a.splat")
    assert (tmp_path / "a.splat").stat().st_size == 32 * len(s)
    got = splat.read(tmp_path / "a.splat")
    assert_matches(got, s)
    assert splat.describe(tmp_path / "a.splat") == {
        "format": "splat",
        "count": 2000,
        "sh_degree": 0,
        "file_bytes": 64000,
    }


def test_splat_transform_reads_ours(splat_transform, tmp_path):
    """splat-transform converts our .splat to a PLY with the same scene (its rotation decode differs from
    antimatter15's by half a step, hence the looser rotation bound)."""
    s = scene(seed=1)
    splat.write(s, tmp_path / "a.splat")
    cmd = [str(splat_transform), "-q", "-w", str(tmp_path / "a.splat"), str(tmp_path / "a.ply")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert_matches(read_ply(tmp_path / "a.ply"), s, rot_tol=2e-3)


def test_detected_by_name_only(tmp_path):
    splat.write(scene(10), tmp_path / "x.splat")
    assert not splat.sniff(tmp_path / "x.splat", (tmp_path / "x.splat").read_bytes()[:4096])
    assert splat_io.detect_format(tmp_path / "x.splat") == "splat"
    assert len(splat_io.read(tmp_path / "x.splat")) == 10


def _file(tmp_path: Path, data: bytes) -> Path:
    (tmp_path / "bad.splat").write_bytes(data)
    return tmp_path / "bad.splat"


def _records(n: int = 4) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        splat.write(scene(n), Path(d) / "a.splat")
        return np.fromfile(Path(d) / "a.splat", splat.RECORD)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda r: b"", "empty file"),
        (lambda r: r.tobytes()[:-5], "size 123 is not a multiple of the 32-byte"),
        (lambda r: r.tobytes() + b"\0", "size 129 is not a multiple"),
    ],
)
def test_bad_sizes(tmp_path, mutate, message):
    with pytest.raises(SplatpackError, match=message) as err:
        splat.read(_file(tmp_path, mutate(_records())))
    assert str(tmp_path / "bad.splat") in str(err.value)


@pytest.mark.parametrize(
    "field,index,value,message",
    [
        ("position", (1, 2), np.nan, "NaN/Inf values in 1 entries: means \\(1\\); --nonfinite drop"),
        ("scale", (3, 1), 0.0, "zero or negative scale \\(first at index 3\\)"),
    ],
)
def test_bad_values(tmp_path, field, index, value, message):
    r = _records().copy()
    r[field][index] = value
    with pytest.raises(SplatpackError, match=message):
        splat.read(_file(tmp_path, r.tobytes()))


def test_nonfinite_values_follow_the_reading_policy(tmp_path):
    r = _records().copy()
    r["position"][1, 2] = np.nan
    r["scale"][2, 0] = np.inf
    path = _file(tmp_path, r.tobytes())
    kept = splat_io.read(path, nonfinite="drop")  # both bad records go, the rest is read as it is
    assert len(kept) == len(r) - 2 and torch.equal(kept.means[0], torch.from_numpy(r["position"][0]))
    clamped = splat_io.read(_file(tmp_path, np.delete(r, 1).tobytes()))  # default clamp: the infinite scale is capped
    assert torch.isfinite(clamped.log_scales).all() and clamped.log_scales[1, 0] == clamped.log_scales.max()


def test_bad_writes_leave_nothing(tmp_path):
    with pytest.raises(SplatpackError, match="zero Gaussians"):
        splat.write(Splats.empty(0), tmp_path / "a.splat")
    s = scene(5)
    s.log_scales[2, 0] = float("inf")
    with pytest.raises(SplatpackError, match="NaN/Inf"):
        splat.write(s, tmp_path / "a.splat")
    assert list(tmp_path.iterdir()) == []


_BASE = _records(8).tobytes()


@settings(max_examples=200, deadline=2000, derandomize=True)
@given(
    cut=st.one_of(st.none(), st.integers(0, len(_BASE))),
    edits=st.lists(st.tuples(st.integers(0, len(_BASE) - 1), st.integers(0, 255)), max_size=8),
)
def test_fuzzed_files_raise_only_splatpack_errors(cut, edits):
    data = bytearray(_BASE)
    for offset, value in edits:
        data[offset] = value
    if cut is not None:
        data = data[:cut]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.splat"
        path.write_bytes(bytes(data))
        try:
            s = splat.read(path)
        except SplatpackError:
            return
    s.validate()
    assert len(s) == len(data) // 32


def test_linear_scale_overflow_is_refused_and_underflow_clamped(tmp_path):
    """exp(log scale) beyond float32 would store inf, which every reader (ours too) refuses: refused at write
    time like any infinite value; an exp that underflows to 0 is clamped to the smallest normal float32."""
    s = Splats.random(10, seed=2)
    s.log_scales[3, 1] = 100.0
    with pytest.raises(SplatpackError, match=r"1 Gaussian\(s\) have a log scale above 88.72.*index 3"):
        splat.write(s, tmp_path / "inf.splat")
    assert not (tmp_path / "inf.splat").exists()
    s.log_scales[3, 1] = -200.0
    splat.write(s, tmp_path / "tiny.splat")
    back = splat.read(tmp_path / "tiny.splat")
    assert torch.isfinite(back.log_scales).all() and abs(float(back.log_scales[3, 1]) - math.log(F32_TINY)) < 1e-3


@pytest.mark.parametrize("ext", ["splat", "spz", "sog"])  # PLY keeps raw parameters, the zero included
def test_every_writer_stores_a_zero_quaternion_as_the_identity(tmp_path, ext):
    import splatpack.io as sio

    s = Splats.random(64, seed=5)
    s.quats[7] = 0.0
    path = tmp_path / f"z.{ext}"
    sio.write(s, path, **({"sort": "none"} if ext == "sog" else {}))
    q = sio.read(path).quats
    assert torch.isfinite(q).all()
    unit = torch.nn.functional.normalize(q[7], dim=0)
    assert abs(float(unit[0]) - 1.0) < 1e-2, unit  # w = 1: the identity
