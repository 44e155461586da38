"""Short runs: the methods' 30k-step event plans scaled to a CPU-sized budget, trained in this process.

The paper defaults (``splatpack.nerfstudio.method``) never densify or raise the SH degree in a few thousand
steps. Applied to every method alike (``bench/train.py``, ``splatpack demo``): no resolution warm-up,
densification from ``iterations/15`` to ``iterations/2``, SH degree +1 every ``iterations/15``.

- ``splatpack`` (SOG) refines at the baseline's cadence (every ``SOG_REFINE_EVERY`` steps, re-sorting its grid
  after each) and grows only above ``SOG_SHORT_RUN_GRAD``: the paper's 7e-5 every 1000 steps assumes 30k steps and
  in 1500 refines twice, growing nearly every Gaussian both times (BENCHMARKS.md gives the thresholds tried);
- ``splatpack-omg`` keeps OMG's events at the paper's fractions of 30k: depth re-initialisation at 1/6 and 1/3
  (as many points as there are Gaussians then: the paper's 3.5M suits ~200 Mip-NeRF 360 views at full size),
  position LR rewound to 1/6, sampling at 1/2, LD pruning at 2/3, SVQ at 29/30. **The MLP fields are off**
  (``fields_at = -1``: the raw layout, colour, opacity and SH SVQ'd directly): switched on at 1/2 they get 750
  steps of a 1500-step run where OMG gives them 15k, and cost 2.6 dB at the same size class on the demo scene
  (BENCHMARKS.md, "OMG part 2"); setting ``fields_at`` turns them back on, with their learning-rate warm-up
  (100) and milestones (1000, 3500, 6000 after the switch) scaled like the other events. The blur split is
  off: it force-splits every Gaussian leading more than 1/5000 of a view, which early in a short run is nearly
  all of them (demo, 1500 steps: 61k Gaussians by step 500 against 29k without it, each step 2-3x slower), and
  Mini-Splatting has 15k steps to recover.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

SOG_SHORT_RUN_GRAD = 6e-4
SOG_REFINE_EVERY = 100
PAPER_STEPS = 30000


def apply_short_schedule(model, method: str, iterations: int, *, sog_refine_every: int = SOG_REFINE_EVERY) -> None:
    """Set ``model`` (a splatpack/splatfacto model config of ``method``) to the short schedule (module docstring)."""
    model.num_downscales = 0
    model.warmup_length = iterations // 15
    model.stop_split_at = iterations // 2
    model.sh_degree_interval = max(1, iterations // 15)
    if method == "splatpack":
        model.refine_every = model.sort_every = sog_refine_every
        model.densify_grad_thresh = SOG_SHORT_RUN_GRAD
    if method == "splatpack-omg":
        model.sample_lr_rewind_to, model.sample_at = iterations // 6, iterations // 2
        model.depth_reinit_at, model.depth_reinit_points = (iterations // 6, iterations // 3), 0
        model.fields_at, model.prune_at, model.svq_at = -1, 2 * iterations // 3, 29 * iterations // 30
        model.fields_lr_warmup = max(1, iterations * 100 // PAPER_STEPS)
        model.fields_lr_milestones = tuple(iterations * m // PAPER_STEPS for m in (1000, 3500, 6000))
        model.blur_split = False


def method_trainer_config(method: str):
    """A fresh copy of splatpack's ``method`` TrainerConfig (splatpack, splatpack-base, splatpack-omg)."""
    from splatpack.nerfstudio.method import splatpack_base_method, splatpack_method, splatpack_omg_method

    specs = {
        "splatpack": splatpack_method,
        "splatpack-base": splatpack_base_method,
        "splatpack-omg": splatpack_omg_method,
    }
    if method not in specs:
        raise ValueError(f"unknown method {method!r}; one of {', '.join(specs)}")
    return copy.deepcopy(specs[method].config)


def configure_short_run(cfg, method: str, data: Path, out_dir: Path, iterations: int, seed: int, **schedule) -> None:
    """Point ``cfg`` (any nerfstudio TrainerConfig) at ``data`` for a quiet in-process run of ``iterations``: no
    viewer, no periodic evaluation or checkpoints (the caller exports), outputs under ``out_dir``, the short
    schedule (``schedule``: ``apply_short_schedule``'s options)."""
    cfg.output_dir = Path(out_dir)
    cfg.experiment_name = Path(data).name
    cfg.timestamp = f"{method}-seed{seed}"
    cfg.machine.seed = seed
    cfg.vis = "tensorboard"
    cfg.max_num_iterations = iterations
    cfg.steps_per_eval_image = cfg.steps_per_eval_batch = cfg.steps_per_eval_all_images = 10**9
    cfg.steps_per_save = 10**9
    cfg.pipeline.datamanager.data = Path(data)
    cfg.pipeline.datamanager.dataparser.downscale_factor = 1  # never write downscaled image folders by the data
    if hasattr(cfg.pipeline.model, "export_at_end"):
        cfg.pipeline.model.export_at_end = False
    apply_short_schedule(cfg.pipeline.model, method, iterations, **schedule)


def train(cfg):
    """Train ``cfg`` through nerfstudio's own ``Trainer`` (what ``ns-train`` runs); (trainer, training seconds)."""
    from nerfstudio.engine.trainer import Trainer
    from nerfstudio.scripts.train import _set_random_seed

    _set_random_seed(cfg.machine.seed)
    cfg.save_config()
    trainer = Trainer(cfg, local_rank=0, world_size=1)
    trainer.setup()
    start = time.perf_counter()
    trainer.train()
    return trainer, time.perf_counter() - start
