"""Sizes of the feed-forward scene-token model (``splatpack.feedforward.model``), as one dataclass.

The defaults are scaled to train on a 2-core CPU and to ship: about 4.0 M parameters (an ~8 MB fp16 checkpoint),
512 scene tokens x 8 Gaussians at the last stage = 4,096 Gaussians. GlobalSplat's published model is 2,048 tokens
of 512-D with 4 rounds of 2 self-attention layers (``../shared/docs/ALGORITHMS.md`` §3).
"""

from __future__ import annotations

import dataclasses

from splatpack.errors import SplatpackError


@dataclasses.dataclass(frozen=True)
class FeedForwardConfig:
    """Model sizes; every field is a constructor argument (tyro can build a CLI from this class)."""

    tokens: int = 512
    """M: global scene tokens in the learnable bank (the Gaussian budget is tokens x 2^stage)."""
    width: int = 192
    """Channels of every scene and image token."""
    heads: int = 6
    """Attention heads (width must divide by it)."""
    rounds: int = 2
    """Encoder rounds; each is one cross-attention to the image tokens then ``self_layers`` self-attentions."""
    self_layers: int = 1
    """Self-attention layers per round and stream."""
    mlp_ratio: float = 4.0
    """Hidden width of each block's MLP, as a multiple of ``width``."""
    dual_stream: bool = True
    """Separate geometry and appearance streams (False: one stream feeds every head, the paper's ablation)."""
    patch: int = 8
    """Side of the square image patches that become tokens (image sides must divide by it)."""
    rgb_width: int = 128
    """Embedding width of an RGB patch before it joins the ray embedding."""
    ray_width: int = 64
    """Embedding width of a Plücker-ray patch and of the per-view camera code added to it."""
    camera_frequencies: int = 4
    """Octaves of the Fourier features of the camera centre in the camera code."""
    candidates: int = 16
    """M_max: candidate Gaussians each token reads out; the gate merges them into 2^stage groups (at most 16)."""
    stages: int = 3
    """Last coarse-to-fine stage s: 2^s Gaussians per token (2^stages must divide ``candidates``)."""
    sh_degree: int = 1
    """SH degree of the decoded colour (0-3)."""
    scale_range: tuple[float, float] = (1e-3, 0.08)
    """Standard deviations of a candidate in the canonical frame (camera constellation diameter 1), before the
    volume-preserving growth of coarser stages."""
    anchor_extent: float = 0.3
    """Half-size of the cube about the cameras' look-at point where the tokens' learnable anchors start, in units
    of the camera diameter (the demo ring's objects and floor lie within about 0.33)."""
    position_range: float = 0.1
    """Half-size of the cube about its token's anchor that a candidate's centre is squashed into (tanh), in units
    of the camera diameter."""
    opacity_offset: float = -4.0
    """Added to the candidates' opacity logits so training starts from faint Gaussians (sigmoid(-4) = 0.018; the
    16 candidates a token merges into one at stage 0 then make a union of 0.25)."""
    ray_bias: bool = True
    """Geometry-aware cross-attention: each head adds -g_h * d^2 to a token's attention logit of an image patch,
    d the distance from the token's anchor to the patch's centre ray and g_h a learnable gain per head (spread
    from 0 to 1000 at init), so from the first step a token reads the patches that see its part of the scene
    (False: plain cross-attention, the ablation)."""
    layer_scale: float = 1e-3
    """Initial gain of the residual mixer between the two streams (LayerScale)."""

    def __post_init__(self) -> None:
        problems = []
        if self.width % self.heads:
            problems.append(f"width {self.width} does not divide by heads {self.heads}")
        if not 1 <= self.candidates <= 16:
            problems.append(f"candidates {self.candidates} is outside 1-16")
        if self.stages < 0 or self.candidates % (2**self.stages):
            problems.append(f"2^stages = {2**self.stages} does not divide candidates {self.candidates}")
        if self.sh_degree not in (0, 1, 2, 3):
            problems.append(f"sh_degree {self.sh_degree} is outside 0-3")
        if min(self.tokens, self.rounds, self.patch, self.width) < 1:
            problems.append("tokens, rounds, patch and width must be positive")
        if not 0 < self.scale_range[0] < self.scale_range[1]:
            problems.append(f"scale_range {self.scale_range} must be increasing and positive")
        if problems:
            raise SplatpackError("feed-forward config: " + "; ".join(problems))

    def gaussians(self, stage: int | None = None) -> int:
        """Gaussians the model outputs at ``stage`` (default: the last)."""
        return self.tokens * 2 ** (self.stages if stage is None else stage)
