"""Pure-torch 3DGS rasterizer: EWA projection + tile-based front-to-back alpha compositing.

It reproduces gsplat 1.5.3's CUDA rasterizer (same projection, same cut-offs) on any device and in any float
dtype, so it can train on a CPU and serve as the reference other backends are checked against.

Compositing works on (tile, Gaussian) intersection pairs sorted by (tile, depth). Tiles are processed in
chunks, each padded to its largest pair count, and every pixel of a chunk is evaluated at once; the
per-pixel stopping rule becomes a mask because transmittance only decreases. The compositing step is a
custom autograd function whose backward recomputes the chunk instead of storing per-pixel tensors, which
keeps memory at a few chunk-sized buffers whatever the scene size.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from splatpack.render.registry import Raster, RasterInputs, RasterOptions
from splatpack.render.sh import sh_to_rgb

# gsplat's cut-offs (RasterizeToPixels3DGSFwd.cu): alphas are capped below 1 (0.999 in gsplat 1.5.3, where
# the original 3DGS used 0.99), faint contributions are skipped, and a pixel stops before the Gaussian
# that would take its transmittance to 1e-4 or below. gsplat also skips sigma < 0, which cannot happen for
# the positive-definite conics built here, so only rounding noise of the polynomial form could trigger it.
ALPHA_MAX = 0.999
ALPHA_MIN = 1.0 / 255.0
T_MIN = 1e-4
# exp(-3.33^2 / 2) < 1/255, so no pixel outside 3.33 sigma can reach ALPHA_MIN: tile culling is exact.
RADIUS_SIGMAS = 3.33
# Pixel-pair evaluations per chunk: about 10 buffers this size are alive at once, and keeping them near
# cache size measured fastest (2^19 against 2^17..2^21 on the benchmark scenes).
CHUNK_ELEMENTS = 1 << 19
# Output does not depend on the tile size (culling is exact); 8x8 tiles waste fewer pixel-pair evaluations
# on a CPU than gsplat's 16x16 (about 30% faster forward + backward on the benchmark scenes).
DEFAULT_TILE_SIZE = 8


@dataclass
class Projection:
    """Per camera and Gaussian screen-space quantities, all (C, N, ...)."""

    means2d: Tensor  # (C, N, 2) pixel coordinates
    conics: Tensor  # (C, N, 3) inverse 2D covariance (a, b, c): [[a, b], [b, c]]
    depths: Tensor  # (C, N) camera-space z
    opacities: Tensor  # (C, N) opacity, times the antialiasing compensation when enabled
    radii: Tensor  # (C, N, 2) int32 bounding-box half sizes, 0 where culled


def rotation_matrices(quats: Tensor) -> Tensor:
    """(N, 3, 3) rotation matrices of (w, x, y, z) quaternions of any norm."""
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    rows = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(quats.shape[:-1] + (3, 3))


def project(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    near_plane: float,
    far_plane: float,
    eps2d: float,
    antialiased: bool,
) -> Projection:
    """EWA splatting of 3D Gaussians into C pinhole cameras (gsplat's fully fused projection)."""
    rot_view, t_view = viewmats[:, :3, :3], viewmats[:, :3, 3]
    means_c = torch.einsum("cij,nj->cni", rot_view, means) + t_view[:, None, :]
    depths = means_c[..., 2]
    in_range = (depths > near_plane) & (depths < far_plane)
    # Culled Gaussians still flow through the maths below; a safe depth keeps their (zero) gradients finite.
    z = torch.where(in_range, depths, torch.ones_like(depths))
    u, v = means_c[..., 0] / z, means_c[..., 1] / z

    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    means2d = torch.stack([fx * u + cx, fy * v + cy], dim=-1)

    # The affine approximation is taken at a point clamped to 1.3x the field of view (as gsplat), so
    # Gaussians far outside the image do not get absurdly stretched footprints.
    u_lim_pos, u_lim_neg = (width - cx) / fx + 0.15 * width / fx, cx / fx + 0.15 * width / fx
    v_lim_pos, v_lim_neg = (height - cy) / fy + 0.15 * height / fy, cy / fy + 0.15 * height / fy
    uc = torch.clamp(u, min=-u_lim_neg, max=u_lim_pos)
    vc = torch.clamp(v, min=-v_lim_neg, max=v_lim_pos)
    zero = torch.zeros_like(z)
    jac = torch.stack([fx / z, zero, -fx * uc / z, zero, fy / z, -fy * vc / z], dim=-1).reshape(z.shape + (2, 3))

    # cov2d = (J W R S)(J W R S)^T: one 2x3 factor per camera and Gaussian instead of full 3x3 covariances.
    rs = rotation_matrices(quats) * scales[:, None, :]
    factor = jac @ rot_view[:, None] @ rs[None]
    s00 = (factor[..., 0, :] ** 2).sum(-1)
    s11 = (factor[..., 1, :] ** 2).sum(-1)
    s01 = (factor[..., 0, :] * factor[..., 1, :]).sum(-1)
    det_orig = s00 * s11 - s01 * s01
    # Low-pass dilation: every splat covers at least about one pixel.
    s00, s11 = s00 + eps2d, s11 + eps2d
    det = s00 * s11 - s01 * s01
    valid = in_range & (det > 0)
    det_safe = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([s11 / det_safe, -s01 / det_safe, s00 / det_safe], dim=-1)

    opac = opacities.expand(z.shape)
    if antialiased:
        opac = opac * torch.sqrt(torch.clamp(det_orig / det_safe, min=0.0))

    with torch.no_grad():
        radius = torch.stack([s00, s11], dim=-1).clamp_min(0).sqrt().mul_(RADIUS_SIGMAS).ceil_()
        center = means2d.detach()
        on_screen = (center[..., 0] + radius[..., 0] > 0) & (center[..., 0] - radius[..., 0] < width)
        on_screen &= (center[..., 1] + radius[..., 1] > 0) & (center[..., 1] - radius[..., 1] < height)
        radii = torch.where((valid & on_screen)[..., None], radius, torch.zeros_like(radius)).to(torch.int32)
    return Projection(means2d=means2d, conics=conics, depths=depths, opacities=opac, radii=radii)


@dataclass
class TilePlan:
    """Intersection pairs sorted by (tile, depth) and the chunks the compositor walks through."""

    pair_ids: Tensor  # (M,) flat camera * N + Gaussian index of each pair
    pair_tiles: Tensor  # (M,) flat camera * tiles + tile index of each pair
    n_tiles: int  # tiles over all cameras
    tiles_x: int
    tiles_y: int
    tile_counts: Tensor  # (n_tiles,) pairs per tile
    tile_size: int

    @functools.cached_property
    def chunks(self) -> list:
        """[(tile indices (B,), pair indices (B, K) padded with M)]: tiles with similar pair counts together, so
        the padding stays small. Built on first use (the importance kernel walks the pairs itself)."""
        counts = self.tile_counts
        tile_start = torch.cumsum(counts, 0) - counts
        by_count = torch.argsort(counts, stable=True)
        by_count = by_count[counts[by_count] > 0]
        sorted_counts = counts[by_count].tolist()
        pixels = self.tile_size * self.tile_size
        chunks, begin, m = [], 0, len(self.pair_ids)
        for i, k in enumerate(sorted_counts):
            last = i + 1 == len(sorted_counts)
            if last or (i + 2 - begin) * sorted_counts[i + 1] * pixels > CHUNK_ELEMENTS:
                chunk_tiles = by_count[begin : i + 1]
                arange = torch.arange(k, device=counts.device)
                idx = tile_start[chunk_tiles, None] + arange
                idx = torch.where(arange < counts[chunk_tiles, None], idx, m)
                chunks.append((chunk_tiles, idx))
                begin = i + 1
        return chunks


@torch.no_grad()
def plan_tiles(proj: Projection, width: int, height: int, tile_size: int) -> TilePlan:
    """(tile, Gaussian) pairs for every visible Gaussian's bounding box, sorted by (tile, depth)."""
    n_cams, n = proj.depths.shape
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    device = proj.depths.device
    cam, gid = (proj.radii > 0).all(dim=-1).nonzero(as_tuple=True)
    # Emitting pairs in depth order and then stable-sorting by tile gives (tile, depth) order.
    order = torch.argsort(proj.depths[cam, gid], stable=True)
    cam, gid = cam[order], gid[order]
    center = proj.means2d[cam, gid]
    radius = proj.radii[cam, gid].to(center.dtype)
    lo = torch.floor((center - radius) / tile_size).long()
    hi = torch.ceil((center + radius) / tile_size).long()
    x0, x1 = lo[:, 0].clamp(0, tiles_x), hi[:, 0].clamp(0, tiles_x)
    y0, y1 = lo[:, 1].clamp(0, tiles_y), hi[:, 1].clamp(0, tiles_y)
    nx = x1 - x0
    counts = nx * (y1 - y0)
    src = torch.repeat_interleave(torch.arange(len(counts), device=device), counts)
    local = torch.arange(len(src), device=device) - (torch.cumsum(counts, 0) - counts)[src]
    tx = x0[src] + local % nx[src]
    ty = y0[src] + local // nx[src]
    tiles = (cam[src] * tiles_y + ty) * tiles_x + tx
    tiles, perm = torch.sort(tiles, stable=True)
    pair_ids = (cam * n + gid)[src][perm]
    n_tiles = n_cams * tiles_x * tiles_y
    return TilePlan(pair_ids, tiles, n_tiles, tiles_x, tiles_y, torch.bincount(tiles, minlength=n_tiles), tile_size)


def pixel_terms(tile_size: int, dtype, device) -> Tensor:
    """(P, 6) monomials [x^2, xy, y^2, x, y, 1] of the tile's pixel centres relative to the tile centre.

    With them the exponent of every pixel of a tile is one matrix product (see ``pair_coefficients``).
    """
    r = torch.arange(tile_size, dtype=dtype, device=device) + 0.5 - tile_size / 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    x, y = x.reshape(-1), y.reshape(-1)
    return torch.stack([x * x, x * y, y * y, x, y, torch.ones_like(x)], dim=-1)


def pair_coefficients(proj: Projection, plan: TilePlan, tile_size: int) -> Tensor:
    """(M, 6) coefficients of ``sigma - log(opacity)`` as a polynomial in tile-local pixel x, y.

    Gathers use ``index_select``: its backward sums with ``index_add_``, which is deterministic on a CPU (and
    several times faster), where ``x[ids]``'s backward accumulates in thread order, so training runs differed.

    sigma = 0.5 a dx^2 + b dx dy + 0.5 c dy^2 with d = pixel - mean; folding the opacity in as a constant
    makes ``exp(-terms @ coefs)`` the unclamped alpha in one matrix product and one exp.
    """
    means2d = proj.means2d.reshape(-1, 2).index_select(0, plan.pair_ids)
    a, b, c = proj.conics.reshape(-1, 3).index_select(0, plan.pair_ids).unbind(-1)
    log_opac = torch.log(proj.opacities.reshape(-1).index_select(0, plan.pair_ids).clamp_min(1e-30))
    tile_xy = plan.pair_tiles % (plan.tiles_x * plan.tiles_y)
    offset = torch.stack([tile_xy % plan.tiles_x, tile_xy // plan.tiles_x], dim=-1).to(means2d.dtype)
    mx, my = (means2d - (offset + 0.5) * tile_size).unbind(-1)
    constant = 0.5 * a * mx * mx + b * mx * my + 0.5 * c * my * my - log_opac
    return torch.stack([0.5 * a, b, 0.5 * c, -(a * mx + b * my), -(b * mx + c * my), constant], dim=-1)


def _chunk_weights(neg_terms: Tensor, coefs: Tensor):
    """Blending of one chunk of B tiles x K pairs: returns alpha, transmittance before each pair and the
    weights, all (B, P, K), with skipped (faint or past-the-stop) pairs at alpha 0.

    Written with thresholds and in-place ops rather than boolean masks: this loop is the renderer's cost.
    """
    # Clamping the exponent first spares exp its very slow denormal (and -inf) results; all such alphas
    # are far below ALPHA_MIN and zeroed just after.
    alpha = torch.matmul(neg_terms, coefs.transpose(1, 2)).clamp_min_(-30.0).exp_()
    alpha = torch.nn.functional.threshold(alpha, ALPHA_MIN, 0.0, inplace=True).clamp_max_(ALPHA_MAX)
    # Transmittance never increases along the depth order, so "stop before T <= T_MIN" zeroes a suffix.
    trans_incl = torch.nn.functional.threshold(torch.rsub(alpha, 1.0).cumprod_(dim=2), T_MIN, 0.0, inplace=True)
    trans = torch.cat([torch.ones_like(trans_incl[..., :1]), trans_incl[..., :-1]], dim=2)
    alpha.mul_(trans_incl.sign_())
    del trans_incl
    return alpha, trans, alpha * trans


class _Composite(torch.autograd.Function):
    """Front-to-back compositing of sorted pairs into per-tile (features, alpha); recomputes chunks in backward.

    Inputs: coefs (M, 6) from ``pair_coefficients``; feats (M, F). Output (tiles, P, F + 1): the weighted
    feature sums and, last, the accumulated alpha (the weights' sum, i.e. 1 - final transmittance).
    ``absgrad_to``: the (C, N, 2) means2d tensor, or None; when given, backward sets its ``absgrad`` to gsplat's
    per-pixel absolute screen-space gradient sums (what splatfacto's absgrad densification reads).
    """

    @staticmethod
    def forward(ctx, coefs: Tensor, feats: Tensor, plan: TilePlan, tile_size: int, absgrad_to: Tensor | None):
        neg_terms = -pixel_terms(tile_size, coefs.dtype, coefs.device)
        coefs_p, feats_t = _padded(coefs, feats)
        out = feats.new_zeros(plan.n_tiles, tile_size * tile_size, feats_t.shape[0])
        for tiles, idx in plan.chunks:
            weights = _chunk_weights(neg_terms, coefs_p[idx])[2]
            # (B, P, K) @ (B, K, F) with the features stored K-contiguous: much faster in MKL.
            out[tiles] = torch.bmm(weights, feats_t[:, idx].permute(1, 2, 0))
        ctx.save_for_backward(coefs, feats)
        ctx.plan, ctx.tile_size, ctx.absgrad_to = plan, tile_size, absgrad_to
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        coefs, feats = ctx.saved_tensors
        terms = pixel_terms(ctx.tile_size, coefs.dtype, coefs.device)
        neg_terms = -terms
        coefs_p, feats_t = _padded(coefs, feats)
        d_coefs, d_feats_t = torch.zeros_like(coefs_p), torch.zeros_like(feats_t)
        abs_xy = None if ctx.absgrad_to is None else coefs_p.new_zeros(coefs_p.shape[0], 2)
        for tiles, idx in ctx.plan.chunks:
            g = grad_out[tiles]
            f_t = feats_t[:, idx].transpose(0, 1)  # (B, F, K)
            chunk_coefs = coefs_p[idx]
            alpha, trans, weights = _chunk_weights(neg_terms, chunk_coefs)
            d_feats_t[:, idx] = torch.bmm(g.transpose(1, 2), weights).transpose(0, 1)
            # With a_i = alpha_i, T_i = trans_i, u_i = f_i . g (the ones channel carries alpha's gradient):
            # dL/da_i = T_i u_i - (sum_{j>i} w_j u_j) / (1 - a_i)
            u = torch.bmm(g, f_t)
            later = weights.mul_(u)
            total = later.sum(dim=2, keepdim=True)
            later = later.cumsum_(dim=2).sub_(total).div_(torch.rsub(alpha, 1.0))
            d_alpha = later.addcmul_(trans, u)
            del trans, u
            # Only kept, unclamped alphas depend on the inputs; there alpha = exp(-terms @ coefs), so
            # dalpha/dcoefs = -alpha * terms, and gate = -alpha exactly where that holds (0 elsewhere).
            gate = torch.nn.functional.threshold(alpha.neg_(), -ALPHA_MAX, 0.0, inplace=True)
            d_exponent = d_alpha.mul_(gate)
            d_coefs[idx] = torch.matmul(terms.t(), d_exponent).transpose(1, 2)
            if abs_xy is not None:
                abs_xy[idx] = _abs_mean_grads(terms, chunk_coefs, d_exponent)
        m = coefs.shape[0]
        if abs_xy is not None:
            sink = ctx.absgrad_to
            per_gaussian = abs_xy.new_zeros(sink.shape[0] * sink.shape[1], 2)
            sink.absgrad = per_gaussian.index_add_(0, ctx.plan.pair_ids, abs_xy[:m]).reshape(sink.shape)
        return d_coefs[:m], d_feats_t[:-1, :m].t(), None, None, None


def _abs_mean_grads(terms: Tensor, coefs: Tensor, d_exponent: Tensor) -> Tensor:
    """(B, K, 2) sums over a chunk's pixels of |dL/d mean2d| per axis, for pairs with coefs (B, K, 6).

    The exponent is E = 0.5 a dx^2 + b dx dy + 0.5 c dy^2 with d = pixel - mean, so dE/d mean = -dE/d pixel,
    and dE/d pixel is linear in (x, y, 1) with coefficients read off the polynomial's.
    """
    xy1 = terms[:, 3:]  # (P, 3): x, y, 1
    c0, c1, c2, c3, c4, _ = coefs.unbind(-1)
    d_dx = torch.matmul(xy1, torch.stack([2 * c0, c1, c3], dim=1))  # (B, P, K)
    d_dy = torch.matmul(xy1, torch.stack([c1, 2 * c2, c4], dim=1))
    g = d_exponent.abs()
    return torch.stack([(g * d_dx.abs_()).sum(dim=1), (g * d_dy.abs_()).sum(dim=1)], dim=-1)


def _padded(coefs: Tensor, feats: Tensor):
    """Coefs (M + 1, 6) and transposed features plus the ones channel (F + 1, M + 1): the extra pair at
    index M is where padding points, and its huge constant term makes its alpha exactly 0."""
    pad = coefs.new_zeros(1, coefs.shape[1])
    pad[0, -1] = 1e4
    feats_t = feats.new_ones(feats.shape[1] + 1, feats.shape[0] + 1)
    feats_t[:-1, :-1] = feats.t()
    return torch.cat([coefs, pad]), feats_t


def rasterize(inputs: RasterInputs, options: RasterOptions) -> Raster:
    """The backend contract (``splatpack.render.registry``): render C views, any device and float dtype."""
    means, quats, scales, opacities, colors, viewmats, Ks, width, height = inputs
    o, tile_size = options, options.tile_size
    n_cams, n = viewmats.shape[0], means.shape[0]
    proj = project(
        means, quats, scales, opacities, viewmats, Ks, width, height,
        near_plane=o.near_plane, far_plane=o.far_plane, eps2d=o.eps2d, antialiased=o.rasterize_mode == "antialiased",
    )  # fmt: skip
    if o.sh_degree is None:
        rgb = colors.expand(n_cams, n, 3)
    else:
        # Camera centre = -R^T t for a world-to-camera matrix [R | t].
        centres = -torch.einsum("cji,cj->ci", viewmats[:, :3, :3], viewmats[:, :3, 3])
        rgb = sh_to_rgb(o.sh_degree, means[None] - centres[:, None], colors.expand(n_cams, *colors.shape))
    feats = torch.cat([rgb, proj.depths[..., None]], dim=-1).reshape(n_cams * n, 4)

    plan = plan_tiles(proj, width, height, tile_size)
    coefs = pair_coefficients(proj, plan, tile_size)
    sink = proj.means2d if o.absgrad and proj.means2d.requires_grad else None
    out = _Composite.apply(coefs, feats.index_select(0, plan.pair_ids), plan, tile_size, sink)

    def to_image(t: Tensor) -> Tensor:
        ch = t.shape[-1]
        t = t.reshape(n_cams, plan.tiles_y, plan.tiles_x, tile_size, tile_size, ch).transpose(2, 3)
        return t.reshape(n_cams, plan.tiles_y * tile_size, plan.tiles_x * tile_size, ch)[:, :height, :width]

    out = to_image(out)
    rgb_img, alpha = out[..., :3], out[..., 4:]
    if o.backgrounds is not None:
        rgb_img = rgb_img + o.backgrounds[:, None, None, :] * (1.0 - alpha)
    return Raster(
        rgb=rgb_img,
        alpha=alpha,
        depth=out[..., 3:4] / alpha.clamp_min(1e-10),
        means2d=proj.means2d,
        radii=proj.radii,
        depths=proj.depths,
        conics=proj.conics,
        opacities=proj.opacities,
        n_intersections=len(plan.pair_ids),
    )
