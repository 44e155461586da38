"""Reading input files with errors that name the file (the readers' one way in)."""

from __future__ import annotations

import os
from pathlib import Path

from splatpack.errors import SplatpackError


def read_input_bytes(path: str | os.PathLike, kind: str) -> bytes:
    """All bytes of ``path``; missing files, folders and OS errors become ``SplatpackError`` ("not a ``kind``")."""
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise SplatpackError("no such file", p) from None
    except IsADirectoryError:
        raise SplatpackError(f"is a directory, not {kind}", p) from None
    except OSError as exc:
        raise SplatpackError(f"cannot read: {exc.strerror or exc}", p) from None
