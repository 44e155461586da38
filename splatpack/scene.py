"""``Splats``: the one data type that carries a 3D Gaussian scene between every splatpack module.

Fields hold the *raw* (pre-activation) parameters, exactly as the standard 3DGS PLY stores them, so that a
PLY round trip is bit-exact and optimizers work on unconstrained values. The activated quantities the
renderer consumes are available as properties.

=================  ==========  ============================================================================
field              shape       activation (what the renderer uses)
=================  ==========  ============================================================================
``means``          (N, 3)      none: world-space centres
``quats``          (N, 4)      ``normalize``: rotation quaternion, (w, x, y, z) order, any norm stored
``log_scales``     (N, 3)      ``exp``: standard deviations along the rotated axes
``opacity_logits`` (N,)        ``sigmoid``: opacity in (0, 1)
``sh0``            (N, 1, 3)   SH DC coefficient; base colour is ``0.5 + C0 * sh0`` (C0 = 0.28209479...)
``shN``            (N, K, 3)   higher SH bands, K = (degree + 1)^2 - 1 in {0, 3, 8, 15}, coefficient-major
=================  ==========  ============================================================================

Coordinates are whatever frame the scene was trained in (COLMAP-style RDF for most captures); format
writers that need another convention (SPZ's RUB) convert explicitly.

Fields are numpy arrays or torch tensors (all six the same kind): the file readers decode with numpy and build
numpy-backed scenes when asked (``arrays="numpy"``), so converting files never imports torch (its start-up costs
seconds); ``.torch()`` / ``.numpy()`` convert, ``.to(...)`` moves to a torch device. The activations, selection,
``cat``, ``bounds`` and ``validate`` work on both kinds.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from splatpack.errors import SplatpackError

if TYPE_CHECKING:
    import torch

    Array = np.ndarray | torch.Tensor

SH_C0 = 0.28209479177387814
# Number of higher-band coefficients per colour channel for SH degrees 0..3.
SH_REST_COUNT = {0: 0, 1: 3, 2: 8, 3: 15}
# What a reader builds: torch tensors (the library default) or numpy arrays (file conversion, no torch import).
Arrays = Literal["torch", "numpy"]
ARRAYS: tuple[str, ...] = ("torch", "numpy")


def sh_degree_for_rest_count(k: int) -> int:
    """SH degree whose higher bands hold ``k`` coefficients per channel; raises for other counts."""
    for degree, count in SH_REST_COUNT.items():
        if count == k:
            return degree
    raise SplatpackError(f"{k} higher SH coefficients per channel is not a valid SH degree 0-3")


def rgb_to_sh0(rgb: Array) -> Array:
    """DC coefficient whose colour (at any view direction) is ``rgb``."""
    return (rgb - 0.5) / SH_C0


def sh0_to_rgb(sh0: Array) -> Array:
    return sh0 * SH_C0 + 0.5


def check_arrays(arrays: str) -> str:
    if arrays not in ARRAYS:
        raise SplatpackError(f"unknown array kind {arrays!r}; use one of {', '.join(ARRAYS)}")
    return arrays


def _torch_dtype(dtype):
    """The torch dtype of a numpy dtype (torch dtypes pass through)."""
    import torch

    return torch.from_numpy(np.empty(0, dtype)).dtype if isinstance(dtype, (type, np.dtype, str)) else dtype


def _default_dtype(dtype):
    import torch

    return torch.float32 if dtype is None else dtype


@dataclasses.dataclass
class Splats:
    """A set of N 3D Gaussians (see the module docstring for each field's meaning and activation)."""

    means: Array
    quats: Array
    log_scales: Array
    opacity_logits: Array
    sh0: Array
    shN: Array

    FIELDS = ("means", "quats", "log_scales", "opacity_logits", "sh0", "shN")

    def __post_init__(self) -> None:
        self.validate(check_finite=False)

    # ------------------------------------------------------------------ construction

    @classmethod
    def empty(cls, sh_degree: int = 0, *, device=None, dtype=None) -> Splats:
        return cls.create(0, sh_degree, device=device, dtype=dtype)

    @classmethod
    def create(cls, n: int, sh_degree: int = 0, *, device=None, dtype=None) -> Splats:
        """N Gaussians at the origin with identity rotation, unit scale, opacity 0.5 and grey colour (torch,
        float32 unless ``dtype`` says otherwise)."""
        import torch

        if sh_degree not in SH_REST_COUNT:
            raise SplatpackError(f"SH degree {sh_degree} is out of range 0-3")
        kw = dict(device=device, dtype=_default_dtype(dtype))
        quats = torch.zeros(n, 4, **kw)
        quats[:, 0] = 1
        return cls(
            means=torch.zeros(n, 3, **kw),
            quats=quats,
            log_scales=torch.zeros(n, 3, **kw),
            opacity_logits=torch.zeros(n, **kw),
            sh0=torch.zeros(n, 1, 3, **kw),
            shN=torch.zeros(n, SH_REST_COUNT[sh_degree], 3, **kw),
        )

    @classmethod
    def from_numpy(
        cls, *, means, quats, log_scales, opacity_logits, sh0, shN, source=None, arrays: Arrays = "torch"
    ) -> Splats:
        """Build float32 CPU ``Splats`` (torch tensors, or numpy arrays with ``arrays="numpy"``) from array-likes
        shaped as the fields (``sh0`` may be (N, 3)), checking shapes and finite values; ``source`` names the
        file in error messages."""
        from splatpack.edit.nonfinite import resolve

        check_arrays(arrays)
        fields = {"means": means, "quats": quats, "log_scales": log_scales, "opacity_logits": opacity_logits}
        fields = {k: np.asarray(v, dtype=np.float32) for k, v in {**fields, "sh0": sh0, "shN": shN}.items()}
        # Non-finite values follow the reading policy in force (splatpack.edit.nonfinite), as in every reader.
        f = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in resolve(fields, source=source).items()}
        n = len(f["means"])
        f.update(sh0=f["sh0"].reshape(n, 1, 3), shN=f["shN"].reshape(n, -1, 3))
        return cls(**f).validate(source=None if source is None else str(source)).as_arrays(arrays)

    @classmethod
    def random(cls, n: int, sh_degree: int = 0, *, seed: int = 0, extent: float = 1.0, dtype=None) -> Splats:
        """A reproducible random scene in a cube of half-size ``extent`` (for tests and benchmarks; torch)."""
        import torch

        dtype = _default_dtype(dtype)
        g = torch.Generator().manual_seed(seed)
        k = SH_REST_COUNT[sh_degree]
        size = extent * 2.0 / max(n, 1) ** (1 / 3)
        return cls(
            means=(torch.rand(n, 3, generator=g, dtype=dtype) * 2 - 1) * extent,
            quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g, dtype=dtype), dim=-1),
            log_scales=torch.log(size * (0.2 + 0.6 * torch.rand(n, 3, generator=g, dtype=dtype))),
            opacity_logits=torch.randn(n, generator=g, dtype=dtype) * 1.5 + 1.0,
            sh0=torch.randn(n, 1, 3, generator=g, dtype=dtype) * 0.8,
            shN=torch.randn(n, k, 3, generator=g, dtype=dtype) * 0.2,
        )

    # ------------------------------------------------------------------ array kinds

    @property
    def is_numpy(self) -> bool:
        """Whether the fields are numpy arrays (else torch tensors)."""
        return isinstance(self.means, np.ndarray)

    def numpy(self, dtype=np.float32) -> Splats:
        """The scene as CPU numpy arrays of ``dtype`` (None: the fields' own), copying only what must change."""
        if self.is_numpy:
            return self if dtype is None or self.dtype == dtype else self.map(lambda a: a.astype(dtype))
        if dtype is None:
            return self.map(lambda t: t.detach().cpu().numpy())
        torch_dtype = _torch_dtype(dtype)  # cast by torch, as the writers always did: the same bits
        return self.map(lambda t: t.detach().to("cpu", torch_dtype).numpy())

    def torch(self) -> Splats:
        """The scene as CPU torch tensors (sharing the numpy arrays' memory; itself when it already is torch)."""
        if not self.is_numpy:
            return self
        import torch

        # Read-only arrays (views of a file's bytes) are copied: torch tensors are always writable.
        return self.map(lambda a: torch.from_numpy(a if a.flags.writeable else a.copy()))

    def as_arrays(self, arrays: Arrays) -> Splats:
        """The scene as torch tensors (``"torch"``) or numpy arrays (``"numpy"``), converting only when needed."""
        if check_arrays(arrays) == "torch":
            return self.torch()
        return self.numpy(dtype=None)

    # ------------------------------------------------------------------ facts

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        return sh_degree_for_rest_count(self.shN.shape[1])

    @property
    def device(self):
        """The torch device of the fields ("cpu" for numpy arrays)."""
        return "cpu" if self.is_numpy else self.means.device

    @property
    def dtype(self):
        return self.means.dtype

    # ------------------------------------------------------------------ activations

    @property
    def scales(self) -> Array:
        """(N, 3) standard deviations: ``exp(log_scales)``."""
        if self.is_numpy:
            return np.exp(self.log_scales)
        return self.log_scales.exp()

    @property
    def opacities(self) -> Array:
        """(N,) opacities in (0, 1): ``sigmoid(opacity_logits)``."""
        if self.is_numpy:
            with np.errstate(over="ignore"):  # exp(-x) overflowing to inf is opacity 0, as intended
                return 1 / (1 + np.exp(-self.opacity_logits))
        return self.opacity_logits.sigmoid()

    @property
    def unit_quats(self) -> Array:
        """(N, 4) unit quaternions (w, x, y, z)."""
        if self.is_numpy:
            # As torch.nn.functional.normalize: the norm is floored at 1e-12 so zero rows stay zero.
            return self.quats / np.maximum(np.linalg.norm(self.quats, axis=-1, keepdims=True), 1e-12)
        import torch

        return torch.nn.functional.normalize(self.quats, dim=-1)

    @property
    def sh(self) -> Array:
        """(N, (degree+1)^2, 3) all SH coefficients, DC first: what the renderer's SH path takes."""
        return _cat([self.sh0, self.shN], self.is_numpy, axis=1)

    @property
    def base_rgb(self) -> Array:
        """(N, 3) view-independent colour from the DC term alone (not clamped)."""
        return sh0_to_rgb(self.sh0[:, 0, :])

    # ------------------------------------------------------------------ checks

    def validate(self, *, check_finite: bool = True, source: str | None = None) -> Splats:
        """Raise ``SplatpackError`` on wrong shapes, mixed kinds/devices/dtypes or (optionally) NaN/Inf values."""
        numpy = isinstance(self.means, np.ndarray)
        torch = sys.modules.get("torch")  # a tensor field means torch is imported already
        for name in self.FIELDS:
            t = getattr(self, name)
            if numpy and not isinstance(t, np.ndarray):
                raise SplatpackError(f"Splats.{name} must be a numpy array like means, got {type(t).__name__}", source)
            if not numpy and (torch is None or not isinstance(t, torch.Tensor)):
                raise SplatpackError(
                    f"Splats.{name} must be a torch.Tensor or a numpy array, got {type(t).__name__}", source
                )
        n = self.means.shape[0] if self.means.ndim >= 1 else -1
        expected = {
            "means": (n, 3),
            "quats": (n, 4),
            "log_scales": (n, 3),
            "opacity_logits": (n,),
            "sh0": (n, 1, 3),
        }
        for name, shape in expected.items():
            t = getattr(self, name)
            if tuple(t.shape) != shape:
                raise SplatpackError(f"Splats.{name} has shape {tuple(t.shape)}, expected {shape}", source)
        if self.shN.ndim != 3 or self.shN.shape[0] != n or self.shN.shape[2] != 3:
            raise SplatpackError(f"Splats.shN has shape {tuple(self.shN.shape)}, expected ({n}, K, 3)", source)
        sh_degree_for_rest_count(self.shN.shape[1])
        dtypes = {getattr(self, f).dtype for f in self.FIELDS}
        if numpy:
            floating = next(iter(dtypes)).kind == "f"
        else:
            devices = {getattr(self, f).device for f in self.FIELDS}
            if len(devices) > 1:
                raise SplatpackError(f"Splats fields are on different devices: {sorted(map(str, devices))}", source)
            floating = next(iter(dtypes)).is_floating_point
        if len(dtypes) > 1 or not floating:
            raise SplatpackError(f"Splats fields must share one floating dtype, got {sorted(map(str, dtypes))}", source)
        if check_finite:
            from splatpack.edit.nonfinite import refuse_nonfinite

            refuse_nonfinite({name: getattr(self, name) for name in self.FIELDS}, source)
        return self

    # ------------------------------------------------------------------ transforms

    def map(self, fn) -> Splats:
        """A new ``Splats`` with ``fn`` applied to every field array."""
        return Splats(**{f: fn(getattr(self, f)) for f in self.FIELDS})

    def __getitem__(self, index) -> Splats:
        """Select Gaussians by boolean mask, index array/tensor, slice or int list (always keeps the N axis)."""
        if isinstance(index, int):
            index = slice(index, index + 1) if index != -1 else slice(-1, None)
        elif self.is_numpy and hasattr(index, "numpy"):  # a torch mask or index tensor
            index = index.cpu().numpy()
        return self.map(lambda t: t[index])

    def to(self, *args, **kwargs) -> Splats:
        """``torch.Tensor.to`` on every field (a numpy-backed scene becomes torch first)."""
        return self.torch().map(lambda t: t.to(*args, **kwargs))

    def detach(self) -> Splats:
        return self if self.is_numpy else self.map(lambda t: t.detach())

    def clone(self) -> Splats:
        return self.map(lambda t: t.copy() if isinstance(t, np.ndarray) else t.clone())

    def with_sh_degree(self, degree: int) -> Splats:
        """Drop (or zero-pad) higher SH bands to ``degree``."""
        if degree not in SH_REST_COUNT:
            raise SplatpackError(f"SH degree {degree} is out of range 0-3")
        k = SH_REST_COUNT[degree]
        shN = self.shN[:, :k]
        if shN.shape[1] < k:
            if self.is_numpy:
                pad = np.zeros((len(self), k - shN.shape[1], 3), shN.dtype)
            else:
                pad = shN.new_zeros(len(self), k - shN.shape[1], 3)
            shN = _cat([shN, pad], self.is_numpy, axis=1)
        return dataclasses.replace(self, shN=shN)

    @staticmethod
    def cat(parts: Sequence[Splats] | Iterable[Splats]) -> Splats:
        """Concatenate scenes; lower-degree parts are zero-padded to the highest SH degree. The result is numpy
        when every part is, else torch."""
        parts = list(parts)
        if not parts:
            raise SplatpackError("cannot concatenate an empty list of scenes")
        numpy = all(p.is_numpy for p in parts)
        degree = max(p.sh_degree for p in parts)
        parts = [p.with_sh_degree(degree) if numpy else p.torch().with_sh_degree(degree) for p in parts]
        return Splats(**{f: _cat([getattr(p, f) for p in parts], numpy, axis=0) for f in Splats.FIELDS})

    def bounds(self) -> tuple[Array, Array]:
        """(min, max) corners of the centres' axis-aligned bounding box."""
        if len(self) == 0:
            raise SplatpackError("an empty scene has no bounding box")
        if self.is_numpy:
            return self.means.min(axis=0), self.means.max(axis=0)
        return self.means.min(dim=0).values, self.means.max(dim=0).values

    def __repr__(self) -> str:
        kind = "numpy" if self.is_numpy else f"device={self.device}"
        return f"Splats(n={len(self)}, sh_degree={self.sh_degree}, {kind}, dtype={self.dtype})"


def _cat(arrays: list, numpy: bool, axis: int) -> Array:
    if numpy:
        return np.concatenate(arrays, axis=axis)
    import torch

    return torch.cat(arrays, dim=axis)
