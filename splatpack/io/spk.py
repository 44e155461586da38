"""``.spk``: splatpack's own compact file, a ``CompactScene`` (``splatpack.omg.compact``) on disk.

Layout (version 1, little-endian; README "The .spk format" is the full description):

- header: magic ``SPK\\0``, u16 version, u8 SH degree, u8 flags (0), u64 Gaussian count, u16 section count;
- section table: per section a u8 name length, the ASCII name and a u64 byte length; sections follow the table
  back to back in its order (offsets implied), and end exactly at the end of the file;
- ``meta`` (first): zstd JSON with the attribute layout (raw width, or SVQ codebook sizes and sub-vector
  widths), the position quantization, the order, the frame to the data frame (float64) and the MLP fields'
  config and array shapes;
- ``positions``: quantized positions (fp16, or fixed point over the stored bounding box), Morton-sorted and
  coded losslessly (``splatpack.io.spk_codec``); every other section follows that order, so no permutation;
- per attribute ``<name>.indices`` (entropy-coded SVQ indices) and ``<name>.codebooks`` (fp16), or
  ``<name>.raw`` (fp16, zstd); ``fields``: the MLP weights, fp16, zstd.

Writing quantizes first (``quantize_for_storage``: positions, fp16 values, codebooks sorted by use with unused
entries dropped, Gaussians in Morton order): reading the file gives exactly that scene back. ``write`` (the format
registry's writer) stores any ``Splats`` through ``CompactScene.from_splats``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import struct

import numpy as np

from splatpack.errors import SplatpackError
from splatpack.io import spk_codec as codec
from splatpack.io.atomic import atomic_output
from splatpack.io.files import check_expansion, read_input_bytes
from splatpack.omg.compact import CompactScene, SvqCode, layout
from splatpack.scene import Arrays, Splats

MAGIC = b"SPK\x00"
VERSION = 1
HEADER = struct.Struct("<4sHBBQH")
ORDERS = ("morton",)  # a PLAS grid order was measured and lost (README, "The .spk format")
MAX_META_BYTES = 1 << 20  # the layout and a field config: a few KB
MAX_SECTIONS = 64
MAX_WIDTH = 256  # values per Gaussian of one attribute (SH 3 rest: 45)
MAX_SUBVECTORS = 64
MAX_FIELD_DIMS = 4
_F16_MAX = float(np.finfo(np.float16).max)


# ---------------------------------------------------------------------------------------------- quantization


def _position_mode(positions: str) -> int:
    """Bits per axis of a ``positions`` option: 16 for ``"fp16"``, ``b`` for ``"fixed<b>"`` (1-21)."""
    if positions == "fp16":
        return 16
    m = re.fullmatch(r"fixed(\d+)", positions)
    if not m or not 1 <= int(m.group(1)) <= codec.MAX_AXIS_BITS:
        raise SplatpackError(f"positions must be 'fp16' or 'fixed<bits>' with 1-21 bits, got {positions!r}")
    return int(m.group(1))


def _fp16_cells(p: np.ndarray) -> np.ndarray:
    """fp16 bit patterns mapped monotonically to integers (negative values flipped, sign bit set on the others),
    so that close values are close codes."""
    u = p.astype(np.float16).view(np.uint16)
    return np.where(u & 0x8000, ~u, u | 0x8000).astype(np.uint64)


def _fp16_values(cells: np.ndarray) -> np.ndarray:
    c = cells.astype(np.uint16)
    return np.where(c & 0x8000, c ^ 0x8000, ~c).astype(np.uint16).view(np.float16).astype(np.float32)


def _fixed_cells(p: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    extent = np.where(hi > lo, hi - lo, 1.0)
    return np.clip(np.rint((p.astype(np.float64) - lo) / extent * top), 0, top).astype(np.uint64)


def _fixed_values(cells: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    return (lo + cells.astype(np.float64) * ((hi - lo) / ((1 << bits) - 1))).astype(np.float32)


def _fp16(a: np.ndarray, what: str) -> np.ndarray:
    """``a`` rounded to float16 (as float32); refused when a value is not finite in float16."""
    with np.errstate(over="ignore"):
        h = np.asarray(a, dtype=np.float32).astype(np.float16)
    if not np.isfinite(h).all():
        raise SplatpackError(f"{what} holds values that are not finite in float16 (|x| > {_F16_MAX:g}, NaN or Inf)")
    return h.astype(np.float32)


def _sorted_code(code: SvqCode, name: str) -> SvqCode:
    """Codebooks in fp16 sorted by descending use (ties by entry), unused entries dropped, indices remapped."""
    books, columns = [], []
    for s, book in enumerate(code.codebooks):
        counts = np.bincount(code.indices[:, s], minlength=len(book))
        order = np.argsort(-counts, kind="stable")
        order = order[counts[order] > 0]
        rank = np.zeros(len(book), np.int64)
        rank[order] = np.arange(len(order))
        books.append(_fp16(book[order], f"attribute {name}, codebook {s}"))
        columns.append(rank[code.indices[:, s]])
    indices = np.stack(columns, axis=1) if columns else code.indices
    return SvqCode(books, indices)


@dataclasses.dataclass
class _Stored:
    scene: CompactScene  # what the file holds, decoded
    cells: np.ndarray  # (N, 3) uint64 quantized positions, Morton order
    bits: int
    positions: dict  # the meta entry


def check_options(positions: str, order: str) -> int:
    """Bits per axis of ``positions``; a bad option refused."""
    if order not in ORDERS:
        raise SplatpackError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    return _position_mode(positions)


def _prepare(scene: CompactScene, positions: str, order: str) -> _Stored:
    bits = check_options(positions, order)
    scene.validate()
    p = scene.positions
    if not np.isfinite(p).all():
        raise SplatpackError("positions hold NaN or Inf values")
    if not (np.isfinite(scene.rotation).all() and np.isfinite(scene.translation).all()):
        raise SplatpackError("the frame to the data frame holds NaN or Inf values")
    if positions == "fp16":
        if len(p) and np.abs(p).max() > _F16_MAX:
            raise SplatpackError(f"positions reach {np.abs(p).max():g}, beyond float16; use positions='fixed<bits>'")
        cells, meta = _fp16_cells(p), {"mode": "fp16"}
    else:
        lo = p.min(axis=0).astype(np.float64) if len(p) else np.zeros(3)
        hi = p.max(axis=0).astype(np.float64) if len(p) else np.zeros(3)
        meta = {"mode": "fixed", "bits": bits, "lo": lo.tolist(), "hi": hi.tolist()}
        cells = _fixed_cells(p, lo, hi, bits)
    rows = np.argsort(codec.morton(cells), kind="stable")
    cells = cells[rows]
    attrs = {
        name: _sorted_code(a.select(rows), name) if isinstance(a, SvqCode) else _fp16(a[rows], f"attribute {name}")
        for name, a in scene.attributes.items()
    }
    fields = None
    if scene.fields is not None:
        fields = {str(k): _fp16(v, f"MLP array {k}").reshape(np.shape(v)) for k, v in scene.fields.items()}
        if any(v.ndim > MAX_FIELD_DIMS for v in fields.values()):
            raise SplatpackError(f"MLP arrays may have at most {MAX_FIELD_DIMS} dimensions")
    try:  # the config as JSON gives it back (tuples become lists)
        config = None if scene.field_config is None else json.loads(json.dumps(scene.field_config, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise SplatpackError(f"the field config is not JSON-able: {exc}") from None
    stored = dataclasses.replace(
        scene,
        positions=_decode_cells(cells, meta),
        attributes=attrs,
        fields=fields,
        field_config=config,
    )
    return _Stored(stored, cells, bits, meta)


def _decode_cells(cells: np.ndarray, meta: dict) -> np.ndarray:
    if meta["mode"] == "fp16":
        return _fp16_values(cells).reshape(-1, 3)
    lo, hi = np.array(meta["lo"], np.float64), np.array(meta["hi"], np.float64)
    return _fixed_values(cells, lo, hi, meta["bits"]).reshape(-1, 3)


def quantize_for_storage(scene: CompactScene, *, positions: str = "fp16", order: str = "morton") -> CompactScene:
    """Exactly the scene ``read_compact`` returns after ``write_compact(scene, ..., same options)``: positions
    quantized, values and codebooks in fp16, codebooks sorted by use (unused entries dropped), Gaussians in the
    stored order."""
    return _prepare(scene, positions, order).scene


# ---------------------------------------------------------------------------------------------- writing


def _shuffled(a: np.ndarray) -> bytes:
    """fp16 bytes with all low bytes first, then all high bytes (zstd finds more in each half alone)."""
    return np.ascontiguousarray(a.astype("<f2").view(np.uint8).reshape(-1, 2).T).tobytes()


def _unshuffled(data: bytes, count: int) -> np.ndarray:
    halves = np.frombuffer(data, np.uint8).reshape(2, count)
    pairs = np.empty((count, 2), np.uint8)
    pairs[:, 0], pairs[:, 1] = halves  # two strided writes: faster than copying a transposed view
    return pairs.view("<f2").ravel().astype(np.float32)


def encode(scene: CompactScene, *, positions: str = "fp16", order: str = "morton") -> bytes:
    """The bytes of the ``.spk`` file of ``scene`` (``write_compact`` without the file)."""
    st = _prepare(scene, positions, order)
    s = st.scene
    entries, sections = {}, []
    sections.append(("positions", codec.encode_positions(st.cells, st.bits)))
    for name in s.layout():
        attr = s.attributes[name]
        if isinstance(attr, SvqCode):
            entries[name] = {"svq": [list(book.shape) for book in attr.codebooks]}
            sections.append((f"{name}.indices", codec.encode_indices(attr.indices, [len(b) for b in attr.codebooks])))
            sections.append((f"{name}.codebooks", b"".join(b.astype("<f2").tobytes() for b in attr.codebooks)))
        else:
            entries[name] = {"raw": attr.shape[1]}
            sections.append((f"{name}.raw", codec.zstd(_shuffled(attr), codec.BULK_LEVEL)))
    fields = None
    if s.fields is not None:
        fields = {"config": s.field_config, "arrays": [[k, list(v.shape)] for k, v in s.fields.items()]}
        flat = np.concatenate([v.ravel() for v in s.fields.values()]) if s.fields else np.zeros(0, np.float32)
        sections.append(("fields", codec.zstd(_shuffled(flat))))
    meta = {
        "attributes": entries,
        "positions": st.positions,
        "order": order,
        "frame": {"rotation": s.rotation.ravel().tolist(), "translation": s.translation.tolist(), "scale": s.scale},
        "fields": fields,
    }
    sections.insert(0, ("meta", codec.zstd(json.dumps(meta, allow_nan=False).encode())))
    head = HEADER.pack(MAGIC, VERSION, s.sh_degree, 0, len(s), len(sections))
    table = b"".join(bytes([len(n)]) + n.encode() + struct.pack("<Q", len(d)) for n, d in sections)
    return b"".join([head, table, *(d for _, d in sections)])


def write_compact(scene: CompactScene, path: str | os.PathLike, *, positions: str = "fp16", order: str = "morton"):
    """Write ``scene`` as a ``.spk`` file, atomically. ``positions``: ``"fp16"`` (OMG's choice) or
    ``"fixed<bits>"`` (fixed point over the bounding box, 1-21 bits per axis); ``order``: ``"morton"``."""
    try:
        data = encode(scene, positions=positions, order=order)
    except SplatpackError as exc:
        raise SplatpackError(exc.problem, path) from None
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


# ---------------------------------------------------------------------------------------------- reading


def _parse_table(data: bytes, path) -> tuple[tuple, dict[str, memoryview]]:
    """Header fields and section payloads by name; every length checked against the file before anything is
    decoded."""
    if len(data) < HEADER.size:
        raise SplatpackError(f"truncated: {len(data)} bytes, shorter than the {HEADER.size}-byte .spk header", path)
    magic, version, degree, flags, count, n_sections = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SplatpackError(f"not a .spk file: starts with {magic!r}, expected {MAGIC!r}", path)
    if version != VERSION:
        raise SplatpackError(f"unsupported .spk version {version} (supported: {VERSION})", path)
    if degree > 3:
        raise SplatpackError(f"SH degree {degree} is out of range 0-3", path)
    if flags:
        raise SplatpackError(f"unknown header flags 0x{flags:02x}", path)
    if n_sections > MAX_SECTIONS:
        raise SplatpackError(f"{n_sections} sections, more than a .spk file has ({MAX_SECTIONS})", path)
    view, at, entries = memoryview(data), HEADER.size, []
    for _ in range(n_sections):
        if at >= len(data):
            raise SplatpackError("truncated section table", path)
        size = data[at]
        if at + 1 + size + 8 > len(data):
            raise SplatpackError("truncated section table", path)
        try:
            name = data[at + 1 : at + 1 + size].decode("ascii")
        except UnicodeDecodeError:
            raise SplatpackError("a section name is not ASCII", path) from None
        (length,) = struct.unpack_from("<Q", data, at + 1 + size)
        entries.append((name, length))
        at += 1 + size + 8
    header_bytes = at
    total = sum(length for _, length in entries)
    if header_bytes + total != len(data):
        raise SplatpackError(
            f"section lengths add up to {total} bytes but the file has {len(data) - header_bytes} after its table", path
        )
    sections: dict[str, memoryview] = {}
    for name, length in entries:
        if name in sections:
            raise SplatpackError(f"section {name!r} appears twice", path)
        sections[name] = view[at : at + length]
        at += length
    if "meta" not in sections:
        raise SplatpackError("no meta section", path)
    return (version, degree, count), sections


def _int(value, lo: int, hi: int, what: str, path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SplatpackError(f"meta: {what} must be an integer in {lo}-{hi}, got {value!r:.40}", path)
    return value


def _floats(value, n: int, what: str, path) -> np.ndarray:
    ok = isinstance(value, list) and len(value) == n
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    a = np.array(value if ok else [], np.float64)
    if not ok or not np.isfinite(a).all():
        raise SplatpackError(f"meta: {what} must be {n} finite numbers", path)
    return a


def _parse_meta(blob: memoryview, path) -> dict:
    try:
        meta = json.loads(codec.unzstd(bytes(blob), MAX_META_BYTES))
    except (ValueError, RecursionError) as exc:
        raise SplatpackError(f"unreadable meta section: {str(exc)[:200]}", path) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("attributes"), dict):
        raise SplatpackError("meta: no attribute layout", path)
    pos = meta.get("positions")
    if not isinstance(pos, dict) or pos.get("mode") not in ("fp16", "fixed"):
        raise SplatpackError("meta: positions must be fp16 or fixed", path)
    if pos["mode"] == "fixed":
        bits = _int(pos.get("bits"), 1, codec.MAX_AXIS_BITS, "position bits", path)
        lo, hi = _floats(pos.get("lo"), 3, "positions lo", path), _floats(pos.get("hi"), 3, "positions hi", path)
        if (hi < lo).any():
            raise SplatpackError("meta: position box has hi below lo", path)
        pos = {"mode": "fixed", "bits": bits, "lo": lo.tolist(), "hi": hi.tolist()}
    if meta.get("order") not in ORDERS:
        raise SplatpackError(f"meta: unknown order {meta.get('order')!r:.40}", path)
    frame = meta.get("frame")
    if not isinstance(frame, dict):
        raise SplatpackError("meta: no frame", path)
    scale = _floats([frame.get("scale")], 1, "frame scale", path)[0]
    if scale <= 0:
        raise SplatpackError(f"meta: frame scale must be positive, got {scale}", path)
    attrs = {}
    for name, entry in meta["attributes"].items():
        if isinstance(entry, dict) and set(entry) == {"raw"}:
            attrs[name] = _int(entry["raw"], 0, MAX_WIDTH, f"{name} width", path)
        elif isinstance(entry, dict) and set(entry) == {"svq"} and isinstance(entry["svq"], list):
            if not 1 <= len(entry["svq"]) <= MAX_SUBVECTORS:
                raise SplatpackError(f"meta: {name} has {len(entry['svq'])} sub-vectors", path)
            books = []
            for shape in entry["svq"]:
                if not (isinstance(shape, list) and len(shape) == 2):
                    raise SplatpackError(f"meta: {name} codebook shape must be [entries, width]", path)
                books.append(
                    (_int(shape[0], 0, 1 << 32, f"{name} codebook size", path),
                     _int(shape[1], 1, MAX_WIDTH, f"{name} sub-vector width", path))
                )  # fmt: skip
            attrs[name] = books
        else:
            raise SplatpackError(f"meta: attribute {name!r:.40} is neither raw nor svq", path)
    fields = meta.get("fields")
    if fields is not None:
        if not (isinstance(fields, dict) and isinstance(fields.get("config"), dict)):
            raise SplatpackError("meta: fields need a config object", path)
        arrays = fields.get("arrays")
        if not isinstance(arrays, list):
            raise SplatpackError("meta: fields need a list of arrays", path)
        shapes = {}
        for item in arrays:
            ok = isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], list)
            if not ok or item[0] in shapes or len(item[1]) > MAX_FIELD_DIMS:
                raise SplatpackError("meta: each field array is a unique [name, shape]", path)
            shapes[item[0]] = tuple(_int(d, 0, 1 << 31, f"field {item[0]} dimension", path) for d in item[1])
        fields = {"config": fields["config"], "arrays": shapes}
    return {
        "layout": attrs,
        "positions": pos,
        "order": meta["order"],
        "rotation": _floats(frame.get("rotation"), 9, "frame rotation", path).reshape(3, 3),
        "translation": _floats(frame.get("translation"), 3, "frame translation", path),
        "scale": float(scale),
        "fields": fields,
    }


def _sections_wanted(m: dict) -> list[str]:
    names = ["meta", "positions"]
    for name, entry in m["layout"].items():
        names += [f"{name}.indices", f"{name}.codebooks"] if isinstance(entry, list) else [f"{name}.raw"]
    return names + (["fields"] if m["fields"] is not None else [])


def _load(path) -> tuple[tuple, dict[str, memoryview], dict, int]:
    """Header, sections and parsed meta of a ``.spk`` file, every declared size checked against the file."""
    data = read_input_bytes(path, "a .spk file")
    header, sections = _parse_table(data, path)
    m = _parse_meta(sections["meta"], path)
    n = header[2]
    per = 12 + sum(8 * len(e) if isinstance(e, list) else 4 * e for e in m["layout"].values())
    check_expansion(n * per, len(data), f"the header ({n} Gaussians)", path)
    want = _sections_wanted(m)
    unknown = sorted(set(sections) - set(want))
    if unknown:
        raise SplatpackError(f"unknown section {unknown[0]!r:.60}", path)
    missing = [name for name in want if name not in sections]
    if missing:
        raise SplatpackError(f"missing section {missing[0]!r}", path)
    widths = {name: sum(d for _, d in e) if isinstance(e, list) else e for name, e in m["layout"].items()}
    want = layout(header[1], fields=m["fields"] is not None)
    if widths != want:
        raise SplatpackError(f"attribute layout {widths} does not match SH degree {header[1]}'s {want}", path)
    for name, entry in m["layout"].items():
        if isinstance(entry, list):
            have, need = len(sections[f"{name}.codebooks"]), sum(2 * k * d for k, d in entry)
            if have != need:
                raise SplatpackError(f"section {name}.codebooks has {have} bytes, the layout needs {need}", path)
            if n and any(k == 0 for k, _ in entry):
                raise SplatpackError(f"attribute {name} has an empty codebook for {n} Gaussians", path)
        else:
            check_expansion(2 * n * entry, len(sections[f"{name}.raw"]), f"section {name}.raw", path)
    if m["fields"] is not None:
        size = 2 * sum(math.prod(s) for s in m["fields"]["arrays"].values())  # Python integers: no overflow
        check_expansion(size, len(sections["fields"]), "section fields", path)
    return header, sections, m, len(data)


def _finite(a: np.ndarray, what: str, path) -> np.ndarray:
    if not np.isfinite(a).all():
        raise SplatpackError(f"{what} holds NaN or Inf values", path)
    return a


def _unzstd_exact(blob: memoryview, size: int, what: str, path) -> bytes:
    """The ``size`` bytes a zstd section holds (``_load`` bounded ``size`` by the section's length)."""
    try:
        out = codec.unzstd(blob, size)
    except ValueError as exc:
        raise SplatpackError(f"{what}: {exc}", path) from None
    if len(out) != size:
        raise SplatpackError(f"{what} decompresses to {len(out)} bytes, expected {size}", path)
    return out


def _decode_attribute(name: str, entry, sections: dict, n: int, path):
    if not isinstance(entry, list):
        raw = _unzstd_exact(sections[f"{name}.raw"], 2 * n * entry, f"section {name}.raw", path)
        return _finite(_unshuffled(raw, n * entry).reshape(n, entry), f"section {name}.raw", path)
    flat = np.frombuffer(sections[f"{name}.codebooks"], "<f2").astype(np.float32)  # length checked by _load
    flat = _finite(flat, f"section {name}.codebooks", path)
    books, at = [], 0
    for k, d in entry:
        books.append(flat[at : at + k * d].reshape(k, d))
        at += k * d
    try:
        indices = codec.decode_indices(bytes(sections[f"{name}.indices"]), [k for k, _ in entry], n)
    except ValueError as exc:
        raise SplatpackError(f"section {name}.indices: {exc}", path) from None
    return SvqCode(books, indices)


def read_compact(path: str | os.PathLike) -> CompactScene:
    """The ``CompactScene`` a ``.spk`` file holds (exactly what ``quantize_for_storage`` made of it)."""
    (_, degree, n), sections, m, _ = _load(path)
    pos = m["positions"]
    bits = 16 if pos["mode"] == "fp16" else pos["bits"]
    try:
        cells = codec.decode_positions(bytes(sections["positions"]), n, bits).astype(np.uint64)
    except ValueError as exc:
        raise SplatpackError(f"section positions: {exc}", path) from None
    positions = _finite(_decode_cells(cells, pos), "section positions", path)
    attrs = {name: _decode_attribute(name, e, sections, n, path) for name, e in m["layout"].items()}
    fields = config = None
    if m["fields"] is not None:
        shapes = m["fields"]["arrays"]
        sizes = [math.prod(s) for s in shapes.values()]
        flat = _unshuffled(_unzstd_exact(sections["fields"], 2 * sum(sizes), "section fields", path), sum(sizes))
        flat = _finite(flat, "section fields", path)
        fields, at = {}, 0
        for (name, shape), size in zip(shapes.items(), sizes):
            fields[name] = flat[at : at + size].reshape(shape)
            at += size
        config = m["fields"]["config"]
    try:
        return CompactScene(positions, attrs, degree, fields, config, m["rotation"], m["translation"], m["scale"])
    except SplatpackError as exc:
        raise SplatpackError(exc.problem, path) from None


# ---------------------------------------------------------------------------------------------- registry


def read(path: str | os.PathLike, *, arrays: Arrays = "torch") -> Splats:
    """A ``.spk`` file baked to a standard 3DGS scene in the data frame (the fields evaluated once per Gaussian)."""
    scene = read_compact(path)
    if len(scene) == 0:  # as every reader: commands and viewers have nothing to show (read_compact accepts it)
        raise SplatpackError("the file holds zero Gaussians", path)
    try:
        return scene.to_splats().as_arrays(arrays)
    except SplatpackError as exc:
        raise SplatpackError(exc.problem, path) from None


def write(splats: Splats, path: str | os.PathLike, *, positions: str = "fp16", order: str = "morton", **options):
    """Any scene as a "no MLP" ``.spk`` file: ``CompactScene.from_splats(splats, **options)`` (SVQ of scales,
    rotations and appearance; ``scale``, ``rotation``, ``appearance`` = (sub-vector length, entries) or None for
    raw, ``rows_per_entry``, ``seed``), then ``write_compact`` with ``positions`` and ``order``."""
    try:
        check_options(positions, order)  # refused before the k-means, not after
        scene = CompactScene.from_splats(splats, **options)
    except SplatpackError as exc:
        raise SplatpackError(exc.problem, path) from None
    write_compact(scene, path, positions=positions, order=order)


def sniff(path, head: bytes) -> bool:
    return head[:4] == MAGIC


def _layout_text(entry) -> str:
    if not isinstance(entry, list):
        return f"raw fp16 x {entry}"
    return "svq " + " + ".join(f"{k}x{d}" for k, d in entry)


def describe(path: str | os.PathLike) -> dict:
    """Version, count, SH degree, layout, position coding and the bytes of every section, without decoding."""
    (version, degree, n), sections, m, size = _load(path)
    bytes_of = {"header": size - sum(len(s) for s in sections.values())}
    bytes_of.update({name: len(s) for name, s in sections.items()})
    per_gaussian = ["positions"] + [k for k in sections if k.endswith((".indices", ".raw"))]
    pos = m["positions"]
    return {
        "format": "spk",
        "version": version,
        "count": n,
        "sh_degree": degree,
        "layout": {name: _layout_text(e) for name, e in m["layout"].items()},
        "appearance": "MLP fields" if m["fields"] is not None else "raw",
        "positions": "fp16" if pos["mode"] == "fp16" else f"fixed {pos['bits']} bits",
        "order": m["order"],
        "sections": bytes_of,
        "payload_bytes_per_gaussian": round(sum(bytes_of[k] for k in per_gaussian) / max(n, 1), 3),
    }
