"""COLMAP sparse models (``cameras.bin``, ``images.bin``, ``points3D.bin``) and camera sets made from them.

Binary layout (little-endian, from COLMAP's ``src/colmap/scene/reconstruction_io.cc``):

- cameras.bin: u64 count, then per camera i32 id, i32 model id, u64 width, u64 height, f64 params[model].
- images.bin: u64 count, then per image i32 id, f64 qw qx qy qz, f64 tx ty tz (world-to-camera, OpenCV axes:
  x right, y down, z forward), i32 camera id, NUL-terminated name, u64 n, n x (f64 x, f64 y, i64 point3D id).
- points3D.bin: u64 count, then per point u64 id, f64 xyz, u8 rgb, f64 error, u64 n, n x (i32 image id,
  i32 point2D index).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splatpack.datasets.cameras import CameraSet, FrameSpec, build_camera_set, split_frames
from splatpack.errors import SplatpackError
from splatpack.io.atomic import atomic_output

# model name -> (id, parameter count); parameter order as COLMAP documents it.
CAMERA_MODELS = {
    "SIMPLE_PINHOLE": (0, 3),
    "PINHOLE": (1, 4),
    "SIMPLE_RADIAL": (2, 4),
    "RADIAL": (3, 5),
    "OPENCV": (4, 8),
    "OPENCV_FISHEYE": (5, 8),
    "FULL_OPENCV": (6, 12),
    "FOV": (7, 5),
    "SIMPLE_RADIAL_FISHEYE": (8, 4),
    "RADIAL_FISHEYE": (9, 5),
    "THIN_PRISM_FISHEYE": (10, 12),
}
_MODEL_BY_ID = {mid: (name, n) for name, (mid, n) in CAMERA_MODELS.items()}
_POINT2D = np.dtype([("x", "<f8"), ("y", "<f8"), ("id", "<i8")])
_POINT_HEAD = np.dtype([("id", "<u8"), ("xyz", "<f8", 3), ("rgb", "u1", 3), ("error", "<f8")])  # 43 bytes, packed
_TRACK = np.dtype([("image_id", "<i4"), ("point2d_idx", "<i4")])


@dataclass
class ColmapCamera:
    id: int
    model: str
    width: int
    height: int
    params: np.ndarray  # (n,) float64 in COLMAP's order for the model


@dataclass
class ColmapImage:
    id: int
    qvec: np.ndarray  # (4,) w x y z, world-to-camera rotation
    tvec: np.ndarray  # (3,) world-to-camera translation
    camera_id: int
    name: str
    xys: np.ndarray  # (n, 2) float64 pixel positions of the image's keypoints
    point3d_ids: np.ndarray  # (n,) int64, -1 where a keypoint has no 3D point


@dataclass
class ColmapPoints:
    ids: np.ndarray  # (P,) uint64
    xyz: np.ndarray  # (P, 3) float64
    rgb: np.ndarray  # (P, 3) uint8
    error: np.ndarray  # (P,) float64 mean reprojection error in pixels
    track_offsets: np.ndarray  # (P + 1,) int64: point i's track is tracks[track_offsets[i]:track_offsets[i + 1]]
    tracks: np.ndarray  # (T, 2) int32 rows (image id, index into that image's keypoints)


def qvec_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from unit quaternions (..., 4) stored w x y z (Hamilton, as COLMAP)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def rotmat_to_qvec(r: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) w x y z with w >= 0 from rotation matrices (..., 3, 3)."""
    r = np.asarray(r, dtype=np.float64)
    # The quaternion is the eigenvector of the largest eigenvalue of this symmetric matrix (robust near 180 deg).
    m00, m01, m02 = r[..., 0, 0], r[..., 0, 1], r[..., 0, 2]
    m10, m11, m12 = r[..., 1, 0], r[..., 1, 1], r[..., 1, 2]
    m20, m21, m22 = r[..., 2, 0], r[..., 2, 1], r[..., 2, 2]
    k = (
        np.stack(
            [
                np.stack([m00 - m11 - m22, m10 + m01, m20 + m02, m21 - m12], -1),
                np.stack([m10 + m01, m11 - m00 - m22, m21 + m12, m02 - m20], -1),
                np.stack([m20 + m02, m21 + m12, m22 - m00 - m11, m10 - m01], -1),
                np.stack([m21 - m12, m02 - m20, m10 - m01, m00 + m11 + m22], -1),
            ],
            -2,
        )
        / 3.0
    )
    _, vecs = np.linalg.eigh(k)
    xyzw = vecs[..., -1]
    q = np.concatenate([xyzw[..., 3:], xyzw[..., :3]], axis=-1)
    return np.where(q[..., :1] < 0, -q, q)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SplatpackError("no such file", path) from None
    except OSError as exc:
        raise SplatpackError(f"cannot read: {exc.strerror or exc}", path) from None


def read_cameras_binary(path: str | os.PathLike) -> dict[int, ColmapCamera]:
    path = Path(path)
    data = _read(path)
    cameras = {}
    try:
        (count,), off = struct.unpack_from("<Q", data, 0), 8
        for _ in range(count):
            cam_id, model_id, width, height = struct.unpack_from("<iiQQ", data, off)
            off += 24
            if model_id not in _MODEL_BY_ID:
                raise SplatpackError(f"unknown COLMAP camera model id {model_id}", path)
            model, n = _MODEL_BY_ID[model_id]
            params = np.array(struct.unpack_from(f"<{n}d", data, off))
            off += 8 * n
            cameras[cam_id] = ColmapCamera(cam_id, model, width, height, params)
    except struct.error:
        raise SplatpackError("truncated COLMAP cameras file", path) from None
    return cameras


def read_images_binary(path: str | os.PathLike) -> dict[int, ColmapImage]:
    path = Path(path)
    data = _read(path)
    images = {}
    try:
        (count,), off = struct.unpack_from("<Q", data, 0), 8
        for _ in range(count):
            image_id, qw, qx, qy, qz, tx, ty, tz, camera_id = struct.unpack_from("<i7di", data, off)
            off += 64
            end = data.index(b"\0", off)
            name = data[off:end].decode("utf-8")
            off = end + 1
            (n,) = struct.unpack_from("<Q", data, off)
            off += 8
            if off + n * _POINT2D.itemsize > len(data):
                raise struct.error
            pts = np.frombuffer(data, _POINT2D, n, off)
            off += n * _POINT2D.itemsize
            images[image_id] = ColmapImage(
                image_id,
                np.array([qw, qx, qy, qz]),
                np.array([tx, ty, tz]),
                camera_id,
                name,
                np.stack([pts["x"], pts["y"]], axis=1),
                pts["id"].copy(),
            )
    except (struct.error, ValueError, UnicodeDecodeError):
        raise SplatpackError("truncated or corrupt COLMAP images file", path) from None
    return images


def read_points3d_binary(path: str | os.PathLike) -> ColmapPoints:
    path = Path(path)
    data = _read(path)
    head = struct.Struct("<Q")
    try:
        (count,) = head.unpack_from(data, 0)
        # Records have variable length (their tracks), so only their offsets are found one by one;
        # the fields are then gathered for all points at once.
        starts, lengths, off = [], [], 8
        for _ in range(count):
            (n,) = head.unpack_from(data, off + _POINT_HEAD.itemsize)
            starts.append(off)
            lengths.append(n)
            off += _POINT_HEAD.itemsize + 8 + n * _TRACK.itemsize
        if off > len(data):
            raise struct.error
    except struct.error:
        raise SplatpackError("truncated COLMAP points3D file", path) from None
    raw = np.frombuffer(data, np.uint8)
    starts_a = np.asarray(starts, dtype=np.int64)
    lengths_a = np.asarray(lengths, dtype=np.int64)
    heads = raw[starts_a[:, None] + np.arange(_POINT_HEAD.itemsize)].reshape(-1).view(_POINT_HEAD)
    offsets = np.concatenate([[0], np.cumsum(lengths_a)])
    first = np.repeat(starts_a + _POINT_HEAD.itemsize + 8, lengths_a)
    within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths_a)
    track_bytes = raw[(first + within * _TRACK.itemsize)[:, None] + np.arange(_TRACK.itemsize)]
    tracks = track_bytes.reshape(-1).view(_TRACK)
    return ColmapPoints(
        ids=heads["id"].copy(),
        xyz=heads["xyz"].copy(),
        rgb=heads["rgb"].copy(),
        error=heads["error"].copy(),
        track_offsets=offsets,
        tracks=np.stack([tracks["image_id"], tracks["point2d_idx"]], axis=1).astype(np.int32),
    )


def write_cameras_binary(cameras: list[ColmapCamera], path: str | os.PathLike) -> None:
    parts = [struct.pack("<Q", len(cameras))]
    for cam in cameras:
        model_id, n = CAMERA_MODELS[cam.model]
        if len(cam.params) != n:
            raise SplatpackError(f"COLMAP model {cam.model} takes {n} parameters, got {len(cam.params)}", path)
        parts.append(struct.pack(f"<iiQQ{n}d", cam.id, model_id, cam.width, cam.height, *map(float, cam.params)))
    _write(path, b"".join(parts))


def write_images_binary(images: list[ColmapImage], path: str | os.PathLike) -> None:
    parts = [struct.pack("<Q", len(images))]
    for im in images:
        parts.append(struct.pack("<i7di", im.id, *map(float, im.qvec), *map(float, im.tvec), im.camera_id))
        parts.append(im.name.encode("utf-8") + b"\0")
        pts = np.empty(len(im.xys), _POINT2D)
        pts["x"], pts["y"], pts["id"] = im.xys[:, 0], im.xys[:, 1], im.point3d_ids
        parts.append(struct.pack("<Q", len(pts)) + pts.tobytes())
    _write(path, b"".join(parts))


def write_points3d_binary(points: ColmapPoints, path: str | os.PathLike) -> None:
    count = len(points.ids)
    heads = np.empty(count, _POINT_HEAD)
    heads["id"], heads["xyz"], heads["rgb"], heads["error"] = points.ids, points.xyz, points.rgb, points.error
    lengths = np.diff(points.track_offsets).astype(np.int64)
    tracks = np.empty(len(points.tracks), _TRACK)
    tracks["image_id"], tracks["point2d_idx"] = points.tracks[:, 0], points.tracks[:, 1]
    # Scatter all records into one buffer at their (variable) offsets.
    sizes = _POINT_HEAD.itemsize + 8 + lengths * _TRACK.itemsize
    starts = 8 + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    buf = np.empty(8 + int(sizes.sum()), np.uint8)
    buf[:8] = np.frombuffer(struct.pack("<Q", count), np.uint8)
    buf[starts[:, None] + np.arange(_POINT_HEAD.itemsize)] = heads.view(np.uint8).reshape(count, _POINT_HEAD.itemsize)
    buf[starts[:, None] + _POINT_HEAD.itemsize + np.arange(8)] = lengths.astype("<u8").view(np.uint8).reshape(count, 8)
    within = np.arange(len(tracks)) - np.repeat(points.track_offsets[:-1], lengths)
    first = np.repeat(starts + _POINT_HEAD.itemsize + 8, lengths) + within * _TRACK.itemsize
    buf[first[:, None] + np.arange(_TRACK.itemsize)] = tracks.view(np.uint8).reshape(len(tracks), _TRACK.itemsize)
    _write(path, buf.tobytes())


def _write(path: str | os.PathLike, payload: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(payload)


def camera_intrinsics(cam: ColmapCamera, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(K (3, 3), OpenCV distortion k1 k2 p1 p2) of a COLMAP camera; fisheye and exotic models are refused."""
    p = cam.params
    if cam.model == "SIMPLE_PINHOLE":
        f, cx, cy, dist = p[0], p[1], p[2], (0, 0, 0, 0)
        fx = fy = f
    elif cam.model == "PINHOLE":
        fx, fy, cx, cy, dist = *p[:4], (0, 0, 0, 0)
    elif cam.model == "SIMPLE_RADIAL":
        fx = fy = p[0]
        cx, cy, dist = p[1], p[2], (p[3], 0, 0, 0)
    elif cam.model == "RADIAL":
        fx = fy = p[0]
        cx, cy, dist = p[1], p[2], (p[3], p[4], 0, 0)
    elif cam.model == "OPENCV":
        fx, fy, cx, cy, dist = *p[:4], tuple(p[4:8])
    else:
        raise SplatpackError(f"COLMAP camera model {cam.model} is not supported (undistort it with COLMAP first)", path)
    k = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)
    return k, np.asarray(dist, dtype=np.float64)


def find_model(folder: str | os.PathLike) -> tuple[Path, Path]:
    """(model folder holding the .bin files, scene root holding ``images/``) for a scene or model folder."""
    folder = Path(folder)
    candidates = (folder, folder / "colmap" / "sparse" / "0", folder / "sparse" / "0", folder / "sparse")
    for model in candidates:
        if (model / "cameras.bin").is_file():
            break
    else:
        if any((m / "cameras.txt").is_file() for m in candidates):
            raise SplatpackError("COLMAP text models are not supported; convert with `colmap model_converter`", folder)
        raise SplatpackError("no COLMAP model (cameras.bin) here or in colmap/sparse/0 or sparse/0", folder)
    # images/ sits beside the model (Mip-NeRF 360: scene/sparse/0) or beside colmap/ (nerfstudio).
    for root in (model, *list(model.parents)[:3]):
        if (root / "images").is_dir():
            return model, root
    raise SplatpackError("no images/ folder beside the COLMAP model", folder)


def read_split_lists(folder: Path) -> dict[str, set[str]] | None:
    """nerfstudio's COLMAP split files ``train_list.txt`` / ``val_list.txt`` / ``test_list.txt`` (image names)."""
    lists = {}
    for key in ("train", "val", "test"):
        path = folder / f"{key}_list.txt"
        if path.is_file():
            lists[key] = {os.path.normpath(line.strip()) for line in path.read_text().splitlines() if line.strip()}
    return lists or None


def load_colmap(
    folder: str | os.PathLike, *, split: str = "train", downscale: int = 1, test_every: int = 8
) -> CameraSet:
    """Cameras and images of a COLMAP scene, sorted by image name.

    ``folder`` is the scene (with ``images/`` and ``colmap/sparse/0`` or ``sparse/0``) or the model folder itself.
    The split comes from ``train_list.txt`` / ``test_list.txt`` beside ``images/`` when present (as nerfstudio's
    COLMAP parser reads them), else every ``test_every``-th image (0, 8, 16, ...) is the test set.
    """
    frames, root = colmap_frames(folder)
    lists = read_split_lists(root)
    return build_camera_set(split_frames(frames, split, test_every, lists, root), downscale)


def colmap_frames(folder: str | os.PathLike) -> tuple[list[FrameSpec], Path]:
    """The cameras of a COLMAP scene (``load_colmap``'s ``folder``), sorted by image name, without loading any
    image; and the scene root."""
    model, root = find_model(folder)
    cameras = read_cameras_binary(model / "cameras.bin")
    images = sorted(read_images_binary(model / "images.bin").values(), key=lambda im: im.name)
    if not images:
        raise SplatpackError("the COLMAP model has no images", model / "images.bin")
    frames = []
    for im in images:
        if im.camera_id not in cameras:
            raise SplatpackError(f"image {im.name} uses undefined camera {im.camera_id}", model / "cameras.bin")
        cam = cameras[im.camera_id]
        k, dist = camera_intrinsics(cam, model / "cameras.bin")
        viewmat = np.eye(4)
        viewmat[:3, :3] = qvec_to_rotmat(im.qvec)
        viewmat[:3, 3] = im.tvec
        frames.append(FrameSpec(root / "images" / im.name, im.name, viewmat, k, dist, cam.width, cam.height))
    return frames, root
