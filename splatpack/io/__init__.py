"""Reading and writing splat files: one module per format, chosen here by name, extension or content.

Every format module (``splatpack/io/<name>.py``) provides:

- ``read(path, *, arrays="torch") -> Splats`` — raises ``SplatpackError`` naming the file and the problem for bad
  input; ``arrays="numpy"`` builds a numpy-backed scene (every reader but .spk's and glTF's then runs without
  importing torch);
- ``write(splats, path, **options)`` — optional; must write through ``atomic_output`` (a folder form through
  ``atomic_folder``) so nothing half-written is ever left behind;
- ``sniff(path, head: bytes) -> bool`` — whether a file with these first bytes is in this format;
- ``describe(path) -> dict`` — optional extra facts for ``splatpack info`` (version, flags, ...).

Modules are imported lazily so a broken optional dependency of one format never breaks the others, and detection
tries the format a file's name implies first, so a file that is what its name says imports no other format module
(.splat has no magic number: its detection still asks every other format, none of which imports torch to answer).
"""

from __future__ import annotations

import importlib
import inspect
import os
import stat
from pathlib import Path
from types import ModuleType

from splatpack.edit.nonfinite import reading_policy
from splatpack.errors import SplatpackError
from splatpack.io.atomic import refuse_overwriting_inputs
from splatpack.io.files import check_input
from splatpack.scene import Arrays, Splats

# name -> (module, file name endings); longer endings are tried first so ".compressed.ply" beats ".ply".
FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ply": ("splatpack.io.ply", (".ply",)),
    "compressed-ply": ("splatpack.io.compressed_ply", (".compressed.ply",)),
    "spz": ("splatpack.io.spz", (".spz",)),
    "splat": ("splatpack.io.splat", (".splat",)),
    "sog": ("splatpack.io.sog", (".sog", ".sog.d", "meta.json")),
    "glb": ("splatpack.io.gltf", (".glb",)),
    "lod-sog": ("splatpack.io.lod_sog", ("lod-meta.json",)),
    "spk": ("splatpack.io.spk", (".spk",)),
}
# Formats whose writer lives in a module of its own (the reader module is then read-only).
WRITERS: dict[str, str] = {"compressed-ply": "splatpack.io.compressed_ply_write"}


def format_module(name: str) -> ModuleType:
    if name not in FORMATS:
        raise SplatpackError(f"unknown format {name!r}; known formats: {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[name][0])


def format_from_name(path: str | os.PathLike) -> str | None:
    """Format implied by the file name's ending, or None."""
    name = Path(path).name.lower()
    endings = sorted(((end, fmt) for fmt, (_, ends) in FORMATS.items() for end in ends), key=lambda e: -len(e[0]))
    for end, fmt in endings:
        if name.endswith(end):
            return fmt
    return None


def detect_format(path: str | os.PathLike) -> str:
    """Format of an existing file: by content where a format recognises it, else by name."""
    p = Path(path)
    head = b""
    if not stat.S_ISDIR(check_input(p, folder_ok=True).st_mode):  # a regular file (folders are SOG)
        try:
            with open(p, "rb") as f:
                head = f.read(4096)
        except OSError as exc:
            raise SplatpackError(f"cannot read: {exc.strerror or exc}", p) from None
    by_name = format_from_name(p)
    # The format the name implies is tried first: the others' modules are imported only when it is wrong (.spk's
    # needs torch).
    for fmt in sorted(FORMATS, key=lambda f: f != by_name):
        try:
            mod = format_module(fmt)
        except ImportError:
            continue
        if mod.sniff(p, head):
            return fmt
    if by_name is None:
        raise SplatpackError(
            "unrecognised splat file (not PLY, compressed PLY, SPZ, .splat, SOG, LOD SOG, glTF or .spk)", p
        )
    return by_name


def read(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    nonfinite: str | None = None,
    arrays: Arrays = "torch",
    **options,
) -> Splats:
    """Read any supported splat file into ``Splats`` (float32, CPU).

    ``nonfinite`` is the policy for NaN/Inf values (``splatpack.edit.nonfinite``: clamp, drop or error; default
    clamp); ``arrays`` is what the scene holds: torch tensors, or numpy arrays (every reader but .spk's and glTF's
    then runs without importing torch); ``options`` go to the format's reader (``lod_level`` for LOD SOG).
    """
    fmt = format or detect_format(path)
    mod = format_module(fmt)
    unknown = sorted(set(options) - set(inspect.signature(mod.read).parameters))
    if unknown:
        raise SplatpackError(f"{', '.join(unknown)} does not apply to {fmt} files", path)
    with reading_policy(nonfinite):
        return mod.read(path, arrays=arrays, **options)


def write(splats: Splats, path: str | os.PathLike, format: str | None = None, *, inputs=(), **options) -> None:
    """Write ``splats`` in ``format`` (default: from ``path``'s extension), atomically.

    ``inputs`` are the files the scene was read from: writing over one of them is refused, so an input is never
    lost even when OUT names the same file as IN.
    """
    refuse_overwriting_inputs(path, inputs)
    fmt = format or format_from_name(path)
    if fmt is None:
        raise SplatpackError(f"cannot tell the output format from the name; use one of: {', '.join(FORMATS)}", path)
    mod = importlib.import_module(WRITERS[fmt]) if fmt in WRITERS else format_module(fmt)
    if not hasattr(mod, "write"):
        raise SplatpackError(f"writing {fmt} is not supported (read-only format)", path)
    mod.write(splats, path, **options)
