"""Brute-force oracle for the renderer tests: every pixel sees every Gaussian, one Gaussian at a time.

Deliberately plain and independent of splatpack.render: full 3x3 covariances, an explicit matrix inverse,
gsplat's own SH code, no tiles, no radius culling (only near/far and det > 0), and gsplat's per-pixel loop
with its cut-offs written as in RasterizeToPixels3DGSFwd.cu. Tiny images only.
"""

from __future__ import annotations

import torch
from gsplat.cuda._torch_impl import _spherical_harmonics


def _rotation(q):
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return torch.stack(
        [
            torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        dim=-2,
    )


def dense_render(
    means,
    quats,
    scales,
    opacities,
    colors,
    viewmats,
    Ks,
    width,
    height,
    *,
    sh_degree=None,
    backgrounds=None,
    near_plane=0.01,
    far_plane=1e10,
    eps2d=0.3,
    rasterize_mode="classic",
    stats=None,
    contributions=None,
):
    """Returns rgb (C, H, W, 3), alpha (C, H, W, 1), depth (C, H, W, 1).

    ``stats`` (a dict), when given, receives how often each cut-off fired, so tests can show they were exercised.
    ``contributions`` (a dict), when given, receives per camera and Gaussian (C, N) "weight" (sum of alpha * T),
    "covered" (pixels composited into) and "dominant" (pixels where its weight is the largest, first one wins).
    """
    n_cams, n = viewmats.shape[0], means.shape[0]
    weight = torch.zeros(n_cams, n, dtype=means.dtype)
    covered = torch.zeros(n_cams, n, dtype=torch.int64)
    dominant = torch.zeros(n_cams, n, dtype=torch.int64)
    counts = {"stopped_pixels": 0, "clamped": 0, "skipped_faint": 0}
    rot = _rotation(quats)
    cov3d = rot @ torch.diag_embed(scales**2) @ rot.transpose(1, 2)
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=means.dtype), torch.arange(width, dtype=means.dtype), indexing="ij"
    )
    px, py = xs.reshape(-1) + 0.5, ys.reshape(-1) + 0.5
    rgbs, alphas, depths = [], [], []
    for c in range(viewmats.shape[0]):
        R, t, K = viewmats[c, :3, :3], viewmats[c, :3, 3], Ks[c]
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        p = means @ R.T + t
        if sh_degree is None:
            col = colors
        else:
            campos = torch.linalg.inv(viewmats[c])[:3, 3]
            col = torch.clamp_min(_spherical_harmonics(sh_degree, means - campos, colors) + 0.5, 0.0)
        rgb = torch.zeros(height * width, 3, dtype=means.dtype)
        dep = torch.zeros(height * width, dtype=means.dtype)
        T = torch.ones(height * width, dtype=means.dtype)
        done = torch.zeros(height * width, dtype=torch.bool)
        best_w = torch.zeros(height * width, dtype=means.dtype)
        best_id = torch.full((height * width,), -1, dtype=torch.int64)
        for i in torch.argsort(p[:, 2], stable=True).tolist():
            x, y, z = p[i]
            if not (near_plane < z < far_plane):
                continue
            # Jacobian taken at x/z, y/z clamped to the image's tan-FOV limits extended by 30%.
            tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
            xc = z * torch.clamp(x / z, -(cx / fx + 0.3 * tan_x), (width - cx) / fx + 0.3 * tan_x)
            yc = z * torch.clamp(y / z, -(cy / fy + 0.3 * tan_y), (height - cy) / fy + 0.3 * tan_y)
            J = torch.stack(
                [torch.stack([fx / z, 0 * z, -fx * xc / z**2]), torch.stack([0 * z, fy / z, -fy * yc / z**2])]
            )
            cov2d = J @ R @ cov3d[i] @ R.T @ J.T
            det_orig = torch.linalg.det(cov2d)
            cov2d = cov2d + eps2d * torch.eye(2, dtype=means.dtype)
            det = torch.linalg.det(cov2d)
            if det <= 0:
                continue
            conic = torch.linalg.inv(cov2d)
            o = opacities[i]
            if rasterize_mode == "antialiased":
                o = o * torch.sqrt(torch.clamp(det_orig / det, min=0.0))
            dx = px - (fx * x / z + cx)
            dy = py - (fy * y / z + cy)
            sigma = 0.5 * (conic[0, 0] * dx * dx + conic[1, 1] * dy * dy) + conic[0, 1] * dx * dy
            alpha = torch.clamp_max(o * torch.exp(-sigma), 0.999)
            skip = done | (sigma < 0) | (alpha < 1.0 / 255.0)
            next_T = T * (1 - alpha)
            stop = ~skip & (next_T <= 1e-4)
            counts["stopped_pixels"] += int(stop.sum())
            counts["clamped"] += int((~skip & ~stop & (alpha == 0.999)).sum())
            counts["skipped_faint"] += int((~done & (alpha < 1.0 / 255.0) & (alpha > 0)).sum())
            done = done | stop
            use = ~skip & ~stop
            w = torch.where(use, alpha * T, torch.zeros_like(T))
            weight[c, i], covered[c, i] = w.sum(), use.sum()
            best_id = torch.where(w > best_w, i, best_id)
            best_w = torch.maximum(best_w, w)
            rgb = rgb + w[:, None] * col[i]
            dep = dep + w * z
            T = torch.where(use, next_T, T)
        owners = best_id[best_id >= 0]
        dominant[c] = torch.bincount(owners, minlength=n)
        alpha_img = (1 - T)[:, None]
        if backgrounds is not None:
            rgb = rgb + backgrounds[c] * (1 - alpha_img)
        rgbs.append(rgb.reshape(height, width, 3))
        alphas.append(alpha_img.reshape(height, width, 1))
        depths.append((dep[:, None] / alpha_img.clamp_min(1e-10)).reshape(height, width, 1))
    if stats is not None:
        stats.update(counts)
    if contributions is not None:
        contributions.update(weight=weight, covered=covered, dominant=dominant)
    return torch.stack(rgbs), torch.stack(alphas), torch.stack(depths)
