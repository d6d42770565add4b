"""Inference on arrays of any size: layout handling, padding, overlapping tiles, stacks.

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
from .errors import Cancelled, InputError

MAX_STACK_DIMS = 2  # at most [T, Z, Y, X(, C)]


# ------------------------------------------------------------------------------- tiling math
def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``0..length`` with at least ``overlap``
    shared pixels between neighbours. The last tile ends exactly at ``length``."""
    if length <= tile:
        return [0]
    step = max(tile - overlap, 1)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def ramp(tile: int, overlap: int) -> np.ndarray:
    """1-D blending weights ``[tile]``: rising linearly over the first ``overlap`` pixels, flat,
    then falling; strictly positive everywhere."""
    w = np.ones(tile, np.float32)
    if overlap > 0:
        r = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
        w[:overlap] = r
        w[tile - overlap:] = np.minimum(w[tile - overlap:], r[::-1])
    return w


def tile_weights(shape: tuple[int, int], tile: int, overlap: int) -> np.ndarray:
    """Sum of the blending windows of every tile over an image of ``shape``: ``[H, W]``.
    Dividing by it makes the tile weights a partition of unity."""
    h, w = shape
    th, tw = min(tile, h), min(tile, w)
    total = np.zeros((h, w), np.float64)
    win = np.outer(ramp(th, overlap if h > tile else 0), ramp(tw, overlap if w > tile else 0))
    for y in tile_starts(h, th, overlap):
        for x in tile_starts(w, tw, overlap):
            total[y:y + th, x:x + tw] += win
    return total


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


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
    stack = array.shape[:-3]
    if len(stack) > MAX_STACK_DIMS:
        raise InputError(f"the image has {array.ndim - 1} dimensions besides channels; at most "
                         f"{MAX_STACK_DIMS + 2} (T, Z, Y, X) are supported.",
                         "select a 2-D to 4-D sub-array (e.g. one channel or one time point) first.")
    h, w = array.shape[-3:-1]
    flat = array.reshape((-1, h, w, array.shape[-1]))
    return np.ascontiguousarray(np.moveaxis(flat, -1, 1)), stack


def from_model_layout(y: np.ndarray, stack: tuple[int, ...], squeeze_channels: bool = True) -> np.ndarray:
    """``[N, C, H, W]`` -> ``[..stack, H, W(, C)]`` (channel axis dropped when C == 1)."""
    out = np.moveaxis(y, 1, -1)
    out = out.reshape(stack + out.shape[1:])
    if squeeze_channels and out.shape[-1] == 1:
        out = out[..., 0]
    return out


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


def _pad(x, height: int, width: int):
    """Pad ``[B, C, h, w]`` at the bottom/right to ``height x width`` (reflect, replicate if too small)."""
    import torch.nn.functional as F

    ph, pw = height - x.shape[-2], width - x.shape[-1]
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < x.shape[-2] and pw < x.shape[-1] else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


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

    The caller chooses the mode (see :func:`test_time_mode`). ``tile=0`` or a tile covering the
    whole image runs each slice at once. ``on_batch``: called with the boxes ``(slice, row, col)``
    of each tile batch just before the generator runs on it (the uncertainty module seeds each
    tile's dropout from its position there).
    """
    import torch

    device = device or next(generator.parameters()).device
    n, _, h, w = x.shape
    m = size_multiple
    amp = (torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
           if precision != "fp32" else contextlib.nullcontext())
    whole = tile == 0 or (h <= tile and w <= tile)
    if whole:
        th, tw, overlap = _round_up(h, m), _round_up(w, m), 0
        hp, wp = th, tw
    else:
        t = _round_up(tile, m)
        th, tw = min(t, _round_up(h, m)), min(t, _round_up(w, m))
        hp, wp = max(h, th), max(w, tw)
    ys, xs = tile_starts(hp, th, overlap), tile_starts(wp, tw, overlap)
    win = torch.from_numpy(np.outer(ramp(th, overlap if len(ys) > 1 else 0),
                                    ramp(tw, overlap if len(xs) > 1 else 0)))
    boxes = [(i, y, xx) for i in range(n) for y in ys for xx in xs]
    out = None
    weight = torch.zeros((hp, wp), dtype=torch.float32)
    done = 0
    for b0 in range(0, len(boxes), batch_size):
        if cancel is not None and cancel():
            raise Cancelled("translation was cancelled.", "run it again when needed.")
        group = boxes[b0:b0 + batch_size]
        # each tile is cut from the image (padded only where the image is smaller than the tile)
        crops = [_pad(x[i:i + 1, :, y:y + th, xx:xx + tw], th, tw) for i, y, xx in group]
        batch = torch.cat(crops).to(device)
        if on_batch is not None:
            on_batch(group)
        with amp:
            y_b = generator(batch)
        y_b = y_b.float().cpu()
        if out is None:
            out = torch.zeros((n, y_b.shape[1], hp, wp), dtype=torch.float32)
        for (i, y, xx), y_t in zip(group, y_b):
            if whole:
                out[i] = y_t
            else:
                out[i, :, y:y + th, xx:xx + tw] += y_t * win
                if i == 0:
                    weight[y:y + th, xx:xx + tw] += win
        done += len(group)
        if progress is not None:
            progress(done, len(boxes))
    if not whole:
        out /= weight
    return out[:, :, :h, :w]


def translate(model, image, *, config: TileConfig | None = None, channel_axis: int | None = None,
              output_dtype: str = "input", progress=None, cancel=None) -> np.ndarray:
    """Translate ``image`` (``[..., Y, X(, C)]``, any size, any stack depth) with ``model``
    (:class:`~napari_pix2pix.model.Pix2PixModel`). Returns an array in the same layout with the
    model's output channels; dtype: ``input`` (the image's), ``target`` (what B was trained on)
    or any numpy dtype name such as ``float32``.

    An out-of-memory error is retried with halved tiles before failing with advice.
    """
    config = config or TileConfig()
    from .tasks import task_of, translate_colorize

    if task_of(model) == "colorize":  # L -> ab: the output is RGB
        return translate_colorize(model, image, config=config, channel_axis=channel_axis,
                                  output_dtype=output_dtype, progress=progress, cancel=cancel)
    image = check_array(image)
    norm_a, norm_b = model.normalizations(image.dtype)
    x, stack = to_model_layout(image, norm_a.channels, channel_axis)  # data channels (one-hot labels: 1)
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(norm_a.forward(x), dtype=np.float32))
    if xt.shape[1] != model.config.in_channels:
        raise InputError(f"after normalisation the image has {xt.shape[1]} channels but the model expects "
                         f"{model.config.in_channels}.", "choose a matching model or image.")
    tile = config.tile
    while True:
        try:
            with test_time_mode(model.generator, config.mode, config.seed):
                y = run_generator(model.generator, xt, tile=tile, overlap=min(config.overlap, max(tile // 2 - 1, 0)),
                                  batch_size=config.batch_size, size_multiple=model.config.size_multiple,
                                  device=model.device, precision=config.precision, progress=progress,
                                  cancel=cancel)
            break
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is retried
            if not is_out_of_memory(exc):
                raise
            full = max(xt.shape[-2:])
            smaller = (tile or full) // 2
            if smaller < 2 * model.config.size_multiple or smaller < 64:
                raise InputError(f"out of memory while translating a {tuple(xt.shape[-2:])} image "
                                 f"even with tiles of {tile or full} pixels.",
                                 "use smaller tiles (--tile 256), a smaller tile batch, or the CPU.") from None
            tile = smaller
    if output_dtype == "input":
        dtype = image.dtype
    elif output_dtype == "target":
        dtype = np.dtype(norm_b.dtype)
    else:
        dtype = np.dtype(output_dtype)
    result = norm_b.inverse(y.numpy(), dtype=dtype)
    return from_model_layout(result, stack)
