"""Where to look at a scene that came without its cameras: virtual camera rigs around (and inside) its bounds.

A trained PLY carries no cameras, so distillation renders its own targets. The scene's extent comes from the
Gaussians' centres, robustly (a few far-away floaters must not set the scale): the centre is the per-axis
median, the radius the ``RADIUS_QUANTILE`` quantile of the distances to it, the core radius their
``CORE_QUANTILE`` quantile.

- ``orbit``: cameras on a Fibonacci sphere around the centre, far enough that the radius-sized ball fills the
  field of view, looking at the centre — object captures, and the outside of everything;
- ``inside``: cameras scattered near the centre, looking outwards in directions spread over the sphere — for
  captures that surround the viewer (a room, a rooftop, an unbounded outdoor scene), whose background is seen
  only from inside.

``auto`` adds the inside rig when the scene has a far shell: when the ``FAR_QUANTILE`` distance is more than
``SURROUND_RATIO`` core radii (unbounded captures put their background far out, however much of the scene it
holds; an object's Gaussians end near it: a solid ball's ratio is 1.6, a hollow one's 1).
Held-out views are every ``HELD_OUT_EVERY``-th camera of each rig, so they interleave with the fitted ones.

``camera_views`` takes the scene's own cameras instead (a nerfstudio / instant-ngp ``transforms.json`` or a
COLMAP folder, poses in the scene's frame), at the same pixel width; their images are never read.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from splatpack.distill.options import Rig
from splatpack.errors import SplatpackError
from splatpack.evaluation import Views
from splatpack.render.cameras import fibonacci_sphere, least_aligned_axes, look_at, pinhole, sphere_cameras
from splatpack.scene import Splats

RADIUS_QUANTILE = 0.9
CORE_QUANTILE = 0.25
FAR_QUANTILE = 0.99
SURROUND_RATIO = 4.0
FOV_DEGREES = 60.0
HELD_OUT_EVERY = 8
INSIDE_SPREAD = 0.5  # inside cameras stand within this share of the core radius around the centre
NEAR_SHARE = 1e-3  # near plane, as a share of the radius (scenes come in any units)


@dataclass(frozen=True)
class Extent:
    centre: torch.Tensor  # (3,)
    radius: float  # the RADIUS_QUANTILE distance from the centre
    core: float  # the CORE_QUANTILE distance
    far: float  # the FAR_QUANTILE distance

    @property
    def surrounds(self) -> bool:
        """Whether the scene looks like a capture that surrounds its viewer (module docstring)."""
        return self.far > SURROUND_RATIO * self.core


def extent(splats: Splats) -> Extent:
    """Robust centre and radius of the scene's Gaussian centres (module docstring)."""
    if len(splats) == 0:
        raise SplatpackError("the scene has no Gaussians to look at")
    means = splats.means.detach().double().cpu()
    centre = means.median(dim=0).values
    distance = (means - centre).norm(dim=1)
    radius, core, far = (
        float(torch.quantile(distance, q)) if len(distance) > 1 else 1.0
        for q in (RADIUS_QUANTILE, CORE_QUANTILE, FAR_QUANTILE)
    )
    radius = radius if radius > 0 else 1.0
    return Extent(centre.float(), radius, core if core > 0 else radius, far)


def orbit_viewmats(ext: Extent, n: int) -> torch.Tensor:
    """(n, 4, 4) cameras around the scene: the radius-sized ball just fills the field of view."""
    distance = ext.radius / math.sin(math.radians(FOV_DEGREES) / 2)
    return sphere_cameras(ext.centre, distance, n)


def inside_viewmats(ext: Extent, n: int, seed: int) -> torch.Tensor:
    """(n, 4, 4) cameras near the centre looking outwards, one direction each from a Fibonacci sphere."""
    g = torch.Generator().manual_seed(seed)
    offsets = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
    eyes = ext.centre + offsets * torch.rand(n, 1, generator=g) * INSIDE_SPREAD * ext.core
    dirs = fibonacci_sphere(n)
    return look_at(eyes, eyes + dirs, least_aligned_axes(dirs))


def rig_viewmats(ext: Extent, rig: Rig, n: int, seed: int) -> torch.Tensor:
    """(n, 4, 4) cameras of ``rig`` (both: half orbit, half inside; auto: both when ``ext.surrounds``)."""
    if rig == "auto":
        rig = "both" if ext.surrounds else "orbit"
    if rig == "orbit":
        return orbit_viewmats(ext, n)
    if rig == "inside":
        return inside_viewmats(ext, n, seed)
    if rig == "both":
        return torch.cat([orbit_viewmats(ext, n - n // 2), inside_viewmats(ext, n // 2, seed)])
    raise SplatpackError(f"unknown camera rig {rig!r}; choose auto, orbit, inside or both")


def split_views(viewmats: torch.Tensor, Ks: torch.Tensor, size: tuple[int, int], near_plane: float):
    """(fitted, held-out) ``Views`` of the cameras: every ``HELD_OUT_EVERY``-th held out (from the 4th on)."""
    n = len(viewmats)
    held = torch.zeros(n, dtype=torch.bool)
    held[HELD_OUT_EVERY // 2 :: HELD_OUT_EVERY] = True
    if n > 1 and not held.any():
        held[-1] = True

    def views(mask: torch.Tensor) -> Views:
        return Views(viewmats[mask], Ks[mask], [size] * int(mask.sum()), near_plane=near_plane)

    return views(~held), views(held)


def virtual_views(
    splats: Splats, *, views: int, width: int, rig: Rig = "auto", seed: int = 0
) -> tuple[Views, Views, Extent]:
    """(fitted, held-out) views of ``views`` virtual cameras of ``rig`` around ``splats`` at ``width`` x 3/4
    ``width`` pixels, and the scene's extent. Images are not set: the caller renders them from the source."""
    if views < 2 or width < 8:
        raise SplatpackError(f"need at least 2 views of at least 8 pixels (got {views} views of {width} px)")
    ext = extent(splats)
    size = (int(width), max(int(width) * 3 // 4, 1))
    viewmats = rig_viewmats(ext, rig, views, seed)
    Ks = pinhole(size[0], size[1], FOV_DEGREES, len(viewmats))
    return (*split_views(viewmats, Ks, size, NEAR_SHARE * ext.radius), ext)


def camera_views(path: str | os.PathLike, *, width: int, near_share: float = NEAR_SHARE):
    """(fitted, held-out) views of the cameras in ``path`` (a ``transforms.json``, its folder, or a COLMAP
    scene folder), intrinsics scaled to ``width`` pixels; the near plane ``near_share`` of the cameras' spread
    (every camera must have one image size)."""
    from splatpack.datasets.colmap import colmap_frames
    from splatpack.datasets.transforms import transforms_frames

    path = Path(path)
    is_colmap = path.is_dir() and not (path / "transforms.json").exists()
    frames = colmap_frames(path)[0] if is_colmap else transforms_frames(path)[0]
    if len({(f.width, f.height) for f in frames}) != 1:
        raise SplatpackError("the cameras have different image sizes; distillation needs one", path)
    scale = width / frames[0].width
    size = (int(width), max(round(frames[0].height * scale), 1))
    Ks = torch.from_numpy(np.stack([f.K for f in frames])).float()
    Ks[:, :2] *= scale
    viewmats = torch.from_numpy(np.stack([f.viewmat for f in frames])).float()
    eyes = -torch.einsum("cji,cj->ci", viewmats[:, :3, :3], viewmats[:, :3, 3])
    spread = float((eyes - eyes.mean(dim=0)).norm(dim=1).max()) or 1.0
    return split_views(viewmats, Ks, size, near_share * spread)
