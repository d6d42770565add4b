"""Where not to trust a translation: a sample spread (dropout) and a realism map (discriminator).

**Uncertainty** (:meth:`Predictor.sample <napari_pix2pix.predict.Predictor.sample>`, and
:func:`translate_samples` for a loaded model): the generator runs ``samples`` times with its dropout
layers active and batch norm on its running statistics (the network is otherwise in eval mode, so
nothing about the model changes). The output is the per-pixel mean of the passes, the uncertainty
their per-pixel standard deviation (population, ``ddof=0``), both in the output's units (the std
is float32, same shape as the output). Each tile's dropout masks come from a generator seeded by
``(seed, pass, slice, tile row, tile column)``, so a result does not depend on the tile batch
size or order; tiles are blended with the usual ramps, so the maps have no seams. Where tiles
overlap, the blend of independent dropout draws has a smaller spread (by ``sqrt(sum w^2) / sum w``,
see :func:`blend_spread`); the std is divided by that factor so that overlaps do not show as bands
of low uncertainty.
``samples=1`` is ordinary inference (:func:`napari_pix2pix.inference.translate`). All of it runs
in the one :class:`~napari_pix2pix.predict.Predictor` (tiling, task, backend); the torch backend
holds the seeded dropout (:mod:`napari_pix2pix.backends.torch`).

**Realism** (:func:`realism_map`): the conditional discriminator's verdict on (input, output)
for any translation, as the probability that each cell is real, placed over the output like the
D map widget does (:class:`~napari_pix2pix.discriminator_map.DiscriminatorMap`) and upsampled to
the output's ``[..., Y, X]`` grid.

What the maps mean, measured on held-out data, is in ``benchmarks/ABLATION.md``: both are weak
hints, not error bars.
"""

from __future__ import annotations

import numpy as np

from .config import TileConfig
from .errors import InputError
# the machinery lives with the Predictor and the torch backend; re-exported for existing callers
from .predict import Prediction, blend_spread, tile_seed  # noqa: F401
from .backends.torch import SeededDropout, dropout_layers, stochastic_mode  # noqa: F401

SampledTranslation = Prediction  # the name of issue 18


def translate_samples(model, image, *, config: TileConfig | None = None, samples: int | None = None,
                      seed: int | None = None, realism: bool = False, channel_axis: int | None = None,
                      output_dtype: str = "input", progress=None, cancel=None) -> Prediction:
    """Translate ``image`` with ``samples`` stochastic passes (default ``config.samples``) and
    return the mean, the per-pixel std and, with ``realism=True``, the discriminator's map:
    :meth:`Predictor.sample <napari_pix2pix.predict.Predictor.sample>` for ``model`` (a loaded
    :class:`~napari_pix2pix.model.Pix2PixModel` or a Predictor).

    ``seed`` (default ``config.seed``, else 0) fixes every dropout mask: the same seed gives the
    same result on any tile batch size. ``samples=1`` runs ordinary inference in ``config.mode``.
    """
    from .predict import Predictor

    predictor = Predictor.of(model, config or TileConfig())
    return predictor.sample(image, samples=samples, seed=seed, realism=bool(realism), channel_axis=channel_axis,
                            output_dtype=output_dtype, progress=progress, cancel=cancel)


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


def write_maps(model, image, target, *, config: TileConfig | None = None, samples: int | None = None,
               uncertainty=None, realism=None, folder: bool = False, output_dtype: str = "input",
               channel_axis: int | None = None, quiet: bool = False) -> np.ndarray:
    """The CLI's ``translate --samples N --uncertainty STD_FILE --realism MAP_FILE``: write the
    mean to ``target`` and the maps next to it (into folders of those names when ``folder``).
    ``model``: a :class:`~napari_pix2pix.predict.Predictor` or a loaded model. Returns the output."""
    from pathlib import Path

    from .io import write_image

    result = translate_samples(model, image, config=config, samples=samples, realism=bool(realism),
                               channel_axis=channel_axis, output_dtype=output_dtype)
    samples = 1 if result.uncertainty is None else int(samples or getattr(config, "samples", 1) or 1)
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
