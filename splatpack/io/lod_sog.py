"""PlayCanvas LOD SOG (``lod-meta.json``, what SuperSplat streams): levels of detail in spatial chunks.

Layout, as splat-transform 3.7 writes and reads it: a folder holding ``lod-meta.json`` and one unbundled SOG
folder per file (``<level>_<k>/meta.json`` + textures). ``lod-meta.json``::

    {"version": 1, "asset": {...}, "count": <all levels>, "counts": [<per level>], "lodLevels": L,
     "lodErrors": false, "filenames": ["0_0/meta.json", ...],
     "tree": {"bound": {"min": [x, y, z], "max": [...]}, "children": [<node>, ...]}}

Leaf nodes carry ``"lods": {"<level>": {"file": <index into filenames>, "offset": o, "count": c}}``: that
level's Gaussians inside the leaf are rows o..o+c of that file. Level 0 is the finest.

Writing builds the levels with ``splatpack.edit.decimate`` (each level half the previous one), splits space
with splat-transform's rule (a node splits at the median of its longest axis while it holds more than
``chunk_gaussians`` level-0 Gaussians, or more than ``chunk_min`` and is wider than ``chunk_extent``) and
stores each leaf's Gaussians contiguously, Morton-ordered, in files of about ``chunk_gaussians``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from splatpack.errors import SplatpackError
from splatpack.io.atomic import atomic_folder
from splatpack.io.files import read_input_bytes
from splatpack.scene import Arrays, Splats

META_NAME = "lod-meta.json"
MAX_META_BYTES = 64 << 20
MAX_LEVELS = 16


def _load(path: Path) -> dict:
    meta_path = path / META_NAME if path.is_dir() else path
    raw = read_input_bytes(meta_path, "an LOD meta file", max_bytes=MAX_META_BYTES)
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise SplatpackError(f"bad {META_NAME}: {str(exc)[:80]}", meta_path) from None
    if not isinstance(meta, dict) or meta.get("version") != 1:
        raise SplatpackError(f"bad {META_NAME}: expected an object with version 1", meta_path)
    names, counts = meta.get("filenames"), meta.get("counts")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise SplatpackError(f"bad {META_NAME}: 'filenames' must be a non-empty list of names", meta_path)
    if not (isinstance(counts, list) and 0 < len(counts) <= MAX_LEVELS and all(type(c) is int for c in counts)):
        raise SplatpackError(f"bad {META_NAME}: 'counts' must list 1-{MAX_LEVELS} integers", meta_path)
    root = meta_path.parent.resolve()
    files = []
    for name in names:
        file = (root / name).resolve()
        if root not in file.parents:  # a name must not reach outside the LOD folder
            raise SplatpackError(f"bad {META_NAME}: file name {name!r} points outside its folder", meta_path)
        files.append(file)
    segments: dict[int, list[tuple[int, int, int]]] = {level: [] for level in range(len(counts))}
    stack = [meta.get("tree")]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            raise SplatpackError(f"bad {META_NAME}: a tree node is not an object", meta_path)
        children = node.get("children", [])
        if not isinstance(children, list):
            raise SplatpackError(f"bad {META_NAME}: 'children' is not a list", meta_path)
        stack.extend(reversed(children))  # depth first, in file order
        for level, entry in (node.get("lods") or {}).items():
            try:
                key = int(level)
                seg = (int(entry["file"]), int(entry["offset"]), int(entry["count"]))
            except (KeyError, TypeError, ValueError):
                raise SplatpackError(f"bad {META_NAME}: malformed lods entry {level!r}", meta_path) from None
            if key not in segments or not 0 <= seg[0] < len(files) or seg[1] < 0 or seg[2] < 0:
                raise SplatpackError(f"bad {META_NAME}: lods entry {level!r} is out of range", meta_path)
            segments[key].append(seg)
    for level, segs in segments.items():
        if sum(c for _, _, c in segs) != counts[level]:
            raise SplatpackError(
                f"bad {META_NAME}: level {level} lists {sum(c for _, _, c in segs)} Gaussians in its chunks, "
                f"'counts' says {counts[level]}",
                meta_path,
            )
    return {"path": meta_path, "files": files, "counts": counts, "segments": segments}


def lod_option(level: int | None) -> dict:
    """Reader keywords for a command's ``--lod-level`` (none when it is not given)."""
    return {} if level is None else {"lod_level": level}


def level_counts(path: str | os.PathLike) -> list[int]:
    """Gaussians per level, finest (level 0) first."""
    return list(_load(Path(path))["counts"])


def finest_level_within(path: str | os.PathLike, budget: int) -> int:
    """The finest level with at most ``budget`` Gaussians (the coarsest when none fits): what a viewer shows."""
    counts = level_counts(path)
    return next((level for level, count in enumerate(counts) if count <= budget), len(counts) - 1)


def read(path: str | os.PathLike, lod_level: int | None = None, *, arrays: Arrays = "torch") -> Splats:
    """All levels concatenated, finest first (as splat-transform reads it), or only level ``lod_level``."""
    from splatpack.io import sog

    info = _load(Path(path))
    levels = range(len(info["counts"])) if lod_level is None else [lod_level]
    if lod_level is not None and not 0 <= lod_level < len(info["counts"]):
        raise SplatpackError(f"--lod-level {lod_level}: the file has levels 0-{len(info['counts']) - 1}", path)
    decoded: dict[int, Splats] = {}
    parts = []
    for level in levels:
        for file, offset, count in info["segments"][level]:
            if file not in decoded:
                decoded[file] = sog.read(info["files"][file], arrays=arrays)
            if offset + count > len(decoded[file]):
                raise SplatpackError(
                    f"a chunk of level {level} reaches row {offset + count} of {info['files'][file]}, which holds "
                    f"{len(decoded[file])}",
                    info["path"],
                )
            parts.append(decoded[file][offset : offset + count])
    return Splats.cat(parts)


def sniff(path: str | os.PathLike, head: bytes) -> bool:
    p = Path(path)
    if p.is_dir():
        return (p / META_NAME).is_file()
    return head.lstrip().startswith(b"{") and b'"lodLevels"' in head


def describe(path: str | os.PathLike) -> dict:
    info = _load(Path(path))
    return {
        "format": "lod-sog",
        "levels": len(info["counts"]),
        "counts": info["counts"],
        "files": len(info["files"]),
        "chunks": len(info["segments"][0]),
    }


# ---------------------------------------------------------------------------------------------- writing


def _split(means: list[np.ndarray], idx: list[np.ndarray], rule: tuple[int, float, int], leaves: list) -> dict:
    """The tree node over ``idx`` (per level: indices into that level's centres), appending leaves in order."""
    chunk_gaussians, chunk_extent, chunk_min = rule
    pts = [m[i] for m, i in zip(means, idx)]
    present = np.concatenate([p for p in pts if len(p)]) if any(len(p) for p in pts) else np.zeros((1, 3))
    bound = {"min": present.min(axis=0).tolist(), "max": present.max(axis=0).tolist()}
    n0 = len(idx[0])
    extent = float((pts[0].max(axis=0) - pts[0].min(axis=0)).max()) if n0 else 0.0
    if n0 > 1 and (n0 > chunk_gaussians or (n0 > chunk_min and extent > chunk_extent)):
        axis = int(np.argmax(pts[0].max(axis=0) - pts[0].min(axis=0)))
        cut = float(np.median(pts[0][:, axis]))
        lower = [p[:, axis] < cut for p in pts]
        if 0 < int(lower[0].sum()) < n0:  # a split that separates something
            children = [
                _split(means, [i[lo] for i, lo in zip(idx, lower)], rule, leaves),
                _split(means, [i[~lo] for i, lo in zip(idx, lower)], rule, leaves),
            ]
            return {"bound": bound, "children": children}
    node = {"bound": bound, "lods": {}}
    leaves.append((node, idx))
    return node


def write(
    splats: Splats,
    path: str | os.PathLike,
    *,
    lod_levels: int = 3,
    chunk_gaussians: int = 524288,
    chunk_extent: float = 16.0,
    chunk_min: int = 8192,
    **sog_options,
) -> None:
    """Write an LOD SOG folder for ``path`` (``.../lod-meta.json`` or the folder); ``sog_options`` go to
    ``sog.encode`` (preset, seed; the order inside each chunk is Morton, so ``sort`` is fixed)."""
    import torch

    from splatpack.edit.decimate import decimate
    from splatpack.io import sog
    from splatpack.sort.morton import morton_order

    out = Path(path)
    folder = out if out.suffix.lower() != ".json" else out.parent
    if not 1 <= lod_levels <= MAX_LEVELS:
        raise SplatpackError(f"--lod-levels {lod_levels} is out of range 1-{MAX_LEVELS}", out)
    if len(splats) == 0:
        raise SplatpackError("cannot write an empty scene as LOD SOG", out)
    splats.validate(check_finite=True, source=out)
    sog_options.pop("sort", None)
    levels = [splats.detach().to("cpu", torch.float32)]
    for _ in range(1, lod_levels):
        levels.append(decimate(levels[-1], max(1, len(levels[-1]) // 2)))
    means = [lv.means.double().numpy() for lv in levels]
    leaves: list = []
    tree = _split(means, [np.arange(len(m)) for m in means], (chunk_gaussians, chunk_extent, chunk_min), leaves)
    files: list[tuple[str, Splats]] = []
    for level, lv in enumerate(levels):
        rows: list = []
        k = 0
        for node, idx in leaves:
            sel = torch.from_numpy(idx[level])
            if not len(sel):
                continue
            if rows and sum(map(len, rows)) + len(sel) > chunk_gaussians:
                files.append((f"{level}_{k}/meta.json", lv[torch.cat(rows)]))
                rows, k = [], k + 1
            sel = sel[morton_order(lv.means[sel])]
            node["lods"][str(level)] = {"file": len(files), "offset": sum(map(len, rows)), "count": len(sel)}
            rows.append(sel)
        if rows:
            files.append((f"{level}_{k}/meta.json", lv[torch.cat(rows)]))
    meta = {
        "version": 1,
        "asset": {
            "generator": "splatpack",
            "chunkGaussians": chunk_gaussians,
            "chunkExtent": chunk_extent,
            "chunkMinGaussians": chunk_min,
        },
        "count": sum(map(len, levels)),
        "counts": [len(lv) for lv in levels],
        "lodLevels": lod_levels,
        "lodErrors": False,
        "filenames": [name for name, _ in files],
        "tree": tree,
    }
    encoded = [(name, sog.encode(part, sort="none", source=out, **sog_options)) for name, part in files]
    with atomic_folder(folder, replaceable=_only_lod_files) as tmp:
        for name, (file_meta, textures) in encoded:
            sub = tmp / Path(name).parent
            sub.mkdir()
            for tex, data in textures.items():
                (sub / tex).write_bytes(data)
            (sub / "meta.json").write_text(json.dumps(file_meta, separators=(",", ":")))
        (tmp / META_NAME).write_text(json.dumps(meta, separators=(",", ":")))


def _only_lod_files(folder: Path) -> bool:
    """An existing output folder may be replaced only when it holds an LOD SOG and nothing else."""
    names = {p.name for p in folder.iterdir()}
    if META_NAME not in names:
        return False
    return all(p.name == META_NAME or (p.is_dir() and (p / "meta.json").is_file()) for p in folder.iterdir())
