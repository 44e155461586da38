"""The reader of nerfstudio / instant-ngp ``transforms.json``: its frames as a ``CameraSet``.

``transforms.json`` stores camera-to-world matrices in the OpenGL/NeRF convention (x right, y up, z back);
``splatpack.datasets.cameras`` turns them into OpenCV world-to-camera matrices and loads the images.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from splatpack.datasets.cameras import CameraSet, FrameSpec, build_camera_set, gl_pose_to_viewmat, split_frames
from splatpack.errors import SplatpackError


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
    viewmat = gl_pose_to_viewmat(c2w)
    return FrameSpec(image_path, os.path.normpath(rel), viewmat, k, dist, w, h)


def load_transforms(
    path: str | os.PathLike, *, split: str = "train", downscale: int = 1, test_every: int = 8
) -> CameraSet:
    """Cameras and images of a nerfstudio or instant-ngp ``transforms.json`` (the file or its folder).

    Frames are sorted by file path (as nerfstudio does). The split comes from ``train_filenames`` /
    ``val_filenames`` / ``test_filenames`` when present, else every ``test_every``-th frame is held out.
    """
    frames, meta, json_path = transforms_frames(path)
    lists = {
        key: {os.path.normpath(name) for name in meta[f"{key}_filenames"]}
        for key in ("train", "val", "test")
        if f"{key}_filenames" in meta
    }
    return build_camera_set(split_frames(frames, split, test_every, lists or None, json_path), downscale)


def transforms_frames(path: str | os.PathLike) -> tuple[list[FrameSpec], dict, Path]:
    """The cameras of a ``transforms.json`` (the file or its folder), sorted by file path, without loading any
    image; the file's contents and its path."""
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
    return frames, meta, json_path
