"""Shared helpers for engine tests (plain functions; fixtures live in the test modules)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SAMPLES = REPO / "sample_data"


def load_script(path: Path, name: str):
    """A script (e.g. ``benchmarks/quality.py``) imported as module ``name`` from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nuclei_2d() -> tuple[np.ndarray, np.ndarray]:
    """(image uint16 512x512, labels uint16 512x512) from the bundled sample data."""
    import tifffile

    folder = SHARED / "nuclei-stardist"
    if not folder.is_dir():
        folder = SAMPLES / "nuclei-2d"
    return tifffile.imread(folder / "img2d.tif"), tifffile.imread(folder / "mask2d.tif")


def tiny_model(**kw):
    from napari_pix2pix.config import ModelConfig

    base = dict(generator="unet_32", ngf=8, ndf=8, discriminator_layers=2, in_channels=1, out_channels=1)
    base.update(kw)
    return ModelConfig(**base)


def tiny_train(**kw):
    from napari_pix2pix.config import TrainConfig

    base = dict(steps=6, crop=32, batch_size=2, seed=0, device="cpu", preview_every=0, log_every=1)
    base.update(kw)
    return TrainConfig(**base)
