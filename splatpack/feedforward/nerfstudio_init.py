"""The feed-forward start of per-scene training (``ns-train splatpack --pipeline.model.init feedforward``):
the model's Gaussians predicted from a nerfstudio pipeline's training views, in the dataparser's frame (the
frame the views' cameras are in, so ``Prediction.splats`` lands there with no further transform)."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from splatpack.datasets.cameras import camera_to_viewmats
from splatpack.errors import SplatpackError
from splatpack.feedforward.inference import Predictor, spread
from splatpack.scene import Splats


def _image(datamanager, index: int) -> torch.Tensor:
    """Training image ``index`` as (H, W, 3) floats in [0, 1]: the datamanager's cache when it keeps one."""
    cached = getattr(datamanager, "cached_train", None)
    image = cached[index]["image"] if cached else datamanager.train_dataset[index]["image"]
    image = image[..., :3].cpu()
    return image.float() / 255.0 if image.dtype == torch.uint8 else image.float()


def pipeline_splats(pipeline, checkpoint: str | os.PathLike | None, views: int, device="cpu") -> Splats:
    """Gaussians predicted from ``views`` training views (evenly spread) of a nerfstudio ``pipeline``, in its
    dataparser frame. Views of other sizes than the first are resized to it (intrinsics follow)."""
    if views < 1:
        raise SplatpackError(f"init_views must be at least 1, got {views}")
    predictor = Predictor(checkpoint, device)
    datamanager = pipeline.datamanager
    cameras = datamanager.train_dataset.cameras
    chosen = spread(views, len(cameras))
    c2w = torch.linalg.inv(camera_to_viewmats(cameras.camera_to_worlds[chosen].cpu().float()).double())
    Ks = cameras.get_intrinsics_matrices()[chosen].cpu().double()
    images = []
    for j, index in enumerate(chosen):
        image = _image(datamanager, index)
        if images and image.shape != images[0].shape:
            (h, w), (h0, w0) = image.shape[:2], images[0].shape[:2]
            image = F.interpolate(image.permute(2, 0, 1)[None], size=(h0, w0), mode="area")[0].permute(1, 2, 0)
            Ks[j, 0] *= w0 / w
            Ks[j, 1] *= h0 / h
        images.append(image)
    return predictor(torch.stack(images), c2w, Ks)
