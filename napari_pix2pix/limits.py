"""Limits checked before anything is allocated: pixels of an image, JSON depth and size of a
model file's header, architecture sizes and tensor materialisation.

Every limit is checked from a header (an image's shape, a model file's metadata) before the
data is decoded or a network is built, so a small crafted file fails fast with a one-line
:class:`~napari_pix2pix.errors.Pix2PixError` instead of exhausting memory.

The pixel limit is configurable: :func:`set_max_pixels`, or the environment variable
``NAPARI_PIX2PIX_MAX_PIXELS`` (a number of values, e.g. ``4e9``). The others are fixed bounds
far beyond any real Pix2Pix model.
"""

from __future__ import annotations

import json
import math
import os
import re

from .errors import ConfigError, ImageReadError, ModelFileError

#: default limit on the values of one image (all axes, channels included): about one gigapixel
DEFAULT_MAX_PIXELS = 2**30
ENV_MAX_PIXELS = "NAPARI_PIX2PIX_MAX_PIXELS"
#: nesting depth of any JSON read from a file (headers, metadata fields)
MAX_JSON_DEPTH = 64
#: bytes of a safetensors header (the JSON before the tensor data)
MAX_HEADER_BYTES = 16 * 1024 * 1024
#: tensors listed in one model file (a unet_256 with its discriminator and Adam state has ~600)
MAX_TENSORS = 20_000
#: architecture bounds (inclusive)
MAX_FEATURES = 1024       # ngf, ndf
MAX_CHANNELS = 4096       # in_channels, out_channels (one-hot labels included; the schema's range)
MAX_UNET_DEPTH = 14       # unet_16384
#: dimensions of an image besides channels: at most [T, Z, Y, X]
MAX_IMAGE_DIMS = 4
#: a foreign tensor may expand to at most this many bytes beyond what its file stores
MAX_EXPANSION_BYTES = 64 * 1024 * 1024

_override: int | None = None


def max_pixels() -> int:
    """The current pixel limit (values per image): :func:`set_max_pixels`, else the environment
    variable ``NAPARI_PIX2PIX_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`."""
    if _override is not None:
        return _override
    text = os.environ.get(ENV_MAX_PIXELS)
    if text:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or value < 1:
            raise ConfigError(f"{ENV_MAX_PIXELS}={text!r} is not a positive number.",
                              f"set {ENV_MAX_PIXELS} to a number of pixel values such as 2e9, or unset it.")
        return int(value)
    return DEFAULT_MAX_PIXELS


def set_max_pixels(value: int | None) -> None:
    """Set the pixel limit for this process (None: back to the environment/default)."""
    global _override
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ConfigError(f"max_pixels={value!r} is not a positive integer.", "pass a number such as 2**31.")
    _override = value


def check_pixels(shape, name: str, itemsize: int = 1) -> None:
    """Raise :class:`ImageReadError` when an image of ``shape`` (read from its header) holds more
    values than :func:`max_pixels`, or has more than :data:`MAX_IMAGE_DIMS` axes besides a
    trailing colour axis."""
    shape = tuple(int(s) for s in shape)
    count = math.prod(shape) if shape else 0
    limit = max_pixels()
    if count > limit:
        size = " x ".join(map(str, shape))
        raise ImageReadError(
            f"{name}: the image is {size} ({count:,} values, {count * itemsize / 2**30:.1f} GiB), above the "
            f"limit of {limit:,} values.",
            f"crop or downsample it first, or raise the limit with {ENV_MAX_PIXELS}=<values> if the machine "
            "has the memory.")


def check_dims(shape, name: str, channel_last: bool) -> None:
    """Refuse arrays with more than [T, Z, Y, X] (plus a colour axis): the same rule everywhere."""
    extra = len(shape) - (1 if channel_last else 0)
    if extra > MAX_IMAGE_DIMS:
        raise ImageReadError(
            f"{name}: the image has {extra} dimensions besides channels (shape {list(shape)}); at most "
            f"{MAX_IMAGE_DIMS} (T, Z, Y, X) are supported.",
            "select a 2-D to 4-D sub-array (e.g. one channel or one time point) first.")


# ---------------------------------------------------------------------------------- JSON
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def json_depth(raw: bytes | str) -> int:
    """Maximum nesting depth of the JSON text ``raw`` (strings ignored), without recursion."""
    import numpy as np

    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    data = _STRING.sub(b'""', data)
    codes = np.frombuffer(data, np.uint8)
    step = np.zeros(codes.shape, np.int32)
    step[(codes == ord("[")) | (codes == ord("{"))] = 1
    step[(codes == ord("]")) | (codes == ord("}"))] = -1
    return int(np.cumsum(step).max()) if len(step) else 0


def loads(raw: bytes | str, what: str, fix: str, max_depth: int = MAX_JSON_DEPTH):
    """``json.loads`` with a nesting-depth limit; any failure is a one-line :class:`ModelFileError`."""
    if json_depth(raw) > max_depth:
        raise ModelFileError(f"{what} is nested more than {max_depth} levels deep.", fix)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{what} is not valid JSON ({exc.__class__.__name__}).", fix) from None


# ---------------------------------------------------------------------------- architecture
def check_architecture(config, where: str = "") -> None:
    """Raise :class:`ConfigError` when a :class:`~napari_pix2pix.config.ModelConfig` is beyond the
    bounds any Pix2Pix model needs (ngf/ndf, channels, U-Net depth), before a network is built."""
    from .config import unet_depth

    prefix = f"{where}: " if where else ""
    for name, high in (("ngf", MAX_FEATURES), ("ndf", MAX_FEATURES), ("in_channels", MAX_CHANNELS),
                       ("out_channels", MAX_CHANNELS)):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise ConfigError(f"{prefix}{name}={value!r} is outside 1..{high}.",
                              f"use {name} between 1 and {high} (the paper's is 64 for ngf/ndf).")
    depth = unet_depth(config.generator)
    if depth is not None and depth > MAX_UNET_DEPTH:
        raise ConfigError(f"{prefix}generator {config.generator[:40]!r} has {depth} levels; at most "
                          f"{MAX_UNET_DEPTH} (unet_{2 ** MAX_UNET_DEPTH}) are supported.",
                          "use unet_256, unet_128, unet_64 or unet_32.")


def expected_state(config, what: str) -> dict:
    """``{key: (dtype, shape)}`` of the generator or discriminator ``config`` describes, built on
    torch's meta device (no memory is allocated). Call :func:`check_architecture` first."""
    import torch

    from .models import build_discriminator, build_generator

    build = build_generator if what == "generator" else build_discriminator
    with torch.device("meta"):
        net = build(config, init=False)
    return {k: (v.dtype, tuple(v.shape)) for k, v in net.state_dict().items()}


def state_bytes(expected: dict) -> int:
    """Bytes the tensors of :func:`expected_state` take."""
    return sum(math.prod(shape) * dtype.itemsize for dtype, shape in expected.values())


def parameter_shapes(config, what: str) -> list[tuple]:
    """Shapes of the parameters (the optimizer's order) of the generator or discriminator, on the
    meta device."""
    import torch

    from .models import build_discriminator, build_generator

    build = build_generator if what == "generator" else build_discriminator
    with torch.device("meta"):
        net = build(config, init=False)
    return [tuple(p.shape) for p in net.parameters()]
