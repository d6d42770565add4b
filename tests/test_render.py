"""render.py: colormaps from kornia keep their meaning (diverging: blue < 0 < red, white at 0)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("kornia")

from napari_pix2pix.render import colormap, diverging  # noqa: E402


def test_diverging_is_centred_at_zero():
    rgb = diverging(np.array([[-3.0, -1.5, 0.0, 1.5, 3.0]])).astype(int)[0]
    assert rgb.dtype.kind == "i" and rgb.shape == (5, 3)
    assert (rgb[2] > 240).all()  # 0: white
    assert rgb[1, 2] > 200 and rgb[1, 0] < 30  # negative: blue
    assert rgb[3, 0] > 200 and rgb[3, 2] < 30  # positive: red
    half = diverging(np.array([[-1.0, 1.0]]), limit=2.0).astype(int)[0]
    assert abs(half - rgb[[1, 3]]).max() <= 2  # limit: the magnitude of full colour
    assert diverging(np.zeros((2, 2))).shape == (2, 2, 3)  # no magnitude: all white, no division by 0


def test_sequential_colormap_runs_dark_to_bright():
    rgb = colormap(np.linspace(0, 1, 11)[None], "viridis")[0].astype(float)
    assert rgb.shape == (11, 3) and rgb.sum(1)[0] < rgb.sum(1)[-1]
    np.testing.assert_array_equal(colormap(np.array([[np.nan, -1.0]]), "viridis")[0, 0],
                                  colormap(np.array([[0.0]]), "viridis")[0, 0])
