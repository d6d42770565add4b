"""Reading and writing image files: layouts, dtypes, atomic writes and clear read errors."""

from __future__ import annotations

import numpy as np
import pytest

from napari_pix2pix.errors import ImageReadError, InputError
from napari_pix2pix.io import IMAGE_EXTENSIONS, read_image, read_tif_metadata, write_image

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("ext,arr", [
    (".tif", RNG.integers(0, 65535, (3, 20, 30), dtype=np.uint16)),
    (".tif", RNG.standard_normal((20, 30)).astype(np.float32)),
    (".tiff", RNG.integers(0, 2**31, (20, 30), dtype=np.uint32)),
    (".tif", RNG.integers(0, 255, (20, 30, 3), dtype=np.uint8)),
    (".png", RNG.integers(0, 255, (20, 30), dtype=np.uint8)),
    (".png", RNG.integers(0, 255, (20, 30, 3), dtype=np.uint8)),
    (".png", RNG.integers(0, 255, (20, 30, 4), dtype=np.uint8)),
    (".png", RNG.integers(0, 65535, (20, 30), dtype=np.uint16)),
    (".png", RNG.integers(0, 65535, (20, 30, 3), dtype=np.uint16)),
    (".png", RNG.integers(0, 65535, (20, 30, 4), dtype=np.uint16)),
    (".npy", RNG.standard_normal((2, 5, 20, 30))),
])
def test_lossless_round_trip(tmp_path, ext, arr):
    path = write_image(tmp_path / f"x{ext}", arr)
    back = read_image(path)
    assert back.dtype == arr.dtype
    assert back.shape == arr.shape
    assert np.array_equal(back, arr)


def test_jpg_is_uint8_and_close(tmp_path):
    arr = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (32, 1))
    rgb = np.stack([arr, arr[:, ::-1], arr], -1)
    back = read_image(write_image(tmp_path / "x.jpg", rgb))
    assert back.dtype == np.uint8 and back.shape == rgb.shape
    assert np.abs(back.astype(int) - rgb).mean() < 3


def test_png_gray_alpha_and_palette(tmp_path):
    from PIL import Image

    la = Image.fromarray(np.full((8, 9, 2), 7, np.uint8), mode="LA")
    la.save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png").shape == (8, 9)
    p = Image.fromarray(np.arange(72, dtype=np.uint8).reshape(8, 9)).convert("P")
    p.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (8, 9, 3)


def test_png16_decoder_handles_all_filters(tmp_path):
    """A 16-bit RGB PNG from another tool uses adaptive filters; we must decode them exactly."""
    import struct
    import zlib

    from napari_pix2pix import io as nio

    arr = RNG.integers(0, 65535, (6, 7, 3), dtype=np.uint16)
    rows = arr.astype(">u2").reshape(6, -1).view(np.uint8).reshape(6, -1).astype(np.int64)
    bpp, raw, prev = 6, b"", np.zeros(rows.shape[1], np.int64)
    for y, f in enumerate([0, 1, 2, 3, 4, 4]):
        cur = rows[y]
        left = np.concatenate([np.zeros(bpp, np.int64), cur[:-bpp]])
        ul = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        if f == 0:
            pred = 0
        elif f == 1:
            pred = left
        elif f == 2:
            pred = prev
        elif f == 3:
            pred = (left + prev) // 2
        else:
            est = left + prev - ul
            pa, pb, pc = abs(est - left), abs(est - prev), abs(est - ul)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, ul))
        raw += bytes([f]) + ((cur - pred) % 256).astype(np.uint8).tobytes()
        prev = cur
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 7, 6, 16, 2, 0, 0, 0)
    data = nio._PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    (tmp_path / "f.png").write_bytes(data)
    assert np.array_equal(read_image(tmp_path / "f.png"), arr)


def test_tif_metadata(tmp_path):
    write_image(tmp_path / "m.tif", np.zeros((4, 4), np.uint8), metadata={"pix2pix_ab": {"dtype_left": "uint16"}})
    assert read_tif_metadata(tmp_path / "m.tif")["pix2pix_ab"] == {"dtype_left": "uint16"}
    assert read_tif_metadata(tmp_path / "nothing.png") == {}


@pytest.mark.parametrize("name,content", [
    ("text.png", b"this is not an image\n"),
    ("text.jpg", b"hello"),
    ("text.tif", b"II*\x00garbage"),
    ("bad.npy", b"\x93NUMPY garbage"),
])
def test_corrupt_files_raise_image_read_error(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ImageReadError) as info:
        read_image(tmp_path / name)
    assert name in str(info.value)
    assert info.value.fix  # the message says what to do


def test_truncated_tif(tmp_path):
    path = write_image(tmp_path / "t.tif", RNG.integers(0, 65535, (64, 64), dtype=np.uint16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageReadError, match="t.tif"):
        read_image(path)


def test_missing_and_unknown(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.tif")
    (tmp_path / "x.bmpx").write_bytes(b"1")
    with pytest.raises(ImageReadError, match="not a supported image type"):
        read_image(tmp_path / "x.bmpx")


def test_npy_refuses_pickles(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageReadError, match="obj.npy"):
        read_image(tmp_path / "obj.npy")


@pytest.mark.parametrize("ext,arr", [
    (".png", np.zeros((8, 8), np.float32)),
    (".png", np.zeros((8, 8, 2), np.uint8)),
    (".jpg", np.zeros((8, 8), np.uint16)),
    (".bmp", np.zeros((8, 8), np.uint8)),
])
def test_write_refuses_what_the_format_cannot_hold(tmp_path, ext, arr):
    with pytest.raises(InputError, match=r"\.tif|use one of"):
        write_image(tmp_path / f"x{ext}", arr)
    assert not any(tmp_path.iterdir())  # no partial or temporary file left


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    import tifffile

    target = tmp_path / "keep.tif"
    write_image(target, np.ones((4, 4), np.uint8))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", boom)
    with pytest.raises(OSError):
        write_image(target, np.zeros((4, 4), np.uint8))
    assert np.array_equal(read_image(target), np.ones((4, 4), np.uint8))  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tif"]


def test_extensions_constant():
    assert IMAGE_EXTENSIONS == (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy")
