"""Option forms generated from the schema (:func:`napari_pix2pix.schema.options_of`).

:class:`OptionsForm` builds one magicgui widget per option of a configuration class that the
napari face shows: basic options visible, advanced ones in a collapsed section. Defaults,
choices, ranges, labels and help all come from the schema, so a new field in ``config.py``
appears here without touching the widget. Fields not yet annotated with ``option(...)`` are
still shown, with the dataclass default and the ``<NAME>_CHOICES`` tuple of ``config.py``
when one exists (a bridge while the schema is being filled in).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, LineEdit, SpinBox
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ..schema import Option, options_of

_INT_MAX = 2**31 - 1
_FLOAT_MAX = 1e12


def _is_config(value) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def napari_options(cls) -> list[Option]:
    """The options of ``cls`` that the napari face shows, in declaration order (the schema only:
    a field without ``option(...)`` metadata is not a user-facing setting)."""
    return options_of(cls, "napari")


def _type_text(opt: Option) -> str:
    t = opt.type
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def widget_for(opt: Option, value: Any = None, label: str | None = None):
    """A magicgui widget for one option (value: ``value`` or the schema default)."""
    value = opt.default if value is None else value
    kw: dict = {"name": opt.name, "label": label or opt.display_label(), "tooltip": opt.help or None}
    if opt.unit and opt.help:
        kw["tooltip"] = f"{opt.help} ({opt.unit})"
    text = _type_text(opt).replace(" ", "")
    optional = "None" in text or value is None
    if opt.choices is not None:
        choices = list(opt.choices)
        if value is not None and value not in choices:
            choices.append(value)
        w = ComboBox(choices=choices, value=value, **kw)
        if opt.pattern:
            _accept_typed(w, opt)
        return w
    if isinstance(value, bool) or text.startswith("bool"):
        return CheckBox(value=bool(value), **kw)
    low, high = opt.range if opt.range is not None else (None, None)
    if not optional and (isinstance(value, int) or text.startswith("int")):
        return SpinBox(value=int(value), min=int(low) if low is not None else 0,
                       max=int(high) if high is not None else _INT_MAX, **kw)
    if not optional and (isinstance(value, float) or text.startswith("float")):
        w = FloatSpinBox(value=float(value), min=float(low) if low is not None else 0.0,
                         max=float(high) if high is not None else _FLOAT_MAX,
                         step=_float_step(value, low, high), **kw)
        w.native.setDecimals(max(_decimals(v) for v in (value, low, high) if v is not None))
        w.min = float(low) if low is not None else 0.0  # set again: rounded to 2 decimals at creation
        w.max = float(high) if high is not None else _FLOAT_MAX
        w.value = float(value)  # set again: the spin box rounded it to its default 2 decimals
        return w
    if opt.name.endswith("_dir") or opt.name.endswith("_path") or opt.name.endswith("_file"):
        mode = "d" if opt.name.endswith("_dir") else "r"
        return FileEdit(mode=mode, value="" if value is None else str(value), **kw)
    w = LineEdit(value="" if value is None else str(value), **kw)
    if optional:
        w.native.setPlaceholderText("auto")
    return w


def _accept_typed(w: ComboBox, opt: Option) -> None:
    """Let the user type a value the schema's pattern accepts (``cuda:1``, ``unet_512``) into
    the choices combo; a value it refuses is said (notification and tooltip, ``Problem. Fix:``)
    and the last good value comes back. :attr:`problem` of the widget holds the last refusal."""
    from qtpy.QtWidgets import QComboBox

    from ..errors import ConfigError
    from ..messages import render
    from ..schema import check_value
    from ._layers import notify

    native = w.native
    native.setEditable(True)
    native.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
    hint = opt.pattern_hint or "a value matching " + opt.pattern
    help_text = f"{opt.help} (choose, or type {hint})" if opt.help else f"choose, or type {hint}"
    w.tooltip = help_text
    w.problem = None

    def commit(text=None):
        text = (native.currentText() if text is None else text).strip()
        if text == str(w.value):  # nothing new (Qt also reports the end of editing on focus-out)
            return
        try:
            check_value(opt, text)
        except ConfigError as exc:
            w.problem = render(exc, "napari")
            w.tooltip = w.problem
            native.setStyleSheet("QComboBox { color: #ff6b6b; }")
            native.setEditText(str(w.value))  # the last accepted value stays in force
            notify(w.problem, "error")
            return
        if text not in w.choices:
            w.set_choice(text, text)
        w.value = text
        w.problem = None
        w.tooltip = help_text
        native.setStyleSheet("")

    def typing(*_):
        native.setStyleSheet("")

    w.commit_text = commit  # scripts type through it: widget.commit_text("cuda:1")
    native.lineEdit().editingFinished.connect(commit)
    native.lineEdit().textEdited.connect(typing)


def _float_step(value, low, high) -> float:
    if low is not None and high is not None and high - low <= 1:
        return 0.05
    v = abs(float(value or 0))
    if 0 < v < 1e-2:
        return v / 2
    return 10 ** (len(str(int(v))) - 1) / 10 if v >= 1 else 0.1


def _decimals(value) -> int:
    """Enough decimals to show the default exactly (0.999 must not round to 1), at least 2."""
    digits = f"{abs(float(value or 0)):.10f}".rstrip("0").split(".")[1]
    return min(max(len(digits), 2), 10)


def _parse(opt: Option, raw):
    """Widget value -> field value (empty text -> None for optional fields; numbers parsed)."""
    if isinstance(raw, str):
        raw = raw.strip()
        if raw in ("", "."):
            return None
        text = _type_text(opt)
        if text.startswith("int") or isinstance(opt.default, int) and not isinstance(opt.default, bool):
            try:
                return int(raw)
            except ValueError:
                pass
        if text.startswith("float"):
            try:
                return float(raw)
            except ValueError:
                pass
    if hasattr(raw, "__fspath__"):
        raw = str(raw)
        return None if raw in ("", ".") else raw
    return raw


def magicgui_options(cls, name: str) -> dict:
    """magicgui options (choices, or min/max, and the help as tooltip) of one schema field, for
    ``Annotated[...]`` parameters of the function widgets."""
    opt = next(o for o in napari_options(cls) if o.name == name)
    out: dict = {}
    if opt.help:
        out["tooltip"] = opt.help
    if opt.choices is not None:
        out["choices"] = list(opt.choices)
    elif isinstance(opt.default, (int, float)) and not isinstance(opt.default, bool):
        low, high = opt.range if opt.range is not None else (None, None)
        out["min"] = low if low is not None else 0
        out["max"] = high if high is not None else (_INT_MAX if isinstance(opt.default, int) else _FLOAT_MAX)
    return out


class OptionsForm:
    """Widgets for the napari options of ``cls`` (``exclude``: fields the dock sets itself,
    such as channel counts; nested configuration fields are left out).

    ``basic``: names shown outside the collapsed section for fields that have no schema level
    yet; ``promote``: advanced fields this dock needs visible (e.g. the checkpoint folder Train
    requires); ``collapse_all``: every option in the collapsed section. The advanced widgets are built when the section is first opened or a widget is first
    asked for (opening a dock stays quick); until then their values are the schema defaults.
    :attr:`widgets` maps field name -> built widget; :attr:`native` is the QWidget to dock.
    """

    def __init__(self, cls, *, exclude=(), labels: dict | None = None, basic=(), title: str = "advanced",
                 promote=(), collapse_all: bool = False, defer: bool = False):
        from superqt import QCollapsible

        self.cls = cls
        self.labels = dict(labels or {})
        self.options: dict[str, Option] = {}
        self.widgets: dict[str, Any] = {}
        self._lazy: list[str] = []
        self._lazy_basic: list[str] = []  # defer=True: basic widgets built by build_basic()
        annotated = bool(options_of(cls))
        basic_widgets = []
        for opt in napari_options(cls):
            if opt.name in exclude or _is_config(opt.default):
                continue
            self.options[opt.name] = opt
            is_basic = (opt.level == "basic") if annotated else (opt.name in basic)
            if (is_basic or opt.name in promote) and not collapse_all:
                if defer:
                    self._lazy_basic.append(opt.name)
                    continue
                w = widget_for(opt, label=self.labels.get(opt.name))
                self.widgets[opt.name] = w
                basic_widgets.append(w)
            else:
                self._lazy.append(opt.name)
        self.basic = Container(widgets=basic_widgets)
        self.advanced = Container(widgets=[])
        self.basic.native.layout().setContentsMargins(0, 0, 0, 0)
        self.advanced.native.layout().setContentsMargins(0, 0, 0, 0)
        self.native = QWidget()
        layout = QVBoxLayout(self.native)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.basic.native)
        self.collapsible = QCollapsible(title)
        self.collapsible.addWidget(self.advanced.native)
        self.collapsible.collapse(animate=False)
        self.collapsible.setVisible(bool(self._lazy))
        self.collapsible.toggleButton().pressed.connect(self.build_advanced)
        self.collapsible.toggled.connect(self._on_toggled)
        self._enabled = True
        layout.addWidget(self.collapsible)

    def build_basic(self) -> None:
        """Create the basic widgets now (once) when the form was made with ``defer=True`` (a dock
        builds them a turn of the event loop after it is shown)."""
        if not self._lazy_basic:
            return
        names, self._lazy_basic = self._lazy_basic, []
        for name in names:
            w = widget_for(self.options[name], label=self.labels.get(name))
            w.enabled = self._enabled
            self.widgets[name] = w
            self.basic.append(w)

    @property
    def built(self) -> bool:
        """Whether the basic widgets exist (always, unless ``defer=True`` and not built yet)."""
        return not self._lazy_basic

    def build_advanced(self) -> None:
        """Create the advanced widgets now (once)."""
        if not self._lazy:
            return
        names, self._lazy = self._lazy, []
        for name in names:
            w = widget_for(self.options[name], label=self.labels.get(name))
            w.enabled = self._enabled
            self.widgets[name] = w
            self.advanced.append(w)

    def _on_toggled(self, expanded: bool) -> None:
        if expanded and self._lazy:
            self.build_advanced()
            self.collapsible.expand(animate=False)  # the height of what was just built

    def __getitem__(self, name: str):
        if name not in self.widgets and name in self._lazy_basic:
            self.build_basic()
        if name not in self.widgets and name in self._lazy:
            self.build_advanced()
        return self.widgets[name]

    def __contains__(self, name: str) -> bool:
        return name in self.options

    def values(self) -> dict:
        """Field values of the widgets (parsed: empty text -> None); schema defaults for the
        advanced options not built yet."""
        return {name: _parse(opt, self.widgets[name].value) if name in self.widgets else opt.default
                for name, opt in self.options.items()}

    def set(self, name: str, value) -> None:
        if name in self.options and value is not None:
            w = self[name]
            if isinstance(w, ComboBox) and value not in w.choices:
                return
            w.value = value

    def build(self, **fixed):
        """An instance of the configuration class from the widgets plus ``fixed`` fields."""
        return self.cls(**{**self.values(), **fixed})

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = bool(value)
        for w in self.widgets.values():
            w.enabled = self._enabled
