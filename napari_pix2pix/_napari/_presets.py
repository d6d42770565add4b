"""Presets in the Train dock (issue 15, item 7): a ``preset`` combo and the duration estimate.

The choices come from the engine (:func:`napari_pix2pix.presets.preset_names` plus ``auto``,
which is :func:`~napari_pix2pix.presets.default_preset` for the dock's device field). Choosing
one fills the model, training and augmentation fields from
:func:`~napari_pix2pix.presets.apply_preset`; every field stays editable afterwards, and the line
under the combo says which preset filled what. The preset's patch size goes to the shared patch
size (the Pair dock's field, and the paired data's patch size when there is one).

Before a new training starts, :meth:`PresetControls.with_estimate` times a few real steps in the
training worker (:func:`~napari_pix2pix.presets.estimate_duration`, never on the GUI thread) and
shows ``estimated ... for N steps`` in the dock. Resume keeps the checkpoint's settings, as the
CLI's ``--resume`` does, and is not estimated.

Resolving ``auto`` with device ``auto`` asks torch which devices exist, so it runs in a helper
worker; until it returns the fields keep the schema defaults, and when it returns it fills only
the fields nobody changed meanwhile.
"""

from __future__ import annotations

import dataclasses

from magicgui.widgets import ComboBox, Container, Label
from qtpy.QtCore import QObject, Signal

from ..presets import PRESETS, apply_preset, default_preset, format_duration, preset_names

AUTO = "auto"
_RESOLVED: dict[str, str] = {}  # device choice -> preset name, once torch was asked (per process)


def preset_choices() -> tuple[str, ...]:
    """What the combo offers: ``auto`` then the engine's presets."""
    return (AUTO, *preset_names())


def preset_tooltip() -> str:
    lines = ["Fills the model and training fields (you can still change each one afterwards).",
             "auto: quick-cpu on a CPU, paper on a CUDA GPU (follows the 'device' field)."]
    lines += [f"{name}: {preset.help}." for name, preset in PRESETS.items()]
    return "\n".join(lines)


def resolve_now(device: str) -> str | None:
    """The preset ``auto`` stands for on ``device``, or None when that needs torch (device
    ``auto`` not resolved yet in this process)."""
    device = str(device or AUTO)
    if device == AUTO:
        return _RESOLVED.get(AUTO)
    return default_preset(device)


def resolve_in_worker(device: str) -> str:
    """:func:`default_preset` for ``device`` (imports torch: call it in a worker)."""
    name = default_preset(device)
    _RESOLVED[str(device or AUTO)] = name
    return name


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "auto" if value is None else str(value)


class _Relay(QObject):
    """Carries the estimate from the training worker to ``deliver`` on the GUI thread (the
    relay lives there, so the signal is queued)."""

    text = Signal(str)

    def __init__(self, deliver):
        super().__init__()
        self._deliver = deliver
        self.text.connect(self._on_text)

    def _on_text(self, text: str) -> None:
        self._deliver(text)


class PresetControls:
    """The preset combo (:attr:`combo`) and its status line (:attr:`status`) for a Train dock.

    :attr:`applied`: the preset that last filled the fields (None until one did);
    :attr:`details`: which fields it filled (also the status line's tooltip);
    :attr:`estimate`: the last estimate text.
    """

    def __init__(self, dock):
        self.dock = dock
        self.combo = ComboBox(label="preset", choices=preset_choices(), value=AUTO, tooltip=preset_tooltip())
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.container = Container(widgets=[self.combo, self.status])
        self.container.native.layout().setContentsMargins(0, 0, 0, 0)
        self.applied: str | None = None
        self.details = ""  # which fields the last preset filled (the status line's tooltip)
        self.estimate = ""
        self._filled = ""
        self._filled_values: dict = {}
        self._relay = _Relay(self._on_estimate)
        self._opened_with = self._values()  # fields at opening: the first auto fill keeps any you changed since
        self.combo.changed.connect(lambda *_: self.choose(self.combo.value))
        self._wire_device()
        dock.state.training_changed.connect(self._on_training)
        self.choose(AUTO, initial=True)

    def _wire_device(self) -> None:
        """Follow the device field once its widget exists (the dock builds its fields a few
        event-loop turns after it shows)."""
        widget = self.dock.train_form.widgets.get("device")
        if widget is not None:
            widget.changed.connect(self._on_device)
        elif not getattr(self.dock.train_form, "built", True) and hasattr(self.dock, "later"):
            self.dock.later(self._wire_device)  # after the queued build of the basic fields

    def _on_training(self, running: bool) -> None:
        """No preset change while training (the fields are locked then too)."""
        from ._common import when_alive

        def lock():
            self.combo.enabled = not running
            self.combo.tooltip = ("training is running: the preset applies to the next run" if running
                                  else preset_tooltip())

        when_alive(lock)()

    # ----------------------------------------------------------------------------- choosing
    def device(self) -> str:
        return str(self.dock.train_form.values().get("device") or AUTO)

    def choose(self, name: str, initial: bool = False) -> None:
        """Fill the fields from preset ``name`` (``auto``: the device's); ``initial``: the fill
        when the dock opens (keeps the paired data's patch size)."""
        if name != AUTO:
            self.fill(name, explicit=True)
            return
        device = self.device()
        resolved = resolve_now(device)
        if resolved is not None:
            self.fill(resolved, auto=device, explicit=not initial)
            return
        from ._common import when_alive
        from ._workers import call

        self.status.value = "preset auto: finding the training device..."
        worker = call(resolve_in_worker, device)
        worker.returned.connect(when_alive(lambda result, d=device, i=initial: self._on_resolved(result, d, i)))
        self.dock.run_in_background(worker)

    def _on_resolved(self, result, device: str, initial: bool) -> None:
        from ._layers import error_text
        from ._workers import Failed

        if isinstance(result, Failed):
            self.status.value = f"preset auto: {error_text(result.error)}"
            return
        if self.combo.value != AUTO or self.device() != device or self.dock.running:
            return  # the choice moved on meanwhile
        self.fill(result, auto=device, explicit=not initial, keep_changed=initial)

    def _on_device(self, *_) -> None:
        if self.combo.value != AUTO or self.dock.running:
            return
        resolved = resolve_now(self.device())
        if resolved is None or resolved != self.applied:
            self.choose(AUTO)

    def fill(self, name: str, *, auto: str | None = None, explicit: bool = True, keep_changed: bool = False) -> None:
        """Put preset ``name``'s values in the dock's fields (``keep_changed``: not the fields
        changed since the dock opened)."""
        dock = self.dock
        changed: list[str] = []
        for form in (dock.model_form, dock.train_form, dock.augment_form):
            current = form.values()
            try:
                before = form.cls(**current)
            except Exception:  # noqa: BLE001 - a field being edited: start from the schema defaults
                before = form.cls()
            after = apply_preset(name, before)
            for field in form.options:
                value = getattr(after, field)
                if value == current.get(field):
                    continue
                if keep_changed and current.get(field) != self._opened_with.get(field, current.get(field)):
                    continue
                _set_field(form, field, value)
                changed.append(f"{field} {_show(value)}")
        shown = {f for form in (dock.model_form, dock.train_form, dock.augment_form) for f in form.options}
        hidden = [k for k, v in PRESETS[name].overrides.items() if k not in shown and k != "crop"
                  and any(hasattr(c, k) and getattr(c, k) != v for c in (dock.model_form.cls(), dock.train_form.cls(),
                                                                         dock.augment_form.cls()))]
        if hidden:  # a preset value this dock cannot show or use: said, never dropped silently
            changed.append(f"not applied (no field in this dock): {', '.join(hidden)}")
        crop = apply_preset(name, dock.train_form.cls()).crop
        if crop != dock.train_form.cls().crop or "crop" in PRESETS[name].overrides:
            if explicit:
                self._set_patch_size(int(crop))
                changed.append(f"patch size {crop}")
            elif dock.state.crop and dock.state.crop != crop:
                changed.append(f"patch size stays {dock.state.crop} from Pair (the preset's is {crop})")
        self.applied = name
        self._filled_values = self._values()
        how = (f"{name} (auto for {'this machine' if auto == AUTO else 'device ' + auto})" if auto else name)
        self._filled = f"filled by preset {how}"
        self.details = (f"{self._filled}: {', '.join(changed)}. You can change any field." if changed
                        else f"{self._filled} (no field changed).")
        self._filled += f" ({len(changed)} field(s), hover for which)" if changed else " (no field changed)"
        self.status.value = self._filled
        self.status.tooltip = f"{self.details}\n{name}: {PRESETS[name].help}."

    def _set_patch_size(self, crop: int) -> None:
        """The shared patch size: the paired data's (patches smaller than it are padded) and the
        Pair dock's field (through ``state.patch_size``)."""
        state = self.dock.state
        signal = getattr(state, "patch_size", None)
        if signal is not None:
            signal.emit(crop)
        if state.train_dataset is not None and state.crop != crop:
            state.crop = crop
            state.dataset_changed.emit(state)

    def _values(self) -> dict:
        d = self.dock
        return {**d.augment_form.values(), **d.train_form.values(), **d.model_form.values()}

    # ----------------------------------------------------------------------------- estimate
    def with_estimate(self, make_trainer, model_config, train_config, dataset, resume=None):
        """``make_trainer`` preceded (in the training worker) by a short timing of the first
        steps of these settings on ``dataset``; the estimate shows in the dock before training
        starts. A resumed training keeps its saved settings and is not estimated."""
        if resume:
            self._on_estimate(f"resuming: the checkpoint's saved settings are kept (preset {self.combo.value} "
                              "and the estimate do not apply).")
            return make_trainer
        preset = f"preset {self.applied or self.combo.value}"
        if self._filled_values and self._values() != self._filled_values:
            preset += ", edited"
        relay = self._relay
        relay.text.emit("estimating the duration from a few timed steps...")

        def estimated_then_trainer():  # the training worker's thread
            from ..errors import Pix2PixError
            from ..presets import estimate_duration

            try:
                est = estimate_duration(model_config, train_config, device=train_config.device,
                                        steps=train_config.steps, dataset=dataset, gui=True)
            except Pix2PixError:
                raise  # the trainer would fail the same way: shown as the training's error
            except Exception as exc:  # noqa: BLE001 - never block training on the estimate; say why
                relay.text.emit(f"no estimated duration ({type(exc).__name__}: {exc}); training anyway.")
            else:
                relay.text.emit(f"estimated {format_duration(est.seconds)} for {est.steps} steps "
                                f"({preset}, {est.seconds_per_step:.3g} s/step on {est.device})")
            return make_trainer()

        return estimated_then_trainer

    def _on_estimate(self, text: str) -> None:
        self.estimate = text
        self.status.value = f"{text}\n{self._filled}" if self._filled else text
        self.dock.show_message(text)


def _set_field(form, name: str, value) -> None:
    """Set one field of an :class:`._form.OptionsForm`. A widget not built yet (collapsed
    section) is not built for it: the value becomes that field's starting value instead."""
    widget = form.widgets.get(name)
    if widget is None:
        form.options[name] = dataclasses.replace(form.options[name], default=value)
        return
    if value is None:
        if type(widget).__name__ in ("LineEdit", "FileEdit"):
            widget.value = ""
        return
    if isinstance(widget, ComboBox) and value not in widget.choices:
        widget.choices = (*widget.choices, value)
    widget.value = value
