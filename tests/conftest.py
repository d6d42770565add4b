"""Shared fixtures (napari-agnostic at module level: nothing GUI is imported here)."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A tiny model (unet_32, ngf/ndf 8) trained for a few steps on the 2-D nuclei sample,
    image (A) -> labels (B), saved as a .safetensors file. Takes about a second on a CPU."""
    import tifffile
    import torch

    from napari_pix2pix.config import DataConfig, ModelConfig, TrainConfig
    from napari_pix2pix.data import from_arrays
    from napari_pix2pix.training import Trainer

    image = tifffile.imread(SAMPLE_DIR / "nuclei-2d" / "img2d.tif")
    labels = tifffile.imread(SAMPLE_DIR / "nuclei-2d" / "mask2d.tif")
    dataset = from_arrays(image, labels, DataConfig(), names="nuclei")
    model = ModelConfig(generator="unet_32", in_channels=dataset.in_channels, out_channels=dataset.out_channels,
                        ngf=8, ndf=8)
    out = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest, and kind to a busy machine
    try:
        Trainer(model, TrainConfig(steps=4, batch_size=2, crop=32, preview_every=0, log_every=1), dataset,
                out=out).run()
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread (and CI machines are often oversubscribed)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
