"""Feed-forward inference on real data: posed images of a nerfstudio ``transforms.json`` or COLMAP folder ->
``Splats`` in the data's own frame, in one forward pass (``splatpack feedforward run``, ``feedforward_splats``).

The context views are resized to the resolution the checkpoint was trained at (shorter side; the longer one
keeps the aspect ratio, rounded to whole patches), with the intrinsics scaled to match. The model works in the
canonical frame of the context cameras (``model.canonical_frame``); ``Prediction.splats`` maps its Gaussians
back into the cameras' frame, here the data's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from splatpack.errors import SplatpackError
from splatpack.feedforward.checkpoint import load_checkpoint
from splatpack.scene import Splats

# Where the shipped checkpoint goes (package data); none is shipped yet (README, "Feed-forward").
SHIPPED = Path(__file__).resolve().parent / "weights" / "model.pt"
DEFAULT_RESOLUTION = 64  # for checkpoints that do not record theirs


def resolve_checkpoint(path: str | os.PathLike | None) -> Path:
    """``path``, or the shipped checkpoint when None (refused in one line while none is shipped)."""
    if path is not None:
        return Path(path)
    if not SHIPPED.is_file():
        raise SplatpackError("no feed-forward checkpoint is shipped yet; train one (splatpack feedforward train) "
                             "and pass it with --checkpoint", SHIPPED)  # fmt: skip
    return SHIPPED


class Predictor:
    """A loaded checkpoint with the resolution and curriculum stage it was trained at."""

    def __init__(self, checkpoint: str | os.PathLike | None = None, device="cpu"):
        self.path = resolve_checkpoint(checkpoint)
        self.model, extra = load_checkpoint(self.path, device=device)
        self.model.eval()
        self.device = torch.device(device)
        self.side = int(min(extra.get("resolution", [DEFAULT_RESOLUTION])))
        stage = extra.get("stage", [self.model.cfg.stages, 0.0])
        self.stage, self.blend = int(stage[0]), float(stage[1])

    @property
    def gaussians(self) -> int:
        """How many Gaussians a prediction has."""
        return self.model.cfg.gaussians(self.stage + (self.blend > 0))

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) the model reads views of ``width`` x ``height`` at."""
        patch = self.model.cfg.patch
        short, long = sorted((width, height))
        other = max(patch, round(self.side * long / short / patch) * patch)
        return (other, self.side) if width >= height else (self.side, other)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, c2w: torch.Tensor, Ks: torch.Tensor) -> Splats:
        """Gaussians of (V, H, W, 3) images in [0, 1] with OpenCV camera-to-world ``c2w`` (V, 4, 4) and pixel
        intrinsics ``Ks`` (V, 3, 3), in the cameras' frame (float32, CPU)."""
        height, width = images.shape[1:3]
        w, h = self.input_size(width, height)
        x = F.interpolate(images.float().permute(0, 3, 1, 2), size=(h, w), mode="area").permute(0, 2, 3, 1)
        Ks = Ks.double().clone()
        Ks[:, 0] *= w / width
        Ks[:, 1] *= h / height
        dev = self.device
        pred = self.model(
            x.clamp(0, 1)[None].to(dev), c2w.float()[None].to(dev), Ks.float()[None].to(dev),
            stage=self.stage, blend=self.blend,
        )  # fmt: skip
        return pred.splats(0).to(dtype=torch.float32)


def spread(count: int, total: int) -> list[int]:
    """``count`` indices evenly spread over ``range(total)`` (all of them when count >= total), first included."""
    if count >= total:
        return list(range(total))
    return sorted({int(i) for i in np.round(np.linspace(0, total - 1, count))})


def _dataset_frames(data: Path, split: str):
    """The frames of ``split`` of a transforms.json (file or folder) or COLMAP scene, without their images."""
    from splatpack.datasets import colmap, transforms
    from splatpack.datasets.cameras import split_frames

    if not data.exists():
        raise SplatpackError("no such file or folder", data)
    if transforms.transforms_path(data).is_file():
        frames, meta, json_path = transforms.transforms_frames(data)
        lists = {key: {os.path.normpath(n) for n in meta[f"{key}_filenames"]}
                 for key in ("train", "val", "test") if f"{key}_filenames" in meta}  # fmt: skip
        return split_frames(frames, split, 8, lists or None, json_path)
    if data.is_file():
        raise SplatpackError("expected a transforms.json or a folder with one, or a COLMAP scene folder", data)
    frames, root = colmap.colmap_frames(data)
    return split_frames(frames, split, 8, colmap.read_split_lists(root), root)


def feedforward_splats(
    data: str | os.PathLike,
    *,
    checkpoint: str | os.PathLike | None = None,
    views: int = 8,
    frames: tuple[str, ...] = (),
    split: str = "train",
    device="cpu",
) -> Splats:
    """Gaussians of the scene in ``data`` (transforms.json or COLMAP), in the data's own frame, predicted from
    ``views`` context views evenly spread over ``split`` (or the frames named in ``frames``)."""
    from splatpack.datasets.cameras import build_camera_set

    if views < 1:
        raise SplatpackError(f"--views must be at least 1, got {views}")
    predictor = Predictor(checkpoint, device)
    data = Path(data)
    available = _dataset_frames(data, split)
    if frames:
        by_name = {f.name: f for f in available}
        missing = [name for name in frames if os.path.normpath(name) not in by_name]
        if missing:
            raise SplatpackError(f"no frame {missing[0]!r} in the {split} split", data)
        chosen = [by_name[os.path.normpath(name)] for name in frames]
    else:
        chosen = [available[i] for i in spread(views, len(available))]
    cams = build_camera_set(chosen, downscale=1)
    return predictor(cams.images, torch.linalg.inv(cams.viewmats.double()), cams.Ks)
