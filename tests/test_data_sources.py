"""Paired sources: real nuclei data, broken folders with named reports, AB round trip, splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_pix2pix.config import DataConfig, NormConfig
from napari_pix2pix.data import (
    PairedDataset,
    check_model_channels,
    from_ab_folder,
    from_arrays,
    from_channels,
    from_folders,
    from_paths,
    from_spec,
    validate_ab_folder,
    validate_arrays,
    validate_folders,
    write_ab,
)
from napari_pix2pix.data.validate import (
    CHANNEL_MISMATCH,
    EMPTY,
    MISSING_PARTNER,
    NOT_FINITE,
    ODD_WIDTH,
    SIZE_MISMATCH,
    SLICE_MISMATCH,
    UNREADABLE,
)
from napari_pix2pix.errors import DatasetError
from napari_pix2pix.io import read_image, write_image

# the same files ship in sample_data/ (a fresh clone has no ../shared); the shared copy is used when present
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"
STARDIST = DATA / "nuclei-stardist" if (DATA / "nuclei-stardist" / "img2d.tif").exists() else SAMPLES / "nuclei-2d"
NUCLEI3D = DATA / "nuclei-3d" if (DATA / "nuclei-3d" / "nuclei.tif").exists() else SAMPLES / "nuclei-3d"
needs_stardist = pytest.mark.skipif(not (STARDIST / "img2d.tif").exists(),
                                    reason="nuclei 2-D pair absent from sample_data/nuclei-2d and ../shared/data")
needs_3d = pytest.mark.skipif(not (NUCLEI3D / "nuclei.tif").exists(),
                              reason="nuclei 3-D pair absent from sample_data/nuclei-3d and ../shared/data")
RNG = np.random.default_rng(2)


@pytest.fixture(scope="module")
def img2d():
    return read_image(STARDIST / "img2d.tif"), read_image(STARDIST / "mask2d.tif")


@pytest.fixture(scope="module")
def nuclei3d():
    return read_image(NUCLEI3D / "nuclei.tif"), read_image(NUCLEI3D / "nuclei_label.tif")


# -- real data -------------------------------------------------------------------------------

@needs_stardist
def test_stardist_2d_pair(img2d):
    img, mask = img2d
    ds = from_arrays(img, mask, names="img2d")
    assert len(ds) == 1 and ds.pairs[0].name == "img2d"
    assert not ds.a_is_labels and ds.b_is_labels  # uint16 image with 234 values is not labels
    assert ds.in_channels == 1 and ds.out_channels == 1
    p = ds.pairs[0]
    assert p.a.shape == (1, 512, 512) and p.a.dtype == np.float32
    assert set(np.unique(p.b)) == {-1.0, 1.0}
    assert np.array_equal(p.b[0] > 0, mask > 0)
    assert np.array_equal(p.raw_a[0], img) and p.raw_a.dtype == np.uint16
    assert ds.norm_a.dtype == "uint16" and ds.norm_b.dtype == "uint16"
    json.dumps(ds.describe())  # JSON-safe
    json.dumps(ds.source)


@needs_stardist
def test_stardist_folders_and_from_paths(tmp_path, img2d):
    img, mask = img2d
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    write_image(tmp_path / "images" / "cells.tif", img)
    write_image(tmp_path / "masks" / "cells.png", mask)  # any mix of formats pairs by stem
    ds = from_paths(tmp_path / "images", tmp_path / "masks")
    assert len(ds) == 1 and ds.b_is_labels and ds.source["kind"] == "folders"
    assert np.array_equal(ds.pairs[0].raw_b[0], mask)
    again = from_spec(json.loads(json.dumps(ds.source)))
    assert np.array_equal(again.pairs[0].a, ds.pairs[0].a)
    files = from_paths(STARDIST / "img2d.tif", STARDIST / "mask2d.tif")
    assert len(files) == 1 and files.pairs[0].name == "img2d"


@needs_3d
def test_nuclei_3d_one_pair_per_slice(nuclei3d):
    img, lab = nuclei3d
    assert img.shape == (60, 256, 256)
    ds = from_arrays(img, lab, names="nuclei")
    assert len(ds) == 60
    assert ds.pairs[7].name == "nuclei_z007"
    assert np.array_equal(ds.pairs[7].raw_a[0], img[7]) and np.array_equal(ds.pairs[7].raw_b[0], lab[7])
    assert ds.b_is_labels and not ds.a_is_labels
    assert ds.norm_b.dtype == "uint32" and ds.norm_a.dtype == "uint16"
    assert ds.describe()["a"]["shapes"] == {"1x256x256": 60}


@needs_3d
def test_stack_with_different_slice_count_is_an_error(nuclei3d):
    img, lab = nuclei3d
    with pytest.raises(DatasetError) as info:
        from_arrays(img, lab[:59])
    assert SLICE_MISMATCH in str(info.value) and "60" in str(info.value) and "59" in str(info.value)
    assert info.value.report.mismatches[0].problem == SLICE_MISMATCH


@needs_3d
def test_folder_stack_with_different_slice_count(tmp_path, nuclei3d):
    img, lab = nuclei3d
    for d in ("A", "B"):
        (tmp_path / d).mkdir()
    write_image(tmp_path / "A" / "vol.tif", img[:10])
    write_image(tmp_path / "B" / "vol.tif", lab[:9])
    write_image(tmp_path / "A" / "good.tif", img[:3])
    write_image(tmp_path / "B" / "good.tif", lab[:3])
    report = validate_folders(tmp_path / "A", tmp_path / "B")
    assert not report.ok and report.pairs == 3
    assert [(m.name, m.problem) for m in report.mismatches] == [("vol", SLICE_MISMATCH)]
    with pytest.raises(DatasetError, match="vol: slice count mismatch"):
        from_folders(tmp_path / "A", tmp_path / "B")


# -- broken folders ----------------------------------------------------------------------------

def _make_folders(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir()
    b.mkdir()
    img = RNG.integers(0, 4000, (48, 40), dtype=np.uint16)
    lab = (img > 2000).astype(np.uint8)
    write_image(a / "good.tif", img)
    write_image(b / "good.png", lab)
    return a, b, img, lab


def test_good_folders_pass(tmp_path):
    a, b, img, lab = _make_folders(tmp_path)
    (a / "notes.txt").write_text("ignored")
    report = validate_folders(a, b)
    assert report.ok and report.pairs == 1 and report.ignored == ["A/notes.txt"]
    assert "no problems" in report.format()


@pytest.mark.parametrize("breakage,name,problem", [
    ("missing_b", "lonely.tif", MISSING_PARTNER),
    ("missing_a", "orphan.png", MISSING_PARTNER),
    ("size", "small", SIZE_MISMATCH),
    ("truncated", "trunc.tif", UNREADABLE),
    ("text_png", "x.png", UNREADABLE),
    ("channels", "colour", CHANNEL_MISMATCH),
    ("nan", "holes", NOT_FINITE),
])
def test_broken_folder_is_named_in_the_error(tmp_path, breakage, name, problem):
    a, b, img, lab = _make_folders(tmp_path)
    if breakage == "missing_b":
        write_image(a / "lonely.tif", img)
    elif breakage == "missing_a":
        write_image(b / "orphan.png", lab)
    elif breakage == "size":
        write_image(a / "small.tif", img[:30])
        write_image(b / "small.tif", lab)
    elif breakage == "truncated":
        p = write_image(a / "trunc.tif", RNG.integers(0, 4000, (200, 200), dtype=np.uint16))
        p.write_bytes(p.read_bytes()[:5000])
        write_image(b / "trunc.tif", lab)
    elif breakage == "text_png":
        write_image(a / "x.tif", img)
        (b / "x.png").write_text("I am not a png")
    elif breakage == "channels":
        write_image(a / "colour.png", RNG.integers(0, 255, (48, 40, 3), dtype=np.uint8))
        write_image(b / "colour.png", lab)
    elif breakage == "nan":
        f = img.astype(np.float32)
        f[3, 4] = np.nan
        write_image(a / "holes.tif", f)
        write_image(b / "holes.tif", lab)
    report = validate_folders(a, b)  # never raises
    assert not report.ok
    assert any(m.name == name and m.problem == problem for m in report.mismatches), report.format()
    assert name in report.format() and problem in report.format()
    with pytest.raises(DatasetError) as info:
        from_folders(a, b)
    message = str(info.value)
    assert name in message and problem in message and "Fix:" in message
    assert info.value.report is not None and len(info.value.report.mismatches) == len(report.mismatches)
    json.dumps(info.value.report.to_dict())


def test_every_mismatch_is_listed(tmp_path):
    a, b, img, lab = _make_folders(tmp_path)
    write_image(a / "lonely.tif", img)
    write_image(b / "orphan.png", lab)
    write_image(a / "small.tif", img[:30])
    write_image(b / "small.tif", lab)
    with pytest.raises(DatasetError) as info:
        from_folders(a, b)
    names = {m.name for m in info.value.report.mismatches}
    assert names == {"lonely.tif", "orphan.png", "small"}
    assert "3 problem(s)" in str(info.value)


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    report = validate_folders(tmp_path / "A", tmp_path / "B")
    assert not report.ok and {m.problem for m in report.mismatches} == {EMPTY}
    with pytest.raises(DatasetError, match="empty folder"):
        from_folders(tmp_path / "A", tmp_path / "B")
    with pytest.raises(DatasetError, match="missing folder"):
        from_folders(tmp_path / "A", tmp_path / "nope")
    with pytest.raises(DatasetError, match="empty folder"):
        from_ab_folder(tmp_path / "A")
    with pytest.raises(DatasetError, match="does not exist"):
        from_paths(tmp_path / "nope", tmp_path / "B")


# -- arrays -----------------------------------------------------------------------------------

def test_arrays_nan_is_an_error():
    a = RNG.random((32, 32)).astype(np.float32)
    a[1, 1] = np.nan
    report = validate_arrays(a, a.copy())
    assert [m.problem for m in report.mismatches] == [NOT_FINITE, NOT_FINITE]
    with pytest.raises(DatasetError, match="NaN"):
        from_arrays(a, np.zeros((32, 32), np.uint8))


def test_arrays_size_mismatch():
    with pytest.raises(DatasetError, match="size mismatch") as info:
        from_arrays(np.zeros((32, 32)), np.zeros((32, 31)))
    assert "32x31" in str(info.value)


def test_rgb_vs_gray_and_model_channel_check():
    rgb = RNG.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    gray = RNG.integers(0, 255, (40, 40), dtype=np.uint8)
    ds = from_arrays(rgb, gray)
    assert ds.in_channels == 3 and ds.out_channels == 1
    assert ds.pairs[0].a.shape == (3, 40, 40) and ds.pairs[0].b.shape == (1, 40, 40)
    check_model_channels(ds, 3, 1)  # fine
    with pytest.raises(DatasetError) as info:
        check_model_channels(ds, 1, 1)
    assert "RGB" in str(info.value) and "grayscale" in str(info.value) and "Fix:" in str(info.value)
    with pytest.raises(DatasetError, match="target"):
        check_model_channels(ds, 3, 3)
    # explicit flags: a [Y, X, 2] array is a 2-channel image only when asked for
    two = RNG.integers(0, 255, (40, 40, 2), dtype=np.uint8)
    assert from_arrays(two, gray, rgb_a=True).in_channels == 2
    with pytest.raises(DatasetError, match="slice count mismatch"):
        from_arrays(two, gray)  # auto: 40 slices of 40x2


def test_rgb_stack_and_4d_stack():
    a = RNG.integers(0, 255, (2, 3, 16, 16, 3), dtype=np.uint8)  # [T, Z, Y, X, C]
    b = RNG.integers(0, 60000, (2, 3, 16, 16), dtype=np.uint16)
    ds = from_arrays(a, b)
    assert len(ds) == 6 and ds.in_channels == 3 and ds.out_channels == 1
    assert np.array_equal(ds.pairs[4].raw_a, np.moveaxis(a[1, 1], -1, 0))
    assert np.array_equal(ds.pairs[4].raw_b[0], b[1, 1])


def test_label_detection_rules():
    img = RNG.integers(0, 60000, (64, 64), dtype=np.uint16)
    lab = np.zeros((64, 64), np.uint16)
    lab[10:30, 10:30] = 1
    lab[40:60, 35:60] = 2
    assert not from_arrays(img, img).b_is_labels
    assert from_arrays(img, lab).b_is_labels
    assert from_arrays(img, lab > 0).b_is_labels  # bool
    assert not from_arrays(img, lab.astype(np.float32)).b_is_labels  # float is never detected
    forced = from_arrays(img, img, DataConfig(b_is_labels=True))
    assert forced.b_is_labels and set(np.unique(forced.pairs[0].b)) <= {-1.0, 1.0}
    off = from_arrays(img, lab, DataConfig(b_is_labels=False))
    assert not off.b_is_labels and off.norm_b.mode == "percentile"
    onehot = from_arrays(img, lab, DataConfig(norm_b=NormConfig(label_encoding="onehot")))
    assert onehot.out_channels == 3 and onehot.pairs[0].b.shape == (3, 64, 64)


def test_from_channels():
    arr = RNG.integers(0, 4000, (2, 32, 32, 4), dtype=np.uint16)  # [Z, Y, X, C]
    ds = from_channels(arr, (0,), (1, 2, 3))
    assert len(ds) == 2 and ds.in_channels == 1 and ds.out_channels == 3
    assert np.array_equal(ds.pairs[1].raw_a[0], arr[1, :, :, 0])
    assert np.array_equal(ds.pairs[1].raw_b, np.moveaxis(arr[1, :, :, 1:], -1, 0))
    first = from_channels(np.moveaxis(arr, -1, 1), [2], [3], channel_axis=1)  # [Z, C, Y, X]
    assert np.array_equal(first.pairs[0].raw_b[0], arr[0, :, :, 3])
    with pytest.raises(DatasetError, match="do not exist"):
        from_channels(arr, (0,), (7,))
    with pytest.raises(DatasetError, match="channels_a"):
        from_channels(arr)


# -- AB files ---------------------------------------------------------------------------------

def test_ab_round_trip_mixed_dtypes(tmp_path):
    img = RNG.integers(0, 65535, (3, 24, 20), dtype=np.uint16)
    lab = RNG.integers(0, 2**20, (3, 24, 20)).astype(np.uint32)
    ds = from_arrays(img, lab, names="vol")
    written = write_ab(ds, tmp_path / "ab")
    assert [p.name for p in written] == ["vol_z000.tif", "vol_z001.tif", "vol_z002.tif"]
    assert read_image(written[0]).shape == (24, 40)
    back = from_ab_folder(tmp_path / "ab")
    assert [p.name for p in back.pairs] == [p.name for p in ds.pairs]
    for p, q in zip(ds.pairs, back.pairs):
        assert q.raw_a.dtype == np.uint16 and q.raw_b.dtype == np.uint32
        assert np.array_equal(p.raw_a, q.raw_a) and np.array_equal(p.raw_b, q.raw_b)
        np.testing.assert_array_equal(p.a, q.a)
    swapped = from_ab_folder(tmp_path / "ab", DataConfig(direction="BtoA"))
    assert np.array_equal(swapped.pairs[0].raw_a, ds.pairs[0].raw_b)
    assert validate_ab_folder(tmp_path / "ab").ok


@needs_stardist
def test_ab_round_trip_real_and_rgb(tmp_path, img2d):
    img, mask = img2d
    ds = from_arrays(img, mask, names="img2d")
    write_ab(ds, tmp_path / "gray")
    back = from_ab_folder(tmp_path / "gray")
    assert np.array_equal(back.pairs[0].raw_a, ds.pairs[0].raw_a) and back.pairs[0].raw_a.dtype == np.uint16
    assert np.array_equal(back.pairs[0].raw_b, ds.pairs[0].raw_b)
    rgb_a = RNG.integers(0, 255, (16, 18, 3), dtype=np.uint8)
    rgb_b = RNG.integers(0, 255, (16, 18, 3), dtype=np.uint8)
    write_ab([("photo", np.moveaxis(rgb_a, -1, 0), np.moveaxis(rgb_b, -1, 0))], tmp_path / "rgb")
    assert read_image(tmp_path / "rgb" / "photo.tif").shape == (16, 36, 3)
    back = from_ab_folder(tmp_path / "rgb")
    assert back.in_channels == 3 and np.array_equal(back.pairs[0].raw_b, np.moveaxis(rgb_b, -1, 0))


def test_write_ab_refuses_unequal_channels(tmp_path):
    from napari_pix2pix.errors import InputError

    with pytest.raises(InputError, match="same count"):
        write_ab([("x", np.zeros((3, 4, 4), np.uint8), np.zeros((1, 4, 4), np.uint8))], tmp_path)


def test_ab_folder_odd_width_and_png(tmp_path):
    left = RNG.integers(0, 255, (20, 16), dtype=np.uint8)
    right = 255 - left
    write_image(tmp_path / "ok.png", np.concatenate([left, right], 1))
    write_image(tmp_path / "odd.png", np.zeros((20, 33), np.uint8))
    report = validate_ab_folder(tmp_path)
    assert [(m.name, m.problem) for m in report.mismatches] == [("odd.png", ODD_WIDTH)]
    with pytest.raises(DatasetError, match="odd.png: odd width"):
        from_ab_folder(tmp_path)
    (tmp_path / "odd.png").unlink()
    ds = from_paths(tmp_path)
    assert np.array_equal(ds.pairs[0].raw_a[0], left) and np.array_equal(ds.pairs[0].raw_b[0], right)


# -- split ------------------------------------------------------------------------------------

def test_split_pairs_is_disjoint_and_seeded():
    a = RNG.integers(0, 4000, (20, 16, 16), dtype=np.uint16)
    ds = from_arrays(a, a.copy(), names="s")
    tr, va = ds.split(0.25, seed=3)
    assert len(tr) == 15 and len(va) == 5
    assert not {p.name for p in tr.pairs} & {p.name for p in va.pairs}
    assert [p.name for p in ds.split(0.25, seed=3)[1].pairs] == [p.name for p in va.pairs]
    assert [p.name for p in ds.split(0.25, seed=4)[1].pairs] != [p.name for p in va.pairs]
    assert va.norm_a is ds.norm_a and isinstance(va, PairedDataset)
    assert ds.split(0.0) == (ds, None)


def test_split_single_pair_uses_bottom_rows():
    a = np.arange(100 * 30, dtype=np.uint16).reshape(100, 30)
    ds = from_arrays(a, a.copy())
    tr, va = ds.split(0.2)
    assert tr.pairs[0].a.shape == (1, 80, 30) and va.pairs[0].a.shape == (1, 20, 30)
    assert np.array_equal(tr.pairs[0].raw_a[0], a[:80]) and np.array_equal(va.pairs[0].raw_a[0], a[80:])
    assert tr.pairs[0].raw_a.max() < va.pairs[0].raw_a.min()  # no overlap
    assert va.source["split"]["mode"] == "rows"
