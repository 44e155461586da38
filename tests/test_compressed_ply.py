"""PlayCanvas compressed PLY reader: parity with splat-transform, agreement with the same scene as SPZ,
synthetic files with known values, and bad files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import plyfile
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from splatpack.errors import SplatpackError
from splatpack.io import compressed_ply, detect_format
from splatpack.io import read as read_any
from splatpack.scene import SH_C0

CHUNK_PROPS = [f"{m}_{a}" for m in ("min", "max") for a in "xyz"]
CHUNK_PROPS += [f"{m}_scale_{a}" for m in ("min", "max") for a in "xyz"]
CHUNK_PROPS += [f"{m}_{c}" for m in ("min", "max") for c in "rgb"]


def make_file(
    path: Path, words: np.ndarray, chunks: np.ndarray, sh: np.ndarray | None = None, *, chunk_count=None
) -> Path:
    """A compressed PLY from packed vertex words (N, 4) uint32, chunk rows (C, 18) float32, sh bytes (N, 3K)."""
    n = len(words)
    lines = [
        "ply",
        "format binary_little_endian 1.0",
        f"element chunk {chunk_count if chunk_count is not None else len(chunks)}",
    ]
    lines += [f"property float {p}" for p in CHUNK_PROPS]
    lines += [f"element vertex {n}"] + [f"property uint {p}" for p in compressed_ply._PACKED]
    if sh is not None:
        lines += [f"element sh {n}"] + [f"property uchar f_rest_{i}" for i in range(sh.shape[1])]
    body = (
        chunks.astype("<f4").tobytes()
        + words.astype("<u4").tobytes()
        + (b"" if sh is None else sh.astype(np.uint8).tobytes())
    )
    path.write_bytes(("\n".join(lines) + "\nend_header\n").encode() + body)
    return path


def random_file(path: Path, n: int, k: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    c = -(-n // 256)
    lo = rng.normal(size=(c, 9)).astype(np.float32)
    hi = lo + rng.uniform(0.1, 2, size=(c, 9)).astype(np.float32)
    chunks = np.concatenate(
        [lo[:, :3], hi[:, :3], lo[:, 3:6] - 4, hi[:, 3:6] - 4, lo[:, 6:] * 0.1 + 0.2, hi[:, 6:] * 0.1 + 0.6], axis=1
    )
    words = rng.integers(0, 2**32, size=(n, 4), dtype=np.uint64).astype(np.uint32)
    sh = rng.integers(0, 256, size=(n, 3 * k), dtype=np.uint8) if k else None
    return make_file(path, words, chunks, sh)


def read_peer_ply(path: Path) -> dict[str, np.ndarray]:
    v = plyfile.PlyData.read(str(path))["vertex"].data
    cols = lambda *names: np.stack([v[c] for c in names], axis=1).astype(np.float64)  # noqa: E731
    rest = sorted((c for c in v.dtype.names if c.startswith("f_rest_")), key=lambda c: int(c[7:]))
    k = len(rest) // 3
    return {
        "means": cols("x", "y", "z"),
        "quats": cols("rot_0", "rot_1", "rot_2", "rot_3"),
        "log_scales": cols("scale_0", "scale_1", "scale_2"),
        "opacity_logits": v["opacity"].astype(np.float64),
        "sh0": cols("f_dc_0", "f_dc_1", "f_dc_2"),
        "shN": cols(*rest).reshape(len(v), 3, k).transpose(0, 2, 1) if k else np.zeros((len(v), 0, 3)),
    }


# ---------------------------------------------------------------------------------------------- real data


def test_biker_loads_and_matches_splat_transform(shared_data, splat_transform, tmp_path):
    src = shared_data / "splats" / "biker.compressed.ply"
    ours = compressed_ply.read(src)
    assert detect_format(src) == "compressed-ply"
    assert compressed_ply.describe(src) == {
        "format": "compressed-ply",
        "count": 152746,
        "chunks": 597,
        "sh_degree": 0,
        "colour_bounds": True,
    }
    assert len(ours) == 152746 and ours.sh_degree == 0
    ours.validate(check_finite=True)
    out = tmp_path / "peer.ply"
    subprocess.run([str(splat_transform), "-w", str(src), str(out)], check=True, capture_output=True, timeout=120)
    peer = read_peer_ply(out)
    for field in ("means", "quats", "log_scales", "sh0"):
        got = getattr(ours, field).double().numpy().reshape(peer[field].shape)
        np.testing.assert_allclose(got, peer[field], rtol=1e-6, atol=1e-6, err_msg=field)
    # The peer decodes bytes 0 / 255 of opacity to -inf / +inf; ours stays finite in the same 8-bit bin.
    peer_alpha = 1 / (1 + np.exp(-peer["opacity_logits"]))
    np.testing.assert_allclose(ours.opacities.double().numpy(), peer_alpha, atol=0.5 / 255)
    finite = np.isfinite(peer["opacity_logits"])
    assert (~finite).sum() > 0
    np.testing.assert_allclose(
        ours.opacity_logits.double().numpy()[finite], peer["opacity_logits"][finite], rtol=1e-5, atol=1e-5
    )


def test_biker_agrees_with_same_scene_as_spz(shared_data):
    """biker.spz holds the same Gaussians (other order, other quantization) rotated 180 degrees about x:
    splat-transform decodes both files to exactly what our readers give, and the two differ by y, z -> -y, -z."""
    a = compressed_ply.read(shared_data / "splats" / "biker.compressed.ply")
    b = read_any(shared_data / "splats" / "biker.spz")
    assert len(a) == len(b)
    flip = torch.tensor([1.0, -1.0, -1.0])
    dist, idx = cKDTree((b.means * flip).numpy()).query(a.means.numpy())
    b = b[torch.from_numpy(idx)]
    # 12-bit SPZ fixed point (2.4e-4) and 11/10-bit chunk lerps: positions agree to a few 1e-4.
    assert np.percentile(dist, 99.9) < 3e-4
    # Coincident duplicates can be matched to each other's twin: compare robustly over the matched set.
    q = b.unit_quats * torch.tensor([1.0, 1.0, -1.0, -1.0])
    assert np.percentile((1 - (a.unit_quats * q).sum(1).abs()).numpy(), 99) < 2e-6
    # SPZ log scales are 8-bit at 1/16 steps, colour 8-bit at 0.15 scale: half a step each.
    assert np.percentile((a.log_scales - b.log_scales).abs().numpy(), 99) < 1 / 32 + 5e-3
    assert np.percentile((a.sh0 - b.sh0).abs().numpy(), 99) < 0.5 / (255 * 0.15) + 0.5 / (255 * SH_C0)
    assert np.percentile((a.opacities - b.opacities).abs().numpy(), 99) < 1 / 255


# ---------------------------------------------------------------------------------------------- synthetic files


def test_known_values(tmp_path):
    chunks = np.array([[0, 1, 2, 1, 3, 6, -5, -4, -3, -1, 0, 1, 0, 0.1, 0.2, 1, 0.9, 0.8]], np.float32)
    pos_max = (2047 << 21) | (1023 << 11) | 2047
    rot_identity = (0 << 30) | (512 << 20) | (512 << 10) | 512  # w largest, x = y = z ~ 0
    color = (255 << 24) | (0 << 16) | (255 << 8) | 128
    words = np.array([[0, rot_identity, 0, color], [pos_max, rot_identity, pos_max, color]], np.uint32)
    sh = np.array([[0, 255, 128] * 3, [127] * 9], np.uint8)
    s = compressed_ply.read(make_file(tmp_path / "k.compressed.ply", words, chunks, sh))
    np.testing.assert_allclose(s.means.numpy(), [[0, 1, 2], [1, 3, 6]], atol=1e-6)
    np.testing.assert_allclose(s.log_scales.numpy(), [[-5, -4, -3], [-1, 0, 1]], atol=1e-6)
    q = s.unit_quats.numpy()
    np.testing.assert_allclose(np.abs(q[:, 0]), 1, atol=2e-5)
    rgb = s.base_rgb.numpy()
    np.testing.assert_allclose(rgb[0], [1.0, 0.1, 0.8], atol=1e-6)
    np.testing.assert_allclose(s.opacities.numpy(), 128 / 255, atol=1e-6)
    assert s.sh_degree == 1
    # f_rest_0..2 are the red channel's three coefficients: bytes 0 / 255 are the exact ends of [-4, 4].
    np.testing.assert_allclose(s.shN[0, :, 0].numpy(), [-4, 4, (128.5 / 256 - 0.5) * 8], atol=1e-6)
    np.testing.assert_allclose(s.shN[1].numpy(), (127.5 / 256 - 0.5) * 8, atol=1e-6)


def test_rotation_slots(tmp_path):
    """The 2-bit tag names the largest component; the three stored ones fill the others in order."""
    chunks = np.zeros((1, 18), np.float32)
    a, b, c = 0.3, -0.2, 0.1
    enc = lambda v: int(round((v / np.sqrt(2) + 0.5) * 1023))  # noqa: E731
    words = np.zeros((4, 4), np.uint32)
    for largest in range(4):
        words[largest, 1] = (largest << 30) | (enc(a) << 20) | (enc(b) << 10) | enc(c)
    q = compressed_ply.read(make_file(tmp_path / "r.compressed.ply", words, chunks)).quats.numpy()
    big = np.sqrt(1 - a * a - b * b - c * c)
    for largest in range(4):
        want = [a, b, c]
        want.insert(largest, big)
        np.testing.assert_allclose(q[largest], want, atol=2e-3)


def test_zero_opacity_bytes_stay_finite(tmp_path):
    chunks = np.zeros((1, 18), np.float32)
    words = np.array([[0, 0, 0, 0], [0, 0, 0, 255]], np.uint32)
    s = compressed_ply.read(make_file(tmp_path / "o.compressed.ply", words, chunks))
    assert torch.isfinite(s.opacity_logits).all()
    assert s.opacities[0] < 0.5 / 255 and s.opacities[1] > 1 - 0.5 / 255


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d[:-5], "truncated"),
        (lambda d: d.replace(b"element chunk 2", b"element chunk 1"), "chunk count 1 does not match 300"),
        (lambda d: d.replace(b"packed_position", b"packed_positiox"), "element 'vertex' lacks packed_position"),
        (lambda d: d.replace(b"element chunk", b"element chonk"), "not a compressed PLY: no 'element chunk'"),
        (lambda d: d.replace(b"format binary_little_endian", b"format binary_big_endian"), "binary_little_endian"),
        (lambda d: d.replace(b"element sh 300", b"element sh 299"), "element 'sh' has 299 rows"),
        (lambda d: d.replace(b"end_header", b"end_headex"), "no .end_header. line"),
    ],
)
def test_bad_files(tmp_path, damage, message):
    good = random_file(tmp_path / "good.compressed.ply", 300, 3, seed=1)
    compressed_ply.read(good)
    bad = tmp_path / "bad.compressed.ply"
    bad.write_bytes(damage(good.read_bytes()))
    with pytest.raises(SplatpackError, match=message) as err:
        compressed_ply.read(bad)
    assert str(bad) in str(err.value)


def test_zero_vertices(tmp_path):
    path = make_file(tmp_path / "empty.compressed.ply", np.zeros((0, 4), np.uint32), np.zeros((0, 18), np.float32))
    with pytest.raises(SplatpackError, match="zero vertices"):
        compressed_ply.read(path)


def test_sniff(tmp_path):
    path = random_file(tmp_path / "x.bin", 10, 0, seed=2)
    assert compressed_ply.sniff(path, path.read_bytes()[:4096])
    assert not compressed_ply.sniff(
        path, b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nend_header\n"
    )
    assert detect_format(path) == "compressed-ply"


_FUZZ_BASE = None


def _fuzz_base(tmp_path_factory) -> bytes:
    global _FUZZ_BASE
    if _FUZZ_BASE is None:
        _FUZZ_BASE = random_file(tmp_path_factory.mktemp("fuzz") / "base.compressed.ply", 300, 3, seed=3).read_bytes()
    return _FUZZ_BASE


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(0, 10_000),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    header_edit=st.sampled_from(
        [None, (b"300", b"3000"), (b"uint", b"float"), (b"chunk 2", b"chunk 9"), (b"uchar", b"int"), (b"sh", b"xx")]
    ),
)
def test_fuzz_only_splatpack_errors(tmp_path_factory, tmp_path, cut, edits, header_edit):
    data = bytearray(_fuzz_base(tmp_path_factory))
    if header_edit:
        data = bytearray(bytes(data).replace(*header_edit, 1))
    for pos, value in edits:
        data[pos % len(data)] = value
    data = data[: len(data) - cut % len(data)]
    path = tmp_path / "fuzz.compressed.ply"
    path.write_bytes(bytes(data))
    try:
        s = compressed_ply.read(path)
    except SplatpackError as exc:
        assert str(path) in str(exc)
    else:
        s.validate(check_finite=True)
