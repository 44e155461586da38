"""Training the feed-forward model on procedural scenes (``splatpack feedforward train``): a seeded pool of
training scenes, the coarse-to-fine curriculum, AdamW with warm-up and cosine decay, resumable checkpoints,
tensorboard (or JSONL) logs and the held-out PSNR on a fixed set of scenes no run ever trains on.

Every random choice of step t comes from a generator seeded with (seed, t): the scene and the context/target
split of a step do not depend on what ran before it, so a resumed run (fp32 weights and AdamW moments restored)
continues exactly as the uninterrupted one would (bit for bit on the CPU; CUDA kernels may reorder sums).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import torch

from splatpack import progress
from splatpack.errors import SplatpackError
from splatpack.feedforward.checkpoint import load_checkpoint, save_checkpoint
from splatpack.feedforward.config import FeedForwardConfig
from splatpack.feedforward.inference import spread
from splatpack.feedforward.model import FeedForwardModel
from splatpack.feedforward.scenes import HELD_OUT_FIRST, MultiViewScene, procedural_scene
from splatpack.feedforward.settings import LOSS_WEIGHTS, TrainSettings
from splatpack.feedforward.train import render_targets, train_step

CHECKPOINT = "checkpoint.pt"  # fp32 weights + optimiser state: what --resume reads
MODEL = "model.pt"  # fp16 weights only: what ships and what ``feedforward run`` / ns-train init read


def training_seeds(settings: TrainSettings) -> list[int]:
    """The training pool's scene seeds: distinct, drawn from ``seed``, all below ``HELD_OUT_FIRST``."""
    rng = np.random.default_rng([settings.seed, 0x5EED])
    return [int(s) for s in rng.choice(HELD_OUT_FIRST, size=settings.train_scenes, replace=False)]


def heldout_seeds(count: int) -> list[int]:
    return [HELD_OUT_FIRST + i for i in range(count)]


def step_choice(settings: TrainSettings, step: int) -> tuple[int, list[int], list[int]]:
    """(index into the training pool, context views, target views) of ``step``."""
    rng = np.random.default_rng([settings.seed, step])
    order = rng.permutation(settings.views).tolist()
    return int(rng.integers(settings.train_scenes)), order[: settings.context], order[settings.context :]


def on_device(scene: MultiViewScene, device) -> MultiViewScene:
    return dataclasses.replace(scene, images=scene.images.to(device), c2w=scene.c2w.to(device), Ks=scene.Ks.to(device))


def heldout_context(views: int, context: int) -> tuple[list[int], list[int]]:
    """Evenly spread context views of a held-out scene and the rest as targets (fixed, for comparable scores)."""
    chosen = spread(context, views)
    return chosen, [v for v in range(views) if v not in chosen]


@torch.no_grad()
def heldout_psnr(model: FeedForwardModel, scenes: list[MultiViewScene], context: int, *, stage=None, blend=0.0):
    """Mean PSNR (dB) of the target views of ``scenes`` rendered from their context views."""
    model.eval()
    scores = []
    for scene in scenes:
        ctx, targets = heldout_context(len(scene.images), context)
        images, c2w, Ks = scene.views(ctx)
        pred = model(images, c2w, Ks, stage=stage, blend=blend)
        height, width = scene.images.shape[1:3]
        background = images.reshape(-1, 3).mean(dim=0)
        out = render_targets(pred, scene.c2w[targets], scene.Ks[targets], width, height, background)
        mse = torch.mean((out.rgb.clamp(0, 1) - scene.images[targets]) ** 2)
        scores.append(float(-10 * torch.log10(mse.clamp_min(1e-10))))
    return float(np.mean(scores)) if scores else float("nan")


class ScalarLog:
    """Scalars per step: tensorboard event files when tensorboard is installed, else one JSON object a line."""

    def __init__(self, folder: Path, start_step: int):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            SummaryWriter = None
        if SummaryWriter is not None:
            # purge_step drops events a killed run logged after its last checkpoint.
            self.writer, self.jsonl = SummaryWriter(str(folder / "tensorboard"), purge_step=start_step), None
            self.path = folder / "tensorboard"
        else:
            self.writer, self.path = None, folder / "log.jsonl"
            self.jsonl = open(self.path, "a")

    def log(self, step: int, values: dict[str, float]) -> None:
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, step)
        else:
            self.jsonl.write(json.dumps({"step": step, **values}) + "\n")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        else:
            self.jsonl.close()


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SplatpackError("--device cuda: no CUDA device is available to this PyTorch")
    if device not in ("cpu", "cuda"):
        raise SplatpackError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


@dataclasses.dataclass
class TrainResult:
    step: int
    heldout_psnr: float
    stage: int
    gaussians: int
    checkpoint: Path
    model: Path
    log: Path


def _resume(out: Path, cfg: FeedForwardConfig, settings: TrainSettings, device):
    """(model, optimiser state, step) of the checkpoint in ``out``, refused when it was trained differently."""
    model, extra = load_checkpoint(out / CHECKPOINT, device=device)
    if model.cfg != cfg:
        changed = [f.name for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(model.cfg, f.name)]
        raise SplatpackError(f"the checkpoint's model differs in {', '.join(changed)}", out / CHECKPOINT)
    stored = dict(extra.get("settings", {}))
    # Written before the loss terms existed: it trained without them (and their caps did not matter).
    if not any(name in stored for name in LOSS_WEIGHTS):
        stored.update({name: 0.0 for name in LOSS_WEIGHTS}, sh_cap=settings.sh_cap,
                      max_anisotropy=settings.max_anisotropy)  # fmt: skip
    stored["stage_starts"] = tuple(stored.get("stage_starts", ()))
    mine = dataclasses.asdict(settings)
    changed = [k for k in mine if k not in ("steps", "checkpoint_every", "heldout_scenes") and stored.get(k) != mine[k]]
    if changed:
        raise SplatpackError(f"the checkpoint was trained with other {', '.join(changed)}", out / CHECKPOINT)
    return model, extra["optimizer"], int(extra["step"])


def train(
    out: str | os.PathLike,
    cfg: FeedForwardConfig | None = None,
    settings: TrainSettings | None = None,
    *,
    resume: bool = False,
    device: str = "auto",
    report=print,
) -> TrainResult:
    """Train (or with ``resume`` continue) a model into the folder ``out``; ``report`` gets one line per
    evaluation. Writes ``checkpoint.pt`` (resumable) every ``checkpoint_every`` steps and at the end, and
    ``model.pt`` (fp16, to ship) at the end."""
    cfg, settings = cfg or FeedForwardConfig(), settings or TrainSettings()
    if settings.resolution % cfg.patch:
        raise SplatpackError(f"resolution {settings.resolution} does not divide into {cfg.patch}-pixel patches")
    out = Path(out)
    dev = resolve_device(device)
    if resume and (out / CHECKPOINT).is_file():
        model, optimizer_state, start = _resume(out, cfg, settings, dev)
    elif resume:
        raise SplatpackError(f"--resume: no {CHECKPOINT} to continue from", out)
    elif (out / CHECKPOINT).exists():
        raise SplatpackError(f"holds a run already ({CHECKPOINT}); pass --resume to continue it", out)
    else:
        torch.manual_seed(settings.seed)
        model, optimizer_state, start = FeedForwardModel(cfg).to(dev), None, 0
    if start > settings.steps:
        raise SplatpackError(f"the checkpoint is at step {start}, beyond --steps {settings.steps}", out / CHECKPOINT)
    out.mkdir(parents=True, exist_ok=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    curriculum, weights = settings.curriculum(cfg), settings.loss_weights()
    pool_seeds = training_seeds(settings)
    pool: dict[int, MultiViewScene] = {}  # generated on first use: a short run never traces the whole pool
    side = settings.resolution

    def scene(seed: int) -> MultiViewScene:
        if seed not in pool:
            pool[seed] = on_device(procedural_scene(seed, settings.views, side, side), dev)
        return pool[seed]

    heldout = [
        on_device(procedural_scene(s, settings.views, side, side), dev) for s in heldout_seeds(settings.heldout_scenes)
    ]
    log = ScalarLog(out, start)

    def save(step: int) -> dict:
        """Evaluate, write the resumable checkpoint; the run's facts (what model.pt records too)."""
        stage, blend = curriculum.at(step)
        psnr = heldout_psnr(model, heldout, settings.context, stage=stage, blend=blend)
        meta = {"step": step, "settings": dataclasses.asdict(settings), "resolution": [side, side],
                "stage": [stage, blend], "heldout_psnr": psnr}  # fmt: skip
        save_checkpoint(out / CHECKPOINT, model, half=False, extra={**meta, "optimizer": optimizer.state_dict()})
        log.log(step, {"heldout/psnr": psnr})
        report(f"step {step}: held-out PSNR {psnr:.2f} dB over {len(heldout)} scenes, stage {stage}"
               + (f" fading to {stage + 1} ({blend:.2f})" if blend else ""))  # fmt: skip
        return meta

    try:
        with progress.stage("train", total=settings.steps - start) as bar:
            for step in range(start, settings.steps):
                stage, blend = curriculum.at(step)
                index, context, targets = step_choice(settings, step)
                lr = settings.lr_at(step)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                loss = train_step(model, optimizer, scene(pool_seeds[index]), context, targets, stage=stage,
                                  blend=blend, ssim_weight=settings.ssim_weight, clip=settings.clip,
                                  weights=weights)  # fmt: skip
                log.log(step, {"train/loss": loss, "train/lr": lr, "train/stage": stage + blend})
                bar.advance()
                if (step + 1) % settings.checkpoint_every == 0 and step + 1 < settings.steps:
                    save(step + 1)
        meta = save(settings.steps)
        save_checkpoint(out / MODEL, model, extra=meta)
    finally:
        log.close()
    stage, blend = meta["stage"]
    gaussians = cfg.gaussians(stage + (blend > 0))
    return TrainResult(settings.steps, meta["heldout_psnr"], stage, gaussians, out / CHECKPOINT, out / MODEL, log.path)
