"""Torch's intra-op thread count for the span of a block."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def torch_threads(count: int):
    """Torch's intra-op threads (which ``at::parallel_for`` kernels use too) set to ``count`` inside the block, the
    caller's count restored after it."""
    before = torch.get_num_threads()
    if count == before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
