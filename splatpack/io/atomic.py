"""Write outputs so that nothing is ever half-written or lost.

Outputs go to a temporary file (or folder) beside the destination and are renamed into place only when the
writer finished; inputs are never opened for writing. An output that is, lies inside or contains an input is
refused, and so is an existing output that is not a regular file (a device node or FIFO is never replaced).
Write errors (disk full, file-size limit, permission denied) become one ``SplatpackError`` line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from splatpack.errors import SplatpackError


def _overlap(out: Path, src: Path) -> str | None:
    """How ``out`` overlaps the input ``src`` (both resolved), or None."""
    if out == src:
        return "is the input"
    if src in out.parents:
        return f"lies inside the input folder {src}"
    if out in src.parents:
        return f"contains the input {src}"
    return None


def refuse_overwriting_inputs(path: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> None:
    """Raise when ``path`` is one of ``inputs`` (same file, whatever the spelling), lies inside an input folder,
    or contains an input (a SOG ``meta.json`` input stands for its whole folder)."""
    out = Path(path)
    resolved = Path(os.path.realpath(out))
    for src in inputs:
        src = Path(src)
        if not os.path.lexists(src):
            continue
        footprint = [Path(os.path.realpath(src))]
        if src.is_file() and src.name.lower().endswith(".json"):
            footprint.append(footprint[0].parent)  # the textures beside a SOG meta.json are input too
        if out.exists() and os.path.samefile(src, out):
            raise SplatpackError("output is the same file as the input; refusing to overwrite it", out)
        for part in footprint:
            how = _overlap(resolved, part)
            if how is not None:
                raise SplatpackError(f"output {how}; refusing to overwrite it", out)


def check_output(path: str | os.PathLike, *, folder: bool = False) -> None:
    """Refuse an existing ``path`` that is not a regular file (nor a folder, when ``folder``): renaming over a
    device node, FIFO or socket would replace it."""
    out = Path(path)
    if not os.path.lexists(out):
        return
    try:
        mode = os.stat(out).st_mode
    except OSError:
        raise SplatpackError("output is a broken symbolic link; refusing to replace it", out) from None
    if stat.S_ISDIR(mode):
        if not folder:
            raise SplatpackError("cannot write: it is a directory", out)
        return
    if not stat.S_ISREG(mode):
        raise SplatpackError("output exists and is not a regular file (device, FIFO or socket); refusing it", out)
    if folder:
        raise SplatpackError("cannot write a folder: a file of that name exists", out)


def _folder_of(out: Path) -> Path:
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise SplatpackError(f"cannot write: folder {folder} does not exist", out)
    return folder


def _plain_permissions(path: Path, mode: int) -> None:
    # mkstemp/mkdtemp create 0600/0700; give the output what a plain open()/mkdir() would (minus the umask).
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(mode & ~umask)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while a temporary is created and its clean-up armed: a signal in between would leave
    it behind. Held signals are delivered (and their handlers run) when the block ends."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _write_error(exc: OSError, out: Path) -> SplatpackError:
    return SplatpackError(f"cannot write: {exc.strerror or exc}", out)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, inputs: tuple[str | os.PathLike, ...] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    ``inputs`` are the files this output is made from: writing over (or into) one of them is refused up front.
    An ``OSError`` raised by the block (disk full, file too large) becomes a ``SplatpackError`` naming ``path``.
    """
    out = Path(path)
    refuse_overwriting_inputs(out, inputs)
    check_output(out)
    folder = _folder_of(out)
    tmp = None
    try:
        with _signals_held():  # a signal delivered when they are released finds the clean-up below armed
            try:
                fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
            except OSError as exc:
                raise _write_error(exc, out) from None
            os.close(fd)
            tmp = Path(tmp_name)
        _plain_permissions(tmp, 0o666)
        try:
            yield tmp
        except OSError as exc:
            raise _write_error(exc, out) from None
        try:
            os.replace(tmp, out)
        except OSError as exc:
            raise _write_error(exc, out) from None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system or kernel cannot exchange
        return False
    raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def atomic_folder(
    path: str | os.PathLike, *, inputs: tuple[str | os.PathLike, ...] = (), replaceable=lambda folder: True
) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; swap it into place when the block succeeds.

    An existing folder at ``path`` is replaced whole (exchanged in one step where the system can) only when
    ``replaceable(path)`` says its contents may go; a reader never sees old and new files mixed.
    """
    out = Path(path)
    refuse_overwriting_inputs(out, inputs)
    check_output(out, folder=True)
    parent = _folder_of(out)
    if out.is_dir() and not replaceable(out):
        raise SplatpackError("output folder exists and holds other files; refusing to replace it", out)
    tmp = None
    try:
        with _signals_held():
            try:
                tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
            except OSError as exc:
                raise _write_error(exc, out) from None
        _plain_permissions(tmp, 0o777)
        try:
            yield tmp
            with _signals_held():  # Ctrl-C or SIGTERM never lands between the renames of the fallback
                if not out.exists():
                    os.rename(tmp, out)
                elif not _exchange(tmp, out):
                    # No atomic exchange here: move the old folder aside first, so a crash leaves it (hidden).
                    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=parent))
                    os.rename(out, old / "x")
                    os.rename(tmp, out)
                    shutil.rmtree(old)
        except OSError as exc:
            raise _write_error(exc, out) from None
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
