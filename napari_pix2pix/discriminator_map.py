"""The PatchGAN's verdict as a map over the image.

For a (source, target) pair the conditional discriminator returns one logit per cell; cell
(i, j) judges the input box given by the discriminator's geometry. :class:`DiscriminatorMap`
holds the logits with the placement that puts each cell over the centre of its receptive field
(``scale`` = the map's stride in pixels, ``translate`` = the centre of cell (0, 0)), so a viewer
can overlay it on the image directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .inference import check_array, run_generator, test_time_mode, to_model_layout


@dataclass
class DiscriminatorMap:
    """``logits``: ``[h, w]`` raw scores (> 0: judged real). ``scale``/``translate``: placement of
    cells in image pixels (row, col). ``rf``: receptive field in pixels; ``jump``: cell stride;
    ``start``: image coordinate of cell (0, 0)'s box; ``image_shape``: ``(H, W)`` of the pair."""

    logits: np.ndarray
    scale: tuple[float, float]
    translate: tuple[float, float]
    rf: int
    jump: int
    start: int
    image_shape: tuple[int, int]
    global_pool: bool = False

    @classmethod
    def from_geometry(cls, logits, geo, image_shape: tuple[int, int]) -> "DiscriminatorMap":
        """Place ``logits`` ``[h, w]`` with :class:`~napari_pix2pix.models.receptive.Geometry`
        ``geo``: cell (0, 0) over the centre of its receptive field, one cell per ``geo.jump`` pixels."""
        centre = geo.cell_centre(0, 0)
        return cls(np.asarray(logits, np.float32), (float(geo.jump), float(geo.jump)), centre, geo.rf, geo.jump,
                   geo.start, (int(image_shape[0]), int(image_shape[1])), geo.global_pool)

    @property
    def probability(self) -> np.ndarray:
        """Realness in 0..1 (sigmoid of the logits), ``[h, w]``."""
        return 1.0 / (1.0 + np.exp(-self.logits.astype(np.float64)))

    @property
    def mean_score(self) -> float:
        return float(self.probability.mean())

    @property
    def fraction_real(self) -> float:
        """Fraction of cells judged real (logit > 0)."""
        return float((self.logits > 0).mean())

    def cell_box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """Input box ``(row0, col0, row1, col1)`` (inclusive, clipped to the image) of cell (i, j)."""
        h, w = self.image_shape
        if self.global_pool:
            return 0, 0, h - 1, w - 1
        r0, c0 = i * self.jump + self.start, j * self.jump + self.start
        return max(r0, 0), max(c0, 0), min(r0 + self.rf - 1, h - 1), min(c0 + self.rf - 1, w - 1)

    def cell_at(self, row: float, col: float) -> tuple[int, int] | None:
        """The cell whose centre is nearest to image position (row, col), or None if outside the map."""
        i = int(round((row - self.translate[0]) / self.scale[0]))
        j = int(round((col - self.translate[1]) / self.scale[1]))
        if 0 <= i < self.logits.shape[0] and 0 <= j < self.logits.shape[1]:
            return i, j
        return None

    def upsampled(self) -> np.ndarray:
        """Realness 0..1 at image resolution ``[H, W]``: each pixel takes the cell whose centre is nearest."""
        h, w = self.image_shape
        if self.global_pool:
            return np.full((h, w), float(self.probability.ravel()[0]), np.float32)
        rows = np.clip(np.round((np.arange(h) - self.translate[0]) / self.scale[0]), 0, self.logits.shape[0] - 1)
        cols = np.clip(np.round((np.arange(w) - self.translate[1]) / self.scale[1]), 0, self.logits.shape[1] - 1)
        return self.probability[rows.astype(int)][:, cols.astype(int)].astype(np.float32)


def discriminator_maps(model, source, target=None, *, channel_axis_source: int | None = None,
                       channel_axis_target: int | None = None, mode: str = "eval"
                       ) -> tuple[DiscriminatorMap | None, DiscriminatorMap]:
    """Maps for the real pair (source, target) and the fake pair (source, G(source)).

    ``source``/``target``: one 2-D image each, ``[Y, X]`` or ``[Y, X, C]``. Without a target
    only the fake map is computed (the first element is None). Returns ``(real, fake)``.
    """
    import torch

    from .models import geometry

    if model.discriminator is None:
        raise InputError("this model file holds no discriminator.",
                         "use a model trained with napari-pix2pix (a generator-only import has no discriminator).")
    src = check_array(source, "source image")
    norm_a, norm_b = model.normalizations(src.dtype)
    x, stack = to_model_layout(src, norm_a.channels, channel_axis_source)
    if stack:
        raise InputError(f"the discriminator map takes one 2-D image, got a stack of shape {src.shape}.",
                         "choose a single slice (e.g. the current z-plane).")
    xa = torch.from_numpy(np.ascontiguousarray(norm_a.forward(x), np.float32))
    h, w = xa.shape[-2:]
    with test_time_mode(model.generator, mode):
        fake = run_generator(model.generator, xa, size_multiple=model.config.size_multiple, device=model.device)
    geo = geometry(model.discriminator)
    if 0 in geo.map_size(int(h), int(w)):
        raise InputError(f"the image ({h}x{w}) is too small for this discriminator (receptive field {geo.rf}).",
                         f"use an image of at least {geo.rf}x{geo.rf} pixels.")

    def judge(b) -> DiscriminatorMap:
        pair = torch.cat([xa, b], 1).to(model.device)
        with torch.no_grad():
            model.discriminator.eval()
            logits = model.discriminator(pair)[0, 0].float().cpu().numpy()
        return DiscriminatorMap.from_geometry(logits, geo, (h, w))

    real = None
    if target is not None:
        tgt = check_array(target, "target image")
        y, tstack = to_model_layout(tgt, norm_b.channels, channel_axis_target)
        if tstack or y.shape[-2:] != x.shape[-2:]:
            raise InputError(f"source {src.shape} and target {tgt.shape} do not have the same Y, X size.",
                             "choose a target of the same size as the source.")
        real = judge(torch.from_numpy(np.ascontiguousarray(norm_b.forward(y), np.float32)))
    return real, judge(fake)
