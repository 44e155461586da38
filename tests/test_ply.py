"""Standard 3DGS PLY: bit-exact round trips, the file layout, peers' files (gsplat) and clear errors."""

import errno
import os

import gsplat
import numpy as np
import plyfile
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splatpack.errors import SplatpackError
from splatpack.io import ply
from splatpack.scene import SH_REST_COUNT, Splats

NORMALS = ["nx", "ny", "nz"]
TAIL = ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


def standard_names(degree, normals=True):
    head = ["x", "y", "z", *(NORMALS if normals else []), "f_dc_0", "f_dc_1", "f_dc_2"]
    return head + [f"f_rest_{i}" for i in range(3 * SH_REST_COUNT[degree])] + TAIL


def columns(s: Splats, normals=True) -> dict[str, np.ndarray]:
    """Each PLY property of ``s``, built one by one from the format's definition (independent of ply.write)."""
    k = s.shN.shape[1]
    cols = {name: s.means[:, i] for i, name in enumerate("xyz")}
    if normals:
        cols.update({n: torch.zeros(len(s), dtype=s.dtype) for n in NORMALS})
    cols.update({f"f_dc_{c}": s.sh0[:, 0, c] for c in range(3)})
    # channel-major: all K coefficients of R, then of G, then of B
    cols.update({f"f_rest_{c * k + j}": s.shN[:, j, c] for c in range(3) for j in range(k)})
    cols["opacity"] = s.opacity_logits
    cols.update({f"scale_{i}": s.log_scales[:, i] for i in range(3)})
    cols.update({f"rot_{i}": s.quats[:, i] for i in range(4)})
    return {name: t.numpy() for name, t in cols.items()}


def write_ply(path, cols, *, names=None, types=None, text=False, byte_order="<", elements=()):
    """A PLY written by plyfile from named columns (``types`` overrides a property's numpy type)."""
    names = names or list(cols)
    types = types or {}
    n = len(cols[names[0]])
    rec = np.empty(n, dtype=[(name, types.get(name, "f4")) for name in names])
    for name in names:
        rec[name] = cols[name]
    els = [plyfile.PlyElement.describe(rec, "vertex")]
    for position, element in elements:
        els.insert(position, element)
    plyfile.PlyData(els, text=text, byte_order=byte_order).write(str(path))
    return path


def assert_same(a: Splats, b: Splats):
    for f in Splats.FIELDS:
        assert getattr(a, f).dtype == getattr(b, f).dtype == torch.float32, f
        assert torch.equal(getattr(a, f), getattr(b, f)), f


def fails(path, *phrases):
    """read(path) raises one SplatpackError naming the file and the problem, with no chained library error."""
    with pytest.raises(SplatpackError) as info:
        ply.read(path)
    err = info.value
    msg = str(err)
    assert os.path.basename(path) in msg and "\n" not in msg, msg
    for phrase in phrases:
        assert phrase in msg, msg
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), repr(err.__context__)
    return msg


@pytest.fixture
def good(tmp_path):
    s = Splats.random(50, 1, seed=7)
    return s, write_ply(tmp_path / "good.ply", columns(s))


# ------------------------------------------------------------------ round trips and layout


@pytest.mark.parametrize("normals", [False, True])
@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_round_trip_bit_exact_and_standard_layout(tmp_path, degree, normals):
    """Without normals by default (as splat-transform writes), with the zero nx ny nz when asked; both read back
    bit for bit, as torch tensors and as numpy arrays."""
    s = Splats.random(300, degree, seed=degree)
    path = tmp_path / "scene.ply"
    ply.write(s, path, **({"normals": True} if normals else {}))
    assert_same(ply.read(path), s)
    as_numpy = ply.read(path, arrays="numpy")
    assert as_numpy.is_numpy and all(np.array_equal(getattr(as_numpy, f), getattr(s, f).numpy()) for f in s.FIELDS)
    data = plyfile.PlyData.read(str(path))
    assert data.byte_order == "<" and not data.text and [e.name for e in data.elements] == ["vertex"]
    vertex = data["vertex"].data
    assert list(vertex.dtype.names) == standard_names(degree, normals)
    assert all(vertex.dtype[name] == np.dtype("<f4") for name in vertex.dtype.names)
    for name, expected in columns(s, normals).items():
        assert np.array_equal(vertex[name], expected), name
    assert os.path.getsize(path) == len(data.header) + 1 + 300 * 4 * len(standard_names(degree, normals))
    assert ply.describe(path) == {
        "format": "ply",
        "encoding": "binary_little_endian",
        "vertices": 300,
        "sh_degree": degree,
        "properties": standard_names(degree, normals),
    }
    assert os.listdir(tmp_path) == ["scene.ply"]


def test_float64_scene_is_written_as_float32(tmp_path):
    s = Splats.random(100, 3, seed=3, dtype=torch.float64)
    ply.write(s, tmp_path / "d.ply")
    assert_same(ply.read(tmp_path / "d.ply"), s.to(torch.float32))


def test_f_rest_is_channel_major_in_the_file(tmp_path):
    n, k = 4, 8  # SH degree 2
    cols = {name: np.zeros(n, np.float32) for name in standard_names(2)}
    cols["rot_0"][:] = 1
    for i in range(3 * k):
        cols[f"f_rest_{i}"] = 1000 * np.arange(n, dtype=np.float32) + i
    s = ply.read(write_ply(tmp_path / "hand.ply", cols))
    assert s.shN.shape == (n, k, 3)
    for r in range(n):
        for j in range(k):
            for c in range(3):
                assert s.shN[r, j, c] == 1000 * r + c * k + j


def test_ascii_big_endian_and_double_files(tmp_path, good):
    s, _ = good
    cols = columns(s)
    assert_same(ply.read(write_ply(tmp_path / "be.ply", cols, byte_order=">")), s)
    ascii_path = write_ply(tmp_path / "ascii.ply", cols, text=True)
    assert_same(ply.read(ascii_path), s)
    assert ply.describe(ascii_path)["encoding"] == "ascii"
    crlf = tmp_path / "crlf.ply"
    crlf.write_bytes(ascii_path.read_bytes().replace(b"\n", b"\r\n"))
    assert_same(ply.read(crlf), s)
    doubles = s.to(torch.float64).map(lambda t: t + 1e-9)  # values that need rounding to float32
    wide = write_ply(tmp_path / "f8.ply", columns(doubles), types={n: "f8" for n in cols})
    assert_same(ply.read(wide), doubles.to(torch.float32))


def test_extra_properties_shuffled_order_and_other_elements(tmp_path, good):
    s, _ = good
    cols = columns(s)
    cols["red"] = np.arange(50) % 256
    cols["confidence"] = np.full(50, np.nan)  # not a 3DGS field: NaN there is nobody's business
    names = list(cols)
    np.random.default_rng(0).shuffle(names)
    camera = np.array([(1.0, 2.0, 3)], dtype=[("fx", "f8"), ("fy", "f8"), ("id", "u1")])
    face = np.array([([0, 1, 2],)], dtype=[("vertex_indices", "O")])
    elements = [(0, plyfile.PlyElement.describe(camera, "camera")), (2, plyfile.PlyElement.describe(face, "face"))]
    types = {"red": "u1", "confidence": "f8", "x": "f8"}
    for text in (False, True):
        path = write_ply(tmp_path / f"extra{text}.ply", cols, names=names, types=types, text=text, elements=elements)
        assert_same(ply.read(path), s)
        assert ply.describe(path)["properties"] == names


@pytest.mark.parametrize("degree", [0, 3])
def test_gsplat_exporter_files_read_back_exactly(tmp_path, degree):
    s = Splats.random(200, degree, seed=11)
    path = tmp_path / "gsplat.ply"
    # gsplat takes the raw parameters (it applies exp/sigmoid only for its .splat output) and shN as (N, K, 3).
    gsplat.export_splats(
        means=s.means, scales=s.log_scales, quats=s.quats, opacities=s.opacity_logits,
        sh0=s.sh0, shN=s.shN, format="ply", save_to=str(path),
    )  # fmt: skip
    assert "nx" not in ply.describe(path)["properties"]  # no normals in gsplat's files
    assert_same(ply.read(path), s)


def test_sniff(tmp_path, good):
    _, path = good
    assert ply.sniff(path, path.read_bytes()[:4096])
    assert not ply.sniff(path, b"PK\x03\x04")
    # a header longer than the bytes given: sniff reads the rest of the header from the file
    long = tmp_path / "long.ply"
    long.write_bytes(path.read_bytes().replace(b"ply\n", b"ply\n" + b"comment padding\n" * 400, 1))
    assert ply.sniff(long, long.read_bytes()[:4096])
    assert_same(ply.read(long), ply.read(path))
    compressed = compressed_ply(tmp_path)
    assert not ply.sniff(compressed, compressed.read_bytes()[:4096])
    points = tmp_path / "points.ply"
    write_ply(points, {"x": np.zeros(3), "y": np.zeros(3), "z": np.zeros(3)})
    assert not ply.sniff(points, points.read_bytes())


def test_sniff_rejects_real_compressed_ply(shared_data):
    path = shared_data / "splats" / "biker.compressed.ply"
    assert not ply.sniff(path, path.read_bytes()[:4096])
    fails(path, "compressed PLY")


def compressed_ply(tmp_path):
    chunk = np.zeros(1, dtype=[(n, "f4") for n in ("min_x", "max_x")])
    vertex = np.zeros(
        3, dtype=[(n, "u4") for n in ("packed_position", "packed_rotation", "packed_scale", "packed_color")]
    )
    path = tmp_path / "c.compressed.ply"
    plyfile.PlyData([plyfile.PlyElement.describe(chunk, "chunk"), plyfile.PlyElement.describe(vertex, "vertex")]).write(
        str(path)
    )
    return path


# ------------------------------------------------------------------ bad files


def edit_header(path, old: bytes, new: bytes, out_name="bad.ply"):
    data = path.read_bytes()
    end = data.index(b"end_header\n")
    assert old in data[:end]
    out = path.with_name(out_name)
    out.write_bytes(data[:end].replace(old, new, 1) + data[end:])
    return out


def test_not_a_ply(tmp_path):
    path = tmp_path / "photo.ply"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    fails(path, "not a PLY file")
    empty = tmp_path / "empty.ply"
    empty.write_bytes(b"")
    fails(empty, "not a PLY file")


def test_missing_required_properties(tmp_path, good):
    s, _ = good
    cols = columns(s)
    del cols["opacity"], cols["rot_3"]
    fails(write_ply(tmp_path / "norot.ply", cols), "lacks required properties opacity, rot_3")


def test_truncated_binary(tmp_path, good):
    _, path = good
    cut = tmp_path / "cut.ply"
    cut.write_bytes(path.read_bytes()[:-10])
    fails(cut, "truncated", "declares 50 vertices", "room for 49")


def test_vertex_count_far_beyond_file_size(tmp_path, good):
    _, path = good
    huge = edit_header(path, b"element vertex 50", b"element vertex 1000000000000")
    fails(huge, "truncated", "declares 1000000000000 vertices", "room for 50")
    ascii_path = write_ply(tmp_path / "a.ply", columns(good[0]), text=True)
    fails(edit_header(ascii_path, b"element vertex 50", b"element vertex 1000000000000"), "declares 1000000000000")


def test_nan_and_inf_values_are_counted_per_field(tmp_path, good):
    s, _ = good
    cols = columns(s)
    cols["opacity"][[1, 5, 9]] = np.nan
    cols["x"][3] = -np.inf
    cols["f_rest_4"][0] = np.inf
    fails(write_ply(tmp_path / "nan.ply", cols), "NaN/Inf values in 5 entries", "x (1)", "opacity (3)", "f_rest_4 (1)")


def test_no_vertex_element(tmp_path, good):
    _, path = good
    fails(edit_header(path, b"element vertex", b"element points"), "no 'vertex' element", "'points'")


def test_zero_vertices(tmp_path, good):
    s, _ = good
    path = write_ply(tmp_path / "zero.ply", columns(s[torch.zeros(50, dtype=torch.bool)]))
    fails(path, "empty (0 Gaussians)")


def test_unsupported_f_rest_count(tmp_path, good):
    s, _ = good
    cols = columns(s)
    cols["f_rest_9"] = cols["f_rest_0"]
    fails(write_ply(tmp_path / "rest10.ply", cols), "unsupported f_rest count 10")
    del cols["f_rest_9"], cols["f_rest_3"]
    fails(write_ply(tmp_path / "gap.ply", cols), "f_rest properties are not numbered 0..7: missing f_rest_3")


def test_non_float_and_list_properties(tmp_path, good):
    s, _ = good
    cols = columns(s)
    fails(write_ply(tmp_path / "int.ply", cols, types={"opacity": "u1"}), "property opacity has type uchar")
    _, path = good
    fails(edit_header(path, b"property float nx", b"property list uchar float nx"), "list properties (nx)")
    # A list element before the vertices hides where they start in a binary file; ASCII is line-based.
    face = plyfile.PlyElement.describe(np.array([([0, 1, 2],)], dtype=[("vertex_indices", "O")]), "face")
    fails(write_ply(tmp_path / "face_first.ply", cols, elements=[(0, face)]), "element 'face' before it has list")
    assert_same(ply.read(write_ply(tmp_path / "face_first_ascii.ply", cols, text=True, elements=[(0, face)])), s)


@pytest.mark.parametrize(
    "old, new, problem",
    [
        (
            b"element vertex 50",
            b"element vertex fifty",
            "line 3 ('element vertex fifty'): expected 'element <name> <count>'",
        ),
        (b"element vertex 50", b"element vertex -5", "expected 'element <name> <count>'"),
        (b"property float x", b"property float32x x", "unknown property type 'float32x'"),
        (b"property float y", b"property float y extra", "expected 'property <type> <name>'"),
        (b"property float z", b"propertee float z", "unknown keyword 'propertee'"),
        (b"property float z", b"property float x", "property 'x' appears twice"),
        (b"format binary_little_endian 1.0", b"format binary_middle_endian 1.0", "expected 'format ascii|"),
        (b"format binary_little_endian 1.0", b"format binary_little_endian 2.0", "expected 'format ascii|"),
        (b"format binary_little_endian 1.0\n", b"", "no 'format' line"),
        (b"property float x", b"property float \xe9", "non-ASCII"),
    ],
)
def test_malformed_header(good, old, new, problem):
    _, path = good
    fails(edit_header(path, old, new), "malformed PLY header", problem)


def test_header_without_end(tmp_path):
    path = tmp_path / "noend.ply"
    path.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\n")
    fails(path, "malformed PLY header", "no 'end_header' line")


def test_malformed_ascii_values(tmp_path, good):
    s, _ = good
    path = write_ply(tmp_path / "a.ply", columns(s), text=True)
    data = path.read_bytes()
    body = data.index(b"end_header\n") + len(b"end_header\n")
    header_lines = data[:body].count(b"\n")
    lines = data[body:].split(b"\n")

    def variant(name, row, new_line):
        out = tmp_path / name
        out.write_bytes(data[:body] + b"\n".join(lines[:row] + [new_line] + lines[row + 1 :]))
        return out

    words = lines[4].split()
    fails(variant("word.ply", 4, b" ".join(words[:3] + [b"abc"] + words[4:])), f"line {header_lines + 5}", "'abc'")
    fails(variant("short.ply", 7, b" ".join(words[:-2])), f"line {header_lines + 8} has {len(words) - 2} values")
    cut = tmp_path / "cut.ply"
    cut.write_bytes(data[:body] + b"\n".join(lines[:30]) + b"\n")
    fails(cut, "truncated", "declares 50 vertices but the ASCII data holds 30")


def test_compressed_ply_is_pointed_elsewhere(tmp_path):
    fails(compressed_ply(tmp_path), "PlayCanvas compressed PLY", "compressed-ply")


def test_missing_file(tmp_path):
    fails(tmp_path / "nope.ply", "no such file")  # the same words as every other reader


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=2000),
    flips=st.lists(st.tuples(st.integers(min_value=0, max_value=2000), st.integers(0, 255)), max_size=6),
    text=st.booleans(),
)
def test_fuzzed_files_only_raise_splatpack_error(tmp_path, cut, flips, text):
    s = Splats.random(6, 1, seed=1)
    path = write_ply(tmp_path / "fuzz.ply", columns(s), text=text)
    data = bytearray(path.read_bytes())
    for position, value in flips:
        data[position % len(data)] = value
    # cut <= len keeps the whole file for large values half the time
    path.write_bytes(bytes(data[: cut if cut < len(data) else len(data)]))
    try:
        ply.read(path)
    except SplatpackError as err:
        assert path.name in str(err)


# ------------------------------------------------------------------ writing


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, good):
    s, _ = good
    out = tmp_path / "out.ply"
    ply.write(s, out)
    before = out.read_bytes()
    bad = s.clone()
    bad.log_scales[4, 2] = float("nan")
    with pytest.raises(SplatpackError, match=r"out\.ply: log_scales has 1 Gaussian\(s\) with NaN/Inf values"):
        ply.write(bad, out)
    huge = s.to(torch.float64)
    huge.means[0, 0] = 1e300  # finite as float64, infinite as float32
    with pytest.raises(SplatpackError, match="means has 1 Gaussian"):
        ply.write(huge, out)
    with pytest.raises(SplatpackError, match=r"out\.ply: cannot write an empty scene"):
        ply.write(Splats.empty(2), out)
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["good.ply", "out.ply"]
    with pytest.raises(SplatpackError, match="empty scene"):
        ply.write(Splats.empty(), tmp_path / "new.ply")
    with pytest.raises(SplatpackError, match="NaN/Inf"):
        ply.write(bad, tmp_path / "new.ply")
    with pytest.raises(SplatpackError, match="does not exist"):
        ply.write(s, tmp_path / "missing" / "x.ply")
    assert sorted(os.listdir(tmp_path)) == ["good.ply", "out.ply"]


def test_disk_error_mid_write_keeps_the_old_file(tmp_path, good, monkeypatch):
    s, _ = good
    out = tmp_path / "out.ply"
    ply.write(s, out)
    before = out.read_bytes()

    def full_disk(self, stream):
        with open(stream, "wb") as f:
            f.write(b"ply\nformat binary_little_endian 1.0\n")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(plyfile.PlyData, "write", full_disk)
    with pytest.raises(SplatpackError, match=r"out\.ply: cannot write: No space left on device"):
        ply.write(Splats.random(10, 2), out)
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["good.ply", "out.ply"]
