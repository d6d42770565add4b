#!/usr/bin/env python
"""Small-scale check of the Pix2Pix paper's ablations (Isola et al. 2017) on real nuclei data.

Trains equal short runs on the nuclei pair (``../shared/data/nuclei-stardist`` when present,
otherwise the bundled copy ``sample_data/nuclei-2d``: img2d.tif and mask2d.tif, 512x512) in both
directions, mask -> image and image -> mask, for:

* objective: L1 only (``lambda_gan=0``), cGAN only (``lambda_l1=0``), L1 + cGAN (the paper's);
* discriminator (with L1 + cGAN): PixelGAN (1x1), PatchGAN n_layers 1 (16x16), 3 (70x70, the
  paper's), 5 (286x286);
* generator (with L1 + cGAN): U-Net vs the encoder-decoder without skips.

The baseline (L1 + cGAN, U-Net, 70x70 PatchGAN) is trained once and appears in all three groups.
Each variant is trained with every seed; the table gives mean +- standard deviation (n-1) over
seeds of PSNR, SSIM, Sharpness (Laplacian energy of output / target: 1 = as sharp as the target,
< 1 = blurrier), L1 and, for image -> mask, Dice and IoU. Everything is measured on the held-out
region: ``DataConfig.validation_fraction`` of a single pair is the bottom strip of rows (25 %:
the bottom 128 rows), translated whole with the generator in eval mode.

    python benchmarks/ablation.py                 # full mode (15-25 minutes on 2 CPU cores)
    python benchmarks/ablation.py --quick         # a few steps of tiny models (the test suite)
    python benchmarks/ablation.py --out DIR       # also write DIR/ablation.md, results.json, sheets

Options change steps, model size, crop, batch, seeds, variants and directions; the settings
are printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA_DIRS = (REPO.parent / "shared" / "data" / "nuclei-stardist", REPO / "sample_data" / "nuclei-2d")

# name -> (ModelConfig overrides, TrainConfig overrides), relative to the baseline
VARIANTS = {
    "L1+cGAN": ({}, {}),
    "L1 only": ({}, {"lambda_gan": 0.0}),
    "cGAN only": ({}, {"lambda_l1": 0.0}),
    "PixelGAN": ({"discriminator": "pixel"}, {}),
    "PatchGAN n=1": ({"discriminator_layers": 1}, {}),
    "PatchGAN n=5": ({"discriminator_layers": 5}, {}),
    "Encoder-decoder": ({"unet_skips": False}, {}),
}
# (group title, [(row label, variant)]) -- the baseline run is shared by the groups
GROUPS = [
    ("Objective (U-Net, 70x70 PatchGAN)",
     [("L1 only", "L1 only"), ("cGAN only", "cGAN only"), ("L1 + cGAN", "L1+cGAN")]),
    ("Discriminator receptive field (L1 + cGAN, U-Net)",
     [("PixelGAN 1x1", "PixelGAN"), ("PatchGAN 16x16 (n_layers 1)", "PatchGAN n=1"),
      ("PatchGAN 70x70 (n_layers 3)", "L1+cGAN"), ("PatchGAN 286x286 (n_layers 5)", "PatchGAN n=5")]),
    ("Generator (L1 + cGAN, 70x70 PatchGAN)",
     [("Encoder-decoder (no skips)", "Encoder-decoder"), ("U-Net", "L1+cGAN")]),
]
DIRECTIONS = ("mask->image", "image->mask")
FULL = dict(steps=300, generator="unet_64", ngf=16, ndf=16, crop=128, batch_size=2, seeds=[0, 1])
QUICK = dict(steps=2, generator="unet_64", ngf=4, ndf=4, crop=128, batch_size=1, seeds=[0])


# ---------------------------------------------------------------------------------- data
def find_data(folder: str | None = None) -> Path:
    for d in ([Path(folder)] if folder else DATA_DIRS):
        if (d / "img2d.tif").is_file() and (d / "mask2d.tif").is_file():
            return d
    raise SystemExit(f"no img2d.tif/mask2d.tif in {folder or ' or '.join(map(str, DATA_DIRS))}")


def load_direction(folder: Path, direction: str, validation: float):
    """(train, val) PairedDatasets for one direction; the mask is a (binary-encoded) label image."""
    import tifffile

    from napari_pix2pix.config import DataConfig
    from napari_pix2pix.data.sources import from_arrays

    image, mask = tifffile.imread(folder / "img2d.tif"), tifffile.imread(folder / "mask2d.tif")
    if direction == "mask->image":
        a, b, cfg = mask, image, DataConfig(a_is_labels=True, b_is_labels=False, validation_fraction=validation)
    else:
        a, b, cfg = image, mask, DataConfig(a_is_labels=False, b_is_labels=True, validation_fraction=validation)
    ds = from_arrays(a, b, cfg, names="nuclei")
    return ds.split(cfg.validation_fraction)


# ---------------------------------------------------------------------------------- runs
def run_one(job: dict) -> dict:
    """Train one variant with one seed and measure it on the held-out strip."""
    import torch

    from napari_pix2pix.config import ModelConfig, TileConfig, TrainConfig
    from napari_pix2pix.evaluate import pair_metrics, predict
    from napari_pix2pix.training import Trainer

    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    s = job["settings"]
    model_over, train_over = VARIANTS[job["variant"]]
    train, val = load_direction(Path(job["data"]), job["direction"], s["validation"])
    model = ModelConfig(generator=s["generator"], in_channels=train.in_channels, out_channels=train.out_channels,
                        ngf=s["ngf"], ndf=s["ndf"], **model_over)
    config = TrainConfig(steps=s["steps"], crop=s["crop"], batch_size=s["batch_size"], seed=job["seed"],
                         device="cpu", preview_every=0, validate_every=0, log_every=max(s["steps"], 1),
                         **train_over)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer = Trainer(model, config, train)
    trainer.run()
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0

    class _Model:  # what evaluate.predict needs
        generator, config, device = trainer.generator, model, trainer.device

    pair = val.pairs[0]
    a = torch.from_numpy(np.ascontiguousarray(pair.a[None], np.float32))
    b = torch.from_numpy(np.ascontiguousarray(pair.b[None], np.float32))
    fake = predict(_Model, a, TileConfig(tile=0, device="cpu"))
    metrics = pair_metrics(fake, b, train.norm_b)
    return {"variant": job["variant"], "direction": job["direction"], "seed": job["seed"], "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "metrics": metrics, "rows": list(pair.shape),
            "sheet": (a[0].numpy(), fake[0].numpy(), b[0].numpy()) if job.get("keep_images") else None}


def _machine() -> dict:
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_start": [round(x, 2) for x in load] if load else None}


# ------------------------------------------------------------------------------- summary
def summarise(results: list[dict]) -> dict:
    """{(direction, variant): {metric: (mean, std, n)}} over seeds (std with n-1; 0 for one seed)."""
    out: dict = {}
    for r in results:
        out.setdefault((r["direction"], r["variant"]), []).append(r["metrics"])
    summary = {}
    for key, runs in out.items():
        stats = {}
        for m in runs[0]:
            vals = np.array([x[m] for x in runs if x.get(m) is not None and x[m] == x[m]], float)
            if vals.size:
                stats[m] = (float(vals.mean()), float(vals.std(ddof=1)) if vals.size > 1 else 0.0, int(vals.size))
        summary[key] = stats
    return summary


def _cell(stat) -> str:
    if stat is None:
        return "n/a"
    mean, std, _ = stat
    digits = 2 if abs(mean) >= 10 else 3
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_tables(summary: dict, directions, variants) -> str:
    lines = []
    for direction in directions:
        metrics = ["PSNR", "SSIM", "Sharpness", "L1"] + (["Dice", "IoU"] if direction == "image->mask" else [])
        lines += [f"#### {direction.replace('->', ' → ')}", "",
                  "| group | variant | " + " | ".join(metrics) + " |",
                  "|---|---|" + "---|" * len(metrics)]
        for title, rows in GROUPS:
            for label, variant in rows:
                if variant not in variants or (direction, variant) not in summary:
                    continue
                stats = summary[(direction, variant)]
                lines.append(f"| {title} | {label} | " + " | ".join(_cell(stats.get(m)) for m in metrics) + " |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a few steps of tiny models (for the test suite)")
    p.add_argument("--steps", type=int)
    p.add_argument("--generator", help="unet_N generator (default unet_64)")
    p.add_argument("--ngf", type=int)
    p.add_argument("--ndf", type=int)
    p.add_argument("--crop", type=int, help="training crop (multiple of the U-Net's 2**depth; >= 128 for n_layers 5)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--validation", type=float, default=0.25, help="held-out bottom fraction of rows")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="default: all")
    p.add_argument("--directions", nargs="+", choices=DIRECTIONS, default=list(DIRECTIONS))
    p.add_argument("--data", help="folder with img2d.tif and mask2d.tif (default: shared, else bundled)")
    p.add_argument("--jobs", type=int, help="parallel training processes, 1 torch thread each (default: 2 "
                   "in full mode on 2+ cores, else 1)")
    p.add_argument("--threads", type=int, help="torch threads with --jobs 1 (default: torch's; --quick: 1)")
    p.add_argument("--out", help="folder for ablation.md, results.json and one contact sheet per direction")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    base = dict(QUICK if args.quick else FULL)
    for key in ("steps", "generator", "ngf", "ndf", "crop", "batch_size", "seeds"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    settings = dict(base, validation=args.validation)
    variants = args.variants or list(VARIANTS)
    if args.jobs is None:
        args.jobs = 1 if args.quick else min(2, os.cpu_count() or 1)
    data = find_data(args.data)
    machine = _machine()
    cores = os.cpu_count() or 1
    jobs = [{"variant": v, "direction": d, "seed": s, "settings": settings, "data": str(data),
             "keep_images": bool(args.out) and s == settings["seeds"][0],
             "threads": 1 if args.jobs > 1 else (args.threads or (1 if args.quick else None))}
            for s in settings["seeds"] for d in args.directions for v in variants]
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    say(f"ablation: {len(jobs)} runs of {settings['steps']} steps on {data} ({machine['cpu']}, {cores} cores)")
    t0 = time.perf_counter()
    results = []
    partial = Path(args.out) / "runs.jsonl" if args.out else None
    if partial is not None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text("")

    def record(r):
        results.append(r)
        say(f"  {r['direction']:12s} {r['variant']:16s} seed {r['seed']}: {r['seconds']:.0f} s "
            f"(cpu {r['cpu_seconds']:.0f} s) " + " ".join(f"{k} {v:.3f}" for k, v in r["metrics"].items()))
        if partial is not None:  # survives an interrupted run
            with open(partial, "a") as fh:
                fh.write(json.dumps({k: v for k, v in r.items() if k != "sheet"}) + "\n")
    if args.jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
            for r in pool.map(run_one, jobs):
                record(r)
    else:
        import torch

        threads = torch.get_num_threads()
        try:
            for job in jobs:
                record(run_one(job))
        finally:
            torch.set_num_threads(threads)
    total = time.perf_counter() - t0
    torch_threads = jobs[0]["threads"] or machine["torch_threads"]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    machine["loadavg_end"] = [round(x, 2) for x in load] if load else None
    summary = summarise(results)
    table = markdown_tables(summary, args.directions, variants)
    held_out = results[0]["rows"] if results else None
    header = (f"Settings: {settings['generator']} ngf {settings['ngf']}, ndf {settings['ndf']}, batch norm, "
              f"dropout on; {settings['steps']} steps (lr 2e-4 constant for half, then linear decay), batch "
              f"{settings['batch_size']}, crop {settings['crop']}, jitter + flip; seeds {settings['seeds']}; "
              f"held-out strip {held_out} of {data}; {len(results)} runs in {total / 60:.1f} min on "
              f"{machine['cpu']} ({machine['cores']} cores; {args.jobs} parallel job(s) of "
              f"{1 if args.jobs > 1 else torch_threads} torch thread(s)), torch {machine['torch']}; load average "
              f"{machine['loadavg_start']} at start, {machine['loadavg_end']} at end.")
    report = {"settings": settings, "machine": machine, "data": str(data), "seconds": total,
              "runs": [{k: v for k, v in r.items() if k != "sheet"} for r in results],
              "summary": {f"{d} | {v}": s for (d, v), s in summary.items()}, "markdown": header + "\n\n" + table}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "ablation.md").write_text(report["markdown"])
        (out / "results.json").write_text(json.dumps(report, indent=2, default=float))
        from napari_pix2pix.evaluate import contact_sheet
        from napari_pix2pix.io import write_image

        for d in args.directions:
            rows = [r["sheet"] for v in variants for r in results
                    if r["direction"] == d and r["variant"] == v and r["sheet"] is not None]
            if rows:
                name = d.replace("->", "_to_")
                write_image(out / f"sheet_{name}.png", contact_sheet(rows))
                (out / f"sheet_{name}.txt").write_text(
                    f"rows (seed {settings['seeds'][0]}): {', '.join(variants)}\n"
                    "columns: input | output | target | |output - target|\n")
    if not args.quiet:
        print(report["markdown"])
    return report


if __name__ == "__main__":
    main()
