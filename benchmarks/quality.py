#!/usr/bin/env python
"""Quality of short training runs on held-out data: recipes against trivial baselines (issues 16, 20).

Every task keeps a held-out region (the bottom ``--validation`` fraction of the rows of every
image or slice) that no training patch touches. For each task the script reports:

* baselines: the training target's mean (a constant image) and a per-channel linear fit of the
  target on the (model-space) source, both fitted on the training rows;
* recipes: ``paper`` (the paper's settings at the task's generator size), ``default`` (the
  schema's current defaults: whatever ``ModelConfig()`` / ``TrainConfig()`` say) and variants
  (batch 1/2, discriminator width, upsampling, instance norm, dropout, L1 only);

at equal steps (``--steps``) and, with ``--wall``, at equal wall time (a probe of a few steps
measures the recipe's seconds per step, then it trains for the steps that fit). Metrics on the
held-out region, in **data units** (the output mapped back through the target's normalisation):
PSNR (peak = the held-out target's value range) and SSIM (scikit-image, same data range), Dice and
IoU of the foreground for label targets (PSNR/SSIM then on the 0/1 foreground), the Pearson
correlation with the target, the artefact ratio (periodic-lattice score of the output over the
target's, :func:`napari_pix2pix.metrics.artefact_ratio`) and the output/target std ratio (below
0.01: collapsed).

    python benchmarks/quality.py --tasks nuclei2d-m2i --steps 300 --seeds 0 1 2 \\
        --recipes paper b2-ndf16-transposed b2-ndf16-bilinear b1-ndf16-bilinear --out /tmp/q
    python benchmarks/quality.py --list              # tasks and recipes
    python benchmarks/quality.py --quick             # tiny models, 2 steps (the test suite)

``--out DIR`` writes ``quality.md`` (tables: mean ± std over seeds, per-seed values), ``runs.jsonl``
(one line per finished run, so an interrupted run keeps its results), ``results.json`` and one
contact sheet per task (``sheet_<task>.png``: seed 0, one row per recipe; input | output | target |
error). Runs are single-threaded by default (``--threads 1``) so that they share a small machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared" / "data"
BUNDLED = REPO / "sample_data"

# The fixed starting point of every named variant (so that a variant does not move when the
# schema's defaults change): the paper's recipe with the task's ngf and a discriminator as wide.
BASE_MODEL = dict(norm="batch", dropout=True, upsample="transposed", discriminator="patch", discriminator_layers=3)
BASE_TRAIN = dict(batch_size=1, lr=2e-4, decay_steps=None, lambda_l1=100.0, lambda_gan=1.0, gan_mode="vanilla")

# name -> (ModelConfig overrides, TrainConfig overrides, description). ``ndf``: an int, or
# "ngf" for the task's generator width. ``default`` takes the schema's defaults instead.
RECIPES = {
    "paper": ({"ndf": 64}, {}, "the paper's: batch 1, ndf 64, batch norm, dropout, transposed convs"),
    "default": (None, None, "the schema's current defaults (ModelConfig(), TrainConfig())"),
    "b1-ndf16-transposed": ({"ndf": 16}, {}, "batch 1, ndf 16, transposed"),
    "b2-ndf16-transposed": ({"ndf": 16}, {"batch_size": 2}, "batch 2, ndf 16, transposed"),
    "b2-ndf64-transposed": ({"ndf": 64}, {"batch_size": 2}, "batch 2, ndf 64, transposed"),
    "b1-ndf16-bilinear": ({"ndf": 16, "upsample": "bilinear"}, {}, "batch 1, ndf 16, bilinear resize-conv"),
    "b2-ndf16-bilinear": ({"ndf": 16, "upsample": "bilinear"}, {"batch_size": 2},
                          "batch 2, ndf 16, bilinear resize-conv"),
    "b1-ndf16-nearest": ({"ndf": 16, "upsample": "nearest"}, {}, "batch 1, ndf 16, nearest resize-conv"),
    "b2-ndf16-nearest": ({"ndf": 16, "upsample": "nearest"}, {"batch_size": 2},
                         "batch 2, ndf 16, nearest resize-conv"),
    "b1-ndf16-instance": ({"ndf": 16, "norm": "instance"}, {}, "batch 1, ndf 16, instance norm, transposed"),
    "b1-ndf16-instance-bilinear": ({"ndf": 16, "norm": "instance", "upsample": "bilinear"}, {},
                                   "batch 1, ndf 16, instance norm, bilinear"),
    "b2-ndf16-bilinear-nodropout": ({"ndf": 16, "upsample": "bilinear", "dropout": False}, {"batch_size": 2},
                                    "batch 2, ndf 16, bilinear, no dropout"),
    "b2-ndf16-bilinear-l1": ({"ndf": 16, "upsample": "bilinear"}, {"batch_size": 2, "lambda_gan": 0.0},
                             "batch 2, ndf 16, bilinear, L1 only"),
    "b1-ndf16-bilinear-l1": ({"ndf": 16, "upsample": "bilinear"}, {"lambda_gan": 0.0},
                             "batch 1, ndf 16, bilinear, L1 only"),
    "b2-ndf16-bilinear-gan0.1": ({"ndf": 16, "upsample": "bilinear"}, {"batch_size": 2, "lambda_gan": 0.1},
                                 "batch 2, ndf 16, bilinear, lambda_gan 0.1"),
    "b2-ndf16-bilinear-ema": ({"ndf": 16, "upsample": "bilinear"}, {"batch_size": 2, "ema": True,
                                                                     "ema_decay": 0.99},
                              "batch 2, ndf 16, bilinear, EMA of G (decay 0.99)"),
    "b2-ndf16-bilinear-decayall": ({"ndf": 16, "upsample": "bilinear"}, {"batch_size": 2, "decay_steps": "all"},
                                   "batch 2, ndf 16, bilinear, linear LR decay over the whole run"),
    "b2-ndf16-bilinear-lr5e-4": ({"ndf": 16, "upsample": "bilinear"}, {"batch_size": 2, "lr": 5e-4},
                                 "batch 2, ndf 16, bilinear, Adam lr 5e-4"),
    "b2-ndf16-bilinear-l1-nodropout": ({"ndf": 16, "upsample": "bilinear", "dropout": False},
                                       {"batch_size": 2, "lambda_gan": 0.0},
                                       "batch 2, ndf 16, bilinear, L1 only, no dropout"),
    "b2-ndf16-bilinear-l1-best": ({"ndf": 16, "upsample": "bilinear"},
                                  {"batch_size": 2, "lambda_gan": 0.0, "select_best": True, "validate_every": 100},
                                  "batch 2, ndf 16, bilinear, L1 only, best validated checkpoint (every 100 steps)"),
    "b2-ndf16-bilinear-l1-bf16": ({"ndf": 16, "upsample": "bilinear"},
                                  {"batch_size": 2, "lambda_gan": 0.0, "precision": "bf16"},
                                  "batch 2, ndf 16, bilinear, L1 only, bf16 autocast (issue 13's quality check)"),
    "b2-ndf16-bilinear-nojitter": ({"ndf": 16, "upsample": "bilinear"}, {"batch_size": 2, "jitter": False},
                                   "batch 2, ndf 16, bilinear, no jitter (flip only)"),
}
KEY_RECIPES = ["paper", "b2-ndf16-transposed", "b2-ndf16-bilinear", "b1-ndf16-bilinear"]


# ------------------------------------------------------------------------------------ tasks
def _first(*folders: Path, files: tuple[str, ...]) -> Path:
    for d in folders:
        if all((d / f).is_file() for f in files):
            return d
    raise SystemExit(f"none of {', '.join(map(str, folders))} holds {', '.join(files)}")


def _nuclei2d(direction: str):
    import tifffile

    d = _first(SHARED / "nuclei-stardist", BUNDLED / "nuclei-2d", files=("img2d.tif", "mask2d.tif"))
    image, mask = tifffile.imread(d / "img2d.tif"), tifffile.imread(d / "mask2d.tif")
    return (mask, image, dict(a_is_labels=True, b_is_labels=False)) if direction == "m2i" else \
        (image, mask, dict(a_is_labels=False, b_is_labels=True))


def _nuclei3d(direction: str, every: int = 4):
    import tifffile

    d = _first(SHARED / "nuclei-3d", BUNDLED / "nuclei-3d", files=("nuclei.tif", "nuclei_label.tif"))
    image = tifffile.imread(d / "nuclei.tif")[::every]
    mask = tifffile.imread(d / "nuclei_label.tif")[::every]
    return (mask, image, dict(a_is_labels=True, b_is_labels=False)) if direction == "m2i" else \
        (image, mask, dict(a_is_labels=False, b_is_labels=True))


def _photo_edges():
    """skimage's astronaut: its Sobel edge magnitude (float) -> the RGB photo."""
    from skimage import color, data, filters

    photo = data.astronaut()
    edges = filters.sobel(color.rgb2gray(photo)).astype(np.float32)
    return edges, photo, dict(a_is_labels=False, b_is_labels=False)


def _photo_gray():
    """skimage's astronaut: its grey levels (float) -> the RGB photo (colour from structure)."""
    from skimage import color, data

    photo = data.astronaut()
    return color.rgb2gray(photo).astype(np.float32), photo, dict(a_is_labels=False, b_is_labels=False)


TASKS = {
    "nuclei2d-m2i": (lambda: _nuclei2d("m2i"), "nuclei 2-D (512x512), instance mask -> fluorescence"),
    "nuclei2d-i2m": (lambda: _nuclei2d("i2m"), "nuclei 2-D (512x512), fluorescence -> mask (Dice/IoU)"),
    "nuclei3d-m2i": (lambda: _nuclei3d("m2i"), "nuclei 3-D (every 4th of 60 slices, 256x256), mask -> image"),
    "nuclei3d-i2m": (lambda: _nuclei3d("i2m"), "nuclei 3-D (every 4th of 60 slices, 256x256), image -> mask"),
    "photo-edges": (_photo_edges, "skimage astronaut (512x512 RGB): Sobel edges -> photo"),
    "photo-gray": (_photo_gray, "skimage astronaut (512x512 RGB): grey levels -> RGB photo"),
}


def load_task(name: str, validation: float, eval_slices: int = 4):
    """(train, held-out) PairedDatasets: the bottom ``validation`` rows of every pair are held out."""
    from napari_pix2pix.config import DataConfig
    from napari_pix2pix.data.sources import Pair, from_arrays

    a, b, labels = TASKS[name][0]()
    rgb_b = b.ndim == 3 and b.shape[-1] == 3
    ds = from_arrays(a, b, DataConfig(**labels), rgb_b=rgb_b or None, names=name)
    train, held = [], []
    for p in ds.pairs:
        h = p.shape[0]
        cut = h - max(1, int(round(validation * h)))

        def rows(x, lo, hi):
            return None if x is None else x[:, lo:hi]

        train.append(Pair(p.a[:, :cut], p.b[:, :cut], p.name, rows(p.raw_a, 0, cut), rows(p.raw_b, 0, cut)))
        held.append(Pair(p.a[:, cut:], p.b[:, cut:], p.name, rows(p.raw_a, cut, h), rows(p.raw_b, cut, h)))
    if len(held) > eval_slices:  # 3-D: measure a few evenly spread slices
        idx = np.linspace(0, len(held) - 1, eval_slices).round().astype(int)
        held = [held[i] for i in idx]
    return dataclasses.replace(ds, pairs=train), dataclasses.replace(ds, pairs=held)


# ---------------------------------------------------------------------------------- metrics
def data_metrics(fake: np.ndarray, held, norm_b, labels: bool) -> dict:
    """Metrics of model-space outputs ``fake`` ``[N, C, H, W]`` against the held-out pairs, in data units."""
    from skimage.metrics import structural_similarity

    from napari_pix2pix.metrics import artefact_peak, artefact_ratio, pearson

    psnrs, ssims, corr, art, std, inter, total, union = [], [], [], [], [], 0, 0, 0
    art_floor, period = [], []
    for f, p in zip(fake, held):
        if labels:
            pred = norm_b.inverse(f, dtype=np.float64)[0] > 0
            true = np.asarray(p.raw_b[0]) > 0 if p.raw_b is not None else p.b[0] > 0
            inter += int((pred & true).sum())
            total += int(pred.sum() + true.sum())
            union += int((pred | true).sum())
            out, ref, rng = pred.astype(np.float64)[None], true.astype(np.float64)[None], 1.0
            cont_out, cont_ref = f, p.b  # continuous model-space values for corr / artefacts / std
        else:
            out = norm_b.inverse(f, dtype=np.float64)
            ref = np.asarray(p.raw_b, np.float64)
            rng = float(ref.max() - ref.min()) or 1.0
            cont_out, cont_ref = out, ref
        mse = float(np.mean((out - ref) ** 2))
        psnrs.append(100.0 if mse == 0 else 10 * np.log10(rng**2 / mse))
        ssims.append(float(structural_similarity(out, ref, data_range=rng, channel_axis=0)))
        corr.append(pearson(cont_out, cont_ref))
        art.append(artefact_ratio(cont_out, cont_ref))
        a_f, per = artefact_peak(cont_out, cont_ref)
        art_floor.append(a_f)
        period.append(per)
        sd = float(np.std(cont_ref))
        std.append(float(np.std(cont_out)) / sd if sd > 0 else float("nan"))
    def nanmean(v):
        v = [x for x in v if x == x]
        return float(np.mean(v)) if v else float("nan")

    m = {"PSNR": float(np.mean(psnrs)), "SSIM": float(np.mean(ssims)), "Corr": nanmean(corr),
         "Artefact": nanmean(art), "Std ratio": nanmean(std), "Artefact (target floor)": nanmean(art_floor),
         "Peak period": nanmean(period)}
    if labels:
        m["Dice"] = 1.0 if total == 0 else 2 * inter / total
        m["IoU"] = 1.0 if union == 0 else inter / union
    return m


def baselines(train, held, labels: bool | None = None) -> dict:
    """{'mean': metrics, 'linear': metrics}: constant training-target mean; least-squares fit
    of every target channel on the model-space source channels (+1), fitted on the training rows."""
    labels = bool(train.b_is_labels) if labels is None else labels
    cb = train.pairs[0].b.shape[0]
    bs = np.concatenate([p.b.reshape(cb, -1) for p in train.pairs], 1).astype(np.float64)
    ca = train.pairs[0].a.shape[0]
    as_ = np.concatenate([p.a.reshape(ca, -1) for p in train.pairs], 1).astype(np.float64)
    design = np.vstack([as_, np.ones((1, as_.shape[1]))]).T
    coef, *_ = np.linalg.lstsq(design, bs.T, rcond=None)  # [ca + 1, cb]
    mean = bs.mean(1)
    out = {}
    for name in ("mean", "linear"):
        fakes = []
        for p in held.pairs:
            if name == "mean":
                f = np.broadcast_to(mean[:, None, None], p.b.shape).astype(np.float32)
            else:
                x = np.vstack([p.a.reshape(ca, -1), np.ones((1, p.a[0].size))]).T
                f = (x @ coef).T.reshape(p.b.shape).astype(np.float32)
            fakes.append(np.clip(f, -1, 1))
        out[name] = data_metrics(np.stack(fakes), held.pairs, train.norm_b, labels)
    return out


# ------------------------------------------------------------------------------------- runs
def configs(recipe: str, settings: dict, train, seed: int, steps: int):
    from napari_pix2pix.config import AugmentConfig, ModelConfig, TrainConfig

    model_over, train_over, _ = RECIPES[recipe]
    common_m = dict(generator=settings["generator"], ngf=settings["ngf"], in_channels=train.in_channels,
                    out_channels=train.out_channels)
    common_t = dict(steps=steps, crop=settings["crop"], seed=seed, device="cpu", preview_every=0,
                    validate_every=0, checkpoint_every=0, log_every=max(steps, 1))
    if model_over is None:  # the schema's defaults
        model = ModelConfig(**common_m)
        config = TrainConfig(**common_t)
    else:
        model = ModelConfig(**{**BASE_MODEL, **common_m, **model_over})
        over = dict(train_over)
        if over.get("decay_steps") == "all":
            over["decay_steps"] = steps
        aug = {k: over.pop(k) for k in list(over) if k in {f.name for f in dataclasses.fields(AugmentConfig)}}
        config = TrainConfig(**{**BASE_TRAIN, **common_t, "augment": AugmentConfig(**aug), **over})
    return model, config


def _predict(trainer, model, held) -> np.ndarray:
    import torch

    from napari_pix2pix.config import TileConfig
    from napari_pix2pix.evaluate import predict

    ema = trainer.state.ema

    class _Model:  # what evaluate.predict needs (with an EMA: the averaged G, as saved)
        generator = ema.module if ema is not None else trainer.generator
        config, device = model, trainer.device

    fakes = []
    for p in held.pairs:
        a = torch.from_numpy(np.ascontiguousarray(p.a[None], np.float32))
        fakes.append(predict(_Model, a, TileConfig(tile=0, device="cpu"))[0].numpy())
    return np.stack(fakes)


def split_rows(ds, fraction: float):
    """(top, bottom) row split of every pair of ``ds``: the bottom ``fraction`` of the rows."""
    from napari_pix2pix.data.sources import Pair

    top, bottom = [], []
    for p in ds.pairs:
        h = p.shape[0]
        cut = h - max(1, int(round(fraction * h)))

        def rows(x, lo, hi):
            return None if x is None else x[:, lo:hi]

        top.append(Pair(p.a[:, :cut], p.b[:, :cut], p.name, rows(p.raw_a, 0, cut), rows(p.raw_b, 0, cut)))
        bottom.append(Pair(p.a[:, cut:], p.b[:, cut:], p.name, rows(p.raw_a, cut, h), rows(p.raw_b, cut, h)))
    return dataclasses.replace(ds, pairs=top), dataclasses.replace(ds, pairs=bottom)


def train_once(recipe: str, settings: dict, train, seed: int, steps: int):
    """Train; with ``select_best`` the bottom 1/6 of the training rows become the trainer's
    validation split (never the held-out test rows) and the best validated generator is kept."""
    from napari_pix2pix.metrics import CollapseGuard
    from napari_pix2pix.training import Trainer

    model, config = configs(recipe, settings, train, seed, steps)
    t0 = time.perf_counter()
    if config.select_best:
        fit, val = split_rows(train, 1 / 6)
        trainer = Trainer(model, config, fit, val_dataset=val)
    else:
        trainer = Trainer(model, config, train)
    trainer.run(CollapseGuard())
    if config.select_best:  # what the user gets: the best validated checkpoint's generator
        ckpt = trainer.model_checkpoint()
        target = trainer.state.ema.module if trainer.state.ema is not None else trainer.generator
        trainer.last_state = {k: v.detach().clone() for k, v in target.state_dict().items()}
        target.load_state_dict(ckpt.generator)
        trainer.best_step = trainer.validation.best.step
    return trainer, model, config, time.perf_counter() - t0


def run_one(task: str, recipe: str, seed: int, settings: dict, data, *, steps: int | None = None,
            wall: float | None = None) -> dict:
    """Train ``recipe`` on ``task`` with ``seed`` for ``steps`` (or for ``wall`` seconds) and measure it."""
    train, held = data
    labels = bool(train.b_is_labels)
    probe = None
    if wall is not None:
        n = settings["probe_steps"]
        _, _, _, seconds = train_once(recipe, settings, train, seed, n)
        probe = seconds / n
        steps = max(1, int(wall / probe))
    trainer, model, config, seconds = train_once(recipe, settings, train, seed, steps)
    fake = _predict(trainer, model, held)
    metrics = data_metrics(fake, held.pairs, train.norm_b, labels)
    last_metrics = None
    if getattr(trainer, "last_state", None) is not None:  # select_best: the last state too, for comparison
        g = trainer.state.ema.module if trainer.state.ema is not None else trainer.generator
        best_state = {k: v.detach().clone() for k, v in g.state_dict().items()}
        g.load_state_dict(trainer.last_state)
        last_metrics = data_metrics(_predict(trainer, model, held), held.pairs, train.norm_b, labels)
        g.load_state_dict(best_state)
    return {"task": task, "recipe": recipe, "seed": seed, "steps": steps, "wall": wall, "seconds": seconds,
            "best_step": getattr(trainer, "best_step", None), "last_metrics": last_metrics,
            "s_per_step": seconds / max(steps, 1), "probe_s_per_step": probe, "metrics": metrics,
            "model": model.to_dict(), "batch_size": config.batch_size,
            "sheet": (held.pairs[0].a, fake[0], held.pairs[0].b)}


# ----------------------------------------------------------------------------------- report
METRICS = ["PSNR", "SSIM", "Corr", "Artefact", "Artefact (target floor)", "Peak period", "Std ratio"]


def _cell(values: list[float]) -> str:
    v = np.array([x for x in values if x == x], float)
    if v.size == 0:
        return "n/a"
    d = 2 if abs(v.mean()) >= 10 else 3
    if v.size == 1:
        return f"{v.mean():.{d}f}"
    return f"{v.mean():.{d}f} ± {v.std(ddof=1):.{d}f}"


def report(results: list[dict], base: dict, tasks: list[str]) -> str:
    lines = []
    for task in tasks:
        runs = [r for r in results if r["task"] == task]
        if not runs and task not in base:
            continue
        labels = any("Dice" in r["metrics"] for r in runs) or "Dice" in base.get(task, {}).get("mean", {})
        cols = METRICS + (["Dice", "IoU"] if labels else [])
        lines += [f"### {task}: {TASKS[task][1]}", "",
                  "| recipe | budget | seeds | " + " | ".join(cols) + " | s/step |",
                  "|---|---|---|" + "---|" * len(cols) + "---|"]
        for name, m in base.get(task, {}).items():
            lines.append(f"| baseline: {name} | — | — | " + " | ".join(_cell([m.get(c, float('nan'))])
                                                              for c in cols) + " | — |")
        groups: dict = {}
        for r in runs:
            budget = f"{r['wall']:.0f} s ({r['steps']} steps)" if r["wall"] else f"{r['steps']} steps"
            key = (r["recipe"], f"{r['wall']:.0f} s" if r["wall"] else f"{r['steps']} steps")
            groups.setdefault(key, []).append((r, budget))
        for (recipe, budget), rs in groups.items():
            seeds = ",".join(str(r["seed"]) for r, _ in rs)
            cells = [_cell([r["metrics"].get(c, float("nan")) for r, _ in rs]) for c in cols]
            sps = _cell([r["s_per_step"] for r, _ in rs])
            lines.append(f"| {recipe} | {budget} | {seeds} | " + " | ".join(cells) + f" | {sps} |")
        lines.append("")
        if runs:
            lines += ["Per seed (" + " / ".join(METRICS) + "):", ""]
            for r in runs:
                m = r["metrics"]
                lines.append(f"* {r['recipe']}, {r['steps']} steps, seed {r['seed']}: "
                             + " / ".join(f"{m.get(c, float('nan')):.3g}" for c in METRICS)
                             + (f", Dice {m['Dice']:.3f}" if "Dice" in m else "") + f", {r['seconds']:.0f} s")
            lines.append("")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", choices=list(TASKS), default=["nuclei2d-m2i"])
    p.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=KEY_RECIPES + ["default"])
    p.add_argument("--steps", type=int, nargs="*", default=[300], help="equal-step budgets (e.g. 300 1000)")
    p.add_argument("--wall", type=float, nargs="*", default=[],
                   help="equal-wall-time budgets in seconds (e.g. 120 600)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--generator", default="unet_128")
    p.add_argument("--ngf", type=int, default=16)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--validation", type=float, default=0.25, help="held-out bottom fraction of rows")
    p.add_argument("--probe-steps", type=int, default=10, help="steps timed before an equal-wall-time run")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: a good neighbour)")
    p.add_argument("--quick", action="store_true", help="tiny models and 2 steps (the test suite)")
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--list", action="store_true", help="print the tasks and recipes and exit")
    p.add_argument("--out", help="folder for quality.md, runs.jsonl, results.json and contact sheets")
    p.add_argument("--report", nargs="+", metavar="RUNS_JSONL",
                   help="train nothing: merge these runs.jsonl files (of runs split over processes or "
                        "machines), recompute the baselines of their tasks and write the report")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    if args.list:
        for k, (_, d) in TASKS.items():
            print(f"task   {k:28s} {d}")
        for k, (_, _, d) in RECIPES.items():
            print(f"recipe {k:28s} {d}")
        return {}
    import torch

    from benchmarks._common import machine_line

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, args.threads))
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)


def _merged_sheets(run_files, tasks, out: Path) -> None:
    """One contact sheet per task from the ``rows/*.npz`` saved beside the run files: per recipe
    the run with the lowest seed (of the smallest step budget)."""
    from napari_pix2pix.evaluate import contact_sheet
    from napari_pix2pix.io import write_image

    found = {}
    for f in run_files:
        for npz in sorted((Path(f).parent / "rows").glob("*.npz")):
            task, recipe, steps, seed = npz.stem.split("__")
            key = (task, recipe)
            rank = (int(steps), int(seed))
            if key not in found or rank < found[key][0]:
                found[key] = (rank, npz)
    for task in tasks:
        chosen = [(recipe, rank, npz) for (t, recipe), (rank, npz) in found.items() if t == task]
        chosen.sort(key=lambda c: list(RECIPES).index(c[0]))
        if not chosen:
            continue
        rows = []
        for _, _, npz in chosen:
            with np.load(npz) as z:
                rows.append((z["a"], z["fake"], z["b"]))
        write_image(out / f"sheet_{task}.png", contact_sheet(rows))
        (out / f"sheet_{task}.txt").write_text(
            "rows: " + ", ".join(f"{recipe} ({rank[0]} steps, seed {rank[1]})" for recipe, rank, _ in chosen)
            + "\ncolumns: input | output | target | |output - target|\n")


def _rescored(run: dict, folder: Path) -> dict:
    """``run`` with the artefact metrics added later (``Artefact (target floor)``, ``Peak period``)
    computed from its saved contact-sheet row when the run file predates them (2-D tasks: the
    row is the whole held-out image)."""
    m = run["metrics"]
    npz = folder / "rows" / f"{run['task']}__{run['recipe']}__{run['steps']}__{run['seed']}.npz"
    if "Artefact (target floor)" in m or not npz.is_file() or run["task"].startswith("nuclei3d"):
        return run
    from napari_pix2pix.metrics import artefact_peak

    with np.load(npz) as z:
        m["Artefact (target floor)"], m["Peak period"] = artefact_peak(z["fake"], z["b"])
    return run


def _merge(args) -> dict:
    """The report of finished runs read from ``args.report`` (runs.jsonl files)."""
    from benchmarks._common import machine_line

    runs = []
    for f in args.report:
        for line in Path(f).read_text().splitlines():
            if line.strip():
                runs.append(_rescored(json.loads(line), Path(f).parent))
    tasks = [t for t in TASKS if any(r["task"] == t for r in runs)]
    base = {} if args.no_baselines else {t: baselines(*load_task(t, args.validation), None) for t in tasks}
    text = (f"Merged from {len(args.report)} run file(s); report written on {machine_line()}.\n\n"
            + report(runs, base, tasks))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        _merged_sheets(args.report, tasks, out)
        (out / "quality.md").write_text(text)
        (out / "results.json").write_text(json.dumps({"baselines": base, "runs": runs, "markdown": text},
                                                     indent=2, default=float))
    if not args.quiet:
        print(text)
    return {"baselines": base, "runs": runs, "markdown": text}


def _run(args) -> dict:
    from benchmarks._common import machine_line

    if args.report:
        return _merge(args)

    settings = dict(generator=args.generator, ngf=args.ngf, crop=args.crop, probe_steps=args.probe_steps)
    steps, wall = args.steps, args.wall
    if args.quick:
        settings.update(generator="unet_32", ngf=4, crop=32, probe_steps=1)
        steps, wall = [2], []
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "runs.jsonl").write_text("")
    machine = machine_line()
    say(f"quality: {machine}")
    results, base, t0 = [], {}, time.perf_counter()
    for task in args.tasks:
        data = load_task(task, args.validation)
        labels = bool(data[0].b_is_labels)
        if not args.no_baselines:
            base[task] = baselines(*data, labels)
            for name, m in base[task].items():
                say(f"  {task} baseline {name}: " + " ".join(f"{k} {v:.3f}" for k, v in m.items()))
        budgets = [("steps", s) for s in steps] + [("wall", w) for w in wall]
        for kind, value in budgets:
            for seed in args.seeds:
                for recipe in args.recipes:
                    r = run_one(task, recipe, seed, settings, data,
                                steps=value if kind == "steps" else None, wall=value if kind == "wall" else None)
                    results.append(r)
                    say(f"  {task} {recipe} {r['steps']} steps seed {seed}: {r['seconds']:.0f} s "
                        + " ".join(f"{k} {v:.3f}" for k, v in r["metrics"].items()))
                    if out is not None:
                        a, f, b = r["sheet"]
                        (out / "rows").mkdir(exist_ok=True)
                        np.savez_compressed(out / "rows" / f"{task}__{recipe}__{r['steps']}__{seed}.npz",
                                            a=a, fake=f, b=b)
                        with open(out / "runs.jsonl", "a") as fh:
                            fh.write(json.dumps({k: v for k, v in r.items() if k != "sheet"}) + "\n")
    total = time.perf_counter() - t0
    header = (f"Machine: {machine}. Settings: {settings['generator']} ngf {settings['ngf']}, crop "
              f"{settings['crop']}, held-out bottom {args.validation:.0%} of rows; {len(results)} runs in "
              f"{total / 60:.1f} min.")
    text = header + "\n\n" + report(results, base, args.tasks)
    rep = {"machine": machine, "settings": settings, "seconds": total, "baselines": base,
           "runs": [{k: v for k, v in r.items() if k != "sheet"} for r in results], "markdown": text}
    if out is not None:
        from napari_pix2pix.evaluate import contact_sheet
        from napari_pix2pix.io import write_image

        (out / "quality.md").write_text(text)
        (out / "results.json").write_text(json.dumps(rep, indent=2, default=float))
        for task in args.tasks:
            rows, names = [], []
            for r in results:
                if r["task"] == task and r["seed"] == args.seeds[0] and r["recipe"] not in names:
                    rows.append(r["sheet"])
                    names.append(r["recipe"])
            if rows:
                write_image(out / f"sheet_{task}.png", contact_sheet(rows))
                (out / f"sheet_{task}.txt").write_text(
                    f"rows (seed {args.seeds[0]}, first budget): {', '.join(names)}\n"
                    "columns: input | output | target | |output - target|\n")
    if not args.quiet:
        print(text)
    return rep


if __name__ == "__main__":
    main()
