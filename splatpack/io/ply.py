"""Standard 3DGS PLY (Inria / gsplat / nerfstudio / SuperSplat layout): read, write, sniff, describe.

One ``vertex`` element with scalar properties ``x y z [nx ny nz] f_dc_0..2 f_rest_0..3K-1 opacity scale_0..2
rot_0..3`` holding the raw parameters; ``f_rest`` is channel-major in the file (all K coefficients of R, then
G, then B) while ``Splats.shN`` is coefficient-major. We parse the (small) header ourselves so every bad file
is refused with one clear ``SplatpackError`` before any large allocation, then read the body with numpy in
one pass; writing builds one structured array and hands it to plyfile in one go.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import plyfile

from splatpack.edit.nonfinite import resolve
from splatpack.errors import SplatpackError
from splatpack.io.atomic import atomic_output
from splatpack.io.files import check_input
from splatpack.scene import SH_REST_COUNT, Arrays, Splats

# PLY scalar type names (both spellings of the spec) -> numpy type code without byte order.
_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_BYTE_ORDER = {"binary_little_endian": "<", "binary_big_endian": ">", "ascii": None}
# The header is a few KiB even with many extra properties; anything longer is not a splat PLY.
_MAX_HEADER = 1 << 20

# Output fields and the PLY properties (in order) that hold them; f_rest is added per SH degree.
_GROUPS = {
    "means": ("x", "y", "z"),
    "sh0": ("f_dc_0", "f_dc_1", "f_dc_2"),
    "opacity_logits": ("opacity",),
    "log_scales": ("scale_0", "scale_1", "scale_2"),
    "quats": ("rot_0", "rot_1", "rot_2", "rot_3"),
}
_REQUIRED = tuple(name for names in _GROUPS.values() for name in names)
_REST_RE = re.compile(r"f_rest_(0|[1-9][0-9]*)\Z")


@dataclasses.dataclass
class _Property:
    name: str
    type: str  # numpy type code ("f4"), or "list" for list properties
    type_name: str  # as written in the header


@dataclasses.dataclass
class _Element:
    name: str
    count: int
    properties: list[_Property]


@dataclasses.dataclass
class _Header:
    encoding: str
    newline: bytes
    elements: list[_Element]
    data_offset: int  # byte offset of the body
    lines: int  # header line count (for ASCII line numbers)

    def element(self, name: str) -> _Element | None:
        return next((e for e in self.elements if e.name == name), None)


def _newline(head: bytes) -> bytes | None:
    """Line ending used by the header (LF, CRLF or CR), or None when ``head`` lacks the 'ply' magic line."""
    for nl in (b"\n", b"\r\n", b"\r"):
        if head.startswith(b"ply" + nl):
            return nl
    return None


def _parse_header(head: bytes, path) -> _Header:
    """Parse the header at the start of ``head``; raises ``SplatpackError`` for anything malformed."""
    nl = _newline(head)
    if nl is None:
        raise SplatpackError("not a PLY file (it does not start with the 'ply' magic line)", path)
    end = head.find(nl + b"end_header" + nl)
    if end < 0:
        if len(head) >= _MAX_HEADER:
            raise SplatpackError(f"malformed PLY header: no 'end_header' line in the first {_MAX_HEADER} bytes", path)
        raise SplatpackError("malformed PLY header: it has no 'end_header' line", path)
    try:
        text = head[:end].decode("ascii")
    except UnicodeDecodeError:
        raise SplatpackError("malformed PLY header: it contains non-ASCII bytes", path) from None
    lines = text.split(nl.decode())

    encoding = None
    elements: list[_Element] = []
    for number, line in enumerate(lines[1:], start=2):
        words = line.split()

        def bad(why: str, number=number, line=line) -> SplatpackError:
            return SplatpackError(f"malformed PLY header line {number} ({line.strip()[:80]!r}): {why}", path)

        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format":
            if encoding is not None:
                raise bad("second format line")
            if len(words) != 3 or words[1] not in _BYTE_ORDER or words[2] != "1.0":
                raise bad("expected 'format ascii|binary_little_endian|binary_big_endian 1.0'")
            encoding = words[1]
        elif words[0] == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise bad("expected 'element <name> <count>'")
            if any(e.name == words[1] for e in elements):
                raise bad(f"element {words[1]!r} appears twice")
            elements.append(_Element(words[1], int(words[2]), []))
        elif words[0] == "property":
            if not elements:
                raise bad("property before any element")
            if len(words) == 5 and words[1] == "list":
                if words[2] not in _TYPES or words[3] not in _TYPES:
                    raise bad("unknown list property type")
                prop = _Property(words[4], "list", " ".join(words[1:4]))
            elif len(words) == 3:
                if words[1] not in _TYPES:
                    raise bad(f"unknown property type {words[1]!r}")
                prop = _Property(words[2], _TYPES[words[1]], words[1])
            else:
                raise bad("expected 'property <type> <name>'")
            if any(p.name == prop.name for p in elements[-1].properties):
                raise bad(f"property {prop.name!r} appears twice")
            elements[-1].properties.append(prop)
        else:
            raise bad(f"unknown keyword {words[0]!r}")
    if encoding is None:
        raise SplatpackError("malformed PLY header: it has no 'format' line", path)
    return _Header(encoding, nl, elements, end + len(nl + b"end_header" + nl), len(lines) + 1)


def _read_head(path) -> bytes:
    check_input(path)  # a FIFO would block the open, a device never ends
    try:
        with open(path, "rb") as f:
            return f.read(_MAX_HEADER)
    except OSError as exc:
        raise SplatpackError(f"cannot read: {exc.strerror or exc}", path) from None


def _is_compressed_ply(header: _Header) -> bool:
    vertex = header.element("vertex")
    return header.element("chunk") is not None or (
        vertex is not None and any(p.name == "packed_position" for p in vertex.properties)
    )


def _splat_layout(header: _Header, path) -> tuple[_Element, int]:
    """The vertex element and its SH degree, after checking it holds a 3DGS scene we can read."""
    if _is_compressed_ply(header):
        raise SplatpackError(
            "this is a PlayCanvas compressed PLY, not a standard 3DGS PLY; read it as compressed-ply", path
        )
    vertex = header.element("vertex")
    if vertex is None:
        names = ", ".join(repr(e.name) for e in header.elements) or "none"
        raise SplatpackError(f"no 'vertex' element in the PLY header (elements: {names})", path)
    props = {p.name: p for p in vertex.properties}
    missing = [name for name in _REQUIRED if name not in props]
    if missing:
        raise SplatpackError(f"not a 3DGS PLY: the vertex element lacks required properties {', '.join(missing)}", path)
    rest = sorted(int(m.group(1)) for name in props if (m := _REST_RE.match(name)))
    if rest != list(range(len(rest))):
        missing = ", ".join(f"f_rest_{i}" for i in sorted(set(range(len(rest))) - set(rest))[:5])
        raise SplatpackError(f"f_rest properties are not numbered 0..{len(rest) - 1}: missing {missing}", path)
    degree = next((d for d, k in SH_REST_COUNT.items() if 3 * k == len(rest)), None)
    if degree is None:
        raise SplatpackError(f"unsupported f_rest count {len(rest)}: expected 0, 9, 24 or 45 (SH degree 0-3)", path)
    for name in (*_REQUIRED, *(f"f_rest_{i}" for i in rest)):
        if props[name].type not in ("f4", "f8"):
            raise SplatpackError(f"property {name} has type {props[name].type_name}; expected float or double", path)
    lists = [p.name for p in vertex.properties if p.type == "list"]
    if lists:
        raise SplatpackError(
            f"vertex element has list properties ({', '.join(lists)}), which 3DGS PLY never uses", path
        )
    return vertex, degree


def _field_names(degree: int) -> dict[str, tuple[str, ...]]:
    """PLY properties making up each ``Splats`` field, in the field's memory order."""
    k = SH_REST_COUNT[degree]
    # shN[:, j, c] is file property f_rest_{c*K + j} (channel-major in the file).
    return {**_GROUPS, "shN": tuple(f"f_rest_{c * k + j}" for j in range(k) for c in range(3))}


def _read_binary(path, header: _Header, vertex: _Element, file_size: int) -> np.ndarray:
    order = _BYTE_ORDER[header.encoding]
    offset = header.data_offset
    for element in header.elements:
        if element is vertex:
            break
        if any(p.type == "list" for p in element.properties):
            raise SplatpackError(
                f"cannot locate the vertex data: element {element.name!r} before it has list properties", path
            )
        offset += element.count * sum(np.dtype(p.type).itemsize for p in element.properties)
    dtype = np.dtype([(p.name, order + p.type) for p in vertex.properties])
    have = max(file_size - offset, 0)
    # Checked before reading so a corrupt count (say 10^12) never turns into a huge allocation.
    if vertex.count * dtype.itemsize > have:
        raise SplatpackError(
            f"truncated: the header declares {vertex.count} vertices of {dtype.itemsize} bytes "
            f"({vertex.count * dtype.itemsize} bytes) but only {have} bytes of vertex data follow "
            f"(room for {have // dtype.itemsize})",
            path,
        )
    try:
        # Mapped rather than read: read() copies each field out once, so the body is never held twice.
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(vertex.count,))
    except (OSError, ValueError) as exc:
        raise SplatpackError(f"cannot read the vertex data: {exc}", path) from None


def _read_ascii(path, header: _Header, vertex: _Element, file_size: int) -> np.ndarray:
    before = header.elements[: header.elements.index(vertex)]
    skip = sum(e.count for e in before)
    width = len(vertex.properties)
    # Each value takes at least one character and one separator: refuse impossible counts before reading.
    least = 2 * width * vertex.count
    have = max(file_size - header.data_offset, 0)
    if least > have + 1:
        raise SplatpackError(
            f"truncated: the header declares {vertex.count} vertices of {width} values but only {have} bytes of "
            "ASCII data follow",
            path,
        )
    with open(path, "rb") as f:
        f.seek(header.data_offset)
        body = f.read()
    # One element instance per line, as the PLY spec (and plyfile) has it.
    rows = body.split(header.newline, skip + vertex.count)[skip : skip + vertex.count]
    first_line = header.lines + skip + 1
    tokens = b" ".join(rows).split()
    if len(tokens) != width * vertex.count:
        # Error path only: find the first short/long line; blank lines to the end mean the data stops early.
        complete = len(rows)
        for i, row in enumerate(rows):
            if len(row.split()) != width:
                if not b"".join(rows[i:]).strip():
                    complete = i
                    break
                raise SplatpackError(
                    f"malformed ASCII vertex data: line {first_line + i} has {len(row.split())} values, "
                    f"expected {width}",
                    path,
                )
        raise SplatpackError(
            f"truncated: the header declares {vertex.count} vertices but the ASCII data holds {complete}", path
        )
    strings = np.array(tokens)
    try:
        values = strings.astype(np.float64)
    except ValueError:
        bad = _first_non_number(strings)
        raise SplatpackError(
            f"malformed ASCII vertex data: line {first_line + bad // width} has the non-numeric value "
            f"{tokens[bad][:40].decode('ascii', 'replace')!r}",
            path,
        ) from None
    # Same record layout as a binary body, so the rest of read() does not care about the encoding.
    return values.reshape(vertex.count, width).view(np.dtype([(p.name, "f8") for p in vertex.properties]))[:, 0]


def _first_non_number(strings: np.ndarray) -> int:
    """Index of the first entry numpy cannot parse (bisection, so the same parser decides, in log n passes)."""
    lo, hi = 0, len(strings)  # the first bad entry lies in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            strings[lo:mid].astype(np.float64)
            lo = mid
        except ValueError:
            hi = mid
    return lo


def read(path: str | os.PathLike, *, arrays: Arrays = "torch") -> Splats:
    """Read a standard 3DGS PLY (binary either endian, or ASCII, with or without normals) into float32 CPU
    ``Splats`` (torch tensors or numpy arrays, as ``arrays`` says)."""
    path = Path(path)
    header = _parse_header(_read_head(path), path)
    vertex, degree = _splat_layout(header, path)
    if vertex.count == 0:
        raise SplatpackError("the vertex element is empty (0 Gaussians)", path)
    file_size = path.stat().st_size
    reader = _read_ascii if header.encoding == "ascii" else _read_binary
    records = reader(path, header, vertex, file_size)

    # Imported here: it pulls in numpy.ma (~25 ms), which commands that only write PLYs never need.
    from numpy.lib import recfunctions as rfn

    # One row-wise gather per field, straight into its final layout (casting double / big-endian on the way);
    # f_rest is listed coefficient-major so the file's channel-major order becomes Splats' (N, K, 3).
    fields = {
        field: rfn.structured_to_unstructured(records[list(names)], dtype=np.float32, copy=True)
        for field, names in _field_names(degree).items()
    }
    # NaN/Inf follow the reading policy (splatpack.edit.nonfinite): clamped infinite opacities/scales by default.
    fields = resolve(fields, source=path, names=_field_names(degree))

    n = len(fields["means"])
    return Splats(
        means=fields["means"],
        quats=fields["quats"],
        log_scales=fields["log_scales"],
        opacity_logits=fields["opacity_logits"].reshape(n),
        sh0=fields["sh0"].reshape(n, 1, 3),
        shN=fields["shN"].reshape(n, -1, 3),
    ).as_arrays(arrays)


def write(splats: Splats, path: str | os.PathLike, *, normals: bool = False) -> None:
    """Write ``splats`` as a float32 binary-little-endian 3DGS PLY, atomically. ``normals`` adds the zero
    ``nx ny nz`` properties the original 3DGS code writes (12 bytes per Gaussian that no splat reader needs;
    splat-transform leaves them out too)."""
    path = Path(path)
    if len(splats) == 0:
        raise SplatpackError("cannot write an empty scene (0 Gaussians); PLY readers refuse empty files", path)
    s = splats.numpy(np.float32)
    n, k = len(s), s.shN.shape[1]
    names = ["x", "y", "z", *(("nx", "ny", "nz") if normals else ()), "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(3 * k)]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    # Each field is copied once, straight into its columns of the file's rows.
    rows = np.empty((n, len(names)), dtype="<f4")
    rows[:, 0:3] = s.means
    dc = 6 if normals else 3
    rows[:, 3:dc] = 0
    rows[:, dc : dc + 3] = s.sh0[:, 0]
    rest = dc + 3
    rows[:, rest : rest + 3 * k].reshape(n, 3, k)[:] = s.shN.transpose(0, 2, 1)  # file is channel-major
    rows[:, rest + 3 * k] = s.opacity_logits
    rows[:, rest + 1 + 3 * k : rest + 4 + 3 * k] = s.log_scales
    rows[:, rest + 4 + 3 * k :] = s.quats
    # Checked after the float32 cast so float64 values beyond float32's range are refused too; numpy's
    # one-pass check is cheap, validate() names the field and Gaussian when it fails.
    if not np.isfinite(rows).all():
        s.validate(check_finite=True, source=path)
    records = rows.view(np.dtype([(name, "<f4") for name in names]))[:, 0]
    element = plyfile.PlyElement.describe(records, "vertex")
    with atomic_output(path) as tmp:
        try:
            plyfile.PlyData([element], byte_order="<").write(str(tmp))
        except OSError as exc:
            raise SplatpackError(f"cannot write: {exc.strerror or exc}", path) from None


def sniff(path: str | os.PathLike, head: bytes) -> bool:
    """Whether ``head`` starts a PLY whose vertex element carries the 3DGS properties (not compressed PLY)."""
    if _newline(head) is None:
        return False
    try:
        # A header with many extra properties or comments may run past the bytes we were given.
        _splat_layout(_parse_header(head if b"end_header" in head else _read_head(path), path), path)
    except SplatpackError:
        return False
    return True


def describe(path: str | os.PathLike) -> dict:
    """Header facts for ``splatpack info`` (reads only the header)."""
    header = _parse_header(_read_head(path), path)
    vertex, degree = _splat_layout(header, path)
    return {
        "format": "ply",
        "encoding": header.encoding,
        "vertices": vertex.count,
        "sh_degree": degree,
        "properties": [p.name for p in vertex.properties],
    }
