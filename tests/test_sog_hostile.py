"""Fuzzing the SOG containers: folders (meta.json and textures edited, cut or replaced) and zip bundles (bytes
edited anywhere, members' stored sizes falsified). Anything that reads must be a valid scene; everything else
must be one ``SplatpackError`` naming the file. Bounded: a fixed number of derandomized examples each."""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splatpack.errors import SplatpackError
from splatpack.io import sog
from splatpack.scene import Splats

_BASE = Path(tempfile.mkdtemp(prefix="sog-fuzz-"))
sog.write(Splats.random(150, 1, seed=8), _BASE / "base.sog.d", sort="none")
sog.write(Splats.random(150, 1, seed=8), _BASE / "base.sog", sort="none")
_META = json.loads((_BASE / "base.sog.d" / "meta.json").read_text())
_MEMBERS = sorted(p.name for p in (_BASE / "base.sog.d").iterdir())
FUZZ = settings(max_examples=80, deadline=5000, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

# JSON values a hostile meta.json may put anywhere: huge, negative, wrong types, deep nesting.
_JSON_VALUES = st.one_of(
    st.integers(-(2**64), 2**64),
    st.sampled_from([0, 1, 2**31, 16383**2, 10**12, -1, None, True, "x", [], {}, [[[[1]]]], 1e308, float("nan")]),
    st.lists(st.integers(-5, 300), max_size=260),
)


def _paths(obj, prefix=()):
    """Every key path in a JSON object."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))


_META_PATHS = sorted(_paths(_META), key=str)


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _must_read_cleanly(path: Path) -> None:
    try:
        s = sog.read(path)
    except SplatpackError as exc:
        assert str(path) in str(exc)
        return
    s.validate()  # anything that decodes is a finite, well-formed scene


@pytest.mark.filterwarnings("ignore")
@FUZZ
@given(
    edits=st.lists(st.tuples(st.sampled_from(_META_PATHS), _JSON_VALUES), max_size=3),
    member=st.sampled_from(_MEMBERS),
    cut=st.one_of(st.none(), st.integers(0, 4000)),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=4),
)
def test_fuzzed_folders_raise_only_splatpack_errors(edits, member, cut, flips):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "f.sog.d"
        shutil.copytree(_BASE / "base.sog.d", folder)
        meta = json.loads(json.dumps(_META))
        for key_path, value in edits:
            try:
                _set(meta, key_path, value)
            except (KeyError, TypeError, IndexError):
                pass  # an earlier edit replaced a parent: fine, the file is hostile either way
        (folder / "meta.json").write_text(json.dumps(meta))
        data = bytearray((folder / member).read_bytes())
        for at, value in flips:
            data[at % len(data)] = value
        if cut is not None:
            data = data[: cut % (len(data) + 1)]
        (folder / member).write_bytes(bytes(data))
        _must_read_cleanly(folder)
        _must_read_cleanly(folder / "meta.json")


@pytest.mark.filterwarnings("ignore")
@FUZZ
@given(
    flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(0, 1 << 20)),
    sizes=st.lists(st.tuples(st.integers(0, 10), st.integers(0, 2**32 - 1)), max_size=2),
)
def test_fuzzed_bundles_raise_only_splatpack_errors(flips, cut, sizes):
    data = bytearray((_BASE / "base.sog").read_bytes())
    # Falsify the stored sizes of some central-directory records (uncompressed size at +24, compressed at +20).
    records = [i for i in range(len(data) - 4) if data[i : i + 4] == b"PK\x01\x02"]
    for which, value in sizes:
        at = records[which % len(records)]
        struct.pack_into("<I", data, at + (24 if value % 2 else 20), value)
    tail = len(data) - 512  # bias edits towards the end, where the directory lives
    for at, value in flips:
        data[(at % len(data)) if at % 3 else max(0, tail + at % 512)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.sog"
        path.write_bytes(bytes(data))
        _must_read_cleanly(path)


def test_unrelated_files_beside_meta_json_do_not_raise_the_expansion_limit(tmp_path):
    """Only meta.json and the files it names count as what a folder SOG stores."""
    import numpy as np
    from test_hostile_inputs import TEXTURES, _meta, _webp

    tex = _webp(np.zeros((1024, 1024, 4), np.uint8))  # 1M Gaussians: 20 MiB decoded from ~3 KB
    for name in TEXTURES:
        (tmp_path / name).write_bytes(tex)
    (tmp_path / "meta.json").write_text(json.dumps(_meta(1024 * 1024)))
    (tmp_path / "holiday.mp4").write_bytes(bytes(1 << 20))  # counted, it would allow 64 MiB
    with pytest.raises(SplatpackError, match="refusing a likely decompression bomb"):
        sog.read(tmp_path / "meta.json")
