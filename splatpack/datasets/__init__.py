"""Posed-image datasets: the embedded demo scene, nerfstudio / instant-ngp transforms.json and COLMAP models.

Loaders return a ``CameraSet`` (images, OpenCV world-to-camera viewmats, pinhole Ks) ready for training.
"""

from splatpack.datasets.colmap import load_colmap
from splatpack.datasets.demo_scene import generate_demo_scene
from splatpack.datasets.transforms import CameraSet, load_seed_points, load_transforms

__all__ = ["CameraSet", "generate_demo_scene", "load_colmap", "load_seed_points", "load_transforms"]
