#!/usr/bin/env python
"""Issue 18 at small scale: colorization (L1 vs cGAN + L1) and what the uncertainty maps mean.

**Colorization** (the paper's §4.2 claim: cGAN + L1 gives more colourful results than L1 alone,
which averages colours toward gray). Two held-out settings, images bundled with scikit-image
(nothing is downloaded):

* ``photos``: train on astronaut, coffee and rocket (each halved in size), test on chelsea
  (the cat, halved): a different scene;
* ``ihc``: ``immunohistochemistry`` (512x512, DAB + hematoxylin): train on the left 384 columns,
  test on the right 128: the same stain, unseen tissue.

Both objectives train with equal steps and seeds; the test image's L goes in, the RGB output is
compared with the photo: Hasler & Süsstrunk colourfulness (output vs the ground truth's), PSNR
and SSIM in RGB (0..1), mean ΔE in Lab (CIE76 and CIEDE2000). A "gray" row (L only, ab = 0) is
the floor that a model which learned nothing would reach.

**Uncertainty** on the nuclei pair (``../shared/data/nuclei-stardist``, else the bundled copy):
train on the top 384 rows, translate the held-out bottom 128 rows with ``samples`` dropout passes
and the realism map; report the Spearman rank correlation of the per-pixel std with |error|, of
(1 - realism) with |error|, and the mean |error| in the top 10 % most uncertain (least real)
pixels against the rest. Both directions: mask -> image and image -> mask.

    python benchmarks/colorize.py                  # full mode (about 10 minutes on 2 busy cores)
    python benchmarks/colorize.py --quick          # tiny models, a few steps (smoke test)
    python benchmarks/colorize.py --out DIR        # also write DIR/colorize.md and results.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
DATA_DIRS = (REPO.parent / "shared" / "data" / "nuclei-stardist", REPO / "sample_data" / "nuclei-2d")

FULL = dict(steps=600, generator="unet_64", ngf=16, ndf=16, crop=128, batch_size=2, seeds=[0, 1],
            unc_generator="unet_128", samples=16)
QUICK = dict(steps=2, generator="unet_64", ngf=4, ndf=4, crop=64, batch_size=1, seeds=[0],
             unc_generator="unet_64", samples=3)
OBJECTIVES = {"L1 only": {"lambda_gan": 0.0}, "cGAN + L1": {}}


# ------------------------------------------------------------------------------- metrics
def colourfulness(rgb01: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003): sigma_rgyb + 0.3 mu_rgyb on 0..255 RGB."""
    rgb = rgb01.astype(np.float64) * 255.0
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def colour_metrics(out01: np.ndarray, gt01: np.ndarray) -> dict:
    from skimage.color import deltaE_cie76, deltaE_ciede2000, rgb2lab
    from skimage.metrics import structural_similarity

    mse = float(np.mean((out01.astype(np.float64) - gt01) ** 2))
    lab_o, lab_g = rgb2lab(out01), rgb2lab(gt01)
    return {"colourfulness": colourfulness(out01), "colourfulness_gt": colourfulness(gt01),
            "PSNR": 10 * np.log10(1.0 / max(mse, 1e-12)),
            "SSIM": float(structural_similarity(out01, gt01, channel_axis=-1, data_range=1.0)),
            "dE76": float(deltaE_cie76(lab_o, lab_g).mean()),
            "dE2000": float(deltaE_ciede2000(lab_o, lab_g).mean())}


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    x, y = np.ravel(x).astype(np.float64), np.ravel(y).astype(np.float64)
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def top_fraction(score: np.ndarray, error: np.ndarray, fraction: float = 0.1) -> tuple[float, float]:
    """Mean error in the ``fraction`` highest-scoring pixels and in the rest (ties broken by order)."""
    score, error = np.ravel(score), np.ravel(error)
    k = max(1, int(round(fraction * score.size)))
    order = np.argsort(-score, kind="stable")
    return float(error[order[:k]].mean()), float(error[order[k:]].mean())


# ---------------------------------------------------------------------------------- data
def colour_sets(quick: bool) -> dict:
    """name -> (list of training RGB uint8 images, held-out RGB uint8 image)."""
    from skimage import data, transform

    def half(img):
        return (transform.rescale(img, 0.5, channel_axis=-1, anti_aliasing=True) * 255 + 0.5).astype(np.uint8)

    ihc = data.immunohistochemistry()
    sets = {"photos": ([half(data.astronaut()), half(data.coffee()), half(data.rocket())], half(data.chelsea())),
            "ihc": ([ihc[:, :384]], ihc[:, 384:])}
    if quick:
        sets = {k: ([t[:128, :128] for t in tr], te[:128, :128]) for k, (tr, te) in sets.items()}
    return sets


def find_nuclei() -> Path:
    for d in DATA_DIRS:
        if (d / "img2d.tif").is_file() and (d / "mask2d.tif").is_file():
            return d
    raise SystemExit("no nuclei data found")


# ---------------------------------------------------------------------------------- runs
def _train(model_cfg, dataset, s: dict, seed: int, **train_over):
    from napari_pix2pix.config import TrainConfig
    from napari_pix2pix.model import Pix2PixModel
    from napari_pix2pix.training import Trainer

    config = TrainConfig(steps=s["steps"], crop=s["crop"], batch_size=s["batch_size"], seed=seed, device="cpu",
                         preview_every=0, validate_every=0, log_every=max(s["steps"], 1), **train_over)
    trainer = Trainer(model_cfg, config, dataset)
    trainer.run()
    return Pix2PixModel.from_checkpoint(trainer.checkpoint())


def run_colour(job: dict) -> dict:
    import torch

    from napari_pix2pix.config import ModelConfig, TileConfig
    from napari_pix2pix.inference import translate
    from napari_pix2pix.tasks import colorize_dataset

    torch.set_num_threads(job.get("threads", 1))
    s = job["settings"]
    train_imgs, test = colour_sets(s.get("quick", False))[job["set"]]
    dataset = colorize_dataset(train_imgs, names=job["set"])
    cfg = ModelConfig(generator=s["generator"], in_channels=1, out_channels=2, ngf=s["ngf"], ndf=s["ndf"])
    t0 = time.perf_counter()
    model = _train(cfg, dataset, s, job["seed"], **OBJECTIVES[job["objective"]])
    seconds = time.perf_counter() - t0
    out = translate(model, test, config=TileConfig(tile=0, device="cpu"), output_dtype="float32")
    gt = test.astype(np.float32) / 255.0
    return {"set": job["set"], "objective": job["objective"], "seed": job["seed"], "seconds": seconds,
            "metrics": colour_metrics(out, gt)}


def gray_baseline(name: str, quick: bool) -> dict:
    """L only (ab = 0): what a model that predicts no colour scores."""
    from skimage.color import lab2rgb, rgb2lab

    _, test = colour_sets(quick)[name]
    gt = test.astype(np.float32) / 255.0
    lab = rgb2lab(gt)
    lab[..., 1:] = 0
    return colour_metrics(np.clip(lab2rgb(lab), 0, 1), gt)


def run_uncertainty(job: dict) -> dict:
    import tifffile
    import torch

    from napari_pix2pix.config import DataConfig, ModelConfig, TileConfig
    from napari_pix2pix.data.sources import from_arrays
    from napari_pix2pix.uncertainty import translate_samples

    torch.set_num_threads(job.get("threads", 1))
    s = job["settings"]
    folder = Path(job["data"])
    image, mask = tifffile.imread(folder / "img2d.tif"), tifffile.imread(folder / "mask2d.tif")
    if s.get("quick"):
        image, mask = image[:256, :256], mask[:256, :256]
    if job["direction"] == "mask->image":
        ds = from_arrays(mask, image, DataConfig(a_is_labels=True, b_is_labels=False), names="nuclei")
    else:
        ds = from_arrays(image, mask, DataConfig(a_is_labels=False, b_is_labels=True), names="nuclei")
    train, val = ds.split(0.25)
    cfg = ModelConfig(generator=s["unc_generator"], in_channels=train.in_channels, out_channels=train.out_channels,
                      ngf=s["ngf"], ndf=s["ndf"])
    model = _train(cfg, train, s, job["seed"])
    pair = val.pairs[0]
    res = translate_samples(model, pair.raw_a[0], config=TileConfig(tile=0, device="cpu"), samples=s["samples"],
                            seed=job["seed"], realism=True, output_dtype="float32")
    # errors in the model's units (range 2), so that both directions read alike
    truth = pair.b[0]
    fake = np.asarray(res.model_output[0, 0], np.float64)
    if job["direction"] == "image->mask":
        fake = np.where(res.output > 0.5, 1.0, -1.0)  # the mask as the user sees it (mean vote)
    error = np.abs(fake - truth)
    std = res.uncertainty
    unreal = 1.0 - res.realism
    top_u, rest_u = top_fraction(std, error)
    top_r, rest_r = top_fraction(unreal, error)
    return {"direction": job["direction"], "seed": job["seed"], "rows": list(pair.shape),
            "metrics": {"spearman_std": spearman(std, error), "spearman_unreal": spearman(unreal, error),
                        "top10_std": top_u, "rest_std": rest_u, "top10_unreal": top_r, "rest_unreal": rest_r,
                        "mean_error": float(error.mean()), "mean_std": float(std.mean()),
                        "realism_mean": float(res.realism.mean())}}


# ------------------------------------------------------------------------------- summary
def _stats(values) -> str:
    v = np.array([x for x in values if x == x], float)
    if v.size == 0:
        return "n/a"
    digits = 2 if abs(v.mean()) >= 10 else 3
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1) if v.size > 1 else 0.0:.{digits}f}"


def markdown(colour: list, gray: dict, unc: list, settings: dict, seconds: float) -> str:
    from _common import machine_line

    lines = [f"Machine: {machine_line()}. Wall time {seconds / 60:.1f} min.", "",
             f"Settings: {json.dumps(settings)}", "",
             "| set | objective | colourfulness (gt) | PSNR | SSIM | ΔE76 | ΔE2000 |", "|---|---|---|---|---|---|---|"]
    for name in gray:
        g = gray[name]
        lines.append(f"| {name} | gray (ab = 0) | {g['colourfulness']:.2f} ({g['colourfulness_gt']:.2f}) | "
                     f"{g['PSNR']:.2f} | {g['SSIM']:.3f} | {g['dE76']:.2f} | {g['dE2000']:.2f} |")
        for obj in OBJECTIVES:
            rs = [r["metrics"] for r in colour if r["set"] == name and r["objective"] == obj]
            if not rs:
                continue
            lines.append(f"| {name} | {obj} | {_stats([r['colourfulness'] for r in rs])} "
                         f"({rs[0]['colourfulness_gt']:.2f}) | " + " | ".join(
                             _stats([r[m] for r in rs]) for m in ("PSNR", "SSIM", "dE76", "dE2000")) + " |")
    lines += ["", "| direction | ρ(std, abs err) | ρ(1 - realism, abs err) | err top-10 % std / rest | "
              "err top-10 % unreal / rest | mean err | mean std |", "|---|---|---|---|---|---|---|"]
    for direction in ("mask->image", "image->mask"):
        rs = [r["metrics"] for r in unc if r["direction"] == direction]
        if not rs:
            continue
        lines.append(f"| {direction} | {_stats([r['spearman_std'] for r in rs])} | "
                     f"{_stats([r['spearman_unreal'] for r in rs])} | "
                     f"{_stats([r['top10_std'] for r in rs])} / {_stats([r['rest_std'] for r in rs])} | "
                     f"{_stats([r['top10_unreal'] for r in rs])} / {_stats([r['rest_unreal'] for r in rs])} | "
                     f"{_stats([r['mean_error'] for r in rs])} | {_stats([r['mean_std'] for r in rs])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--steps", type=int)
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--samples", type=int)
    p.add_argument("--workers", type=int, default=2, help="parallel training processes (1 torch thread each)")
    p.add_argument("--only", choices=("colour", "uncertainty"))
    p.add_argument("--out", help="folder for colorize.md and results.json")
    args = p.parse_args(argv)
    s = dict(QUICK if args.quick else FULL, quick=args.quick)
    for k in ("steps", "seeds", "samples"):
        if getattr(args, k) is not None:
            s[k] = getattr(args, k)
    t0 = time.perf_counter()
    colour_jobs = [] if args.only == "uncertainty" else [
        {"set": name, "objective": obj, "seed": seed, "settings": s}
        for name in ("photos", "ihc") for obj in OBJECTIVES for seed in s["seeds"]]
    unc_jobs = [] if args.only == "colour" else [
        {"direction": d, "seed": seed, "settings": s, "data": str(find_nuclei())}
        for d in ("mask->image", "image->mask") for seed in s["seeds"]]
    with ProcessPoolExecutor(max_workers=max(args.workers, 1)) as pool:
        colour_f = [pool.submit(run_colour, j) for j in colour_jobs]
        unc_f = [pool.submit(run_uncertainty, j) for j in unc_jobs]
        colour = [f.result() for f in colour_f]
        unc = [f.result() for f in unc_f]
    gray = {} if args.only == "uncertainty" else {n: gray_baseline(n, args.quick) for n in ("photos", "ihc")}
    seconds = time.perf_counter() - t0
    text = markdown(colour, gray, unc, {k: v for k, v in s.items() if k != "quick"}, seconds)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "colorize.md").write_text(text)
        (out / "results.json").write_text(json.dumps({"colour": colour, "gray": gray, "uncertainty": unc,
                                                      "settings": s, "seconds": seconds}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
