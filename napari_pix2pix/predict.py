"""The one Predictor: normalise, pad, tile, blend, autocast, de-normalise, for every face.

The CLI, the napari widgets, the graph nodes and dask all translate through :class:`Predictor`;
what runs the network is a *backend* (:mod:`napari_pix2pix.backends`): ``torch`` (the default,
a :class:`~napari_pix2pix.model.Pix2PixModel`) or ``onnxruntime`` (an ``.onnx`` file written by
``export --format onnx``; torch is never imported).

Everything here is numpy: the backend maps a float32 batch ``[B, C_in, t, t]`` in [-1, 1] to
``[B, C_out, t, t]``; this module cuts the tiles, pads them, blends them and maps the data to
and from the model's range. Importing it does not import torch.

Layouts are the engine's (see :mod:`napari_pix2pix.inference`): ``[..., Y, X]`` or
``[..., Y, X, C]`` (``channel_axis``), leading axes are stacks translated slice by slice.

Tiling: tiles of ``tile`` pixels overlapping by ``overlap`` pixels are blended with weights that
ramp linearly across the overlap and are normalised to sum to one at every pixel. One tile
covering the whole image gives the untiled result exactly. :func:`clamp_tiling` is the single
rule that turns the user's ``tile``/``overlap`` into what is run (every caller uses it).

Stochastic samples (``samples > 1``, uncertainty): the hook is :meth:`Predictor.predict`'s
``samples``/``seed`` arguments (only ``samples=1`` is implemented here) and
:func:`run_tiles`' ``before_batch`` (tile positions, for per-tile seeds); the torch backend's
``session(mode="train", seed=...)`` keeps running batch-norm statistics untouched.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from .config import BACKEND_CHOICES, TileConfig
from .errors import Cancelled, ConfigError, InputError


# ------------------------------------------------------------------------------- tiling math
def clamp_tiling(tile: int, overlap: int) -> tuple[int, int]:
    """``(tile, overlap)`` as run: ``tile=0`` (whole image) has no overlap; otherwise the
    overlap stays below half the tile (so every tile keeps a core of its own).

    This is the one place the rule lives: in-memory tiling, dask blocks, evaluation and the
    out-of-memory retry all call it."""
    tile, overlap = max(int(tile or 0), 0), max(int(overlap or 0), 0)
    if tile == 0:
        return 0, 0
    return tile, min(overlap, max(tile // 2 - 1, 0))


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


def pad_to(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad ``[B, C, h, w]`` at the bottom/right to ``height x width``: mirrored (reflect) where
    the image is large enough, its edge repeated otherwise."""
    ph, pw = height - x.shape[-2], width - x.shape[-1]
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < x.shape[-2] and pw < x.shape[-1] else "edge"
    return np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)


def run_tiles(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, *, tile: int = 0, overlap: int = 0,
              batch_size: int = 4, size_multiple: int = 1,
              progress: Callable[[int, int], None] | None = None,
              cancel: Callable[[], bool] | None = None,
              before_batch: Callable[[list[tuple[int, int, int]]], None] | None = None) -> np.ndarray:
    """``run`` over ``x`` ``[N, C, H, W]`` (float32, model range) in padded, overlapping tiles;
    returns the blended ``[N, C_out, H, W]`` float32.

    ``before_batch(boxes)``, when given, is called with the ``(slice, y, x)`` of each tile of the
    next batch (a hook for per-tile seeds of stochastic samples).

    ``run`` maps a batch ``[B, C, th, tw]`` to ``[B, C_out, th, tw]`` (both numpy float32).
    ``tile=0`` or a tile covering the whole image runs each slice at once, padded to a multiple
    of ``size_multiple``. ``overlap`` is used as given (clamp it with :func:`clamp_tiling`).
    """
    x = np.asarray(x, dtype=np.float32)
    n, _, h, w = x.shape
    m = max(int(size_multiple), 1)
    whole = tile == 0 or (h <= tile and w <= tile)
    if whole:
        th, tw, overlap = _round_up(h, m), _round_up(w, m), 0
        hp, wp = th, tw
    else:
        t = _round_up(tile, m)
        th, tw = min(t, _round_up(h, m)), min(t, _round_up(w, m))
        hp, wp = max(h, th), max(w, tw)
    ys, xs = tile_starts(hp, th, overlap), tile_starts(wp, tw, overlap)
    win = np.outer(ramp(th, overlap if len(ys) > 1 else 0), ramp(tw, overlap if len(xs) > 1 else 0))
    boxes = [(i, y, xx) for i in range(n) for y in ys for xx in xs]
    out = None
    weight = np.zeros((hp, wp), dtype=np.float32)
    done = 0
    for b0 in range(0, len(boxes), max(int(batch_size), 1)):
        if cancel is not None and cancel():
            raise Cancelled("translation was cancelled.", "run it again when needed.")
        group = boxes[b0:b0 + max(int(batch_size), 1)]
        # each tile is cut from the image (padded only where the image is smaller than the tile)
        crops = [pad_to(x[i:i + 1, :, y:y + th, xx:xx + tw], th, tw) for i, y, xx in group]
        if before_batch is not None:
            before_batch(group)
        y_b = np.asarray(run(np.ascontiguousarray(np.concatenate(crops))), dtype=np.float32)
        if out is None:
            out = np.zeros((n, y_b.shape[1], hp, wp), dtype=np.float32)
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


# -------------------------------------------------------------------------------- Predictor
def output_dtype_of(output_dtype: str, input_dtype, norm_b) -> np.dtype:
    """The dtype an ``output_dtype`` setting (``input`` | ``target`` | a numpy name) gives."""
    if output_dtype in (None, "input"):
        return np.dtype(input_dtype)
    if output_dtype == "target":
        return np.dtype(norm_b.dtype)
    try:
        return np.dtype(output_dtype)
    except TypeError:
        raise InputError(f"output dtype {output_dtype!r} is not a numpy dtype.",
                         "use input, target, or a dtype name such as float32 or uint16.") from None


class Predictor:
    """Translate arrays of any size with one model through one backend.

    >>> p = Predictor.load("model.onnx", config=TileConfig(tile=256))   # doctest: +SKIP
    >>> out = p.predict(image)                                           # doctest: +SKIP

    ``backend``: an object of :mod:`napari_pix2pix.backends` (``TorchBackend``,
    ``OnnxRuntimeBackend``). ``config``: :class:`~napari_pix2pix.config.TileConfig`.
    """

    def __init__(self, backend, config: TileConfig | None = None):
        self.backend = backend
        self.config = config or TileConfig()

    # ------------------------------------------------------------------------ construction
    @classmethod
    def from_model(cls, model, config: TileConfig | None = None) -> "Predictor":
        """A predictor for a loaded :class:`~napari_pix2pix.model.Pix2PixModel` (torch backend)."""
        from .backends.torch import TorchBackend

        return cls(TorchBackend(model), config)

    @classmethod
    def load(cls, path: str | os.PathLike, *, backend: str | None = None, config: TileConfig | None = None
             ) -> "Predictor":
        """A predictor for a model file: ``.safetensors`` (torch) or ``.onnx`` (onnxruntime; torch
        is not needed). ``backend``: ``auto`` (by the file), ``torch`` or ``onnxruntime``
        (default: ``config.backend``)."""
        config = config or TileConfig()
        kind = resolve_backend(path, backend or getattr(config, "backend", "auto"))
        if kind == "onnxruntime":
            from .backends.onnxruntime import OnnxRuntimeBackend

            return cls(OnnxRuntimeBackend(path, device=config.device), config)
        from .model import Pix2PixModel

        return cls.from_model(Pix2PixModel.load(path, device=config.device), config)

    # -------------------------------------------------------------------------- properties
    @property
    def in_channels(self) -> int:
        return self.backend.in_channels

    @property
    def out_channels(self) -> int:
        return self.backend.out_channels

    @property
    def size_multiple(self) -> int:
        return self.backend.size_multiple

    def normalizations(self, dtype):
        """``(norm_a, norm_b)`` of the model for input data of ``dtype``."""
        return self.backend.normalizations(dtype)

    # ----------------------------------------------------------------------------- running
    def predict_model_space(self, x: np.ndarray, *, progress=None, cancel=None, seed: int | None = None
                            ) -> np.ndarray:
        """Network output ``[N, C_out, H, W]`` (float32, model range) for ``x`` ``[N, C_in, H, W]``
        already normalised, tiled and blended as configured. Out-of-memory is retried with
        halved tiles before failing with advice."""
        config = self.config
        seed = config.seed if seed is None else seed
        tile, overlap = clamp_tiling(config.tile, config.overlap)
        while True:
            try:
                with self.backend.session(mode=config.mode, seed=seed, precision=config.precision) as run:
                    return run_tiles(run, x, tile=tile, overlap=overlap, batch_size=config.batch_size,
                                     size_multiple=self.size_multiple, progress=progress, cancel=cancel)
            except Exception as exc:  # noqa: BLE001 - only out-of-memory is retried
                if not self.backend.is_out_of_memory(exc):
                    raise
                full = max(x.shape[-2:])
                smaller = (tile or full) // 2
                if smaller < 2 * self.size_multiple or smaller < 64:
                    raise InputError(f"out of memory while translating a {tuple(x.shape[-2:])} image "
                                     f"even with tiles of {tile or full} pixels.",
                                     "use smaller tiles (--tile 256), a smaller tile batch, or the CPU.") from None
                tile, overlap = clamp_tiling(smaller, config.overlap)

    def predict(self, image, *, channel_axis: int | None = None, output_dtype: str | None = None,
                progress=None, cancel=None, samples: int = 1, seed: int | None = None) -> np.ndarray:
        """Translate ``image`` (``[..., Y, X(, C)]``, any size and stack depth). Returns an array
        in the same layout with the model's output channels; dtype by ``output_dtype``
        (default: the config's): ``input`` (the image's), ``target`` (what B was trained on) or a
        numpy dtype name.

        ``samples``/``seed``: the hook for stochastic samples (uncertainty). ``samples=1`` (the
        only value implemented here) is one deterministic pass in the configured mode.
        """
        from .inference import check_array, from_model_layout, to_model_layout

        if samples != 1:
            raise ConfigError(f"samples={samples}: stochastic samples are not available in this version.",
                              "use samples=1.")
        image = check_array(image)
        norm_a, norm_b = self.normalizations(image.dtype)
        x, stack = to_model_layout(image, norm_a.channels, channel_axis)  # data channels (onehot labels: 1)
        xn = np.ascontiguousarray(norm_a.forward(x), dtype=np.float32)
        if xn.shape[1] != self.in_channels:
            raise InputError(f"after normalisation the image has {xn.shape[1]} channels but the model expects "
                             f"{self.in_channels}.", "choose a matching model or image.")
        y = self.predict_model_space(xn, progress=progress, cancel=cancel, seed=seed)
        if output_dtype is None:
            output_dtype = getattr(self.config, "output_dtype", "input")
        result = norm_b.inverse(y, dtype=output_dtype_of(output_dtype, image.dtype, norm_b))
        return from_model_layout(result, stack)

    __call__ = predict


def resolve_backend(path, backend: str = "auto") -> str:
    """``torch`` or ``onnxruntime`` for a model file and a ``backend`` setting; refuses
    combinations that can't work, saying what to do."""
    if backend not in BACKEND_CHOICES:
        raise ConfigError(f"backend={backend!r} is not one of {', '.join(BACKEND_CHOICES)}.",
                          f"choose backend from: {', '.join(BACKEND_CHOICES)}.")
    is_onnx = str(path).lower().endswith(".onnx")
    if backend == "auto":
        return "onnxruntime" if is_onnx else "torch"
    if backend == "onnxruntime" and not is_onnx:
        raise ConfigError(f"the onnxruntime backend runs .onnx files, and {os.path.basename(str(path))!r} is not one.",
                          "export it first (python -m napari_pix2pix export MODEL --format onnx --out "
                          "model.onnx), or use --backend torch.")
    if backend == "torch" and is_onnx:
        raise ConfigError(f"the torch backend runs .safetensors model files, not {os.path.basename(str(path))!r}.",
                          "use --backend onnxruntime (or auto) for .onnx files.")
    return backend
