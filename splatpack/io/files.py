"""Reading input files with errors that name the file (the readers' one way in), and the size bounds they share.

Inputs must be regular files (or folders, for folder formats): a FIFO would block a read forever and a device
such as /dev/zero never ends, so both are refused before anything is read. Every size a file declares (a
Gaussian count, a stream's decompressed length, a texture's dimensions) is bounded by what the file's own
bytes can hold before it is allocated: ``check_expansion``.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from splatpack.errors import SplatpackError

# Decoded bytes a file may declare per stored byte. Real splat data stays below 5:1 (positions barely compress; a
# zero-padded SH-3 SPZ is 4.3:1); only constant data goes further (deflate up to 1032:1, zstd and lossless WebP
# without practical limit), so a file declaring more is refused rather than trusted with gigabytes: a reader's
# peak memory is then at most its per-Gaussian ceiling (README, "Reliability") times what the file can hold.
MAX_EXPANSION = 64
# ... except that a small declared size is always accepted (degenerate test scenes compress without bound).
EXPANSION_FLOOR = 8 << 20


def _kind_of(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_input(path: str | os.PathLike, *, folder_ok: bool = False) -> os.stat_result:
    """``stat`` of ``path`` (following links), refusing anything that is not a regular file (or a folder)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise SplatpackError("no such file", p) from None
    except OSError as exc:
        raise SplatpackError(f"cannot read: {exc.strerror or exc}", p) from None
    if stat.S_ISREG(st.st_mode) or (folder_ok and stat.S_ISDIR(st.st_mode)):
        return st
    if stat.S_ISDIR(st.st_mode):
        raise SplatpackError("is a directory, not a file", p)
    raise SplatpackError(f"is {_kind_of(st.st_mode)}, not a regular file; refusing to read it", p)


def read_input_bytes(path: str | os.PathLike, kind: str, *, max_bytes: int | None = None, name=None) -> bytes:
    """All bytes of the regular file ``path``; anything else becomes ``SplatpackError`` ("not a ``kind``").

    ``max_bytes`` refuses larger files before reading them; ``name`` is what error messages call the file (for
    a member of a folder, the folder's path names the input and the member its part).
    """
    p = Path(path)
    label = p if name is None else name
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before fstat can refuse it.
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SplatpackError("no such file", label) from None
    except IsADirectoryError:
        raise SplatpackError(f"is a directory, not {kind}", label) from None
    except OSError as exc:
        raise SplatpackError(f"cannot read: {exc.strerror or exc}", label) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (max_bytes is not None and st.st_size > max_bytes):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise SplatpackError(f"is a directory, not {kind}", label)
        if not stat.S_ISREG(st.st_mode):
            raise SplatpackError(f"is {_kind_of(st.st_mode)}, not a regular file; refusing to read it", label)
        raise SplatpackError(f"is {st.st_size} bytes, more than {kind} may hold ({max_bytes})", label)
    with os.fdopen(fd, "rb") as f:
        try:
            # Never more than the size fstat saw: a file growing while read cannot make the read unbounded.
            return f.read(st.st_size)
        except OSError as exc:
            raise SplatpackError(f"cannot read: {exc.strerror or exc}", label) from None


def check_expansion(declared: int, stored: int, what: str, path) -> None:
    """Refuse ``declared`` decoded bytes that ``stored`` compressed bytes cannot plausibly hold (see MAX_EXPANSION)."""
    limit = max(stored * MAX_EXPANSION, EXPANSION_FLOOR)
    if declared > limit:
        raise SplatpackError(
            f"{what} declares {declared} decoded bytes but its {stored} stored bytes can hold at most {limit} "
            f"({MAX_EXPANSION}:1); refusing a likely decompression bomb",
            path,
        )


def path_size(path: str | os.PathLike, _depth: int = 0) -> int:
    """Bytes of one scene in whichever form names it: a file, every file in a folder (unbundled SOG, LOD SOG),
    or a SOG ``meta.json`` / LOD ``lod-meta.json`` together with the files it names."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    size = path.stat().st_size
    if path.name.lower().endswith("meta.json") and _depth < 2:  # lod-meta.json -> meta.json -> textures
        folder = path.parent.resolve()
        for name in _named_files(path):
            member = (folder / name).resolve()
            if folder in member.parents and member.is_file() and member != path.resolve():
                size += path_size(member, _depth + 1)
    return size


def _named_files(meta_path: Path) -> list[str]:
    """Files a SOG meta.json (its sections' "files") or an LOD lod-meta.json ("filenames") names; none if unreadable."""
    try:
        with open(meta_path, "rb") as f:
            meta = json.loads(f.read(64 << 20))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(meta, dict):
        return []
    names = meta.get("filenames")
    if not isinstance(names, list):
        sections = [sec for sec in meta.values() if isinstance(sec, dict) and isinstance(sec.get("files"), list)]
        names = [n for sec in sections for n in sec["files"]]
    return [n for n in names if isinstance(n, str)]


def ratio_text(before: int, after: int) -> str:
    """How ``after`` bytes compare with ``before``: "N.Nx smaller" or "N.Nx larger"."""
    if after <= before:
        return f"{before / max(after, 1):.1f}x smaller"
    return f"{after / max(before, 1):.1f}x larger"


def human_bytes(n: int) -> str:
    """``n`` bytes in B / KB / MB / GB (powers of 1000, as file sizes are quoted)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
