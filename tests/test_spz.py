"""SPZ: byte parity with the reference encoder, peers reading ours, ours reading peers', bad files, fuzzing.

Peers (pinned npm packages from the ``node_peers`` fixture): ``@adobe/spz`` (the Niantic reference compiled to
WASM, a dependency of splat-transform), PlayCanvas ``splat-transform`` 3.7.0 and ``spz-js`` 1.2.5 (v1/v2 only).
"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from peers.inria_ply import read_ply, write_ply

from splatpack.errors import SplatpackError
from splatpack.io import spz
from splatpack.scene import SH_REST_COUNT, Splats

PEERS = Path(__file__).parent / "peers" / "spz_peers.mjs"

# Half a quantization step of each attribute (plus float slack): what a decode may differ from the input.
POS_TOL = 2.0**-13 + 1e-6
SCALE_TOL = 0.5 / 16 + 1e-5
ALPHA_TOL = 0.5 / 255 + 1e-5
COLOR_TOL = 0.5 / (0.15 * 255) + 1e-5
SH1_TOL = 4.5 / 128 + 1e-6  # x*128 rounded, then snapped to a bucket of 8
SH_REST_TOL = 8.5 / 128 + 1e-6  # bucket of 16
# 1 - |<q_decoded, q_input>| for unit quaternions: smallest-three keeps 9 bits per component, v2 8 bits with w
# re-derived from xyz (coarse when w is small).
ROT_TOL = {2: 6e-3, 3: 2e-6, 4: 2e-6}


def scene(n: int, degree: int, seed: int = 0) -> Splats:
    """A random scene with the awkward cases mixed in: unnormalized and negative-w quaternions, colours
    and SH beyond the encodable range, opacities that saturate a byte."""
    s = Splats.random(n, degree, seed=seed)
    s.quats[:40] *= -2.5
    s.sh0[:20] *= 6
    s.shN[:20] *= 8
    s.opacity_logits[:5] = 20
    s.opacity_logits[5:10] = -20
    return s


def worst(t: torch.Tensor) -> float:
    return float(t.max()) if t.numel() else 0.0


def assert_quantized(got: Splats, want: Splats, version: int = 4) -> None:
    """``got`` is ``want`` up to SPZ's quantization (values beyond a field's range saturate)."""
    assert len(got) == len(want) and got.sh_degree == want.sh_degree
    assert torch.isfinite(got.means).all()
    assert (got.means - want.means).abs().max() <= POS_TOL
    assert (got.log_scales - want.log_scales.clamp(-10, 255 / 16 - 10)).abs().max() <= SCALE_TOL
    assert (got.opacities - want.opacities).abs().max() <= ALPHA_TOL
    assert (got.sh0 - want.sh0.clamp(-127.5 / 38.25, 127.5 / 38.25)).abs().max() <= COLOR_TOL
    sh_error = (got.shN - want.shN.clamp(-1, 127 / 128)).abs()
    assert worst(sh_error[:, :3]) <= SH1_TOL
    assert worst(sh_error[:, 3:]) <= SH_REST_TOL
    dot = (got.unit_quats * want.unit_quats).sum(dim=1).abs()
    assert (1 - dot).max() <= ROT_TOL[version]


# ------------------------------------------------------------------------------------- peer plumbing


def node(node_peers: Path, *args) -> str:
    r = subprocess.run(
        ["node", str(PEERS), str(node_peers / "node_modules"), *map(str, args)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def run_splat_transform(splat_transform: Path, *args) -> None:
    r = subprocess.run([str(splat_transform), "-q", "-w", *map(str, args)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def cloud_to_bin(s: Splats, path: Path) -> None:
    """The reference GaussianCloud arrays (xyzw rotations, SH colour-fastest) as one float32 file."""
    parts = [s.means, s.log_scales, s.quats[:, [1, 2, 3, 0]], s.opacity_logits, s.sh0[:, 0], s.shN]
    np.concatenate([p.detach().numpy().astype("<f4").ravel() for p in parts]).tofile(path)


def bin_to_splats(path: Path, meta: str) -> Splats:
    info = json.loads(meta.strip().splitlines()[-1])
    n, k = info["numPoints"], SH_REST_COUNT[info["shDegree"]]
    f = torch.from_numpy(np.fromfile(path, "<f4"))
    sizes = [3 * n, 3 * n, 4 * n, n, 3 * n, 3 * k * n]
    pos, scales, rot, alphas, colors, sh = torch.split(f, sizes)
    return Splats(
        means=pos.reshape(n, 3),
        quats=rot.reshape(n, 4)[:, [3, 0, 1, 2]],
        log_scales=scales.reshape(n, 3),
        opacity_logits=alphas,
        sh0=colors.reshape(n, 1, 3),
        shN=sh.reshape(n, k, 3),
    )


# ------------------------------------------------------------------------------------- reference parity


def test_bytes_match_reference_encoder(node_peers, tmp_path):
    """Our files are byte for byte what the Niantic reference writes (same quantization, zstd 12 / gzip 6),
    for every version we write, with and without the RDF -> RUB conversion, at SH degrees 0, 1 and 3."""
    cases = [
        (3, 4, None),
        (3, 3, None),
        (3, 2, None),
        (3, 4, "rdf"),
        (3, 3, "rdf"),
        (3, 2, "rdf"),
        (0, 4, None),
        (1, 4, "rdf"),
    ]
    jobs = []
    for i, (degree, version, frame) in enumerate(cases):
        s = scene(1500, degree, seed=degree)
        cloud_to_bin(s, tmp_path / f"{i}.bin")
        spz.write(s, tmp_path / f"{i}.ours.spz", version=version, assume_frame=frame)
        jobs.append(
            {"input": str(tmp_path / f"{i}.bin"), "output": str(tmp_path / f"{i}.ref.spz"), "numPoints": len(s),
             "shDegree": degree, "version": version, "from": "RDF" if frame else "UNSPECIFIED"}
        )  # fmt: skip
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    node(node_peers, "pack", tmp_path / "jobs.json")
    for i, case in enumerate(cases):
        assert (tmp_path / f"{i}.ours.spz").read_bytes() == (tmp_path / f"{i}.ref.spz").read_bytes(), case


@pytest.mark.parametrize("frame", [None, "rdf"])
def test_reference_decoder_agrees_with_ours(node_peers, tmp_path, frame):
    """The reference decodes our v4 file to our own decode, and (converting back to RDF) to the input scene."""
    s = scene(1500, 3, seed=7)
    spz.write(s, tmp_path / "ours.spz", assume_frame=frame)
    meta = node(node_peers, "unpack", tmp_path / "ours.spz", tmp_path / "out.bin", "RDF" if frame else "UNSPECIFIED")
    ref = bin_to_splats(tmp_path / "out.bin", meta)
    ours = spz.read(tmp_path / "ours.spz", to_frame=frame)
    assert torch.equal(ref.means, ours.means)
    assert torch.equal(ref.log_scales, ours.log_scales)
    assert torch.allclose(ref.sh0, ours.sh0, atol=1e-5)
    assert torch.equal(ref.shN, ours.shN)
    assert torch.allclose(ref.unit_quats, ours.unit_quats, atol=1e-6)
    finite = torch.isfinite(ref.opacity_logits)  # the reference decodes bytes 0/255 to -inf/+inf, we clamp
    assert torch.allclose(ref.opacity_logits[finite], ours.opacity_logits[finite], atol=1e-4)
    assert_quantized(ours, s)


# ------------------------------------------------------------------------------------- ours -> peers


@pytest.mark.parametrize("degree,version", [(0, 4), (3, 4), (3, 3)])
def test_splat_transform_reads_ours(splat_transform, tmp_path, degree, version):
    """splat-transform converts our SPZ to a PLY holding the same scene, in the same frame (not flipped)."""
    s = scene(2000, degree, seed=11 + degree)
    spz.write(s, tmp_path / "ours.spz", version=version)
    run_splat_transform(splat_transform, tmp_path / "ours.spz", tmp_path / "back.ply")
    assert_quantized(read_ply(tmp_path / "back.ply"), s, version)


@pytest.mark.parametrize("degree", [0, 3])
def test_spz_js_reads_ours(node_peers, tmp_path, degree):
    """spz-js (reads v1/v2 only) decodes our v2 file to the input scene within quantization."""
    s = scene(2000, degree, seed=21 + degree)
    spz.write(s, tmp_path / "ours.spz", version=2)
    meta = node(node_peers, "spzjs", tmp_path / "ours.spz", tmp_path / "out.bin")
    got = bin_to_splats(tmp_path / "out.bin", meta)
    got.opacity_logits.clamp_(-30, 30)  # spz-js decodes bytes 0/255 to -inf/+inf
    assert_quantized(got, s, version=2)


# ------------------------------------------------------------------------------------- peers -> ours


@pytest.mark.parametrize("version", [4, 3])
def test_we_read_splat_transform_spz(splat_transform, tmp_path, version):
    """A PLY made with plyfile, converted by splat-transform: we decode the PLY's scene; our own SPZ of the
    same PLY is the same bytes (so within 2 % of its size, trivially)."""
    s = scene(3000, 3, seed=31)
    write_ply(s, tmp_path / "in.ply")
    run_splat_transform(splat_transform, tmp_path / "in.ply", "--spz-version", version, tmp_path / "peer.spz")
    assert spz.describe(tmp_path / "peer.spz")["version"] == version
    assert_quantized(spz.read(tmp_path / "peer.spz"), read_ply(tmp_path / "in.ply"), version)
    spz.write(read_ply(tmp_path / "in.ply"), tmp_path / "ours.spz", version=version)
    ours, peer = (tmp_path / "ours.spz").stat().st_size, (tmp_path / "peer.spz").stat().st_size
    print(f"SPZ v{version} of a 3000-Gaussian SH3 PLY: ours {ours} bytes, splat-transform {peer} bytes")
    assert abs(ours - peer) <= 0.02 * peer
    assert (tmp_path / "ours.spz").read_bytes() == (tmp_path / "peer.spz").read_bytes()


def test_real_biker_file(shared_data, splat_transform, tmp_path):
    """SuperSplat's biker.spz (v4) loads, and splat-transform's PLY decoding of it is ours."""
    path = shared_data / "splats" / "biker.spz"
    info = spz.describe(path)
    assert (info["version"], info["count"], info["sh_degree"], info["fractional_bits"]) == (4, 152_746, 0, 12)
    assert set(info["streams"]) == {"positions", "alphas", "colors", "scales", "rotations"}
    s = spz.read(path)
    assert len(s) == 152_746 and s.sh_degree == 0
    s.validate()
    run_splat_transform(splat_transform, path, tmp_path / "biker.ply")
    peer = read_ply(tmp_path / "biker.ply")
    assert torch.equal(peer.means, s.means)
    assert torch.equal(peer.log_scales, s.log_scales)
    assert torch.allclose(peer.opacity_logits, s.opacity_logits, atol=1e-5)
    assert torch.allclose(peer.sh0, s.sh0, atol=1e-5)
    assert torch.allclose(peer.unit_quats, s.unit_quats, atol=1e-6)


# ------------------------------------------------------------------------------------- ours -> ours


@pytest.mark.parametrize("version", [2, 3, 4])
@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_round_trip(tmp_path, version, degree):
    s = scene(1000, degree, seed=version * 10 + degree)
    spz.write(s, tmp_path / "a.spz", version=version)
    got = spz.read(tmp_path / "a.spz")
    assert_quantized(got, s, version)
    # Decoded values are fixed points of the quantizer: a second round trip changes nothing (rotations only
    # up to float noise: a component that decodes to -0 or a tie for the largest may pack differently).
    spz.write(got, tmp_path / "b.spz", version=version)
    again = spz.read(tmp_path / "b.spz")
    for field in ("means", "log_scales", "opacity_logits", "sh0", "shN"):
        assert torch.equal(getattr(again, field), getattr(got, field)), field
    assert (1 - (again.unit_quats * got.unit_quats).sum(dim=1).abs()).max() <= 1e-6


def test_rdf_frame_round_trip_and_flip(tmp_path):
    """``assume_frame="rdf"`` stores RUB (y, z negated) and ``to_frame="rdf"`` undoes it."""
    s = scene(500, 3, seed=3)
    spz.write(s, tmp_path / "rub.spz", assume_frame="rdf")
    assert_quantized(spz.read(tmp_path / "rub.spz", to_frame="rdf"), s)
    raw = spz.read(tmp_path / "rub.spz")
    assert (raw.means - s.means * torch.tensor([1, -1, -1])).abs().max() <= POS_TOL
    with pytest.raises(SplatpackError, match="unknown coordinate frame 'luf'"):
        spz.write(s, tmp_path / "x.spz", assume_frame="luf")


def test_sh_degree_option_and_flags(tmp_path):
    s = scene(300, 3)
    spz.write(s, tmp_path / "a.spz", sh_degree=1, antialiased=True)
    info = spz.describe(tmp_path / "a.spz")
    assert (info["sh_degree"], info["antialiased"], info["extensions"], info["count"]) == (1, True, False, 300)
    assert set(info["streams"]) == set(spz.STREAM_NAMES)
    assert sum(v["compressed"] for v in info["streams"].values()) + 32 + 6 * 16 == info["file_bytes"]
    assert_quantized(spz.read(tmp_path / "a.spz"), s.with_sh_degree(1))


def test_v4_extension_records_are_skipped(tmp_path):
    """A v4 file with vendor extension records (flags & 0x2) between header and table of contents."""
    s = scene(100, 1)
    spz.write(s, tmp_path / "plain.spz")
    data = (tmp_path / "plain.spz").read_bytes()
    record = struct.pack("<II3f", 0xADBE0002, 12, -0.5, 1.0, 2.0) + struct.pack("<II", 0xADBE0099, 0)
    header = _patch(_patch(data[:32], 14, "<B", spz.FLAG_EXTENSIONS), 16, "<I", 32 + len(record))
    (tmp_path / "ext.spz").write_bytes(header + record + data[32:])
    info = spz.describe(tmp_path / "ext.spz")
    assert info["extensions"]
    assert info["extension_records"] == [{"type": 0xADBE0002, "bytes": 12}, {"type": 0xADBE0099, "bytes": 0}]
    got, want = spz.read(tmp_path / "ext.spz"), spz.read(tmp_path / "plain.spz")
    assert all(torch.equal(getattr(got, f), getattr(want, f)) for f in Splats.FIELDS)
    overlong = record[:-4] + struct.pack("<I", 100)  # the last record claims 100 bytes that are not there
    (tmp_path / "bad.spz").write_bytes(header + overlong + data[32:])
    with pytest.raises(SplatpackError, match="extension record 0xadbe0099 runs past the table of contents"):
        spz.read(tmp_path / "bad.spz")


def test_large_extent_lowers_fractional_bits(tmp_path):
    """Positions beyond 24-bit fixed point at 12 fractional bits get fewer bits instead of wrapping."""
    s = scene(200, 0)
    s.means[0] = torch.tensor([5000.0, -3000.0, 12.0])
    spz.write(s, tmp_path / "far.spz")
    bits = spz.describe(tmp_path / "far.spz")["fractional_bits"]
    assert bits == 10
    assert (spz.read(tmp_path / "far.spz").means - s.means).abs().max() <= 2.0 ** -(bits + 1) + 1e-6


def test_reads_version_1_float16_positions(tmp_path):
    """v1 (never released by Niantic, still read by the reference): float16 positions, 3-byte rotations."""
    means = np.array([[0.5, -1.25, 3.0], [2.0, 0.0, -0.125]], dtype="<f2")
    body = means.tobytes() + bytes([255, 0]) + bytes([128] * 6) + bytes([160] * 6) + bytes([128] * 6)
    path = tmp_path / "v1.spz"
    path.write_bytes(gzip.compress(struct.pack("<4sIIBBBB", b"NGSP", 1, 2, 0, 12, 0, 0) + body))
    s = spz.read(path)
    assert torch.equal(s.means, torch.from_numpy(means.astype(np.float32)))
    assert torch.allclose(s.log_scales, torch.full((2, 3), 0.0))
    assert torch.allclose(s.unit_quats, torch.tensor([[1.0, 0, 0, 0]] * 2), atol=1e-2)
    assert s.opacities[0] > 0.999 and s.opacities[1] < 0.001


# ------------------------------------------------------------------------------------- bad input


def _v4(s: Splats | None = None) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        spz.write(s if s is not None else scene(50, 3), Path(d) / "a.spz")
        return (Path(d) / "a.spz").read_bytes()


def _legacy(payload: bytes) -> bytes:
    return gzip.compress(payload)


def _legacy_payload(version=3, degree=1, n=50) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        spz.write(scene(n, degree), Path(d) / "a.spz", version=version)
        return zlib.decompress((Path(d) / "a.spz").read_bytes(), 16 + zlib.MAX_WBITS)


def _patch(data: bytes, offset: int, fmt: str, value) -> bytes:
    return data[:offset] + struct.pack(fmt, value) + data[offset + struct.calcsize(fmt) :]


def _bad_cases() -> list[tuple[str, bytes, str]]:
    v4 = _v4()
    legacy = _legacy_payload()
    first_stream = 32 + 6 * 16
    nan_v1 = (
        struct.pack("<4sIIBBBB", b"NGSP", 1, 1, 0, 12, 0, 0) + np.array([np.inf, 0, 0], "<f2").tobytes() + bytes(10)
    )
    return [
        ("empty", b"", "truncated: 0 bytes"),
        ("v4 truncated header", v4[:20], "truncated: 20 bytes, shorter than the 32-byte"),
        ("v4 truncated table", v4[:40], "truncated: table of contents ends"),
        ("v4 truncated stream", v4[:-10], "truncated: sh stream ends"),
        ("wrong magic", b"NGSQ" + v4[4:], "not an SPZ file: starts with b'NGSQ'"),
        ("wrong magic in gzip", _legacy(b"PLY!" + legacy[4:]), "gzip payload starts with b'PLY!'"),
        ("v4 version 0", _patch(v4, 4, "<I", 0), "unsupported SPZ version 0"),
        ("v4 version 5", _patch(v4, 4, "<I", 5), "unsupported SPZ version 5"),
        ("legacy version 0", _legacy(_patch(legacy, 4, "<I", 0)), "unsupported SPZ version 0"),
        ("legacy version 7", _legacy(_patch(legacy, 4, "<I", 7)), "unsupported SPZ version 7"),
        ("v4 SH degree 5", _patch(v4, 12, "<B", 5), "SH degree 5 is out of range"),
        ("v4 SH degree 4", _patch(v4, 12, "<B", 4), "SH degree 4 is not supported"),
        ("legacy SH degree 9", _legacy(_patch(legacy, 12, "<B", 9)), "SH degree 9 is out of range"),
        ("v4 zero points", _patch(v4, 8, "<I", 0), "zero Gaussians"),
        ("legacy zero points", _legacy(_patch(legacy, 8, "<I", 0)), "zero Gaussians"),
        ("v4 count too big", _patch(v4, 8, "<I", 51), "positions stream holds 450 bytes but 51 Gaussians need 459"),
        ("legacy count too big", _legacy(_patch(legacy, 8, "<I", 51)), "truncated: header declares 51 Gaussians"),
        ("legacy count too small", _legacy(_patch(legacy, 8, "<I", 49)), "bytes more than 49 Gaussians need"),
        ("legacy huge count", _legacy(_patch(legacy, 8, "<I", 0xFFFFFFFF)), "can hold at most"),
        ("v4 huge count", _patch(v4, 8, "<I", 0xFFFFFFFF), "Gaussians need"),
        ("v4 stream count", _patch(v4, 15, "<B", 5), "5 streams declared, SH degree 3 needs 6"),
        ("v4 trailing bytes", v4 + b"junk", "4 unexpected bytes after the last stream"),
        ("v1 infinite position", _legacy(nan_v1), "NaN/Inf"),
        ("corrupt gzip", _legacy(legacy)[:30] + b"\xff" * 40 + _legacy(legacy)[70:], "corrupt gzip data"),
        ("truncated gzip", _legacy(legacy)[:-30], "truncated or corrupt gzip stream"),
        (
            "corrupt zstd",
            v4[:first_stream] + b"\0\0\0\0" + v4[first_stream + 4 :],
            "corrupt zstd data in the positions",
        ),
    ]


BAD_CASES = _bad_cases()


@pytest.mark.parametrize("name,data,message", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_files_are_refused(tmp_path, name, data, message):
    path = tmp_path / "bad.spz"
    path.write_bytes(data)
    with pytest.raises(SplatpackError, match=message) as err:
        spz.read(path)
    assert str(err.value).startswith(str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.spz"]


def test_bad_writes_leave_nothing(tmp_path):
    out = tmp_path / "out.spz"
    with pytest.raises(SplatpackError, match="zero Gaussians"):
        spz.write(Splats.empty(3), out)
    s = scene(10, 0)
    s.means[3, 1] = float("nan")
    with pytest.raises(SplatpackError, match="means has 1 Gaussian"):
        spz.write(s, out)
    with pytest.raises(SplatpackError, match="cannot write SPZ version 1"):
        spz.write(scene(10, 0), out, version=1)
    assert list(tmp_path.iterdir()) == []


def test_sniff():
    v4 = _v4(scene(5, 0))
    assert spz.sniff("x.bin", v4[:64])
    assert spz.sniff("x.spz", _legacy(_legacy_payload(n=5))[:64])
    assert not spz.sniff("x.gz", _legacy(b"hello"))
    assert not spz.sniff("x.spz", b"ply\n")


# ------------------------------------------------------------------------------------- fuzzing


_FUZZ_BASES = {
    "v4": _v4(scene(40, 3)),
    "v4-sh0": _v4(scene(40, 0)),
    "v3": _legacy(_legacy_payload(3, 2, 40)),
    "v2": _legacy(_legacy_payload(2, 0, 40)),
}


@settings(max_examples=200, deadline=2000, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(sorted(_FUZZ_BASES)),
    cut=st.one_of(st.none(), st.integers(0, 20_000)),
    edits=st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 255)), max_size=6),
)
def test_fuzzed_files_raise_only_splatpack_errors(base, cut, edits):
    data = bytearray(_FUZZ_BASES[base])
    for offset, value in edits:
        data[offset % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.spz"
        path.write_bytes(bytes(data))
        try:
            s = spz.read(path)
        except SplatpackError:
            return
    s.validate()  # anything that decodes is a finite, well-formed scene
