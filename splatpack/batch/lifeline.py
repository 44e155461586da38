"""A batch task's command dies with the worker that started it.

The worker names itself in ``SPLATPACK_PARENT_PID``; the command (``splatpack.cli``) then asks the kernel to
SIGKILL it when the thread that started it dies (Linux parent-death signal), and exits at once if that already
happened while it was starting. Set in the child rather than in a ``preexec_fn``, so the worker can start the
command with vfork instead of copying its own memory with fork (~4 ms per task on the dev machine).
"""

from __future__ import annotations

import os
import signal
import sys

PARENT_PID = "SPLATPACK_PARENT_PID"


def bind_to_parent() -> None:
    """Die with the process named in ``PARENT_PID``, if any (and remove it from the environment, so the
    command's own children are not bound to it)."""
    parent = os.environ.pop(PARENT_PID, None)
    if parent is None or not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)  # libc is in the interpreter
    if os.getppid() != int(parent):  # the parent died before the signal was armed
        os._exit(128 + signal.SIGKILL)
