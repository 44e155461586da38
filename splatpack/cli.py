"""``splatpack`` command line: one subcommand per module in ``splatpack/commands/``.

Each command module defines a dataclass ``Command`` (its fields are the options, documented by their
docstrings, which tyro turns into ``--help``) with a ``run()`` method. Command modules keep heavy imports
inside ``run()`` so ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

from splatpack.errors import SplatpackError

# Order shown in --help.
COMMANDS = ("compress", "decompress", "info", "view", "demo", "export")


def _commands() -> dict[str, type]:
    found = {}
    for name in COMMANDS:
        module_name = f"splatpack.commands.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # command not built yet
            raise
        found[name] = module.Command
    return found


def main(argv: list[str] | None = None) -> int:
    import tyro

    commands = _commands()
    try:
        cmd = tyro.extras.subcommand_cli_from_dict(
            {name: cls for name, cls in commands.items()},
            prog="splatpack",
            description="splatpack: small, fast, faithful Gaussian splats.",
            args=argv,
        )
        cmd.run()
    except SplatpackError as exc:
        print(f"splatpack: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("splatpack: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
