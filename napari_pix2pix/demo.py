"""The README's main job, headless part: train briefly on the bundled nuclei pair (labels ->
image), translate the whole image, and write a picture. The CLI's ``demo`` command then opens
napari (a face) when a display exists."""

from __future__ import annotations

import os
import time
from pathlib import Path


def run_demo(out_dir: str | os.PathLike = "demo-output", seconds: float = 60.0, threads="auto") -> dict:
    """Train for about ``seconds`` on CPU (or GPU), then write ``model.safetensors``,
    ``translation.tif`` and ``demo.png`` (labels | translation | real image | D map) to ``out_dir``.
    Returns a summary dict (steps, seconds, validation metrics, files, arrays for a viewer)."""
    from .config import DataConfig, ModelConfig, TileConfig, TrainConfig
    from .data.sources import from_arrays
    from .discriminator_map import discriminator_maps
    from .inference import translate
    from .io import write_image
    from .model import Pix2PixModel
    from .render import contact_sheet, diverging, nearest_resize, to_uint8
    from .samples import nuclei_2d
    from .training import FinishedEvent, Trainer, ValidationEvent

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    image, labels = nuclei_2d()
    dataset = from_arrays(labels, image, DataConfig(), names=["nuclei-2d"])
    train, val = dataset.holdout(0.2)
    model_cfg = ModelConfig(generator="unet_64", ngf=16, ndf=16, in_channels=1, out_channels=1)
    train_cfg = TrainConfig(steps=100_000, decay_steps=0, crop=64, batch_size=4, seed=0, validate_every=50,
                            preview_every=0, log_every=25, time_limit=float(seconds), threads=threads)
    trainer = Trainer(model_cfg, train_cfg, train, val_dataset=val, out=out / "model.safetensors")
    print(f"demo: training labels -> image on the bundled nuclei pair for {seconds:.0f} s "
          f"({model_cfg.generator}, ngf {model_cfg.ngf}, crops {train_cfg.crop}, device {trainer.device})", flush=True)
    start = time.perf_counter()
    metrics, finished = {}, None
    for event in trainer.events():
        if isinstance(event, ValidationEvent):
            metrics = event.metrics
            print(f"  step {event.step:5d}  validation L1 {metrics['L1']:.3f}  PSNR {metrics['PSNR']:.2f} dB "
                  f"(normalised), {metrics.get('PSNR_data', float('nan')):.2f} dB (data units)  "
                  f"SSIM {metrics['SSIM']:.3f}", flush=True)
        elif isinstance(event, FinishedEvent):
            finished = event
    train_seconds = finished.seconds if finished is not None else time.perf_counter() - start
    model = Pix2PixModel.load(out / "model.safetensors")
    translated = translate(model, labels, config=TileConfig(tile=256, overlap=32))
    write_image(out / "translation.tif", translated)
    _, fake_map = discriminator_maps(model, labels)
    panels = [to_uint8(labels > 0), to_uint8(translated), to_uint8(image),
              nearest_resize(diverging(fake_map.logits), *image.shape)]
    write_image(out / "demo.png", contact_sheet(panels))
    files = [str(out / n) for n in ("model.safetensors", "translation.tif", "demo.png")]
    rate = trainer.step / max(train_seconds, 1e-9)
    threads_line = trainer.threads.line(rate) if trainer.threads is not None else f"{rate:.1f} steps/s"
    summary = {"steps": trainer.step, "seconds": round(time.perf_counter() - start, 1), "validation": metrics,
               "steps_per_s": round(rate, 2), "threads": trainer.threads.intra if trainer.threads else None,
               "files": files, "model_path": files[0], "image": image, "labels": labels, "translated": translated}
    print(f"demo: {trainer.step} steps in {train_seconds:.0f} s ({threads_line}); held-out PSNR "
          f"{metrics.get('PSNR_data', float('nan')):.2f} dB in data units ({metrics.get('PSNR', float('nan')):.2f} dB "
          f"normalised), SSIM {metrics.get('SSIM', float('nan')):.3f}")
    print(f"demo: wrote {', '.join(summary['files'])}")
    print("demo.png: labels | translated | real image | discriminator map on the translation (red: judged real)")
    return summary
