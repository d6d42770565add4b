"""Property-based tests of the tiling arithmetic (hypothesis). The normalisation round trip is
in tests/test_data_normalize.py and the receptive-field property in tests/test_security.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_pix2pix.inference import ramp, run_generator, tile_starts, tile_weights


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@st.composite
def tiling(draw):
    tile = draw(st.integers(2, 48))
    overlap = draw(st.integers(0, max(tile // 2 - 1, 0)))
    h = draw(st.integers(1, 130))
    w = draw(st.integers(1, 130))
    return h, w, tile, overlap


@settings(max_examples=200, deadline=None)
@given(tiling())
def test_tiles_cover_every_pixel_with_weights_summing_to_one(case):
    h, w, tile, overlap = case
    for length in (h, w):
        starts = tile_starts(length, min(tile, length), overlap)
        t = min(tile, length)
        assert starts[0] == 0 and starts[-1] + t == length
        assert all(0 <= s <= length - t for s in starts)
        assert starts == sorted(set(starts))
        for s0, s1 in zip(starts, starts[1:]):
            assert s0 + t - s1 >= overlap  # neighbours share at least the overlap (no gaps)
    th, tw = min(tile, h), min(tile, w)
    win = np.outer(ramp(th, overlap if h > tile else 0), ramp(tw, overlap if w > tile else 0))
    assert (win > 0).all() and (win <= 1).all()
    total = tile_weights((h, w), tile, overlap)
    assert total.shape == (h, w) and (total > 0).all()  # every pixel covered
    unity = np.zeros((h, w))
    for y in tile_starts(h, th, overlap):
        for x in tile_starts(w, tw, overlap):
            unity[y:y + th, x:x + tw] += win / total[y:y + th, x:x + tw]
    np.testing.assert_allclose(unity, 1.0, rtol=0, atol=1e-12)


class _Identity(torch.nn.Identity):
    def __init__(self, size_multiple: int):
        super().__init__()
        self.size_multiple = size_multiple


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 70), w=st.integers(1, 70), n=st.integers(1, 2), c=st.integers(1, 3),
       tile=st.sampled_from([0, 8, 16, 24, 32, 48]), overlap=st.integers(0, 11), multiple=st.sampled_from([1, 4, 8]),
       batch=st.integers(1, 5), seed=st.integers(0, 1000))
def test_run_generator_with_identity_reproduces_the_input(h, w, n, c, tile, overlap, multiple, batch, seed):
    if tile:
        overlap = min(overlap, tile // 2 - 1)
    x = torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, (n, c, h, w)).astype(np.float32))
    calls = []
    y = run_generator(_Identity(multiple), x, tile=tile, overlap=overlap, batch_size=batch, size_multiple=multiple,
                      device=torch.device("cpu"), progress=lambda done, total: calls.append((done, total)))
    assert y.shape == x.shape and y.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), x.numpy(), rtol=1e-6, atol=1e-6)
    assert calls and calls[-1][0] == calls[-1][1]
