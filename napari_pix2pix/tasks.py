"""Tasks: what a pair means, how pairs are built from images and how model output becomes an image.

* ``translate`` (the default, and what every older model file is): A -> B as paired by
  :mod:`napari_pix2pix.data`, each side mapped by its fitted normalisation.
* ``colorize``: the paper's grayscale -> colour in Lab space. Any set of RGB images gives
  pairs (no target is needed): A = the lightness L, B = the chroma ab. Lab comes from
  ``kornia.color.rgb_to_lab`` (sRGB, D65) on the device, with the normalisation
  **L / 50 - 1** (L in 0..100 -> [-1, 1]) and **ab / 110** (a, b in about -110..110 ->
  about [-1, 1]). Translating a grayscale or RGB image takes L from the input, predicts ab and
  converts back with ``kornia.color.lab_to_rgb``: the output is always RGB. Where the predicted
  chroma falls outside the sRGB gamut it is reduced (towards gray, per pixel) until it fits,
  so the output's lightness is the input's.

Inference runs through :class:`~napari_pix2pix.predict.Predictor`, which takes each task's
adapter (:func:`adapter`: :class:`TranslateTask`, :class:`ColorizeTask`) for the way from an
image to the network's input and back.

The task is recorded in the model file (``data['task']`` and ``data['source']['task']``);
files without it are ``translate``.

Input values for colorize: integer images are scaled by their dtype's maximum (uint8 /255,
uint16 /65535), float images are taken as 0..1 (values above 1 with a maximum of at most 255
are read as 0..255), bool as 0/1. RGBA loses its alpha channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .config import TASK_CHOICES
from .errors import DatasetError, InputError

TASKS = TASK_CHOICES
L_SCALE = 50.0  # L / 50 - 1: L 0..100 -> [-1, 1]
AB_SCALE = 110.0  # ab / 110
_GAMUT_STEPS = 12  # bisection steps of the per-pixel chroma reduction (2**-12 of the chroma)


# ------------------------------------------------------------------------------ task lookup
def task_of(model_or_data) -> str:
    """The task of a :class:`~napari_pix2pix.model.Pix2PixModel`, a checkpoint, a dataset or a
    checkpoint's ``data`` dict; ``translate`` when none is recorded (older files)."""
    data = model_or_data
    if hasattr(data, "checkpoint"):
        data = data.checkpoint
    if hasattr(data, "pairs") and hasattr(data, "source"):  # a PairedDataset
        data = {"source": data.source}
    if hasattr(data, "data") and isinstance(getattr(data, "data"), dict):
        data = data.data
    data = data if isinstance(data, dict) else {}
    task = data.get("task") or (data.get("source") or {}).get("task") or "translate"
    if task not in TASKS:
        raise InputError(f"the model's task {task!r} is not one of {', '.join(TASKS)}.",
                         "update napari-pix2pix, or use a model trained for translate or colorize.")
    return task


def check_task(task: str) -> str:
    if task not in TASKS:
        raise InputError(f"task={task!r} is not one of {', '.join(TASKS)}.", f"choose task from: {', '.join(TASKS)}.")
    return task


# --------------------------------------------------------------------------- colour space
def unit_rgb(array: np.ndarray, what: str = "image") -> np.ndarray:
    """An image's values as float32 0..1 (see the module docstring for the rule per dtype)."""
    array = np.asarray(array)
    if array.dtype == bool:
        return array.astype(np.float32)
    if array.dtype.kind in "iu":
        top = float(np.iinfo(array.dtype).max)
        return np.clip(array.astype(np.float32) / np.float32(top), 0, 1)
    if array.dtype.kind != "f":
        raise InputError(f"the {what} has dtype {array.dtype}, which is not an image type.",
                         "pass an integer or float image.")
    if not np.isfinite(array).all():
        raise InputError(f"the {what} has NaN or infinite pixels.", "replace them first (numpy.nan_to_num).")
    out = array.astype(np.float32)
    top = float(out.max()) if out.size else 0.0
    if 1.0 < top <= 255.0:
        out = out / np.float32(255.0)
    return np.clip(out, 0, 1)


def rgb_to_model(rgb):
    """``[N, 3, H, W]`` RGB 0..1 (torch, any device) -> ``(L, ab)`` in model units:
    ``L / 50 - 1`` ``[N, 1, H, W]`` and ``ab / 110`` ``[N, 2, H, W]``."""
    from kornia.color import rgb_to_lab

    lab = rgb_to_lab(rgb.float().clamp(0, 1))
    return lab[:, :1] / L_SCALE - 1.0, lab[:, 1:] / AB_SCALE


def model_to_rgb(l_norm, ab_norm):
    """Model units back to RGB 0..1 ``[N, 3, H, W]`` (torch). Chroma outside the sRGB gamut is
    scaled towards gray per pixel (bisection) so that the lightness is kept."""
    import torch
    from kornia.color import lab_to_rgb

    lum = (l_norm.float() + 1.0) * L_SCALE
    lum = lum.clamp(0, 100)
    ab = ab_norm.float() * AB_SCALE

    def rgb(t):
        return lab_to_rgb(torch.cat([lum, ab * t], 1), clip=False)

    tol = 1e-4
    full = rgb(torch.ones_like(lum))
    inside = ((full >= -tol) & (full <= 1 + tol)).all(1, keepdim=True)
    if bool(inside.all()):
        return full.clamp(0, 1)
    lo, hi = torch.zeros_like(lum), torch.ones_like(lum)
    for _ in range(_GAMUT_STEPS):
        mid = (lo + hi) / 2
        ok = ((rgb(mid) >= -tol) & (rgb(mid) <= 1 + tol)).all(1, keepdim=True)
        lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
    t = torch.where(inside, torch.ones_like(lum), lo)
    return rgb(t).clamp(0, 1)


def lightness(rgb01: np.ndarray) -> np.ndarray:
    """CIE L (0..100) of an RGB 0..1 array ``[..., 3]`` (numpy in, numpy out; kornia on the CPU)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(rgb01, np.float32).reshape(
        (-1,) + rgb01.shape[-3:]), -1, 1)))
    l_norm, _ = rgb_to_model(x)
    return ((l_norm[:, 0].numpy() + 1.0) * L_SCALE).reshape(rgb01.shape[:-1])


def _is_rgb(array: np.ndarray, channel_axis: int | None) -> bool:
    if channel_axis is not None:
        return True
    return array.ndim >= 3 and array.shape[-1] in (3, 4) and array.shape[-2] > 4


def to_rgb_layout(image: np.ndarray, channel_axis: int | None = None) -> tuple[np.ndarray, tuple[int, ...], bool]:
    """``[..., Y, X]`` (gray) or ``[..., Y, X, 3|4]`` -> (float32 RGB 0..1 ``[N, 3, H, W]``,
    stack shape, whether the input was colour)."""
    from .inference import check_array, check_stack

    image = check_array(image)
    colour = _is_rgb(image, channel_axis)
    if colour:
        if channel_axis is not None:
            image = np.moveaxis(image, channel_axis, -1)
        c = image.shape[-1]
        if c == 4:
            image = image[..., :3]
        elif c == 1:
            image, colour = image[..., 0], False
        elif c != 3:
            raise InputError(f"a colorize model takes gray or RGB images; this one has {c} channels.",
                             "choose a grayscale or RGB(A) image.")
    rgb = unit_rgb(image)
    if not colour:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    if rgb.ndim < 3:
        raise InputError(f"the image must be at least 2-D, got shape {image.shape}.", "pass a [Y, X] image.")
    stack = rgb.shape[:-3]
    check_stack(stack)
    flat = rgb.reshape((-1,) + rgb.shape[-3:])
    return np.ascontiguousarray(np.moveaxis(flat, -1, 1)), stack, colour


def from_unit_rgb(rgb01: np.ndarray, dtype) -> np.ndarray:
    """RGB 0..1 -> ``dtype``: integers scaled by the dtype's maximum (rounded), floats kept 0..1."""
    dtype = np.dtype(dtype)
    if dtype == bool:
        return rgb01 > 0.5
    if dtype.kind in "iu":
        top = np.iinfo(dtype).max
        return np.clip(np.rint(rgb01.astype(np.float64) * top), 0, top).astype(dtype)
    return rgb01.astype(dtype)


# ------------------------------------------------------------------------------ task adapters
@dataclass
class Encoded:
    """An input ready for the network, and the way back.

    ``x``: ``[N, C_in, H, W]`` float32 numpy in model units. ``decode(y, dtype, raw=False)``: model
    output ``[N, C_out, H, W]`` (numpy) -> image in the caller's layout and ``dtype`` (``raw``:
    float64 in that dtype's units, unrounded, for averaging). ``dtypes``: output dtype for
    ``'input'`` and ``'target'``."""

    x: np.ndarray
    stack: tuple
    decode: Callable
    dtypes: dict


class TranslateTask:
    """A -> B: each side mapped by the model's fitted normalisation (every older model file)."""

    name = "translate"

    def dtypes(self, backend, dtype) -> dict:
        return {"input": np.dtype(dtype), "target": np.dtype(backend.normalizations(dtype)[1].dtype)}

    def output_channels(self, backend, dtype) -> int:
        return int(backend.normalizations(dtype)[1].channels)

    def encode(self, backend, image, channel_axis: int | None = None) -> Encoded:
        from .inference import check_array, from_model_layout, to_model_layout

        image = check_array(image)
        norm_a, norm_b = backend.normalizations(image.dtype)
        x, stack = to_model_layout(image, norm_a.channels, channel_axis)  # data channels (onehot labels: 1)
        x = np.ascontiguousarray(norm_a.forward(x), dtype=np.float32)
        if x.shape[1] != backend.in_channels:
            raise InputError(f"after normalisation the image has {x.shape[1]} channels but the model expects "
                             f"{backend.in_channels}.", "choose a matching model or image.")

        def decode(y, dtype, raw=False):
            # raw: float64 in data units, not rounded (labels: ids)
            return from_model_layout(norm_b.inverse(np.asarray(y), dtype=np.float64 if raw else dtype), stack)

        return Encoded(x, stack, decode, {"input": image.dtype, "target": np.dtype(norm_b.dtype)})


class ColorizeTask:
    """L -> ab in kornia's Lab: RGB or gray in, the input's L and the predicted ab out as RGB."""

    name = "colorize"
    chunk = 8  # slices converted at once (bounds the Lab conversion's memory)

    def dtypes(self, backend, dtype) -> dict:
        source = (getattr(backend, "data", None) or {}).get("source") or {}
        return {"input": np.dtype(dtype), "target": np.dtype(source.get("rgb_dtype", np.dtype(dtype).name))}

    def output_channels(self, backend, dtype) -> int:
        return 3

    def encode(self, backend, image, channel_axis: int | None = None) -> Encoded:
        import torch

        from .inference import from_model_layout

        rgb, stack, _ = to_rgb_layout(image, channel_axis)
        device = getattr(backend, "torch_device", "cpu")
        n = self.chunk
        with torch.no_grad():
            l_norm = torch.cat([rgb_to_model(torch.from_numpy(rgb[i:i + n]).to(device))[0].cpu()
                                for i in range(0, len(rgb), n)])

        def decode(y, dtype, raw=False):
            with torch.no_grad():
                yt = torch.as_tensor(np.asarray(y, np.float32))
                out = torch.cat([model_to_rgb(l_norm[i:i + n].to(device), yt[i:i + n].to(device)).cpu()
                                 for i in range(0, len(yt), n)]).numpy()
            dtype = np.dtype(dtype)
            if raw:  # float64 in the units of dtype, not rounded
                top = float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0
                return from_model_layout(out.astype(np.float64) * top, stack, squeeze_channels=False)
            return from_model_layout(from_unit_rgb(out, dtype), stack, squeeze_channels=False)

        return Encoded(np.ascontiguousarray(l_norm.numpy(), dtype=np.float32), stack, decode,
                       self.dtypes(backend, np.asarray(image).dtype))


ADAPTERS = {"translate": TranslateTask(), "colorize": ColorizeTask()}


def adapter(task: str):
    """The adapter of ``task`` (what :class:`~napari_pix2pix.predict.Predictor` runs through)."""
    return ADAPTERS[check_task(task)]


# --------------------------------------------------------------------------------- pairing
def _rgb_images(images, names) -> list[tuple[str, np.ndarray]]:
    if isinstance(images, np.ndarray):
        images = [images]  # one image, or a stack / batch [N, Y, X, 3] (one pair per slice)
    images = list(images)
    if not images:
        raise DatasetError("no images to colorize from.", "pass at least one RGB image.")
    if names is None:
        width = max(3, len(str(len(images) - 1)))
        names = [f"image_{i:0{width}d}" for i in range(len(images))] if len(images) > 1 else ["image"]
    elif isinstance(names, str):
        names = [names] if len(images) == 1 else [f"{names}_{i}" for i in range(len(images))]
    out, problems = [], []
    for name, img in zip(names, images):
        arr = np.asarray(img)
        if not (arr.ndim >= 3 and arr.shape[-1] in (3, 4) and arr.shape[-2] > 4):
            problems.append(f"{name}: shape {list(arr.shape)} is not an RGB image [Y, X, 3]")
            continue
        arr = arr[..., :3]
        if arr.ndim > 4:
            problems.append(f"{name}: {arr.ndim - 1} dimensions besides colour; at most [Z, Y, X, 3]")
            continue
        out.append((name, arr))
    if problems:
        raise DatasetError("colorize pairs need RGB images:\n" + "\n".join(f"- {p}" for p in problems),
                           "pass colour images (grayscale ones hold no colour to learn).")
    return out


def colorize_dataset(images, config=None, *, names=None, device="cpu", source: dict | None = None):
    """L -> ab training pairs from RGB images (arrays ``[Y, X, 3|4]`` or ``[Z, Y, X, 3|4]``, a
    list of them, or a batch ``[N, Y, X, 3]``). Returns a
    :class:`~napari_pix2pix.data.PairedDataset` whose source records ``task='colorize'``.
    Lab is computed with kornia on ``device``."""
    import torch

    from .config import DataConfig
    from .data.normalize import Normalization
    from .data.sources import Pair, PairedDataset, _slice_names

    config = config or DataConfig()
    items = _rgb_images(images, names)
    dtypes = {arr.dtype.name for _, arr in items}
    pairs, described = [], []
    dev = torch.device(device)
    for name, arr in items:
        frames = arr.reshape((-1,) + arr.shape[-3:])
        rgb = np.moveaxis(unit_rgb(frames, name), -1, 1)
        with torch.no_grad():
            l_norm, ab_norm = rgb_to_model(torch.from_numpy(np.ascontiguousarray(rgb)).to(dev))
        l_norm, ab_norm = l_norm.cpu().numpy(), ab_norm.cpu().numpy()
        for i, slice_name in enumerate(_slice_names(name, len(frames))):
            a, b = l_norm[i].astype(np.float32), ab_norm[i].astype(np.float32)
            pairs.append(Pair(a=a, b=b, name=slice_name, raw_a=(a + 1.0) * np.float32(L_SCALE),
                              raw_b=b * np.float32(AB_SCALE)))
        described.append({"name": name, "shape": list(arr.shape), "dtype": arr.dtype.name})
    norm_a = Normalization(mode="fixed", low=0.0, high=100.0, dtype="float32", channels=1)
    norm_b = Normalization(mode="fixed", low=-AB_SCALE, high=AB_SCALE, dtype="float32", channels=2)
    src = {"kind": "colorize", **(source or {})}
    src.update(task="colorize", lab={"L": "L/50-1", "ab": "ab/110", "converter": "kornia.color.rgb_to_lab"},
               rgb_dtype=sorted(dtypes)[0] if len(dtypes) == 1 else "float32", items=described)
    return PairedDataset(pairs=pairs, norm_a=norm_a, norm_b=norm_b, a_is_labels=False, b_is_labels=False,
                         source=src, foreground_bias=float(getattr(config, "foreground_bias", 0.0)))


def colorize_from_paths(source, config=None, *, device="cpu"):
    """Colorize pairs from one RGB image file or a folder of them (any format :mod:`napari_pix2pix.io`
    reads)."""
    from .io import IMAGE_EXTENSIONS, read_image

    src = Path(source)
    if not src.exists():
        raise DatasetError(f"source {src} does not exist.", "check the path.")
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if src.is_dir() else [src]
    if not files:
        raise DatasetError(f"folder {src} holds no images ({', '.join(IMAGE_EXTENSIONS)}).",
                           "choose a folder of RGB images.")
    return colorize_dataset([read_image(f) for f in files], config, names=[f.stem for f in files], device=device,
                            source={"kind": "colorize_files", "path": str(src), "files": [str(f) for f in files]})


def build_dataset(task: str, *, source=None, images=None, config=None, names=None, device="cpu"):
    """The dataset of ``task`` from paths (``source``) or arrays (``images``); for ``translate``
    use :mod:`napari_pix2pix.data` directly (it needs a target)."""
    check_task(task)
    if task != "colorize":
        raise InputError("build_dataset builds colorize pairs; translate pairs need a target.",
                         "use napari_pix2pix.data.from_paths / from_arrays for translate.")
    if images is not None:
        return colorize_dataset(images, config, names=names, device=device)
    return colorize_from_paths(source, config, device=device)
