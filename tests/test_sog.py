"""PlayCanvas SOG: the sample loads and matches splat-transform, splat-transform reads ours exactly and we
read its files exactly, round trips stay within the format's quantization, bad input gives one clean error."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree
from test_compressed_ply import read_peer_ply

from splatpack.errors import SplatpackError
from splatpack.io import detect_format, ply, sog
from splatpack.scene import Splats


def scene(n: int, degree: int, seed: int = 0) -> Splats:
    """A structured scene: Gaussians on a wavy surface whose colour, size and SH vary smoothly with position."""
    g = torch.Generator().manual_seed(seed)
    uv = torch.rand(n, 2, generator=g) * 4 - 2
    means = torch.stack([uv[:, 0], 0.3 * torch.sin(2 * uv[:, 0]) * torch.cos(uv[:, 1]), uv[:, 1]], 1)
    means = means + 0.01 * torch.randn(n, 3, generator=g)
    smooth = torch.stack([torch.sin(means[:, 0] * (k + 1) + means[:, 2] * k) for k in range(24)], 1)
    s = Splats.random(n, degree, seed=seed)
    s.means = means
    s.log_scales = -3.5 + 0.5 * smooth[:, :3] + 0.1 * torch.randn(n, 3, generator=g)
    s.sh0 = (0.8 * smooth[:, 3:6] + 0.05 * torch.randn(n, 3, generator=g))[:, None, :]
    s.opacity_logits = 2 * smooth[:, 6] + 0.5
    k = s.shN.shape[1]
    if k:
        s.shN = 0.15 * smooth[:, 7 : 7 + k, None].expand(-1, -1, 3) * torch.tensor(
            [1.0, 0.8, 0.6]
        ) + 0.02 * torch.randn(n, k, 3, generator=g)
    return s


def convert(splat_transform: Path, src: Path, dst: Path) -> Path:
    # -g cpu: the SH k-means otherwise looks for a WebGPU adapter, which CI machines do not have.
    subprocess.run(
        [str(splat_transform), "-w", "-g", "cpu", str(src), str(dst)], check=True, capture_output=True, timeout=300
    )
    return dst


def assert_same_decode(ours: Splats, peer: dict[str, np.ndarray]) -> None:
    """Equal within float32 precision (both sides decode the same bytes with the same formulas)."""
    for field in ("means", "quats", "log_scales", "opacity_logits", "sh0", "shN"):
        got = getattr(ours, field).double().numpy().reshape(peer[field].shape)
        np.testing.assert_allclose(got, peer[field], rtol=2e-6, atol=2e-6, err_msg=field)


def match(a: Splats, b: Splats) -> Splats:
    """``b`` reordered to ``a`` by nearest centre (the writer sorts Gaussians into its grid)."""
    _, idx = cKDTree(b.means.numpy()).query(a.means.numpy())
    return b[torch.from_numpy(idx)]


# ---------------------------------------------------------------------------------------------- sample file


def test_playcanvas_logo_loads(shared_data):
    folder = shared_data / "splats" / "playcanvas-logo.sog.d"
    s = sog.read(folder)
    assert len(s) == 307128 and s.sh_degree == 0
    s.validate(check_finite=True)
    meta = json.loads((folder / "meta.json").read_text())
    lo = np.sign(meta["means"]["mins"]) * np.expm1(np.abs(meta["means"]["mins"]))
    hi = np.sign(meta["means"]["maxs"]) * np.expm1(np.abs(meta["means"]["maxs"]))
    lo_, hi_ = (t.numpy() for t in s.bounds())
    np.testing.assert_allclose(lo_, lo, atol=1e-4)  # within a 16-bit step of the stored extent
    np.testing.assert_allclose(hi_, hi, atol=1e-4)
    np.testing.assert_allclose(s.quats.norm(dim=1).numpy(), 1, atol=1e-5)
    assert s.log_scales.min() >= meta["scales"]["mins"][1] - 1e-5 and s.log_scales.max() <= -0.9
    info = sog.describe(folder / "meta.json")
    assert info["version"] == 1 and info["count"] == 307128 and not info["bundled"]
    assert info["textures"]["means_l"]["width"] * info["textures"]["means_l"]["height"] >= 307128
    assert detect_format(folder) == "sog" and detect_format(folder / "meta.json") == "sog"


def test_playcanvas_logo_matches_splat_transform(shared_data, splat_transform, tmp_path):
    meta = shared_data / "splats" / "playcanvas-logo.sog.d" / "meta.json"
    peer = read_peer_ply(convert(splat_transform, meta, tmp_path / "logo.ply"))
    assert_same_decode(sog.read(meta), peer)


# ---------------------------------------------------------------------------------------------- interop


@pytest.mark.parametrize("degree", [0, 3])
def test_splat_transform_reads_ours_exactly(splat_transform, tmp_path, degree):
    src = scene(3000, degree, seed=degree)
    out = tmp_path / "ours.sog"
    sog.write(src, out, sort="morton")
    ours = sog.read(out)
    assert ours.sh_degree == degree
    assert_same_decode(ours, read_peer_ply(convert(splat_transform, out, tmp_path / "peer.ply")))


def test_we_read_splat_transform_sog_exactly(splat_transform, tmp_path):
    src = tmp_path / "in.ply"
    ply.write(scene(2000, 1, seed=7), src)  # degree 1 keeps the peer's CPU k-means quick
    theirs = convert(splat_transform, src, tmp_path / "theirs.sog")
    assert sog.describe(theirs)["version"] == 2
    assert_same_decode(sog.read(theirs), read_peer_ply(convert(splat_transform, theirs, tmp_path / "peer.ply")))


# ---------------------------------------------------------------------------------------------- round trips


def test_round_trip_within_quantization(tmp_path):
    src = scene(4000, 3, seed=1)
    sog.write(src, tmp_path / "a.sog", sort="none")
    got = sog.read(tmp_path / "a.sog")
    # Means: 16 bits over the log-transformed extent (here |x| <= ~2.1, so the step is ~2e-5 or less).
    t = torch.sign(src.means) * torch.log1p(src.means.abs())
    step = (t.max(0).values - t.min(0).values) / 65535
    assert ((got.means - src.means).abs() <= step * math.e**1.2 * 0.51 + 1e-6).all()
    # Quaternions: 8-bit smallest-three, |dot| within ~1e-4 of 1.
    assert (1 - (got.unit_quats * src.unit_quats).sum(1).abs()).max() < 2e-4
    assert (got.opacities - src.opacities).abs().max() <= 0.5 / 255 + 1e-6
    # 256-entry codebooks: at worst half the widest gap, on average far below it.
    for field in ("log_scales", "sh0"):
        err = (getattr(got, field) - getattr(src, field)).abs()
        assert err.mean() < 0.01 and err.max() < 0.1, field
    # SH rest: palette (2048 entries for 4000 Gaussians) + 8-bit codebook.
    err = (got.shN - src.shN).abs()
    assert err.mean() < 0.01 and err.max() < 0.15


def test_presets_trade_size_for_sh_fidelity(tmp_path):
    """Smaller presets shrink only the SH palette: files get smaller, SH error grows, other fields are untouched."""
    src = scene(8192, 3, seed=2)
    sizes, errors, others = [], [], []
    for preset in ("tiny", "small", "balanced"):
        path = tmp_path / f"{preset}.sog"
        sog.write(src, path, sort="none", preset=preset)
        got = sog.read(path)
        assert sog.describe(path)["palette"] == int(sog.palette_size(8192) * sog.PRESETS[preset][0])
        sizes.append(path.stat().st_size)
        errors.append(float((got.shN - src.shN).pow(2).mean().sqrt()))
        others.append(got.sh0)
    assert sizes[0] < sizes[1] < sizes[2], sizes
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[0] < 0.4 * float(src.shN.std())  # 512 entries still follow this smoothly varying SH
    assert all(torch.equal(o, others[0]) for o in others)


def test_sorted_write_is_a_permutation(tmp_path):
    src = scene(3000, 1, seed=2)
    sog.write(src, tmp_path / "s.sog", sort="morton", seed=3)
    got = match(src, sog.read(tmp_path / "s.sog"))
    assert (got.means - src.means).abs().max() < 1e-4
    assert (got.opacities - src.opacities).abs().max() <= 0.5 / 255 + 1e-6
    assert (got.sh0 - src.sh0).abs().mean() < 0.01


def test_bundled_and_unbundled_forms_agree(tmp_path):
    src = scene(500, 2, seed=4)
    sog.write(src, tmp_path / "b.sog", sort="none")
    sog.write(src, tmp_path / "u.sog.d", sort="none")
    (tmp_path / "m").mkdir()
    sog.write(src, tmp_path / "m" / "meta.json", sort="none")
    a = sog.read(tmp_path / "b.sog")
    assert zipfile.is_zipfile(tmp_path / "b.sog")
    with zipfile.ZipFile(tmp_path / "b.sog") as z:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
        assert sorted(z.namelist()) == sorted(
            json.loads(z.read("meta.json"))["shN"]["files"]
            + ["meta.json", "means_l.webp", "means_u.webp", "quats.webp", "scales.webp", "sh0.webp"]
        )
    for other in (tmp_path / "u.sog.d", tmp_path / "u.sog.d" / "meta.json", tmp_path / "m" / "meta.json"):
        b = sog.read(other)
        for field in Splats.FIELDS:
            assert torch.equal(getattr(a, field), getattr(b, field)), (other, field)
    info = sog.describe(tmp_path / "b.sog")
    assert info["bundled"] and info["count"] == 500 and info["sh_degree"] == 2
    w, h = info["textures"]["means_l"]["width"], info["textures"]["means_l"]["height"]
    assert w % 4 == 0 and h % 4 == 0 and w * h >= 500
    assert info["textures"]["shN_centroids"]["width"] == 64 * 8
    assert detect_format(tmp_path / "b.sog") == "sog"


def test_morton_texels_follow_the_log_domain_morton_order_whatever_the_input_order():
    from splatpack.sort import morton_order

    src = scene(4096, 1)
    shuffled = src[torch.randperm(len(src), generator=torch.Generator().manual_seed(0))]
    logs = np.sign(src.means.numpy().astype(np.float64)) * np.log1p(np.abs(src.means.numpy().astype(np.float64)))
    order, width = sog.texel_order(src.numpy(np.float64), "morton", 64)
    assert width == 64 and np.array_equal(order, morton_order(logs))
    assert sog.encode(src) == sog.encode(shuffled)  # the default order depends on the content alone
    with pytest.raises(SplatpackError, match="unknown grid order 'auto'"):
        sog.encode(src, sort="auto")


def test_sog_without_sh_bands_encodes_without_torch(tmp_path):
    src = tmp_path / "s.ply"
    ply.write(scene(3000, 0), src)
    code = (
        "import sys; from splatpack.io import ply, sog; "
        f"sog.write(ply.read({str(src)!r}, arrays='numpy'), {str(tmp_path / 's.sog')!r}); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    back = sog.read(tmp_path / "s.sog")
    assert len(back) == 3000


def test_sh_degree_option(tmp_path):
    sog.write(scene(1000, 3), tmp_path / "d1.sog", sort="none", sh_degree=1)
    assert sog.read(tmp_path / "d1.sog").sh_degree == 1
    with pytest.raises(SplatpackError, match="SH degree 3 is not in 0-1"):
        sog.write(scene(100, 1), tmp_path / "x.sog", sh_degree=3)


# ---------------------------------------------------------------------------------------------- bad input


@pytest.fixture
def small_folder(tmp_path) -> Path:
    out = tmp_path / "small.sog.d"
    sog.write(scene(200, 1, seed=5), out, sort="none")
    return out


def _edit_meta(folder: Path, fn) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    fn(meta)
    (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "quats.webp").unlink(), "missing file quats.webp"),
        (lambda f: (f / "meta.json").write_text("{not json"), "bad meta.json"),
        (lambda f: _edit_meta(f, lambda m: m.update(count=10**6)), "too small for 1000000 Gaussians"),
        (lambda f: _edit_meta(f, lambda m: m.update(version=3)), "unsupported SOG version 3"),
        (
            lambda f: _edit_meta(f, lambda m: m["scales"].update(codebook=[1, 2])),
            "scales.codebook must be 256 finite numbers",
        ),
        (lambda f: _edit_meta(f, lambda m: m.pop("sh0")), "missing 'sh0' section"),
        (
            lambda f: _edit_meta(f, lambda m: m["means"].update(files=["../x.webp", "means_u.webp"])),
            "invalid texture file",
        ),
        (lambda f: _edit_meta(f, lambda m: m["shN"].update(count=3)), "outside the 3-entry palette"),
        (lambda f: (f / "sh0.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPjunk"), "sh0.webp is not a readable WebP"),
        (
            lambda f: (f / "scales.webp").write_bytes((f / "scales.webp").read_bytes()[:40]),
            "scales.webp is not a readable WebP",
        ),
    ],
)
def test_bad_folder(small_folder, damage, message):
    damage(small_folder)
    with pytest.raises(SplatpackError, match=message) as err:
        sog.read(small_folder)
    assert str(small_folder) in str(err.value)


def test_bad_zip(tmp_path):
    good = tmp_path / "g.sog"
    sog.write(scene(200, 0), good, sort="none")
    bad = tmp_path / "bad.sog"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(SplatpackError, match="bad zip") as err:
        sog.read(bad)
    assert str(bad) in str(err.value)
    no_meta = tmp_path / "nometa.sog"
    with zipfile.ZipFile(no_meta, "w") as z:
        z.writestr("other.txt", "x")
    with pytest.raises(SplatpackError, match="missing file meta.json"):
        sog.read(no_meta)


def test_bad_scene_writes_nothing(tmp_path):
    with pytest.raises(SplatpackError, match="empty scene"):
        sog.write(Splats.empty(), tmp_path / "e.sog")
    s = scene(100, 0)
    s.means[3, 1] = float("nan")
    for target in (tmp_path / "n.sog", tmp_path / "n.sog.d"):
        with pytest.raises(SplatpackError, match="NaN"):
            sog.write(s, target)
    assert list(tmp_path.iterdir()) == []


_FUZZ: dict[str, bytes] = {}


def _fuzz_entries(tmp_path_factory) -> dict[str, bytes]:
    if not _FUZZ:
        path = tmp_path_factory.mktemp("sogfuzz") / "f.sog"
        sog.write(scene(64, 1, seed=6), path, sort="none")
        with zipfile.ZipFile(path) as z:
            _FUZZ.update({n: z.read(n) for n in z.namelist()})
    return _FUZZ


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.sampled_from(
        ["meta.json", "means_l.webp", "quats.webp", "sh0.webp", "shN_labels.webp", "shN_centroids.webp", "zip"]
    ),
    edits=st.lists(st.tuples(st.integers(0, 100_000), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.integers(0, 50),
)
def test_fuzz_only_splatpack_errors(tmp_path_factory, tmp_path, target, edits, cut):
    entries = dict(_fuzz_entries(tmp_path_factory))
    path = tmp_path / "fuzz.sog"
    if target == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name, data in entries.items():
                z.writestr(name, data)
        data = bytearray(buf.getvalue())
    else:
        data = bytearray(entries[target])
    for pos, value in edits:
        data[pos % len(data)] = value
    data = bytes(data[: max(1, len(data) - cut)])
    if target == "zip":
        path.write_bytes(data)
    else:
        entries[target] = data
        with zipfile.ZipFile(path, "w") as z:
            for name, payload in entries.items():
                z.writestr(name, payload)
    try:
        s = sog.read(path)
    except SplatpackError as exc:
        assert str(path) in str(exc)
    else:
        s.validate(check_finite=True)


# ---------------------------------------------------------------------------------------------- size


def test_smaller_than_splat_transform(splat_transform, tmp_path):
    """Same structured scene through both writers: ours is smaller, at comparable per-attribute error."""
    src = scene(4096, 0, seed=8)
    ply.write(src, tmp_path / "in.ply")
    theirs = convert(splat_transform, tmp_path / "in.ply", tmp_path / "theirs.sog")
    sog.write(src, tmp_path / "ours.sog", sort="plas")
    assert (tmp_path / "ours.sog").stat().st_size < theirs.stat().st_size
    a, b = match(src, sog.read(tmp_path / "ours.sog")), match(src, sog.read(theirs))
    for field in ("means", "log_scales", "sh0"):
        ea = (getattr(a, field) - getattr(src, field)).abs().mean()
        eb = (getattr(b, field) - getattr(src, field)).abs().mean()
        assert ea <= eb * 1.05 + 1e-7, (field, float(ea), float(eb))
