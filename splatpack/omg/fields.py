"""OMG's compact attributes (ALGORITHMS.md section 2.4): colour, opacity and SH bands predicted by small MLPs.

Per Gaussian only a 3-D static feature T and a 3-D view feature V are learned. A *space feature* F (13-D) comes
from the Gaussian's position: mip-NeRF-360 contraction, a 16-frequency sine/cosine encoding and a 64-wide,
one-hidden-layer MLP, so neighbours share what they have in common. Three heads then give

- the DC colour (an SH DC coefficient) and the opacity logit from [F, T],
- the 45 SH rest coefficients (degree 3) from [F, V].

Pure PyTorch (CPU and CUDA; no tiny-cuda-nn). The heads' outputs are raw parameters in ``Splats``' sense, so the
renderer still receives the usual activated tensors and nothing here knows about rendering. ``to_arrays`` gives
the weights and settings a ``.spk`` stores; decoding evaluates them in numpy (``splatpack.omg.field_bake``, held
to this module's forward by a test).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from splatpack.omg.field_bake import FieldConfig


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
        sizes = cfg.mlps()  # the numpy evaluation (field_bake) reads the same sizes and parameter names
        self.space = _mlp(*sizes["space"], nn.ReLU())
        self.dc = _mlp(*sizes["dc"], nn.LeakyReLU())
        self.opacity = _mlp(*sizes["opacity"], nn.LeakyReLU())
        self.view = _mlp(*sizes["view"], nn.LeakyReLU())
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

    # ------------------------------------------------------------------ storage

    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able settings, float32 weights by parameter name)."""
        weights = {name: p.detach().float().cpu().numpy() for name, p in self.named_parameters()}
        return self.config.to_dict(), weights
