"""Feed-forward benchmark (issue 11): what one forward pass of a checkpoint gives, and what it is worth as the
start of per-scene training.

1. **Feed-forward quality and cost**, on the trainer's held-out procedural scenes (seeds 1,000,000 + i, never
   trained on; the checkpoint's views, context views and resolution), the demo scene (data/demo: 8 training
   views spread over the ring as context, its 40 held-out views scored) and fox (../shared/data/fox, skipped
   when absent; every 8th frame held out, scored at ``--fox-scale``): PSNR/SSIM of the held-out views rendered
   from the prediction in memory and from its .spk and .sog files as read back, Gaussians and file sizes.
   Renders are composited over the context views' mean colour, the background the model trains against.
   Beside them on the procedural scenes, goal 3's yardstick (``--fit-steps``, *fit dB*): as many Gaussians
   optimised per scene from a seed cloud for that many steps on the same context views, scored on the same views.
2. **Forward time and memory**: one forward pass of the model (``--forward-views`` views of held-out scene 0 at
   ``--forward-side``), median wall time of ``--repeats`` after a warm-up; peak memory on CUDA from the
   allocator, on the CPU in a fresh process (spawned, model loaded): the peak RSS during one pass above the RSS
   before it (sampled each millisecond), and the process's peak RSS with torch, the model and the pass.
3. **The init experiment** (``--init-scenes``: ``--init-procedural`` held-out procedural scenes, each written as
   a nerfstudio folder by ``procedural_folder``, the demo scene, fox): per-scene training of ``--method`` through
   nerfstudio's Trainer (``splatpack.nerfstudio.short_run``, the short schedule of ``max(--steps)`` iterations,
   as bench/train.py runs it) from the seed cloud (fox, which has none: a random cloud) and from the feed-forward
   prediction (``init feedforward``, ``--init-views`` training views), same method and seeds; held-out PSNR after
   each of ``--steps``, and the first of those steps at which the feed-forward start reaches the seed-cloud
   run's final PSNR. (nerfstudio scores over the method's own background, so step 0 differs from part 1's figure.)

Tiny tensors on a loaded 2-core CPU run up to 100x slower on two torch threads than on one (spinning
threads); ``--threads`` sets the count, and the results record it.

    .venv/bin/python bench/feedforward.py --checkpoint RUN/model.pt [--procedural 5] [--scenes demo,fox]
                                          [--fit-steps 200] [--forward-views 8 --forward-side 128 --repeats 5]
                                          [--init-scenes procedural,demo,fox] [--init-procedural 5]
                                          [--procedural-views 64 --procedural-size 160 120]
                                          [--steps 0,100,250,500,1000,1500]
                                          [--method splatpack-base] [--seeds 42] [--init-views 8]
                                          [--set METHOD.FIELD=VALUE ...] [--demo-downscale 1] [--threads 1]
                                          [--out bench/results/feedforward.json]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import resource
import statistics
import tempfile
import time
from pathlib import Path

from _report import ROOT, Column, print_table, write_results
from train import FOX, add_training_options, method_config

DEMO = ROOT / "data" / "demo"


# ---------------------------------------------------------------------------------------------- feed-forward


def score(predictor, images, c2w, Ks, heldout, work: Path, args) -> dict:
    """Predict from the context (images (V, H, W, 3), c2w, Ks), score the prediction and its .spk / .sog files
    on ``heldout`` (a ``Views`` without background: the context's mean colour is put behind)."""
    import dataclasses

    from splatpack.evaluation import evaluate, round_trip

    splats = predictor(images, c2w, Ks)
    views = dataclasses.replace(heldout, background=images.reshape(-1, 3).mean(dim=0).float())
    row = {"gaussians": len(splats), "context_views": len(images), "heldout_views": len(views)}
    row.update({k: v for k, v in evaluate(splats, views, batch=1).items() if k in ("psnr", "ssim", "lpips")})
    options = {"sog": {"preset": args.sog_preset}}
    for r in round_trip(splats, ("spk", "sog"), work, views, options=options, batch=1):
        row[f"{r.format}_bytes"], row[f"{r.format}_psnr"] = r.bytes, r.scores.get("psnr")
    return row


def procedural_rows(predictor, settings: dict, work: Path, args) -> list[dict]:
    import torch

    from splatpack.evaluation import Views
    from splatpack.feedforward.model import canonical_frame
    from splatpack.feedforward.scenes import procedural_scene
    from splatpack.feedforward.trainer import heldout_context, heldout_seeds

    views, context, side = settings["views"], settings["context"], predictor.side
    rows = []
    for seed in heldout_seeds(args.procedural):
        scene = procedural_scene(seed, views, side, side)
        ctx, targets = heldout_context(views, context)
        # The trainer renders with the renderer's near plane in the canonical frame: the same cut here.
        near = 0.01 * float(canonical_frame(scene.c2w[ctx][None]).scale[0])
        heldout = Views(torch.linalg.inv(scene.c2w[targets]), scene.Ks[targets], [(side, side)] * len(targets),
                        list(scene.images[targets]), near_plane=near)  # fmt: skip
        row = score(predictor, scene.images[ctx], scene.c2w[ctx], scene.Ks[ctx], heldout, work / f"p{seed}", args)
        if args.fit_steps:
            row["fit_psnr"] = seed_cloud_fit(
                scene, ctx, heldout, row["gaussians"], args.fit_steps, predictor.model.cfg.sh_degree
            )
        rows.append({"scene": f"procedural {seed}", **row})
    return rows


def seed_cloud_fit(scene, ctx: list[int], heldout, n: int, steps: int, sh_degree: int) -> float:
    """Goal 3's yardstick: held-out PSNR of per-scene optimisation of exactly ``n`` Gaussians (no densification)
    from an SfM-like seed cloud of the scene (``demo_scene.seed_points`` on the context views, resampled to
    ``n``), ``steps`` steps of ``splatpack.train``'s 3DGS loss on the context views, scored on the same targets as
    the feed-forward prediction, over the same background (the context views' mean colour)."""
    import dataclasses

    import numpy as np
    import torch

    from splatpack.datasets.cameras import CameraSet
    from splatpack.datasets.demo_scene import seed_points
    from splatpack.evaluation import evaluate
    from splatpack.train.trainer import TrainConfig, init_from_points, train

    side = scene.images.shape[1]
    objects, c2w = procedural_geometry(scene, side, side)
    c2w, K = c2w[ctx], scene.Ks[0].double().numpy()
    rng = np.random.default_rng([scene.seed, 2])
    xyz, rgb, _, _ = seed_points(objects, rng, c2w, K, side, side)
    if len(xyz) >= n:
        pick = rng.choice(len(xyz), n, replace=False)
    else:  # every point once, then repeats, which are pulled apart (a zero nearest-neighbour scale otherwise)
        pick = np.concatenate([np.arange(len(xyz)), rng.choice(len(xyz), n - len(xyz))])
    repeated = (np.arange(n) >= len(xyz))[:, None]
    points = xyz[pick] + rng.normal(size=(n, 3)) * np.ptp(xyz, axis=0).max() * 1e-3 * repeated
    points = torch.from_numpy(points).float()
    start = init_from_points(points, torch.from_numpy(rgb[pick] / 255.0).float(), sh_degree)
    cams = CameraSet(scene.images[ctx], torch.linalg.inv(scene.c2w[ctx]), scene.Ks[ctx], [str(v) for v in ctx],
                     side, side)  # fmt: skip
    background = scene.images[ctx].reshape(-1, 3).mean(dim=0)
    cfg = TrainConfig(
        steps=steps, sh_degree=sh_degree, densify=False, seed=scene.seed, background=tuple(background.tolist())
    )
    fitted = train(start, cams, cfg)
    return evaluate(fitted, dataclasses.replace(heldout, background=background), batch=1)["psnr"]


def procedural_geometry(scene, width: int, height: int):
    """(the ray tracer's objects, float64 (V, 4, 4) camera-to-world poses) of procedural ``scene``, rebuilt from
    its seed as ``procedural_scene`` draws them, and checked against its first view."""
    import numpy as np

    from splatpack.datasets.demo_scene import Floor, render
    from splatpack.feedforward.scenes import random_objects, random_rig

    rng = np.random.default_rng(scene.seed)
    objects = [Floor(rng), *random_objects(rng)]
    c2w, K = random_rig(rng, len(scene.images)), scene.Ks[0].double().numpy()
    if not np.allclose(render(objects, c2w[0], K, width, height), scene.images[0].numpy(), atol=1e-5):
        raise SystemExit(f"procedural scene {scene.seed}: its objects could not be rebuilt from the seed")
    return objects, c2w


def real_scene_row(name: str, data: Path, predictor, downscale: int, work: Path, args) -> dict:
    """A transforms.json scene: ``--context-views`` training views spread over the train split as context."""
    import torch

    from splatpack.datasets.transforms import load_transforms
    from splatpack.evaluation import Views
    from splatpack.feedforward.inference import spread

    train = load_transforms(data, split="train", downscale=downscale)
    test = load_transforms(data, split="test", downscale=downscale)
    chosen = spread(args.context_views, len(train.images))
    c2w = torch.linalg.inv(train.viewmats[chosen].double()).float()
    heldout = Views(test.viewmats, test.Ks, [(test.width, test.height)] * len(test.images), list(test.images))
    return {"scene": name, **score(predictor, train.images[chosen], c2w, train.Ks[chosen], heldout, work, args)}


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def _peak_rss_of_one_forward(checkpoint: str, inputs, stage: int, blend: float) -> tuple[int, int, int]:
    """In a fresh process with the model loaded: RSS (KiB) before one forward pass, its peak during the pass
    (sampled every millisecond; torch releases the GIL in its kernels), and the process's peak RSS after it."""
    import threading

    import torch

    from splatpack.feedforward.checkpoint import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    model.eval()
    before, peak, done = _rss_kib(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_kib())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    with torch.no_grad():
        model(*inputs, stage=stage, blend=blend)
    done.set()
    sampler.join()
    return before, max(peak[0], _rss_kib()), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def forward_cost(predictor, args) -> dict:
    import torch

    from splatpack.feedforward.scenes import HELD_OUT_FIRST, procedural_scene

    scene = procedural_scene(HELD_OUT_FIRST, args.forward_views, args.forward_side, args.forward_side)
    dev = predictor.device
    inputs = (scene.images[None].to(dev), scene.c2w[None].to(dev), scene.Ks[None].to(dev))
    model, kw = predictor.model, {"stage": predictor.stage, "blend": predictor.blend}
    times = []
    with torch.no_grad():
        for _ in range(args.repeats + 1):  # the first is a warm-up
            if dev.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            model(*inputs, **kw)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    row = {"views": args.forward_views, "side": args.forward_side, "device": dev.type,
           "gaussians": predictor.gaussians, "repeats": args.repeats, "median_s": statistics.median(times[1:]),
           "parameters": sum(p.numel() for p in model.parameters())}  # fmt: skip
    if dev.type == "cuda":
        row["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        cpu_inputs = tuple(t.cpu() for t in inputs)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            before, peak, process = pool.apply(
                _peak_rss_of_one_forward, (str(predictor.path), cpu_inputs, *kw.values())
            )
        row["process_peak_mb"], row["forward_rss_mb"] = process / 1024, (peak - before) / 1024
    return row


# ---------------------------------------------------------------------------------------------- init experiment


def train_evaluated(cfg, steps: list[int], work: Path) -> list[dict]:
    """Train ``cfg`` through nerfstudio's Trainer (as ``short_run.train`` does); held-out PSNR/SSIM of the
    scene after each of ``steps`` optimiser steps (0: as initialised, feed-forward init included)."""
    from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
    from nerfstudio.engine.trainer import Trainer
    from nerfstudio.scripts.train import _set_random_seed

    from splatpack.nerfstudio.export import export_pipeline

    _set_random_seed(cfg.machine.seed)
    cfg.save_config()
    trainer = Trainer(cfg, local_rank=0, world_size=1)
    trainer.setup()
    curve = []

    def record(step: int) -> None:
        report = export_pipeline(trainer.pipeline, work / f"step{step}", formats=(), sog_preset="tiny")
        curve.append({"step": step, "psnr": report["trained_psnr"], "ssim": report["trained_ssim"],
                      "gaussians": report["num_gaussians"]})  # fmt: skip

    at = TrainingCallbackLocation
    # Appended after the model's own callbacks: step 0 is scored after the feed-forward init has run.
    trainer.callbacks.append(TrainingCallback([at.BEFORE_TRAIN_ITERATION], lambda step: record(0), iters=(0,)))
    later = tuple(s - 1 for s in steps if s > 0)
    trainer.callbacks.append(TrainingCallback([at.AFTER_TRAIN_ITERATION], lambda step: record(step + 1), iters=later))
    trainer.train()
    return [p for p in curve if p["step"] in steps]


def procedural_folder(seed: int, out: Path, views: int, width: int, height: int, test_every: int) -> Path:
    """Procedural scene ``seed`` as a nerfstudio folder: ``views`` ray-traced views (a rig of their own: the
    objects are the feed-forward part's, the camera places are drawn for this view count), every
    ``test_every``-th held out, and a seed cloud sampled from the surfaces the training views see, as the demo
    scene's is (``demo_scene.seed_points``); the feed-forward start reads only images and poses."""
    import json

    import cv2
    import numpy as np
    from plyfile import PlyData, PlyElement

    from splatpack.datasets.cameras import GL_TO_CV
    from splatpack.datasets.demo_scene import seed_points
    from splatpack.feedforward.scenes import procedural_scene

    if (out / "transforms.json").is_file():
        return out
    scene = procedural_scene(seed, views, width, height)
    objects, c2w = procedural_geometry(scene, width, height)
    K = scene.Ks[0].double().numpy()
    (out / "images").mkdir(parents=True, exist_ok=True)
    names = [f"images/frame_{i:05d}.png" for i in range(views)]
    for name, image in zip(names, scene.images.numpy()):
        cv2.imwrite(str(out / name), np.round(image[:, :, ::-1] * 255).astype(np.uint8))
    test = [n for i, n in enumerate(names) if i % test_every == 0]
    train = [n for n in names if n not in test]
    xyz, rgb, _, _ = seed_points(objects, np.random.default_rng([seed, 1]), c2w[[names.index(n) for n in train]], K,
                                 width, height)  # fmt: skip
    vertex = np.empty(len(xyz), dtype=[(c, "f4") for c in "xyz"] + [(c, "u1") for c in ("red", "green", "blue")])
    for i, c in enumerate("xyz"):
        vertex[c] = xyz[:, i]
    for i, c in enumerate(("red", "green", "blue")):
        vertex[c] = rgb[:, i]
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(out / "sparse_pc.ply"))
    frames = [{"file_path": n, "transform_matrix": (pose @ GL_TO_CV).tolist()} for n, pose in zip(names, c2w)]
    meta = {"camera_model": "OPENCV", "fl_x": K[0, 0], "fl_y": K[1, 1], "cx": K[0, 2], "cy": K[1, 2], "w": width,
            "h": height, "ply_file_path": "sparse_pc.ply", "train_filenames": train, "val_filenames": test,
            "test_filenames": test, "frames": frames}  # fmt: skip
    (out / "transforms.json").write_text(json.dumps(meta, indent=1))
    return out


def init_rows(scene: str, data: Path, checkpoint: Path, work: Path, args) -> list[dict]:
    rows = []
    for seed in args.seed_list:
        for init in ("seed", "feedforward"):
            args.seed, base = seed, list(args.set)
            if init == "feedforward":
                args.set = base + [(args.method, "init", "feedforward"), (args.method, "init_checkpoint", checkpoint),
                                   (args.method, "init_views", args.init_views)]  # fmt: skip
            cfg = method_config(args.method, scene, data, work / "runs" / init, args)
            args.set = base
            if scene == "demo":
                cfg.pipeline.datamanager.camera_res_scale_factor = 1 / args.demo_downscale
            print(f"== init {init} / {scene} / {args.method} / seed {seed}", flush=True)
            curve = train_evaluated(cfg, args.step_list, work / "eval" / f"{scene}-{init}-{seed}")
            label = "random" if init == "seed" and scene == "fox" else init  # fox has no seed cloud
            rows.append({"scene": scene, "method": args.method, "init": label, "seed": seed, "curve": curve})
    for row in rows:  # the first step at which feed-forward reaches the seed-cloud run's final PSNR
        if row["init"] == "feedforward":
            ref = next(r for r in rows if r["seed"] == row["seed"] and r["init"] != "feedforward")
            target = ref["curve"][-1]["psnr"]
            row["reaches_reference_at"] = next((p["step"] for p in row["curve"] if p["psnr"] >= target), None)
    return rows


def procedural_means(rows: list[dict]) -> list[dict]:
    """Per start, the held-out PSNR at each step averaged over the procedural scenes and seeds."""
    out = []
    for init in ("seed", "feedforward"):
        runs = [r for r in rows if r["scene"].startswith("procedural") and r["init"] == init]
        if runs:
            curve = [{"step": p["step"], "psnr": statistics.mean(r["curve"][i]["psnr"] for r in runs)}
                     for i, p in enumerate(runs[0]["curve"])]  # fmt: skip
            out.append({"scene": f"procedural mean of {len(runs)}", "init": init, "seed": "-", "curve": curve})
    if len(out) == 2:
        target = out[0]["curve"][-1]["psnr"]
        out[1]["reaches_reference_at"] = next((p["step"] for p in out[1]["curve"] if p["psnr"] >= target), None)
    return out


# ---------------------------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True, help="a run's model.pt (or checkpoint.pt)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--procedural", type=int, default=5, help="held-out procedural scenes scored (seeds 1e6 + i)")
    ap.add_argument("--scenes", default="demo,fox", help="real scenes scored feed-forward: demo, fox ('': none)")
    ap.add_argument("--context-views", type=int, default=8, help="context views of the real scenes")
    ap.add_argument("--fox-scale", type=float, default=0.0625, help="fox image scale (1/16: 66x119)")
    ap.add_argument("--sog-preset", default="tiny", help="SOG writer preset of the .sog files")
    ap.add_argument(
        "--fit-steps",
        type=int,
        default=200,
        help="goal 3's yardstick: steps of per-scene optimisation of as many Gaussians from a seed cloud (0: off)",
    )
    ap.add_argument("--forward-views", type=int, default=8, help="context views of the timed forward pass")
    ap.add_argument("--forward-side", type=int, default=128, help="image side of the timed forward pass")
    ap.add_argument("--repeats", type=int, default=5, help="timed forward passes (median; after one warm-up)")
    ap.add_argument(
        "--init-scenes",
        default="procedural,demo,fox",
        help="scenes of the init experiment: procedural, demo, fox ('': none)",
    )
    ap.add_argument("--init-procedural", type=int, default=5, help="held-out procedural scenes in the init experiment")
    ap.add_argument("--procedural-views", type=int, default=64, help="views of each of those scene folders")
    ap.add_argument("--procedural-test-every", type=int, default=4, help="every N-th of those views is held out")
    ap.add_argument(
        "--procedural-size", type=int, nargs=2, default=(160, 120), metavar=("W", "H"), help="their image size"
    )
    ap.add_argument("--steps", default="0,100,250,500,1000,1500", help="steps at which held-out PSNR is taken")
    ap.add_argument("--method", default="splatpack-base", help="splatpack-base, splatpack or splatpack-omg")
    ap.add_argument("--seeds", default="42", help="comma-separated training seeds, the same for both starts")
    ap.add_argument("--init-views", type=int, default=8, help="training views the feed-forward init reads")
    ap.add_argument("--demo-downscale", type=int, default=1, help="demo images 1/N (160x120 at 1), both parts")
    ap.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: torch's default; on a loaded CPU 1 is faster)"
    )
    add_training_options(ap, "override a model config field of the init experiment's runs (both starts); repeatable")
    ap.add_argument("--work", type=Path, default=None, help="keep files and runs here (default: a temp folder)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "feedforward.json")
    return ap


FF_COLUMNS = (
    Column("scene", "scene"),
    Column("ctx", "context_views"),
    Column("test", "heldout_views"),
    Column("N", "gaussians", ","),
    Column("PSNR", "psnr", ".2f"),
    Column("SSIM", "ssim", ".4f"),
    Column("SPK KB", lambda r: r["spk_bytes"] / 1e3, ".1f"),
    Column("SPK dB", "spk_psnr", ".2f"),
    Column("SOG KB", lambda r: r["sog_bytes"] / 1e3, ".1f"),
    Column("SOG dB", "sog_psnr", ".2f"),
    Column("fit dB", "fit_psnr", ".2f"),
)
FORWARD_COLUMNS = (
    Column("device", "device"),
    Column("views", "views"),
    Column("side", "side"),
    Column("params", "parameters", ","),
    Column("N", "gaussians", ","),
    Column("median s", "median_s", ".3f"),
    Column("peak MB", "peak_mb", ".0f"),
    Column("process peak MB", "process_peak_mb", ".0f"),
    Column("forward RSS MB", "forward_rss_mb", ".1f"),
)


def main() -> None:
    args = _parser().parse_args()
    args.step_list = sorted({int(s) for s in args.steps.split(",")})
    args.seed_list = [int(s) for s in args.seeds.split(",")]
    if args.step_list[0] < 0 or args.step_list[-1] < 1:
        raise SystemExit("--steps: non-negative steps, at least one of them > 0")
    args.iterations = args.step_list[-1]
    for option, names, known in (("--scenes", args.scenes, ("demo", "fox")),
                                 ("--init-scenes", args.init_scenes, ("procedural", "demo", "fox"))):  # fmt: skip
        if unknown := set(filter(None, names.split(","))) - set(known):
            raise SystemExit(f"{option}: unknown scene {sorted(unknown)[0]!r}; one of {', '.join(known)}")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from splatpack.datasets.demo_scene import generate_demo_scene
    from splatpack.feedforward.checkpoint import load_checkpoint
    from splatpack.feedforward.inference import Predictor

    predictor = Predictor(args.checkpoint, args.device)
    settings = load_checkpoint(args.checkpoint)[1].get("settings", {"views": 8, "context": 6})
    torch.manual_seed(0)
    recorded = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "set"}
    recorded["set"] = [f"{method}.{field}={value!r}" for method, field, value in args.set]
    results: dict = {"checkpoint": str(args.checkpoint), "stage": [predictor.stage, predictor.blend],
                     "resolution": predictor.side, "settings": recorded}  # fmt: skip
    scenes = {"demo": lambda: generate_demo_scene(DEMO), "fox": lambda: FOX}
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="splatpack-bench-ff-")))
        rows = procedural_rows(predictor, settings, work / "files", args)
        for name in filter(None, args.scenes.split(",")):
            data = scenes[name]()
            if not data.exists():
                print(f"skipping {name}: {data} is absent")
                continue
            downscale = round(1 / args.fox_scale) if name == "fox" else args.demo_downscale
            rows.append(real_scene_row(name, data, predictor, downscale, work / "files" / name, args))
        procedural = [r for r in rows if r["scene"].startswith("procedural")]
        if procedural:
            keys = ("gaussians", "psnr", "ssim", "spk_bytes", "spk_psnr", "sog_bytes", "sog_psnr", "fit_psnr")
            mean = {k: statistics.mean(r[k] for r in procedural) for k in keys if k in procedural[0]}
            rows.append({"scene": f"procedural mean of {len(procedural)}", **mean})
        print_table(rows, FF_COLUMNS, "feed-forward, held-out views")
        results["feedforward"] = rows
        results["forward"] = forward_cost(predictor, args)
        print_table([results["forward"]], FORWARD_COLUMNS, "one forward pass")
        write_results(args.out, results)

        from splatpack.feedforward.trainer import heldout_seeds

        width, height = args.procedural_size
        for seed in heldout_seeds(args.init_procedural):
            folder = work / "procedural" / str(seed)
            scenes[f"procedural {seed}"] = lambda seed=seed, folder=folder: procedural_folder(
                seed, folder, args.procedural_views, width, height, args.procedural_test_every
            )
        names = [n for name in filter(None, args.init_scenes.split(",")) for n in scenes if n.startswith(name)]
        init = []
        for name in names:
            data = scenes[name]()
            if not data.exists():
                print(f"skipping {name}: {data} is absent")
                continue
            init += init_rows(name, data, args.checkpoint.resolve(), work / "init", args)
            columns = [Column("scene", "scene"), Column("init", "init"), Column("seed", "seed")]
            columns += [
                Column(f"{s}", lambda r, i=i: r["curve"][i]["psnr"], ".2f") for i, s in enumerate(args.step_list)
            ]
            columns.append(Column("reaches ref at", "reaches_reference_at"))
            print_table(init, columns, f"init experiment ({args.method}): held-out PSNR after N steps")
            results["init"] = init
            results["init_procedural_mean"] = procedural_means(init)
            if results["init_procedural_mean"]:
                print_table(results["init_procedural_mean"], columns, "procedural scenes, mean over scenes and seeds")
            write_results(args.out, results)  # after every scene, so a cut-short run keeps its rows


if __name__ == "__main__":
    main()
