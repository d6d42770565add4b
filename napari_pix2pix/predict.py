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

Tasks (:mod:`napari_pix2pix.tasks`): an adapter turns the image into the network's input and
its output back into an image: ``translate`` through the model's normalisations, ``colorize``
through kornia's Lab (L in, L + predicted ab out as RGB; kornia needs torch, also with the
onnxruntime backend).

Stochastic samples (``samples > 1``, uncertainty, :meth:`Predictor.sample`): seeded dropout
passes whose tile seeds come from the tile's position (:func:`tile_seed`), averaged into the
output, with the per-pixel std corrected for the blend (:func:`blend_spread`); the backend
supplies the passes (``sampling_session``) and the discriminator's ``realism`` map (torch only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, NamedTuple

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


class TilePlan(NamedTuple):
    """Where :func:`run_tiles` cuts its tiles: ``whole`` (one padded tile per slice), the tile
    size ``th x tw``, the padded image ``hp x wp``, the tile starts ``ys``/``xs`` and the
    blending window ``win`` ``[th, tw]``."""

    whole: bool
    th: int
    tw: int
    hp: int
    wp: int
    ys: list
    xs: list
    win: np.ndarray


def tile_plan(h: int, w: int, tile: int, overlap: int, size_multiple: int = 1) -> TilePlan:
    """The tiles of an ``h x w`` image (the one geometry of :func:`run_tiles` and
    :func:`blend_spread`)."""
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
    return TilePlan(whole, th, tw, hp, wp, ys, xs, win)


def blend_spread(shape: tuple[int, int], tile: int, overlap: int, size_multiple: int) -> np.ndarray:
    """``sqrt(sum w^2) / sum w`` per pixel ``[H, W]`` for the tiles that :func:`run_tiles`
    blends (same geometry). Where tiles overlap, the blend of independent stochastic passes has a
    smaller spread than each tile by this factor; dividing the std by it removes the bands of low
    uncertainty the overlaps would otherwise draw."""
    h, w = shape
    plan = tile_plan(h, w, tile, overlap, size_multiple)
    if plan.whole:
        return np.ones((h, w), np.float64)
    win = plan.win.astype(np.float64)
    total, squares = np.zeros((plan.hp, plan.wp)), np.zeros((plan.hp, plan.wp))
    for y in plan.ys:
        for x in plan.xs:
            total[y:y + plan.th, x:x + plan.tw] += win
            squares[y:y + plan.th, x:x + plan.tw] += win**2
    return (np.sqrt(squares) / total)[:h, :w]


def tile_seed(seed: int, sample: int, index: int, row: int, col: int) -> int:
    """The dropout seed of one tile of one stochastic pass: a hash of its position (slice, tile
    row and column), not of batch order, so results do not depend on the tile batch size."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, sample, index, row, col]).generate_state(1)[0])


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
    whole, th, tw, hp, wp, ys, xs, win = tile_plan(h, w, tile, overlap, size_multiple)
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
def output_dtype_of(output_dtype: str, input_dtype, norm_b=None, *, dtypes: dict | None = None) -> np.dtype:
    """The dtype an ``output_dtype`` setting (``input`` | ``target`` | a numpy name) gives.
    ``dtypes``: what ``input``/``target`` mean for a task (default: the input's dtype and
    ``norm_b``'s)."""
    dtypes = dtypes if dtypes is not None else {"input": input_dtype,
                                                "target": None if norm_b is None else norm_b.dtype}
    if output_dtype in (None, "input", "target"):
        return np.dtype(dtypes[output_dtype or "input"])
    try:
        return np.dtype(output_dtype)
    except TypeError:
        raise InputError(f"output dtype {output_dtype!r} is not a numpy dtype.",
                         "use input, target, or a dtype name such as float32 or uint16.") from None


@dataclass
class Prediction:
    """What :meth:`Predictor.sample` returns.

    ``output``: the image (the mean of the passes for ``samples > 1``) in the caller's layout and
    dtype. ``uncertainty``: per-pixel std of the passes, float32, same shape as ``output`` (None
    for one sample). ``realism``: the discriminator's probability-real map ``[..., Y, X]`` float32
    aligned to the output (None unless asked). ``model_output``: the (mean) network output in
    model units ``[N, C, H, W]`` float32."""

    output: np.ndarray
    uncertainty: np.ndarray | None = None
    realism: np.ndarray | None = None
    model_output: np.ndarray | None = None


class Predictor:
    """Translate arrays of any size with one model through one backend.

    >>> p = Predictor.load("model.onnx", config=TileConfig(tile=256))   # doctest: +SKIP
    >>> out = p.predict(image)                                           # doctest: +SKIP
    >>> maps = p.sample(image, samples=8, realism=True)                  # doctest: +SKIP

    ``backend``: an object of :mod:`napari_pix2pix.backends` (``TorchBackend``,
    ``OnnxRuntimeBackend``). ``config``: :class:`~napari_pix2pix.config.TileConfig`.

    What the model's data mean is its *task* (:mod:`napari_pix2pix.tasks`): ``translate`` maps the
    image with the model's normalisations; ``colorize`` feeds the lightness L (kornia Lab) and
    returns RGB from L and the predicted ab. Every face (CLI, napari, nodes, dask) goes through
    :meth:`predict` / :meth:`sample`.
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
    def of(cls, model, config: TileConfig | None = None) -> "Predictor":
        """``model`` as a predictor: a :class:`Predictor` (with ``config`` when given) or a loaded
        :class:`~napari_pix2pix.model.Pix2PixModel`."""
        if isinstance(model, Predictor):
            return model if config is None else Predictor(model.backend, config)
        return cls.from_model(model, config)

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

    @property
    def task(self):
        """The task adapter (:mod:`napari_pix2pix.tasks`) of the model: how an image becomes the
        network's input and its output an image."""
        from .tasks import adapter

        return adapter(getattr(self.backend, "task", "translate"))

    def normalizations(self, dtype):
        """``(norm_a, norm_b)`` of the model for input data of ``dtype``."""
        return self.backend.normalizations(dtype)

    def output_channels(self, dtype) -> int:
        """Channels of the output image for input data of ``dtype`` (colorize: 3, RGB)."""
        return self.task.output_channels(self.backend, dtype)

    def output_dtype(self, output_dtype: str | None, dtype) -> np.dtype:
        """The output's dtype for an ``output_dtype`` setting and input data of ``dtype``."""
        if output_dtype is None:
            output_dtype = getattr(self.config, "output_dtype", "input")
        return output_dtype_of(output_dtype, dtype, dtypes=self.task.dtypes(self.backend, np.dtype(dtype)))

    # ----------------------------------------------------------------------------- running
    def _retry_smaller(self, work: Callable[[int, int], object], shape) -> object:
        """``work(tile, overlap)`` with the configured tiling; out-of-memory is retried with
        halved tiles before failing with advice."""
        config = self.config
        tile, overlap = clamp_tiling(config.tile, config.overlap)
        while True:
            try:
                return work(tile, overlap)
            except Exception as exc:  # noqa: BLE001 - only out-of-memory is retried
                if not self.backend.is_out_of_memory(exc):
                    raise
                full = max(shape[-2:])
                smaller = (tile or full) // 2
                if smaller < 2 * self.size_multiple or smaller < 64:
                    raise InputError(f"out of memory while translating a {tuple(shape[-2:])} image "
                                     f"even with tiles of {tile or full} pixels.",
                                     "use smaller tiles (--tile 256), a smaller tile batch, or the CPU.") from None
                tile, overlap = clamp_tiling(smaller, config.overlap)

    def predict_model_space(self, x: np.ndarray, *, progress=None, cancel=None, seed: int | None = None
                            ) -> np.ndarray:
        """Network output ``[N, C_out, H, W]`` (float32, model range) for ``x`` ``[N, C_in, H, W]``
        already normalised, tiled and blended as configured (one pass in the configured mode).
        Out-of-memory is retried with halved tiles before failing with advice."""
        config = self.config
        seed = config.seed if seed is None else seed
        x = np.asarray(x, np.float32)

        def work(tile, overlap):
            with self.backend.session(mode=config.mode, seed=seed, precision=config.precision) as run:
                return run_tiles(run, x, tile=tile, overlap=overlap, batch_size=config.batch_size,
                                 size_multiple=self.size_multiple, progress=progress, cancel=cancel)

        return self._retry_smaller(work, x.shape)

    def encode(self, image, channel_axis: int | None = None):
        """``image`` as the network's input, by the model's task: a
        :class:`~napari_pix2pix.tasks.Encoded` (``x`` ``[N, C_in, H, W]`` float32 and the way back)."""
        return self.task.encode(self.backend, image, channel_axis)

    def predict(self, image, *, channel_axis: int | None = None, output_dtype: str | None = None,
                progress=None, cancel=None, samples: int | None = None, seed: int | None = None) -> np.ndarray:
        """Translate ``image`` (``[..., Y, X(, C)]``, any size and stack depth). Returns an array
        in the same layout with the model's output channels (colorize: RGB); dtype by
        ``output_dtype`` (default: the config's): ``input`` (the image's), ``target`` (what B was
        trained on) or a numpy dtype name.

        ``samples`` (default ``config.samples``): above 1, the mean of that many stochastic passes
        (see :meth:`sample`, which also returns their spread).
        """
        return self.sample(image, channel_axis=channel_axis, output_dtype=output_dtype, progress=progress,
                           cancel=cancel, samples=samples, seed=seed, realism=False).output

    __call__ = predict

    def sample(self, image, *, samples: int | None = None, seed: int | None = None, realism: bool | None = None,
               channel_axis: int | None = None, output_dtype: str | None = None, progress=None,
               cancel=None) -> Prediction:
        """Translate ``image`` and return a :class:`Prediction`: the output, and with ``samples``
        > 1 (default ``config.samples``) the per-pixel std of that many stochastic passes, with
        ``realism`` (default ``config.realism``) the discriminator's map.

        ``samples=1`` is one pass in ``config.mode`` (exactly :meth:`predict`). Above 1 the
        network runs in eval mode (batch-norm running statistics) with its dropout on; each tile's
        dropout masks come from ``(seed, pass, slice, tile row, tile column)`` (:func:`tile_seed`;
        ``seed`` default ``config.seed``, else 0), so a result does not depend on the tile batch
        size. The output is the mean of the passes, the uncertainty their population std in the
        output's units, divided by :func:`blend_spread` so that tile overlaps show no bands.
        """
        config = self.config
        samples = int(samples if samples is not None else getattr(config, "samples", 1))
        realism = bool(getattr(config, "realism", False) if realism is None else realism)
        if samples < 1:
            raise InputError(f"samples={samples} must be at least 1.", "pass 1 (plain inference) or more, e.g. 8.")
        enc = self.encode(image, channel_axis)
        if output_dtype is None:
            output_dtype = getattr(config, "output_dtype", "input")
        dtype = output_dtype_of(output_dtype, None, dtypes=enc.dtypes)
        if samples == 1:
            y = self.predict_model_space(enc.x, progress=progress, cancel=cancel, seed=seed)
            out = Prediction(enc.decode(y, dtype), None, None, y)
        else:
            seed = int(seed if seed is not None else (config.seed if config.seed is not None else 0))
            out = self._retry_smaller(lambda tile, overlap: self._passes(enc, samples, seed, dtype, tile, overlap,
                                                                         progress, cancel), enc.x.shape)
        if realism:
            out.realism = self.backend.realism(enc.x, out.model_output, enc.stack)
        return out

    def _passes(self, enc, samples: int, seed: int, dtype, tile: int, overlap: int, progress, cancel) -> Prediction:
        """``samples`` seeded stochastic passes over ``enc`` with one tiling: running mean and
        variance (Welford) in the output's units."""
        from .data.normalize import cast_to

        config = self.config
        mean = m2 = y_sum = None
        with self.backend.sampling_session(precision=config.precision) as (run, seed_items):
            for k in range(samples):
                def step(done, n, k=k):
                    if progress is not None:
                        progress(k * n + done, samples * n)

                y = run_tiles(run, enc.x, tile=tile, overlap=overlap, batch_size=config.batch_size,
                              size_multiple=self.size_multiple, progress=step, cancel=cancel,
                              before_batch=lambda group, k=k: seed_items(
                                  [tile_seed(seed, k, i, r, c) for i, r, c in group]))
                value = enc.decode(y, dtype, raw=True)
                if mean is None:
                    mean, m2, y_sum = np.zeros_like(value), np.zeros_like(value), np.zeros_like(y, np.float64)
                delta = value - mean  # Welford: numerically stable running mean and variance
                mean += delta / (k + 1)
                m2 += delta * (value - mean)
                y_sum += y
        spread = blend_spread(tuple(enc.x.shape[-2:]), tile, overlap, self.size_multiple)
        # undo the overlaps' averaging of independent passes (no bands at seams); [H, W(, 1)]
        spread = spread.reshape(spread.shape + (1,) * (m2.ndim - len(enc.stack) - 2))
        std = (np.sqrt(m2 / samples) / spread).astype(np.float32)
        return Prediction(cast_to(mean, dtype), std, None, (y_sum / samples).astype(np.float32))


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
