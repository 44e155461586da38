"""The ``.spk`` container: bit-for-bit round trips against ``quantize_for_storage``, exact entropy-coded sections,
index coding near the empirical entropy, the CLI on a raw-layout file, and hostile or corrupted files refused in
one ``SplatpackError`` line naming the file."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import zstandard

import splatpack.io as sio
from splatpack.errors import SplatpackError
from splatpack.io import spk
from splatpack.io import spk_codec as codec
from splatpack.omg.compact import CompactScene, SvqCode, codebook_cap
from splatpack.scene import SH_REST_COUNT, Splats

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ("svq-geometry", "all-raw", "fields")


def _svq(rng, n: int, shapes) -> SvqCode:
    books = [rng.normal(size=(k, d)) for k, d in shapes]
    return SvqCode(books, np.stack([rng.integers(0, k, n) for k, _ in shapes], axis=1))


def make_scene(layout: str, n: int, seed: int = 0, sh_degree: int = 2) -> CompactScene:
    """A scene of ``layout``; raw opacity logits hold each row's number, so a test can follow the reordering."""
    rng = np.random.default_rng(seed)
    frame = {"rotation": np.eye(3)[[1, 2, 0]], "translation": [0.5, -2.0, 3.25], "scale": 1.5}
    if layout == "fields":
        attrs = {
            "log_scales": _svq(rng, n, [(64, 1)] * 3),
            "quats": _svq(rng, n, [(512, 2)] * 2),
            "features": _svq(rng, n, [(1024, 2)] * 3),
        }
        weights = {
            "cont.0.weight": rng.normal(size=(64, 99)),
            "cont.0.bias": rng.normal(size=64),
            "dc": rng.normal(size=(3, 16)),
        }
        config = {"width": 64, "frequencies": 16, "heads": ("dc", "opacity")}  # a tuple: JSON gives back a list
        return CompactScene(rng.normal(size=(n, 3)) * 4, attrs, 3, weights, config, **frame)
    geometry = layout == "svq-geometry"
    attrs = {
        "log_scales": _svq(rng, n, [(64, 1)] * 3) if geometry else rng.normal(size=(n, 3)) - 4,
        "quats": _svq(rng, n, [(512, 2)] * 2) if geometry else rng.normal(size=(n, 4)),
        "sh0": rng.normal(size=(n, 3)),
        "opacity_logits": np.arange(n, dtype=np.float32)[:, None],
        "shN": rng.normal(size=(n, 3 * SH_REST_COUNT[sh_degree])) * 0.2,
    }
    return CompactScene(rng.normal(size=(n, 3)) * 4, attrs, sh_degree, **frame)


def assert_same(a: CompactScene, b: CompactScene) -> None:
    assert np.array_equal(a.positions, b.positions) and a.positions.dtype == b.positions.dtype == np.float32
    assert a.attributes.keys() == b.attributes.keys() and a.sh_degree == b.sh_degree
    for name, x in a.attributes.items():
        y = b.attributes[name]
        assert type(x) is type(y), name
        if isinstance(x, SvqCode):
            assert np.array_equal(x.indices, y.indices), name
            assert len(x.codebooks) == len(y.codebooks) and all(map(np.array_equal, x.codebooks, y.codebooks)), name
        else:
            assert np.array_equal(x, y), name
    assert np.array_equal(a.rotation, b.rotation) and np.array_equal(a.translation, b.translation)
    assert a.scale == b.scale and a.field_config == b.field_config
    assert (a.fields is None) == (b.fields is None)
    if a.fields is not None:
        assert list(a.fields) == list(b.fields)
        assert all(
            np.array_equal(a.fields[k], b.fields[k]) and a.fields[k].shape == b.fields[k].shape for k in a.fields
        )


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("positions", ["fp16", "fixed12", "fixed21"])
@pytest.mark.parametrize("n", [0, 1, 2, 3000])
def test_round_trip_is_bit_for_bit(tmp_path, layout, positions, n):
    scene = make_scene(layout, n)
    path = tmp_path / "x.spk"
    spk.write_compact(scene, path, positions=positions)
    stored = spk.quantize_for_storage(scene, positions=positions)
    back = spk.read_compact(path)
    assert_same(stored, back)
    assert len(back) == n
    assert back.field_config == (
        None if layout != "fields" else {"width": 64, "frequencies": 16, "heads": ["dc", "opacity"]}
    )
    assert sio.detect_format(path) == "spk"
    if n == 0:
        with pytest.raises(SplatpackError, match="zero Gaussians"):
            spk.read(path)
    elif layout != "fields":  # these fields are arbitrary arrays: real ones are baked below
        assert torch.equal(spk.read(path).means, stored.to_splats().torch().means)


@pytest.mark.parametrize("positions", ["fp16", "fixed10", "fixed16"])
def test_quantize_for_storage_rounds_and_reorders_consistently(positions):
    """Every stored row is an input row (followed through its opacity = row number): values rounded to fp16,
    positions within half a quantization step, rows in non-decreasing Morton order, codebooks by descending use."""
    scene = make_scene("svq-geometry", 2000, seed=4)
    stored = spk.quantize_for_storage(scene, positions=positions)
    rows = stored.values("opacity_logits")[:, 0].astype(np.int64)
    assert sorted(rows) == list(range(2000))
    for name in ("sh0", "shN", "log_scales", "quats"):
        want = scene.values(name)[rows].astype(np.float16).astype(np.float32)
        assert np.array_equal(stored.values(name), want), name
    for code in (stored.attributes["log_scales"], stored.attributes["quats"]):
        for s, book in enumerate(code.codebooks):
            counts = np.bincount(code.indices[:, s], minlength=len(book))
            assert counts.min() >= 1 and np.all(np.diff(counts) <= 0)
    p, q = scene.positions[rows].astype(np.float64), stored.positions.astype(np.float64)
    if positions == "fp16":
        step = np.spacing(np.abs(p).astype(np.float16)).astype(np.float64)
    else:
        lo, hi = scene.positions.min(0), scene.positions.max(0)
        step = np.broadcast_to((hi - lo) / ((1 << int(positions[5:])) - 1), p.shape)
    assert np.all(np.abs(q - p) <= step / 2 + np.spacing(np.abs(q).astype(np.float32)))  # + float32 rounding
    bits = spk._position_mode(positions)
    cells = spk._fp16_cells(q) if positions == "fp16" else spk._fixed_cells(q, lo, hi, bits)
    assert np.all(np.diff(codec.morton(cells).astype(np.float64)) >= 0)


def test_a_fields_file_bakes_as_its_stored_scene(tmp_path):
    """With real MLP fields: reading bakes the fp16 weights and features exactly as the stored scene does."""
    from splatpack.omg.fields import AttributeFields

    torch.manual_seed(0)
    config, weights = AttributeFields().to_arrays()
    rng = np.random.default_rng(3)
    attrs = {
        "log_scales": _svq(rng, 1000, [(64, 1)] * 3),
        "quats": _svq(rng, 1000, [(512, 2)] * 2),
        "features": _svq(rng, 1000, [(1024, 2)] * 3),
    }
    scene = CompactScene(rng.normal(size=(1000, 3)), attrs, 3, weights, config, translation=[1.0, 0.0, -2.0])
    spk.write_compact(scene, tmp_path / "f.spk")
    decoded, baked = spk.read(tmp_path / "f.spk"), spk.quantize_for_storage(scene).to_splats().torch()
    for name in ("means", "quats", "log_scales", "opacity_logits", "sh0", "shN"):
        assert torch.equal(getattr(decoded, name), getattr(baked, name)), name
    assert decoded.sh_degree == 3


def test_writer_refuses_what_fp16_cannot_hold(tmp_path):
    scene = make_scene("all-raw", 10)
    far = CompactScene(scene.positions * 1e5, scene.attributes, scene.sh_degree)
    with pytest.raises(SplatpackError, match="beyond float16.*fixed"):
        spk.write_compact(far, tmp_path / "far.spk")
    spk.write_compact(far, tmp_path / "far.spk", positions="fixed16")  # fixed point has no range limit
    assert len(spk.read_compact(tmp_path / "far.spk")) == 10
    big = dict(scene.attributes, sh0=scene.values("sh0") * 1e6)
    with pytest.raises(SplatpackError, match="sh0.*float16"):
        spk.write_compact(CompactScene(scene.positions, big, scene.sh_degree), tmp_path / "big.spk")
    with pytest.raises(SplatpackError, match="frame.*NaN"):
        spk.write_compact(
            CompactScene(scene.positions, scene.attributes, 2, translation=[0, np.nan, 0]), tmp_path / "f.spk"
        )
    for bad in ("fp32", "fixed0", "fixed22"):
        with pytest.raises(SplatpackError, match="positions must be"):
            spk.write_compact(scene, tmp_path / "o.spk", positions=bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["far.spk"]


# ---------------------------------------------------------------------------------------------- codecs


@pytest.mark.parametrize("bits", [1, 5, 16, 21])
def test_position_coding_is_exact_with_duplicates_and_extremes(bits):
    rng = np.random.default_rng(bits)
    top = (1 << bits) - 1
    cells = rng.integers(0, top + 1, (4000, 3))
    cells[:300] = cells[300:600]  # duplicates
    cells[600], cells[601] = 0, top  # the first and last code
    cells = cells[np.argsort(codec.morton(cells.astype(np.uint64)), kind="stable")].astype(np.uint64)
    data = codec.encode_positions(cells, bits)
    assert np.array_equal(codec.decode_positions(data, len(cells), bits), cells.astype(np.int64))
    if bits == 16:  # uniform cells: the set's information is log2(V choose N) / N ~ log2(V / N) + 1.44 bits each
        assert len(data) * 8 / len(cells) < np.log2(2.0**48 / len(cells)) + 1.44 + 0.5


def test_index_coding_is_exact_and_close_to_the_empirical_entropy():
    """Skewed use of 64- and 1024-entry codebooks at 10k Gaussians: the coded section, count tables included,
    is within 2 % of the order-0 entropy of its columns."""
    rng = np.random.default_rng(7)
    n, sizes = 10_000, [64, 64, 1024, 1024]
    columns = []
    for k in sizes:
        p = rng.dirichlet(np.full(k, 2.0))
        columns.append(rng.choice(k, n, p=p))
    code = spk._sorted_code(SvqCode([np.zeros((k, 1)) for k in sizes], np.stack(columns, 1)), "x")
    used = [len(b) for b in code.codebooks]
    data = codec.encode_indices(code.indices, used)
    assert np.array_equal(codec.decode_indices(data, used, n), code.indices)
    entropy = 0.0
    for col in code.indices.T:
        counts = np.bincount(col)
        entropy -= float((counts * np.log2(counts / n)).sum())
    assert entropy < len(data) * 8 < 1.02 * entropy


def test_varints_round_trip():
    v = np.array([0, 1, 127, 128, 300, 2**35, 2**63 - 1], np.uint64)
    assert np.array_equal(codec.read_varints(codec.varints(v), len(v)), v)
    with pytest.raises(ValueError):
        codec.read_varints(codec.varints(v)[:-1], len(v))


# ---------------------------------------------------------------------------------------------- the CLI


def cli(*args):
    return subprocess.run([sys.executable, "-m", "splatpack.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)  # fmt: skip


def test_info_and_decompress_through_the_cli(tmp_path):
    scene = make_scene("svq-geometry", 1500, seed=2, sh_degree=1)
    path = tmp_path / "scene.spk"
    spk.write_compact(scene, path)
    r = cli("info", path, "--json")
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)
    assert facts["format"] == "spk" and facts["version"] == 1 and facts["gaussians"] == 1500 and facts["sh_degree"] == 1
    sections = facts["sections"]
    coded = {f"{a}.{part}" for a in ("log_scales", "quats") for part in ("indices", "codebooks")}
    assert set(sections) == {"header", "meta", "positions", "sh0.raw", "opacity_logits.raw", "shN.raw"} | coded
    assert sum(sections.values()) == path.stat().st_size == facts["bytes"]
    assert facts["layout"]["quats"].startswith("svq ") and facts["layout"]["sh0"] == "raw fp16 x 3"
    r = cli("info", path)
    assert r.returncode == 0 and "positions" in r.stdout and "spk" in r.stdout, r.stderr
    out = tmp_path / "out.ply"
    r = cli("decompress", path, out)
    assert r.returncode == 0, r.stderr
    decoded, baked = sio.read(out), spk.read_compact(path).to_splats().torch()
    for name in ("means", "quats", "log_scales", "opacity_logits", "sh0", "shN"):
        assert torch.equal(getattr(decoded, name), getattr(baked, name)), name
    assert torch.equal(spk.read(path).means, baked.means)


# ---------------------------------------------------------------------------------------------- any scene


def test_codebook_cap_is_the_largest_power_of_two_below_n_per_rows():
    assert [codebook_cap(n, 16) for n in (0, 40, 4000, 4096, 152_746)] == [2, 2, 128, 256, 8192]
    assert codebook_cap(1000, 1) == 512 and codebook_cap(1000, 0) == 512  # rows_per_entry < 1 counts as 1


def test_from_splats_quantizes_every_attribute_within_its_codebooks():
    """SH 2 scene of 4000 Gaussians: every attribute SVQ-coded at the requested sub-vector widths with at most
    ``codebook_cap`` entries; rotations sign-canonical unit quaternions; reconstruction RMS error a small share
    of each attribute's spread (a mis-cut sub-vector or a wrong index gives ~1.4x it); None keeps it raw."""
    splats = Splats.random(4000, 2, seed=3)
    scene = CompactScene.from_splats(splats)
    assert scene.fields is None and scene.sh_degree == 2 and len(scene) == 4000
    assert np.array_equal(scene.positions, splats.means.numpy())
    widths = {"log_scales": [1] * 3, "quats": [2, 2], "sh0": [2, 1], "opacity_logits": [1], "shN": [24]}
    entries = {"log_scales": 64, "quats": 128, "sh0": 128, "opacity_logits": 128, "shN": 128}  # cap: 4000 / 16
    # 1-2 values per sub-vector: ~1/10 of the spread; the SH rest, 24-D noise in one sub-vector of 128 entries:
    # Gaussian rate-distortion gives 128^(-1/24) = 0.82 of it (k-means on 31 rows per entry: 0.79-0.84).
    bound = {"log_scales": 0.05, "quats": 0.2, "sh0": 0.2, "opacity_logits": 0.2, "shN": 0.9}
    q = torch.nn.functional.normalize(splats.quats, dim=-1)
    want = {
        "log_scales": splats.log_scales,
        "quats": torch.where(q[:, :1] < 0, -q, q),
        "sh0": splats.sh0.reshape(-1, 3),
        "opacity_logits": splats.opacity_logits[:, None],
        "shN": splats.shN.reshape(4000, -1),
    }
    for name, code in scene.attributes.items():
        assert isinstance(code, SvqCode), name
        assert [b.shape[1] for b in code.codebooks] == widths[name], name
        assert all(len(b) <= entries[name] for b in code.codebooks), name
        x = want[name].numpy()
        rmse = np.sqrt(((scene.values(name) - x) ** 2).mean(0))
        assert np.all(rmse < bound[name] * x.std(0)), (name, rmse / x.std(0))
    assert np.all(scene.values("quats")[:, 0] >= 0)
    raw = CompactScene.from_splats(splats, rotation=None, sh_rest=None, rows_per_entry=1000)
    assert np.array_equal(raw.values("quats"), want["quats"].numpy())
    assert np.array_equal(raw.values("shN"), want["shN"].numpy())
    assert all(len(b) <= 4 for b in raw.attributes["log_scales"].codebooks)  # 4000 / 1000 -> 2^2
    degree0 = CompactScene.from_splats(Splats.random(50, 0))
    assert degree0.attributes["shN"].shape == (50, 0)


def test_any_scene_compresses_decompresses_and_describes_through_the_cli(tmp_path):
    src = tmp_path / "in.ply"
    sio.write(Splats.random(3000, 1, seed=1), src)
    out = tmp_path / "out.spk"
    r = cli("compress", src, out, "--seed", "3", "--steps", "0")  # every Gaussian, no distillation (issue 12)
    assert r.returncode == 0, r.stderr
    assert "(spk," in r.stdout and "3,000 Gaussians" in r.stdout
    stored = spk.read_compact(out)
    assert all(isinstance(a, SvqCode) for a in stored.attributes.values()) and stored.sh_degree == 1
    facts = json.loads(cli("info", out, "--json").stdout)
    assert facts["format"] == "spk" and facts["gaussians"] == 3000 and facts["appearance"] == "raw"
    assert facts["layout"]["shN"] == "svq 128x9" and facts["layout"]["sh0"] == "svq 128x2 + 128x1"
    back = tmp_path / "back.ply"
    r = cli("decompress", out, back)
    assert r.returncode == 0, r.stderr
    decoded, baked = sio.read(back), stored.to_splats().torch()
    for name in ("means", "quats", "log_scales", "opacity_logits", "sh0", "shN"):
        assert torch.equal(getattr(decoded, name), getattr(baked, name)), name
    r = cli("compress", src, tmp_path / "bad.spk", "--spk-positions", "fp32", "--steps", "0")
    assert r.returncode == 2 and "positions must be" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad.spk").exists()


def test_a_real_scene_is_smaller_than_our_sog_with_bounded_errors(tmp_path, shared_data):
    """20k Gaussians of PlayCanvas's biker (SH 0): the .spk is smaller than our SOG of the same scene, and its
    errors stay below: fp16 positions within half a unit in the last place of the largest coordinate; rotations,
    scales, colour and opacity within a few times the SVQ error of 1024-entry codebooks (the full scene measures
    2.4 degrees, 0.025, 0.0066 and 0.0002 mean)."""
    from splatpack.evaluation import attribute_errors

    biker = sio.read(shared_data / "splats" / "biker.compressed.ply")
    scene = biker[torch.from_numpy(np.random.default_rng(0).choice(len(biker), 20_000, replace=False))]
    sio.write(scene, tmp_path / "b.spk")
    sio.write(scene, tmp_path / "b.sog")
    assert (tmp_path / "b.spk").stat().st_size < (tmp_path / "b.sog").stat().st_size
    e = attribute_errors(scene, sio.read(tmp_path / "b.spk"))
    ulp = float(np.spacing(np.float16(scene.means.abs().max())))
    assert e["means_max"] <= ulp / 2 + 1e-6
    assert e["quat_deg_mean"] < 5 and e["log_scales_mean"] < 0.06 and e["sh0_mean"] < 0.015
    assert e["opacity_mean"] < 0.005


# ---------------------------------------------------------------------------------------------- hostile files


def split(data: bytes) -> tuple[list, list[tuple[str, bytes]]]:
    """Header fields and (name, payload) sections of a .spk file."""
    fields = list(spk.HEADER.unpack_from(data))
    at, table = spk.HEADER.size, []
    for _ in range(fields[-1]):
        size = data[at]
        name = data[at + 1 : at + 1 + size].decode()
        table.append((name, struct.unpack_from("<Q", data, at + 1 + size)[0]))
        at += 1 + size + 8
    sections = []
    for name, length in table:
        sections.append((name, data[at : at + length]))
        at += length
    return fields, sections


def join(fields: list, sections: list[tuple[str, bytes]]) -> bytes:
    fields = [*fields[:-1], len(sections)]
    table = b"".join(bytes([len(n)]) + n.encode() + struct.pack("<Q", len(d)) for n, d in sections)
    return spk.HEADER.pack(*fields) + table + b"".join(d for _, d in sections)


def with_meta(data: bytes, change) -> bytes:
    fields, sections = split(data)
    meta = json.loads(zstandard.ZstdDecompressor().decompress(sections[0][1]))
    change(meta)
    sections[0] = ("meta", zstandard.ZstdCompressor().compress(json.dumps(meta).encode()))
    return join(fields, sections)


def with_section(data: bytes, name: str, payload: bytes) -> bytes:
    fields, sections = split(data)
    return join(fields, [(n, payload if n == name else d) for n, d in sections])


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("spk") / "valid.spk"
    spk.write_compact(make_scene("svq-geometry", 300, seed=5, sh_degree=1), path, positions="fixed14")
    return path.read_bytes()


@pytest.fixture(scope="module")
def valid_with_fields(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("spk") / "fields.spk"
    spk.write_compact(make_scene("fields", 300, seed=6), path)
    return path.read_bytes()


def _bomb(n: int) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(bytes(n))


def _set(meta, keys, value):
    for k in keys[:-1]:
        meta = meta[k]
    meta[keys[-1]] = value


HOSTILE = {
    "bad magic": lambda d: b"XPK\x00" + d[4:],
    "bad version": lambda d: d[:4] + struct.pack("<H", 9) + d[6:],
    "SH degree 5": lambda d: d[:6] + b"\x05" + d[7:],
    "empty file": lambda d: b"",
    "truncated header": lambda d: d[:10],
    "truncated table": lambda d: d[:40],
    "truncated section": lambda d: d[:-7],
    "trailing bytes": lambda d: d + b"\0",
    "huge count": lambda d: d[:8] + struct.pack("<Q", 2**40) + d[16:],
    "lying section length": lambda d: d[: spk.HEADER.size + 5] + struct.pack("<Q", 2**62) + d[spk.HEADER.size + 13 :],
    "unknown section": lambda d: join(split(d)[0], [*split(d)[1], ("secret", b"x")]),
    "duplicate section": lambda d: join(split(d)[0], [*split(d)[1], split(d)[1][1]]),
    "missing section": lambda d: join(split(d)[0], split(d)[1][:-1]),
    "meta bomb": lambda d: with_section(d, "meta", _bomb(64 << 20)),
    "meta not JSON": lambda d: with_section(d, "meta", zstandard.ZstdCompressor().compress(b"{nope")),
    "raw section bomb": lambda d: with_section(d, "shN.raw", _bomb(512 << 20)),
    "raw section short": lambda d: with_section(d, "sh0.raw", zstandard.ZstdCompressor().compress(bytes(10))),
    "codebook size lies": lambda d: with_meta(d, lambda m: _set(m, ["attributes", "quats", "svq", 0, 0], 2**30)),
    "codebook size smaller": lambda d: with_meta(d, lambda m: m["attributes"]["quats"]["svq"].__setitem__(0, [3, 2])),
    "raw width lies": lambda d: with_meta(d, lambda m: _set(m, ["attributes", "sh0", "raw"], 200)),
    "NaN in the frame": lambda d: with_meta(d, lambda m: _set(m, ["frame", "scale"], float("nan"))),
    "wrong layout": lambda d: with_meta(d, lambda m: m["attributes"].pop("shN")),
    "unknown order": lambda d: with_meta(d, lambda m: _set(m, ["order"], "plas")),
    "position bits": lambda d: with_meta(d, lambda m: _set(m, ["positions", "bits"], 40)),
    "infinite codebook": lambda d: with_section(d, "quats.codebooks", b"\x00\x7c" * (len(split(d)[1][5][1]) // 2)),
    "corrupt index stream": lambda d: with_section(d, "quats.indices", split(d)[1][4][1][:-4]),
    "corrupt positions": lambda d: with_section(d, "positions", split(d)[1][1][1][:-3]),
}


# Bad values that only decoding finds (``describe`` reads the header, table and meta: the structure).
FOUND_DECODING = {
    "corrupt index stream",
    "corrupt positions",
    "infinite codebook",
    "raw section bomb",
    "raw section short",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_files_are_refused_in_one_line(tmp_path, valid, case):
    path = tmp_path / "hostile.spk"
    path.write_bytes(HOSTILE[case](valid))
    readers = [spk.read_compact, spk.read] + ([] if case in FOUND_DECODING else [spk.describe])
    for reader in readers:
        with pytest.raises(SplatpackError) as err:
            reader(path)
        text = str(err.value)
        assert str(path) in text and "\n" not in text, (case, text)


def test_lying_field_shapes_are_refused_before_allocating(tmp_path, valid_with_fields):
    path = tmp_path / "fields.spk"
    path.write_bytes(with_meta(valid_with_fields, lambda m: _set(m, ["fields", "arrays"], [["w", [2**31] * 4]])))
    for reader in (spk.read_compact, spk.describe):
        with pytest.raises(SplatpackError, match="decompression bomb"):
            reader(path)


def test_sections_are_where_the_split_helper_expects(valid):
    names = [n for n, _ in split(valid)[1]]
    assert names[:6] == ["meta", "positions", "log_scales.indices", "log_scales.codebooks", "quats.indices",
                         "quats.codebooks"]  # fmt: skip
    assert join(*split(valid)) == valid


def test_fuzzed_files_decode_or_are_refused(tmp_path, valid, valid_with_fields):
    """Seeded byte flips and truncations of valid files: only ever a SplatpackError or a valid scene."""
    rng = np.random.default_rng(0)
    path = tmp_path / "fuzz.spk"
    outcomes = {"refused": 0, "read": 0}
    for case in range(400):
        data = bytearray(valid if case % 2 else valid_with_fields)
        if case % 8 >= 6:
            data = data[: int(rng.integers(0, len(data)))]
        else:
            for at in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
                data[at] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(data))
        try:
            scene = spk.read_compact(path)
        except SplatpackError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)
            outcomes["refused"] += 1
            continue
        scene.validate()
        assert np.isfinite(scene.positions).all() and all(np.isfinite(scene.values(k)).all() for k in scene.attributes)
        outcomes["read"] += 1
    assert outcomes["refused"] > 100 and outcomes["read"] > 5, outcomes
