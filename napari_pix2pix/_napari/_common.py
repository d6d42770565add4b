"""Shared bits of the dock widgets: a base class with a message line, and layer pickers."""

from __future__ import annotations

from magicgui.widgets import ComboBox, Label
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ._layers import IMAGE_KINDS, error_text, image_layers, notify
from ._state import get_state

_LEVEL_COLOURS = {"info": "", "warning": "color: #e8a33d;", "error": "color: #ff6b6b;"}


class LayerPicker(ComboBox):
    """A combo box of the viewer's image/labels layers (value: the layer object), kept in sync
    with the layer list. ``none_label``: an extra first entry whose value is None."""

    def __init__(self, viewer, label: str, kinds=IMAGE_KINDS, none_label: str | None = None, **kwargs):
        self._viewer_ref = viewer
        self._kinds = tuple(kinds)
        self._none_label = none_label
        super().__init__(label=label, choices=self._layer_choices, nullable=none_label is not None, **kwargs)
        events = viewer.layers.events
        for name in ("inserted", "removed", "moved", "reordered"):
            emitter = getattr(events, name, None)
            if emitter is not None:
                emitter.connect(self._refresh)

    def _layer_choices(self, _widget=None):
        choices = [(layer.name, layer) for layer in image_layers(self._viewer_ref, self._kinds)]
        if self._none_label is not None:
            choices.insert(0, (self._none_label, None))
        return choices

    def _refresh(self, _event=None) -> None:
        try:
            self.reset_choices()
        except RuntimeError:  # the Qt side is gone (widget closed)
            pass

    def select(self, layer_or_name) -> None:
        """Choose a layer by object or name."""
        self._refresh()
        if isinstance(layer_or_name, str):
            layer_or_name = self._viewer_ref.layers[layer_or_name]
        self.value = layer_or_name


class DockWidget(QWidget):
    """Base of the four dock widgets: the viewer, the shared state and a message line."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        self.setLayout(QVBoxLayout())
        self.layout().setContentsMargins(4, 4, 4, 4)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_level = "info"

    def add(self, widget) -> None:
        """Append a magicgui widget or a QWidget."""
        self.layout().addWidget(getattr(widget, "native", widget))

    def show_message(self, text: str, level: str = "info", notify_user: bool = False) -> None:
        """Show ``text`` in the widget (and as a napari notification when ``notify_user``)."""
        self.message_level = level
        self.message.setText(text)
        self.message.setStyleSheet(_LEVEL_COLOURS.get(level, ""))
        if notify_user or level == "error":
            notify(text, level)

    def show_error(self, exc: BaseException) -> None:
        self.show_message(error_text(exc), "error")


def info_label(text: str = "") -> Label:
    label = Label(value=text)
    label.native.setWordWrap(True)
    return label
