"""Normalisation to [-1, 1] and back: percentiles, dtypes, labels, NaN, serialisation."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_pix2pix.config import NormConfig
from napari_pix2pix.data.normalize import Normalization, default_normalization, fit_normalization
from napari_pix2pix.errors import InputError

RNG = np.random.default_rng(1)


def test_import_does_not_pull_torch():
    import subprocess

    code = "import sys, napari_pix2pix.data, napari_pix2pix.io; print('torch' in sys.modules, 'kornia' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_uint16_round_trip_within_percentiles():
    x = RNG.integers(0, 65535, (1, 64, 64), dtype=np.uint16)
    x[0, 0, :8] = 65535  # outliers above the high percentile
    norm = fit_normalization([x], NormConfig(low=1, high=99))
    assert norm.dtype == "uint16" and norm.mode == "percentile"
    lo, hi = np.percentile(x, [1, 99])
    assert norm.low == pytest.approx(lo) and norm.high == pytest.approx(hi)
    y = norm.forward(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    inside = (x >= norm.low) & (x <= norm.high)
    assert y[inside].min() >= -1 and y[inside].max() <= 1
    assert y.max() > 1  # the outliers are NOT clipped on forward
    back = norm.inverse(y)
    assert back.dtype == np.uint16
    assert np.abs(back.astype(np.int64) - x.astype(np.int64)).max() <= 1  # nothing clipped at all


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 65000), st.integers(1, 20000), st.sampled_from([(0.0, 100.0), (1.0, 99.8), (5.0, 60.0)]),
       st.booleans(), st.integers(0, 2**31 - 1))
def test_round_trip_property(base, span, pcts, per_image, seed):
    rng = np.random.default_rng(seed)
    hi = min(65535, base + span)
    x = rng.integers(base, hi + 1, (2, 9, 11), dtype=np.uint16)
    norm = fit_normalization([x], NormConfig(low=pcts[0], high=pcts[1], per_image=per_image))
    y = norm.forward(x)
    lo_v, hi_v = norm.image_range(x)
    back = norm.inverse(y, low=lo_v, high=hi_v)
    assert back.dtype == np.uint16
    inside = (x >= lo_v) & (x <= hi_v)
    assert np.abs(back.astype(np.int64) - x.astype(np.int64))[inside].max(initial=0) <= 1
    # values outside the percentiles are not clipped either (only the dtype range limits them)
    assert np.abs(back.astype(np.int64) - x.astype(np.int64)).max() <= 1


def test_per_image_uses_each_images_own_range():
    dark = RNG.integers(0, 100, (1, 32, 32), dtype=np.uint16)
    bright = dark + 10000
    norm = fit_normalization([dark, bright], NormConfig(per_image=True))
    yd, yb = norm.forward(dark), norm.forward(bright)
    np.testing.assert_allclose(yd, yb, atol=1e-6)  # each is stretched by its own percentiles
    assert norm.image_range(bright)[0] > 9000
    dataset = fit_normalization([dark, bright], NormConfig(per_image=False))
    assert dataset.forward(bright).mean() > dataset.forward(dark).mean() + 1


def test_float_and_16bit_never_become_8bit():
    f = RNG.standard_normal((1, 16, 16)).astype(np.float32) * 1000
    nf = fit_normalization([f], NormConfig())
    assert nf.inverse(nf.forward(f)).dtype == np.float32
    np.testing.assert_allclose(nf.inverse(nf.forward(f)), f, atol=1e-2)
    u = RNG.integers(0, 4000, (3, 8, 8), dtype=np.uint16)
    fixed = fit_normalization([u], NormConfig(mode="fixed", low=0, high=4000))
    assert fixed.inverse(np.zeros((3, 8, 8))).dtype == np.uint16


def test_inverse_clips_to_dtype_range():
    norm = Normalization(mode="fixed", low=0, high=255, dtype="uint8", channels=1)
    out = norm.inverse(np.array([[[-3.0, 0.0, 3.0]]], np.float32))
    assert out.tolist() == [[[0, 128, 255]]]


def test_modes_none_and_fixed():
    u8 = np.array([[[0, 255, 128]]], np.uint8)
    n = fit_normalization([u8], NormConfig(mode="none"))
    np.testing.assert_allclose(n.forward(u8), [[[-1, 1, 128 / 255 * 2 - 1]]], atol=1e-6)
    f01 = np.array([[[0.0, 1.0, 0.5]]], np.float32)
    np.testing.assert_allclose(fit_normalization([f01], NormConfig(mode="none")).forward(f01), [[[-1, 1, 0]]])
    fpm = np.array([[[-1.0, 1.0, 0.5]]], np.float32)
    np.testing.assert_allclose(fit_normalization([fpm], NormConfig(mode="none")).forward(fpm), fpm)
    fx = fit_normalization([u8], NormConfig(mode="fixed", low=0, high=100))
    assert fx.forward(u8)[0, 0, 1] == pytest.approx(255 / 100 * 2 - 1)
    d = default_normalization(np.uint16, 3)
    assert (d.low, d.high, d.channels, d.dtype) == (0, 65535, 3, "uint16")


def test_constant_image_is_not_a_division_by_zero():
    c = np.full((1, 8, 8), 7, np.uint16)
    n = fit_normalization([c], NormConfig())
    y = n.forward(c)
    assert np.isfinite(y).all()
    assert np.array_equal(n.inverse(y), c)


@pytest.mark.parametrize("bad,what", [(np.nan, "NaN"), (np.inf, "infinite")])
def test_nan_inf_raise(bad, what):
    x = np.zeros((1, 8, 8), np.float32)
    x[0, 1, :3] = bad
    with pytest.raises(InputError, match=f"3 {what} pixels") as info:
        fit_normalization([x], NormConfig())
    assert info.value.fix
    n = fit_normalization([np.zeros((1, 8, 8), np.float32)], NormConfig())
    with pytest.raises(InputError, match=what):
        n.forward(x)


def test_labels_binary():
    lab = np.zeros((1, 6, 6), np.uint16)
    lab[0, 1:3, 1:3] = 5
    lab[0, 4, 4] = 9
    n = fit_normalization([lab], NormConfig(label_encoding="binary"), is_labels=True)
    y = n.forward(lab)
    assert y.shape == (1, 6, 6) and set(np.unique(y)) == {-1.0, 1.0}
    back = n.inverse(y + RNG.uniform(-0.5, 0.5, y.shape).astype(np.float32))
    assert back.dtype == np.uint16 and np.array_equal(back, (lab > 0).astype(np.uint16))


def test_labels_onehot_and_scaled():
    lab = RNG.integers(0, 4, (1, 10, 10)).astype(np.uint8)
    lab[0, 0, 0] = 3
    n = fit_normalization([lab], NormConfig(label_encoding="onehot"), is_labels=True)
    assert n.n_classes == 4 and n.model_channels == 4
    y = n.forward(lab)
    assert y.shape == (4, 10, 10) and set(np.unique(y)) == {-1.0, 1.0}
    assert np.array_equal((y == 1).sum(0), np.ones((10, 10)))
    assert np.array_equal(n.inverse(y), lab)
    s = fit_normalization([lab], NormConfig(label_encoding="scaled"), is_labels=True)
    ys = s.forward(lab)
    assert ys.min() == -1 and ys.max() == 1 and s.model_channels == 1
    assert np.array_equal(s.inverse(ys), lab)
    with pytest.raises(InputError, match="binary"):
        fit_normalization([np.arange(300, dtype=np.uint16).reshape(1, 10, 30)], NormConfig(label_encoding="onehot"),
                          is_labels=True)


def test_labels_must_be_integer_single_channel():
    with pytest.raises(InputError, match="integer"):
        fit_normalization([np.zeros((1, 4, 4), np.float32)], NormConfig(), is_labels=True)
    with pytest.raises(InputError, match="one channel"):
        fit_normalization([np.zeros((3, 4, 4), np.uint8)], NormConfig(), is_labels=True)


def test_batch_and_channel_checks():
    x = RNG.integers(0, 255, (3, 8, 8), dtype=np.uint8)
    n = fit_normalization([x], NormConfig())
    batch = np.stack([x, x])
    assert n.forward(batch).shape == (2, 3, 8, 8)
    assert n.inverse(n.forward(batch)).shape == (2, 3, 8, 8)
    with pytest.raises(InputError, match="3-channel"):
        n.forward(x[:1])
    with pytest.raises(InputError, match="different channel counts"):
        fit_normalization([x, x[:1]], NormConfig())


def test_dict_round_trip_is_json_safe():
    x = RNG.integers(0, 65535, (1, 16, 16), dtype=np.uint16)
    n = fit_normalization([x], NormConfig(per_image=True))
    d = json.loads(json.dumps(n.to_dict()))
    m = Normalization.from_dict(d)
    assert m == n
    assert np.array_equal(m.forward(x), n.forward(x))
    assert Normalization.from_dict(dict(d, unknown_future_key=1)) == n


def test_large_inputs_are_subsampled_but_close():
    x = RNG.integers(0, 60000, (1, 1500, 1500), dtype=np.uint16)  # 2.25 M values > subsample size
    n = fit_normalization([x], NormConfig(low=1, high=99))
    exact = np.percentile(x, [1, 99])
    assert abs(n.low - exact[0]) < 150 and abs(n.high - exact[1]) < 150
