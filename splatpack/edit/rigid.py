"""Similarity transforms of a whole scene, ``x -> s R x + t``: centres, rotations, scales and SH move together.

Rotations act in the file's own frame as right-handed rotations. Euler angles are extrinsic x, then y, then z
(degrees); splat-transform's ``-r``/``-t`` act in PlayCanvas's engine frame, whose x and y axes are the
file's negated, so its ``-r a,b,c`` is ``-r -a -b c`` here (and ``-t a,b,c`` is ``-t -a -b c``).
"""

from __future__ import annotations

import math

import numpy as np

from splatpack.errors import SplatpackError
from splatpack.scene import Splats
from splatpack.sh import sh_basis_terms

# Directions used to fit the per-band SH rotation matrices: more than the 7 unknowns of the largest band.
_FIT_DIRECTIONS = 64


def _f64(a) -> np.ndarray:
    """A float64 numpy copy of an array-like or a torch tensor (on any device)."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.array(a, dtype=np.float64)


def sh_rotation(rot, degree: int) -> list[np.ndarray]:
    """Per band l = 1..degree, the (2l+1, 2l+1) float64 matrix D_l with ``Y_l(rot d) = D_l Y_l(d)`` for unit d.

    Rotating a scene by ``rot`` maps each band's coefficients c_l to ``D_l c_l``: the colour seen along
    ``rot d`` afterwards equals the colour seen along d before. Found by an exact least-squares fit over
    sample directions (the band is closed under rotation), which avoids convention-specific Wigner formulas;
    the basis is the renderer's (``splatpack.sh``), evaluated in numpy.
    """
    rot = _f64(rot)
    dirs = np.random.default_rng(0).standard_normal((_FIT_DIRECTIONS, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    before = np.stack(sh_basis_terms(degree, *dirs.T), axis=-1)
    after = np.stack(sh_basis_terms(degree, *(dirs @ rot.T).T), axis=-1)
    mats = []
    for l in range(1, degree + 1):
        band = slice(l * l, (l + 1) * (l + 1))
        # after = before @ D^T  ->  D^T = lstsq(before, after)
        mats.append(np.linalg.lstsq(before[:, band], after[:, band], rcond=None)[0].T)
    return mats


def rotate_sh(shN, rot):
    """Higher SH bands (N, K, 3) of Gaussians rotated by ``rot`` (3x3), band by band (float64 inside); numpy
    arrays or torch tensors, returned as they came."""
    degree = round(math.sqrt(shN.shape[1] + 1)) - 1
    numpy = isinstance(shN, np.ndarray)
    if degree == 0:
        return shN.copy() if numpy else shN.clone()
    mats = sh_rotation(rot, degree)
    bands = [slice(l * l - 1, (l + 1) * (l + 1) - 1) for l in range(1, degree + 1)]
    if numpy:
        rest = shN.astype(np.float64)
        rotated = [np.einsum("ij,njc->nic", mat, rest[:, band]) for mat, band in zip(mats, bands)]
        return np.concatenate(rotated, axis=1).astype(shN.dtype)
    import torch

    rest = shN.double()
    rotated = [torch.einsum("ij,njc->nic", torch.from_numpy(mat), rest[:, band]) for mat, band in zip(mats, bands)]
    return torch.cat(rotated, dim=1).to(shN.dtype)


def quat_wxyz(rot) -> np.ndarray:
    """(w, x, y, z) float64 unit quaternion of a rotation matrix."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(_f64(rot)).as_quat()
    return np.array([w, x, y, z])


def quat_from_matrix(rot):
    """(w, x, y, z) unit quaternion of a rotation matrix, as a float64 torch tensor."""
    import torch

    return torch.from_numpy(quat_wxyz(rot))


def quat_multiply(a, b):
    """Hamilton product of (..., 4) quaternions (w, x, y, z), numpy arrays or torch tensors."""
    aw, ax, ay, az = (a[..., i] for i in range(4))
    bw, bx, by, bz = (b[..., i] for i in range(4))
    parts = [
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ]
    if isinstance(a, np.ndarray):
        return np.stack(parts, axis=-1)
    import torch

    return torch.stack(parts, dim=-1)


def euler_matrix(degrees: tuple[float, float, float]) -> np.ndarray:
    """Rotation about x, then y, then z (fixed axes) by ``degrees``, as a float64 3x3 numpy matrix."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("xyz", list(degrees), degrees=True).as_matrix()


def quaternion_matrix(wxyz: tuple[float, float, float, float]) -> np.ndarray:
    """Rotation of the quaternion (w, x, y, z) (any non-zero norm) as a float64 3x3 numpy matrix."""
    from scipy.spatial.transform import Rotation

    w, x, y, z = wxyz
    if not all(math.isfinite(v) for v in wxyz) or w * w + x * x + y * y + z * z == 0:
        raise SplatpackError(f"quaternion {tuple(wxyz)} is not a rotation (it must be finite and non-zero)")
    return Rotation.from_quat([x, y, z, w]).as_matrix()


def check_rotation(rot) -> None:
    """Refuse a 3x3 matrix (numpy or torch) that is not a proper rotation."""
    r = _f64(rot)
    if not np.allclose(r @ r.T, np.eye(3), rtol=1e-5, atol=1e-4) or float(np.linalg.det(r)) < 0:
        raise SplatpackError("the transform is not a rotation (orthonormal, determinant +1)")


def similarity(
    splats: Splats,
    *,
    rotation=None,
    translation=None,
    scale: float = 1.0,
) -> Splats:
    """``x -> scale * rotation @ x + translation`` applied to the whole scene (computed in float64).

    Centres move, each Gaussian's orientation is pre-multiplied by the rotation, log scales grow by log(scale)
    and the SH bands are rotated so every Gaussian shows the colour it showed before along the rotated
    direction; opacities and the DC colour are unchanged. ``rotation`` (3x3) and ``translation`` (3,) are
    numpy arrays, torch tensors or sequences; the scene keeps its array kind (a numpy scene needs no torch).
    """
    if not (math.isfinite(scale) and scale > 0):
        raise SplatpackError(f"scale factor must be a positive finite number, got {scale}")
    if rotation is not None:
        check_rotation(rotation)
    if splats.is_numpy:
        return _similarity_numpy(splats, rotation, translation, scale)
    import torch

    rot = torch.eye(3, dtype=torch.float64) if rotation is None else torch.as_tensor(rotation).double()
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


def _similarity_numpy(splats: Splats, rotation, translation, scale: float) -> Splats:
    rot = np.eye(3) if rotation is None else _f64(rotation)
    shift = np.zeros(3) if translation is None else _f64(translation)
    dtype = splats.dtype
    means = scale * (splats.means.astype(np.float64) @ rot.T) + shift
    quats, shN = splats.quats, splats.shN
    if rotation is not None:
        q = np.broadcast_to(quat_wxyz(rot), (len(splats), 4))
        quats = quat_multiply(q, splats.quats.astype(np.float64)).astype(dtype)
        shN = rotate_sh(splats.shN, rot)
    return Splats(
        means=means.astype(dtype),
        quats=quats.copy(),
        log_scales=(splats.log_scales.astype(np.float64) + np.log(scale)).astype(dtype),
        opacity_logits=splats.opacity_logits.copy(),
        sh0=splats.sh0.copy(),
        shN=shN.copy(),
    )
