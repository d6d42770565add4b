"""``python -m napari_pix2pix``: see :mod:`napari_pix2pix.cli`."""

import sys

from .cli import main

sys.exit(main())
