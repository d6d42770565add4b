"""The bundled sample pairs, as arrays (no Qt, no napari). Files live in ``sample_data/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError

SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"


def _read(*parts: str) -> np.ndarray:
    from .io import read_image

    path = SAMPLE_DIR.joinpath(*parts)
    if not path.is_file():
        raise InputError(f"sample file {path} is missing from this installation.",
                         "reinstall napari-pix2pix (the sample_data folder ships with it).")
    return read_image(path)


def nuclei_2d() -> tuple[np.ndarray, np.ndarray]:
    """(image uint16 ``[512, 512]``, instance labels uint16 ``[512, 512]``)."""
    return _read("nuclei-2d", "img2d.tif"), _read("nuclei-2d", "mask2d.tif")


def nuclei_3d() -> tuple[np.ndarray, np.ndarray]:
    """(stack uint16 ``[60, 256, 256]``, labels uint32 ``[60, 256, 256]``): one pair per slice."""
    return _read("nuclei-3d", "nuclei.tif"), _read("nuclei-3d", "nuclei_label.tif")


def edges_photo(size: int | None = None, sigma: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(Canny edges uint8 ``[H, W]`` 0/255, photo uint8 ``[H, W, 3]``) from
    ``skimage.data.astronaut()`` (512x512, bundled with scikit-image; nothing is downloaded),
    resized to ``size x size`` when given."""
    try:
        from skimage import color, data, feature, transform
    except ImportError as exc:  # pragma: no cover - scikit-image comes with napari
        raise InputError("the edges -> photo sample needs scikit-image.", "pip install scikit-image") from exc
    photo = data.astronaut()
    if size is not None:
        photo = (transform.resize(photo, (size, size), anti_aliasing=True) * 255 + 0.5).astype(np.uint8)
    edges = feature.canny(color.rgb2gray(photo), sigma=sigma)
    return edges.astype(np.uint8) * 255, photo
