"""Write outputs so that nothing is ever half-written or lost.

Outputs go to a temporary file in the destination folder and are renamed into place only when the writer
finished; inputs are never opened for writing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from splatpack.errors import SplatpackError


def refuse_overwriting_inputs(path: str | os.PathLike, inputs) -> None:
    """Raise when ``path`` is one of ``inputs`` (same file, whatever the spelling)."""
    for src in inputs:
        if Path(src).exists() and Path(path).exists() and os.path.samefile(src, path):
            raise SplatpackError("output is the same file as the input; refusing to overwrite it", path)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, inputs: tuple[str | os.PathLike, ...] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    ``inputs`` are the files this output is made from: writing over one of them is refused up front.
    """
    out = Path(path)
    refuse_overwriting_inputs(out, inputs)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise SplatpackError(f"cannot write: folder {folder} does not exist", out)
    if out.is_dir():
        raise SplatpackError("cannot write: it is a directory", out)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise SplatpackError(f"cannot write: {exc.strerror or exc}", out) from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; give the output the permissions a plain open() would (0666 minus the umask).
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        try:
            os.replace(tmp, out)
        except OSError as exc:
            raise SplatpackError(f"cannot write: {exc.strerror or exc}", out) from None
    finally:
        if tmp.exists():
            tmp.unlink()
