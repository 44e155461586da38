"""What the browser draws for a ``Splats``: activated arrays, point budget and a starting camera."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from splatpack.render._torch_impl import rotation_matrices
from splatpack.scene import Splats

# Robust bounds ignore the outer 2 % of centres on each side: floaters far from a capture would otherwise
# push the initial camera so far back that the scene is a dot.
ROBUST_PERCENTILES = (2.0, 98.0)
# Splat captures are usually in COLMAP/OpenCV axes (x right, y down, z forward): world up is -y.
DEFAULT_UP = np.array([0.0, -1.0, 0.0])


def importance_order(splats: Splats) -> torch.Tensor:
    """Indices of the Gaussians sorted by opacity x volume, most important first.

    Computed in log space (log sigmoid + sum of log scales) so tiny or huge scales neither underflow nor
    overflow; ties keep file order so the choice is reproducible.
    """
    score = torch.nn.functional.logsigmoid(splats.opacity_logits) + splats.log_scales.sum(dim=1)
    return torch.sort(score, descending=True, stable=True).indices


def budget_indices(order: torch.Tensor, max_splats: int) -> torch.Tensor:
    """The ``max_splats`` most important Gaussians (all when the budget covers the scene), in file order.

    File order keeps any spatial coherence the file had, which the browser's sort benefits from.
    """
    keep = order[: max(0, int(max_splats))]
    return torch.sort(keep).values


def covariances(splats: Splats) -> np.ndarray:
    """(N, 3, 3) float32 world covariances ``R diag(s^2) R^T`` from unit quaternions and ``exp(log_scales)``."""
    rs = rotation_matrices(splats.quats) * splats.scales[:, None, :]  # R diag(s)
    return (rs @ rs.transpose(1, 2)).to(torch.float32).numpy()


def base_rgbs(splats: Splats) -> np.ndarray:
    """(N, 3) view-independent colour ``clamp(0.5 + C0 * dc, 0, 1)``."""
    return splats.base_rgb.clamp(0, 1).to(torch.float32).numpy()


def opacities(splats: Splats) -> np.ndarray:
    """(N, 1) opacities ``sigmoid(logit)``."""
    return splats.opacities[:, None].to(torch.float32).numpy()


def robust_bounds(means: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis 2nd and 98th percentiles of the centres."""
    m = means.to(torch.float64).numpy()
    lo, hi = np.percentile(m, ROBUST_PERCENTILES, axis=0)
    return lo, hi


@dataclasses.dataclass(frozen=True)
class CameraPose:
    position: np.ndarray
    look_at: np.ndarray
    up: np.ndarray


def initial_camera(means: torch.Tensor, fov: float, up: np.ndarray = DEFAULT_UP) -> CameraPose:
    """A camera outside the scene looking at the centre of its robust bounding box, with ``up`` as up.

    It stands back along the scene's "backward" axis (-z for OpenCV-style scenes, i.e. behind the usual
    capture direction) raised a little towards ``up``, far enough that the sphere holding 98 % of the centres
    fits the vertical field of view.
    """
    lo, hi = robust_bounds(means)
    centre = (lo + hi) / 2
    dist = np.linalg.norm(means.to(torch.float64).numpy() - centre, axis=1)
    radius = max(float(np.percentile(dist, ROBUST_PERCENTILES[1])), 1e-6)
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    # Backward = the axis the viewer looks along in OpenCV frames (+z) reversed; when up is along z, use -y.
    forward = np.array([0.0, 0.0, 1.0]) if abs(up[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    forward = forward - up * float(forward @ up)
    direction = -forward / np.linalg.norm(forward) + 0.35 * up
    direction /= np.linalg.norm(direction)
    distance = radius / np.sin(fov / 2) * 1.05
    return CameraPose(position=centre + direction * distance, look_at=centre, up=up)
