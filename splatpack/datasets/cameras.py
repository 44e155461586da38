"""Camera sets for training and evaluation, built from the frames a dataset file declares.

A ``CameraSet`` is what the trainer and the benchmarks consume: undistorted RGB images and pinhole cameras
in the OpenCV convention (world-to-camera ``viewmats``; camera x right, y down, z forward), as gsplat expects.
The file readers (``transforms``, ``colmap``) turn their entries into ``FrameSpec``s; ``split_frames`` picks a
split and ``build_camera_set`` loads, downscales and undistorts the images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from splatpack.errors import SplatpackError

# OpenGL / NeRF camera axes (x right, y up, z back) -> OpenCV axes (x right, y down, z forward); its own inverse.
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])
SPLITS = ("train", "test", "all")


@dataclass
class CameraSet:
    images: torch.Tensor  # (B, H, W, 3) float32 in [0, 1]
    viewmats: torch.Tensor  # (B, 4, 4) float32 world-to-camera, OpenCV convention
    Ks: torch.Tensor  # (B, 3, 3) float32 pinhole intrinsics of the (downscaled, undistorted) images
    names: list[str]
    width: int
    height: int


@dataclass
class FrameSpec:
    """One camera as a dataset declares it, before its image is loaded."""

    image_path: Path
    name: str  # the name splits refer to (normalized relative path)
    viewmat: np.ndarray  # (4, 4) float64 world-to-camera, OpenCV convention
    K: np.ndarray  # (3, 3) float64 at the declared resolution
    dist: np.ndarray  # OpenCV k1 k2 p1 p2 [k3]
    width: int
    height: int


def gl_pose_to_viewmat(camera_to_world: np.ndarray) -> np.ndarray:
    """(4, 4) OpenGL camera-to-world of a dataset file -> (4, 4) float64 OpenCV world-to-camera.

    A full inverse: poses stored in files are orthonormal only to their printed precision.
    """
    return np.linalg.inv(camera_to_world @ GL_TO_CV)


def camera_to_viewmats(camera_to_worlds: torch.Tensor) -> torch.Tensor:
    """OpenGL camera-to-world (C, 3, 4) -> OpenCV world-to-camera (C, 4, 4), as nerfstudio's splatfacto does it.

    The rotation is inverted by its transpose (splatfacto's arithmetic, so our renders match its bit for bit).
    """
    flip = torch.tensor(GL_TO_CV.diagonal()[:3], dtype=torch.float32, device=camera_to_worlds.device)
    rot = camera_to_worlds[:, :3, :3] * flip
    rot_inv = rot.transpose(1, 2)
    viewmats = torch.zeros(camera_to_worlds.shape[0], 4, 4, device=camera_to_worlds.device, dtype=rot.dtype)
    viewmats[:, :3, :3] = rot_inv
    viewmats[:, :3, 3:4] = -rot_inv @ camera_to_worlds[:, :3, 3:4]
    viewmats[:, 3, 3] = 1.0
    return viewmats


def split_frames(
    frames: list[FrameSpec], split: str, test_every: int, lists: dict[str, set[str]] | None, source: Path
) -> list[FrameSpec]:
    """The frames of ``split``: from explicit name lists when the dataset has them, else every ``test_every``-th
    frame (0, 8, 16, ... as nerfstudio's and gsplat's interval splits) is held out for test."""
    if split not in SPLITS:
        raise SplatpackError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if split == "all":
        return frames
    if lists:
        known = {f.name for f in frames}
        for key, names in lists.items():
            missing = names - known
            if missing:
                raise SplatpackError(f"{key} split names frames that do not exist: {sorted(missing)[:3]}", source)
        train, test = lists.get("train"), lists.get("test", lists.get("val"))
        if split == "train":
            chosen = train if train is not None else known - test
        else:
            chosen = test if test is not None else known - train
        return [f for f in frames if f.name in chosen]
    if test_every < 1:
        raise SplatpackError(f"test_every must be >= 1, got {test_every}")
    return [f for i, f in enumerate(frames) if (i % test_every == 0) == (split == "test")]


def _load_image(path: Path) -> np.ndarray:
    """RGB image, uint8 when the file is 8-bit RGB (converting 2 MP photos to float is the slow part, so it
    happens after downscaling), else float32 in [0, 1]; alpha (NeRF synthetic) is composited over white as
    nerfstudio and 3DGS do."""
    if not path.is_file():
        raise SplatpackError("image listed by the dataset is missing", path)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise SplatpackError("cannot decode image", path)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.dtype != np.uint8 or img.shape[2] == 4:
        img = img.astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 255.0)
        if img.shape[2] == 4:
            alpha = img[:, :, 3:]
            img = img[:, :, :3] * alpha + (1.0 - alpha)
    return np.ascontiguousarray(img[:, :, 2::-1])  # BGR -> RGB


def build_camera_set(frames: list[FrameSpec], downscale: int) -> CameraSet:
    """Load, downscale (area averaging) and undistort the frames' images; intrinsics follow the resize."""
    if not frames:
        raise SplatpackError("the requested split has no frames")
    if downscale < 1:
        raise SplatpackError(f"downscale must be >= 1, got {downscale}")
    images, Ks = [], []
    size = None
    for f in frames:
        img = _load_image(f.image_path)
        if img.shape[:2] != (f.height, f.width):
            raise SplatpackError(
                f"image is {img.shape[1]}x{img.shape[0]} but the dataset says {f.width}x{f.height}", f.image_path
            )
        w, h = f.width // downscale, f.height // downscale
        k = f.K.copy()
        if downscale > 1:
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            k[0] *= w / f.width
            k[1] *= h / f.height
        if img.dtype == np.uint8:
            img = img.astype(np.float32) / 255.0
        if np.any(f.dist != 0):
            # OpenCV puts pixel centres at integers, the datasets (and gsplat) at +0.5: shift the principal point.
            k_cv = k - np.array([[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]])
            img = cv2.undistort(img, k_cv, f.dist)
        if size is not None and size != (w, h):
            raise SplatpackError(f"frames have different image sizes ({size} and {(w, h)})", f.image_path)
        size = (w, h)
        images.append(img)
        Ks.append(k)
    return CameraSet(
        images=torch.from_numpy(np.clip(np.stack(images), 0.0, 1.0)),
        viewmats=torch.from_numpy(np.stack([f.viewmat for f in frames])).float(),
        Ks=torch.from_numpy(np.stack(Ks)).float(),
        names=[f.name for f in frames],
        width=size[0],
        height=size[1],
    )
