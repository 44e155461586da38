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
from splatpack.errors import SplatpackError
from splatpack.io.atomic import atomic_output
from splatpack.io.files import path_size
from splatpack.nerfstudio.convert import NEAR_PLANE, splats_of
from splatpack.render.sh import sh_basis
from splatpack.scene import Splats

# Directions used to fit the per-band SH rotation matrices: more than the 7 unknowns of the largest band.
_FIT_DIRECTIONS = 64


def _check_rotation(rot: torch.Tensor) -> None:
    eye = torch.eye(3, dtype=rot.dtype)
    if not torch.allclose(rot @ rot.T, eye, atol=1e-4) or float(torch.det(rot)) < 0:
        raise SplatpackError("the dataparser transform is not a rotation plus translation; cannot map the scene back")


def sh_rotation(rot: torch.Tensor, degree: int) -> list[torch.Tensor]:
    """Per band l = 1..degree, the (2l+1, 2l+1) matrix D_l with ``Y_l(rot d) = D_l Y_l(d)`` for unit d.

    Rotating a scene by ``rot`` maps each band's coefficients c_l to ``D_l c_l``: the colour seen along
    ``rot d`` afterwards equals the colour seen along d before. Found by an exact least-squares fit over
    sample directions (the band is closed under rotation), which avoids convention-specific Wigner formulas.
    """
    rot = rot.double()
    g = torch.Generator().manual_seed(0)
    dirs = torch.nn.functional.normalize(torch.randn(_FIT_DIRECTIONS, 3, generator=g, dtype=torch.float64), dim=-1)
    before = sh_basis(degree, dirs)
    after = sh_basis(degree, dirs @ rot.T)
    mats = []
    for l in range(1, degree + 1):
        band = slice(l * l, (l + 1) * (l + 1))
        # after = before @ D^T  ->  D^T = lstsq(before, after)
        mats.append(torch.linalg.lstsq(before[:, band], after[:, band]).solution.T)
    return mats


def _quat_from_matrix(rot: torch.Tensor) -> torch.Tensor:
    """(w, x, y, z) unit quaternion of a rotation matrix."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(rot.double().numpy()).as_quat()
    return torch.tensor([w, x, y, z], dtype=torch.float64)


def _quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def splats_to_data_frame(splats: Splats, transform: torch.Tensor, scale: float) -> Splats:
    """Map a scene from nerfstudio's frame (``x_ns = scale (A x + t)``, transform = [A | t]) to the data frame."""
    transform = transform.detach().cpu().double()
    rot, shift = transform[:3, :3], transform[:3, 3]
    _check_rotation(rot)
    back = rot.T  # data-frame rotation applied to everything
    dtype = splats.dtype
    means = (splats.means.double() / scale - shift) @ rot  # A^T (x/s - t), row-vector form
    quats = _quat_multiply(_quat_from_matrix(back).expand(len(splats), 4), splats.quats.double())
    shN = splats.shN.double()
    if splats.sh_degree > 0:
        bands = []
        for l, mat in enumerate(sh_rotation(back, splats.sh_degree), start=1):
            band = shN[:, l * l - 1 : (l + 1) * (l + 1) - 1, :]
            bands.append(torch.einsum("ij,njc->nic", mat, band))
        shN = torch.cat(bands, dim=1)
    return Splats(
        means=means.to(dtype),
        quats=quats.to(dtype),
        log_scales=(splats.log_scales.double() - np.log(scale)).to(dtype),
        opacity_logits=splats.opacity_logits.clone(),
        sh0=splats.sh0.clone(),
        shN=shN.to(dtype),
    )


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


def render_views(
    splats: Splats, viewmats: torch.Tensor, cameras, background: torch.Tensor, near_plane: float
) -> list[torch.Tensor]:
    """Render ``splats`` from each camera (OpenCV world-to-camera ``viewmats``) over ``background``, culling
    Gaussians nearer than ``near_plane`` (in the scene's units)."""
    from splatpack.render import render_splats

    out = []
    Ks = cameras.get_intrinsics_matrices().float()
    with torch.no_grad():
        for i in range(viewmats.shape[0]):
            w, h = int(cameras.width[i].item()), int(cameras.height[i].item())
            r = render_splats(splats, viewmats[i : i + 1].float(), Ks[i : i + 1], w, h, near_plane=near_plane)
            out.append((r.rgb + (1 - r.alpha) * background).clamp(0, 1)[0])
    return out


def _score(renders: list[torch.Tensor], images: list[torch.Tensor], background: torch.Tensor) -> tuple[float, float]:
    from splatpack.metrics import psnr, ssim

    ps, ss = [], []
    for pred, gt in zip(renders, images):
        if gt.shape[-1] == 4:  # composite RGBA ground truth over the same background as the render
            gt = gt[..., :3] * gt[..., 3:] + (1 - gt[..., 3:]) * background
        ps.append(psnr(pred, gt))
        ss.append(ssim(pred, gt))
    return float(np.mean(ps)), float(np.mean(ss))


def export_pipeline(pipeline, out_dir: str | os.PathLike, formats: Iterable[str], *, sog_preset: str) -> dict:
    """Write ``scene.<fmt>`` for each format and ``report.json`` into ``out_dir``; return the report.

    ``sog_preset`` is the SOG writer's quality preset (``splatpack.io.sog.PRESETS``).

    The report lists, per file, its size in bytes and the PSNR/SSIM of the held-out views rendered from the
    file as read back (so format losses count), next to the trained scene's own figures.
    """
    from splatpack import io

    model = pipeline.model
    outputs = pipeline.datamanager.train_dataparser_outputs
    transform, scale = outputs.dataparser_transform, float(outputs.dataparser_scale)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    trained = splats_of(model)
    scene = splats_to_data_frame(trained, transform, scale)
    images, cameras = _heldout_views(pipeline)
    background = model.background_color.detach().float().cpu()
    viewmats_ns = camera_to_viewmats(cameras.camera_to_worlds.float().cpu())
    viewmats = viewmats_to_data_frame(viewmats_ns, transform, scale)

    report = {
        "frame": "input data (dataparser transform and scale undone)",
        "num_gaussians": len(scene),
        "sh_degree": scene.sh_degree,
        "heldout_views": len(images),
        "files": {},
    }
    if images:
        report["trained_psnr"], report["trained_ssim"] = _score(
            render_views(trained, viewmats_ns, cameras, background, NEAR_PLANE), images, background
        )
    for fmt in formats:
        path = out_dir / f"scene.{fmt}"
        io.write(scene, path, **({"preset": sog_preset} if fmt == "sog" else {}))
        decoded = io.read(path)
        entry = {"path": path.name, "bytes": path_size(path), "num_gaussians": len(decoded)}
        if images:
            # Training culls Gaussians nearer than NEAR_PLANE in nerfstudio's units; the same cut in the data
            # frame is NEAR_PLANE / scale (a floater right in front of a camera otherwise costs ~0.2 dB).
            views = render_views(decoded, viewmats, cameras, background, NEAR_PLANE / scale)
            entry["psnr"], entry["ssim"] = _score(views, images, background)
        report["files"][path.name] = entry
    with atomic_output(out_dir / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report
