"""The napari face of napari-pix2pix.

Thin widgets over the engine (:mod:`napari_pix2pix`): every option list and default comes
from :mod:`napari_pix2pix.config`, training and inference happen in the engine, and this
package only converts napari layers to arrays (and back) at the boundary.

Layout (after careamics-napari): :mod:`._state` holds the per-viewer shared state and its
signals, :mod:`._workers` the ``thread_worker`` generators, one module per widget, and
:mod:`.functions` the plain layer-in / layer-data-out functions that napari also offers as
magicgui function widgets. Nothing here imports torch at module import.
"""
