"""``CompactScene``: what a ``.spk`` file holds, in memory — OMG's compact representation of a scene.

A compact scene stores per Gaussian only its position and a few small integers: every other attribute is an
index into sub-vector codebooks (``SvqCode``) or, for ablations, a raw half-precision array. Colour, opacity and
the SH bands come from one of two *appearance* layouts:

- ``fields`` present (OMG, ``splatpack-omg``): attribute ``features`` holds each Gaussian's static and view
  features ``[T, V]`` (6); the MLP fields (``splatpack.omg.fields``) turn position and features into DC colour,
  opacity and SH rest when the scene is baked;
- ``fields`` absent (post-hoc or "no MLP" ablation): attributes ``sh0`` (3), ``opacity_logits`` (1) and ``shN``
  (3 x rest count, coefficient-major as in ``Splats``) hold them directly.

Geometry is always ``log_scales`` (3) and ``quats`` (4, w x y z, any norm). Positions are float32 values that the
container stores exactly (it quantizes them first, ``splatpack.io.spk``). The scene lives in the frame it was
trained in; ``to_data`` (rotation, translation, scale) maps it to the data frame the user's cameras use, and
baking applies it, so a decoded file lines up with its input as every other export does. Baking runs on numpy
alone (reading a ``.spk`` needs no torch); quantizing a scene (``from_splats``) uses torch.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from splatpack.edit.rigid import similarity
from splatpack.errors import SplatpackError
from splatpack.omg.field_bake import bake
from splatpack.quant import svq
from splatpack.quant.svq import SvqCode, as_rows
from splatpack.scene import SH_REST_COUNT, Splats

if TYPE_CHECKING:
    import torch

# Attribute names and widths of the two appearance layouts (see the module docstring).
GEOMETRY = {"log_scales": 3, "quats": 4}
FIELD_APPEARANCE = {"features": 6}
RAW_APPEARANCE = {"sh0": 3, "opacity_logits": 1}  # plus "shN": 3 x SH rest count


def layout(sh_degree: int, *, fields: bool) -> dict[str, int]:
    """Attribute name -> width of a scene of ``sh_degree`` with (or without) MLP fields."""
    if sh_degree not in SH_REST_COUNT:
        raise SplatpackError(f"SH degree {sh_degree} is out of range 0-3")
    if fields:
        return {**GEOMETRY, **FIELD_APPEARANCE}
    return {**GEOMETRY, **RAW_APPEARANCE, "shN": 3 * SH_REST_COUNT[sh_degree]}


Attribute = SvqCode | np.ndarray  # an SVQ code, or raw (N, width) float32 values
Svq = tuple[int, int] | None  # (sub-vector length, codebook entries), or None: stored raw


def codebook_cap(n: int, rows_per_entry: int) -> int:
    """Most entries a codebook for ``n`` rows gets: the largest power of two <= n / rows_per_entry (at least 2),
    so every entry is fitted to ~``rows_per_entry`` rows and the codebooks stay small beside the indices."""
    return 1 << max(int(n // max(rows_per_entry, 1)).bit_length() - 1, 1)


def canonical_quats(quats: torch.Tensor) -> torch.Tensor:
    """Unit quaternions with w >= 0: q and -q are one rotation, so a codebook need cover only half the sphere."""
    import torch

    q = torch.nn.functional.normalize(quats, dim=-1)
    return torch.where(q[:, :1] < 0, -q, q)


def attribute_values(attr: Attribute) -> np.ndarray:
    return attr.values() if isinstance(attr, SvqCode) else np.asarray(attr, dtype=np.float32)


@dataclasses.dataclass
class CompactScene:
    """N Gaussians in OMG's compact form (module docstring); every array is float32 / int64 on the CPU."""

    positions: np.ndarray  # (N, 3)
    attributes: dict[str, Attribute]
    sh_degree: int
    fields: dict[str, np.ndarray] | None = None  # MLP weights by name (splatpack.omg.fields)
    field_config: dict | None = None  # JSON-able settings that rebuild the fields
    rotation: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(3))  # to the data frame
    translation: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    scale: float = 1.0

    def __post_init__(self) -> None:
        self.positions = np.ascontiguousarray(self.positions, dtype=np.float32).reshape(-1, 3)
        self.rotation = np.asarray(self.rotation, dtype=np.float64).reshape(3, 3)
        self.translation = np.asarray(self.translation, dtype=np.float64).reshape(3)
        self.attributes = {
            k: v if isinstance(v, SvqCode) else as_rows(v, np.float32) for k, v in self.attributes.items()
        }
        self.validate()

    def __len__(self) -> int:
        return len(self.positions)

    def layout(self) -> dict[str, int]:
        """Attribute name -> width this scene must hold."""
        return layout(self.sh_degree, fields=self.fields is not None)

    def validate(self) -> CompactScene:
        want = self.layout()
        if set(self.attributes) != set(want):
            raise SplatpackError(f"attributes {sorted(self.attributes)} do not match the layout {sorted(want)}")
        for name, width in want.items():
            attr = self.attributes[name]
            rows, cols = (len(attr.indices), attr.width) if isinstance(attr, SvqCode) else attr.shape
            if (rows, cols) != (len(self), width):
                raise SplatpackError(f"attribute {name} is {rows} x {cols}, expected {len(self)} x {width}")
        if (self.fields is None) != (self.field_config is None):
            raise SplatpackError("MLP weights and their settings come together")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise SplatpackError(f"frame scale must be positive and finite, got {self.scale}")
        return self

    def select(self, rows: np.ndarray) -> CompactScene:
        """The Gaussians ``rows`` (indices or a mask), in that order; codebooks and fields are shared."""
        attrs = {k: v.select(rows) if isinstance(v, SvqCode) else v[rows] for k, v in self.attributes.items()}
        return dataclasses.replace(self, positions=self.positions[rows], attributes=attrs)

    def values(self, name: str) -> np.ndarray:
        return attribute_values(self.attributes[name])

    @classmethod
    def from_splats(
        cls,
        splats: Splats,
        *,
        scale: Svq = (1, 64),
        rotation: Svq = (2, 512),
        appearance: Svq = (2, 1024),
        sh_rest: Svq = (45, 4096),
        rows_per_entry: int = 16,
        seed: int = 0,
    ) -> CompactScene:
        """Any 3DGS scene in the "no MLP" layout, without training: log scales, rotations, DC colour and opacity
        (``appearance``) and the SH rest (``sh_rest``) each sub-vector quantized with its (length, entries),
        entries capped by ``codebook_cap`` as OMG's model does, or kept raw where the option is None. Rotations
        are normalised with w >= 0 first (q and -q are one rotation: half the space for the codebook to cover).
        The SH rest is one sub-vector by default (45 >= its width), as SOG's palette: 2-value sub-vectors would
        cost ~23 indices per Gaussian (4x the bytes at the same render PSNR on the demo scene; README, .spk)."""
        import torch

        n = len(splats)
        s = splats.torch().detach().to("cpu", torch.float32)
        values = {
            "log_scales": (s.log_scales, scale),
            "quats": (canonical_quats(s.quats), rotation),
            "sh0": (s.sh0.reshape(n, 3), appearance),
            "opacity_logits": (s.opacity_logits.reshape(n, 1), appearance),
            "shN": (s.shN.reshape(n, -1), sh_rest),
        }
        cap = codebook_cap(n, rows_per_entry)
        attributes = {}
        for name, (v, option) in values.items():
            if option is None or v.shape[1] == 0 or n == 0:  # nothing to quantize: raw (N, 0) for SH degree 0
                attributes[name] = v.numpy()
            else:
                length, entries = option
                attributes[name] = svq.fit(v, length, min(entries, cap), seed=seed)
        return cls(s.means.numpy(), attributes, s.sh_degree)

    # ------------------------------------------------------------------ baking

    def to_splats(self, *, data_frame: bool = True, chunk: int = 1 << 18) -> Splats:
        """A standard 3DGS scene of numpy arrays: the fields (if any) evaluated once per Gaussian, ``chunk`` rows
        at a time; in the data frame unless ``data_frame`` is False (the stored frame, as trained)."""
        n = len(self)
        k = SH_REST_COUNT[self.sh_degree]
        if self.fields is not None:
            sh0, opacity, shN = bake(
                self.field_config, self.fields, self.positions, self.values("features"), self.sh_degree, chunk=chunk
            )
        else:
            sh0, opacity, shN = self.values("sh0"), self.values("opacity_logits"), self.values("shN")
        splats = Splats.from_numpy(
            means=self.positions.copy(),
            quats=self.values("quats"),
            log_scales=self.values("log_scales"),
            opacity_logits=opacity.reshape(n),
            sh0=sh0.reshape(n, 1, 3),
            shN=shN.reshape(n, k, 3),
            arrays="numpy",
        )
        if not data_frame or (
            np.array_equal(self.rotation, np.eye(3)) and not self.translation.any() and self.scale == 1
        ):
            return splats
        return similarity(splats, rotation=self.rotation, translation=self.translation, scale=float(self.scale))
