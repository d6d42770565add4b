"""Joint augmentation: identical geometry for A and B, labels keep their values, shapes kept."""

from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("kornia")

from napari_pix2pix.config import AugmentConfig  # noqa: E402
from napari_pix2pix.data.augment import PairAugment  # noqa: E402

GEOMETRY = list(itertools.product([False, True], repeat=4))  # jitter, flip, rot90, affine


def _image(n=4, c=1, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.interpolate(torch.rand(n, c, h // 4, w // 4, generator=g), size=(h, w),
                                             mode="bilinear", align_corners=False)
    return smooth * 2 - 1


def _labels(n=4, h=32, w=32, values=(-1.0, 1.0), seed=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(values), (n, 1, h // 8, w // 8), generator=g)
    idx = idx.repeat_interleave(8, -1).repeat_interleave(8, -2)
    return torch.tensor(values)[idx]


@pytest.mark.parametrize("jitter,flip,rot90,affine", GEOMETRY)
def test_copy_stays_equal_under_every_geometry(jitter, flip, rot90, affine):
    torch.manual_seed(0)
    cfg = AugmentConfig(jitter=jitter, flip=flip, rot90=rot90, affine=affine, intensity=False)
    aug = PairAugment(cfg)
    a = _image()
    a2, b2 = aug(a, a.clone())
    assert a2.shape == a.shape and b2.shape == a.shape
    assert torch.equal(a2, b2)
    assert torch.isfinite(a2).all()
    if any((jitter, flip, rot90, affine)):
        # something happened to at least one sample (p = 0.5 steps are drawn per sample)
        torch.manual_seed(1)
        outs = [aug(a, a)[0] for _ in range(3)]
        assert any(not torch.allclose(o, a) for o in outs)


@pytest.mark.parametrize("jitter,flip,rot90,affine", GEOMETRY)
def test_labels_keep_their_values_and_follow_the_image(jitter, flip, rot90, affine):
    torch.manual_seed(2)
    values = (-1.0, -0.5, 0.25, 1.0)  # e.g. scaled labels
    lab = _labels(values=values)
    aug = PairAugment(AugmentConfig(jitter=jitter, flip=flip, rot90=rot90, affine=affine, intensity=True),
                      b_is_labels=True)
    # A = the same label map, treated as an image: bilinear, but it must still line up with B
    a2, b2 = aug(lab.clone().repeat(1, 3, 1, 1), lab)
    assert a2.shape == (4, 3, 32, 32) and b2.shape == (4, 1, 32, 32)
    assert set(b2.unique().tolist()) <= set(values)
    # Alignment: away from label edges, the image side agrees in sign order with the labels
    # (intensity jitter is monotonic, so the ordering of the label values is kept).
    for i in range(4):
        for lo, hi in zip(values, values[1:]):
            lo_px, hi_px = a2[i, 0][b2[i, 0] == lo], a2[i, 0][b2[i, 0] == hi]
            if lo_px.numel() > 20 and hi_px.numel() > 20:
                assert lo_px.median() < hi_px.median()


def test_intensity_changes_a_only_and_is_monotonic():
    torch.manual_seed(3)
    aug = PairAugment(AugmentConfig(jitter=False, flip=False, intensity=True))
    a = _image(c=3)
    a2, b2 = aug(a, a.clone())
    assert torch.equal(b2, a)  # B untouched
    assert not torch.allclose(a2, a)
    assert torch.isfinite(a2).all()
    for i in range(4):
        for c in range(3):
            order = a[i, c].flatten().argsort()
            assert (a2[i, c].flatten()[order].diff() >= -1e-5).all()


def test_a_labels_never_get_intensity_and_channels_may_differ():
    torch.manual_seed(4)
    lab = _labels(values=(-1.0, 1.0))
    photo = _image(c=3)
    aug = PairAugment(AugmentConfig(rot90=True, affine=True, intensity=True), a_is_labels=True)
    a2, b2 = aug(lab, photo)
    assert a2.shape == (4, 1, 32, 32) and b2.shape == (4, 3, 32, 32)
    assert set(a2.unique().tolist()) <= {-1.0, 1.0}


def test_both_labels_and_non_square():
    torch.manual_seed(5)
    lab = _labels(h=32, w=48, values=(-1.0, 1.0))
    aug = PairAugment(AugmentConfig(rot90=True, affine=True), a_is_labels=True, b_is_labels=True)
    a2, b2 = aug(lab, lab.clone())
    assert a2.shape == lab.shape and torch.equal(a2, b2)
    assert set(a2.unique().tolist()) <= {-1.0, 1.0}


def test_bad_shapes():
    aug = PairAugment(AugmentConfig())
    with pytest.raises(ValueError):
        aug(torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 16, 8))
