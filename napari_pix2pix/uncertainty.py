"""Where not to trust a translation: a sample spread (dropout) and a realism map (discriminator).

**Uncertainty** (:func:`translate_samples`): the generator runs ``samples`` times with its dropout
layers active and batch norm on its running statistics (the network is otherwise in eval mode, so
nothing about the model changes). The output is the per-pixel mean of the passes, the uncertainty
their per-pixel standard deviation (population, ``ddof=0``), both in the output's units (the std
is float32, same shape as the output). Each tile's dropout masks come from a generator seeded by
``(seed, pass, slice, tile row, tile column)``, so a result does not depend on the tile batch
size or order; tiles are blended with the usual ramps, so the maps have no seams. Where tiles
overlap, the blend of independent dropout draws has a smaller spread (by ``sqrt(sum w^2) / sum w``,
see :func:`blend_spread`); the std is divided by that factor so that overlaps do not show as bands
of low uncertainty.
``samples=1`` is ordinary inference (:func:`napari_pix2pix.inference.translate`).

**Realism** (:func:`realism_map`): the conditional discriminator's verdict on (input, output)
for any translation, as the probability that each cell is real, placed over the output like the
D map widget does (:class:`~napari_pix2pix.discriminator_map.DiscriminatorMap`) and upsampled to
the output's ``[..., Y, X]`` grid.

What the maps mean, measured on held-out data, is in ``benchmarks/ABLATION.md``: both are weak
hints, not error bars.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from .config import TileConfig
from .errors import InputError
from .data.normalize import cast_to


def tile_seed(seed: int, sample: int, index: int, row: int, col: int) -> int:
    """The dropout seed of one tile of one pass: a hash of its position (not of batch order)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, sample, index, row, col]).generate_state(1)[0])


def dropout_layers(generator) -> list:
    from torch import nn

    return [m for m in generator.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]


class SeededDropout:
    """Makes a generator's dropout layers draw one mask per batch item from that item's own
    ``torch.Generator`` (set with :meth:`seed_items`). Use as a context manager around the passes;
    the generator must be in eval mode (dropout layers then return their input and the hook
    applies the mask, scaled by ``1 / (1 - p)`` as in training)."""

    def __init__(self, generator):
        self.generator = generator
        self.layers = dropout_layers(generator)
        self._items: list = []
        self._handles: list = []

    def __enter__(self):
        self._handles = [m.register_forward_hook(self._hook) for m in self.layers]
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles = []

    def seed_items(self, seeds) -> None:
        import torch

        self._items = [torch.Generator().manual_seed(int(s)) for s in seeds]

    def _hook(self, module, inputs, output):
        import torch

        x = inputs[0]
        if len(self._items) != x.shape[0]:
            raise RuntimeError("SeededDropout: seed_items() was not called for this batch")
        keep = torch.stack([(torch.rand(x.shape[1:], generator=g) >= module.p) for g in self._items])
        return x * keep.to(device=x.device, dtype=x.dtype) / (1.0 - module.p)


@contextlib.contextmanager
def stochastic_mode(generator):
    """Eval mode (running batch-norm statistics) with :class:`SeededDropout` masks; restored after."""
    import torch

    was_training = generator.training
    generator.eval()
    try:
        with SeededDropout(generator) as dropout, torch.no_grad():
            yield dropout
    finally:
        generator.train(was_training)


@dataclass
class SampledTranslation:
    """``output``: the mean image (the caller's dtype). ``uncertainty``: per-pixel std, float32,
    same shape as ``output`` (None for one sample). ``realism``: probability-real map ``[..., Y, X]``
    float32 aligned to the output (None unless asked). ``model_output``: the mean in model units
    ``[N, C, H, W]`` (float32) for further maps."""

    output: np.ndarray
    uncertainty: np.ndarray | None = None
    realism: np.ndarray | None = None
    model_output: np.ndarray | None = None


def blend_spread(shape: tuple[int, int], tile: int, overlap: int, size_multiple: int) -> np.ndarray:
    """``sqrt(sum w^2) / sum w`` per pixel ``[H, W]`` for the tiles that
    :func:`~napari_pix2pix.inference.run_generator` blends (same geometry). Where tiles overlap,
    the blend of independent passes has a smaller spread than each tile by this factor; dividing
    the std by it removes the bands of low uncertainty the overlaps would otherwise draw."""
    from .predict import _round_up, ramp, tile_starts

    h, w = shape
    if tile == 0 or (h <= tile and w <= tile):
        return np.ones((h, w), np.float64)
    t = _round_up(tile, size_multiple)
    th, tw = min(t, _round_up(h, size_multiple)), min(t, _round_up(w, size_multiple))
    hp, wp = max(h, th), max(w, tw)
    ys, xs = tile_starts(hp, th, overlap), tile_starts(wp, tw, overlap)
    win = np.outer(ramp(th, overlap if len(ys) > 1 else 0), ramp(tw, overlap if len(xs) > 1 else 0)).astype(np.float64)
    total, squares = np.zeros((hp, wp)), np.zeros((hp, wp))
    for y in ys:
        for x in xs:
            total[y:y + th, x:x + tw] += win
            squares[y:y + th, x:x + tw] += win**2
    return (np.sqrt(squares) / total)[:h, :w]


def _overlap(config: TileConfig) -> int:
    return min(config.overlap, max(config.tile // 2 - 1, 0))


def _run(model, x, config: TileConfig, **kw):
    from .inference import run_generator

    return run_generator(model.generator, x, tile=config.tile, overlap=_overlap(config),
                         batch_size=config.batch_size, size_multiple=model.config.size_multiple, device=model.device,
                         precision=config.precision, **kw)


def translate_samples(model, image, *, config: TileConfig | None = None, samples: int | None = None,
                      seed: int | None = None, realism: bool = False, channel_axis: int | None = None,
                      output_dtype: str = "input", progress=None, cancel=None) -> SampledTranslation:
    """Translate ``image`` with ``samples`` stochastic passes (default ``config.samples``) and
    return the mean, the per-pixel std and, with ``realism=True``, the discriminator's map.

    ``seed`` (default ``config.seed``, else 0) fixes every dropout mask: the same seed gives the
    same result on any tile batch size. ``samples=1`` runs ordinary inference in ``config.mode``.
    """
    from .tasks import encode, resolve_dtype

    config = config or TileConfig()
    samples = int(samples if samples is not None else getattr(config, "samples", 1))
    if samples < 1:
        raise InputError(f"samples={samples} must be at least 1.", "pass 1 (plain inference) or more, e.g. 8.")
    enc = encode(model, image, channel_axis)
    dtype = resolve_dtype(enc, output_dtype)
    if samples == 1:
        from .inference import test_time_mode

        with test_time_mode(model.generator, config.mode, config.seed):
            y = _run(model, enc.x, config, progress=progress, cancel=cancel)
        y = y.numpy()
        out = SampledTranslation(enc.decode(y, dtype), None, None, y)
    else:
        if not dropout_layers(model.generator):
            raise InputError("this model has no dropout layers, so every sample would be identical.",
                             "use samples 1, or a model with dropout (a U-Net of at least 6 levels, "
                             "e.g. unet_64 or unet_256, trained with dropout on).")
        seed = int(seed if seed is not None else (config.seed if config.seed is not None else 0))
        mean = m2 = y_sum = None
        total = samples
        for k in range(samples):
            def step(done, n, k=k):
                if progress is not None:
                    progress(k * n + done, total * n)

            with stochastic_mode(model.generator) as dropout:
                y = _run(model, enc.x, config, progress=step, cancel=cancel,
                         on_batch=lambda group, k=k: dropout.seed_items(
                             [tile_seed(seed, k, i, r, c) for i, r, c in group]))
            y = y.numpy()
            value = enc.decode(y, dtype, raw=True)
            if mean is None:
                mean, m2, y_sum = np.zeros_like(value), np.zeros_like(value), np.zeros_like(y, np.float64)
            delta = value - mean  # Welford: numerically stable running mean and variance
            mean += delta / (k + 1)
            m2 += delta * (value - mean)
            y_sum += y
        spread = blend_spread(tuple(enc.x.shape[-2:]), config.tile, _overlap(config), model.config.size_multiple)
        # undo the overlaps' averaging of independent passes (no bands at seams); [H, W(, 1)]
        spread = spread.reshape(spread.shape + (1,) * (m2.ndim - len(enc.stack) - 2))
        std = (np.sqrt(m2 / samples) / spread).astype(np.float32)
        out = SampledTranslation(cast_to(mean, dtype), std, None, (y_sum / samples).astype(np.float32))
    if realism:
        out.realism = realism_map(model, enc.x, out.model_output, enc.stack)
    return out




def realism_map(model, x, y, stack: tuple = ()) -> np.ndarray:
    """Probability-real map ``[..stack, H, W]`` float32 of the discriminator on (``x``, ``y``),
    both ``[N, C, H, W]`` in model units, one map per slice, each cell spread over the pixels
    nearest to its receptive-field centre (see :meth:`DiscriminatorMap.upsampled`)."""
    import torch

    from .discriminator_map import DiscriminatorMap
    from .models import geometry

    if model.discriminator is None:
        raise InputError("this model file holds no discriminator, so there is no realism map.",
                         "use a model trained with napari-pix2pix (a generator-only import has none).")
    x = torch.as_tensor(np.asarray(x, np.float32))
    y = torch.as_tensor(np.asarray(y, np.float32))
    h, w = x.shape[-2:]
    geo = geometry(model.discriminator)
    if 0 in geo.map_size(int(h), int(w)):
        raise InputError(f"the image ({h}x{w}) is too small for this discriminator (receptive field {geo.rf}).",
                         f"use an image of at least {geo.rf}x{geo.rf} pixels for a realism map.")
    maps = []
    was_training = model.discriminator.training
    model.discriminator.eval()
    try:
        with torch.no_grad():
            for i in range(x.shape[0]):
                pair = torch.cat([x[i:i + 1], y[i:i + 1]], 1).to(model.device)
                logits = model.discriminator(pair)[0, 0].float().cpu().numpy()
                maps.append(DiscriminatorMap.from_geometry(logits, geo, (int(h), int(w))).upsampled())
    finally:
        model.discriminator.train(was_training)
    return np.stack(maps).reshape(tuple(stack) + (int(h), int(w))).astype(np.float32)


def write_maps(model, image, target, *, config: TileConfig, samples: int, uncertainty=None, realism=None,
               folder: bool = False, output_dtype: str = "input", channel_axis: int | None = None,
               quiet: bool = False) -> np.ndarray:
    """The CLI's ``translate --samples N --uncertainty STD_FILE --realism MAP_FILE``: write the
    mean to ``target`` and the maps next to it (into folders of those names when ``folder``).
    Returns the output."""
    from pathlib import Path

    from .io import write_image

    result = translate_samples(model, image, config=config, samples=samples, realism=bool(realism),
                               channel_axis=channel_axis, output_dtype=output_dtype)
    target = Path(target)
    written = [write_image(target, result.output)]

    def place(path) -> Path:
        path = Path(path)
        if folder:
            path.mkdir(parents=True, exist_ok=True)
            return path / (target.stem + ".tif")
        return path

    if uncertainty and result.uncertainty is not None:
        written.append(write_image(place(uncertainty), result.uncertainty))
    if realism:
        written.append(write_image(place(realism), result.realism))
    if not quiet:
        print(" ".join(f"-> {p}" for p in written) + f" {result.output.shape} {result.output.dtype}"
              + (f", {samples} samples" if samples > 1 else ""))
    return result.output
