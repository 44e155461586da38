"""The embedded demo scene: posed photos of a small still life, ray traced analytically with numpy.

A checkerboard floor carries a striped glossy sphere, a small shiny sphere, a tiled box and a ringed cylinder,
lit by a sun (hard shadows) and a sky; Blinn-Phong highlights make colour view-dependent. Cameras sit on a ring
around the objects, looking at the centre, z up. The output folder is a nerfstudio dataset (``transforms.json``,
``images/``, ``sparse_pc.ply``) and a COLMAP model (``colmap/sparse/0``) of the same cameras and seed points,
so both of nerfstudio's parsers and ours read it. Everything is deterministic under ``seed``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from splatpack.datasets import colmap
from splatpack.datasets.cameras import GL_TO_CV
from splatpack.errors import SplatpackError
from splatpack.io.atomic import atomic_output

VERSION = 4  # bump whenever the rendered views or poses change: an older folder is then regenerated
EPS = 1e-4
FLOOR_HALF = 3.0  # the floor is the square |x|, |y| <= 3
TARGET = np.array([0.0, 0.0, 0.45])  # every camera looks here
SUN = np.array([0.45, 0.3, 0.84]) / np.linalg.norm([0.45, 0.3, 0.84])
SUN_RGB = np.array([1.0, 0.95, 0.88])
AMBIENT_RGB = np.array([0.22, 0.25, 0.32])
SUPERSAMPLE = 2  # rays per pixel side: anti-aliased edges, like a real lens
N_POINTS = 4000


def _srgb_to_linear(c) -> np.ndarray:
    return np.asarray(c, dtype=np.float64) ** 2.2


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", a, b)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass
class Surface:
    """Shading inputs at ray hits: unit normals, linear albedo, specular weight and exponent."""

    normal: np.ndarray
    albedo: np.ndarray
    ks: np.ndarray
    shininess: np.ndarray


class Floor:
    ks, shininess = 0.04, 8.0
    area = (2 * FLOOR_HALF) ** 2

    def __init__(self, rng: np.random.Generator):
        self.grime = rng.random((33, 33))  # value-noise lattice: uneven dirt on the tiles

    def hit(self, o, d):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -o[..., 2] / d[..., 2]
        p = o + t[..., None] * d
        ok = (t > EPS) & (np.abs(p[..., 0]) <= FLOOR_HALF) & (np.abs(p[..., 1]) <= FLOOR_HALF)
        return np.where(ok, t, np.inf)

    def albedo(self, p):
        checker = (np.floor(p[..., 0] / 0.5) + np.floor(p[..., 1] / 0.5)) % 2
        light, dark = np.array([0.86, 0.82, 0.72]), np.array([0.25, 0.32, 0.45])
        base = np.where(checker[..., None] > 0, light, dark)
        g = (p[..., :2] + FLOOR_HALF) / (2 * FLOOR_HALF) * 32
        i = np.clip(np.floor(g).astype(int), 0, 31)
        f = _smoothstep(g - i)
        n = self.grime
        v = (
            n[i[..., 0], i[..., 1]] * (1 - f[..., 0]) * (1 - f[..., 1])
            + n[i[..., 0] + 1, i[..., 1]] * f[..., 0] * (1 - f[..., 1])
            + n[i[..., 0], i[..., 1] + 1] * (1 - f[..., 0]) * f[..., 1]
            + n[i[..., 0] + 1, i[..., 1] + 1] * f[..., 0] * f[..., 1]
        )
        return _srgb_to_linear(base * (0.75 + 0.35 * v[..., None]))

    def normal(self, p):
        return np.broadcast_to(np.array([0.0, 0.0, 1.0]), p.shape)

    def sample(self, rng, n):
        xy = rng.uniform(-FLOOR_HALF, FLOOR_HALF, (n, 2))
        return np.concatenate([xy, np.zeros((n, 1))], axis=1)


class Sphere:
    def __init__(self, centre, radius, colours, ks, shininess, stripes):
        self.c, self.r = np.asarray(centre, float), float(radius)
        self.colours = [np.asarray(c, float) for c in colours]
        self.ks, self.shininess, self.stripes = ks, shininess, stripes
        self.area = 4 * np.pi * radius**2

    def hit(self, o, d):
        oc = o - self.c
        b = _dot(oc, d)
        disc = b * b - (_dot(oc, oc) - self.r**2)
        root = np.sqrt(np.maximum(disc, 0.0))
        t = np.where(-b - root > EPS, -b - root, -b + root)
        return np.where((disc >= 0) & (t > EPS), t, np.inf)

    def normal(self, p):
        return (p - self.c) / self.r

    def albedo(self, p):
        n = self.normal(p)
        phi = np.arctan2(n[..., 1], n[..., 0])
        theta = np.arccos(np.clip(n[..., 2], -1, 1))
        s = _smoothstep(0.5 + 2.0 * np.sin(self.stripes * phi + 2.5 * np.sin(4 * theta)))
        c = self.colours[0] * (1 - s[..., None]) + self.colours[1] * s[..., None]
        return _srgb_to_linear(c)

    def sample(self, rng, n):
        v = rng.normal(size=(n, 3))
        return self.c + self.r * v / np.linalg.norm(v, axis=1, keepdims=True)


class Box:
    """A box standing on the floor, turned by ``yaw`` about z; each face a 3x3 tiled colour."""

    ks, shininess = 0.25, 24.0
    FACE_RGB = np.array([[0.9, 0.45, 0.1], [0.2, 0.6, 0.3], [0.85, 0.8, 0.2], [0.55, 0.25, 0.6], [0.95, 0.95, 0.9]])

    def __init__(self, centre, half, yaw):
        self.c, self.h = np.asarray(centre, float), np.asarray(half, float)
        c, s = np.cos(yaw), np.sin(yaw)
        self.rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])  # local -> world
        hx, hy, hz = self.h
        self.area = 8 * (hx * hy + hx * hz + hy * hz)

    def _local(self, v):
        # world -> local (rot is orthonormal); spelled out because matmul with a 3-wide inner axis is slow here
        r = self.rot
        return np.stack([v[..., 0] * r[0, j] + v[..., 1] * r[1, j] + v[..., 2] * r[2, j] for j in range(3)], -1)

    def hit(self, o, d):
        lo, ld = self._local(o - self.c), self._local(d)
        ld = np.where(np.abs(ld) < 1e-12, 1e-12, ld)
        t0, t1 = (-self.h - lo) / ld, (self.h - lo) / ld
        tmin, tmax = np.minimum(t0, t1).max(-1), np.maximum(t0, t1).min(-1)
        t = np.where(tmin > EPS, tmin, tmax)
        return np.where((tmax >= tmin) & (t > EPS), t, np.inf)

    def _face(self, p):
        lp = self._local(p - self.c)
        axis = np.argmax(np.abs(lp) / self.h, axis=-1)
        sign = np.sign(np.take_along_axis(lp, axis[..., None], -1))[..., 0]
        return lp, axis, sign

    def normal(self, p):
        _, axis, sign = self._face(p)
        local = np.eye(3)[axis] * sign[..., None]
        return np.einsum("ij,...j->...i", self.rot, local)

    def albedo(self, p):
        lp, axis, sign = self._face(p)
        face = np.where(axis == 2, 4, axis * 2 + (sign > 0))
        base = self.FACE_RGB[face]
        u = (lp / self.h + 1) * 1.5  # three tiles per face side
        edge = np.abs(u - np.round(u)) < 0.08
        on_face = np.eye(3, dtype=bool)[axis]
        groove = np.any(edge & ~on_face, axis=-1)
        return _srgb_to_linear(np.where(groove[..., None], 0.12, base))

    def sample(self, rng, n):
        face_area = np.array([self.h[1] * self.h[2], self.h[0] * self.h[2], self.h[0] * self.h[1]])
        axis = rng.choice(3, n, p=face_area / face_area.sum())
        lp = rng.uniform(-1, 1, (n, 3)) * self.h
        lp[np.arange(n), axis] = self.h[axis] * rng.choice([-1.0, 1.0], n)
        return np.einsum("ij,nj->ni", self.rot, lp) + self.c


class Cylinder:
    """An upright cylinder on the floor with a flat top; rings and stripes."""

    ks, shininess = 0.35, 40.0

    def __init__(self, base_xy, radius, height):
        self.xy, self.r, self.height = np.asarray(base_xy, float), float(radius), float(height)
        self.area = 2 * np.pi * radius * height + np.pi * radius**2

    def hit(self, o, d):
        ox, oy = o[..., 0] - self.xy[0], o[..., 1] - self.xy[1]
        dx, dy = d[..., 0], d[..., 1]
        a = np.maximum(dx * dx + dy * dy, 1e-12)
        b = ox * dx + oy * dy
        disc = b * b - a * (ox * ox + oy * oy - self.r**2)
        root = np.sqrt(np.maximum(disc, 0.0))
        best = np.full(np.broadcast(o[..., 0], d[..., 0]).shape, np.inf)
        for t in ((-b - root) / a, (-b + root) / a):
            z = o[..., 2] + t * d[..., 2]
            best = np.where((disc >= 0) & (t > EPS) & (z >= 0) & (z <= self.height) & (t < best), t, best)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self.height - o[..., 2]) / d[..., 2]
        px, py = ox + t * dx, oy + t * dy
        return np.where((t > EPS) & (px * px + py * py <= self.r**2) & (t < best), t, best)

    def _on_top(self, p):
        radial = np.hypot(p[..., 0] - self.xy[0], p[..., 1] - self.xy[1])
        return (self.height - p[..., 2]) < (self.r - radial)

    def normal(self, p):
        side = np.stack([p[..., 0] - self.xy[0], p[..., 1] - self.xy[1], np.zeros(p.shape[:-1])], -1) / self.r
        return np.where(self._on_top(p)[..., None], np.array([0.0, 0.0, 1.0]), side)

    def albedo(self, p):
        angle = np.arctan2(p[..., 1] - self.xy[1], p[..., 0] - self.xy[0])
        ring = (np.floor(p[..., 2] * 7) % 2) > 0
        stripe = np.sin(6 * angle) > 0.6
        radial = np.hypot(p[..., 0] - self.xy[0], p[..., 1] - self.xy[1])
        top = (np.floor(radial * 12) % 2) > 0
        green, white, teal = np.array([0.15, 0.55, 0.35]), np.array([0.92, 0.92, 0.88]), np.array([0.1, 0.35, 0.6])
        side = np.where(stripe[..., None], teal, np.where(ring[..., None], green, white))
        return _srgb_to_linear(np.where(self._on_top(p)[..., None], np.where(top[..., None], green, white), side))

    def sample(self, rng, n):
        on_top = rng.random(n) < np.pi * self.r**2 / self.area
        angle = rng.uniform(0, 2 * np.pi, n)
        radial = np.where(on_top, self.r * np.sqrt(rng.random(n)), self.r)
        z = np.where(on_top, self.height, rng.uniform(0, self.height, n))
        return np.stack([self.xy[0] + radial * np.cos(angle), self.xy[1] + radial * np.sin(angle), z], 1)


def build_scene(seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [
        Floor(rng),
        Sphere((0.1, 0.3, 0.65), 0.65, [(0.8, 0.15, 0.1), (0.95, 0.8, 0.25)], 0.5, 50.0, stripes=7),
        Sphere((-0.55, 1.35, 0.3), 0.3, [(0.1, 0.15, 0.55), (0.75, 0.8, 0.95)], 0.8, 120.0, stripes=3),
        Box((1.2, -0.55, 0.4), (0.4, 0.4, 0.4), np.radians(25)),
        Cylinder((-1.0, -0.75), 0.35, 1.1),
    ]


def trace(scene: list, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit distance (inf where none) and the index of the object hit, for rays o + t d."""
    ts = np.stack([np.broadcast_to(obj.hit(o, d), d.shape[:-1]) for obj in scene])
    idx = np.argmin(ts, axis=0)
    return np.take_along_axis(ts, idx[None], 0)[0], idx


def surface(scene: list, p: np.ndarray, idx: np.ndarray) -> Surface:
    normal, albedo = np.zeros_like(p), np.zeros_like(p)
    ks, shininess = np.zeros(p.shape[:-1]), np.ones(p.shape[:-1])
    for k, obj in enumerate(scene):
        m = idx == k
        if m.any():
            normal[m], albedo[m] = obj.normal(p[m]), obj.albedo(p[m])
            ks[m], shininess[m] = obj.ks, obj.shininess
    return Surface(normal, albedo, ks, shininess)


def shade(scene: list, p: np.ndarray, surf: Surface, to_eye: np.ndarray) -> np.ndarray:
    """Linear radiance leaving points ``p`` towards unit directions ``to_eye``: ambient + sun (shadowed)."""
    n = surf.normal
    lit = np.isinf(trace(scene[1:], p + 1e-3 * n, np.broadcast_to(SUN, p.shape))[0])  # the floor casts nothing
    diffuse = np.maximum(_dot(n, SUN), 0.0) * lit
    half = to_eye + SUN
    half /= np.linalg.norm(half, axis=-1, keepdims=True)
    spec = surf.ks * np.maximum(_dot(n, half), 0.0) ** surf.shininess * lit * (diffuse > 0)
    sky_fill = 0.6 + 0.4 * n[..., 2:3]  # surfaces facing up see more sky
    return surf.albedo * (AMBIENT_RGB * sky_fill + SUN_RGB * diffuse[..., None]) + SUN_RGB * spec[..., None]


def sky(d: np.ndarray) -> np.ndarray:
    up = np.clip(d[..., 2:3] * 1.6 + 0.08, 0.0, 1.0)
    horizon, zenith, ground = np.array([0.82, 0.86, 0.9]), np.array([0.3, 0.5, 0.85]), np.array([0.5, 0.47, 0.44])
    colour = horizon * (1 - up) + zenith * up
    return _srgb_to_linear(np.where(d[..., 2:3] < 0, ground, colour))


def to_display(linear: np.ndarray) -> np.ndarray:
    return np.clip(linear, 0.0, 1.0) ** (1 / 2.2)


def render(scene: list, c2w: np.ndarray, K: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) display-space image in [0, 1] seen by an OpenCV camera-to-world pose ``c2w``."""
    s = SUPERSAMPLE
    sub = (np.arange(s) + 0.5) / s
    u = (np.arange(width)[:, None] + sub[None]).reshape(-1)
    v = (np.arange(height)[:, None] + sub[None]).reshape(-1)
    uu, vv = np.meshgrid(u, v)  # pixel (i, j) covers [j, j + 1) x [i, i + 1); centres at +0.5
    cam = np.stack([(uu - K[0, 2]) / K[0, 0], (vv - K[1, 2]) / K[1, 1], np.ones_like(uu)], -1)
    dirs = np.einsum("ij,...j->...i", c2w[:3, :3], cam)
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    origin = np.broadcast_to(c2w[:3, 3], dirs.shape)
    t, idx = trace(scene, origin, dirs)
    colour = sky(dirs)
    hit = np.isfinite(t)
    p = origin[hit] + t[hit, None] * dirs[hit]
    colour[hit] = shade(scene, p, surface(scene, p, idx[hit]), -dirs[hit])
    # Average the sub-pixel rays in linear light, then encode for display.
    linear = colour.reshape(height, s, width, s, 3).mean(axis=(1, 3))
    return to_display(linear)


def camera_poses(n_views: int, steps: np.ndarray | None = None) -> np.ndarray:
    """(n, 4, 4) OpenCV camera-to-world poses on a ring of ``n_views`` cameras around ``TARGET``, right side up
    (world z up); ``steps`` (fractional ring positions) places cameras elsewhere on the same path, e.g. 2.5 halfway
    between ring cameras 2 and 3."""
    i = np.arange(n_views, dtype=np.float64) if steps is None else np.asarray(steps, dtype=np.float64)
    azimuth = 2 * np.pi * i / n_views
    elevation = np.radians(28 + 12 * np.sin(2 * np.pi * 3 * i / n_views))  # rises and falls three times per turn
    radius = 4.6 + 0.4 * np.cos(2 * np.pi * 2 * i / n_views)
    eye = TARGET + radius[:, None] * np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], 1
    )
    forward = TARGET - eye
    forward /= np.linalg.norm(forward, axis=1, keepdims=True)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    down = np.cross(forward, right)
    c2w = np.tile(np.eye(4), (len(i), 1, 1))
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2], c2w[:, :3, 3] = right, down, forward, eye
    return c2w


def intrinsics(width: int, height: int) -> np.ndarray:
    focal = 0.5 * width / np.tan(np.radians(55) / 2)  # 55 degrees horizontal field of view
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])


def project(points: np.ndarray, c2w: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions (V, P, 2) and depths (V, P) of world points in OpenCV cameras ``c2w`` (V, 4, 4)."""
    rot, eye = c2w[:, :3, :3], c2w[:, :3, 3]
    cam = np.einsum("vji,vpj->vpi", rot, points[None] - eye[:, None])  # R^T (p - eye)
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = cam[..., :2] / z[..., None] * K[[0, 1], [0, 1]] + K[:2, 2]
    return xy, z


def seed_points(scene: list, rng: np.random.Generator, c2w: np.ndarray, K: np.ndarray, width: int, height: int):
    """An SfM-like cloud: surface samples seen by at least two views, with the radiance averaged over the views
    that see them, small position and colour noise, and tracks (per view: visible and where)."""
    # Objects are denser than the floor, as feature matching favours textured foreground.
    weights = np.array([obj.area * (0.35 if isinstance(obj, Floor) else 1.0) for obj in scene])
    counts = rng.multinomial(2 * N_POINTS, weights / weights.sum())
    pts = np.concatenate([obj.sample(rng, n) for obj, n in zip(scene, counts)])
    owner = np.repeat(np.arange(len(scene)), counts)
    xy, z = project(pts, c2w, K)
    eye = c2w[:, :3, 3]
    to_pt = pts[None] - eye[:, None]
    dist = np.linalg.norm(to_pt, axis=-1)
    t, _ = trace(scene, np.broadcast_to(eye[:, None], to_pt.shape), to_pt / dist[..., None])
    normal = surface(scene, pts, owner).normal
    # Half a pixel of margin keeps the noisy points' projections inside the image too.
    inside = np.all((xy >= 0.5) & (xy <= [width - 0.5, height - 0.5]), axis=-1)
    seen = inside & (z > 0) & (np.abs(t - dist) < 1e-3 * dist) & (_dot(normal[None], -to_pt) > 0)
    keep = np.flatnonzero(seen.sum(0) >= 2)[:N_POINTS]
    pts, owner, seen, xy = pts[keep], owner[keep], seen[:, keep], xy[:, keep]
    # Radiance towards each view that sees the point, averaged: what an SfM pipeline would colour it.
    views, cols = np.nonzero(seen)
    to_eye = eye[views] - pts[cols]
    to_eye /= np.linalg.norm(to_eye, axis=-1, keepdims=True)
    surf = surface(scene, pts[cols], owner[cols])
    radiance = to_display(shade(scene, pts[cols], surf, to_eye))
    colour = np.zeros((len(pts), 3))
    np.add.at(colour, cols, radiance)
    colour /= seen.sum(0)[:, None]
    noisy = pts + rng.normal(scale=0.004, size=pts.shape)
    rgb = np.clip(np.round((colour + rng.normal(scale=0.01, size=colour.shape)) * 255), 0, 255).astype(np.uint8)
    return noisy, rgb, seen, xy


def _ply_bytes(xyz: np.ndarray, rgb: np.ndarray) -> bytes:
    """ASCII PLY with float x y z and uchar red green blue, the layout nerfstudio's ns-process-data writes."""
    header = (
        f"ply\nformat ascii 1.0\nelement vertex {len(xyz)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    lines = [f"{x:.6f} {y:.6f} {z:.6f} {r} {g} {b}" for (x, y, z), (r, g, b) in zip(xyz.tolist(), rgb.tolist())]
    return (header + "\n".join(lines) + "\n").encode()


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def _write_colmap(model: Path, c2w, K, width, height, names, xyz, rgb, seen, xy) -> None:
    model.mkdir(parents=True, exist_ok=True)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    camera = colmap.ColmapCamera(1, "PINHOLE", width, height, np.array([fx, fy, cx, cy]))
    colmap.write_cameras_binary([camera], model / "cameras.bin")
    w2c = np.linalg.inv(c2w)
    qvecs = colmap.rotmat_to_qvec(w2c[:, :3, :3])
    images, point2d_index = [], np.full(seen.shape, -1)
    for v, name in enumerate(names):
        ids = np.flatnonzero(seen[v])
        point2d_index[v, ids] = np.arange(len(ids))
        images.append(colmap.ColmapImage(v + 1, qvecs[v], w2c[v, :3, 3], 1, name, xy[v, ids], ids + 1))
    colmap.write_images_binary(images, model / "images.bin")
    # Tracks are point-major: for each point, the views (image id = view + 1) that see it.
    cols, views = np.nonzero(seen.T)
    offsets = np.concatenate([[0], np.cumsum(seen.sum(0))])
    reproj, _ = project(xyz, c2w, K)
    error = np.zeros(len(xyz))
    np.add.at(error, cols, np.linalg.norm(reproj[views, cols] - xy[views, cols], axis=-1))
    points = colmap.ColmapPoints(
        ids=np.arange(1, len(xyz) + 1, dtype=np.uint64),
        xyz=xyz,
        rgb=rgb,
        error=error / np.maximum(np.diff(offsets), 1),
        track_offsets=offsets,
        tracks=np.stack([views + 1, point2d_index[views, cols]], 1).astype(np.int32),
    )
    colmap.write_points3d_binary(points, model / "points3D.bin")


def _params(n_views, test_every, extra_test_views, width, height, seed) -> dict:
    return {
        "version": VERSION,
        "n_views": n_views,
        "test_every": test_every,
        "extra_test_views": extra_test_views,
        "width": width,
        "height": height,
        "seed": seed,
        "supersample": SUPERSAMPLE,
        "n_points": N_POINTS,
    }


def _is_scene(folder: Path, params: dict) -> bool:
    try:
        return json.loads((folder / "scene.json").read_text()) == params
    except (OSError, json.JSONDecodeError):
        return False


def generate_demo_scene(
    out_dir: str | os.PathLike,
    *,
    n_views: int = 48,
    test_every: int = 8,
    extra_test_views: int = 34,
    width: int = 160,
    height: int = 120,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Render the demo scene into ``out_dir`` (unless it already holds this exact scene) and return the folder.

    ``scene.json`` records the parameters, so a differently parameterised folder is regenerated; ``overwrite``
    regenerates regardless. A non-empty folder that is not a demo scene is never touched. The scene is built in
    a temporary sibling folder and renamed into place, so an interrupted run leaves nothing half-written and
    concurrent runs (parallel test sessions) do not trip over each other.

    The ``n_views`` ring cameras are the SfM views (seed points, COLMAP tracks); views 0, ``test_every``,
    2 ``test_every``, ... of them are held out, and ``extra_test_views`` more held-out views lie on the same
    path, each halfway between two ring cameras, so that held-out PSNR averages over enough views to resolve
    tenths of a dB (6 views spread a method's score by ~1 dB from seed to seed). The extra views change neither
    the training images nor the seed cloud.
    """
    out = Path(out_dir)
    params = _params(n_views, test_every, extra_test_views, width, height, seed)
    if n_views < 2 or test_every < 2 or not 0 <= extra_test_views <= n_views or width < 8 or height < 8:
        raise SplatpackError(
            "demo scene needs n_views >= 2, test_every >= 2, 0 <= extra_test_views <= n_views and at least 8x8 pixels"
        )
    if not overwrite and _is_scene(out, params):
        return out
    if out.is_dir() and any(out.iterdir()) and not (out / "scene.json").is_file():
        raise SplatpackError("folder exists and is not a splatpack demo scene; choose another folder", out)
    if out.exists() and not out.is_dir():
        raise SplatpackError("not a folder", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    work.chmod(0o755)  # mkdtemp makes it private; the scene is an ordinary folder
    try:
        _write_scene(work, params)
        # Another run may have finished the same scene meanwhile: keep it rather than swap it under its reader.
        if overwrite or not _is_scene(out, params):
            if out.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
                os.replace(out, old / out.name)
                shutil.rmtree(old)
            try:
                os.rename(work, out)
            except OSError as err:
                if not _is_scene(out, params):
                    raise SplatpackError(
                        "another process replaced the folder while the scene was generated", out
                    ) from err
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _write_scene(out: Path, params: dict) -> None:
    n_views, test_every, width, height = params["n_views"], params["test_every"], params["width"], params["height"]
    n_extra = params["extra_test_views"]
    (out / "images").mkdir()
    scene = build_scene(params["seed"])
    ring, K = camera_poses(n_views), intrinsics(width, height)
    # Extra held-out views sit halfway between two ring cameras, spread evenly around the ring.
    between = np.floor(np.arange(n_extra) * n_views / max(n_extra, 1)) + 0.5
    c2w = np.concatenate([ring, camera_poses(n_views, between)])
    names = [f"frame_{i:05d}.png" for i in range(n_views + n_extra)]
    for pose, name in zip(c2w, names):
        rgb8 = np.round(render(scene, pose, K, width, height) * 255).astype(np.uint8)
        ok, png = cv2.imencode(".png", rgb8[:, :, ::-1])
        if not ok:
            raise SplatpackError("PNG encoding failed", out / "images" / name)
        with atomic_output(out / "images" / name) as tmp:
            tmp.write_bytes(png.tobytes())

    rng = np.random.default_rng([params["seed"], 1])
    xyz, rgb, seen, xy = seed_points(scene, rng, ring, K, width, height)
    with atomic_output(out / "sparse_pc.ply") as tmp:
        tmp.write_bytes(_ply_bytes(xyz, rgb))
    # The extra held-out views are registered images without keypoints: they took no part in the SfM.
    seen = np.concatenate([seen, np.zeros((n_extra, seen.shape[1]), bool)])
    xy = np.concatenate([xy, np.zeros((n_extra, *xy.shape[1:]))])
    _write_colmap(out / "colmap" / "sparse" / "0", c2w, K, width, height, names, xyz, rgb, seen, xy)

    files = [f"images/{name}" for name in names]
    test = [f for i, f in enumerate(files) if i >= n_views or i % test_every == 0]
    train = [f for i, f in enumerate(files) if i < n_views and i % test_every != 0]
    transforms = {
        "camera_model": "OPENCV",
        "fl_x": K[0, 0],
        "fl_y": K[1, 1],
        "cx": K[0, 2],
        "cy": K[1, 2],
        "w": width,
        "h": height,
        "k1": 0.0,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
        # transforms.json and the COLMAP model share one world (z up); without this key nerfstudio would assume
        # ns-process-data's axis swap because colmap/sparse/0 exists.
        "applied_transform": np.eye(4)[:3].tolist(),
        "ply_file_path": "sparse_pc.ply",
        "train_filenames": train,
        "val_filenames": test,
        "test_filenames": test,
        "frames": [
            {"file_path": f, "transform_matrix": (pose @ GL_TO_CV).tolist(), "colmap_im_id": i + 1}
            for i, (f, pose) in enumerate(zip(files, c2w))
        ],
    }
    _write_text(out / "transforms.json", json.dumps(transforms, indent=2))
    # nerfstudio's COLMAP parser reads its split from these lists (names relative to images/).
    for key, subset in (("train", train), ("val", test), ("test", test)):
        _write_text(out / f"{key}_list.txt", "".join(f"{Path(f).name}\n" for f in subset))
    _write_text(out / "scene.json", json.dumps(params, indent=2))
