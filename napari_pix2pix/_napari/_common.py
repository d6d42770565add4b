"""Shared bits of the dock widgets: a scrolling base class with a message line, layer pickers
that hide helper layers, buttons that say why they are disabled, and an in-dock progress bar."""

from __future__ import annotations

import time

from magicgui.widgets import ComboBox, Label
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QLabel, QProgressBar, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from ._layers import IMAGE_KINDS, error_text, image_layers, is_helper, notify
from ._state import get_state

_LEVEL_COLOURS = {"info": "", "warning": "color: #e8a33d;", "error": "color: #ff6b6b;"}


class LayerPicker(ComboBox):
    """A combo box of the viewer's image/labels layers (value: the layer object), kept in sync
    with the layer list. Helper layers (``pix2pix: ...``) are never offered. ``accept``: an
    optional ``layer -> bool`` filter (e.g. only layers the loaded model can take). ``extra``: an
    optional ``(label, value)`` first entry (a real choice, not a placeholder)."""

    def __init__(self, viewer, label: str, kinds=IMAGE_KINDS, extra: tuple | None = None, accept=None, **kwargs):
        self._viewer_ref = viewer
        self._kinds = tuple(kinds)
        self._extra = extra
        self.accept = accept
        super().__init__(label=label, choices=self._layer_choices, nullable=False, **kwargs)
        events = viewer.layers.events
        for name in ("inserted", "removed", "moved", "reordered"):
            emitter = getattr(events, name, None)
            if emitter is not None:
                emitter.connect(self._refresh)

    def _layer_choices(self, _widget=None):
        layers = [ly for ly in image_layers(self._viewer_ref, self._kinds) if not is_helper(ly)]
        if self.accept is not None:
            layers = [ly for ly in layers if self.accept(ly)]
        choices = [(layer.name, layer) for layer in layers]
        if self._extra is not None:
            choices.insert(0, self._extra)
        return choices

    def _refresh(self, _event=None) -> None:
        try:
            self.reset_choices()
        except RuntimeError:  # the Qt side is gone (widget closed)
            pass

    def set_filter(self, accept) -> None:
        self.accept = accept
        self._refresh()

    def select(self, layer_or_name) -> None:
        """Choose a layer by object or name."""
        self._refresh()
        if isinstance(layer_or_name, str):
            layer_or_name = self._viewer_ref.layers[layer_or_name]
        self.value = layer_or_name

    @property
    def layer_names(self) -> list[str]:
        return [name for name, value in self._layer_choices() if value is not None]


def when_alive(slot):
    """Wrap a slot fed by a worker: when the dock was closed before the worker ended (its Qt
    widgets are deleted), the late result is dropped instead of raising in the event loop."""
    def call(*args):
        try:
            return slot(*args)
        except RuntimeError as exc:
            if "has been deleted" not in str(exc):
                raise
            return None

    return call


_NOTHING = object()


class Coalescer:
    """Keeps only the newest value put and applies it at most every ``interval`` seconds on the
    GUI thread (a fast worker never floods the event loop with redraws). :meth:`flush` applies
    what is pending now; :attr:`busy` says whether something is pending."""

    def __init__(self, apply, interval: float, parent=None):
        from qtpy.QtCore import QTimer

        self.apply, self.interval = apply, float(interval)
        self.pending = _NOTHING
        self._last = float("-inf")
        self.timer = QTimer(parent)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(when_alive(self.flush))

    @property
    def busy(self) -> bool:
        return self.pending is not _NOTHING

    def put(self, value) -> None:
        self.pending = value
        if not self.timer.isActive():
            wait = self.interval - (time.perf_counter() - self._last)
            self.timer.start(int(max(wait, 0.0) * 1000))

    def flush(self) -> None:
        self.timer.stop()
        if self.pending is _NOTHING:
            return
        value, self.pending = self.pending, _NOTHING
        self._last = time.perf_counter()
        self.apply(value)

    def drop(self) -> None:
        self.timer.stop()
        self.pending = _NOTHING


def set_enabled(button, enabled: bool, why: str = "", tooltip: str = "") -> None:
    """Enable a button, or disable it with ``why`` as its tooltip (every disabled button says why)."""
    button.enabled = bool(enabled)
    button.tooltip = tooltip if enabled else (why or tooltip)


class ProgressLine(QWidget):
    """A progress bar with the text ``step n/total · x steps/s · ETA m:ss`` (``unit`` names the
    counted thing). :meth:`start`, :meth:`update`, :meth:`finish`."""

    def __init__(self, unit: str = "step", parent=None):
        super().__init__(parent)
        self.unit = unit
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setMaximumHeight(18)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        self._t0 = None
        self._n0 = 0
        self.text = ""
        self.setVisible(False)

    def start(self, total: int, done: int = 0) -> None:
        self._t0, self._n0 = time.perf_counter(), int(done)
        self.bar.setRange(0, max(int(total), 0))
        self.update(done, total)
        self.setVisible(True)

    def update(self, done: int, total: int | None = None) -> None:
        if total is not None and total != self.bar.maximum():
            self.bar.setRange(0, max(int(total), 0))
        total = self.bar.maximum()
        self.bar.setValue(min(int(done), total) if total else 0)
        rate = None
        if self._t0 is not None:
            elapsed = time.perf_counter() - self._t0
            if elapsed > 0 and done > self._n0:
                rate = (done - self._n0) / elapsed
        parts = [f"{self.unit} {done}/{total}" if total else f"{self.unit} {done}"]
        if rate:
            parts.append(f"{rate:.3g} {self.unit}s/s")
            if total and done < total:
                eta = int(round((total - done) / rate))
                parts.append(f"ETA {eta // 60}:{eta % 60:02d}")
        self.text = " · ".join(parts)
        self.bar.setFormat(self.text)

    def finish(self) -> None:
        self._t0 = None
        self.setVisible(False)


class DockWidget(QWidget):
    """Base of the four dock widgets: the viewer, the shared state, a message line, and a
    scroll area holding everything (so a dock never pushes the window past the screen)."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.body = QWidget()
        self.body_layout = QVBoxLayout(self.body)
        self.body_layout.setContentsMargins(4, 4, 4, 4)
        self.body_layout.setSpacing(3)
        self.scroll.setWidget(self.body)
        outer.addWidget(self.scroll)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.message.setMinimumWidth(120)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_level = "info"
        self._last_notified = None
        self.background: list = []  # helper workers running now (model info, receptive field...)
        self._later: list = []  # parts of the dock still to build, one per event-loop turn

    def later(self, build) -> None:
        """Run ``build()`` in a later turn of the event loop (one queued part per turn), so
        opening the dock shows it first and builds the rest in steps well under 100 ms."""
        self._later.append(build)
        if len(self._later) == 1:
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, when_alive(self._build_next))

    def _build_next(self) -> None:
        if not self._later:
            return
        build = self._later.pop(0)
        build()
        if self._later:
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, when_alive(self._build_next))

    def finish_building(self) -> None:
        """Build every queued part now (a script or test that reads a widget at once)."""
        while self._later:
            self._later.pop(0)()

    def run_in_background(self, worker):
        """Start a helper worker (not the dock's main action) and track it until it finishes."""
        self.background.append(worker)

        def done(w=worker):
            if w in self.background:
                self.background.remove(w)

        worker.finished.connect(done)
        worker.start()
        return worker

    @property
    def idle(self) -> bool:
        """No action and no helper worker is running."""
        layers = getattr(self.state, "layers", None)
        return (getattr(self, "worker", None) is None and not self.background and not self._later
                and not (layers and layers.busy))

    def add(self, widget) -> None:
        """Append a magicgui widget or a QWidget."""
        self.body_layout.addWidget(getattr(widget, "native", widget))

    def add_stretch(self) -> None:
        self.body_layout.addStretch()

    def show_message(self, text: str, level: str = "info", notify_user: bool = False) -> None:
        """Show ``text`` in the widget (and once as a napari notification when ``notify_user``
        or for an error; the same text is not notified twice in a row)."""
        self.message_level = level
        self.message.setText(text)
        self.message.setStyleSheet(_LEVEL_COLOURS.get(level, ""))
        if (notify_user or level == "error") and text != self._last_notified:
            self._last_notified = text
            notify(text, level)

    def show_error(self, exc: BaseException, notify_user: bool = True) -> None:
        """An error in the message line; ``notify_user=False`` when napari already notified it
        (a worker's unexpected exception)."""
        if notify_user:
            self.show_message(error_text(exc), "error")
        else:
            self._last_notified = error_text(exc)
            self.show_message(error_text(exc), "error")


def info_label(text: str = "") -> Label:
    """A read-only text that wraps at the dock's width: it never widens the dock (no sideways
    scrolling for a long model description or path)."""
    label = Label(value=text)
    label.native.setWordWrap(True)
    label.native.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    # Ignored: the layout never takes the label's one-line width as its minimum
    label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.native.setMinimumWidth(120)
    return label
