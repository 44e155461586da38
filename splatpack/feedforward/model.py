"""The feed-forward scene-token model: posed images -> a fixed budget of Gaussians in one pass ("align first,
decode later", GlobalSplat, ``../shared/docs/ALGORITHMS.md`` §3). Pure PyTorch; runs on CPU and CUDA unchanged.

1. ``canonical_frame``: the mean context camera centre is the origin, the first camera's axes are the axes, the
   diameter of the camera constellation is the unit of length, so a similarity transform of the input cameras
   changes nothing the network sees.
2. ``Tokenizer``: 8x8 patches of RGB and of the per-pixel Plücker ray (direction, moment) in the canonical frame,
   plus a per-view camera code (Fourier features of the centre, the normalised intrinsics) -> image tokens.
3. ``Encoder``: a learnable bank of M scene tokens; a geometry and an appearance stream, each alternating one
   cross-attention to every image token with self-attention, mixed after each round by a LayerScale adapter.
4. ``Decoder``: each token reads out up to 16 candidate Gaussians; a block-local softmax gate (geometry stream
   only) merges them into 2^s Gaussians at stage s (``merge_candidates``); ``blend_stages`` fades stage s into
   s + 1 through the volume- and union-preserving ``split``.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from splatpack.errors import SplatpackError
from splatpack.feedforward.config import FeedForwardConfig
from splatpack.scene import Splats, rgb_to_sh0

LOG2_THIRD = math.log(2.0) / 3  # a Gaussian split in two keeps its volume: each child's axes shrink by 2^(-1/3)


# ---------------------------------------------------------------------------------------------- camera frame


@dataclasses.dataclass
class CanonicalFrame:
    """World <- canonical similarity per scene: ``x_world = scale * rotation @ x + centre``."""

    rotation: Tensor  # (B, 3, 3)
    centre: Tensor  # (B, 3)
    scale: Tensor  # (B,)

    def cameras_to_canonical(self, c2w: Tensor) -> Tensor:
        """(B, V, 4, 4) camera-to-world poses -> the same cameras in the canonical frame."""
        rot_t = self.rotation.transpose(-1, -2)[:, None]
        out = c2w.clone()
        out[..., :3, :3] = rot_t @ c2w[..., :3, :3]
        shifted = (c2w[..., :3, 3] - self.centre[:, None]) / self.scale[:, None, None]
        out[..., :3, 3] = (rot_t @ shifted[..., None])[..., 0]
        return out

    def splats_to_world(self, splats: Splats, b: int = 0) -> Splats:
        """Canonical-frame ``splats`` of scene ``b`` in the cameras' own frame (detached, on the CPU)."""
        from splatpack.edit.rigid import similarity

        return similarity(
            splats.detach().to("cpu"),
            rotation=self.rotation[b].detach().cpu().double(),
            translation=self.centre[b].detach().cpu().double(),
            scale=float(self.scale[b]),
        )


def look_at_point(c2w: Tensor, scale: Tensor) -> Tensor:
    """(B, 3) the point nearest to every context camera's optical axis (least squares), where an orbit or a
    converging rig looks; a ridge towards one ``scale`` in front of the mean centre keeps near-parallel axes (a
    forward-facing rig) well posed."""
    centres, forward = c2w[..., :3, 3], F.normalize(c2w[..., :3, 2], dim=-1)
    eye = torch.eye(3, dtype=c2w.dtype, device=c2w.device)
    off_axis = eye - forward[..., :, None] * forward[..., None, :]  # (B, V, 3, 3) projectors off each axis
    prior = centres.mean(dim=1) + scale[:, None] * F.normalize(forward.mean(dim=1), dim=-1)
    ridge = 1e-2 * centres.shape[1]
    lhs = off_axis.sum(dim=1) + ridge * eye
    rhs = (off_axis @ centres[..., None]).sum(dim=1)[..., 0] + ridge * prior
    return torch.linalg.solve(lhs, rhs)


def canonical_frame(c2w: Tensor) -> CanonicalFrame:
    """The canonical frame of (B, V, 4, 4) context poses: origin at the point the cameras look at
    (``look_at_point``), axes of the first context camera, and the largest distance between two camera centres
    as unit length (1 when they coincide). The scene tokens' anchors live around that origin.

    The first camera's axes, not the mean rotation: on a full orbit the rotations sum to a singular matrix (the
    right vectors cancel), where the nearest rotation to the mean is undefined."""
    centres = c2w[..., :3, 3]
    diameter = torch.cdist(centres, centres).flatten(1).amax(dim=1)
    scale = torch.where(diameter > 1e-6, diameter, torch.ones_like(diameter))
    return CanonicalFrame(c2w[:, 0, :3, :3], look_at_point(c2w, scale), scale)


def plucker_rays(c2w: Tensor, Ks: Tensor, height: int, width: int) -> Tensor:
    """(B, V, H, W, 6) per-pixel rays (unit direction, moment = centre x direction) of OpenCV cameras."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=c2w.dtype, device=c2w.device) + 0.5,
        torch.arange(width, dtype=c2w.dtype, device=c2w.device) + 0.5,
        indexing="ij",
    )
    pix = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1)  # (H, W, 3)
    cam = torch.einsum("bvij,hwj->bvhwi", torch.linalg.inv(Ks), pix)
    dirs = F.normalize(torch.einsum("bvij,bvhwj->bvhwi", c2w[..., :3, :3], cam), dim=-1)
    origins = c2w[..., None, None, :3, 3].expand_as(dirs)
    return torch.cat([dirs, torch.linalg.cross(origins, dirs, dim=-1)], dim=-1)


def patchify(x: Tensor, patch: int) -> Tensor:
    """(B, V, H, W, C) -> (B, V, H/p * W/p, p * p * C) non-overlapping patches, row-major."""
    b, v, h, w, c = x.shape
    x = x.reshape(b, v, h // patch, patch, w // patch, patch, c).permute(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, v, (h // patch) * (w // patch), patch * patch * c)


# ---------------------------------------------------------------------------------------------- tokenizer


class Tokenizer(nn.Module):
    """Context views -> (B, V * patches, width) image tokens."""

    def __init__(self, cfg: FeedForwardConfig):
        super().__init__()
        p2 = cfg.patch * cfg.patch
        self.patch, self.frequencies = cfg.patch, cfg.camera_frequencies
        self.rgb = nn.Linear(3 * p2, cfg.rgb_width)
        self.ray = nn.Linear(6 * p2, cfg.ray_width)
        code_in = 3 + 6 * cfg.camera_frequencies + 4  # centre, its Fourier features, normalised intrinsics
        self.camera = nn.Sequential(
            nn.Linear(code_in, cfg.ray_width), nn.GELU(), nn.Linear(cfg.ray_width, cfg.ray_width)
        )
        self.fuse = nn.Sequential(nn.Linear(cfg.rgb_width + cfg.ray_width, cfg.width), nn.LayerNorm(cfg.width))

    def camera_code(self, c2w: Tensor, Ks: Tensor, height: int, width: int) -> Tensor:
        centre = c2w[..., :3, 3]
        angles = centre[..., None] * (2.0 ** torch.arange(self.frequencies, device=c2w.device) * math.pi)
        fourier = torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)
        intr = torch.stack(
            [Ks[..., 0, 0] / width, Ks[..., 1, 1] / height, Ks[..., 0, 2] / width, Ks[..., 1, 2] / height], -1
        )
        return self.camera(torch.cat([centre, fourier, intr], dim=-1))

    def forward(self, images: Tensor, c2w: Tensor, Ks: Tensor) -> tuple[Tensor, Tensor]:
        """-> (B, V * patches, width) image tokens and (B, V * patches, 6) each patch's centre ray (origin,
        unit direction)."""
        b, v, h, w, _ = images.shape
        rgb = self.rgb(patchify((images - 0.45) / 0.25, self.patch))  # roughly zero-mean, unit-variance colour
        rays = plucker_rays(c2w, Ks, h, w)
        ray = self.ray(patchify(rays, self.patch)) + self.camera_code(c2w, Ks, h, w)[:, :, None]
        tokens = self.fuse(torch.cat([rgb, ray], dim=-1)).reshape(b, -1, self.fuse[0].out_features)
        directions = F.normalize(patchify(rays[..., :3], self.patch).unflatten(-1, (-1, 3)).mean(dim=-2), dim=-1)
        origins = c2w[:, :, None, :3, 3].expand_as(directions)
        return tokens, torch.cat([origins, directions], dim=-1).reshape(b, -1, 6)


# ---------------------------------------------------------------------------------------------- encoder


def ray_distance_sq(points: Tensor, rays: Tensor) -> Tensor:
    """(M, 3) points, (B, N, 6) rays (origin, unit direction) -> (B, M, N) squared distance from each point to
    each ray's half-line (points behind a camera measure to its centre)."""
    rel = points[None, :, None] - rays[:, None, :, :3]  # (B, M, N, 3)
    along = (rel * rays[:, None, :, 3:]).sum(-1).clamp(min=0)
    return (rel * rel).sum(-1) - along * along


class RayBias(nn.Module):
    """The cross-attention logit bias -g_h * d^2 of ``FeedForwardConfig.ray_bias``."""

    def __init__(self, heads: int):
        super().__init__()
        # log-spaced gains, the first head unbiased: from the whole picture down to ~3 % of the scene
        self.log_gain = nn.Parameter(torch.cat([torch.tensor([-20.0]), torch.linspace(1.0, 7.0, heads - 1)]))

    def forward(self, anchors: Tensor, rays: Tensor) -> Tensor:
        return -self.log_gain.exp()[None, :, None, None] * ray_distance_sq(anchors, rays)[:, None]


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.kv, self.out = nn.Linear(width, width), nn.Linear(width, 2 * width), nn.Linear(width, width)

    def forward(self, x: Tensor, context: Tensor, bias: Tensor | None = None) -> Tensor:
        """``bias`` (B, heads, n, context tokens): added to the attention logits."""
        b, n, w = x.shape
        q = self.q(x).reshape(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.kv(context).reshape(b, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.out(out.transpose(1, 2).reshape(b, n, w))


class Block(nn.Module):
    """Pre-norm transformer block: self-attention, or cross-attention when given a context."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, cross: bool):
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm = nn.LayerNorm(width)
        self.norm_context = nn.LayerNorm(width) if cross else None
        self.attn = Attention(width, heads)
        self.mlp = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: Tensor, context: Tensor | None = None, bias: Tensor | None = None) -> Tensor:
        h = self.norm(x)
        x = x + self.attn(h, h if self.norm_context is None else self.norm_context(context), bias)
        return x + self.mlp(x)


class Round(nn.Module):
    """One encoder round of one stream: cross-attention to the image tokens, then self-attention layers."""

    def __init__(self, cfg: FeedForwardConfig):
        super().__init__()
        args = (cfg.width, cfg.heads, cfg.mlp_ratio)
        self.cross = Block(*args, cross=True)
        self.selfs = nn.ModuleList(Block(*args, cross=False) for _ in range(cfg.self_layers))

    def forward(self, x: Tensor, memory: Tensor, bias: Tensor | None) -> Tensor:
        x = self.cross(x, memory, bias)
        for block in self.selfs:
            x = block(x)
        return x


class Encoder(nn.Module):
    """Scene-token bank and the dual-stream (or single-stream) slot encoder -> (geometry, appearance) tokens."""

    def __init__(self, cfg: FeedForwardConfig):
        super().__init__()
        self.bank = nn.Parameter(torch.randn(cfg.tokens, cfg.width))
        self.geometry = nn.ModuleList(Round(cfg) for _ in range(cfg.rounds))
        self.dual = cfg.dual_stream
        if self.dual:
            self.stream_codes = nn.Parameter(torch.randn(2, cfg.width) * 0.02)
            self.appearance = nn.ModuleList(Round(cfg) for _ in range(cfg.rounds))
            # Each stream reads the other through a linear map whose gain starts tiny (LayerScale).
            self.mix = nn.ModuleList(nn.Linear(cfg.width, cfg.width) for _ in range(2 * cfg.rounds))
            self.mix_gain = nn.Parameter(torch.full((2 * cfg.rounds, cfg.width), cfg.layer_scale))

    def forward(self, memory: Tensor, bias: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``bias``: the cross-attentions' logit bias (``ray_bias``), or None."""
        bank = self.bank.expand(memory.shape[0], -1, -1)
        if not self.dual:
            geo = bank
            for r in self.geometry:
                geo = r(geo, memory, bias)
            return geo, geo
        geo, app = bank + self.stream_codes[0], bank + self.stream_codes[1]
        for i, (rg, ra) in enumerate(zip(self.geometry, self.appearance, strict=True)):
            geo, app = rg(geo, memory, bias), ra(app, memory, bias)
            geo, app = (
                geo + self.mix_gain[2 * i] * self.mix[2 * i](app),
                app + self.mix_gain[2 * i + 1] * self.mix[2 * i + 1](geo),
            )
        return geo, app


# ---------------------------------------------------------------------------------------------- decoder


@dataclasses.dataclass
class Gaussians:
    """Batched raw Gaussian parameters (the fields of ``Splats``), in the canonical frame."""

    means: Tensor  # (B, N, 3)
    quats: Tensor  # (B, N, 4)
    log_scales: Tensor  # (B, N, 3)
    opacity_logits: Tensor  # (B, N)
    sh: Tensor  # (B, N, (degree + 1)^2, 3), DC first
    gate: Tensor | None = None  # (B, M, K) candidate gate logits; only candidate sets carry them

    def splats(self, b: int = 0) -> Splats:
        """Scene ``b`` as ``Splats`` (still attached to the graph)."""
        sh = self.sh[b]
        return Splats(self.means[b], self.quats[b], self.log_scales[b], self.opacity_logits[b], sh[:, :1], sh[:, 1:])

    def render_inputs(self, b: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Scene ``b`` activated as ``splatpack.render.rasterize`` takes it: means, quats, scales, opacities, SH."""
        return (
            self.means[b],
            self.quats[b],
            self.log_scales[b].exp(),
            torch.sigmoid(self.opacity_logits[b]),
            self.sh[b],
        )


def opacity_logit_from_log_transmittance(log_t: Tensor) -> Tensor:
    """Logit of the opacity a with log(1 - a) = ``log_t`` (< 0), computed without forming 1 - a."""
    log_t = log_t.clamp(max=-1e-7)
    return torch.log(-torch.expm1(log_t)) - log_t


def merge_candidates(cand: Gaussians, stage: int) -> Gaussians:
    """Merge each token's K candidates into 2^stage Gaussians, one per block of n = K / 2^stage candidates.

    With gate weights w = softmax over the block: centres, SH and (sign-aligned) quaternions are w-averages;
    log-scales are w-averaged and grown by log(n)/3 so the merged Gaussian holds the block's volume; opacity is
    merged through log-transmittance, log(1 - a) = sum_i (n w_i) log(1 - a_i). The weights n * w_i sum to the n
    slots the parent stands for, so equal gates give exactly the block's union, 1 - prod(1 - a_i), and a one-hot
    gate on j gives the union of n copies of child j, 1 - (1 - a_j)^n; in general (1 - a)^(1/n) is the
    w-weighted geometric mean of the children's transmittances. ``split`` undoes this: n equal children of the
    parent have the parent's union and volume.
    """
    b, m, k = cand.gate.shape
    groups = 2**stage
    if k % groups:
        raise SplatpackError(f"stage {stage}: 2^stage = {groups} does not divide the {k} candidates per token")
    n = k // groups

    def wavg(t: Tensor) -> Tensor:
        t = t.reshape(b, m, groups, n, -1)
        return (w[..., None] * t).sum(dim=3)

    w = torch.softmax(cand.gate.reshape(b, m, groups, n), dim=-1)
    quats = F.normalize(cand.quats, dim=-1).reshape(b, m, groups, n, 4)
    quats = quats * torch.where((quats * quats[:, :, :, :1]).sum(-1, keepdim=True) < 0, -1.0, 1.0)
    log_t = -(n * w * F.softplus(cand.opacity_logits.reshape(b, m, groups, n))).sum(
        dim=3
    )  # log(1 - sigmoid(z)) = -softplus(z)
    sh_shape = cand.sh.shape[2:]
    return Gaussians(
        means=wavg(cand.means).reshape(b, m * groups, 3),
        quats=wavg(quats).reshape(b, m * groups, 4),
        log_scales=(wavg(cand.log_scales) + math.log(n) / 3).reshape(b, m * groups, 3),
        opacity_logits=opacity_logit_from_log_transmittance(log_t).reshape(b, m * groups),
        sh=wavg(cand.sh).reshape(b, m * groups, *sh_shape),
    )


def split(g: Gaussians) -> Gaussians:
    """Each Gaussian -> two identical children next to each other: same centre, rotation and colour, axes shrunk
    by 2^(-1/3) (the two hold the parent's volume) and opacity 1 - sqrt(1 - a) (their union is the parent's)."""

    def twice(t: Tensor) -> Tensor:
        return t.repeat_interleave(2, dim=1)

    log_t = -F.softplus(g.opacity_logits) / 2
    return Gaussians(
        means=twice(g.means),
        quats=twice(g.quats),
        log_scales=twice(g.log_scales) - LOG2_THIRD,
        opacity_logits=twice(opacity_logit_from_log_transmittance(log_t)),
        sh=twice(g.sh),
    )


def blend_stages(coarse: Gaussians, fine: Gaussians, t: float) -> Gaussians:
    """(1 - t) * split(coarse) + t * fine, parameter by parameter: the curriculum's fade from stage s to s + 1."""
    parent = split(coarse)
    fields = ("means", "quats", "log_scales", "opacity_logits", "sh")
    return Gaussians(**{f: torch.lerp(getattr(parent, f), getattr(fine, f), t) for f in fields})


class Decoder(nn.Module):
    """Scene tokens -> K candidate Gaussians per token (geometry and gate from the geometry stream, SH from the
    appearance stream), bounded: centres in a tanh cube about the token's anchor, scales in ``scale_range``."""

    def __init__(self, cfg: FeedForwardConfig):
        super().__init__()
        self.cfg = cfg
        self.sh_count = (cfg.sh_degree + 1) ** 2
        # per candidate: centre 3, log-scale 3, quaternion 4, opacity logit 1, gate 1
        self.geometry = nn.Sequential(nn.LayerNorm(cfg.width), nn.Linear(cfg.width, cfg.candidates * 12))
        # Each token's centres sit about an anchor of its own, spread over the scene from the start. Without them
        # the first steps bunch every centre at one point and fade them all out (BENCHMARKS, "Feed-forward model").
        self.anchors = nn.Parameter((torch.rand(cfg.tokens, 3) * 2 - 1) * cfg.anchor_extent)
        self.appearance = nn.Sequential(
            nn.LayerNorm(cfg.width), nn.Linear(cfg.width, cfg.candidates * self.sh_count * 3)
        )
        with torch.no_grad():  # colours start within a few thousandths of ``base_rgb`` (see forward)
            self.appearance[1].weight.mul_(0.01)
            self.appearance[1].bias.zero_()

    def forward(self, geo: Tensor, app: Tensor, base_rgb: Tensor) -> Gaussians:
        """``base_rgb`` (B, 3): the context views' mean colour, which the colours start from (offsets to it), so
        the untrained model's Gaussians blend into the picture instead of being faded out by the first steps."""
        cfg = self.cfg
        b, m, _ = geo.shape
        g = self.geometry(geo).reshape(b, m, cfg.candidates, 12)
        lo, hi = cfg.scale_range
        identity = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=geo.dtype, device=geo.device)
        flat = (b, m * cfg.candidates)
        return Gaussians(
            means=(self.anchors[:, None] + cfg.position_range * torch.tanh(g[..., 0:3])).reshape(*flat, 3),
            log_scales=torch.log(lo + (hi - lo) * torch.sigmoid(g[..., 3:6])).reshape(*flat, 3),
            quats=(g[..., 6:10] + identity).reshape(*flat, 4),
            opacity_logits=(g[..., 10] + cfg.opacity_offset).reshape(flat),
            sh=self.appearance(app).reshape(*flat, self.sh_count, 3)
            + F.pad(rgb_to_sh0(base_rgb)[:, None, None], (0, 0, 0, self.sh_count - 1)),
            gate=g[..., 11],
        )


# ---------------------------------------------------------------------------------------------- model


@dataclasses.dataclass
class Prediction:
    gaussians: Gaussians  # in the canonical frame
    frame: CanonicalFrame  # canonical -> the cameras' frame

    def splats(self, b: int = 0) -> Splats:
        """Scene ``b`` in the input cameras' frame (detached, CPU): what writers and ``ns-train`` init take."""
        return self.frame.splats_to_world(self.gaussians.splats(b).detach(), b)


class FeedForwardModel(nn.Module):
    def __init__(self, cfg: FeedForwardConfig | None = None):
        super().__init__()
        self.cfg = cfg or FeedForwardConfig()
        self.tokenizer = Tokenizer(self.cfg)
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg)
        self.ray_bias = RayBias(self.cfg.heads) if self.cfg.ray_bias else None

    def forward(
        self, images: Tensor, c2w: Tensor, Ks: Tensor, *, stage: int | None = None, blend: float = 0.0
    ) -> Prediction:
        """images (B, V, H, W, 3) in [0, 1]; c2w (B, V, 4, 4) OpenCV camera-to-world; Ks (B, V, 3, 3) pixel
        intrinsics. Returns tokens x 2^stage Gaussians (stage defaults to the last), or, with ``blend`` t in
        (0, 1], the fade from ``stage`` to ``stage + 1`` (tokens x 2^(stage + 1) Gaussians)."""
        cfg = self.cfg
        stage = cfg.stages if stage is None else stage
        if not 0 <= stage <= cfg.stages or (blend > 0 and stage >= cfg.stages):
            raise SplatpackError(f"stage {stage} (blend {blend}) is outside the model's stages 0-{cfg.stages}")
        h, w = images.shape[2:4]
        if h % cfg.patch or w % cfg.patch:
            raise SplatpackError(f"image size {w}x{h} does not divide into {cfg.patch}x{cfg.patch} patches")
        frame = canonical_frame(c2w)
        cams = frame.cameras_to_canonical(c2w)
        tokens, rays = self.tokenizer(images, cams, Ks)
        bias = None if self.ray_bias is None else self.ray_bias(self.decoder.anchors, rays)
        geo, app = self.encoder(tokens, bias)
        cand = self.decoder(geo, app, images.mean(dim=(1, 2, 3)))
        out = merge_candidates(cand, stage)
        if blend > 0:
            out = blend_stages(out, merge_candidates(cand, stage + 1), blend)
        return Prediction(out, frame)
