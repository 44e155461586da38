"""Training benchmark: our plain-3DGS baseline, ``splatpack`` (Self-Organizing Gaussians) and nerfstudio's
``splatfacto``, side by side on the same data with the same iteration budget.

Each method trains through nerfstudio's own ``Trainer`` (what ``ns-train`` runs), then every run is exported
the same way (``splatpack.nerfstudio.export``: scene mapped to the data frame, written as .ply/.spz/.sog, read
back and rendered against the held-out views with one renderer), so PSNR/SSIM and sizes are comparable.

Short-run schedule, applied to every method alike: ``splatpack.nerfstudio.schedule.apply_short_schedule`` (the
30k-step event plans scaled to ``--iterations``; its docstring says how, and why SOG refines more often there).

splatfacto on a machine without CUDA runs inside ``splatpack.nerfstudio.splatfacto_cpu.splatfacto_on_cpu`` (its
gsplat call answered by our torch renderer, absgrad included, ``.cuda()`` a no-op, no LPIPS) with its own
densification settings; with CUDA it runs unmodified.

    .venv/bin/python bench/train.py [--scenes demo,fox] [--iterations 1500] [--fox-scale 0.0625] [--seeds 42,1,2,3,4]
                                    [--reference splatpack-base] [--demo-extra-views 34]
                                    [--methods splatpack-base,splatpack,splatfacto] [--out bench/results/train.json]
                                    [--fox-random N --fox-random-scale S] [--sog-preset P]
                                    [--set METHOD.FIELD=VALUE ...]   e.g. --set splatpack.smoothness_lambda=0
                                    [--reuse bench/results/earlier.json ...]

Evaluation protocol (BENCHMARKS.md, "Evaluation protocol"). Training is bit-reproducible on one machine for a
given seed, not across machines, and one seed's luck moves a method's held-out PSNR by tenths of a dB. So: the
demo scene holds out 40 views (6 of its ring plus 34 between the ring's cameras; ``--demo-extra-views 0`` gives
the old 6-view split), every method runs with each of ``--seeds`` (seed-major, so every finished seed is a
complete pair), and each method is compared with ``--reference`` (default the plain baseline) as a *paired*
difference: per seed, method minus reference on the same scene, machine and run; reported as mean +- standard
error over the seeds (>= 5 seeds for a verdict), beside each method's own seed-to-seed spread.

``--reuse FILE`` takes the rows of an earlier run instead of training them again (the reference's five seeds,
typically): a row is reused only when scene, method, seed, the training settings, the method's ``--set``
overrides and the torch thread count all match (training is bit-reproducible on one machine under those, and
the thread count moves PSNR as much as a seed does), and it keeps a note of the file it came from.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import json
import math
import shlex
import tempfile
from pathlib import Path

from _report import ROOT, Column, print_table, write_results

FOX = ROOT.parent / "shared" / "data" / "fox"
METHODS = ("splatpack-base", "splatpack", "splatfacto", "splatpack-omg")


# ---------------------------------------------------------------------------------------------- configs


def method_config(method: str, scene: str, data: Path, out: Path, args):
    """``method``'s TrainerConfig for ``scene`` with the benchmark's shared short-run schedule (see top)."""
    from nerfstudio.configs.method_configs import method_configs

    from splatpack.nerfstudio.dataparser import SplatpackDataParserConfig
    from splatpack.nerfstudio.short_run import configure_short_run, method_trainer_config
    from splatpack.nerfstudio.splatfacto_cpu import for_cpu_training

    if method == "splatfacto":
        cfg = copy.deepcopy(method_configs["splatfacto"])
        # Same files, same parser; only the seed cloud is read with plyfile instead of open3d.
        cfg.pipeline.datamanager.dataparser = SplatpackDataParserConfig()
        for_cpu_training(cfg)
    else:
        cfg = method_trainer_config(method)
    configure_short_run(cfg, method, data, out, args.iterations, args.seed, sog_refine_every=args.sog_refine_every)
    dm, model = cfg.pipeline.datamanager, cfg.pipeline.model
    if scene == "fox":  # the capture's own convention: every 8th frame held out; no seed cloud
        dm.camera_res_scale_factor = args.fox_scale
        dm.dataparser.eval_mode = "interval"
        dm.dataparser.eval_interval = 8
        model.num_random, model.random_scale = args.fox_random, args.fox_random_scale
    for target, field, value in args.set:
        if target == method:
            if not hasattr(model, field):
                raise SystemExit(f"--set: {method}'s model config has no field {field!r}")
            setattr(model, field, value)
    return cfg


def parse_override(text: str) -> tuple[str, str, object]:
    """``METHOD.FIELD=VALUE`` -> (method, field, value); VALUE is a Python literal (number, bool, tuple...)."""
    target, _, value = text.partition("=")
    method, _, field = target.rpartition(".")
    if method not in METHODS or not field or not value:
        raise argparse.ArgumentTypeError(f"expected METHOD.FIELD=VALUE with METHOD one of {', '.join(METHODS)}")
    try:
        return method, field, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(f"{value!r} is not a Python literal") from None


def overrides_of(method: str, args) -> list[str]:
    """``method``'s ``--set`` overrides as sorted ``FIELD=VALUE`` strings (what a reused row must match)."""
    return sorted(f"{field}={value!r}" for target, field, value in args.set if target == method)


# Settings that change what a run trains; ``--reuse`` compares them (a file written before one of them was
# recorded ran with its default).
TRAINING_SETTINGS = (
    "iterations", "fox_scale", "demo_extra_views", "fox_random", "fox_random_scale", "sog_refine_every", "sog_preset",
)  # fmt: skip


def reusable_rows(
    paths: list[Path], settings: dict, defaults: dict, threads: int, overrides: dict[str, list[str]]
) -> dict[tuple, dict]:
    """Rows of earlier result files that this run may take instead of training: (scene, method, seed) -> row;
    ``overrides``: each method's ``overrides_of`` in this run, which a row must have been trained with."""
    found: dict[tuple, dict] = {}
    for path in paths:
        earlier = json.loads(Path(path).read_text())
        same = all(earlier["settings"].get(k, defaults[k]) == settings[k] for k in TRAINING_SETTINGS)
        if not same or earlier["meta"]["machine"]["torch_threads"] != threads:
            print(f"--reuse {path}: other settings or thread count, none of its rows taken")
            continue
        for row in earlier["rows"]:
            if "overrides" not in row:  # written before rows recorded them: the file's command line says
                row["overrides"] = overrides_of(
                    row["method"], _parser().parse_args(shlex.split(earlier["meta"]["command"])[2:])
                )
            if row["overrides"] == overrides.get(row["method"]):
                found.setdefault((row["scene"], row["method"], row["seed"]), {"reused_from": str(path), **row})
    return found


# ---------------------------------------------------------------------------------------------- one run


def run(method: str, scene: str, data: Path, work: Path, args) -> dict:
    from splatpack.nerfstudio.export import export_pipeline
    from splatpack.nerfstudio.short_run import train
    from splatpack.nerfstudio.splatfacto_cpu import splatfacto_on_cpu

    cfg = method_config(method, scene, data, work / "runs", args)
    patch = splatfacto_on_cpu() if method == "splatfacto" else contextlib.nullcontext()
    with patch:
        trainer, seconds = train(cfg)
        report = export_pipeline(
            trainer.pipeline,
            work / "export" / scene / cfg.timestamp,
            formats=("ply", "spz", "sog") + (("spk",) if method == "splatpack-omg" else ()),
            sog_preset=args.sog_preset,
        )
    files = report["files"]
    row = {
        "scene": scene,
        "method": method,
        "seed": args.seed,
        "iterations": args.iterations,
        "overrides": overrides_of(method, args),
        "gaussians": report["num_gaussians"],
        "psnr": report["trained_psnr"],
        "ssim": report["trained_ssim"],
        "train_seconds": seconds,
        "seconds_per_iteration": seconds / args.iterations,
        "resolution": [
            int(trainer.pipeline.datamanager.train_dataset.cameras.width[0]),
            int(trainer.pipeline.datamanager.train_dataset.cameras.height[0]),
        ],
    }
    model = trainer.pipeline.model
    if hasattr(model, "omg_events"):  # OMG: its events and what accumulating importance cost
        row["omg_events"] = [list(e) for e in model.omg_events]
        row["importance_seconds"] = model.importance_seconds
    for name, entry in files.items():
        fmt = name.split(".")[-1]
        row[f"{fmt}_bytes"], row[f"{fmt}_psnr"], row[f"{fmt}_ssim"] = entry["bytes"], entry["psnr"], entry["ssim"]
    if "scene.spk" in files:  # the per-section byte table of the compact file
        from splatpack.io import spk

        facts = spk.describe(work / "export" / scene / cfg.timestamp / "scene.spk")
        row["spk_sections"] = facts["sections"]
        row["spk_payload_bytes_per_gaussian"] = facts["payload_bytes_per_gaussian"]
    return row


COLUMNS = ("gaussians", "psnr", "ssim", "ply_bytes", "spz_bytes", "spz_psnr", "sog_bytes", "sog_psnr", "train_seconds")
# Only the methods that write a compact scene (splatpack-omg) have these.
SPK_COLUMNS = ("spk_bytes", "spk_psnr", "spk_payload_bytes_per_gaussian")


def mean_and_se(values: list[float]) -> tuple[float, float]:
    """Mean and its standard error (sample standard deviation / sqrt(n); nan for one value)."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return mean, sd / math.sqrt(n)


def paired(rows: list[dict], reference: str) -> list[dict]:
    """Per scene and method, the per-seed differences against ``reference`` run with the same seed: PSNR and SSIM
    (method - reference), Gaussians and file sizes (reference / method), as mean +- standard error, plus the
    method's own seed-to-seed standard deviation of PSNR (the noise floor of one run)."""
    by_key = {(r["scene"], r["method"], r["seed"]): r for r in rows}
    out = []
    for scene, method in dict.fromkeys((r["scene"], r["method"]) for r in rows):
        pairs = [
            (r, by_key[(scene, reference, r["seed"])])
            for r in rows
            if (r["scene"], r["method"]) == (scene, method) and (scene, reference, r["seed"]) in by_key
        ]
        if not pairs:
            continue
        own = [r["psnr"] for r, _ in pairs]
        entry = {"scene": scene, "method": method, "reference": reference, "seeds": [r["seed"] for r, _ in pairs]}
        entry["psnr_sd"] = mean_and_se(own)[1] * math.sqrt(len(own))
        for name, diff in (
            ("d_psnr", lambda r, b: r["psnr"] - b["psnr"]),
            ("d_ssim", lambda r, b: r["ssim"] - b["ssim"]),
            ("d_sog_psnr", lambda r, b: r["sog_psnr"] - b["psnr"]),
            ("gaussian_ratio", lambda r, b: b["gaussians"] / r["gaussians"]),
            ("ref_ply_over_sog", lambda r, b: b["ply_bytes"] / r["sog_bytes"]),
            ("d_spk_psnr", lambda r, b: r["spk_psnr"] - b["psnr"]),
            ("ref_ply_over_spk", lambda r, b: b["ply_bytes"] / r["spk_bytes"]),
        ):
            if "spk" not in name or all("spk_bytes" in r for r, _ in pairs):
                entry[name], entry[name + "_se"] = mean_and_se([diff(r, b) for r, b in pairs])
        out.append(entry)
    return out


def _pm(key: str, fmt: str) -> Column:
    """A paired column: mean +- standard error (empty where the method has no such figure)."""
    return Column(
        f"{key} +- se",
        lambda e: f"{format(e[key], fmt)} +- {format(e[key + '_se'], fmt.lstrip('+'))}" if key in e else None,
    )


PAIRED_COLUMNS = (
    Column("scene", "scene"),
    Column("method", "method"),
    Column("n", lambda e: len(e["seeds"])),
    Column("PSNR sd", "psnr_sd", ".2f"),
    _pm("d_psnr", "+.2f"),
    _pm("d_ssim", "+.4f"),
    _pm("d_sog_psnr", "+.2f"),
    _pm("gaussian_ratio", ".2f"),
    _pm("ref_ply_over_sog", ".1f"),
    _pm("d_spk_psnr", "+.2f"),
    _pm("ref_ply_over_spk", ".1f"),
)
RUN_COLUMNS = (
    Column("seed", lambda r: r.get("seed", f"mean of {len(r.get('seeds', []))}")),
    Column("scene", "scene"),
    Column("method", "method"),
    Column("N", "gaussians", ".0f"),
    Column("PSNR", "psnr", ".2f"),
    Column("SSIM", "ssim", ".4f"),
    Column("PLY MB", lambda r: r["ply_bytes"] / 1e6, ".3f"),
    Column("SPZ MB", lambda r: r["spz_bytes"] / 1e6, ".3f"),
    Column("SPZ dB", "spz_psnr", ".2f"),
    Column("SOG MB", lambda r: r["sog_bytes"] / 1e6, ".3f"),
    Column("SOG dB", "sog_psnr", ".2f"),
    Column("basePLY/SOG", "base_ply_over_sog", ".1f"),
    Column("SPK KB", lambda r: r["spk_bytes"] / 1e3 if "spk_bytes" in r else None, ".1f"),
    Column("SPK B/G", lambda r: r["spk_bytes"] / r["gaussians"] if "spk_bytes" in r else None, ".2f"),
    Column("SPK payload B/G", "spk_payload_bytes_per_gaussian", ".2f"),
    Column("SPK dB", "spk_psnr", ".2f"),
    Column("train s", "train_seconds", ".1f"),
)


def summarize(rows: list[dict]) -> list[dict]:
    """Per scene and method, the mean of every column over seeds, and the baseline's PLY / this method's SOG."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["scene"], r["method"]), []).append(r)
    out = []
    for (scene, method), runs in groups.items():
        columns = COLUMNS + tuple(c for c in SPK_COLUMNS if all(c in r for r in runs))
        mean = {c: sum(r[c] for r in runs) / len(runs) for c in columns}
        out.append({"scene": scene, "method": method, "seeds": [r["seed"] for r in runs], **mean})
    for m in out:
        base = next((b for b in out if b["scene"] == m["scene"] and b["method"] == "splatpack-base"), None)
        m["base_ply_over_sog"] = base["ply_bytes"] / m["sog_bytes"] if base else None
    return out


def add_training_options(ap: argparse.ArgumentParser, set_help: str) -> None:
    """The training options ``method_config`` reads, shared with bench/feedforward.py's init experiment."""
    ap.add_argument(
        "--fox-random",
        type=int,
        default=10000,
        help="random initial Gaussians on fox, which has no seed cloud (splatfacto's 50000 made each CPU step ~2.5 s)",
    )
    ap.add_argument(
        "--fox-random-scale",
        type=float,
        default=2.0,
        help="side of the cube they start in, in nerfstudio's normalised frame (splatfacto's is 10)",
    )
    ap.add_argument("--sog-refine-every", type=int, default=100, help="splatpack's refine and re-sort interval")
    ap.add_argument(
        "--set",
        type=parse_override,
        action="append",
        default=[],
        metavar="METHOD.FIELD=VALUE",
        help=set_help,
    )


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", default="demo,fox", help="comma-separated: demo (generated into data/demo), fox")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ", ".join(METHODS))
    ap.add_argument("--iterations", type=int, default=1500, help="training iterations, the same for every method")
    ap.add_argument(
        "--seeds", default="42,1,2,3,4", help="comma-separated training seeds, the same for every method (>= 5)"
    )
    ap.add_argument("--reference", default="splatpack-base", help="method the paired differences are taken against")
    ap.add_argument(
        "--demo-extra-views",
        type=int,
        default=34,
        help="demo scene's held-out views besides its 6 ring views (0: the 6-view split of sessions 1-3)",
    )
    ap.add_argument("--fox-scale", type=float, default=0.0625, help="fox image scale (1080x1920 -> 66x119 at 1/16)")
    add_training_options(
        ap,
        "override a model config field of one method, e.g. splatpack-base.cull_alpha_thresh=0.1 "
        "(splatfacto's prune threshold) or splatpack.densify_grad_thresh=2e-4; repeatable",
    )
    ap.add_argument("--sog-preset", default="tiny", help="SOG preset of every run's export")
    ap.add_argument("--work", type=Path, default=None, help="keep runs and exports here (default: a temp folder)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train.json")
    ap.add_argument(
        "--reuse",
        type=Path,
        action="append",
        default=[],
        metavar="RESULTS.json",
        help="take matching rows (scene, method, seed, settings, overrides, thread count) from an earlier run "
        "instead of training them; repeatable",
    )
    return ap


def main() -> None:
    ap = _parser()
    args = ap.parse_args()
    seeds = [int(x) for x in args.seeds.split(",")]

    from splatpack.datasets.demo_scene import generate_demo_scene

    # A non-default demo split gets its own folder, so the default data/demo the tests use is never regenerated.
    demo_dir = ROOT / "data" / ("demo" if args.demo_extra_views == 34 else f"demo-extra{args.demo_extra_views}")
    scenes = {"demo": lambda: generate_demo_scene(demo_dir, extra_test_views=args.demo_extra_views), "fox": lambda: FOX}
    settings = {
        "iterations": args.iterations,
        "fox_scale": args.fox_scale,
        "seeds": seeds,
        "reference": args.reference,
        "demo_extra_views": args.demo_extra_views,
        "fox_random": args.fox_random,
        "fox_random_scale": args.fox_random_scale,
        "sog_refine_every": args.sog_refine_every,
        "sog_preset": args.sog_preset,
    }
    import torch

    defaults = {k: ap.get_default(k) for k in TRAINING_SETTINGS}
    overrides = {method: overrides_of(method, args) for method in METHODS}
    earlier = reusable_rows(args.reuse, settings, defaults, torch.get_num_threads(), overrides)
    rows = []
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="splatpack-bench-train-")))
        for scene in args.scenes.split(","):
            data = scenes[scene]()
            if not data.exists():
                print(f"skipping {scene}: {data} is absent")
                continue
            for seed in seeds:  # seed-major: every finished seed is a complete pair
                for method in args.methods.split(","):
                    args.seed = seed
                    row = earlier.get((scene, method, seed))
                    if row is not None:
                        print(f"== {scene} / {method} / seed {seed}: reused from {row['reused_from']}", flush=True)
                        rows.append(row)
                        continue
                    print(f"== {scene} / {method} / seed {seed}", flush=True)
                    rows.append(run(method, scene, data, work, args))
                    summary, pairs = summarize(rows), paired(rows, args.reference)
                    print_table(rows, RUN_COLUMNS)
                    print_table(summary, RUN_COLUMNS, "means over seeds")
                    print_table(pairs, PAIRED_COLUMNS, f"paired against {args.reference} (same seeds)")
                    # After every run, so a cut-short benchmark keeps its rows.
                    write_results(args.out, {"settings": settings, "rows": rows, "summary": summary, "paired": pairs})


if __name__ == "__main__":
    main()
