"""ComfyUI tensors <-> engine arrays.

Conventions (ComfyUI's): IMAGE is ``[B, H, W, C]`` float32 in 0..1 (C = 3, sometimes 1 or 4),
MASK is ``[B, H, W]`` float32 in 0..1.

Channels: a model with 1 input channel gets the image's luminance (``kornia.color.rgb_to_grayscale``,
ITU-R 601 weights 0.299/0.587/0.114); when R == G == B everywhere (a gray image loaded as RGB, or
a 1-channel result expanded by these nodes) channel 0 is taken as is, so gray round-trips exactly.
A 3-channel model gets RGB (alpha dropped; a 1-channel IMAGE is repeated). Outputs with one
channel are repeated to 3 so that they plug into Save Image / Preview Image.

Values: IMAGE 0..1 is the training data divided by its dtype's maximum (uint8 data: x 255,
uint16: x 65535); float data is used as is. Images paired by the Pair Images node are float
0..1 with a fixed 0..1 -> [-1, 1] mapping, so their models map IMAGE 0..1 to [-1, 1] exactly.
Label sides use the label ids divided by the largest id (binary masks: 0/1).
"""

from __future__ import annotations

import numpy as np

from napari_pix2pix import layout
from napari_pix2pix.errors import InputError
from napari_pix2pix.render import CURVE_COLOURS, LOSS_LABELS, VALIDATION_LABELS

IMAGE_FIX = ("connect an IMAGE output such as Load Image's (a [batch, height, width, channels] "
             "tensor); convert a MASK with 'Convert Mask to Image' first.")


def _as_numpy(x, name: str) -> np.ndarray:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            if x.is_complex():
                raise InputError(f"{name} has complex values ({x.dtype}).",
                                 "pass a real-valued IMAGE (e.g. the magnitude) in 0..1.")
            return x.detach().to("cpu", torch.float32).numpy().copy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if isinstance(x, np.ndarray):
        if np.iscomplexobj(x):
            raise InputError(f"{name} has complex values ({x.dtype}).",
                             "pass a real-valued IMAGE (e.g. the magnitude) in 0..1.")
        return x.astype(np.float32, copy=True)
    raise InputError(f"{name} is a {type(x).__name__}, not an image tensor.", IMAGE_FIX)


def image_to_numpy(image, name: str = "image") -> np.ndarray:
    """Check a ComfyUI IMAGE and return it as float32 ``[B, H, W, C]`` (a copy)."""
    arr = _as_numpy(image, name)
    if arr.ndim != 4:
        raise InputError(f"{name} has shape {list(arr.shape)}; a ComfyUI IMAGE is 4-D "
                         "[batch, height, width, channels].", IMAGE_FIX)
    b, h, w, c = arr.shape
    if b == 0:
        raise InputError(f"{name} is an empty batch (shape {list(arr.shape)}).",
                         "feed at least one image (check the node that produced the batch).")
    if h == 0 or w == 0:
        raise InputError(f"{name} has no pixels (shape {list(arr.shape)}).", "feed a non-empty image.")
    if not 1 <= c <= 4:
        raise InputError(f"{name} has {c} entries on its last axis; IMAGE channels must be last "
                         f"(1, 3 or 4), got shape {list(arr.shape)}.",
                         "pass [batch, height, width, channels] images (not channels-first).")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} has {int((~np.isfinite(arr)).sum())} NaN or infinite values.",
                         "fix the node that produced it, or clamp the image first.")
    return arr


def mask_to_numpy(mask, name: str = "mask") -> np.ndarray:
    """Check a ComfyUI MASK and return it as float32 ``[B, H, W]``."""
    arr = _as_numpy(mask, name)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InputError(f"{name} has shape {list(arr.shape)}; a ComfyUI MASK is [batch, height, width].",
                         "connect a MASK output (e.g. Load Image's second output).")
    if arr.shape[0] == 0 or 0 in arr.shape[1:]:
        raise InputError(f"{name} is empty (shape {list(arr.shape)}).", "feed at least one mask.")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} has NaN or infinite values.", "fix the node that produced it.")
    return arr


def is_gray(arr: np.ndarray) -> bool:
    """Whether a ``[..., C]`` image has identical colour channels (or only one)."""
    if arr.shape[-1] == 1:
        return True
    rgb = arr[..., :3]
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]))


def to_gray(arr: np.ndarray) -> np.ndarray:
    """``[B, H, W, C]`` -> ``[B, H, W, 1]``: channel 0 when the channels are equal, else luminance."""
    if is_gray(arr):
        return np.ascontiguousarray(arr[..., :1])
    import kornia
    import torch

    t = layout.comfy_to_model(torch.from_numpy(np.ascontiguousarray(arr[..., :3])))
    with torch.no_grad():
        g = kornia.color.rgb_to_grayscale(t)
    return layout.contiguous(layout.model_to_comfy(g)).numpy()


def to_channels(arr: np.ndarray, channels: int, name: str, what: str) -> np.ndarray:
    """Adapt ``[B, H, W, C]`` to ``channels`` (see the module docstring) or raise InputError."""
    c = arr.shape[-1]
    if c == channels:
        return arr
    if channels == 1 and c in (3, 4):
        return to_gray(arr)
    if channels == 3 and c == 1:
        return np.repeat(arr, 3, axis=-1)
    if channels == 3 and c == 4:
        return np.ascontiguousarray(arr[..., :3])
    raise InputError(f"{name} has {c} channel(s) but {what} expects {channels}.",
                     f"feed a {channels}-channel image, or use a model trained on {c}-channel images "
                     "(1: gray, 3: RGB).")


def to_image(arr: np.ndarray) -> np.ndarray:
    """Model output ``[B, H, W, C]`` -> IMAGE channels: 1 -> 3 (repeated), 2 -> 3 (zero third),
    3 or 4 kept, more -> the first 3; clipped to 0..1, float32."""
    c = arr.shape[-1]
    if c == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif c == 2:
        arr = np.concatenate([arr, np.zeros_like(arr[..., :1])], axis=-1)
    elif c > 4:
        arr = arr[..., :3]
    return np.clip(arr, 0.0, 1.0).astype(np.float32)


def to_mask(arr: np.ndarray) -> np.ndarray:
    """``[B, H, W, C]`` -> MASK ``[B, H, W]`` (channel 0 when gray, else luminance), 0..1."""
    return np.clip(to_gray(arr)[..., 0], 0.0, 1.0).astype(np.float32)


def to_tensor(arr: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


# ------------------------------------------------------------------------ value mapping
def data_channels(model, side: str) -> int:
    """Channels of the data of ``side`` ('a' or 'b') before normalisation."""
    norm = model.normalization(side)
    if norm is not None:
        return int(norm.channels)
    return int(model.config.in_channels if side == "a" else model.config.out_channels)


def value_scale(model, side: str) -> tuple[float, bool]:
    """(data value of IMAGE 1.0, is_labels) for ``side``."""
    norm = model.normalization(side)
    if norm is None:
        return 1.0, False
    if norm.is_labels:
        if norm.label_encoding == "binary":
            return 1.0, True
        if norm.label_encoding == "onehot":
            return float(max(norm.n_classes - 1, 1)), True
        return float(max(norm.high, 1.0)), True
    dtype = np.dtype(norm.dtype)
    if dtype == bool:
        return 1.0, False
    if dtype.kind in "iu":
        return float(np.iinfo(dtype).max), False
    return 1.0, False


def image_to_data(arr: np.ndarray, model, side: str) -> np.ndarray:
    scale, labels = value_scale(model, side)
    out = arr * np.float32(scale)
    return np.rint(out).astype(np.float32) if labels else out.astype(np.float32)


def data_to_image(arr: np.ndarray, model, side: str) -> np.ndarray:
    scale, _ = value_scale(model, side)
    return (np.asarray(arr, np.float32) / np.float32(scale)).astype(np.float32)


# ---------------------------------------------------------------------------- colormaps
# Colours come from the engine's colormap service (kornia's maps). "magma" was offered before
# kornia drew the maps; saved workflows that name it get kornia's closest map, plasma.
COLORMAPS = ("viridis", "plasma", "fake_red_real_blue", "gray")
_RENAMED = {"magma": "plasma"}


def colormap(values: np.ndarray, name: str = "viridis") -> np.ndarray:
    """``[...]`` values in 0..1 -> ``[..., 3]`` RGB float32 0..1. ``fake_red_real_blue`` is the
    diverging map with red at 0 (fake), white at 0.5 and blue at 1 (real)."""
    from napari_pix2pix.render import colormap as engine_colormap

    name = _RENAMED.get(name, name)
    v = np.clip(np.nan_to_num(np.asarray(values, np.float32), nan=0.0), 0.0, 1.0)
    if name == "gray":
        return np.repeat(v[..., None], 3, axis=-1).astype(np.float32)
    if name == "fake_red_real_blue":
        v, name = 1.0 - v, "seismic"
    flat = v.reshape(1, -1) if v.ndim != 2 else v
    rgb = engine_colormap(flat, name).astype(np.float32) / 255.0
    return rgb.reshape(v.shape + (3,))


# --------------------------------------------------------------------------- loss curve
# history key -> (curve name, colour): the engine's table, also used by the napari Train dock's plot
_LOSSES = {k: (LOSS_LABELS[k], CURVE_COLOURS[LOSS_LABELS[k]]) for k in ("G_L1", "G_GAN", "D_real", "D_fake")}
_VALIDATION = {f"val_{k}": (name, CURVE_COLOURS[name]) for k, name in VALIDATION_LABELS.items()}
CURVE_SIZE = (384, 640)  # (height, width) of the Train node's loss-curve IMAGE


def _series(rows: list, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``key`` over the history rows that have it; non-finite values -> NaN (a gap)."""
    pairs = [(float(r["step"]), float(r[key])) for r in rows if isinstance(r.get(key), (int, float))]
    steps, values = (np.asarray(c, np.float64) for c in zip(*pairs)) if pairs else (np.zeros(0), np.zeros(0))
    return steps, np.where(np.isfinite(values), values, np.nan)


def loss_curve(history: list, height: int = CURVE_SIZE[0], width: int = CURVE_SIZE[1]) -> np.ndarray:
    """A checkpoint's history as an RGB float32 ``[H, W, 3]`` image in 0..1, drawn with matplotlib
    (an Agg canvas on a figure of its own, no pyplot global state: server threads share nothing):
    the L1 term on top, the adversarial terms (G cGAN, D real, D fake) below, and the validation
    PSNR/SSIM in a third panel when the history has them. Curve names are the napari Train dock's."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in history or [] if isinstance(r, dict) and isinstance(r.get("step"), (int, float))]
    validation = {k: v for k, v in _VALIDATION.items() if len(_series(rows, k)[0])}
    panels = [("L1", ("G_L1",)), ("adversarial", ("G_GAN", "D_real", "D_fake"))]
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels) + bool(validation), 1, sharex=True, squeeze=False)[:, 0]
    drawn = 0
    for ax, (title, keys) in zip(axes, panels):
        for key in keys:
            steps, values = _series(rows, key)
            name, colour = _LOSSES[key]
            ax.plot(steps, values, color=colour, linewidth=1.2, label=name, marker="o" if len(steps) == 1 else None)
            drawn += len(steps)
        ax.set_ylabel(title, fontsize=7)
        ax.legend(loc="upper right", fontsize=6, ncol=len(keys), frameon=False)
    if validation:
        ax = axes[-1]
        twin = None
        for i, (key, (name, colour)) in enumerate(validation.items()):
            target = ax if i == 0 else (twin := ax.twinx())
            steps, values = _series(rows, key)
            target.plot(steps, values, color=colour, linewidth=1.2, marker="o", markersize=3, label=name)
            target.set_ylabel(name, fontsize=7, color=colour)
            target.tick_params(labelsize=6)
        lines = ax.get_lines() + (twin.get_lines() if twin is not None else [])
        ax.legend(lines, [ln.get_label() for ln in lines], loc="lower right", fontsize=6, frameon=False)
    for ax in axes:
        ax.tick_params(labelsize=6)
        ax.grid(True, color="#dddddd", linewidth=0.5)
    axes[-1].set_xlabel("step", fontsize=7)
    if not drawn:
        axes[-1].set_xlim(0, 1)
        axes[0].text(0.5, 0.5, "no training steps recorded", transform=axes[0].transAxes,
                     ha="center", va="center", fontsize=8, color="#666666")
    fig.tight_layout(pad=0.4, h_pad=0.3)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3].astype(np.float32) / 255.0
    out = np.ones((height, width, 3), np.float32)  # the exact size asked for, whatever the rounding
    h, w = min(height, rgb.shape[0]), min(width, rgb.shape[1])
    out[:h, :w] = rgb[:h, :w]
    return out
