"""Similarity transforms of a whole scene, ``x -> s R x + t``: centres, rotations, scales and SH move together.

Rotations act in the file's own frame as right-handed rotations. Euler angles are extrinsic x, then y, then z
(degrees); splat-transform's ``-r``/``-t`` act in PlayCanvas's engine frame, whose x and y axes are the
file's negated, so its ``-r a,b,c`` is ``-r -a -b c`` here (and ``-t a,b,c`` is ``-t -a -b c``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from splatpack.errors import SplatpackError
from splatpack.render.sh import sh_basis
from splatpack.scene import Splats

# Directions used to fit the per-band SH rotation matrices: more than the 7 unknowns of the largest band.
_FIT_DIRECTIONS = 64


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


def rotate_sh(shN: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Higher SH bands (N, K, 3) of Gaussians rotated by ``rot`` (3x3), band by band (float64 inside)."""
    degree = round(math.sqrt(shN.shape[1] + 1)) - 1
    if degree == 0:
        return shN.clone()
    rest = shN.double()
    bands = []
    for l, mat in enumerate(sh_rotation(rot, degree), start=1):
        bands.append(torch.einsum("ij,njc->nic", mat, rest[:, l * l - 1 : (l + 1) * (l + 1) - 1, :]))
    return torch.cat(bands, dim=1).to(shN.dtype)


def quat_from_matrix(rot: torch.Tensor) -> torch.Tensor:
    """(w, x, y, z) unit quaternion of a rotation matrix."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(rot.double().numpy()).as_quat()
    return torch.tensor([w, x, y, z], dtype=torch.float64)


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
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


def euler_matrix(degrees: tuple[float, float, float]) -> torch.Tensor:
    """Rotation about x, then y, then z (fixed axes) by ``degrees``, as a float64 3x3 matrix."""
    from scipy.spatial.transform import Rotation

    return torch.from_numpy(Rotation.from_euler("xyz", list(degrees), degrees=True).as_matrix())


def quaternion_matrix(wxyz: tuple[float, float, float, float]) -> torch.Tensor:
    """Rotation of the quaternion (w, x, y, z) (any non-zero norm) as a float64 3x3 matrix."""
    from scipy.spatial.transform import Rotation

    w, x, y, z = wxyz
    if not all(math.isfinite(v) for v in wxyz) or w * w + x * x + y * y + z * z == 0:
        raise SplatpackError(f"quaternion {tuple(wxyz)} is not a rotation (it must be finite and non-zero)")
    return torch.from_numpy(Rotation.from_quat([x, y, z, w]).as_matrix())


def check_rotation(rot: torch.Tensor) -> None:
    eye = torch.eye(3, dtype=torch.float64)
    rot = rot.double()
    if not torch.allclose(rot @ rot.T, eye, atol=1e-4) or float(torch.det(rot)) < 0:
        raise SplatpackError("the transform is not a rotation (orthonormal, determinant +1)")


def similarity(
    splats: Splats,
    *,
    rotation: torch.Tensor | None = None,
    translation: tuple[float, float, float] | torch.Tensor | None = None,
    scale: float = 1.0,
) -> Splats:
    """``x -> scale * rotation @ x + translation`` applied to the whole scene (computed in float64).

    Centres move, each Gaussian's orientation is pre-multiplied by the rotation, log scales grow by log(scale)
    and the SH bands are rotated so every Gaussian shows the colour it showed before along the rotated
    direction; opacities and the DC colour are unchanged.
    """
    if not (math.isfinite(scale) and scale > 0):
        raise SplatpackError(f"scale factor must be a positive finite number, got {scale}")
    rot = torch.eye(3, dtype=torch.float64) if rotation is None else rotation.double()
    check_rotation(rot)
    shift = torch.zeros(3, dtype=torch.float64) if translation is None else torch.as_tensor(translation).double()
    dtype = splats.dtype
    means = scale * (splats.means.double() @ rot.T) + shift
    quats = splats.quats
    shN = splats.shN
    if rotation is not None:
        quats = quat_multiply(quat_from_matrix(rot).expand(len(splats), 4), splats.quats.double()).to(dtype)
        shN = rotate_sh(splats.shN, rot)
    return Splats(
        means=means.to(dtype),
        quats=quats.clone(),
        log_scales=(splats.log_scales.double() + np.log(scale)).to(dtype),
        opacity_logits=splats.opacity_logits.clone(),
        sh0=splats.sh0.clone(),
        shN=shN.clone(),
    )
