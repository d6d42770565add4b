"""Inference on arrays of any size: layout handling, padding, overlapping tiles, stacks.

The work is done by :class:`napari_pix2pix.predict.Predictor` (normalise, pad, tile, blend,
autocast, de-normalise; torch or onnxruntime backend). This module keeps the layout helpers,
the torch test-time mode and the historical functions :func:`translate` and
:func:`run_generator` as thin wrappers over it. It does not import torch at module level.

Layouts: the caller's array is napari-style ``[..., Y, X]`` (one channel) or ``[..., Y, X, C]``
(``channel_axis=-1``); every leading axis is a stack axis (Z, T, ...) translated slice by slice.
The model sees ``[B, C, H, W]`` in [-1, 1]. The output comes back in the same layout with the
model's output channels, in the input's dtype unless ``output_dtype`` says otherwise.

Tiling: tiles of ``tile`` pixels overlapping by ``overlap`` pixels are blended with weights that
ramp linearly across the overlap and are normalised to sum to one at every pixel, so that peak
memory is bounded by the tile batch plus the output. One tile covering the whole image gives the
untiled result exactly.

Test-time mode (``TileConfig.mode``): ``eval`` (default: running batch-norm statistics, no
dropout, deterministic and identical across tiles) or ``train`` (the paper's: dropout on and
batch statistics; running statistics are not modified).
"""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np

from .config import TileConfig
from .errors import InputError
from .layout import model_to_napari, napari_to_model
from .limits import MAX_IMAGE_DIMS
# the tiling is implemented once, in predict.py; re-exported here for existing callers
from .predict import clamp_tiling, ramp, run_tiles, tile_starts, tile_weights  # noqa: F401


# ------------------------------------------------------------------------------ validation
def check_array(array, name: str = "image") -> np.ndarray:
    """Reject what no model can translate, with a message that says what to do."""
    array = np.asarray(array)
    if array.size == 0:
        raise InputError(f"the {name} is empty (shape {array.shape}).", "choose a non-empty image.")
    if np.iscomplexobj(array):
        raise InputError(f"the {name} has complex values ({array.dtype}).",
                         "pass the magnitude (np.abs) or the real part as a real-valued image.")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if array.dtype.kind not in "uif":
        raise InputError(f"the {name} has dtype {array.dtype}, which is not an image type.",
                         "convert it to an integer or float array.")
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            raise InputError(f"the {name} has {int(bad.sum())} NaN or infinite pixels.",
                             "replace them first, e.g. np.nan_to_num(image) or fill them from neighbours.")
    return array


def check_stack(stack: tuple[int, ...]) -> None:
    """Refuse more stack axes than :data:`~napari_pix2pix.limits.MAX_IMAGE_DIMS` allows besides
    Y and X (at most ``[T, Z, Y, X]``)."""
    if len(stack) + 2 > MAX_IMAGE_DIMS:
        raise InputError(f"the image has {len(stack) + 2} dimensions besides channels; at most "
                         f"{MAX_IMAGE_DIMS} (T, Z, Y, X) are supported.",
                         "select a 2-D to 4-D sub-array (e.g. one channel or one time point) first.")


def to_model_layout(array: np.ndarray, in_channels: int, channel_axis: int | None = None
                    ) -> tuple[np.ndarray, tuple[int, ...]]:
    """``[..., Y, X(, C)]`` -> (``[N, C, H, W]``, stack shape). RGBA is cut to RGB for 3-channel models."""
    if channel_axis is not None:
        array = np.moveaxis(array, channel_axis, -1)
    elif in_channels > 1 and array.ndim >= 3 and array.shape[-1] in (in_channels, 4):
        channel_axis = -1
    elif array.ndim >= 3 and array.shape[-1] in (3, 4) and array.shape[-2] > 4:
        channel_axis = -1  # RGB(A) by the data layer's rule: refused below, not translated as a stack
    if channel_axis is None:
        if in_channels != 1:
            raise InputError(f"the model expects {in_channels} channels but the image has no channel axis "
                             f"(shape {array.shape}).",
                             f"choose an image with {in_channels} channels (last axis), or a model trained "
                             "on single-channel images.")
        array = array[..., None]
    channels = array.shape[-1]
    if channels == 4 and in_channels == 3:
        array = array[..., :3]  # RGBA: the alpha channel carries no image content for the model
    elif channels != in_channels:
        raise InputError(f"the image has {channels} channels but the model expects {in_channels}.",
                         f"choose an image with {in_channels} channel(s) or a model trained on {channels}.")
    if array.ndim < 3:
        raise InputError(f"the image must be at least 2-D, got shape {array.shape}.", "pass a [Y, X] image.")
    check_stack(array.shape[:-3])
    x, stack = napari_to_model(array, channel_axis=-1)
    return np.ascontiguousarray(x), stack


def from_model_layout(y: np.ndarray, stack: tuple[int, ...], squeeze_channels: bool = True) -> np.ndarray:
    """``[N, C, H, W]`` -> ``[..stack, H, W(, C)]`` (channel axis dropped when C == 1)."""
    return model_to_napari(y, stack, squeeze_channels=squeeze_channels)


# -------------------------------------------------------------------------------- network
@contextlib.contextmanager
def test_time_mode(generator, mode: str, seed: int | None = None):
    """Put ``generator`` in ``eval`` or the paper's ``train`` mode for inference, without changing
    its running statistics; restore everything afterwards."""
    import torch
    from torch import nn

    was_training = generator.training
    saved = []
    if mode == "train":
        generator.train()
        for m in generator.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                saved.append((m, m.momentum, m.num_batches_tracked.clone()
                              if m.num_batches_tracked is not None else None))
                m.momentum = 0.0  # batch statistics are used, running ones stay as they are
    else:
        generator.eval()
    rng = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    try:
        with rng, torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            yield
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
        generator.train(was_training)


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and ("out of memory" in str(exc) or "can't allocate memory" in str(exc))


def run_generator(generator, x, *, tile: int = 0, overlap: int = 0, batch_size: int = 4,
                  size_multiple: int = 1, device=None, precision: str = "fp32",
                  progress: Callable[[int, int], None] | None = None,
                  cancel: Callable[[], bool] | None = None,
                  on_batch: Callable[[list], None] | None = None):
    """Generator output for ``x`` ``[N, C, H, W]`` (float tensor in [-1, 1], on the CPU) with
    padding and optional tiling; returns ``[N, C_out, H, W]`` float32 on the CPU.

    The caller chooses the mode (see :func:`test_time_mode`) and clamps ``overlap`` with
    :func:`~napari_pix2pix.predict.clamp_tiling`. A thin wrapper over
    :func:`~napari_pix2pix.predict.run_tiles` for torch tensors. ``on_batch``: its
    ``before_batch`` hook (the uncertainty module seeds each tile's dropout there).
    """
    import torch

    from .backends.torch import generator_runner

    device = device or next(generator.parameters()).device
    x_np = x.detach().cpu().float().numpy() if torch.is_tensor(x) else np.asarray(x, np.float32)
    y = run_tiles(generator_runner(generator, device, precision), x_np, tile=tile, overlap=overlap,
                  batch_size=batch_size, size_multiple=size_multiple, progress=progress, cancel=cancel,
                  before_batch=on_batch)
    return torch.from_numpy(np.ascontiguousarray(y))


def translate(model, image, *, config: TileConfig | None = None, channel_axis: int | None = None,
              output_dtype: str = "input", progress=None, cancel=None) -> np.ndarray:
    """Translate ``image`` (``[..., Y, X(, C)]``, any size, any stack depth) with ``model``
    (:class:`~napari_pix2pix.model.Pix2PixModel`, or a :class:`~napari_pix2pix.predict.Predictor`).
    Returns an array in the same layout with the model's output channels; dtype: ``input`` (the
    image's), ``target`` (what B was trained on) or any numpy dtype name such as ``float32``.

    A thin wrapper over :meth:`Predictor.predict <napari_pix2pix.predict.Predictor.predict>`:
    an out-of-memory error is retried with halved tiles before failing with advice.
    """
    from .predict import Predictor

    return Predictor.of(model, config).predict(image, channel_axis=channel_axis, output_dtype=output_dtype,
                                               progress=progress, cancel=cancel, samples=1)
