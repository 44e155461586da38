"""PLAS: Parallel Linear Assignment Sorting (Barthel et al., used by Self-Organizing Gaussians).

Sorts the cells of an (H, W, C) grid so that neighbouring cells hold similar vectors. At a shrinking blur
radius, every cell is pulled towards a blurred copy of the grid (the target): the grid is cut into tiles, each
tile's cells are split at random into groups of 4, and every group takes the best of the 24 ways of placing
its 4 vectors on its 4 target positions. All tiles and groups are solved at once with batched tensor ops.
"""

from __future__ import annotations

import itertools

import torch

from splatpack import kernels
from splatpack.errors import SplatpackError
from splatpack.torch_threads import torch_threads

# The 24 permutations of 4 items, identity first (so "no change" is permutation 0).
_PERMS = torch.tensor(list(itertools.permutations(range(4))), dtype=torch.int64)
# _SELECT[a * 4 + b, p] = 1 when permutation p moves group member a to slot b: scores = dots(., 16) @ _SELECT.
_SELECT = torch.zeros(16, 24)
_SELECT[torch.arange(4).repeat(24) * 4 + _PERMS.reshape(-1), torch.arange(24).repeat_interleave(4)] = 1
# _SOURCE[p, b] = the member that permutation p places on slot b (the inverse permutation).
_SOURCE = torch.argsort(_PERMS, dim=1)


def radius_schedule(height: int, width: int, min_blur_radius: float, radius_decay: float) -> list[int]:
    """Integer blur radii from max(H, W)/2 - 1 down, multiplied by ``radius_decay`` until below the minimum."""
    radii = []
    radius = max(height, width) / 2 - 1
    while True:
        radii.append(max(int(radius), 0))
        radius *= radius_decay
        if radius < min_blur_radius:
            return radii


def _even(n: int) -> int:
    return n // 2 * 2


def _gauss_weights(size: int, sigma: float, device) -> torch.Tensor:
    offsets = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    w = torch.exp(-(offsets**2) / (2 * sigma**2))
    return w / w.sum()


def _blur_last_dim(x: torch.Tensor, size: int, circular: bool) -> torch.Tensor:
    """Gaussian blur (kernel ``size``, sigma = ``size``) along the last dim; circular or reflect border."""
    n = x.shape[-1]
    sigma = float(size)
    # An odd kernel keeps the output centred (the reference's kernel sizes are odd for even grid sides).
    size = size if size % 2 else size - 1
    if size <= 1:
        return x
    weights = _gauss_weights(size, sigma, x.device)
    half = size // 2
    if circular:
        padded, length = x, n
    else:
        padded = torch.nn.functional.pad(x.reshape(-1, 1, n), (half, half), mode="reflect").reshape(
            *x.shape[:-1], n + 2 * half
        )
        length = n + 2 * half
    if size <= 5:
        # Short kernels: a few shifted adds are cheaper than two FFTs.
        if circular:
            padded = torch.cat([x[..., n - half :], x, x[..., :half]], dim=-1)
        out = padded[..., 0:n] * weights[0]
        for j in range(1, size):
            out.add_(padded[..., j : j + n], alpha=float(weights[j]))
        return out
    # Long kernels: circular convolution by FFT; with reflect padding the wrap-around never reaches the
    # kept centre, so the result equals the padded linear convolution.
    kernel = torch.zeros(length, dtype=torch.float32, device=x.device)
    idx = (torch.arange(size, device=x.device) - half) % length
    kernel[idx] = weights
    spec = torch.fft.rfft(padded, dim=-1)
    spec *= torch.fft.rfft(kernel)
    out = torch.fft.irfft(spec, n=length, dim=-1)
    return out if circular else out[..., half : half + n]


def radius_blur(grid_chw: torch.Tensor, size_x: int, size_y: int) -> torch.Tensor:
    """PLAS's target: separable Gaussian blur of a (C, H, W) grid whose kernel (and sigma) grow with the sorting
    radius, circular in x, reflect in y (1-D data wraps into the rectangle)."""
    blurred = _blur_last_dim(grid_chw, size_x, circular=True)
    blurred = _blur_last_dim(blurred.transpose(1, 2), size_y, circular=False)
    return blurred.transpose(1, 2)


def _tile_positions(
    height: int, width: int, tile_h: int, tile_w: int, shift_y: int, shift_x: int, device
) -> torch.Tensor:
    """(tiles, tile_h * tile_w) flat grid indices of the non-overlapping tiles of the grid rolled by the shift."""
    rows = (torch.arange(height // tile_h * tile_h, device=device) - shift_y) % height
    cols = (torch.arange(width // tile_w * tile_w, device=device) - shift_x) % width
    flat = (rows[:, None] * width + cols[None, :]).reshape(height // tile_h, tile_h, width // tile_w, tile_w)
    return flat.permute(0, 2, 1, 3).reshape(-1, tile_h * tile_w)


class _Sorter:
    """State of one PLAS run: the current grid (H*W, C), which input index sits in each cell, and the RNG."""

    def __init__(self, grid: torch.Tensor, seed: int, shuffle: bool, kernel_threads: int = 1):
        self.height, self.width, self.channels = grid.shape
        self.kernel_threads = kernel_threads
        self.device = grid.device
        self.gen = torch.Generator().manual_seed(seed)
        n = self.height * self.width
        self.order = (
            torch.randperm(n, generator=self.gen).to(self.device) if shuffle else torch.arange(n, device=self.device)
        )
        self.values = grid.reshape(n, self.channels).to(torch.float32)[self.order].contiguous()
        self.select = _SELECT.to(self.device)
        self.source = _SOURCE.to(self.device)
        self.native = kernels.ops(self.device)  # the fused assignment kernel (cuda/), None: the torch steps below

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.gen))

    def sort_at_radius(self, radius: int, min_block_size: int, improvement_break: float) -> None:
        h, w, c = self.height, self.width, self.channels
        size = int(2 * radius + 1)
        size_x, size_y = min(w - 1, size), min(h - 1, size)
        chw = self.values.reshape(h, w, c).permute(2, 0, 1)
        target = radius_blur(chw, size_x, size_y).permute(1, 2, 0).reshape(h * w, c).contiguous()
        block = max(_even(min_block_size), 2)
        tile_w = min(_even(w), max(block, _even(min(size_x + 1, w))))
        tile_h = min(_even(h), max(block, _even(min(size_y + 1, h))))
        shifts = 0
        while True:
            improved = self._sort_shift(
                target, tile_h, tile_w, self._randint(tile_h), self._randint(tile_w), improvement_break
            )
            # Try a few roll offsets before giving up, so tile borders move (as the reference does).
            if not improved and shifts >= 3:
                return
            shifts += 1

    def _sort_shift(self, target, tile_h, tile_w, shift_y, shift_x, improvement_break) -> bool:
        pos = _tile_positions(self.height, self.width, tile_h, tile_w, shift_y, shift_x, self.device)
        tiles, cells = pos.shape
        flat_pos = pos.reshape(-1)
        x = self.values.index_select(0, flat_pos).reshape(tiles, cells, -1)
        y = target.index_select(0, flat_pos).reshape(tiles, cells, -1)
        idx = self.order.index_select(0, flat_pos).reshape(tiles, cells)
        dist = float(((x - y) ** 2).sum(dtype=torch.float64))
        improved = False
        # The torch steps gather each group's vectors into these; the kernel reads them in place.
        xs, ys = (None, None) if self.native is not None else (torch.empty_like(x), torch.empty_like(y))
        while dist > 0:
            perm = torch.randperm(cells, generator=self.gen).to(self.device)
            if self.native is not None:
                # Same decisions bit for bit, in place, without the temporaries (cuda/include/splatpack_math.h).
                # One call is ~65k independent groups: long enough to share among the caller's threads.
                with torch_threads(self.kernel_threads):
                    gains = self.native.plas_assign(x, y, idx, perm)
            else:
                gains = self._assign(x, y, idx, perm, xs, ys)
            gain = float(gains.sum(dtype=torch.float64))
            new_dist = dist - 2 * gain
            if 1 - new_dist / dist < improvement_break:
                break
            dist = new_dist
            improved = True
        self.values.index_copy_(0, flat_pos, x.view(tiles * cells, -1))
        self.order.index_copy_(0, flat_pos, idx.view(-1))
        return improved

    def _assign(self, x, y, idx, perm, xs, ys) -> torch.Tensor:
        """Torch reference of one assignment step: every group of 4 (consecutive cells of ``perm``) of every tile
        takes its best placement, in place on x (tiles, cells, C) and idx; returns best - identity score per group."""
        tiles, cells, channels = x.shape
        groups = cells // 4
        grouped = perm.view(groups, 4)
        torch.index_select(x, 1, perm, out=xs)
        torch.index_select(y, 1, perm, out=ys)
        dots = torch.einsum("gac,gbc->gab", xs.view(-1, 4, channels), ys.view(-1, 4, channels))
        # Maximising the summed dot products of a placement minimises its summed squared distances.
        scores = dots.view(-1, 16) @ self.select
        best_score, best = scores.max(dim=1)
        changed = (best != 0).nonzero().squeeze(1)
        if changed.numel():
            # Only the groups whose best placement is not the identity move.
            tile, group = changed // groups, changed % groups
            slots = tile[:, None] * cells + grouped[group]
            sources = slots.gather(1, self.source[best[changed]]).reshape(-1)
            slots = slots.reshape(-1)
            flat_x, flat_idx = x.view(-1, channels), idx.view(-1)
            flat_x.index_copy_(0, slots, flat_x.index_select(0, sources))
            flat_idx.index_copy_(0, slots, flat_idx.index_select(0, sources))
        return best_score - scores[:, 0]


def plas_sort(
    grid: torch.Tensor,
    *,
    seed: int = 0,
    improvement_break: float = 1e-4,
    min_block_size: int = 16,
    min_blur_radius: float = 1.0,
    radius_decay: float = 0.95,
    shuffle: bool = True,
    progress: bool = False,
) -> torch.Tensor:
    """PLAS-sort an (H, W, C) grid; returns (H, W) int64 flat indices into ``grid.reshape(-1, C)``.

    ``grid.reshape(-1, C)[result].reshape(H, W, C)`` is the sorted grid. Deterministic for a given seed
    and device. ``shuffle`` randomises the start (as SOG does) to avoid the input order's local minima.
    """
    if grid.ndim != 3 or grid.shape[0] < 2 or grid.shape[1] < 2:
        raise SplatpackError(f"PLAS needs an (H, W, C) grid with H, W >= 2, got shape {tuple(grid.shape)}")
    if not bool(torch.isfinite(grid).all()):
        raise SplatpackError("PLAS cannot sort a grid holding NaN or infinite values")
    if not 0 < radius_decay < 1:
        raise SplatpackError(f"PLAS radius_decay must be in (0, 1), got {radius_decay}")
    threads = torch.get_num_threads()
    # PLAS is thousands of short passes: on CPU a thread team's barriers cost more than they save
    # (2 threads ran 10x slower than 1 per pass at 256x256 on a busy 2-core machine).
    with torch_threads(1 if grid.device.type == "cpu" else threads), torch.inference_mode():
        sorter = _Sorter(grid.detach(), seed, shuffle, kernel_threads=threads)
        radii = radius_schedule(grid.shape[0], grid.shape[1], min_blur_radius, radius_decay)
        for radius in _progress(radii, progress):
            sorter.sort_at_radius(radius, min_block_size, improvement_break)
        return sorter.order.reshape(grid.shape[0], grid.shape[1]).clone()


def _progress(radii: list[int], show: bool):
    if not show:
        return radii
    from rich.progress import track

    return track(radii, description="PLAS sorting")
