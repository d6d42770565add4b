"""Sample data (File > Open Sample > Pix2Pix): real paired images to try the plugin on.

The nuclei samples ship with the package (``sample_data/``, see its README and LICENSE
files); the edges -> photo pair is made from ``skimage.data.astronaut`` (needs scikit-image).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError


def sample_dir() -> Path:
    import napari_pix2pix

    return Path(napari_pix2pix.__file__).parent / "sample_data"


def _read(*parts: str) -> np.ndarray:
    path = sample_dir().joinpath(*parts)
    if not path.is_file():
        raise InputError(f"sample file {path} is missing.", "reinstall napari-pix2pix (the samples ship with it).")
    import tifffile

    return tifffile.imread(path)


def nuclei_2d() -> list:
    """Fluorescent nuclei (2-D) and their instance labels: A = image, B = labels."""
    image, labels = _read("nuclei-2d", "img2d.tif"), _read("nuclei-2d", "mask2d.tif")
    return [(image, {"name": "nuclei"}, "image"),
            (labels, {"name": "nuclei labels", "opacity": 0.5}, "labels")]


def nuclei_3d() -> list:
    """A 3-D stack of nuclei and its labels (one training pair per z-slice)."""
    image, labels = _read("nuclei-3d", "nuclei.tif"), _read("nuclei-3d", "nuclei_label.tif")
    return [(image, {"name": "nuclei 3d"}, "image"),
            (labels, {"name": "nuclei 3d labels", "opacity": 0.5}, "labels")]


def astronaut_edges() -> list:
    """edges -> photo from ``skimage.data.astronaut``: A = Canny edges (uint8), B = the photo (RGB)."""
    try:
        from skimage import data, feature
        from skimage.color import rgb2gray
    except ImportError as exc:
        raise InputError("the edges -> photo sample needs scikit-image.", "pip install scikit-image") from exc
    photo = data.astronaut()
    edges = feature.canny(rgb2gray(photo), sigma=2.0)
    return [(edges.astype(np.uint8) * 255, {"name": "astronaut edges", "colormap": "gray"}, "image"),
            (photo, {"name": "astronaut", "rgb": True}, "image")]
