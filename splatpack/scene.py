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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from splatpack.errors import SplatpackError

SH_C0 = 0.28209479177387814
# Number of higher-band coefficients per colour channel for SH degrees 0..3.
SH_REST_COUNT = {0: 0, 1: 3, 2: 8, 3: 15}


def sh_degree_for_rest_count(k: int) -> int:
    """SH degree whose higher bands hold ``k`` coefficients per channel; raises for other counts."""
    for degree, count in SH_REST_COUNT.items():
        if count == k:
            return degree
    raise SplatpackError(f"{k} higher SH coefficients per channel is not a valid SH degree 0-3")


def rgb_to_sh0(rgb: torch.Tensor) -> torch.Tensor:
    """DC coefficient whose colour (at any view direction) is ``rgb``."""
    return (rgb - 0.5) / SH_C0


def sh0_to_rgb(sh0: torch.Tensor) -> torch.Tensor:
    return sh0 * SH_C0 + 0.5


@dataclasses.dataclass
class Splats:
    """A set of N 3D Gaussians (see the module docstring for each field's meaning and activation)."""

    means: torch.Tensor
    quats: torch.Tensor
    log_scales: torch.Tensor
    opacity_logits: torch.Tensor
    sh0: torch.Tensor
    shN: torch.Tensor

    FIELDS = ("means", "quats", "log_scales", "opacity_logits", "sh0", "shN")

    def __post_init__(self) -> None:
        self.validate(check_finite=False)

    # ------------------------------------------------------------------ construction

    @classmethod
    def empty(cls, sh_degree: int = 0, *, device=None, dtype=torch.float32) -> Splats:
        return cls.create(0, sh_degree, device=device, dtype=dtype)

    @classmethod
    def create(cls, n: int, sh_degree: int = 0, *, device=None, dtype=torch.float32) -> Splats:
        """N Gaussians at the origin with identity rotation, unit scale, opacity 0.5 and grey colour."""
        if sh_degree not in SH_REST_COUNT:
            raise SplatpackError(f"SH degree {sh_degree} is out of range 0-3")
        kw = dict(device=device, dtype=dtype)
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
    def from_numpy(cls, *, means, quats, log_scales, opacity_logits, sh0, shN, source=None) -> Splats:
        """Build float32 CPU ``Splats`` from array-likes shaped as the fields (``sh0`` may be (N, 3)), checking
        shapes and finite values; ``source`` names the file in error messages."""

        def f32(a) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

        from splatpack.edit.nonfinite import resolve

        fields = {"means": means, "quats": quats, "log_scales": log_scales, "opacity_logits": opacity_logits}
        fields = {k: np.asarray(v, dtype=np.float32) for k, v in {**fields, "sh0": sh0, "shN": shN}.items()}
        # Non-finite values follow the reading policy in force (splatpack.edit.nonfinite), as in every reader.
        f = {k: f32(v) for k, v in resolve(fields, source=source).items()}
        n = len(f["means"])
        f.update(sh0=f["sh0"].reshape(n, 1, 3), shN=f["shN"].reshape(n, -1, 3))
        return cls(**f).validate(source=None if source is None else str(source))

    @classmethod
    def random(cls, n: int, sh_degree: int = 0, *, seed: int = 0, extent: float = 1.0, dtype=torch.float32) -> Splats:
        """A reproducible random scene in a cube of half-size ``extent`` (for tests and benchmarks)."""
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

    # ------------------------------------------------------------------ facts

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        return sh_degree_for_rest_count(self.shN.shape[1])

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    # ------------------------------------------------------------------ activations

    @property
    def scales(self) -> torch.Tensor:
        """(N, 3) standard deviations: ``exp(log_scales)``."""
        return torch.exp(self.log_scales)

    @property
    def opacities(self) -> torch.Tensor:
        """(N,) opacities in (0, 1): ``sigmoid(opacity_logits)``."""
        return torch.sigmoid(self.opacity_logits)

    @property
    def unit_quats(self) -> torch.Tensor:
        """(N, 4) unit quaternions (w, x, y, z)."""
        return torch.nn.functional.normalize(self.quats, dim=-1)

    @property
    def sh(self) -> torch.Tensor:
        """(N, (degree+1)^2, 3) all SH coefficients, DC first: what the renderer's SH path takes."""
        return torch.cat([self.sh0, self.shN], dim=1)

    @property
    def base_rgb(self) -> torch.Tensor:
        """(N, 3) view-independent colour from the DC term alone (not clamped)."""
        return sh0_to_rgb(self.sh0[:, 0, :])

    # ------------------------------------------------------------------ checks

    def validate(self, *, check_finite: bool = True, source: str | None = None) -> Splats:
        """Raise ``SplatpackError`` on wrong shapes, mixed devices/dtypes or (optionally) NaN/Inf values."""
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
            if not isinstance(t, torch.Tensor):
                raise SplatpackError(f"Splats.{name} must be a torch.Tensor, got {type(t).__name__}", source)
            if tuple(t.shape) != shape:
                raise SplatpackError(f"Splats.{name} has shape {tuple(t.shape)}, expected {shape}", source)
        if (
            not isinstance(self.shN, torch.Tensor)
            or self.shN.ndim != 3
            or self.shN.shape[0] != n
            or self.shN.shape[2] != 3
        ):
            raise SplatpackError(
                f"Splats.shN has shape {tuple(getattr(self.shN, 'shape', ()))}, expected ({n}, K, 3)", source
            )
        sh_degree_for_rest_count(self.shN.shape[1])
        devices = {getattr(self, f).device for f in self.FIELDS}
        dtypes = {getattr(self, f).dtype for f in self.FIELDS}
        if len(devices) > 1:
            raise SplatpackError(f"Splats fields are on different devices: {sorted(map(str, devices))}", source)
        if len(dtypes) > 1 or not next(iter(dtypes)).is_floating_point:
            raise SplatpackError(f"Splats fields must share one floating dtype, got {sorted(map(str, dtypes))}", source)
        if check_finite:
            from splatpack.edit.nonfinite import refuse_nonfinite

            refuse_nonfinite({name: getattr(self, name) for name in self.FIELDS}, source)
        return self

    # ------------------------------------------------------------------ transforms

    def map(self, fn) -> Splats:
        """A new ``Splats`` with ``fn`` applied to every field tensor."""
        return Splats(**{f: fn(getattr(self, f)) for f in self.FIELDS})

    def __getitem__(self, index) -> Splats:
        """Select Gaussians by boolean mask, index tensor, slice or int list (always keeps the N axis)."""
        if isinstance(index, int):
            index = slice(index, index + 1) if index != -1 else slice(-1, None)
        return self.map(lambda t: t[index])

    def to(self, *args, **kwargs) -> Splats:
        return self.map(lambda t: t.to(*args, **kwargs))

    def detach(self) -> Splats:
        return self.map(torch.Tensor.detach)

    def clone(self) -> Splats:
        return self.map(torch.Tensor.clone)

    def with_sh_degree(self, degree: int) -> Splats:
        """Drop (or zero-pad) higher SH bands to ``degree``."""
        if degree not in SH_REST_COUNT:
            raise SplatpackError(f"SH degree {degree} is out of range 0-3")
        k = SH_REST_COUNT[degree]
        shN = self.shN[:, :k]
        if shN.shape[1] < k:
            pad = shN.new_zeros(len(self), k - shN.shape[1], 3)
            shN = torch.cat([shN, pad], dim=1)
        return dataclasses.replace(self, shN=shN)

    @staticmethod
    def cat(parts: Sequence[Splats] | Iterable[Splats]) -> Splats:
        """Concatenate scenes; lower-degree parts are zero-padded to the highest SH degree."""
        parts = list(parts)
        if not parts:
            raise SplatpackError("cannot concatenate an empty list of scenes")
        degree = max(p.sh_degree for p in parts)
        parts = [p.with_sh_degree(degree) for p in parts]
        return Splats(**{f: torch.cat([getattr(p, f) for p in parts], dim=0) for f in Splats.FIELDS})

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(min, max) corners of the centres' axis-aligned bounding box."""
        if len(self) == 0:
            raise SplatpackError("an empty scene has no bounding box")
        return self.means.min(dim=0).values, self.means.max(dim=0).values

    def __repr__(self) -> str:
        return f"Splats(n={len(self)}, sh_degree={self.sh_degree}, device={self.device}, dtype={self.dtype})"
