"""Patch sampling: exact resume from the generator state, alignment, padding, ranks, foreground."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_pix2pix.config import DataConfig  # noqa: E402
from napari_pix2pix.data import from_arrays  # noqa: E402
from napari_pix2pix.data.sampling import PatchSampler, foreground_mask, validation_patches  # noqa: E402

RNG = np.random.default_rng(3)


def _coords_dataset(n=3, h=40, w=50):
    """A encodes each pixel's (pair, y, x); B = A + 1 so alignment is checkable."""
    a = np.stack([(i * 10000 + np.arange(h)[:, None] * 100 + np.arange(w)[None]).astype(np.float32)
                  for i in range(n)])
    from napari_pix2pix.config import NormConfig

    cfg = DataConfig(norm_a=NormConfig(mode="fixed", low=0, high=2), norm_b=NormConfig(mode="fixed", low=0, high=2))
    return from_arrays(a, a + 1, cfg)


def _decode(t):
    return (t + 1).numpy()  # fixed 0..2 mapping: value = y + 1


def test_shapes_alignment_and_exact_resume():
    ds = _coords_dataset()
    s = PatchSampler(ds, 16, 4)
    g = torch.Generator().manual_seed(7)
    a, b = s.sample(g)
    assert a.shape == (4, 1, 16, 16) and b.shape == (4, 1, 16, 16) and a.dtype == torch.float32
    np.testing.assert_allclose(_decode(b) - _decode(a), 1, atol=1e-4)  # same crop on both sides
    va = _decode(a)
    np.testing.assert_allclose(np.diff(va, axis=-1), 1, atol=1e-3)  # a contiguous crop
    state = g.get_state()
    a1, b1 = s.sample(g)
    a2, b2 = s.sample(g)
    g2 = torch.Generator()
    g2.set_state(state)
    c1, d1 = s.sample(g2)
    c2, d2 = s.sample(g2)
    assert torch.equal(a1, c1) and torch.equal(b1, d1) and torch.equal(a2, c2) and torch.equal(b2, d2)
    assert not torch.equal(a1, a2)


def test_positions_are_uniform_and_pairs_weighted_by_area():
    big = np.zeros((200, 200), np.float32)
    small = np.ones((20, 20), np.float32)
    from napari_pix2pix.config import NormConfig

    cfg = DataConfig(norm_a=NormConfig(mode="fixed", low=0, high=1), norm_b=NormConfig(mode="fixed", low=0, high=1))
    ds = from_arrays([big, small], [big, small], cfg)
    s = PatchSampler(ds, 8, 64)
    g = torch.Generator().manual_seed(0)
    picks = torch.cat([s.sample(g)[0][:, 0, 0, 0] for _ in range(20)])
    frac_small = (picks > 0).float().mean().item()  # area ratio 400 / 40400 ~ 1 %
    assert frac_small < 0.05
    ds2 = _coords_dataset(n=1, h=60, w=60)
    s2 = PatchSampler(ds2, 10, 256)
    x0 = _decode(s2.sample(torch.Generator().manual_seed(1))[0])[:, 0, 0, 0] % 100
    assert x0.min() <= 2 and x0.max() >= 48  # covers the whole range 0..50


def test_small_images_are_padded():
    ds = _coords_dataset(n=1, h=12, w=30)
    s = PatchSampler(ds, 32, 2)
    a, b = s.sample(torch.Generator().manual_seed(0))
    assert a.shape == (2, 1, 32, 32)
    # reflect padding on x (18 < 30 wide), edge replicate on y (20 > 12 - 1)
    np.testing.assert_allclose(_decode(b) - _decode(a), 1, atol=1e-4)
    tiny = _coords_dataset(n=1, h=3, w=3)
    assert PatchSampler(tiny, 8, 1).sample(torch.Generator().manual_seed(0))[0].shape == (1, 1, 8, 8)


def test_ranks_split_one_stream_deterministically():
    ds = _coords_dataset()
    full = PatchSampler(ds, 8, 6).sample(torch.Generator().manual_seed(5))[0]
    parts = [PatchSampler(ds, 8, 3, rank=r, world_size=2).sample(torch.Generator().manual_seed(5))[0]
             for r in range(2)]
    assert torch.equal(torch.cat(parts), full)
    assert not torch.equal(parts[0], parts[1])
    with pytest.raises(ValueError):
        PatchSampler(ds, 8, 3, rank=2, world_size=2)


def test_foreground_bias_finds_sparse_objects():
    img = RNG.integers(0, 1000, (256, 256), dtype=np.uint16)
    lab = np.zeros((256, 256), np.uint16)
    lab[180:244, 20:84] = 1  # one object: a random 32 px patch hits it in about 1 of 6 draws
    ds = from_arrays(img, lab)
    assert ds.b_is_labels
    assert np.array_equal(foreground_mask(ds, 0), lab > 0)

    def hit_rate(bias):
        s = PatchSampler(ds, 32, 64, foreground_bias=bias)
        b = s.sample(torch.Generator().manual_seed(0))[1]
        return (b.amax(dim=(1, 2, 3)) > 0).float().mean().item()

    assert hit_rate(0.0) < 0.3
    assert hit_rate(1.0) > 0.65
    # the stream consumed per call does not depend on the content: resume stays exact
    s = PatchSampler(ds, 32, 4, foreground_bias=0.5)
    g = torch.Generator().manual_seed(3)
    s.sample(g)
    state = g.get_state()
    x = s.sample(g)[0]
    g.set_state(state)
    assert torch.equal(s.sample(g)[0], x)


def test_validation_patches_are_fixed_and_cover():
    ds = _coords_dataset(n=1, h=64, w=64)
    a, b = validation_patches(ds, 32)
    assert a.shape == (4, 1, 32, 32)  # a 2 x 2 grid
    corners = sorted(int(round(_decode(a)[i, 0, 0, 0])) for i in range(4))
    assert corners == [0, 32, 3200, 3232]
    a2, _ = validation_patches(ds, 32)
    assert torch.equal(a, a2)
    many = _coords_dataset(n=20, h=16, w=16)
    m, _ = validation_patches(many, 16, max_patches=5)
    assert m.shape[0] == 5
    assert sorted(int(round(v)) // 10000 for v in _decode(m)[:, 0, 0, 0]) == [0, 5, 10, 14, 19]
