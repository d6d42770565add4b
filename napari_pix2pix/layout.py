"""One place for the three array layouts, and the moves between them.

==========  ===========================  ==========================================
who         layout                       notes
==========  ===========================  ==========================================
napari      ``[..., Y, X(, C)]``         leading axes are a stack (T, Z, ...); the
                                         channel axis is last here (move it first)
model       ``[B, C, H, W]``             what the networks take and give
ComfyUI     ``[B, H, W, C]``             IMAGE; a MASK is ``[B, H, W]``
==========  ===========================  ==========================================

Every function accepts a numpy array or a torch tensor and returns the same kind; nothing is
copied unless the move needs it. Pure axis bookkeeping: no value mapping, no checks of channel
counts (the engine's data and inference modules do those).

>>> import numpy as np
>>> comfy_to_model(np.zeros((2, 5, 7, 3))).shape
(2, 3, 5, 7)
>>> nchw, stack = napari_to_model(np.zeros((4, 6, 5, 7, 3)))
>>> nchw.shape, stack
((24, 3, 5, 7), (4, 6))
>>> model_to_napari(nchw, stack).shape
(4, 6, 5, 7, 3)
"""

from __future__ import annotations

import numpy as np


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _move(x, source: int, destination: int):
    if _is_torch(x):
        return x.movedim(source, destination)
    return np.moveaxis(x, source, destination)


def comfy_to_model(image):
    """ComfyUI IMAGE ``[B, H, W, C]`` -> model ``[B, C, H, W]``."""
    return _move(image, -1, 1)


def model_to_comfy(batch):
    """Model ``[B, C, H, W]`` -> ComfyUI IMAGE ``[B, H, W, C]``."""
    return _move(batch, 1, -1)


def mask_to_model(mask):
    """ComfyUI MASK ``[B, H, W]`` -> model ``[B, 1, H, W]``."""
    return mask[:, None]


def model_to_mask(batch):
    """Model ``[B, 1, H, W]`` (or more channels: the first) -> ComfyUI MASK ``[B, H, W]``."""
    return batch[:, 0]


def channels_last(array, channel_axis: int | None):
    """``array`` with its channel axis moved last; a trailing axis of 1 added when there is none
    (``channel_axis=None``)."""
    if channel_axis is None:
        return array[..., None]
    return _move(array, channel_axis, -1)


def napari_to_model(array, channel_axis: int | None = -1):
    """napari ``[..., Y, X(, C)]`` -> (model ``[N, C, H, W]``, the stack shape ``...``).

    ``channel_axis``: where the channels are (None: a single-channel image without that axis).
    """
    array = channels_last(array, channel_axis)
    if array.ndim < 3:
        raise ValueError(f"an image needs at least Y and X axes, got shape {tuple(array.shape)}")
    stack = tuple(array.shape[:-3])
    h, w, c = array.shape[-3:]
    return _move(array.reshape((-1, h, w, c)), -1, 1), stack


def model_to_napari(batch, stack: tuple[int, ...] = (), squeeze_channels: bool = False,
                    channel_axis: int = -1):
    """Model ``[N, C, H, W]`` -> napari ``[*stack, H, W, C]`` (channels at ``channel_axis``;
    ``squeeze_channels``: dropped when there is one)."""
    out = _move(batch, 1, -1)
    out = out.reshape(tuple(stack) + tuple(out.shape[1:]))
    if squeeze_channels and out.shape[-1] == 1:
        return out[..., 0]
    if channel_axis != -1:
        out = _move(out, -1, channel_axis)
    return out


def comfy_to_napari(image):
    """ComfyUI IMAGE ``[B, H, W, C]`` is napari's layout for a stack of B RGB(A) frames, channels
    last: returned as is (for symmetry, and so that callers say what they mean)."""
    return image


def contiguous(x):
    """A C-contiguous copy when needed (torch ``.contiguous()``, numpy ``ascontiguousarray``)."""
    return x.contiguous() if _is_torch(x) else np.ascontiguousarray(x)
