"""Export a trained nerfstudio scene in the input data's own frame, with a quality report per file.

nerfstudio trains in a normalised frame: ``x_ns = s (A x + t)`` where ``[A | t]`` is the dataparser's
``dataparser_transform`` (a rotation plus translation) and ``s`` its ``dataparser_scale``. Exported files undo
it so they line up with the input cameras and point clouds in other tools: centres, rotations and scales
are mapped back, and the SH coefficients of degree 1-3 are rotated band by band.

Each exported file is read back and rendered from the held-out cameras (also mapped to the data frame); the
report gives its size and PSNR/SSIM against the held-out images, so it measures what a user of the file sees.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from splatpack.datasets.cameras import camera_to_viewmats
from splatpack.edit.rigid import quat_from_matrix, quat_multiply, rotate_sh
from splatpack.errors import SplatpackError
from splatpack.evaluation import QUALITY, Views, evaluate, round_trip, score_file
from splatpack.io.atomic import atomic_output
from splatpack.nerfstudio.convert import NEAR_PLANE, splats_of
from splatpack.scene import Splats


def _check_rotation(rot: torch.Tensor) -> None:
    eye = torch.eye(3, dtype=rot.dtype)
    if not torch.allclose(rot @ rot.T, eye, atol=1e-4) or float(torch.det(rot)) < 0:
        raise SplatpackError("the dataparser transform is not a rotation plus translation; cannot map the scene back")


def splats_to_data_frame(splats: Splats, transform: torch.Tensor, scale: float) -> Splats:
    """Map a scene from nerfstudio's frame (``x_ns = scale (A x + t)``, transform = [A | t]) to the data frame."""
    transform = transform.detach().cpu().double()
    rot, shift = transform[:3, :3], transform[:3, 3]
    _check_rotation(rot)
    back = rot.T  # data-frame rotation applied to everything
    dtype = splats.dtype
    means = (splats.means.double() / scale - shift) @ rot  # A^T (x/s - t), row-vector form
    quats = quat_multiply(quat_from_matrix(back).expand(len(splats), 4), splats.quats.double())
    shN = rotate_sh(splats.shN.double(), back)
    return Splats(
        means=means.to(dtype),
        quats=quats.to(dtype),
        log_scales=(splats.log_scales.double() - np.log(scale)).to(dtype),
        opacity_logits=splats.opacity_logits.clone(),
        sh0=splats.sh0.clone(),
        shN=shN.to(dtype),
    )


def data_frame_similarity(transform: torch.Tensor, scale: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(R, t, s) with ``x_data = s R x_ns + t``: the map ``splats_to_data_frame`` applies, as numbers a file can
    carry (``CompactScene``'s frame)."""
    transform = transform.detach().cpu().double()
    rot, shift = transform[:3, :3], transform[:3, 3]
    _check_rotation(rot)
    return rot.T.numpy(), (-rot.T @ shift).numpy(), 1.0 / scale


def viewmats_to_data_frame(viewmats: torch.Tensor, transform: torch.Tensor, scale: float) -> torch.Tensor:
    """World-to-camera matrices (C, 4, 4) in nerfstudio's frame -> the same cameras in the data frame.

    The camera moves rigidly with the scene; the scene's 1/scale shrink does not change the projection.
    """
    transform = transform.detach().to(viewmats).double()
    rot, shift = transform[:3, :3], transform[:3, 3]
    v = viewmats.double()
    out = v.clone()
    # x_cam = R_v x_ns + t_v with x_ns = s (A x + t)  ->  x_cam / s = (R_v A) x + (R_v t + t_v / s)
    out[:, :3, :3] = v[:, :3, :3] @ rot
    out[:, :3, 3] = (v[:, :3, :3] @ shift) + v[:, :3, 3] / scale
    return out.to(viewmats.dtype)


def _heldout_views(pipeline):
    """(images (H, W, 3|4) float in [0, 1], nerfstudio cameras) of the eval split, as the datamanager loaded them."""
    dm = pipeline.datamanager
    cached = getattr(dm, "cached_eval", None)
    dataset = dm.eval_dataset
    images = []
    for i in range(len(dataset)):
        image = cached[i]["image"] if cached is not None else dataset[i]["image"]
        image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        images.append(image.cpu())
    return images, dataset.cameras


def export_pipeline(pipeline, out_dir: str | os.PathLike, formats: Iterable[str], *, sog_preset: str) -> dict:
    """Write ``scene.<fmt>`` for each format and ``report.json`` into ``out_dir``; return the report.

    ``sog_preset`` is the SOG writer's quality preset (``splatpack.io.sog.PRESETS``).

    The report lists, per file, its size in bytes and the PSNR/SSIM of the held-out views rendered from the
    file as read back (so format losses count), next to the trained scene's own figures.
    """
    model = pipeline.model
    outputs = pipeline.datamanager.train_dataparser_outputs
    transform, scale = outputs.dataparser_transform, float(outputs.dataparser_scale)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    trained = splats_of(model)
    scene = splats_to_data_frame(trained, transform, scale)
    images, cameras = _heldout_views(pipeline)
    sizes = zip(cameras.width.flatten().tolist(), cameras.height.flatten().tolist(), strict=True)
    heldout = Views(
        viewmats=camera_to_viewmats(cameras.camera_to_worlds.float().cpu()),
        Ks=cameras.get_intrinsics_matrices().float(),
        sizes=[(int(w), int(h)) for w, h in sizes],
        images=images,
        background=model.background_color.detach().float().cpu(),
        near_plane=NEAR_PLANE,
    )
    # Training culls Gaussians nearer than NEAR_PLANE in nerfstudio's units; the same cut in the data frame is
    # NEAR_PLANE / scale (a floater right in front of a camera otherwise costs ~0.2 dB).
    heldout_data_frame = heldout.moved(viewmats_to_data_frame(heldout.viewmats, transform, scale), NEAR_PLANE / scale)

    report = {
        "frame": "input data (dataparser transform and scale undone)",
        "num_gaussians": len(scene),
        "sh_degree": scene.sh_degree,
        "heldout_views": len(images),
        "files": {},
    }
    if images:
        scores = evaluate(trained, heldout, batch=1)
        report.update({f"trained_{k}": scores[k] for k in QUALITY if k in scores})
    formats = list(formats)
    # A model with a compact form (splatpack-omg) writes it as .spk itself; any other scene is encoded post hoc.
    compact = "spk" in formats and hasattr(model, "compact_scene")
    plain = [f for f in formats if not (compact and f == "spk")]
    results = round_trip(scene, plain, out_dir, heldout_data_frame, options={"sog": {"preset": sog_preset}}, batch=1)
    if compact:
        from splatpack.io.spk import write_compact

        path = out_dir / "scene.spk"
        write_compact(model.compact_scene(data_frame_similarity(transform, scale)), path)
        results.append(score_file(path, heldout_data_frame, format="spk", batch=1))
    for r in results:
        entry = {"path": r.path.name, "bytes": r.bytes, "num_gaussians": r.num_gaussians}
        entry["bytes_per_gaussian"] = r.bytes / max(r.num_gaussians, 1)
        report["files"][r.path.name] = entry | {k: r.scores[k] for k in QUALITY if k in r.scores}
    with atomic_output(out_dir / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report
