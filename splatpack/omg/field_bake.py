"""OMG's MLP fields evaluated from stored weights in numpy: what decoding a ``.spk`` runs, without torch.

``FieldConfig`` (the fields' sizes) lives here so a file's settings are checked without torch;
``splatpack.omg.fields`` is the trainable torch module with the same parameters, and a test holds this
evaluation to its forward pass. Weights are named as the torch module names its parameters (``space.0.weight``
is the first layer of the space MLP), each layer ``x @ W.T + b``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

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

    @property
    def encoded_width(self) -> int:
        return 3 + 6 * self.frequencies

    def mlps(self) -> dict[str, tuple[int, int, int]]:
        """MLP name -> (inputs, hidden, outputs): the space MLP and the three heads."""
        space, hidden = self.space_features, self.hidden
        return {
            "space": (self.encoded_width, hidden, space),
            "dc": (space + self.static_features, hidden, 3),
            "opacity": (space + self.static_features, hidden, 1),
            "view": (space + self.view_features, hidden, 3 * self.sh_rest),
        }

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter name -> shape, as the torch module names them (layers 0 and 2 of each MLP)."""
        shapes = {}
        for name, (inputs, hidden, outputs) in self.mlps().items():
            shapes[f"{name}.0.weight"], shapes[f"{name}.0.bias"] = (hidden, inputs), (hidden,)
            shapes[f"{name}.2.weight"], shapes[f"{name}.2.bias"] = (outputs, hidden), (outputs,)
        return shapes


def checked_weights(cfg: FieldConfig, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``weights`` as float32 arrays, refused in one line unless they are exactly the fields' finite parameters."""
    want = cfg.weight_shapes()
    if set(weights) != set(want):
        raise SplatpackError(f"MLP weights {sorted(weights)} do not match the fields' {sorted(want)}")
    out = {}
    for name, shape in want.items():
        w = np.asarray(weights[name], dtype=np.float32)
        if w.shape != shape:
            raise SplatpackError(f"MLP weight {name} is {w.shape}, expected {shape}")
        if not np.isfinite(w).all():
            raise SplatpackError(f"MLP weight {name} holds non-finite values")
        out[name] = w
    return out


def contract(x: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    """mip-NeRF 360's contraction into [0, 1]^3 (``splatpack.omg.fields.contract``), float32."""
    y = (x - center) / np.float32(radius)
    norm = np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), np.float32(1e-12))
    y = np.where(norm <= 1, y, (2 - 1 / norm) * y / norm)
    return (y + 2) / 4


def frequency_encoding(u: np.ndarray, frequencies: int) -> np.ndarray:
    """[u, sin(2^k pi u), cos(2^k pi u)] for k < ``frequencies``: (N, 3 + 6 F), float32 like the torch one."""
    scales = (np.float32(math.pi) * 2.0 ** np.arange(frequencies, dtype=np.float32)).astype(np.float32)
    angles = (u[..., None] * scales).reshape(len(u), -1)
    out = np.empty((len(u), 3 + 2 * angles.shape[1]), np.float32)
    out[:, :3] = u
    np.sin(angles, out=out[:, 3 : 3 + angles.shape[1]])
    np.cos(angles, out=out[:, 3 + angles.shape[1] :])
    return out


def _mlp(w: dict[str, np.ndarray], name: str, x: np.ndarray, leaky: bool) -> np.ndarray:
    h = x @ w[f"{name}.0.weight"].T
    h += w[f"{name}.0.bias"]
    np.maximum(h, h * np.float32(0.01) if leaky else np.float32(0), out=h)  # LeakyReLU (slope 0.01) or ReLU
    out = h @ w[f"{name}.2.weight"].T
    out += w[f"{name}.2.bias"]
    return out


def bake(
    config: dict, weights: dict[str, np.ndarray], positions, features, sh_degree: int, *, chunk: int = 1 << 18
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(DC coefficient (N, 3), opacity logit (N,), SH rest (N, K, 3) of ``sh_degree``) of (N, 3) positions and
    (N, T + V) features, ``chunk`` rows at a time (bounded memory). Settings and weights are checked first."""
    cfg = FieldConfig.from_dict(config)
    w = checked_weights(cfg, weights)
    k = SH_REST_COUNT[sh_degree]
    if k > cfg.sh_rest:
        raise SplatpackError(f"the fields predict {cfg.sh_rest} SH coefficients, degree {sh_degree} needs {k}")
    positions = np.asarray(positions, dtype=np.float32).reshape(-1, 3)
    features = np.asarray(features, dtype=np.float32).reshape(len(positions), -1)
    center = np.asarray(cfg.center, dtype=np.float32)
    n = len(positions)
    dc, opacity, rest = np.empty((n, 3), np.float32), np.empty(n, np.float32), np.empty((n, k, 3), np.float32)
    for i in range(0, n, chunk):
        rows = slice(i, i + chunk)
        f = _mlp(w, "space", frequency_encoding(contract(positions[rows], center, cfg.radius), cfg.frequencies), False)
        static, view = np.split(features[rows], [cfg.static_features], axis=1)
        ft = np.concatenate([f, static], axis=1)
        dc[rows] = _mlp(w, "dc", ft, True)
        opacity[rows] = _mlp(w, "opacity", ft, True)[:, 0]
        rest[rows] = _mlp(w, "view", np.concatenate([f, view], axis=1), True).reshape(-1, cfg.sh_rest, 3)[:, :k]
    return dc, opacity, rest
