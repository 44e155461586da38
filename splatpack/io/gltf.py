"""glTF binary (``.glb``) with the ``KHR_gaussian_splatting`` extension: read, write, sniff.

One point primitive (mode 0) whose attributes are float32 accessors: ``POSITION``, ``KHR_gaussian_splatting:
ROTATION`` (unit quaternion x, y, z, w), ``:SCALE`` (linear standard deviations, as the extension has required
since February 2026 and splat-transform 3.7 writes), ``:OPACITY`` (0-1), ``:SH_DEGREE_<l>_COEF_<i>`` (RGB
coefficients, DC included), plus ``COLOR_0`` (RGBA bytes) as the fallback point colour.

glTF scenes are +Y up. Like splat-transform, the writer maps the PLY frame into it by a half turn about z (x
and y negated, rotations and SH turned with it) and the reader maps it back, so files match the peer's.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from splatpack.errors import SplatpackError
from splatpack.io.atomic import atomic_output
from splatpack.io.files import read_input_bytes
from splatpack.scene import SH_C0, SH_REST_COUNT, Arrays, Splats

EXTENSION = "KHR_gaussian_splatting"
_MAGIC, _JSON, _BIN = b"glTF", 0x4E4F534A, 0x004E4942
_FLOAT, _UBYTE = 5126, 5121
_COMPONENTS = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}


def _half_turn():
    """Half turn about z: the PLY frame <-> glTF's, as splat-transform converts (torch: the SH rotation is)."""
    import torch

    return torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64))


def _sh_names(degree: int) -> list[str]:
    return [f"{EXTENSION}:SH_DEGREE_{l}_COEF_{i}" for l in range(degree + 1) for i in range(2 * l + 1)]


def write(splats: Splats, path: str | os.PathLike) -> None:
    """Write ``splats`` as a glTF binary with one KHR_gaussian_splatting point primitive, atomically."""
    from splatpack.edit.rigid import similarity

    path = Path(path)
    if len(splats) == 0:
        raise SplatpackError("cannot write an empty scene as glTF", path)
    splats.validate(check_finite=True, source=path)
    import torch

    s = similarity(splats.detach().to("cpu", torch.float64), rotation=_half_turn())
    n = len(s)
    q = s.unit_quats.numpy()
    rgb = np.clip(s.sh0[:, 0].numpy() * SH_C0 + 0.5, 0, 1)
    columns: list[tuple[str, np.ndarray]] = [
        ("POSITION", s.means.numpy().astype("<f4")),
        ("COLOR_0", np.rint(np.concatenate([rgb, s.opacities.numpy()[:, None]], axis=1) * 255).astype(np.uint8)),
        (f"{EXTENSION}:ROTATION", q[:, [1, 2, 3, 0]].astype("<f4")),
        (f"{EXTENSION}:SCALE", np.exp(s.log_scales.numpy()).astype("<f4")),
        (f"{EXTENSION}:OPACITY", s.opacities.numpy().astype("<f4")),
    ]
    sh = s.sh.numpy()
    columns += [(name, sh[:, i].astype("<f4")) for i, name in enumerate(_sh_names(s.sh_degree))]
    views, accessors, attributes, blobs, offset = [], [], {}, [], 0
    for index, (name, values) in enumerate(columns):
        data = np.ascontiguousarray(values).tobytes()
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(data), "target": 34962})
        width = 1 if values.ndim == 1 else values.shape[1]
        acc = {"bufferView": index, "componentType": _UBYTE if values.dtype == np.uint8 else _FLOAT}
        acc.update(count=n, type={1: "SCALAR", 3: "VEC3", 4: "VEC4"}[width])
        if name == "COLOR_0":
            acc["normalized"] = True
        if name == "POSITION":  # glTF requires the bounds of POSITION
            acc.update(min=values.min(axis=0).tolist(), max=values.max(axis=0).tolist())
        accessors.append(acc)
        attributes[name] = index
        blobs.append(data + b"\0" * (-len(data) % 4))
        offset += len(blobs[-1])
    doc = {
        "asset": {"version": "2.0", "generator": "splatpack"},
        "extensionsUsed": [EXTENSION],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [
            {
                "primitives": [
                    {
                        "attributes": attributes,
                        "mode": 0,
                        "extensions": {
                            EXTENSION: {
                                "kernel": "ellipse",
                                "colorSpace": "srgb_rec709_display",
                                "sortingMethod": "cameraDistance",
                                "projection": "perspective",
                            }
                        },
                    }
                ]
            }
        ],
        "buffers": [{"byteLength": offset}],
        "bufferViews": views,
        "accessors": accessors,
    }
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary = b"".join(blobs)
    total = 12 + 8 + len(text) + 8 + len(binary)
    out = _MAGIC + struct.pack("<II", 2, total) + struct.pack("<II", len(text), _JSON) + text
    out += struct.pack("<II", len(binary), _BIN) + binary
    with atomic_output(path) as tmp:
        tmp.write_bytes(out)


def _chunks(data: bytes, path: Path) -> tuple[dict, bytes]:
    if len(data) < 20 or data[:4] != _MAGIC:
        raise SplatpackError("not a glTF binary (no 'glTF' magic)", path)
    version, total = struct.unpack_from("<II", data, 4)
    if version != 2 or total > len(data):
        raise SplatpackError(f"glTF binary version {version}, {total} bytes declared, {len(data)} present", path)
    doc, binary, at = None, b"", 12
    while at + 8 <= total:
        length, kind = struct.unpack_from("<II", data, at)
        body = data[at + 8 : at + 8 + length]
        if len(body) != length:
            raise SplatpackError("truncated glTF chunk", path)
        if kind == _JSON and doc is None:
            try:
                doc = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise SplatpackError(f"glTF JSON chunk is not valid JSON: {exc}", path) from None
        elif kind == _BIN and not binary:
            binary = body
        at += 8 + length
    if not isinstance(doc, dict):
        raise SplatpackError("glTF binary has no JSON chunk", path)
    return doc, binary


def _accessor(doc: dict, binary: bytes, index, path: Path) -> np.ndarray:
    try:
        acc = doc["accessors"][index]
        view = doc["bufferViews"][acc["bufferView"]]
        width = _COMPONENTS[acc["type"]]
        dtype = {_FLOAT: np.dtype("<f4"), _UBYTE: np.dtype("u1")}[acc["componentType"]]
        count = int(acc["count"])
        start = int(view.get("byteOffset", 0)) + int(acc.get("byteOffset", 0))
        stride = int(view.get("byteStride", 0)) or dtype.itemsize * width
    except (KeyError, IndexError, TypeError, ValueError):
        raise SplatpackError(
            f"glTF accessor {index!r} is malformed or unsupported (float or byte only)", path
        ) from None
    if (
        view.get("buffer", 0) != 0
        or count < 0
        or start + stride * max(count - 1, 0) + dtype.itemsize * width > len(binary)
    ):
        raise SplatpackError(f"glTF accessor {index} reaches past the binary chunk", path)
    rows = np.lib.stride_tricks.as_strided(
        np.frombuffer(binary, dtype=np.uint8, offset=start), shape=(count, dtype.itemsize * width), strides=(stride, 1)
    )
    values = np.ascontiguousarray(rows).view(dtype).reshape(count, width).astype(np.float64)
    return values / 255.0 if dtype.itemsize == 1 else values


def read(path: str | os.PathLike, *, arrays: Arrays = "torch") -> Splats:
    """Read the first KHR_gaussian_splatting primitive of a glTF binary (node transforms are not applied)."""
    from splatpack.edit.rigid import similarity

    path = Path(path)
    doc, binary = _chunks(read_input_bytes(path, "a glTF binary"), path)
    prims = [p for m in doc.get("meshes", []) for p in m.get("primitives", []) if EXTENSION in p.get("extensions", {})]
    if not prims:
        raise SplatpackError(f"no mesh primitive uses {EXTENSION}", path)
    attrs = prims[0].get("attributes", {})
    need = ["POSITION", f"{EXTENSION}:ROTATION", f"{EXTENSION}:SCALE", f"{EXTENSION}:OPACITY", _sh_names(0)[0]]
    missing = [a for a in need if a not in attrs]
    if missing:
        raise SplatpackError(f"the {EXTENSION} primitive lacks {', '.join(missing)}", path)
    get = {name: _accessor(doc, binary, attrs[name], path) for name in need}
    degree = max((d for d in SH_REST_COUNT if all(a in attrs for a in _sh_names(d))), default=0)
    sh = np.stack([_accessor(doc, binary, attrs[a], path) for a in _sh_names(degree)], axis=1)
    n = len(get["POSITION"])
    if any(len(v) != n for v in get.values()) or len(sh) != n:
        raise SplatpackError("the primitive's attributes have different counts", path)
    scales = get[f"{EXTENSION}:SCALE"]
    if (scales < 0).any():
        raise SplatpackError(f"{int((scales < 0).any(axis=1).sum())} Gaussian(s) have negative scales", path)
    opacity = np.clip(get[f"{EXTENSION}:OPACITY"][:, 0], 0, 1)
    with np.errstate(divide="ignore"):
        splats = Splats.from_numpy(
            means=get["POSITION"],
            quats=get[f"{EXTENSION}:ROTATION"][:, [3, 0, 1, 2]],
            log_scales=np.log(scales),
            opacity_logits=np.log(opacity) - np.log1p(-opacity),
            sh0=sh[:, 0],
            shN=sh[:, 1:],
            source=path,
        )
    import torch

    return similarity(splats.to(torch.float64), rotation=_half_turn()).to(torch.float32).as_arrays(arrays)


def sniff(path: str | os.PathLike, head: bytes) -> bool:
    return head[:4] == _MAGIC and EXTENSION.encode() in head
