"""One module per ``splatpack`` subcommand, each a dataclass ``Command`` with a ``run()`` (see ``splatpack.cli``)."""

from typing import Optional

# An optional integer option, spelled with typing.Optional rather than ``int | None``: tyro checks every default
# against its field's type, and for a PEP 604 union it imports typeguard to do so (~0.1 s and ~9 MB on each run).
OptionalInt = Optional[int]  # noqa: UP045
