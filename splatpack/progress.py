"""Progress of long file work, stage by stage (read, sort, palette, encode, write), for people and for logs.

Library code marks its stages with ``stage(name, total)`` and reports work done with ``Stage.advance``; that
costs nothing unless a command installed a reporter with ``reporting(mode)``:

- on a terminal, a rich bar per stage with elapsed time and ETA (cleared when the stage ends; ``verbose`` keeps
  one line per finished stage);
- elsewhere (a log, a pipe) with ``verbose``, plain lines on stderr: one when a stage ends, and while a stage
  runs one every ``INTERVAL`` seconds with its progress and ETA. Without ``verbose`` a log gets nothing but the
  command's own lines, so a failing command still ends in exactly one line (the project's rule for errors);
- ``quiet``: nothing.

The reporter lives in a context variable, so nested stages (``write`` holding SOG's ``sort`` and ``palette``)
and library calls outside a command need no plumbing.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from collections.abc import Iterator
from typing import Literal, TextIO

Mode = Literal["quiet", "normal", "verbose"]
# Seconds between plain progress lines of a running stage (non-terminal output).
INTERVAL = 5.0


class Stage:
    """One running stage: ``advance(n)`` reports ``n`` more units of its ``total`` done."""

    def __init__(self, reporter: _Reporter | None, name: str, total: float | None):
        self.reporter, self.name, self.total = reporter, name, total
        self.done = 0.0
        self.start = self.last_line = time.perf_counter()
        self.task = None  # the rich task id, on a terminal

    def advance(self, n: float = 1) -> None:
        self.done += n
        if self.reporter is not None:
            self.reporter.update(self)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def eta(self) -> float | None:
        """Seconds left at the rate so far, or None before any progress (or without a total)."""
        if not self.total or self.done <= 0:
            return None
        return self.elapsed() * (self.total - self.done) / self.done


class _Reporter:
    def __init__(self, mode: Mode, stream: TextIO, terminal: bool):
        self.mode, self.stream, self.terminal = mode, stream, terminal
        self.bars = None
        self.depth = 0

    def begin(self, stage: Stage) -> None:
        self.depth += 1
        if not self.terminal:
            return
        if self.bars is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bars = Progress(
                TextColumn("{task.description:>8}"),
                BarColumn(),
                TaskProgressColumn(),  # blank for a stage without a measure of progress
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self.bars.start()
        stage.task = self.bars.add_task(stage.name, total=stage.total)

    def update(self, stage: Stage) -> None:
        if self.terminal:
            self.bars.update(stage.task, completed=stage.done)
            return
        now = time.perf_counter()
        if now - stage.last_line >= INTERVAL:
            stage.last_line = now
            share = f" {100 * stage.done / stage.total:.0f}%" if stage.total else ""
            eta = stage.eta()
            left = f", ETA {eta:.0f} s" if eta is not None else ""
            self._line(f"{stage.name}:{share} after {stage.elapsed():.1f} s{left}")

    def end(self, stage: Stage, ok: bool) -> None:
        """Close ``stage``; a stage that failed says nothing (the error line says it all)."""
        self.depth -= 1
        line = f"{stage.name}: done in {stage.elapsed():.1f} s"
        if self.terminal:
            self.bars.remove_task(stage.task)
            if ok and self.mode == "verbose":
                self.bars.console.print(line, highlight=False)
            if self.depth == 0:
                self.bars.stop()
                self.bars = None
            return
        if ok:
            self._line(line)

    def _line(self, text: str) -> None:
        print(f"splatpack: {text}", file=self.stream, flush=True)


_current: contextvars.ContextVar[_Reporter | None] = contextvars.ContextVar("splatpack_progress", default=None)


@contextlib.contextmanager
def reporting(mode: Mode = "normal", *, stream: TextIO | None = None, terminal: bool | None = None) -> Iterator[None]:
    """Show the stages run inside the block (see the module docstring); ``terminal`` overrides the stream's own
    answer to ``isatty``."""
    stream = stream or sys.stderr
    terminal = stream.isatty() if terminal is None else terminal
    shown = mode == "verbose" or (mode == "normal" and terminal)
    reporter = _Reporter(mode, stream, terminal) if shown else None
    token = _current.set(reporter)
    try:
        yield
    finally:
        _current.reset(token)
        if reporter is not None and reporter.bars is not None:
            reporter.bars.stop()


@contextlib.contextmanager
def stage(name: str, total: float | None = None) -> Iterator[Stage]:
    """A stage of ``total`` units (None: no measure of progress), reported to the reporter in force if any."""
    reporter = _current.get()
    s = Stage(reporter, name, total)
    if reporter is not None:
        reporter.begin(s)
    ok = False
    try:
        yield s
        ok = True
    finally:
        if reporter is not None:
            reporter.end(s, ok)


def mode_of(quiet: bool, verbose: bool) -> Mode:
    """The mode a command's ``--quiet`` / ``--verbose`` flags ask for."""
    if quiet and verbose:
        from splatpack.errors import SplatpackError

        raise SplatpackError("--quiet and --verbose contradict each other; give one")
    return "quiet" if quiet else "verbose" if verbose else "normal"
