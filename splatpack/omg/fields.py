"""OMG's compact attributes (ALGORITHMS.md section 2.4): colour, opacity and SH bands predicted by small MLPs.

Per Gaussian only a 3-D static feature T and a 3-D view feature V are learned. A *space feature* F (13-D) comes
from the Gaussian's position: mip-NeRF-360 contraction, a 16-frequency sine/cosine encoding and a 64-wide,
one-hidden-layer MLP, so neighbours share what they have in common. Three heads then give

- the DC colour (an SH DC coefficient) and the opacity logit from [F, T],
- the 45 SH rest coefficients (degree 3) from [F, V].

Pure PyTorch (CPU and CUDA; no tiny-cuda-nn). The heads' outputs are raw parameters in ``Splats``' sense, so the
renderer still receives the usual activated tensors and nothing here knows about rendering. ``bake`` evaluates
the fields once per Gaussian when a ``.spk`` is decoded; ``to_arrays``/``from_arrays`` carry the weights and
their settings through the file.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

from splatpack.errors import SplatpackError
from splatpack.scene import SH_REST_COUNT


@dataclasses.dataclass
class FieldConfig:
    """Sizes of the fields (defaults: OMG's) and the contraction's frame."""

    frequencies: int = 16
    """Sine/cosine pairs per axis of the position encoding (frequencies 2^0 pi .. 2^(F-1) pi)."""
    hidden: int = 64
    """Width of every MLP's one hidden layer."""
    space_features: int = 13
    """Width of the space feature F."""
    static_features: int = 3
    """Width of the per-Gaussian static feature T (DC colour and opacity head)."""
    view_features: int = 3
    """Width of the per-Gaussian view feature V (SH rest head)."""
    sh_rest: int = 15
    """SH rest coefficients per colour channel the view head predicts (15: degree 3)."""
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Centre of the contraction (training frame)."""
    radius: float = 1.0
    """Positions within this distance of ``center`` are encoded linearly, farther ones contracted."""

    @classmethod
    def from_dict(cls, data: dict) -> FieldConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SplatpackError(f"unknown field settings: {', '.join(unknown)}")
        try:
            cfg = cls(**{**data, "center": tuple(float(c) for c in data.get("center", (0, 0, 0)))})
        except (TypeError, ValueError) as exc:
            raise SplatpackError(f"bad field settings: {exc}") from None
        sizes = (cfg.frequencies, cfg.hidden, cfg.space_features, cfg.static_features, cfg.view_features)
        if not all(isinstance(v, int) and 0 < v <= 4096 for v in sizes) or cfg.sh_rest not in SH_REST_COUNT.values():
            raise SplatpackError(f"field sizes out of range: {data}")
        if len(cfg.center) != 3 or not (math.isfinite(cfg.radius) and cfg.radius > 0):
            raise SplatpackError(f"bad contraction frame: centre {cfg.center}, radius {cfg.radius}")
        return cfg

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "center": list(self.center)}


def contract(x: torch.Tensor, center: torch.Tensor, radius: float) -> torch.Tensor:
    """mip-NeRF 360's contraction of positions into [0, 1]^3: linear inside the ball of ``radius`` around
    ``center`` (|y| <= 1), ``(2 - 1/|y|) y/|y|`` outside, then mapped from [-2, 2] to [0, 1]."""
    y = (x - center) / radius
    norm = y.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    y = torch.where(norm <= 1, y, (2 - 1 / norm) * y / norm)
    return (y + 2) / 4


def frequency_encoding(u: torch.Tensor, frequencies: int) -> torch.Tensor:
    """[u, sin(2^k pi u), cos(2^k pi u)] for k < ``frequencies``: (N, 3 + 6 F)."""
    scales = math.pi * 2.0 ** torch.arange(frequencies, dtype=u.dtype, device=u.device)
    angles = (u[..., None] * scales).flatten(-2)
    return torch.cat([u, torch.sin(angles), torch.cos(angles)], dim=-1)


def _mlp(inputs: int, hidden: int, outputs: int, activation: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), activation, nn.Linear(hidden, outputs))


class AttributeFields(nn.Module):
    """The space MLP and the three heads; ``forward`` maps positions and [T, V] to raw DC, opacity and SH rest."""

    def __init__(self, config: FieldConfig | None = None):
        super().__init__()
        cfg = self.config = config or FieldConfig()
        self.register_buffer("center", torch.tensor(cfg.center, dtype=torch.float32), persistent=False)
        encoded = 3 + 6 * cfg.frequencies
        self.space = _mlp(encoded, cfg.hidden, cfg.space_features, nn.ReLU())
        self.dc = _mlp(cfg.space_features + cfg.static_features, cfg.hidden, 3, nn.LeakyReLU())
        self.opacity = _mlp(cfg.space_features + cfg.static_features, cfg.hidden, 1, nn.LeakyReLU())
        self.view = _mlp(cfg.space_features + cfg.view_features, cfg.hidden, 3 * cfg.sh_rest, nn.LeakyReLU())
        # SH rest starts at zero: switching the fields on changes no view-dependent colour.
        nn.init.zeros_(self.view[-1].weight)
        nn.init.zeros_(self.view[-1].bias)

    @property
    def feature_width(self) -> int:
        return self.config.static_features + self.config.view_features

    def space_feature(self, positions: torch.Tensor) -> torch.Tensor:
        u = contract(positions, self.center, self.config.radius)
        return self.space(frequency_encoding(u, self.config.frequencies))

    def forward(self, positions: torch.Tensor, features: torch.Tensor):
        """(DC coefficient (N, 3), opacity logit (N,), SH rest (N, sh_rest, 3)) for (N, 3) positions and
        (N, T + V) features."""
        f = self.space_feature(positions)
        static, view = features.split([self.config.static_features, self.config.view_features], dim=-1)
        ft = torch.cat([f, static], dim=-1)
        sh_rest = self.view(torch.cat([f, view], dim=-1)).reshape(len(positions), self.config.sh_rest, 3)
        return self.dc(ft), self.opacity(ft).reshape(-1), sh_rest

    @torch.no_grad()
    def bake(self, positions: torch.Tensor, features: torch.Tensor, sh_degree: int, *, chunk: int = 1 << 18):
        """``forward`` in chunks of rows without gradients, SH rest cut to ``sh_degree``'s coefficients."""
        k = SH_REST_COUNT[sh_degree]
        if k > self.config.sh_rest:
            raise SplatpackError(
                f"the fields predict {self.config.sh_rest} SH coefficients, degree {sh_degree} needs {k}"
            )
        parts = [self(positions[i : i + chunk], features[i : i + chunk]) for i in range(0, len(positions), chunk)]
        if not parts:
            return torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, k, 3)
        dc, opacity, rest = (torch.cat(p) for p in zip(*parts))
        return dc, opacity, rest[:, :k]

    # ------------------------------------------------------------------ storage

    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able settings, float32 weights by parameter name)."""
        weights = {name: p.detach().float().cpu().numpy() for name, p in self.named_parameters()}
        return self.config.to_dict(), weights

    @classmethod
    def from_arrays(cls, config: dict, weights: dict[str, np.ndarray]) -> AttributeFields:
        net = cls(FieldConfig.from_dict(config))
        own = dict(net.named_parameters())
        if set(weights) != set(own):
            raise SplatpackError(f"MLP weights {sorted(weights)} do not match the fields' {sorted(own)}")
        with torch.no_grad():
            for name, p in own.items():
                w = np.asarray(weights[name], dtype=np.float32)
                if w.shape != tuple(p.shape):
                    raise SplatpackError(f"MLP weight {name} is {w.shape}, expected {tuple(p.shape)}")
                if not np.isfinite(w).all():
                    raise SplatpackError(f"MLP weight {name} holds non-finite values")
                p.copy_(torch.from_numpy(w))
        return net.eval()
