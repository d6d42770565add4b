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
_SERIES = (("G_L1", (0.85, 0.37, 0.01)), ("G_GAN", (0.12, 0.47, 0.71)),
           ("D_real", (0.17, 0.63, 0.17)), ("D_fake", (0.84, 0.15, 0.16)))


def _draw_line(canvas: np.ndarray, x0, y0, x1, y1, colour, width: int = 2) -> None:
    n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    xs = np.rint(np.linspace(x0, x1, n)).astype(int)
    ys = np.rint(np.linspace(y0, y1, n)).astype(int)
    h, w = canvas.shape[:2]
    for dy in range(width):
        for dx in range(width):
            yy, xx = np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)
            canvas[yy, xx] = colour


def loss_curve(history: list, height: int = 384, width: int = 640) -> np.ndarray:
    """Training losses as an RGB float32 ``[H, W, 3]`` image: the L1 term on top, the adversarial
    terms (G_GAN, D_real, D_fake) below; each panel scaled to its own range. Drawn with numpy;
    labels are added with Pillow when it is installed."""
    canvas = np.ones((height, width, 3), np.float32)
    rows = [r for r in history or [] if isinstance(r, dict) and "step" in r and "G_L1" in r]
    margin_l, margin_r, margin_t, gap = 56, 12, 22, 28
    panel_h = (height - margin_t - gap - 20) // 2
    panels = [(margin_t, ("G_L1",)), (margin_t + panel_h + gap, ("G_GAN", "D_real", "D_fake"))]
    colours = dict(_SERIES)
    labels = []
    steps = np.asarray([float(r["step"]) for r in rows]) if rows else np.zeros(0)
    s0, s1 = (steps.min(), steps.max()) if len(steps) else (0.0, 1.0)
    if s1 <= s0:
        s1 = s0 + 1.0
    x_of = lambda s: margin_l + (s - s0) / (s1 - s0) * (width - margin_l - margin_r - 1)  # noqa: E731
    for top, keys in panels:
        bottom = top + panel_h
        canvas[top:bottom + 1, margin_l] = 0.3
        canvas[bottom, margin_l:width - margin_r] = 0.3
        values = np.asarray([[float(r.get(k, np.nan)) for k in keys] for r in rows]) if rows else np.zeros((0, len(keys)))
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        y_of = lambda v: bottom - 2 - (v - lo) / (hi - lo) * (panel_h - 6)  # noqa: E731
        for j, key in enumerate(keys):
            col = np.asarray(colours[key], np.float32)
            pts = [(x_of(s), y_of(v)) for s, v in zip(steps, values[:, j]) if np.isfinite(v)]
            if len(pts) == 1:
                _draw_line(canvas, pts[0][0], pts[0][1], pts[0][0], pts[0][1], col, 3)
            for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
                _draw_line(canvas, xa, ya, xb, yb, col)
        labels.append((top, bottom, keys, lo, hi))
    try:
        from PIL import Image, ImageDraw
    except ImportError:  # labels are optional
        return canvas
    img = Image.fromarray((canvas * 255).round().astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for top, bottom, keys, lo, hi in labels:
        draw.text((4, top - 2), f"{hi:.3g}", fill=(60, 60, 60))
        draw.text((4, bottom - 10), f"{lo:.3g}", fill=(60, 60, 60))
        x = margin_l + 6
        for key in keys:
            col = tuple(int(255 * c) for c in colours[key])
            draw.text((x, top - 16), key, fill=col)
            x += 8 * len(key) + 16
    draw.text((margin_l, height - 14), f"step {int(s0)}", fill=(60, 60, 60))
    end = f"step {int(s1)}" if rows else "no steps"
    draw.text((width - margin_r - 8 * len(end), height - 14), end, fill=(60, 60, 60))
    return np.asarray(img, np.float32) / 255.0
