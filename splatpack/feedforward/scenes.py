"""Procedural multi-view training scenes, ray traced by the demo scene's tracer (``splatpack.datasets.demo_scene``).

Each seed gives a checkerboard floor with its own grime, 2-6 random objects (spheres of random colours, stripes
and gloss; boxes of random size and yaw; cylinders of random radius and height) and a random camera rig: the demo
ring's path, turned about the vertical by a random angle and pulled in or out around its target. The demo
tracer's sun, sky and box/cylinder palettes are fixed; varying them needs new surface classes. Seeds from
``HELD_OUT_FIRST`` up are the fixed held-out set and are never drawn for training.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from splatpack.datasets.demo_scene import TARGET, Box, Cylinder, Floor, Sphere, camera_poses, intrinsics, render
from splatpack.errors import SplatpackError

HELD_OUT_FIRST = 1_000_000  # seeds >= this are held out: evaluation only
OBJECT_KINDS = ("sphere", "box", "cylinder")


@dataclasses.dataclass
class MultiViewScene:
    """Posed images of one scene: images (V, H, W, 3) in [0, 1], c2w (V, 4, 4) OpenCV, Ks (V, 3, 3)."""

    images: torch.Tensor
    c2w: torch.Tensor
    Ks: torch.Tensor
    seed: int

    def views(self, index) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(1, V', ...) batched images, poses and intrinsics of the views ``index``, as the model takes them."""
        return self.images[index][None], self.c2w[index][None], self.Ks[index][None]


def random_objects(rng: np.random.Generator) -> list:
    """2-6 objects of random kind, size, placement and (for spheres) material, standing in the floor's middle."""
    objects = []
    for _ in range(int(rng.integers(2, 7))):
        kind = OBJECT_KINDS[int(rng.integers(len(OBJECT_KINDS)))]
        x, y = rng.uniform(-1.4, 1.4, 2)
        if kind == "sphere":
            r = rng.uniform(0.2, 0.7)
            colours = rng.uniform(0.05, 0.95, (2, 3))
            objects.append(
                Sphere((x, y, r), r, colours, rng.uniform(0, 0.8), rng.uniform(8, 120), int(rng.integers(1, 9)))
            )
        elif kind == "box":
            half = rng.uniform(0.15, 0.5, 3)
            objects.append(Box((x, y, half[2]), half, rng.uniform(0, np.pi)))
        else:
            objects.append(Cylinder((x, y), rng.uniform(0.15, 0.45), rng.uniform(0.3, 1.3)))
    return objects


def random_rig(rng: np.random.Generator, views: int) -> np.ndarray:
    """(V, 4, 4) OpenCV camera-to-world poses at random places on the demo ring, turned and rescaled about it."""
    c2w = camera_poses(views, steps=np.sort(rng.uniform(0, views, views)))
    yaw = rng.uniform(0, 2 * np.pi)
    turn = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1.0]])
    eye = TARGET + rng.uniform(0.7, 1.2) * ((c2w[:, :3, 3] - TARGET) @ turn.T)  # still looking at TARGET
    c2w[:, :3, :3] = turn @ c2w[:, :3, :3]
    c2w[:, :3, 3] = eye
    return c2w


def procedural_scene(seed: int, views: int = 8, width: int = 64, height: int = 64) -> MultiViewScene:
    """Ray-traced views of procedural scene ``seed`` (deterministic)."""
    if seed < 0:
        raise SplatpackError(f"scene seed {seed} must be non-negative")
    rng = np.random.default_rng(seed)
    scene = [Floor(rng), *random_objects(rng)]
    c2w = random_rig(rng, views)
    K = intrinsics(width, height)
    images = np.stack([render(scene, pose, K, width, height) for pose in c2w])
    return MultiViewScene(
        images=torch.from_numpy(images).float(),
        c2w=torch.from_numpy(c2w).float(),
        Ks=torch.from_numpy(K).float().expand(views, 3, 3).contiguous(),
        seed=seed,
    )
