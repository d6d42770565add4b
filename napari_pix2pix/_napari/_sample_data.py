"""Sample data (File > Open Sample > Pix2Pix): real paired images to try the plugin on.

The nuclei samples ship with the package (``sample_data/``, see its README and LICENSE
files); the edges -> photo pair is made from ``skimage.data.astronaut`` (needs scikit-image).
"""

from __future__ import annotations

from .. import samples


def nuclei_2d() -> list:
    """Fluorescent nuclei (2-D) and their instance labels: A = image, B = labels."""
    image, labels = samples.nuclei_2d()
    return [(image, {"name": "nuclei"}, "image"),
            (labels, {"name": "nuclei labels", "opacity": 0.5}, "labels")]


def nuclei_3d() -> list:
    """A 3-D stack of nuclei and its labels (one training pair per z-slice)."""
    image, labels = samples.nuclei_3d()
    return [(image, {"name": "nuclei 3d"}, "image"),
            (labels, {"name": "nuclei 3d labels", "opacity": 0.5}, "labels")]


def astronaut_edges() -> list:
    """edges -> photo from ``skimage.data.astronaut``: A = Canny edges (uint8), B = the photo (RGB)."""
    edges, photo = samples.edges_photo()
    return [(edges, {"name": "astronaut edges", "colormap": "gray"}, "image"),
            (photo, {"name": "astronaut", "rgb": True}, "image")]
