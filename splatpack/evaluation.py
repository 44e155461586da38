"""One evaluation path: render a scene from a set of views, score the renders, and score files after a round trip.

- ``Views``: cameras, their image sizes and (optionally) the images they should show, from a dataset's
  ``CameraSet`` or from synthetic cameras (``splatpack.render.cameras``);
- ``render_views``: renders them a few views at a time without gradients, so memory stays at one batch's render;
- ``score``: mean PSNR / SSIM over views (``splatpack.metrics``), and LPIPS when its weights are on disk;
- ``evaluate``: both, plus the render time per view;
- ``round_trip``: for each format, write the scene (``splatpack.io.write``, atomic), read the file back and
  evaluate what was decoded, so the format's losses count;
- ``attribute_errors``: per-attribute error of a decoded scene against its source, Gaussians matched by centre.

``splatpack demo``, the nerfstudio export report, and the benchmarks all measure through these functions.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from splatpack import io as sio
from splatpack.io.files import path_size
from splatpack.metrics import local_lpips, lpips, psnr, ssim
from splatpack.render import render_splats
from splatpack.scene import Splats

QUALITY = ("psnr", "ssim", "lpips")  # the image-quality keys of ``score``'s result


@dataclass
class Views:
    """Cameras to render (world-to-camera, OpenCV axes) and, for scoring, what each one should show."""

    viewmats: Tensor  # (C, 4, 4)
    Ks: Tensor  # (C, 3, 3)
    sizes: Sequence[tuple[int, int]]  # (width, height) of each view
    images: Sequence[Tensor] | None = None  # (H, W, 3), or RGBA (H, W, 4) composited over the background
    background: Tensor | None = None  # (3,) composited behind the renders (and RGBA images); None: black
    near_plane: float = 0.01  # Gaussians nearer than this (in the scene's units) are culled

    def __len__(self) -> int:
        return self.viewmats.shape[0]

    @classmethod
    def of_cameras(cls, cameras) -> Views:
        """The views of a ``splatpack.datasets`` ``CameraSet`` (one size, images (C, H, W, 3))."""
        sizes = [(cameras.width, cameras.height)] * len(cameras.images)
        return cls(cameras.viewmats, cameras.Ks, sizes, cameras.images)

    def moved(self, viewmats: Tensor, near_plane: float) -> Views:
        """The same views with other poses (the scene mapped to another frame) and that frame's near plane."""
        return dataclasses.replace(self, viewmats=viewmats, near_plane=near_plane)


def _render_chunks(splats: Splats, views: Views, batch: int, backend: str) -> Iterator[tuple[int, Tensor]]:
    """(index of the first view, (B, H, W, 3) renders in [0, 1] over the background) for up to ``batch``
    consecutive views of one size at a time."""
    i = 0
    while i < len(views):
        end = i + 1
        while end < min(i + batch, len(views)) and views.sizes[end] == views.sizes[i]:
            end += 1
        width, height = views.sizes[i]
        with torch.no_grad():
            r = render_splats(
                splats, views.viewmats[i:end], views.Ks[i:end], width, height,
                near_plane=views.near_plane, backend=backend,
            )  # fmt: skip
        rgb = r.rgb if views.background is None else r.rgb + (1 - r.alpha) * views.background
        yield i, rgb.clamp(0, 1)
        i = end


def render_views(splats: Splats, views: Views, *, batch: int = 4, backend: str = "auto") -> list[Tensor]:
    """(H, W, 3) renders in [0, 1], one per view, over ``views.background``; up to ``batch`` consecutive views
    of one size are rendered together."""
    return [img for _, rgb in _render_chunks(splats, views, batch, backend) for img in rgb]


@functools.lru_cache(maxsize=1)
def _lpips_model() -> torch.nn.Module | None:
    return local_lpips()[0]


def _view_scores(pred: Tensor, gt: Tensor, background: Tensor | None) -> dict[str, float]:
    if gt.shape[-1] == 4:  # composite RGBA ground truth over the same background as the render
        bg = torch.zeros(3) if background is None else background
        gt = gt[..., :3] * gt[..., 3:] + (1 - gt[..., 3:]) * bg
    scores = {"psnr": psnr(pred, gt), "ssim": ssim(pred, gt)}
    if (lpips_model := _lpips_model()) is not None:
        scores["lpips"] = lpips(pred, gt, lpips_model)
    return scores


def _mean(per_view: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([v[k] for v in per_view])) for k in QUALITY if per_view and k in per_view[0]}


def score(renders: Sequence[Tensor], images: Sequence[Tensor], background: Tensor | None = None) -> dict:
    """Mean over views of PSNR and SSIM (and LPIPS when its weights are on disk) of ``renders`` against
    ``images``; RGBA images are composited over ``background`` (black when None) first."""
    return _mean([_view_scores(pred, gt, background) for pred, gt in zip(renders, images, strict=True)])


def evaluate(splats: Splats, views: Views, *, batch: int = 4, backend: str = "auto") -> dict:
    """``score`` of ``splats`` rendered from ``views`` against their images, the view count and render s/view
    (empty without views). Renders are scored as they come, so memory stays at one chunk's render."""
    per_view, seconds = [], 0.0
    chunks = _render_chunks(splats, views, batch, backend)
    while True:
        start = time.perf_counter()
        chunk = next(chunks, None)  # rendering happens here: only it is timed
        seconds += time.perf_counter() - start
        if chunk is None:
            break
        first, rgb = chunk
        per_view += [_view_scores(img, views.images[first + j], views.background) for j, img in enumerate(rgb)]
    if not per_view:
        return {}
    return {**_mean(per_view), "views": len(per_view), "render_seconds_per_view": seconds / len(per_view)}


@dataclass
class RoundTrip:
    format: str
    path: Path
    bytes: int
    num_gaussians: int  # decoded
    scores: dict  # ``evaluate``'s result for the decoded scene; empty without views to score against


def round_trip(
    scene: Splats,
    formats: Iterable[str],
    out_dir: str | os.PathLike,
    views: Views | None,
    *,
    options: Mapping[str, dict] | None = None,
    batch: int = 4,
) -> list[RoundTrip]:
    """Write ``out_dir/scene.<format>`` for each format (writer options from ``options[format]``), read it back
    and evaluate the decoded scene on ``views`` (skipped when None or without images; with no views, the scores
    are empty). One decoded scene is alive at a time."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for fmt in formats:
        path = out_dir / f"scene.{fmt}"
        sio.write(scene, path, format=fmt, **(options or {}).get(fmt, {}))
        results.append(score_file(path, views, format=fmt, batch=batch))
    return results


def score_file(path: Path, views: Views | None, *, format: str | None = None, batch: int = 4) -> RoundTrip:
    """Read a written file back and evaluate the decoded scene on ``views`` (no scores without images)."""
    decoded = sio.read(path, format)
    scores = evaluate(decoded, views, batch=batch) if views is not None and views.images is not None else {}
    return RoundTrip(format or sio.detect_format(path), path, path_size(path), len(decoded), scores)


def attribute_errors(src: Splats, decoded: Splats) -> dict[str, float]:
    """Max, mean and RMS absolute error per attribute, each source Gaussian matched to the nearest decoded centre
    (formats may reorder Gaussians). Keys ``<attribute>_{max,mean,rmse}`` for means, quat_deg (rotation angle
    between the unit quaternions, degrees), log_scales, opacity, sh0 and, when the source has them, shN."""
    _, idx = cKDTree(decoded.means.numpy()).query(src.means.numpy(), workers=-1)
    d = decoded[torch.from_numpy(idx)]
    dot = (d.unit_quats * src.unit_quats).sum(1).abs().clamp(max=1)
    diffs = {
        "means": (d.means - src.means).abs(),
        "quat_deg": torch.rad2deg(2 * torch.acos(dot)),
        "log_scales": (d.log_scales - src.log_scales).abs(),
        "opacity": (d.opacities - src.opacities).abs(),
        "sh0": (d.sh0 - src.sh0).abs(),
    }
    if src.shN.shape[1]:
        # A format that drops the higher bands (.splat) decodes them as zeros.
        shN = d.shN if d.shN.shape[1] == src.shN.shape[1] else torch.zeros_like(src.shN)
        diffs["shN"] = (shN - src.shN).abs()
    out = {}
    for name, e in diffs.items():
        e = e.double()
        out[f"{name}_max"] = float(e.max())
        out[f"{name}_mean"] = float(e.mean())
        out[f"{name}_rmse"] = float(e.pow(2).mean().sqrt())
    return out
