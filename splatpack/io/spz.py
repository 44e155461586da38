"""Niantic SPZ: read versions 1-4, write versions 2-4 (default 4), with the reference's quantization.

Layout (reference: github.com/nianticlabs/spz, ``load-spz.cc``; all integers little-endian):

- Versions 1-3: one gzip stream holding a 16-byte header (``NGSP`` magic, version, count, SH degree,
  fractional bits, flags, reserved), then the attribute arrays back to back: positions, alphas, colours,
  scales, rotations, SH. Version 1 stores float16 positions; versions 1-2 store rotations as three bytes.
- Version 4: a 32-byte plaintext header (adds the stream count and the byte offset of the table of
  contents), optional extension records (flags & 0x2) up to that offset, a table of contents of
  ``[compressed u64, uncompressed u64]`` per stream, then one zstd stream per attribute.

Quantization follows the reference bit for bit (float32 arithmetic, ``std::round`` half away from zero):
24-bit fixed-point positions with 12 fractional bits (fewer only when the scene would not fit in 24 bits),
``round((log_scale + 10) * 16)``, ``round(sigmoid(opacity) * 255)``, ``round(f_dc * 0.15 * 255 + 127.5)``,
rotations as smallest-three (v3/v4) or xyz bytes (v2), SH at 5 bits for band 1 and 4 bits above.

Coordinate frame. The SPZ README calls SPZ's frame RUB, but the format carries no frame marker and the
reference library converts only when the caller names a source frame (its default, ``UNSPECIFIED``, stores
coordinates unchanged). PlayCanvas splat-transform 3.7 / SuperSplat (the main producers of ``.spz`` files,
``biker.spz`` included) store the PLY's coordinates unchanged and read them back unchanged. splatpack does the
same by default (``assume_frame=None``): a PLY converted to SPZ by splatpack or by splat-transform gives the
same bytes (tested), both decode to the PLY's scene, not flipped, and PLY -> SPZ -> PLY is the identity up to
quantization. ``assume_frame="rdf"`` writes the Niantic convention instead (scene taken as RDF, stored as
RUB: y and z of positions negated, quaternion and SH coefficients flipped to match, byte-identical to the
reference with ``from=RDF``), and ``read(path, to_frame="rdf")`` undoes it. Files written that way look
upside down in splat-transform / SuperSplat, which is why it is not the default.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import zstandard

from splatpack.errors import SplatpackError
from splatpack.io.atomic import atomic_output
from splatpack.io.files import check_expansion, read_input_bytes
from splatpack.io.values import unit_quaternions
from splatpack.scene import SH_REST_COUNT, Arrays, Splats

MAGIC = b"NGSP"  # the reference's uint32 0x5053474e written little-endian
LEGACY_HEADER = struct.Struct("<4sIIBBBB")
V4_HEADER = struct.Struct("<4sIIBBBBI12x")
TOC_ENTRY = struct.Struct("<QQ")
FLAG_ANTIALIASED = 0x1
FLAG_EXTENSIONS = 0x2
DEFAULT_FRACTIONAL_BITS = 12
ZSTD_LEVEL = 12  # the reference's level for v4 streams
GZIP_LEVEL = 6  # the reference uses zlib's Z_DEFAULT_COMPRESSION with memLevel 9
GZIP_MAGIC = b"\x1f\x8b"
STREAM_NAMES = ("positions", "alphas", "colors", "scales", "rotations", "sh")
SH1_BUCKET = 1 << (8 - 5)
SH_REST_BUCKET = 1 << (8 - 4)
SH_CLIP = 200  # |round(x * 128)| beyond which every SH byte saturates to 0 or 255
# Opacities of exactly 0 or 1 would decode to an infinite logit; clamp like splat-transform does.
ALPHA_EPS = 1e-6
F32 = np.float32
_JUST_BELOW_HALF = np.nextafter(F32(0.5), F32(0))
SQRT1_2 = F32(0.707106781186547524401)

# RDF -> RUB (the reference's coordinateConverter for x kept, y and z flipped): per-axis position signs,
# signs of the quaternion's x, y, z, and signs of the 15 higher SH coefficients (bands 1-3).
_FLIP_P = np.array([1, -1, -1], dtype=F32)
_FLIP_Q = np.array([1, -1, -1], dtype=F32)
_FLIP_SH = np.array([-1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1], dtype=F32)
FRAMES = (None, "rub", "rdf")


# ---------------------------------------------------------------------------------------------- helpers


def _round(x: np.ndarray) -> np.ndarray:
    """``std::round`` of float32 values (half away from zero) in float32: adding the float just below 0.5
    before truncating is exact for every float32 (ties go up, 0.49999997 stays below 1)."""
    x = np.asarray(x, dtype=F32)
    r = np.copysign(_JUST_BELOW_HALF, x)
    r += x
    return np.trunc(r, out=r)


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(_round(x), 0, 255).astype(np.uint8)


def _check_frame(frame, path) -> bool:
    """Whether ``frame`` asks for the RDF <-> RUB conversion."""
    if frame not in FRAMES:
        raise SplatpackError(f"unknown coordinate frame {frame!r}; use None (store as is), 'rub' or 'rdf'", path)
    return frame == "rdf"


def _bytes_per_point(version: int, sh_degree: int) -> tuple[int, ...]:
    """Uncompressed bytes per Gaussian of each attribute array, in file order."""
    return (
        6 if version == 1 else 9,
        1,
        3,
        3,
        4 if version >= 3 else 3,
        3 * SH_REST_COUNT[sh_degree],
    )


# ---------------------------------------------------------------------------------------------- packing


def _fractional_bits(means: np.ndarray, path) -> int:
    """12 like the reference, or fewer when the scene's extent does not fit 24-bit fixed point."""
    extent = float(np.abs(means).max()) if means.size else 0.0
    for bits in range(DEFAULT_FRACTIONAL_BITS, -1, -1):
        if F32(extent) * F32(1 << bits) < (1 << 23) - 0.5:  # rounds to at most 2^23 - 1
            return bits
    raise SplatpackError(f"positions reach {extent:g}, beyond SPZ's 24-bit fixed-point range (±8388607)", path)


def _normalized_xyzw(quats_wxyz: np.ndarray) -> np.ndarray:
    """Unit quaternions in xyzw order, normalized in float32 in the reference's summation order (a zero
    quaternion stores the identity, as in every writer)."""
    return unit_quaternions(np.ascontiguousarray(quats_wxyz[:, [1, 2, 3, 0]], dtype=F32), w_index=3)


def _pack_rotations(q: np.ndarray, version: int) -> np.ndarray:
    n = q.shape[0]
    if version < 3:
        s = np.where(q[:, 3] < 0, F32(-127.5), F32(127.5)).astype(F32)
        return _to_u8(q[:, :3] * s[:, None] + F32(127.5))
    largest = np.argmax(np.abs(q), axis=1)
    negate = q[np.arange(n), largest] < 0
    negbit = ((q < 0) ^ negate[:, None]).astype(np.uint32)
    mag = np.floor((F32(511) * (np.abs(q) / SQRT1_2)) + F32(0.5)).astype(np.uint32)
    fields = (negbit << 9) | mag
    comp = largest.astype(np.uint32)
    for i in range(4):
        keep = largest != i
        comp = np.where(keep, (comp << 10) | fields[:, i], comp)
    return comp.astype("<u4").view(np.uint8).reshape(n, 4)


def _sh_table(bucket: int) -> np.ndarray:
    """Byte for each rounded ``x * 128`` in [-SH_CLIP, SH_CLIP]: shifted by 128, snapped to a bucket, clamped."""
    q = np.arange(-SH_CLIP, SH_CLIP + 1) + 128
    return np.clip((q + bucket // 2) // bucket * bucket, 0, 255).astype(np.uint8)


# Both tables end to end, and per SH byte (3 band-1 coefficients x 3 channels first) where its table starts.
_SH_TABLE = np.concatenate([_sh_table(SH1_BUCKET), _sh_table(SH_REST_BUCKET)])
_SH_TABLE_AT = np.array([SH_CLIP] * 9 + [3 * SH_CLIP + 1] * 36, dtype=np.int16)


def _quantize_sh(sh: np.ndarray) -> np.ndarray:
    """(N, K, 3) SH -> (N, K*3) bytes: band 1 at 5 bits, higher bands at 4 bits, 0 on a bucket centre.
    Rounded values are clipped to ±SH_CLIP before the table look-up, which saturates to 0 / 255 either way."""
    flat = sh.reshape(sh.shape[0], -1)
    r = _round(flat * F32(128.0))
    np.clip(r, -SH_CLIP, SH_CLIP, out=r)
    index = r.astype(np.int16)
    index += _SH_TABLE_AT[: index.shape[1]]
    return _SH_TABLE[index]


def _pack(splats: Splats, version: int, flip: bool, path) -> tuple[int, list[np.ndarray]]:
    """Fractional bits and the attribute arrays (uint8, file order) for ``splats``."""
    s = splats.numpy(np.float32)
    means, quats, shN = s.means, s.quats, s.shN
    if flip:
        means = means * _FLIP_P
        shN = shN * _FLIP_SH[: shN.shape[1], None]
    bits = _fractional_bits(means, path)
    fixed = _round(means * F32(1 << bits)).astype(np.int64)
    positions = (fixed[..., None] >> np.array([0, 8, 16])) & 0xFF
    q = _normalized_xyzw(quats)
    if flip:
        q[:, :3] *= _FLIP_Q
    # expf as a correctly rounded float32 (exp in float64, then rounded), like the reference's libm; numpy's
    # float32 exp is off by an ulp now and then, enough to flip a byte sitting on a rounding boundary.
    with np.errstate(over="ignore"):  # exp overflowing to inf gives alpha 0, as in the reference
        e = np.exp(-s.opacity_logits.astype(np.float64)).astype(F32)
    alphas = _to_u8(F32(1) / (F32(1) + e) * F32(255))
    colors = _to_u8(s.sh0[:, 0, :] * (F32(0.15) * F32(255)) + F32(127.5))
    scales = _to_u8((s.log_scales + F32(10)) * F32(16))
    arrays = [positions.astype(np.uint8).reshape(len(s), 9), alphas, colors, scales, _pack_rotations(q, version)]
    arrays.append(_quantize_sh(shN))
    return bits, arrays


def _serialize(version: int, count: int, sh_degree: int, bits: int, flags: int, arrays: list[np.ndarray]) -> bytes:
    blobs = [np.ascontiguousarray(a).tobytes() for a in arrays]
    if version < 4:
        header = LEGACY_HEADER.pack(MAGIC, version, count, sh_degree, bits, flags, 0)
        deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 9)
        return deflate.compress(header + b"".join(blobs)) + deflate.flush()
    if sh_degree == 0:
        blobs = blobs[:5]  # the reference writes no SH stream for degree 0
    with ThreadPoolExecutor(max_workers=min(len(blobs), os.cpu_count() or 1)) as pool:
        packed = list(pool.map(_zstd_compress, blobs))
    header = V4_HEADER.pack(MAGIC, version, count, sh_degree, bits, flags, len(blobs), V4_HEADER.size)
    toc = b"".join(TOC_ENTRY.pack(len(c), len(u)) for c, u in zip(packed, blobs))
    return header + toc + b"".join(packed)


def _zstd_compress(blob: bytes) -> bytes:
    # One compressor per call: a ZstdCompressor object is not safe to share between threads.
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(blob)


def write(
    splats: Splats,
    path: str | os.PathLike,
    *,
    version: int = 4,
    sh_degree: int | None = None,
    assume_frame: str | None = None,
    antialiased: bool = False,
) -> None:
    """Write ``splats`` as SPZ ``version`` (2, 3 or 4).

    ``sh_degree`` drops (or zero-pads) SH bands first; ``assume_frame`` is None to store coordinates as they
    are (splat-transform's convention, the default) or ``"rdf"`` to convert an RDF scene to SPZ's nominal RUB;
    ``antialiased`` sets the header flag for Mip-Splatting-style scenes.
    """
    if version not in (2, 3, 4):
        raise SplatpackError(f"cannot write SPZ version {version}; choose 2, 3 or 4", path)
    flip = _check_frame(assume_frame, path)
    if sh_degree is not None:
        splats = splats.with_sh_degree(sh_degree)
    splats.validate(source=os.fspath(path))
    if len(splats) == 0:
        raise SplatpackError("cannot write an SPZ file with zero Gaussians", path)
    if len(splats) > 0xFFFFFFFF:
        raise SplatpackError(f"{len(splats)} Gaussians exceed SPZ's 32-bit count", path)
    bits, arrays = _pack(splats, version, flip, path)
    flags = FLAG_ANTIALIASED if antialiased else 0
    data = _serialize(version, len(splats), splats.sh_degree, bits, flags, arrays)
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


# ---------------------------------------------------------------------------------------------- parsing


def _check_header(version: int, count: int, sh_degree: int, path) -> None:
    if version not in (1, 2, 3, 4):
        raise SplatpackError(f"unsupported SPZ version {version} (supported: 1-4)", path)
    if sh_degree == 4:
        raise SplatpackError("SH degree 4 is not supported (splatpack handles degrees 0-3)", path)
    if sh_degree not in SH_REST_COUNT:
        raise SplatpackError(f"SH degree {sh_degree} is out of range (0-4)", path)
    if count == 0:
        raise SplatpackError("the file holds zero Gaussians", path)


def _gunzip_exact(data: bytes, path) -> tuple[tuple, bytes, bytes]:
    """Header fields, optional extension bytes and array bytes of a legacy file, inflating only what the
    header says is there (a corrupt or hostile count never allocates more than the data really holds)."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        head = inflate.decompress(data, LEGACY_HEADER.size)
        if len(head) < LEGACY_HEADER.size:
            raise SplatpackError(f"truncated: gzip payload ends after {len(head)} of 16 header bytes", path)
        magic, version, count, sh_degree, bits, flags, _ = LEGACY_HEADER.unpack(head)
        if magic != MAGIC:
            raise SplatpackError(f"not an SPZ file: gzip payload starts with {magic!r}, expected b'NGSP'", path)
        _check_header(version, count, sh_degree, path)
        expected = count * sum(_bytes_per_point(version, sh_degree))
        check_expansion(expected, len(data), f"the header ({count} Gaussians)", path)
        body = inflate.decompress(inflate.unconsumed_tail, expected + (1 << 16))
        if not inflate.eof and len(body) <= expected:
            body += inflate.flush()
    except zlib.error as exc:
        raise SplatpackError(f"corrupt gzip data: {exc}", path) from None
    if not inflate.eof:
        if len(body) > expected and flags & FLAG_EXTENSIONS == 0:
            raise SplatpackError(f"decompressed data is larger than {count} Gaussians need", path)
        raise SplatpackError("truncated or corrupt gzip stream (no end marker)", path)
    ext_len = len(body) - expected
    if ext_len < 0:
        raise SplatpackError(
            f"truncated: header declares {count} Gaussians ({expected} bytes) but the data holds {len(body)}", path
        )
    if ext_len and not flags & FLAG_EXTENSIONS:
        raise SplatpackError(f"{ext_len} bytes more than {count} Gaussians need", path)
    # Legacy extension records sit between the header and the arrays; their size is what is left over.
    return (version, count, sh_degree, bits, flags), body[:ext_len], body[ext_len:]


def _split(body: bytes, version: int, count: int, sh_degree: int) -> list[np.ndarray]:
    arrays, offset = [], 0
    for per in _bytes_per_point(version, sh_degree):
        arrays.append(np.frombuffer(body, np.uint8, count * per, offset).reshape(count, per))
        offset += count * per
    return arrays


def _parse_v4(data: bytes, path) -> tuple[tuple, list[dict], list[np.ndarray]]:
    if len(data) < V4_HEADER.size:
        raise SplatpackError(f"truncated: {len(data)} bytes, shorter than the 32-byte SPZ v4 header", path)
    magic, version, count, sh_degree, bits, flags, num_streams, toc_offset = V4_HEADER.unpack_from(data)
    _check_header(version, count, sh_degree, path)
    if version != 4:
        raise SplatpackError(f"plaintext NGSP header with version {version}; only version 4 is uncompressed", path)
    sizes = [count * per for per in _bytes_per_point(version, sh_degree)]
    if sh_degree == 0:
        sizes = sizes[:5]
    if num_streams != len(sizes):
        raise SplatpackError(f"{num_streams} streams declared, SH degree {sh_degree} needs {len(sizes)}", path)
    if toc_offset < V4_HEADER.size:
        raise SplatpackError(f"table of contents offset {toc_offset} points inside the header", path)
    streams_at = toc_offset + num_streams * TOC_ENTRY.size
    if streams_at > len(data):
        raise SplatpackError(f"truncated: table of contents ends at {streams_at}, file has {len(data)} bytes", path)
    entries, offset = [], streams_at
    for i, expected in enumerate(sizes):
        compressed, uncompressed = TOC_ENTRY.unpack_from(data, toc_offset + i * TOC_ENTRY.size)
        name = STREAM_NAMES[i]
        if uncompressed != expected:
            raise SplatpackError(
                f"{name} stream holds {uncompressed} bytes but {count} Gaussians need {expected}", path
            )
        if offset + compressed > len(data):
            raise SplatpackError(f"truncated: {name} stream ends at {offset + compressed} of {len(data)} bytes", path)
        entries.append({"name": name, "offset": offset, "compressed": compressed, "uncompressed": uncompressed})
        offset += compressed
    if offset != len(data):
        raise SplatpackError(f"{len(data) - offset} unexpected bytes after the last stream", path)
    check_expansion(sum(sizes), len(data), f"the header ({count} Gaussians)", path)
    header = (version, count, sh_degree, bits, flags)
    # Extension records (vendor data such as camera limits) carry nothing splatpack uses: the table of
    # contents' offset skips them; they are only listed, for describe().
    records = _extension_records(data[V4_HEADER.size : toc_offset], path) if flags & FLAG_EXTENSIONS else []
    return header, entries, records


def _extension_records(zone: bytes, path) -> list[dict]:
    """Type and size of each ``[u32 type][u32 length][payload]`` extension record (skipped on read)."""
    records, at = [], 0
    while at < len(zone):
        if at + 8 > len(zone):
            raise SplatpackError("truncated extension record header", path)
        kind, length = struct.unpack_from("<II", zone, at)
        if at + 8 + length > len(zone):
            raise SplatpackError(f"extension record 0x{kind:08x} runs past the table of contents", path)
        records.append({"type": kind, "bytes": length})
        at += 8 + length
    return records


def _unzstd(data: bytes, entry: dict, path) -> np.ndarray:
    blob = data[entry["offset"] : entry["offset"] + entry["compressed"]]
    name, expected = entry["name"], entry["uncompressed"]
    try:
        declared = zstandard.frame_content_size(blob)
        if declared not in (-1, expected):
            raise SplatpackError(
                f"{name} zstd frame declares {declared} bytes, table of contents says {expected}", path
            )
        # Frames without a declared size are capped at the expected size (a bomb cannot inflate further).
        out = zstandard.ZstdDecompressor().decompress(blob, max_output_size=expected + 1)
    except zstandard.ZstdError as exc:
        raise SplatpackError(f"corrupt zstd data in the {name} stream: {exc}", path) from None
    if len(out) != expected:
        raise SplatpackError(f"{name} stream decompresses to {len(out)} bytes, expected {expected}", path)
    return np.frombuffer(out, np.uint8)


def _load(path) -> tuple[tuple, list[np.ndarray]]:
    """Header fields and the uncompressed attribute arrays of an SPZ file."""
    data = read_input_bytes(path, "an SPZ file")
    if data[:2] == GZIP_MAGIC:
        header, _, body = _gunzip_exact(data, path)
        return header, _split(body, header[0], header[1], header[2])
    if data[:4] == MAGIC:
        header, entries, _ = _parse_v4(data, path)
        count, degree = header[1], header[2]
        arrays = [_unzstd(data, e, path).reshape(count, -1) for e in entries]
        if degree == 0:
            arrays.append(np.zeros((count, 0), np.uint8))
        return header, arrays
    if len(data) < 4:
        raise SplatpackError(f"truncated: {len(data)} bytes, too short for an SPZ header", path)
    raise SplatpackError(f"not an SPZ file: starts with {data[:4]!r} (expected gzip 1f 8b or b'NGSP')", path)


# ---------------------------------------------------------------------------------------------- decoding


def _unpack_rotations(r: np.ndarray, version: int) -> np.ndarray:
    """xyzw quaternions from 3-byte (v1/v2) or smallest-three (v3/v4) rotations."""
    if version < 3:
        xyz = r.astype(np.float64) / 127.5 - 1.0
        w = np.sqrt(np.maximum(0.0, 1.0 - (xyz * xyz).sum(axis=1)))
        return np.concatenate([xyz, w[:, None]], axis=1)
    comp = np.ascontiguousarray(r).view("<u4")[:, 0].astype(np.int64)
    largest = comp >> 30
    q = np.zeros((r.shape[0], 4))
    for i in range(3, -1, -1):
        here = largest != i
        value = float(SQRT1_2) * (comp & 511) / 511.0
        value = np.where((comp >> 9) & 1, -value, value)
        q[:, i] = np.where(here, value, 0.0)
        comp = np.where(here, comp >> 10, comp)
    rest = np.maximum(0.0, 1.0 - (q * q).sum(axis=1))
    q[np.arange(len(q)), largest] = np.sqrt(rest)
    return q


def _decode(header: tuple, arrays: list[np.ndarray], flip: bool, path, kind: Arrays) -> Splats:
    version, count, sh_degree, bits, _ = header
    pos, alphas, colors, scales, rot, sh = arrays
    if version == 1:
        # Only float16 positions can be NaN/Inf (every other field decodes from bytes to finite values): they
        # follow the reading policy in Splats.from_numpy.
        means = np.ascontiguousarray(pos).view("<f2").astype(F32)
    else:
        raw = pos.reshape(count, 3, 3).astype(np.int32)
        fixed = raw[..., 0] | (raw[..., 1] << 8) | (raw[..., 2] << 16)
        fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
        means = fixed.astype(F32) * F32(1.0 / (1 << bits))
    q = _unpack_rotations(rot, version)
    a = np.clip(alphas[:, 0] / 255.0, ALPHA_EPS, 1 - ALPHA_EPS)
    shN = ((sh.astype(F32) - 128) / 128).reshape(count, SH_REST_COUNT[sh_degree], 3)
    if flip:
        means = means * _FLIP_P
        q[:, :3] *= _FLIP_Q
        shN = shN * _FLIP_SH[: shN.shape[1], None]
    return Splats.from_numpy(
        means=means,
        quats=q[:, [3, 0, 1, 2]],
        log_scales=scales / 16.0 - 10.0,
        opacity_logits=np.log(a / (1 - a)),
        sh0=(colors / 255.0 - 0.5) / 0.15,
        shN=shN,
        source=path,
        arrays=kind,
    )


def read(path: str | os.PathLike, *, to_frame: str | None = None, arrays: Arrays = "torch") -> Splats:
    """Read an SPZ file (v1-v4). ``to_frame="rdf"`` undoes a writer's RDF -> RUB conversion."""
    flip = _check_frame(to_frame, path)
    header, streams = _load(path)
    return _decode(header, streams, flip, path, arrays)


def sniff(path, head: bytes) -> bool:
    """NGSP magic (v4) or a gzip stream in a file named ``.spz`` (the magic is inside the compression)."""
    return head[:4] == MAGIC or (head[:2] == GZIP_MAGIC and str(path).lower().endswith(".spz"))


def describe(path: str | os.PathLike) -> dict:
    """Version, count, SH degree, fractional bits, flags and (v4) stream sizes, without decoding values."""
    data = read_input_bytes(path, "an SPZ file")
    if data[:4] == MAGIC:
        header, entries, records = _parse_v4(data, path)
        extra = {
            "streams": {e["name"]: {"compressed": e["compressed"], "uncompressed": e["uncompressed"]} for e in entries},
            "extension_records": records,
        }
    elif data[:2] == GZIP_MAGIC:
        header, ext, _ = _gunzip_exact(data, path)
        extra = {"extension_bytes": len(ext)}
    else:
        raise SplatpackError(f"not an SPZ file: starts with {data[:4]!r}", path)
    version, count, sh_degree, bits, flags = header
    return {
        "format": "spz",
        "version": version,
        "count": count,
        "sh_degree": sh_degree,
        "fractional_bits": bits,
        "antialiased": bool(flags & FLAG_ANTIALIASED),
        "extensions": bool(flags & FLAG_EXTENSIONS),
        "file_bytes": len(data),
        **extra,
    }
