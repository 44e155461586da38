"""``splatpack`` command line: one subcommand per module in ``splatpack/commands/``.

Each command module defines a dataclass ``Command`` (its fields are the options, documented by their
docstrings, which tyro turns into ``--help``) with a ``run()`` method. Command modules keep heavy imports
inside ``run()`` so ``--help`` stays fast.

Whatever goes wrong ends in one line on stderr naming the file and exit status 2: bad input
(``SplatpackError``), running out of memory, or a bug (any other exception; ``SPLATPACK_TRACEBACK=1`` shows
its traceback). SIGTERM (``kill``, ``timeout``, ``docker stop``) unwinds like Ctrl-C, so no temporary file
is left behind.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import warnings

from splatpack.batch.lifeline import bind_to_parent
from splatpack.errors import SplatpackError

# Order shown in --help.
COMMANDS = ("compress", "decompress", "transform", "info", "view", "demo", "export", "batch", "feedforward")


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so ``finally`` blocks (temporary-file clean-up) run."""


def _terminate(signum, frame) -> None:
    raise Terminated


def _commands() -> dict[str, type]:
    return {name: importlib.import_module(f"splatpack.commands.{name}").Command for name in COMMANDS}


def _parse(argv: list[str] | None):
    """The command ``argv`` asks for. A known subcommand first is parsed on its own: importing every command
    module and building every parser (tyro) would cost a file command a tenth of a second more."""
    import tyro

    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in COMMANDS:
        command = importlib.import_module(f"splatpack.commands.{args[0]}").Command
        return tyro.cli(command, prog=f"splatpack {args[0]}", args=args[1:])
    return tyro.extras.subcommand_cli_from_dict(
        _commands(), prog="splatpack", description="splatpack: small, fast, faithful Gaussian splats.", args=args
    )


def _subject(cmd) -> str:
    """The file a command was working on, for error lines that have no file of their own."""
    for field in ("input", "file", "config"):
        value = getattr(cmd, field, None)
        if value is not None:
            return f"{value}: "
    return ""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:300]


def main(argv: list[str] | None = None) -> int:
    bind_to_parent()  # started by a batch worker: die with it
    cmd = None
    in_main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        cmd = _parse(argv)
        # numpy / Pillow warnings about hostile data would print before the one error line; the line says it all.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cmd.run()
    except SplatpackError as exc:
        print(f"splatpack: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"splatpack: error: {_subject(cmd)}out of memory while processing it", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("splatpack: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (``splatpack info F | head``): stop quietly, as a tool killed by SIGPIPE;
        # stdout is pointed at /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except Terminated:
        print("splatpack: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except Exception as exc:  # noqa: BLE001 - a bug must still end in one line, exit 2
        if os.environ.get("SPLATPACK_TRACEBACK"):
            raise
        print(
            f"splatpack: error: {_subject(cmd)}unexpected {type(exc).__name__}: {_one_line(exc)} "
            "(a splatpack bug; SPLATPACK_TRACEBACK=1 shows where)",
            file=sys.stderr,
        )
        return 2
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
