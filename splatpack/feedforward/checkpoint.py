"""Feed-forward model checkpoints: the config and the weights in one ``torch.save`` file (fp16 for shipping,
fp32 for resuming), read back with ``weights_only`` so a checkpoint cannot run code."""

from __future__ import annotations

import dataclasses
import os

import torch

from splatpack.errors import SplatpackError
from splatpack.feedforward.config import FeedForwardConfig
from splatpack.feedforward.model import FeedForwardModel
from splatpack.io.atomic import atomic_output

FORMAT = "splatpack-feedforward"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, model: FeedForwardModel, *, half: bool = True, extra: dict | None = None):
    """Write ``model`` (weights in fp16 when ``half``) and ``extra`` (plain data: step, optimiser state...)."""
    state = {k: v.detach().to("cpu", torch.float16 if half else v.dtype) for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": dataclasses.asdict(model.cfg),
        "state": state,
        "extra": extra or {},
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, *, device="cpu") -> tuple[FeedForwardModel, dict]:
    """The float32 model stored at ``path`` on ``device`` and the checkpoint's ``extra`` data."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SplatpackError("file not found", path) from None
    except Exception as exc:  # torch raises pickle, zip and value errors alike for a file that is not its own
        raise SplatpackError(f"not a feed-forward checkpoint ({type(exc).__name__})", path) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SplatpackError("not a feed-forward checkpoint", path)
    if payload.get("version") != VERSION:
        raise SplatpackError(f"checkpoint version {payload.get('version')} is not {VERSION}", path)
    config = dict(payload["config"])
    config["scale_range"] = tuple(config["scale_range"])
    config.setdefault("ray_bias", False)  # checkpoints from before the option had no such layer
    model = FeedForwardModel(FeedForwardConfig(**config))
    try:
        model.load_state_dict({k: v.float() for k, v in payload["state"].items()})
    except RuntimeError as exc:
        raise SplatpackError(f"checkpoint weights do not fit its config: {str(exc).splitlines()[0]}", path) from None
    return model.to(device), payload["extra"]
