"""Sub-vector quantization (SVQ, OMG section 2.5): an attribute vector split into contiguous sub-vectors, each
replaced by the index of its nearest entry in a k-means codebook of its own.

OMG quantizes scale 3 x 1-D x 64, rotation 2 x 2-D x 512 and appearance [T, V] 3 x 2-D x 1024: a few bits per
sub-vector instead of 16-32 per value. 1-D sub-vectors get the exact-start 1-D k-means, longer ones the Lloyd
palette of ``splatpack.quant.kmeans`` (the SOG writer's), so both formats share one quantizer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from splatpack.errors import SplatpackError

if TYPE_CHECKING:
    import torch


def as_rows(a, dtype) -> np.ndarray:
    """``a`` as a contiguous (len(a), -1) array; a 2-D one keeps its shape (numpy cannot infer -1 for 0 rows)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.ndim == 2 else a.reshape(len(a), -1)


@dataclasses.dataclass
class SvqCode:
    """One attribute quantized by sub-vector codebooks: row i is the concatenation over sub-vectors s of
    ``codebooks[s][indices[i, s]]`` (codebook s is (K_s, d_s) float32)."""

    codebooks: list[np.ndarray]
    indices: np.ndarray  # (N, S) int64

    def __post_init__(self) -> None:
        self.codebooks = [as_rows(c, np.float32) for c in self.codebooks]
        self.indices = as_rows(self.indices, np.int64)
        if self.indices.shape[1] != len(self.codebooks):
            raise SplatpackError(f"{self.indices.shape[1]} index columns for {len(self.codebooks)} codebooks")
        for s, book in enumerate(self.codebooks):
            column = self.indices[:, s]
            if len(column) and (column.min() < 0 or column.max() >= len(book)):
                raise SplatpackError(f"sub-vector {s}: index out of its codebook's {len(book)} entries")

    @property
    def width(self) -> int:
        return sum(c.shape[1] for c in self.codebooks)

    def values(self) -> np.ndarray:
        """(N, width) float32 decoded rows."""
        return np.concatenate([book[self.indices[:, s]] for s, book in enumerate(self.codebooks)], axis=1)

    def select(self, rows: np.ndarray) -> SvqCode:
        return SvqCode(self.codebooks, self.indices[rows])


def sub_widths(width: int, length: int) -> list[int]:
    """Widths of the contiguous sub-vectors of a ``width``-long vector cut every ``length`` values."""
    if length < 1 or width < 1:
        raise SplatpackError(f"cannot cut a {width}-wide vector into sub-vectors of {length}")
    return [min(length, width - start) for start in range(0, width, length)]


def fit(values, length: int, k: int, *, seed: int = 0, iterations: int = 20) -> SvqCode:
    """SVQ of the (N, D) rows: sub-vectors of ``length`` values (the last may be shorter), ``k`` entries each.

    Codebooks never hold more entries than there are rows (a codebook larger than its data only costs bytes).
    """
    from splatpack.quant.kmeans import kmeans_palette  # torch: fitting, not decoding
    from splatpack.quant.scalar import kmeans_1d

    x = values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(len(x), -1)
    books, columns, start = [], [], 0
    for s, width in enumerate(sub_widths(x.shape[1], length)):
        part = x[:, start : start + width]
        start += width
        if len(part) == 0:
            books.append(np.zeros((0, width), np.float32))
            columns.append(np.zeros(0, np.int64))
        elif width == 1:
            book, labels = kmeans_1d(part[:, 0], k=min(k, len(part)))
            books.append(book[:, None])
            columns.append(labels)
        else:
            book, labels = kmeans_palette(part, k=min(k, len(part)), iterations=iterations, seed=seed + s)
            books.append(book)
            columns.append(labels)
    return SvqCode(books, np.stack(columns, axis=1) if columns else np.zeros((len(x), 0), np.int64))


def reassign(code: SvqCode, values) -> SvqCode:
    """Each row's nearest entries in ``code``'s codebooks (after the codebooks changed, or for new rows)."""
    import torch

    from splatpack.quant.kmeans import assign

    x = torch.as_tensor(np.ascontiguousarray(values, dtype=np.float32)).reshape(len(values), -1)
    columns, start = [], 0
    for book in code.codebooks:
        part = x[:, start : start + book.shape[1]].contiguous()
        start += book.shape[1]
        columns.append(assign(part, torch.from_numpy(book)).numpy())
    return SvqCode(code.codebooks, np.stack(columns, axis=1))


def lookup(codebooks: Sequence[torch.Tensor], indices: torch.Tensor) -> torch.Tensor:
    """(N, sum d_s) rows from codebook tensors and (N, S) indices: the differentiable form training uses (the
    gradient reaches the codebooks)."""
    import torch

    return torch.cat([book[indices[:, s]] for s, book in enumerate(codebooks)], dim=1)
