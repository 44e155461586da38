"""Render backends: what each one is, and the one contract they all implement.

A backend registers a ``Backend``: its name, whether it can run on this machine (``available``), which tensor
devices it takes, its default tile size, a priority for ``"auto"``, and one ``rasterize`` function with the
signature ``rasterize(inputs: RasterInputs, options: RasterOptions) -> Raster``. The inputs, the options and the
per-Gaussian ``info`` dict are defined here once, so a new backend (a CUDA kernel, say) only maps its own outputs
onto ``Raster``. ``ops`` carries further functions a backend accelerates (looked up with ``resolve(..., op=NAME)``),
so other renderer-shaped operations (per-Gaussian importance, say) are dispatched the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from splatpack.errors import SplatpackError

AUTO = "auto"


@dataclass(frozen=True)
class RasterOptions:
    """Everything ``splatpack.render.rasterize`` takes besides the Gaussians, cameras and image size."""

    sh_degree: int | None = None  # None: colors are (N, 3) RGB; else SH coefficients up to this degree
    backgrounds: Tensor | None = None  # (C, 3), composited behind the splats
    near_plane: float = 0.01
    far_plane: float = 1e10
    eps2d: float = 0.3  # added to the 2D covariance's diagonal (gsplat's low-pass filter)
    rasterize_mode: str = "classic"  # or "antialiased" (opacity compensation of the 2D filter)
    tile_size: int | None = None  # None: the backend's default; images do not depend on it
    absgrad: bool = False  # backward also sets info["means2d"].absgrad (gsplat's absgrad densification)


@dataclass
class RasterInputs:
    """Activated Gaussians, the cameras and the image size, as ``splatpack.render.rasterize`` documents them."""

    means: Tensor  # (N, 3)
    quats: Tensor  # (N, 4) (w, x, y, z), any norm
    scales: Tensor  # (N, 3)
    opacities: Tensor  # (N,)
    colors: Tensor  # (N, 3) RGB or (N, K, 3) SH coefficients
    viewmats: Tensor  # (C, 4, 4) world-to-camera, OpenCV axes
    Ks: Tensor  # (C, 3, 3)
    width: int
    height: int

    def __iter__(self):
        """The fields in gsplat's positional order (``rasterization(*inputs, ...)``), without copies."""
        return iter((self.means, self.quats, self.scales, self.opacities, self.colors, self.viewmats, self.Ks,
                     self.width, self.height))  # fmt: skip


@dataclass
class Raster:
    """What a backend returns: images and the per camera and Gaussian screen-space data."""

    rgb: Tensor  # (C, H, W, 3)
    alpha: Tensor  # (C, H, W, 1)
    depth: Tensor  # (C, H, W, 1) expected depth
    means2d: Tensor  # (C, N, 2)
    radii: Tensor  # (C, N, 2) int32, 0 = culled
    depths: Tensor  # (C, N)
    conics: Tensor  # (C, N, 3)
    opacities: Tensor  # (C, N)
    n_intersections: int  # (tile, Gaussian) pairs composited

    def info(self, width: int, height: int, tile_size: int, backend: str) -> dict:
        """gsplat's ``meta`` keys that its densification strategies read, plus ``visible`` and ``backend``."""
        return {
            "means2d": self.means2d,
            "radii": self.radii,
            "depths": self.depths,
            "conics": self.conics,
            "opacities": self.opacities,
            "visible": (self.radii > 0).all(dim=-1),
            "gaussian_ids": None,  # results are per camera and Gaussian (gsplat's packed=False)
            "width": width,
            "height": height,
            "n_cameras": self.means2d.shape[0],
            "tile_size": tile_size,
            "n_intersections": self.n_intersections,
            "backend": backend,
        }


@dataclass(frozen=True)
class Backend:
    name: str
    rasterize: Callable[..., Raster]
    tile_size: int  # default tile size (the backend's fastest)
    available: Callable[[], bool]  # whether it can run on this machine
    devices: frozenset[str] | None  # tensor device types it takes (None: any)
    priority: int  # "auto" picks the available backend of highest priority that takes the tensors' device
    needs: str = ""  # what it needs to run, for the error when it cannot (e.g. "CUDA tensors and gsplat's CUDA ops")
    ops: Mapping[str, Callable] = field(default_factory=dict)  # further ops this backend implements, by name

    def takes(self, device: torch.device) -> bool:
        return self.devices is None or device.type in self.devices


_BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> None:
    if backend.name in _BACKENDS or backend.name == AUTO:
        raise ValueError(f"render backend {backend.name!r} is already registered")
    _BACKENDS[backend.name] = backend


def registered() -> list[str]:
    """Names of all registered backends, available here or not."""
    return list(_BACKENDS)


def available_backends() -> list[str]:
    """Backends that can run on this machine, highest priority last (``"torch"`` is always first)."""
    return [b.name for b in sorted(_BACKENDS.values(), key=lambda b: b.priority) if b.available()]


def backend(name: str) -> Backend:
    if name not in _BACKENDS:
        raise SplatpackError(f"unknown render backend {name!r}; choose one of {AUTO}, {', '.join(_BACKENDS)}")
    return _BACKENDS[name]


def resolve(name: str, device: torch.device, op: str = "rasterize") -> tuple[Backend, Callable]:
    """The backend ``name`` (or the best available one for ``device`` when ``"auto"``) and its function ``op``."""

    def fn(b: Backend) -> Callable | None:
        return b.rasterize if op == "rasterize" else b.ops.get(op)

    if name == AUTO:
        usable = [b for b in _BACKENDS.values() if fn(b) is not None and b.takes(device) and b.available()]
        if not usable:
            raise SplatpackError(f"no render backend implements {op!r} for tensors on {device}")
        best = max(usable, key=lambda b: b.priority)
        return best, fn(best)
    chosen = backend(name)
    if not chosen.takes(device) or not chosen.available():
        raise SplatpackError(f"the {name} backend needs {chosen.needs}; got tensors on {device}")
    if fn(chosen) is None:
        raise SplatpackError(f"the {name} render backend does not implement {op!r}")
    return chosen, fn(chosen)
