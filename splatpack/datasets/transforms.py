"""Camera sets for training and evaluation, and their reader for nerfstudio / instant-ngp ``transforms.json``.

A ``CameraSet`` is what the trainer and the benchmarks consume: undistorted RGB images and pinhole cameras
in the OpenCV convention (world-to-camera ``viewmats``; camera x right, y down, z forward), as gsplat expects.
``transforms.json`` stores camera-to-world matrices in the OpenGL/NeRF convention (x right, y up, z back).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from splatpack.errors import SplatpackError

# OpenGL camera axes (x right, y up, z back) -> OpenCV axes (x right, y down, z forward).
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


def read_split_lists(folder: Path) -> dict[str, set[str]] | None:
    """nerfstudio's COLMAP split files ``train_list.txt`` / ``val_list.txt`` / ``test_list.txt`` (image names)."""
    lists = {}
    for key in ("train", "val", "test"):
        path = folder / f"{key}_list.txt"
        if path.is_file():
            lists[key] = {os.path.normpath(line.strip()) for line in path.read_text().splitlines() if line.strip()}
    return lists or None


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


def read_json(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise SplatpackError("no such file", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SplatpackError(f"not valid JSON: {exc}", path) from None
    if not isinstance(meta, dict):
        raise SplatpackError("expected a JSON object", path)
    return meta


def transforms_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path / "transforms.json" if path.is_dir() else path


def _frame_spec(frame: dict, meta: dict, root: Path, json_path: Path) -> FrameSpec:
    def get(key, default=None):
        return frame.get(key, meta.get(key, default))

    rel = frame["file_path"]
    image_path = root / rel
    if not image_path.suffix and not image_path.exists():
        image_path = image_path.with_suffix(".png")  # NeRF synthetic lists "./train/r_0" without extension
    w, h = get("w"), get("h")
    if w is None or h is None:
        if not image_path.is_file():
            raise SplatpackError("image listed by the dataset is missing", image_path)
        with Image.open(image_path) as im:
            w, h = im.size
    w, h = int(w), int(h)
    fx, fy = get("fl_x"), get("fl_y")
    if fx is None and get("camera_angle_x") is not None:
        fx = 0.5 * w / math.tan(0.5 * float(get("camera_angle_x")))
    if fy is None and get("camera_angle_y") is not None:
        fy = 0.5 * h / math.tan(0.5 * float(get("camera_angle_y")))
    if fx is None:
        raise SplatpackError("no focal length (fl_x or camera_angle_x)", json_path)
    fy = fx if fy is None else fy
    k = np.array([[fx, 0, get("cx", w / 2)], [0, fy, get("cy", h / 2)], [0, 0, 1]], dtype=np.float64)
    dist = np.array([float(get(key, 0.0)) for key in ("k1", "k2", "p1", "p2", "k3")])
    c2w = np.eye(4)
    matrix = np.asarray(frame["transform_matrix"], dtype=np.float64)
    c2w[: matrix.shape[0]] = matrix
    viewmat = np.linalg.inv(c2w @ GL_TO_CV)
    return FrameSpec(image_path, os.path.normpath(rel), viewmat, k, dist, w, h)


def load_transforms(
    path: str | os.PathLike, *, split: str = "train", downscale: int = 1, test_every: int = 8
) -> CameraSet:
    """Cameras and images of a nerfstudio or instant-ngp ``transforms.json`` (the file or its folder).

    Frames are sorted by file path (as nerfstudio does). The split comes from ``train_filenames`` /
    ``val_filenames`` / ``test_filenames`` when present, else every ``test_every``-th frame is held out.
    """
    json_path = transforms_path(path)
    meta = read_json(json_path)
    root = json_path.parent
    model = meta.get("camera_model", "OPENCV")
    if model not in ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE"):
        raise SplatpackError(f"camera model {model} is not supported", json_path)
    raw_frames = meta.get("frames")
    if not isinstance(raw_frames, list) or not raw_frames:
        raise SplatpackError("no frames listed", json_path)
    try:
        frames = [_frame_spec(frame, meta, root, json_path) for frame in raw_frames]
    except (KeyError, TypeError, ValueError) as exc:
        raise SplatpackError(f"malformed frame entry ({exc})", json_path) from None
    frames.sort(key=lambda f: f.name)
    lists = {
        key: {os.path.normpath(name) for name in meta[f"{key}_filenames"]}
        for key in ("train", "val", "test")
        if f"{key}_filenames" in meta
    }
    return build_camera_set(split_frames(frames, split, test_every, lists or None, json_path), downscale)


def read_point_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(P, 3) float32 positions and (P, 3) float32 colours in [0, 1] of a point-cloud PLY (x y z red green blue)."""
    from plyfile import PlyData, PlyParseError

    path = Path(path)
    if not path.is_file():
        raise SplatpackError("no such file", path)
    try:
        vertex = PlyData.read(str(path))["vertex"]
        xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float32)
        rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1)
    except (KeyError, ValueError, PlyParseError) as exc:
        raise SplatpackError(f"not a point-cloud PLY with x y z red green blue ({exc})", path) from None
    scale = 255.0 if rgb.dtype == np.uint8 else 1.0
    return xyz, (rgb.astype(np.float32) / scale)


def load_seed_points(path_or_folder: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Seed points ((P, 3) positions, (P, 3) colours in [0, 1]) of a scene.

    Accepts a point-cloud PLY, a ``points3D.bin``, a ``transforms.json`` (its ``ply_file_path``), or a scene
    folder (its transforms.json's ``ply_file_path``, else its COLMAP model).
    """
    from splatpack.datasets import colmap  # colmap builds on this module, so import it only when needed

    path = Path(path_or_folder)
    json_path = path / "transforms.json" if path.is_dir() else path
    if json_path.suffix == ".json" and json_path.is_file():
        meta = read_json(json_path)
        if "ply_file_path" in meta:
            path = json_path.parent / meta["ply_file_path"]
        elif path == json_path:
            raise SplatpackError("transforms.json has no ply_file_path (no seed points)", json_path)
    if path.is_dir():
        path = colmap.find_model(path)[0] / "points3D.bin"
    if path.suffix.lower() == ".ply":
        xyz, rgb = read_point_ply(path)
    elif path.suffix.lower() == ".bin":
        points = colmap.read_points3d_binary(path)
        xyz, rgb = points.xyz.astype(np.float32), points.rgb.astype(np.float32) / 255.0
    else:
        raise SplatpackError("not a seed point file (expected .ply or points3D.bin)", path)
    return torch.from_numpy(xyz), torch.from_numpy(rgb)
