"""The one error type splatpack raises for bad input.

Every reader, writer and command turns library failures into a ``SplatpackError`` whose message names the
file and the problem in one line; the CLI prints that line and exits with status 2.
"""

from __future__ import annotations

import os


class SplatpackError(Exception):
    """A user-facing error: one line, naming the file (when there is one) and the problem."""

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(problem if self.path is None else f"{self.path}: {problem}")
