"""Posed-image datasets: the embedded demo scene, nerfstudio / instant-ngp transforms.json and COLMAP models.

Loaders return a ``CameraSet`` (images, OpenCV world-to-camera viewmats, pinhole Ks) ready for training;
``load_seed_points`` reads the point cloud a scene's Gaussians start from.
"""

from splatpack.datasets.cameras import CameraSet
from splatpack.datasets.colmap import load_colmap
from splatpack.datasets.demo_scene import generate_demo_scene
from splatpack.datasets.seed_points import load_seed_points
from splatpack.datasets.transforms import load_transforms

__all__ = ["CameraSet", "generate_demo_scene", "load_colmap", "load_seed_points", "load_transforms"]
