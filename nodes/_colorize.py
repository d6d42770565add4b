"""Node side of issue 18: colorize pairing, colour output, uncertainty and realism outputs.

Self-contained helpers that the nodes in ``pix2pix_nodes.py`` call. IMAGE is ``[B, H, W, C]``
float 0..1, MASK ``[B, H, W]`` float 0..1. The engine does the work
(:mod:`napari_pix2pix.tasks`, :mod:`napari_pix2pix.uncertainty`).
"""

from __future__ import annotations

import numpy as np

from napari_pix2pix.config import TileConfig
from napari_pix2pix.errors import DatasetError

from . import _convert as cv


def colorize_pairs(images_a, names=None):
    """L -> ab pairs from an IMAGE batch of colour frames (gray frames are refused)."""
    from napari_pix2pix.tasks import colorize_dataset

    arr = cv.image_to_numpy(images_a, "images_a")
    if arr.shape[-1] == 1 or cv.is_gray(arr):
        raise DatasetError("the colorize task needs colour frames, but images_a is gray.",
                           "connect colour (RGB) images to images_a; images_b is not used for colorize.")
    frames = [np.ascontiguousarray(arr[i, ..., :3]) for i in range(len(arr))]
    width = max(3, len(str(len(frames) - 1)))
    dataset = colorize_dataset(frames, names=names or [f"frame_{i:0{width}d}" for i in range(len(frames))])
    dataset.source["face"] = "comfyui"
    return dataset


def translate_outputs(model, image, config: TileConfig, *, realism: bool = False, progress=None, cancel=None):
    """Translate an IMAGE batch; returns numpy ``(image [B, H, W, 3], mask [B, H, W],
    uncertainty [B, H, W], realism [B, H, W])``. ``uncertainty``: per-pixel std of the
    ``config.samples`` passes in IMAGE units (RMS over channels; zeros for one sample);
    ``realism``: the discriminator's probability real (zeros unless ``realism``)."""
    from napari_pix2pix.predict import Predictor

    arr = cv.image_to_numpy(image, "image")
    if model.task == "colorize":
        x = arr if arr.shape[-1] in (1, 3) else np.ascontiguousarray(arr[..., :3])
    else:
        x = cv.image_to_data(cv.to_channels(arr, cv.data_channels(model, "a"), "the image", "the model"), model, "a")
    res = Predictor.from_model(model, config).sample(x, realism=realism, channel_axis=-1, output_dtype="float32",
                                                     progress=progress, cancel=cancel)
    y, std = res.output, res.uncertainty
    if model.task != "colorize":
        if y.ndim == 3:  # one output channel comes back without a channel axis
            y = y[..., None]
            std = None if std is None else std[..., None]
        y = cv.data_to_image(y, model, "b")
        std = None if std is None else cv.data_to_image(std, model, "b")
    b, h, w = y.shape[:3]
    unc = np.zeros((b, h, w), np.float32) if std is None else np.sqrt(np.mean(
        np.square(std.astype(np.float64)), axis=-1)).astype(np.float32)
    real = np.zeros((b, h, w), np.float32) if res.realism is None else res.realism.reshape(b, h, w)
    return (cv.to_image(y), cv.to_mask(np.clip(y, 0, 1)), np.clip(unc, 0, 1).astype(np.float32),
            np.clip(real, 0, 1).astype(np.float32))
