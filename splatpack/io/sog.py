"""PlayCanvas SOG ("Spatially Ordered Gaussians"): lossless WebP textures described by ``meta.json``.

Forms: a bundled ``.sog`` (zip, entries stored), a folder holding ``meta.json`` and the textures, or the
path of that ``meta.json``. Gaussian ``i`` lives in texel ``i`` (row-major) of every per-Gaussian texture;
texels past ``count`` are padding. Layout of version 2 (what splat-transform 3.x writes):

- ``means_l`` / ``means_u``: low / high byte of a 16-bit lerp between per-axis ``mins``/``maxs`` of
  ``sign(x) * log(|x| + 1)``;
- ``quats``: smallest three components of the unit quaternion (w, x, y, z order, largest made positive),
  each ``255 * (c * sqrt(2) * 0.5 + 0.5)``; alpha is ``252 + index of the largest``;
- ``scales``: per-axis byte indexing a 256-entry codebook of log scales;
- ``sh0``: per-channel byte indexing a 256-entry codebook of DC coefficients; alpha is ``sigmoid(opacity)``;
- ``shN_labels`` (16-bit palette index in R, G) and ``shN_centroids`` (64 palette entries per row, one texel
  per coefficient, RGB bytes indexing a 256-entry codebook).

Legacy version 1 (no ``version`` key; e.g. the PlayCanvas logo sample) stores scales, sh0 + opacity logit and
the SH palette as 8-bit lerps between ``mins``/``maxs`` instead of codebooks.

The writer sorts Gaussians into the grid with ``splatpack.sort.grid_order`` (PLAS by default) so that
neighbouring texels hold similar values and the WebP textures compress well, and builds the codebooks and the
SH palette with ``splatpack.quant.kmeans``.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, WebPImagePlugin

from splatpack.errors import SplatpackError
from splatpack.io.atomic import atomic_folder, atomic_output
from splatpack.io.files import check_expansion, check_input, read_input_bytes
from splatpack.io.values import unit_quaternions
from splatpack.progress import stage
from splatpack.quant.scalar import kmeans_1d
from splatpack.scene import SH_REST_COUNT, Arrays, Splats
from splatpack.sort.morton import morton_order

VERSION = 2
PALETTE_ROW = 64  # palette entries per row of shN_centroids
CODEBOOK_SIZE = 256
MAX_TEXTURE_SIDE = 16383  # WebP's limit
MAX_META_BYTES = 1 << 20  # splatpack's and splat-transform's meta.json are ~10 KB: codebooks and names
MAX_PALETTE = 65536  # 16-bit labels
_SQRT2 = math.sqrt(2.0)
# The largest component is dropped; the other three are stored in ascending index order.
_QUAT_OTHERS = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])
# Legacy palette textures carry no band count; their width tells it (64 entries x coefficients).
_V1_BANDS_BY_WIDTH = {PALETTE_ROW * SH_REST_COUNT[d]: d for d in (1, 2, 3)}


# ---------------------------------------------------------------------------------------------- containers


class _Container:
    """Named files of one SOG: a zip bundle or the folder of a ``meta.json``."""

    def __init__(self, path: Path):
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if path.is_dir():
            self.folder, self.meta_name = path, "meta.json"
        elif path.name.lower().endswith(".json"):
            self.folder, self.meta_name = path.parent, path.name
        else:
            self.folder, self.meta_name = None, "meta.json"
            check_input(path)
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise SplatpackError(f"not a SOG bundle (bad zip: {exc})", path) from None

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()

    def names(self) -> list[str]:
        if self.zip is not None:
            return self.zip.namelist()
        return sorted(p.name for p in self.folder.iterdir() if p.is_file())

    def read(self, name: str, limit: int) -> bytes:
        """Bytes of member ``name``, refused before inflating or reading when it holds more than ``limit``."""
        if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
            raise SplatpackError(f"meta.json names an invalid texture file {name!r}", self.path)
        too_big = f"{name} holds more than the {limit} bytes it may (a SOG member that large is not a texture)"
        try:
            if self.zip is not None:
                if self.zip.getinfo(name).file_size > limit:
                    raise SplatpackError(too_big, self.path)
                with self.zip.open(name) as member:  # the stored size may lie: never inflate past the limit
                    data = member.read(limit + 1)
                if len(data) > limit:
                    raise SplatpackError(too_big, self.path)
                return data
            member = self.folder / name
            if not os.path.lexists(member):
                raise FileNotFoundError
            return read_input_bytes(member, "a SOG texture", max_bytes=limit, name=f"{self.path}: {name}")
        except SplatpackError:
            raise
        except KeyError:
            raise SplatpackError(f"missing file {name} in the bundle", self.path) from None
        except FileNotFoundError:
            raise SplatpackError(f"missing file {name} beside meta.json", self.path) from None
        except (
            zipfile.BadZipFile,
            zlib.error,
            NotImplementedError,
            RuntimeError,
            EOFError,
            OSError,
            ValueError,
        ) as exc:
            raise SplatpackError(f"cannot read {name}: {exc}", self.path) from None

    def size(self, name: str) -> int:
        if self.zip is not None:
            return self.zip.getinfo(name).file_size
        return (self.folder / name).stat().st_size

    def stored_bytes(self, names) -> int:
        """Bytes the SOG occupies: the bundle, or meta.json and the files it names (not whatever else lies there)."""
        if self.zip is not None:
            return self.path.stat().st_size
        return sum(self.size(name) for name in {self.meta_name, *names})


def _open(path: str | os.PathLike) -> tuple[_Container, dict]:
    p = Path(path)
    if not p.exists():
        raise SplatpackError("no such file", p)
    box = _Container(p)
    try:
        raw = box.read(box.meta_name, MAX_META_BYTES)
        try:
            meta = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise SplatpackError(f"bad meta.json: {str(exc)[:80]}", p) from None
        if not isinstance(meta, dict):
            raise SplatpackError("bad meta.json: not a JSON object", p)
        return box, _parse_meta(meta, p)
    except BaseException:
        box.close()
        raise


# ---------------------------------------------------------------------------------------------- meta.json


def _floats(value, n: int | None, what: str, path: Path) -> np.ndarray:
    """``value`` as a finite float64 vector (of length ``n`` when given) or a SplatpackError."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 1 or (n is not None and arr.shape[0] != n) or not np.isfinite(arr).all():
        want = f"{n} finite numbers" if n is not None else "a list of finite numbers"
        raise SplatpackError(f"bad meta.json: {what} must be {want}", path)
    return arr


def _files(entry: dict, n: int, what: str, path: Path) -> list[str]:
    files = entry.get("files")
    if not isinstance(files, list) or len(files) < n or not all(isinstance(f, str) for f in files[:n]):
        raise SplatpackError(f"bad meta.json: {what}.files must list {n} file name(s)", path)
    return files[:n]


def _section(meta: dict, key: str, path: Path) -> dict:
    entry = meta.get(key)
    if not isinstance(entry, dict):
        raise SplatpackError(f"bad meta.json: missing '{key}' section", path)
    return entry


def _parse_meta(meta: dict, path: Path) -> dict:
    """Validated, version-independent description of the textures and their dequantization."""
    version = meta.get("version", 1)
    if version not in (1, 2) or isinstance(version, bool):
        raise SplatpackError(f"unsupported SOG version {version!r} (known: 1, 2)", path)
    means, quats = _section(meta, "means", path), _section(meta, "quats", path)
    scales, sh0 = _section(meta, "scales", path), _section(meta, "sh0", path)
    if version == 2:
        count = meta.get("count")
    else:
        shape = means.get("shape")
        count = shape[0] if isinstance(shape, list) and shape else None
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise SplatpackError(f"bad meta.json: Gaussian count {count!r} is not a positive integer", path)
    if count > MAX_TEXTURE_SIDE**2:
        raise SplatpackError(f"bad meta.json: {count} Gaussians exceed what SOG textures can hold", path)
    out = {
        "version": version,
        "count": count,
        "means": (_floats(means.get("mins"), 3, "means.mins", path), _floats(means.get("maxs"), 3, "means.maxs", path)),
        "files": {
            "means_l": _files(means, 2, "means", path)[0],
            "means_u": _files(means, 2, "means", path)[1],
            "quats": _files(quats, 1, "quats", path)[0],
            "scales": _files(scales, 1, "scales", path)[0],
            "sh0": _files(sh0, 1, "sh0", path)[0],
        },
        "shN": None,
    }
    if version == 2:
        out["scales"] = _floats(scales.get("codebook"), CODEBOOK_SIZE, "scales.codebook", path)
        out["sh0"] = _floats(sh0.get("codebook"), CODEBOOK_SIZE, "sh0.codebook", path)
    else:
        out["scales"] = (
            _floats(scales.get("mins"), 3, "scales.mins", path),
            _floats(scales.get("maxs"), 3, "scales.maxs", path),
        )
        out["sh0"] = (_floats(sh0.get("mins"), 4, "sh0.mins", path), _floats(sh0.get("maxs"), 4, "sh0.maxs", path))
    shn = meta.get("shN")
    if shn is not None:
        if not isinstance(shn, dict):
            raise SplatpackError("bad meta.json: 'shN' must be an object", path)
        files = _files(shn, 2, "shN", path)
        out["files"]["shN_centroids"], out["files"]["shN_labels"] = files
        if version == 2:
            bands, palette = shn.get("bands"), shn.get("count")
            if bands not in (1, 2, 3) or isinstance(bands, bool):
                raise SplatpackError(f"bad meta.json: shN.bands {bands!r} is not 1, 2 or 3", path)
            if not isinstance(palette, int) or isinstance(palette, bool) or not 1 <= palette <= MAX_PALETTE:
                raise SplatpackError(f"bad meta.json: shN.count {palette!r} is not an integer in 1-{MAX_PALETTE}", path)
            out["shN"] = {
                "bands": bands,
                "count": palette,
                "codebook": _floats(shn.get("codebook"), CODEBOOK_SIZE, "shN.codebook", path),
            }
        else:
            lo, hi = _floats([shn.get("mins")], 1, "shN.mins", path), _floats([shn.get("maxs")], 1, "shN.maxs", path)
            out["shN"] = {"bands": None, "count": None, "range": (lo[0], hi[0])}
    return out


# ---------------------------------------------------------------------------------------------- textures


def _max_texels(count: int | None) -> int:
    """Texels a texture may have: per-Gaussian textures about ``count`` (writers pad rows to multiples of 4 and
    may pick another width for their sort), the palette texture at most 960 x 1024 (64k entries of SH-3)."""
    if count is None:
        return PALETTE_ROW * SH_REST_COUNT[3] * (MAX_PALETTE // PALETTE_ROW)
    return 4 * count + (1 << 16)


def _texture_bytes_limit(count: int | None) -> int:
    # A lossless WebP never needs much more than its raw RGBA (incompressible data is stored near-verbatim).
    return 4 * _max_texels(count) + (1 << 16)


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a WebP file's first chunk header (lossy VP8, lossless VP8L or extended VP8X), or None.
    Read here because libwebp allocates the whole canvas when Pillow merely opens the file."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk, body = data[12:16], data[20:30]
    if chunk == b"VP8L" and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(body[4:7], "little") + 1, int.from_bytes(body[7:10], "little") + 1
    if chunk == b"VP8 " and body[3:6] == b"\x9d\x01\x2a":
        return int.from_bytes(body[6:8], "little") & 0x3FFF, int.from_bytes(body[8:10], "little") & 0x3FFF
    return None


def _check_texture_size(box: _Container, name: str, w: int, h: int, count: int | None) -> None:
    if count is not None and w * h < count:
        raise SplatpackError(f"texture {name} is {w}x{h}, too small for {count} Gaussians", box.path)
    if w * h > _max_texels(count):
        need = "the SH palette" if count is None else f"{count} Gaussians"
        raise SplatpackError(f"texture {name} is {w}x{h}, far more texels than {need} need", box.path)


def _open_webp(box: _Container, name: str, data: bytes, count: int | None) -> Image.Image:
    """The opened (not yet decoded) WebP ``name``, refused unless its size suits ``count`` texels."""
    declared = _webp_size(data)
    if declared is not None:
        _check_texture_size(box, name, *declared, count)
    try:
        # The plugin's class, not Image.open: that would first import five other formats' plugins (~20 ms). The
        # class refuses only twice Pillow's pixel limit; the limit itself (Image.open's warning) is checked below.
        im = WebPImagePlugin.WebPImageFile(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise SplatpackError(f"texture {name} is far too large ({str(exc)[:80]})", box.path) from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - pillow signals corrupt images with many exception types
        raise SplatpackError(
            f"texture {name} is not a readable WebP image ({type(exc).__name__}: {str(exc)[:60]})", box.path
        ) from None
    try:
        pixels = im.width * im.height
        if Image.MAX_IMAGE_PIXELS and pixels > Image.MAX_IMAGE_PIXELS:
            raise SplatpackError(
                f"texture {name} is far too large ({pixels} pixels, over Pillow's limit of {Image.MAX_IMAGE_PIXELS})",
                box.path,
            )
        _check_texture_size(box, name, *im.size, count)
    except SplatpackError:
        im.close()
        raise
    return im


def _texture_size(box: _Container, name: str, count: int | None) -> tuple[int, int]:
    with _open_webp(box, name, box.read(name, _texture_bytes_limit(count)), count) as im:
        return im.size


def _decode_texture(box: _Container, name: str, count: int | None) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of a WebP texture that must hold at least ``count`` texels (and not far more)."""
    data = box.read(name, _texture_bytes_limit(count))
    with _open_webp(box, name, data, count) as im:
        w, h = im.size
        try:
            rgba = np.asarray(im.convert("RGBA"))
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - same as in _open_webp
            raise SplatpackError(
                f"texture {name} is not a readable WebP image ({type(exc).__name__}: {str(exc)[:60]})", box.path
            ) from None
    if rgba.shape != (h, w, 4):
        raise SplatpackError(f"texture {name} decoded to an unexpected shape {rgba.shape}", box.path)
    return rgba


def _texels(box: _Container, name: str, count: int) -> np.ndarray:
    """(count, 4) uint8: the first ``count`` texels in row-major order (narrow: callers widen what they need)."""
    return _decode_texture(box, name, count).reshape(-1, 4)[:count]


def _check_sizes(box: _Container, m: dict) -> None:
    """Every texture's dimensions (from its header) suit the count, and the decoded total is what the stored
    bytes can hold: checked before the first decode, so a small file cannot claim gigabytes."""
    decoded = 0
    for role, name in m["files"].items():
        w, h = _texture_size(box, name, None if role == "shN_centroids" else m["count"])
        decoded += 4 * w * h
    stored = box.stored_bytes(m["files"].values())
    check_expansion(decoded, stored, f"its textures ({m['count']} Gaussians)", box.path)


def _inv_log(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.expm1(np.abs(v))


def _unpack_quats(t: np.ndarray) -> np.ndarray:
    """(N, 4) quaternions (w, x, y, z) from smallest-three texels; an invalid tag decodes to identity."""
    n = len(t)
    small = (t[:, :3] / 255 * 2 - 1) / _SQRT2
    tag = t[:, 3].astype(np.int16) - 252
    valid = (tag >= 0) & (tag <= 3)
    largest = np.where(valid, tag, 0)
    quats = np.zeros((n, 4))
    quats[np.arange(n), largest] = np.sqrt(np.clip(1 - (small**2).sum(axis=1), 0, None))
    np.put_along_axis(quats, _QUAT_OTHERS[largest], small, axis=1)
    quats[~valid] = (1.0, 0.0, 0.0, 0.0)
    return quats


def _logit(p: np.ndarray) -> np.ndarray:
    # Same clamp as the PlayCanvas decoder, so fully transparent / opaque texels stay finite.
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _decode_shN(box: _Container, m: dict, count: int) -> np.ndarray:
    shn = m["shN"]
    cen = _decode_texture(box, m["files"]["shN_centroids"], None)
    height, width = cen.shape[:2]
    bands = shn["bands"] if shn["bands"] is not None else _V1_BANDS_BY_WIDTH.get(width)
    if bands is None:
        raise SplatpackError(f"shN centroids texture width {width} is not 192, 512 or 960", box.path)
    k = SH_REST_COUNT[bands]
    if width != PALETTE_ROW * k:
        raise SplatpackError(
            f"shN centroids texture width {width} does not match {bands} SH bands ({PALETTE_ROW * k})", box.path
        )
    slots = PALETTE_ROW * height
    palette = slots if shn["count"] is None else min(shn["count"], slots)
    lab = _texels(box, m["files"]["shN_labels"], count)
    labels = lab[:, 0].astype(np.int32) | (lab[:, 1].astype(np.int32) << 8)
    if labels.max() >= palette:
        raise SplatpackError(f"shN label {int(labels.max())} is outside the {palette}-entry palette", box.path)
    # (slots, k, 3) centroid bytes: entry e, coefficient j sits at texel (row e // 64, column (e % 64) * k + j).
    entries = cen[:, :, :3].reshape(height, PALETTE_ROW, k, 3).reshape(slots, k, 3)
    if shn["count"] is None:
        lo, hi = shn["range"]
        values = lo + (hi - lo) * (entries / 255)
    else:
        values = shn["codebook"][entries]
    # Gathered in float32 (what Splats holds): the (N, K, 3) result is the largest array of a decode.
    return values.astype(np.float32)[labels]


def _decode(box: _Container, m: dict, arrays: Arrays) -> Splats:
    n, f = m["count"], m["files"]
    _check_sizes(box, m)
    lo, hi = _texels(box, f["means_l"], n), _texels(box, f["means_u"], n)
    q16 = lo[:, :3].astype(np.uint16) | (hi[:, :3].astype(np.uint16) << 8)
    mins, maxs = m["means"]
    span = np.where(maxs - mins != 0, maxs - mins, 1.0)
    means = _inv_log(mins + span * (q16 / 65535))

    quats = _unpack_quats(_texels(box, f["quats"], n))

    s = _texels(box, f["scales"], n)[:, :3]
    c = _texels(box, f["sh0"], n)
    if m["version"] == 2:
        log_scales = m["scales"][s]
        sh0 = m["sh0"][c[:, :3]]
        opacity = _logit(c[:, 3] / 255)
    else:
        smin, smax = m["scales"]
        log_scales = smin + (smax - smin) * (s / 255)
        cmin, cmax = m["sh0"]
        lerped = cmin + (cmax - cmin) * (c / 255)
        sh0, opacity = lerped[:, :3], lerped[:, 3]

    shN = _decode_shN(box, m, n) if m["shN"] is not None else np.zeros((n, 0, 3))

    return Splats.from_numpy(
        means=means,
        quats=quats,
        log_scales=log_scales,
        opacity_logits=opacity,
        sh0=sh0,
        shN=shN,
        source=box.path,
        arrays=arrays,
    )


def read(path: str | os.PathLike, *, arrays: Arrays = "torch") -> Splats:
    box, meta = _open(path)
    try:
        return _decode(box, meta, arrays)
    finally:
        box.close()


def sniff(path: str | os.PathLike, head: bytes) -> bool:
    p = Path(path)
    if p.is_dir():
        return (p / "meta.json").is_file()
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(p) as z:
                return "meta.json" in z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return False
    return head.lstrip().startswith(b"{") and b'"means"' in head


def describe(path: str | os.PathLike) -> dict:
    box, m = _open(path)
    try:
        textures = {}
        for role, name in m["files"].items():
            w, h = _texture_size(box, name, None if role == "shN_centroids" else m["count"])
            textures[role] = {"file": name, "width": w, "height": h, "bytes": box.size(name)}
        bands = 0
        if m["shN"] is not None:
            bands = m["shN"]["bands"] or _V1_BANDS_BY_WIDTH.get(textures["shN_centroids"]["width"], 0)
        return {
            "format": "sog",
            "version": m["version"],
            "bundled": box.zip is not None,
            "count": m["count"],
            "sh_degree": bands,
            "palette": None if m["shN"] is None else m["shN"]["count"],
            "textures": textures,
            "texture_bytes": sum(t["bytes"] for t in textures.values()),
        }
    finally:
        box.close()


# ---------------------------------------------------------------------------------------------- encoding


def texture_shape(n: int) -> tuple[int, int]:
    """(width, height) splat-transform uses for ``n`` Gaussians: both multiples of 4, about square."""
    width = math.ceil(math.sqrt(n) / 4) * 4
    return width, math.ceil(n / width / 4) * 4


def palette_size(n: int) -> int:
    """SH palette entries for ``n`` Gaussians (splat-transform's rule: 1k-64k, powers of two, ~N/1024)."""
    return int(min(64, 2 ** math.floor(math.log2(n / 1024))) * 1024)


# Grid orders the encoder offers, the default first.
SORTS = ("morton", "plas", "none")


def _log_positions(means: np.ndarray) -> np.ndarray:
    """Centres in the domain the position textures store: sign(x) * log(1 + |x|)."""
    return np.sign(means) * np.log1p(np.abs(means))


def texture_key(splats: Splats):
    """(N, 9) float32 torch grid-sort key of a numpy scene, in the domain the textures store: log-transformed
    centres, log scales and DC colour, each channel z-scored (unlike ``splatpack.sort.self_organizing_key``,
    which sorts activated values standardised per attribute). Centres weigh 12x: the high-byte position texture
    is the one a grid that neglects position hurts most (the weight's size sweep: BENCHMARKS.md, "Sort keys")."""
    import torch

    means = torch.from_numpy(_log_positions(splats.means))
    key = torch.cat([means, torch.from_numpy(splats.log_scales), torch.from_numpy(splats.sh0[:, 0])], dim=1)
    key = key.to(torch.float32)
    key = (key - key.mean(0)) / key.std(0, correction=0).clamp_min(1e-12)
    key[:, :3] *= 12.0
    return key


def texel_order(splats: Splats, sort: str, width: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """(int64 permutation, grid width) placing ``splats`` (numpy) into the textures row by row.

    "morton": the Morton order of the log-domain centres, row after row, so each texel's left neighbour (what
    WebP's lossless predictors lean on most) is its Morton predecessor; the smallest files and by far the
    fastest on every scene measured (BENCHMARKS.md, "SOG grid order"). "plas": PLAS on ``texture_key`` (torch;
    smaller scale and colour textures, larger position ones). "none": the input order.
    """
    if sort == "none":
        return np.arange(len(splats)), width
    if sort == "morton":
        return morton_order(_log_positions(splats.means)), width
    from splatpack.sort import grid_order

    order, grid_width = grid_order(texture_key(splats), "plas", width=width, seed=seed)
    return order.numpy().astype(np.int64), grid_width


def _pack_quats(q: np.ndarray) -> np.ndarray:
    """(N, 4) uint8 smallest-three texels of (w, x, y, z) quaternions."""
    q = unit_quaternions(q)  # a zero quaternion stores the identity, as in every writer
    largest = np.abs(q).argmax(axis=1)  # first index on ties, like the reference encoder
    sign = np.where(q[np.arange(len(q)), largest] < 0, -1.0, 1.0)
    small = np.take_along_axis(q * sign[:, None], _QUAT_OTHERS[largest], axis=1)
    out = np.empty((len(q), 4), np.uint8)
    out[:, :3] = np.clip(np.rint(255 * (small * _SQRT2 * 0.5 + 0.5)), 0, 255)
    out[:, 3] = 252 + largest
    return out


def _grid(rows: np.ndarray, width: int, height: int, fill: tuple[int, ...] = (0, 0, 0, 0)) -> np.ndarray:
    """(height, width, 4) texture with ``rows`` (M, 4) in row-major order and ``fill`` after them."""
    tex = np.empty((width * height, 4), np.uint8)
    tex[: len(rows)] = rows
    tex[len(rows) :] = fill
    return tex.reshape(height, width, 4)


def _rgba(cols: list[np.ndarray], alpha=255) -> np.ndarray:
    out = np.empty((len(cols[0]), 4), np.uint8)
    for i, c in enumerate(cols):
        out[:, i] = c
    out[:, len(cols) :] = 0
    out[:, 3] = alpha
    return out


def _json_floats(values: np.ndarray) -> list[float]:
    """float32 codebook values as the shortest decimals that read back to the same float32: JSON of their
    float64 widening needs ~17 digits each, and the codebooks are most of meta.json."""
    return [float(np.format_float_positional(v, unique=True, trim="-")) for v in np.asarray(values, np.float32)]


def _webp(tex: np.ndarray, method: int, quality: int) -> bytes:
    buf = io.BytesIO()
    # exact=True keeps the RGB of texels whose alpha (sh0 opacity) is 0: they are data, not transparency.
    Image.fromarray(tex, "RGBA").save(buf, "WEBP", lossless=True, exact=True, method=method, quality=quality)
    return buf.getvalue()


# Quality presets: the SH palette is the one lossy knob with a real size/fidelity trade-off (palette scale
# relative to splat-transform's rule, Lloyd iterations); measured trade-offs: BENCHMARKS.md, "SOG encoder".
PRESETS = {"tiny": (0.0625, 6), "small": (0.25, 6), "balanced": (1.0, 10), "high": (2.0, 20)}


def encode(
    splats: Splats,
    *,
    sort: str = "morton",
    seed: int = 0,
    sh_degree: int | None = None,
    preset: str = "balanced",
    palette: int | None = None,
    kmeans_iterations: int | None = None,
    webp_method: int = 1,
    webp_quality: int = 100,
    source: str | os.PathLike | None = None,
) -> tuple[dict, dict[str, bytes]]:
    """SOG version 2 of ``splats``: (meta.json object, {file name: WebP bytes}).

    ``sort``: the grid order (``SORTS``). ``preset`` (see ``PRESETS``) scales the SH palette and sets its Lloyd
    iterations; ``palette`` and ``kmeans_iterations`` override them (palette default: splat-transform's rule,
    ``palette_size``). The WebP defaults (method 1, quality 100) were the smallest and among the fastest
    (BENCHMARKS.md, "SOG encoder"). Runs on numpy alone unless it needs torch: ``sort="plas"`` or an SH palette.
    """
    n = len(splats)
    if n == 0:
        raise SplatpackError("cannot write an empty scene as SOG", source)
    if preset not in PRESETS:
        raise SplatpackError(f"unknown SOG preset {preset!r}; use one of {', '.join(PRESETS)}", source)
    if sort not in SORTS:
        raise SplatpackError(f"unknown grid order {sort!r}; use one of {', '.join(SORTS)}", source)
    palette_scale, preset_iterations = PRESETS[preset]
    palette = palette or min(65536, max(1, int(palette_size(n) * palette_scale)))
    kmeans_iterations = kmeans_iterations or preset_iterations
    splats = splats.detach().numpy(np.float64)
    splats.validate(check_finite=True, source=source)
    degree = splats.sh_degree if sh_degree is None else sh_degree
    if degree not in SH_REST_COUNT or degree > splats.sh_degree:
        raise SplatpackError(f"SH degree {degree} is not in 0-{splats.sh_degree}", source)
    width, height = texture_shape(n)
    if width > MAX_TEXTURE_SIDE or height > MAX_TEXTURE_SIDE:
        raise SplatpackError(f"{n} Gaussians exceed SOG's {MAX_TEXTURE_SIDE}x{MAX_TEXTURE_SIDE} texture limit", source)

    with stage("sort"):
        order, grid_width = texel_order(splats, sort, width, seed)
    if grid_width != width:
        width, height = grid_width, math.ceil(n / grid_width / 4) * 4
    s = splats[order]

    textures: dict[str, np.ndarray] = {}
    t = _log_positions(s.means)
    mins, maxs = t.min(axis=0), t.max(axis=0)
    span = maxs - mins
    q16 = np.where(span > 0, np.rint(65535 * (t - mins) / np.where(span > 0, span, 1)), 0).astype(np.int64)
    textures["means_l.webp"] = _grid(_rgba([q16[:, i] & 0xFF for i in range(3)]), width, height)
    textures["means_u.webp"] = _grid(_rgba([q16[:, i] >> 8 for i in range(3)]), width, height)

    textures["quats.webp"] = _grid(_pack_quats(s.quats), width, height)

    scale_book, scale_labels = kmeans_1d(s.log_scales)
    textures["scales.webp"] = _grid(_rgba(list(scale_labels.T)), width, height)

    dc_book, dc_labels = kmeans_1d(s.sh0[:, 0])
    alpha = np.rint(s.opacities * 255)
    textures["sh0.webp"] = _grid(_rgba(list(dc_labels.T), alpha), width, height)

    meta: dict = {
        "version": VERSION,
        "asset": {"generator": "splatpack"},
        "count": n,
        "means": {"mins": mins.tolist(), "maxs": maxs.tolist(), "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"codebook": _json_floats(scale_book), "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": _json_floats(dc_book), "files": ["sh0.webp"]},
    }

    if degree > 0:
        k = SH_REST_COUNT[degree]
        # Rows in f_rest order (channel-major), the order the palette texels store them in.
        rest = s.shN[:, :k].transpose(0, 2, 1).reshape(n, 3 * k)
        with stage("palette"):
            from splatpack.quant.kmeans import kmeans_palette  # torch

            entries, labels = kmeans_palette(rest, palette, kmeans_iterations, seed)
        book, codes = kmeans_1d(entries)
        m = len(entries)
        rows = math.ceil(m / PALETTE_ROW)
        texels = np.zeros((rows * PALETTE_ROW, k, 4), np.uint8)
        texels[:m, :, :3] = codes.reshape(m, 3, k).transpose(0, 2, 1)
        texels[:m, :, 3] = 255
        textures["shN_centroids.webp"] = texels.reshape(rows, PALETTE_ROW * k, 4)
        textures["shN_labels.webp"] = _grid(_rgba([labels & 0xFF, labels >> 8]), width, height)
        meta["shN"] = {
            "count": m,
            "bands": degree,
            "codebook": _json_floats(book),
            "files": ["shN_centroids.webp", "shN_labels.webp"],
        }

    with stage("encode", total=len(textures)) as progress, concurrent.futures.ThreadPoolExecutor(2) as pool:
        jobs = {name: pool.submit(_webp, tex, webp_method, webp_quality) for name, tex in textures.items()}
        files = {}
        for name, job in jobs.items():
            files[name] = job.result()
            progress.advance()
        return meta, files


def write(splats: Splats, path: str | os.PathLike, **options) -> None:
    """Write a SOG: a bundled zip for ``*.sog``; textures + ``meta.json`` for a ``*.json`` path or a folder
    (``*.sog.d`` or an existing directory). ``options`` are ``encode``'s keywords."""
    out = Path(path)
    folder_form = out.is_dir() or out.name.lower().endswith(".sog.d")
    meta, files = encode(splats, source=out, **options)
    meta_bytes = json.dumps(meta, separators=(",", ":")).encode()
    if not (folder_form or out.name.lower().endswith(".json")):
        with atomic_output(out) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
                for name, data in files.items():
                    z.writestr(name, data)
                z.writestr("meta.json", meta_bytes)
        return
    folder, meta_name = (out, "meta.json") if folder_form else (out.parent, out.name)
    # The whole folder is written beside its destination and swapped into place: a kill or a full disk midway
    # never leaves old and new textures mixed. An existing folder is replaced only if it holds nothing but SOG
    # files, so no other file is ever lost with it.
    with atomic_folder(folder, replaceable=_only_sog_files) as tmp:
        for name, data in {**files, meta_name: meta_bytes}.items():
            (tmp / name).write_bytes(data)


def _only_sog_files(folder: Path) -> bool:
    return all(p.is_file() and not p.is_symlink() and p.suffix.lower() in (".webp", ".json") for p in folder.iterdir())
