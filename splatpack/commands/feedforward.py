"""``splatpack feedforward train OUT_DIR`` / ``splatpack feedforward run --data DIR OUT``: the feed-forward
scene-token model (posed images -> a fixed budget of Gaussians in one pass)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

import tyro

from splatpack.feedforward.config import FeedForwardConfig
from splatpack.feedforward.settings import TrainSettings

Device = Literal["auto", "cpu", "cuda"]


@dataclasses.dataclass
class Train:
    """Train the feed-forward model on procedural scenes ray traced on the fly (seeded; a fixed set of held-out
    scenes is never trained on). Writes OUT_DIR/checkpoint.pt (fp32 + optimiser, resumable) every
    --checkpoint-every steps and at the end, OUT_DIR/model.pt (fp16, what `feedforward run` and ns-train's init
    read), and tensorboard logs (OUT_DIR/tensorboard) or, without tensorboard, OUT_DIR/log.jsonl. Prints the
    held-out PSNR at each checkpoint and at the end. Same --seed, same weights (on the CPU)."""

    out_dir: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="OUT_DIR")]
    """Folder of the run (created if missing)."""
    settings: Annotated[TrainSettings, tyro.conf.arg(name="")] = TrainSettings()
    model: FeedForwardConfig = FeedForwardConfig()
    """Model sizes (stored in the checkpoint)."""
    resume: bool = False
    """Continue the run in OUT_DIR from its checkpoint.pt (same model and settings; --steps may grow)."""
    device: Device = "auto"
    """Where to train: auto (CUDA when available), cpu or cuda."""
    quiet: bool = False
    """No progress bar and no per-checkpoint lines: only the summary."""

    def run(self) -> None:
        from splatpack import progress
        from splatpack.feedforward.trainer import train

        def report(line: str) -> None:
            if not self.quiet:
                print(line, flush=True)

        with progress.reporting("quiet" if self.quiet else "normal"):
            result = train(self.out_dir, self.model, self.settings, resume=self.resume, device=self.device,
                           report=report)  # fmt: skip
        print(
            f"{result.model}: {result.step} steps, {result.gaussians:,} Gaussians (stage {result.stage}), "
            f"held-out PSNR {result.heldout_psnr:.2f} dB over {self.settings.heldout_scenes} procedural scenes; "
            f"logs in {result.log}"
        )


@dataclasses.dataclass
class Run:
    """Predict Gaussians of a posed-image dataset (nerfstudio transforms.json or COLMAP folder) in one forward
    pass and write them, in the data's own frame, in any format splatpack writes (from OUT's extension)."""

    output: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="OUT")]
    """Output splat file (.ply, .spz, .sog, .splat, .compressed.ply, .glb, .spk); written atomically."""
    data: Path
    """transforms.json (or its folder) or a COLMAP scene folder."""
    checkpoint: Optional[Path] = None  # noqa: UP045 - see splatpack.commands.OptionalInt
    """Feed-forward checkpoint (model.pt or checkpoint.pt of a run; default: the shipped one, none yet)."""
    views: int = 8
    """Context views, evenly spread over the split's frames (all of them when it has fewer)."""
    frames: tuple[str, ...] = ()
    """Name the context frames instead (image paths as the dataset lists them)."""
    split: Literal["train", "test", "all"] = "train"
    """Frames to draw the context from (the dataset's lists, else every 8th frame is test)."""
    device: Device = "auto"
    """Where to run the model: auto (CUDA when available), cpu or cuda."""

    def run(self) -> None:
        import splatpack.io as sio
        from splatpack.errors import SplatpackError
        from splatpack.feedforward.inference import feedforward_splats
        from splatpack.feedforward.trainer import resolve_device
        from splatpack.io.files import human_bytes, path_size

        fmt = sio.format_from_name(self.output)
        if fmt is None:
            raise SplatpackError(f"cannot tell the output format from the name; use one of {', '.join(sio.FORMATS)}",
                                 self.output)  # fmt: skip
        splats = feedforward_splats(self.data, checkpoint=self.checkpoint, views=self.views, frames=self.frames,
                                    split=self.split, device=resolve_device(self.device))  # fmt: skip
        sio.write(splats, self.output, format=fmt)
        print(f"{self.output} ({fmt}, {human_bytes(path_size(self.output))}): {len(splats):,} Gaussians "
              f"from {self.data}")  # fmt: skip


@dataclasses.dataclass
class Command:
    """Feed-forward Gaussians: train the scene-token model on procedural scenes, or run it on posed images."""

    action: Annotated[
        Union[  # noqa: UP007 - tyro reads the subcommands from a typing.Union
            Annotated[Train, tyro.conf.subcommand("train", prefix_name=False)],
            Annotated[Run, tyro.conf.subcommand("run", prefix_name=False)],
        ],
        tyro.conf.arg(name=""),
    ]

    def run(self) -> None:
        self.action.run()
