"""PlayCanvas / SuperSplat ``.compressed.ply`` (read only).

Layout (binary little-endian PLY): ``element chunk`` holds, per block of 256 Gaussians, float min/max of the
position, the log scale and (optionally) the base colour; ``element vertex`` holds four uint32 per Gaussian:

- ``packed_position`` 11-10-11 bits, each a unorm lerp between the chunk's min and max;
- ``packed_rotation`` 2 bits index of the largest |component| (in w, x, y, z order), then the other three
  components, 10 bits each, as ``c / sqrt(2) + 0.5`` (the largest is rebuilt as positive);
- ``packed_scale`` 11-10-11 bits lerped between the chunk's log-scale bounds;
- ``packed_color`` 8-8-8-8: base colour (``0.5 + C0 * f_dc``) lerped between the chunk's colour bounds (or
  plain unorm when the chunk has none) and ``sigmoid(opacity)`` in the low byte.

An optional ``element sh`` stores each ``f_rest_*`` coefficient as one byte over [-4, 4]. Values are in the
frame of the PLY they came from; no axis conversion is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from splatpack.errors import SplatpackError
from splatpack.io.files import read_input_bytes
from splatpack.scene import SH_C0, SH_REST_COUNT, Arrays, Splats, sh_degree_for_rest_count

CHUNK_SIZE = 256
_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "<i2",
    "int16": "<i2",
    "ushort": "<u2",
    "uint16": "<u2",
    "int": "<i4",
    "int32": "<i4",
    "uint": "<u4",
    "uint32": "<u4",
    "float": "<f4",
    "float32": "<f4",
    "double": "<f8",
    "float64": "<f8",
}
_POSITION_BOUNDS = ("min_x", "min_y", "min_z", "max_x", "max_y", "max_z")
_SCALE_BOUNDS = ("min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z")
_COLOR_BOUNDS = ("min_r", "min_g", "min_b", "max_r", "max_g", "max_b")
_PACKED = ("packed_position", "packed_rotation", "packed_scale", "packed_color")
_MAX_HEADER = 1 << 16
# A byte-0 / byte-255 opacity would decode to an infinite logit; the nearest finite values that still
# fall in the same 8-bit bin keep every Gaussian renderable and re-encode to the same byte.
_ALPHA_EPS = 0.25 / 255


def _parse_header(data: bytes, path: Path) -> tuple[int, list[tuple[str, int, list[tuple[str, str]]]]]:
    """(binary start offset, [(element name, count, [(property, numpy dtype)])])."""
    if not data.startswith(b"ply"):
        raise SplatpackError("not a PLY file (it does not start with the 'ply' magic line)", path)
    if data.startswith(b"ply\r"):
        raise SplatpackError("compressed PLY header uses CR/CRLF line endings; the format uses LF only", path)
    end = data.find(b"end_header\n", 0, _MAX_HEADER)
    if not data.startswith(b"ply\n") or end < 0:
        if data.find(b"end_header", 0, _MAX_HEADER) < 0:
            raise SplatpackError(f"malformed PLY header: no 'end_header' line in the first {_MAX_HEADER} bytes", path)
        raise SplatpackError("malformed PLY header: 'end_header' is not followed by a newline", path)
    try:
        lines = data[4:end].decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise SplatpackError("PLY header is not ASCII", path) from None
    elements: list[tuple[str, int, list[tuple[str, str]]]] = []
    fmt = None
    for line in lines:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format":
            fmt = words[1] if len(words) > 1 else ""
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and len(words) == 3 and elements and words[1] in _PLY_TYPES:
            elements[-1][2].append((words[2], _PLY_TYPES[words[1]]))
        else:
            raise SplatpackError(f"unsupported PLY header line {line.strip()[:60]!r}", path)
    if fmt != "binary_little_endian":
        raise SplatpackError(f"compressed PLY must be binary_little_endian, got {fmt!r}", path)
    return end + len(b"end_header\n"), elements


def _load(path: Path) -> tuple[dict[str, np.ndarray], int]:
    """Structured arrays per element (``chunk``, ``vertex``, optional ``sh``) and the vertex count."""
    data = read_input_bytes(path, "a compressed PLY file")
    offset, elements = _parse_header(data, path)
    arrays: dict[str, np.ndarray] = {}
    for name, count, props in elements:
        if len({p for p, _ in props}) != len(props):
            raise SplatpackError(f"element {name!r} repeats a property", path)
        dtype = np.dtype(props)
        size = count * dtype.itemsize
        if offset + size > len(data):
            raise SplatpackError(
                f"truncated: element {name!r} needs {size} bytes at offset {offset}, file has {len(data)}", path
            )
        arrays[name] = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
        offset += size
    for name, need in (("chunk", _POSITION_BOUNDS + _SCALE_BOUNDS), ("vertex", _PACKED)):
        if name not in arrays:
            raise SplatpackError(f"not a compressed PLY: no 'element {name}'", path)
        missing = [p for p in need if p not in arrays[name].dtype.names]
        if missing:
            raise SplatpackError(f"element {name!r} lacks {', '.join(missing)}", path)
    _check_types(arrays, path)
    n = len(arrays["vertex"])
    if n == 0:
        raise SplatpackError("compressed PLY has zero vertices", path)
    if len(arrays["chunk"]) != -(-n // CHUNK_SIZE):
        raise SplatpackError(
            f"chunk count {len(arrays['chunk'])} does not match {n} vertices (expected {-(-n // CHUNK_SIZE)})", path
        )
    if "sh" in arrays and len(arrays["sh"]) != n:
        raise SplatpackError(f"element 'sh' has {len(arrays['sh'])} rows, expected {n}", path)
    return arrays, n


def _check_types(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Each property has the type the format gives it: packed fields uint32, bounds float, SH bytes uchar."""
    want = {"vertex": {p: "u4" for p in _PACKED}, "sh": {}}
    want["chunk"] = {p: "f" for p in _POSITION_BOUNDS + _SCALE_BOUNDS + _COLOR_BOUNDS}
    for element, fields in arrays.items():
        for prop in fields.dtype.names:
            kind = want.get(element, {}).get(prop, "u1" if element == "sh" else None)
            dtype = fields.dtype[prop]
            ok = kind is None or (dtype.kind == "f" if kind == "f" else dtype == np.dtype(kind))
            if not ok:
                expected = {"u4": "uint", "u1": "uchar", "f": "float"}[kind]
                raise SplatpackError(f"property {element}.{prop} has type {dtype.name}; expected {expected}", path)


def _sh_rest_names(arrays: dict[str, np.ndarray], path: Path) -> list[str]:
    if "sh" not in arrays:
        return []
    names = list(arrays["sh"].dtype.names)
    want = [f"f_rest_{i}" for i in range(len(names))]
    if sorted(names) != sorted(want) or len(names) % 3:
        raise SplatpackError(f"element 'sh' must hold f_rest_0..f_rest_{len(names) - 1}", path)
    if len(names) // 3 not in SH_REST_COUNT.values():
        raise SplatpackError(f"element 'sh' has {len(names)} coefficients, not a valid SH degree 0-3", path)
    return want


def _bounds(chunk: np.ndarray, names: tuple[str, ...], per_vertex: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-Gaussian (N, 3) min and max from the chunk columns ``names`` (3 mins then 3 maxs)."""
    table = np.stack([chunk[c].astype(np.float64) for c in names], axis=1)[per_vertex]
    return table[:, :3], table[:, 3:]


def _unorm(packed: np.ndarray, shifts: tuple[int, ...], bits: tuple[int, ...]) -> np.ndarray:
    return np.stack([((packed >> s) & ((1 << b) - 1)) / float((1 << b) - 1) for s, b in zip(shifts, bits)], axis=1)


def read(path: str | os.PathLike, *, arrays: Arrays = "torch") -> Splats:
    path = Path(path)
    elements, n = _load(path)
    rest_names = _sh_rest_names(elements, path)
    chunk, vertex = elements["chunk"], elements["vertex"]
    block = np.arange(n) // CHUNK_SIZE
    u = {name: vertex[name].astype(np.uint64) for name in _PACKED}

    lo, hi = _bounds(chunk, _POSITION_BOUNDS, block)
    t = _unorm(u["packed_position"], (21, 11, 0), (11, 10, 11))
    means = lo * (1 - t) + hi * t

    lo, hi = _bounds(chunk, _SCALE_BOUNDS, block)
    t = _unorm(u["packed_scale"], (21, 11, 0), (11, 10, 11))
    log_scales = lo * (1 - t) + hi * t

    rot = u["packed_rotation"]
    small = (_unorm(rot, (20, 10, 0), (10, 10, 10)) - 0.5) * np.sqrt(2.0)
    largest = (rot >> 30).astype(np.int64)
    big = np.sqrt(np.clip(1.0 - (small**2).sum(axis=1), 0.0, None))
    quats = np.empty((n, 4))
    quats[np.arange(n), largest] = big
    # The three stored components fill the other slots in ascending index order.
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    np.put_along_axis(quats, others, small, axis=1)

    color = u["packed_color"]
    t = _unorm(color, (24, 16, 8), (8, 8, 8))
    if all(c in chunk.dtype.names for c in _COLOR_BOUNDS):
        lo, hi = _bounds(chunk, _COLOR_BOUNDS, block)
        rgb = lo * (1 - t) + hi * t
    else:
        rgb = t
    sh0 = (rgb - 0.5) / SH_C0
    alpha = np.clip((color & 0xFF) / 255.0, _ALPHA_EPS, 1 - _ALPHA_EPS)
    opacity_logits = np.log(alpha / (1 - alpha))

    k = len(rest_names) // 3
    if k:
        raw = np.stack([elements["sh"][name] for name in rest_names], axis=1).astype(np.float64)
        # Byte 0 and 255 are the exact ends; the others are bin centres (matches the PlayCanvas decoder).
        unit = np.where(raw == 0, 0.0, np.where(raw == 255, 1.0, (raw + 0.5) / 256))
        shN = ((unit - 0.5) * 8).reshape(n, 3, k).transpose(0, 2, 1)
    else:
        shN = np.zeros((n, 0, 3))

    return Splats.from_numpy(
        means=means,
        quats=quats,
        log_scales=log_scales,
        opacity_logits=opacity_logits,
        sh0=sh0,
        shN=shN,
        source=path,
        arrays=arrays,
    )


def sniff(path: str | os.PathLike, head: bytes) -> bool:
    end = head.find(b"end_header")
    header = head if end < 0 else head[:end]
    return head.startswith(b"ply") and b"element chunk" in header and b"packed_position" in header


def describe(path: str | os.PathLike) -> dict:
    path = Path(path)
    arrays, n = _load(path)
    rest = _sh_rest_names(arrays, path)
    return {
        "format": "compressed-ply",
        "count": n,
        "chunks": len(arrays["chunk"]),
        "sh_degree": sh_degree_for_rest_count(len(rest) // 3),
        "colour_bounds": all(c in arrays["chunk"].dtype.names for c in _COLOR_BOUNDS),
    }
