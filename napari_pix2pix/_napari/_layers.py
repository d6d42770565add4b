"""Boundary helpers: napari layers <-> engine arrays, placement of maps, in-place layer updates.

Everything layout-related of the napari face lives here, so the widgets stay thin.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..errors import InputError, Pix2PixError

IMAGE_KINDS = ("image", "labels")
HELPER_PREFIX = "pix2pix: "  # every helper layer (previews, maps, boxes, examples) is named under it
HELPER_KEY = "pix2pix_helper"


def helper_name(name: str) -> str:
    """``name`` under the helper prefix (unchanged when it already is)."""
    return name if name.startswith(HELPER_PREFIX) else HELPER_PREFIX + name


def is_helper(layer) -> bool:
    """Whether ``layer`` is one of the plugin's helper layers (never offered as an input)."""
    return str(layer.name).startswith(HELPER_PREFIX) or bool((getattr(layer, "metadata", None) or {}).get(HELPER_KEY))


def remove_helpers(viewer) -> int:
    """Remove every helper layer of ``viewer``; returns how many were removed."""
    helpers = [layer for layer in list(viewer.layers) if is_helper(layer)]
    for layer in helpers:
        viewer.layers.remove(layer)
    return len(helpers)


def unique_name(viewer, base: str) -> str:
    """``base``, or ``base 2``, ``base 3``... : the first name no layer of ``viewer`` has."""
    names = {layer.name for layer in viewer.layers} if viewer is not None else set()
    if base not in names:
        return base
    k = 2
    while f"{base} {k}" in names:
        k += 1
    return f"{base} {k}"


# ------------------------------------------------------------------------------ messages
def error_text(exc: BaseException) -> str:
    """What a user sees for ``exc``: our own errors verbatim, anything else flagged as a bug."""
    if isinstance(exc, Pix2PixError):
        return str(exc)
    return f"Unexpected error ({exc.__class__.__name__}: {exc}). Please report this as a bug."


def notify(message: str, level: str = "info") -> None:
    """A napari notification (info, warning or error) that never raises."""
    try:
        from napari.utils.notifications import show_error, show_info, show_warning

        {"info": show_info, "warning": show_warning, "error": show_error}[level](message)
    except Exception:  # noqa: BLE001 - notifications must never break a widget
        pass


# ------------------------------------------------------------------------------- layers
def layer_kind(layer) -> str:
    return layer.__class__.__name__.lower()


def image_layers(viewer, kinds: Iterable[str] = IMAGE_KINDS) -> list:
    """Layers of ``viewer`` whose type is one of ``kinds`` (``image``, ``labels``)."""
    kinds = tuple(kinds)
    return [layer for layer in viewer.layers if layer_kind(layer) in kinds]


def layer_array(layer) -> np.ndarray:
    """The layer's data as a numpy array (level 0 of a multiscale pyramid; dask is computed)."""
    if layer is None:
        raise InputError("no layer is selected.", "open an image (e.g. File > Open Sample > Pix2Pix) and choose it.")
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    return np.asarray(data)


def is_rgb(layer) -> bool:
    return bool(getattr(layer, "rgb", False))


def channel_axis(layer) -> int | None:
    """The channel axis the engine should use for ``layer`` (-1 for RGB layers, else None)."""
    return -1 if is_rgb(layer) else None


def spatial(values, n: int = 2) -> list[float]:
    """The last ``n`` entries (Y, X) of a per-axis sequence such as ``layer.scale``."""
    return [float(v) for v in list(values)[-n:]]


def current_plane(layer, viewer) -> np.ndarray:
    """The 2-D plane (``[Y, X]`` or ``[Y, X, C]``) of ``layer`` shown at the viewer's current
    position; the whole data for a 2-D layer."""
    data = layer_array(layer)
    lead = data.ndim - (3 if is_rgb(layer) else 2)
    if lead <= 0:
        return data
    point = layer.world_to_data(viewer.dims.point[-layer.ndim:]) if viewer is not None else [0] * layer.ndim
    index = tuple(int(np.clip(round(float(p)), 0, data.shape[i] - 1)) for i, p in enumerate(point[:lead]))
    return data[index]


def model_to_display(chw: np.ndarray) -> np.ndarray:
    """A model-space array ``[C, H, W]`` in [-1, 1] -> ``[H, W]`` (one channel, still [-1, 1])
    or ``[H, W, C]`` in [0, 1] (RGB, what napari shows as colour)."""
    chw = np.asarray(chw, np.float32)
    if chw.ndim == 2:
        return chw
    if chw.shape[0] == 1:
        return chw[0]
    if chw.shape[0] in (3, 4):
        from ..layout import model_to_napari

        return np.clip((model_to_napari(chw[None]) + 1) / 2, 0, 1)
    return chw[0]  # other channel counts: show the first one


def upsert_image(viewer, name: str, data, **kwargs):
    """Update the layer called ``name`` in place (data and given properties), or add it.
    Never piles up new layers on repeated calls. Names under :data:`HELPER_PREFIX` are marked as
    helper layers in their metadata."""
    if name.startswith(HELPER_PREFIX):
        kwargs["metadata"] = {**(kwargs.get("metadata") or {}), HELPER_KEY: True}
    if name in viewer.layers:
        layer = viewer.layers[name]
        rgb = data.ndim == 3 and data.shape[-1] in (3, 4)
        if getattr(layer, "rgb", rgb) == rgb and layer.data.ndim == data.ndim:
            layer.data = data
            for key, value in kwargs.items():
                if key not in ("rgb", "name"):
                    setattr(layer, key, value)
            return layer
        viewer.layers.remove(layer)
    return viewer.add_image(data, name=name, **kwargs)


class DeferredLayers:
    """Adds missing layers and updates existing ones, one per event-loop turn.

    Adding a napari layer builds its Qt controls (a few hundred ms on a busy machine); adding
    several in one handler would freeze the GUI for longer than that. :meth:`put` keeps only the
    newest data per name; :attr:`pending` is empty once every layer exists.
    """

    def __init__(self, viewer):
        import weakref

        self._viewer = weakref.ref(viewer)  # the per-viewer state holds this: no strong reference
        self.pending: dict[str, tuple] = {}
        self._scheduled = False
        self._restore = None  # the layer to select again once the additions are done
        self._idle_callbacks: list = []

    @property
    def viewer(self):
        return self._viewer()

    def when_idle(self, callback) -> None:
        """Call ``callback()`` once every pending layer has been added (now if none is pending)."""
        if not self.busy:
            callback()
        else:
            self._idle_callbacks.append(callback)

    def put(self, name: str, data, on_added=None, **kwargs) -> None:
        """Add or update layer ``name``: the first change while nothing is queued happens now; the
        others one per event-loop turn (each in-place update also redraws and re-thumbnails the
        layer, so a preview touching seven layers no longer does it all in one turn)."""
        if name in self.viewer.layers and not self.pending and not self._scheduled:
            layer = upsert_image(self.viewer, name, data, **kwargs)
            if on_added is not None:
                on_added(layer)
            from qtpy.QtCore import QTimer

            self._scheduled = True  # this turn is used: further changes wait for the next ones
            QTimer.singleShot(0, self._add_one)
            return
        self.pending[name] = (data, kwargs, on_added)
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled and self.pending:
            from qtpy.QtCore import QTimer

            self._scheduled = True
            QTimer.singleShot(0, self._add_one)

    @property
    def busy(self) -> bool:
        """Layers still to add, or the selection still to restore."""
        return bool(self.pending) or self._restore is not None

    def _add_one(self) -> None:
        self._scheduled = False
        if self.viewer is None:
            self.pending.clear()
            self._restore = None
            return
        if not self.pending:
            self._finish()
            return
        name = next(iter(self.pending))
        data, kwargs, on_added = self.pending.pop(name)
        try:
            active = self.viewer.layers.selection.active
            adding = name not in self.viewer.layers
            layer = upsert_image(self.viewer, name, data, **kwargs)
            if adding and self._restore is None and active is not None:
                self._restore = active  # adding must not steal the selection (restored in a turn of its own)
            if on_added is not None:
                on_added(layer)
        except RuntimeError:  # the viewer is closing
            self.pending.clear()
            self._restore = None
            return
        if self.pending:
            self._schedule()
        elif self._restore is not None:
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, self._finish)
        else:
            self._run_idle()

    def _finish(self) -> None:
        """Give the selection back to the layer the user had chosen, then run the idle callbacks."""
        active, self._restore = self._restore, None
        viewer = self.viewer
        try:
            if viewer is not None and active is not None and active in viewer.layers \
                    and viewer.layers.selection.active is not active:
                viewer.layers.selection.active = active
        except RuntimeError:
            return
        if self.pending:
            self._schedule()
        else:
            self._run_idle()

    def _run_idle(self) -> None:
        callbacks, self._idle_callbacks = self._idle_callbacks, []
        for callback in callbacks:
            callback()


# --------------------------------------------------------------------- map placement
def map_placement(dmap, layer=None) -> tuple[list[float], list[float]]:
    """(scale, translate) that put every cell of ``dmap`` over the centre of its receptive
    field on ``layer`` (composition of the map's placement in pixels with the layer's own
    scale and translate, Y and X only)."""
    sy, sx = spatial(layer.scale) if layer is not None else (1.0, 1.0)
    ty, tx = spatial(layer.translate) if layer is not None else (0.0, 0.0)
    scale = [sy * dmap.scale[0], sx * dmap.scale[1]]
    translate = [ty + sy * dmap.translate[0], tx + sx * dmap.translate[1]]
    return scale, translate


def world_to_pixel(position, layer=None) -> tuple[float, float]:
    """World (..., y, x) -> pixel (row, col) of ``layer`` (Y and X only)."""
    y, x = (float(v) for v in list(position)[-2:])
    if layer is None:
        return y, x
    sy, sx = spatial(layer.scale)
    ty, tx = spatial(layer.translate)
    return (y - ty) / sy, (x - tx) / sx


def box_rectangle(box, layer=None) -> np.ndarray:
    """Inclusive pixel box ``(r0, c0, r1, c1)`` -> rectangle corners ``[4, 2]`` in world
    coordinates, along the pixel edges (napari puts pixel centres on integer coordinates)."""
    r0, c0, r1, c1 = box
    corners = np.array([[r0 - 0.5, c0 - 0.5], [r0 - 0.5, c1 + 0.5], [r1 + 0.5, c1 + 0.5], [r1 + 0.5, c0 - 0.5]])
    if layer is not None:
        corners = corners * np.array(spatial(layer.scale)) + np.array(spatial(layer.translate))
    return corners


def symmetric_limits(*arrays, percentile: float = 99.0) -> tuple[float, float]:
    """Contrast limits symmetric around 0 (logit 0 = undecided sits mid-colormap) reaching the
    ``percentile`` of |value| over every array, so one outlier does not wash the map out."""
    values = [np.abs(np.asarray(a, np.float64)).ravel() for a in arrays if a is not None and np.size(a)]
    m = float(np.nanpercentile(np.concatenate(values), percentile)) if values else 1.0
    m = m if m > 0 and np.isfinite(m) else 1.0
    return -m, m
