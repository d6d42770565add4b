"""The "Train" widget: model and optimisation settings, Start / Stop / Resume, live feedback.

Every option comes from the schema (:class:`._form.OptionsForm` over ``ModelConfig`` and
``TrainConfig``): basic ones visible, advanced ones collapsed. Training runs in a napari
``thread_worker`` (:func:`._workers.start_training`) that imports torch, builds the trainer and
yields the engine's event stream; this widget turns events into an in-dock progress bar, a
loss plot, preview layers updated in place and messages. The GUI thread never trains, never
imports torch and never builds a network.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from magicgui.widgets import Container, FileEdit, Label, PushButton
from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QHBoxLayout, QWidget

from ..config import AugmentConfig, ModelConfig, TrainConfig
from ..errors import ConfigError, Pix2PixError
from ._common import Coalescer, DockWidget, ProgressLine, info_label, set_enabled, when_alive
from ._form import OptionsForm
from ._layers import error_text, helper_name, is_helper, model_to_display, notify, remove_helpers
from ._plot import LossPlot
from ._presets import PresetControls
from ._workers import Failed, ModelReady, ModelSnapshot, Started, TrainingControl, call, start_training

PREVIEW_NAMES = {"input": helper_name("preview input"), "fake": helper_name("preview fake"),
                 "target": helper_name("preview target")}
# the Quality view: where the fake differs from the target on the preview patch
QUALITY_NAMES = {"ssim": helper_name("quality SSIM"), "error": helper_name("quality |error|")}
LOSSES = ("G_GAN", "G_L1", "D_real", "D_fake")
# fields the dock fills itself: channel counts from the paired data, the patch size from Pair
MODEL_FIXED = ("in_channels", "out_channels")
TRAIN_FIXED = ("crop",)
# shown outside the advanced section while the schema has no levels yet
MODEL_BASIC = ("generator", "discriminator", "discriminator_layers")
TRAIN_BASIC = ("steps", "batch_size", "lr", "lambda_l1", "device", "checkpoint_dir")


def receptive_field_text(discriminator: str, layers: int) -> str:
    """The receptive field of a discriminator built from the engine (imports torch: call it in a
    worker)."""
    try:
        from ..models import build_discriminator, geometry

        geo = geometry(build_discriminator(ModelConfig(discriminator=discriminator, discriminator_layers=layers,
                                                       ndf=8, in_channels=1, out_channels=1), init=False))
    except Pix2PixError as exc:
        return error_text(exc)
    if geo.global_pool:
        return "receptive field: the whole image (one score per image)"
    return f"receptive field: {geo.rf} x {geo.rf} px, one score every {geo.jump} px"


def found_devices() -> str:
    """What devices torch finds; also imports pyqtgraph for the plot (worker thread: opening
    the dock does not wait for either import)."""
    import pyqtgraph  # noqa: F401

    from ..devices import describe_devices

    return f"found: {describe_devices()}"


def checkpoint_history(path: str) -> list:
    """The training history stored in a checkpoint file (read from its header only)."""
    import json

    from ..checkpoint import read_header

    _, metadata = read_header(path)
    try:
        return list(json.loads(metadata.get("history", "[]")) or [])
    except ValueError:
        return []


class _WindowCloseFilter(QObject):
    """Stops training when the top-level window closes (public Qt route: an event filter)."""

    def __init__(self, owner):
        super().__init__(owner)
        self.owner = owner

    def eventFilter(self, obj, event):  # noqa: N802 - Qt name
        if event.type() == QEvent.Type.Close:
            self.owner.shutdown()
        return False


class TrainWidget(DockWidget):
    """Model and training options from the schema, checkpoint folder, :meth:`start`,
    :meth:`stop` and :meth:`resume`.

    Public for scripts and tests: :attr:`model_form` and :attr:`train_form` (widgets by field
    name, also reachable as attributes such as ``widget.steps``), :attr:`plot` (its ``series``
    hold the curves), :attr:`progress_line`, :attr:`worker` (None when idle),
    :attr:`last_finished` (the engine's FinishedEvent).
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        # the option widgets are built in later event-loop turns (opening the dock stays quick);
        # reading one (widget.steps) builds its form at once
        self.model_form = OptionsForm(ModelConfig, exclude=MODEL_FIXED, basic=MODEL_BASIC, title="advanced model",
                                      defer=True)
        self.train_form = OptionsForm(TrainConfig, exclude=TRAIN_FIXED, basic=TRAIN_BASIC,
                                      title="advanced training", promote=("checkpoint_dir",), defer=True)
        self.augment_form = OptionsForm(AugmentConfig, title="augmentation", collapse_all=True)
        self.rf_label = info_label("receptive field: ...")
        self.devices_label = info_label("")
        self.resume_file = FileEdit(label="resume from", mode="r", filter="*.safetensors", value="",
                                    tooltip="a checkpoint written by a previous training (weights, optimisers, "
                                            "step and loss history)")
        self.start_button = PushButton(text="Start")
        self.stop_button = PushButton(text="Stop")
        self.resume_button = PushButton(text="Resume")
        self.clean_button = PushButton(text="Remove helper layers",
                                       tooltip="remove every 'pix2pix: ...' layer (previews, maps, boxes)")
        buttons = QWidget()
        buttons.setLayout(QHBoxLayout())
        buttons.layout().setContentsMargins(0, 0, 0, 0)
        for b in (self.start_button, self.stop_button, self.resume_button):
            buttons.layout().addWidget(b.native)
        self.progress_line = ProgressLine("step")
        self.plot = LossPlot()
        self.presets = PresetControls(self)  # issue 15 item 7: preset combo, estimate before training
        self.preset = self.presets.combo
        self.add(self.presets.container)
        self.add(self.model_form.native)
        self.add(self.rf_label)
        self.add(self.train_form.native)
        resume = Container(widgets=[self.resume_file])  # a Container shows the label
        resume.native.layout().setContentsMargins(0, 0, 0, 0)
        self.add(resume)
        self.add(self.augment_form.collapsible)
        self.add(self.devices_label)
        self.add(buttons)
        self.add(self.progress_line)
        self.add(self.message)
        self.add(self.plot)
        self.add(self.clean_button)

        self.worker = None
        self.control: TrainingControl | None = None
        self.progress = None
        self.last_finished = None
        self.saved: list[str] = []
        self.rf_worker = None
        self._preview_origin = None
        self._docked = False
        self._resuming = False
        self._close_filter = _WindowCloseFilter(self)
        self._watched_window = None
        # at most 10 step readouts and 4 preview updates a second reach the GUI (the newest wins)
        self._steps = Coalescer(self._show_step, 0.1, self)
        self._threads_after: int | None = None  # threads=auto's count after its last change this run
        self._previews = Coalescer(self._show_preview, 0.25, self)

        self.start_button.changed.connect(lambda *_: self.start())
        self.stop_button.changed.connect(lambda *_: self.stop())
        self.resume_button.changed.connect(lambda *_: self.resume())
        self.clean_button.changed.connect(lambda *_: self.remove_helpers())
        self.resume_file.changed.connect(self._update_buttons)
        self.later(self._build_model_form)
        self.later(self.train_form.build_basic)
        self.state.dataset_changed.connect(self._on_dataset)
        self._update_rf()
        devices = call(found_devices)
        devices.returned.connect(when_alive(self._on_devices))
        self.run_in_background(devices)
        self._on_dataset(self.state)
        from qtpy.QtWidgets import QApplication

        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def _build_model_form(self) -> None:
        if self.model_form.built and self.__dict__.get("_rf_wired"):
            return
        self.model_form.build_basic()
        self._rf_wired = True
        for name in ("discriminator", "discriminator_layers"):
            if name in self.model_form:
                self.model_form[name].changed.connect(self._update_rf)
        self._update_rf_enabled()

    def __getattr__(self, name):
        # the option widgets by field name (widget.steps, widget.generator, ...)
        if name.startswith("_"):
            raise AttributeError(name)
        for form in ("model_form", "train_form", "augment_form"):
            f = self.__dict__.get(form)
            if f is not None and name in f:
                return f[name]
        raise AttributeError(name)

    # -------------------------------------------------------------------------- settings
    def _update_rf_enabled(self) -> None:
        widgets = self.model_form.widgets
        if "discriminator_layers" in widgets and "discriminator" in widgets:
            widgets["discriminator_layers"].enabled = widgets["discriminator"].value == "patch"

    def _update_rf(self, *_):
        self._update_rf_enabled()
        values = self.model_form.values()
        self.rf_label.value = "receptive field: ..."
        worker = call(receptive_field_text, values.get("discriminator"), int(values.get("discriminator_layers")))
        self.rf_worker = worker
        worker.returned.connect(when_alive(lambda text, w=worker: self._on_rf(w, text)))
        self.run_in_background(worker)

    def _on_rf(self, worker, text) -> None:
        if worker is self.rf_worker:  # the newest request only
            self.rf_label.value = error_text(text.error) if isinstance(text, Failed) else text
            self.rf_worker = None

    def _on_devices(self, text) -> None:
        self.devices_label.value = error_text(text.error) if isinstance(text, Failed) else text
        self.plot.build_later()  # pyqtgraph is imported now (in the worker): one plot per event-loop turn

    @property
    def idle(self) -> bool:
        return (super().idle and not self.plot.building and not self._steps.busy
                and not self._previews.busy)

    def _on_dataset(self, state):
        if not self.running:
            if state.train_dataset is not None:
                self.show_message(f"data: {len(state.train_dataset)} training pair(s), patch size {state.crop}"
                                  + (f", {len(state.val_dataset)} validation pair(s)" if state.val_dataset else ""))
            elif state.dataset_error:
                self.show_message(f"no paired data: {state.dataset_error}", "warning")
        self._update_buttons()

    def _update_buttons(self, *_) -> None:
        running = self.running
        has_data = self.state.train_dataset is not None
        no_data = ("no paired data: pair an input and a target in the 'Pair data' widget first"
                   + (f" (last pairing failed: {self.state.dataset_error})" if self.state.dataset_error else ""))
        set_enabled(self.start_button, has_data and not running,
                    "training is running: press Stop first" if running else no_data,
                    "train a new model on the paired data")
        set_enabled(self.stop_button, running, "nothing is training", "stop after the current step (and save)")
        resume_path = str(self.resume_file.value or "")
        has_file = bool(resume_path) and resume_path != "." and Path(resume_path).is_file()
        why = ("training is running: press Stop first" if running else no_data if not has_data
               else "choose a checkpoint file in 'resume from'")
        set_enabled(self.resume_button, has_data and not running and has_file, why,
                    "continue the training stored in 'resume from'")
        self.model_form.enabled = self.train_form.enabled = self.augment_form.enabled = not running
        self.resume_file.enabled = not running

    def configs(self) -> tuple[ModelConfig, TrainConfig]:
        """The engine configurations for the current settings and the paired data."""
        ds, val = self.state.train_dataset, self.state.val_dataset
        model = self.model_form.build(in_channels=ds.in_channels, out_channels=ds.out_channels)
        values = self.train_form.values()
        fixed = {"crop": int(self.state.crop), "augment": self.augment_form.build()}
        if "log_every" not in self.train_form:
            fixed["log_every"] = 1  # every step in the history, so a resumed plot is complete
        if not values.get("validate_every") and val is not None and len(val):
            fixed["validate_every"] = values.get("preview_every") or 1  # validation on when there is a split
        train = self.train_form.cls(**{**values, **fixed})
        return model, train

    def checkpoint_folder(self) -> str:
        """The chosen checkpoint folder; refuses an empty or missing one (never the working
        directory by accident)."""
        value = self.train_form.values().get("checkpoint_dir")
        if not value:
            raise ConfigError("no checkpoint folder is chosen, so the model would not be saved anywhere you chose.",
                              "choose a folder in 'checkpoint dir' (it keeps model.safetensors and the checkpoints).")
        if not Path(value).is_dir():
            raise ConfigError(f"checkpoint folder {value} does not exist.", "create it, or choose an existing folder.")
        return value

    def confirm_replace(self, path: Path) -> bool:
        """Ask before a new run replaces an existing model file (the napari face's --overwrite)."""
        from qtpy.QtWidgets import QMessageBox

        answer = QMessageBox.question(self.native, "Replace model?",
                                      f"{path} already exists. Start a new training and replace it when it saves?")
        return answer == QMessageBox.StandardButton.Yes

    @property
    def running(self) -> bool:
        return self.worker is not None

    # --------------------------------------------------------------------------- actions
    def start(self, resume: str | None = None) -> bool:
        """Start training in a worker; False (with a message) when it cannot start."""
        if self.running:
            self.show_message("training is already running. Fix: press Stop first, or wait for it to finish.",
                              "warning")
            return False
        if self.state.train_dataset is None:
            why = f" (the last pairing failed: {self.state.dataset_error})" if self.state.dataset_error else ""
            self.show_message(f"no paired data yet{why}. Fix: pair an input and a target in the 'Pair data' "
                              "widget first.", "error")
            return False
        try:
            folder = self.checkpoint_folder()
            model_config, train_config = self.configs()
        except Pix2PixError as exc:
            self.show_error(exc)
            return False
        out = Path(folder) / "model.safetensors"
        if not resume and out.exists() and not self.confirm_replace(out):  # issue 17: never replace unasked
            self.show_message(f"not started: {out} was kept. Fix: choose another checkpoint folder, or "
                              "Resume from it.", "warning")
            return False
        state = self.state

        def make_trainer():  # runs in the worker thread (imports torch there)
            from ..training import Trainer

            return Trainer(model_config, train_config, state.train_dataset, val_dataset=state.val_dataset,
                           out=out, resume=resume)

        make_trainer = self.presets.with_estimate(make_trainer, model_config, train_config, state.train_dataset,
                                                  resume=resume)
        self.control = control = TrainingControl()
        self._steps.drop()
        self._previews.drop()
        self.last_finished = None
        self._resuming = bool(resume)
        if not resume:
            self.plot.clear()
        self._model_config, self._crop = model_config, train_config.crop
        self.worker = start_training(make_trainer, control)
        self._slots = (when_alive(self._on_event), when_alive(self._on_worker_finished))
        self.worker.yielded.connect(self._slots[0])
        self.worker.errored.connect(when_alive(lambda exc: self.show_error(exc, notify_user=False)))  # notified
        self.worker.finished.connect(self._slots[1])
        # the in-dock progress line only: napari's progress bar runs processEvents() on every
        # update (nested event loops, long stalls)
        self.progress_line.start(train_config.steps)
        self._update_buttons()
        self.show_message("resuming..." if resume else "starting...")
        self.state.control = control
        self.state.set_training(True)
        self._watch_window()
        self.worker.start()
        return True

    def resume(self) -> bool:
        """Start from the checkpoint file in 'resume from' (weights, optimisers, step, history)."""
        path = str(self.resume_file.value or "")
        if not path or path == "." or not Path(path).is_file():
            self.show_message(f"no checkpoint file to resume from ({path or 'none chosen'}). Fix: choose a "
                              ".safetensors file written by a previous training in 'resume from'.", "error")
            return False
        return self.start(resume=path)

    def stop(self) -> bool:
        """Ask the running training to stop after the current step (and save)."""
        if not self.running:
            self.show_message("nothing to stop: no training is running.", "warning")
            return False
        self.control.stop()
        self.show_message("stopping after the current step...")
        return True

    def remove_helpers(self) -> int:
        n = remove_helpers(self.viewer)
        self.show_message(f"removed {n} helper layer(s).")
        return n

    def shutdown(self, timeout: float = 60.0) -> bool:
        """Stop training and wait for the worker (closing the widget or the viewer). True when
        the worker ended within ``timeout`` seconds."""
        if not self.running:
            return True
        worker, control = self.worker, self.control
        for signal, slot in zip((worker.yielded, worker.finished), self._slots):
            try:
                signal.disconnect(slot)
            except (TypeError, RuntimeError):
                pass
        worker.quit()  # TrainingWorker.quit: stop after the current step and save
        ended = control.wait(timeout)
        self._finish_progress()
        self.worker = None
        self.state.set_training(False)
        return ended

    # ----------------------------------------------------------------------------- events
    def _on_event(self, event) -> None:
        from ..training import FinishedEvent, PreviewEvent, SavedEvent, StepEvent, ThreadsEvent, ValidationEvent

        if isinstance(event, StepEvent):
            if "skipped" in event.losses:
                return
            if getattr(event, "fresh", True):  # between two loss readouts the values repeat
                self.plot.add_losses(event.step, event.losses)
            self._steps.put(event)
        elif isinstance(event, PreviewEvent):
            self._previews.put(event)
        elif isinstance(event, ValidationEvent):
            self.plot.add_validation(event.step, event.metrics)
            self._check_collapse(event)
        elif isinstance(event, SavedEvent):
            self.saved.append(event.path)
        elif isinstance(event, ThreadsEvent):  # threads=auto followed the load; later step lines keep the count
            self._threads_after = event.after
            self.show_message(event.line)
        elif isinstance(event, FinishedEvent):
            self._steps.flush()
            self._previews.flush()
            self.last_finished = event
            how = "stopped" if event.stopped else "finished"
            where = f", saved to {event.path}" if event.path else ""
            self.show_message(f"training {how} at step {event.step} after {event.seconds:.1f} s{where}.",
                              notify_user=True)
        elif isinstance(event, Started):
            self._on_started(event)
        elif isinstance(event, ModelReady):
            self.state.set_model(event.model, event.path)
        elif isinstance(event, ModelSnapshot):
            self.state.snapshot.emit(event.model)
        elif isinstance(event, Failed):
            self.show_error(event.error)

    def _show_step(self, event) -> None:
        self.progress_line.update(event.step, event.total)
        losses = "  ".join(f"{k} {event.losses[k]:.3f}" for k in LOSSES if k in event.losses)
        threads = f"  threads {self._threads_after}" if self._threads_after else ""
        self.show_message(f"step {event.step}/{event.total}  {losses}  lr {event.lr:.2e}{threads}")

    def _check_collapse(self, event) -> None:
        """Issue 20: a validation output gone flat is said once per run, in the dock and as a
        notification (the engine's CollapseGuard also logs it)."""
        from ..metrics import CollapseGuard

        if self.__dict__.get("_collapse") is None:
            self._collapse = CollapseGuard(
                notify=lambda text: self.show_message(text, level="warning", notify_user=True))
        self._collapse(event)

    def _on_started(self, event: Started) -> None:
        """The trainer exists (built in the worker): show its history (Resume), queue the preview
        layers, and let the worker train once they exist."""
        self._collapse = None  # one collapse warning per run
        self._threads_after = None  # set by a ThreadsEvent of this run
        self.state.geometry = event.geometry
        self.plot.build_later()
        self.progress_line.start(event.total, event.step)
        if self._resuming:
            self.plot.load_history(event.history)
        self._prepare_previews(self._model_config, self._crop)
        self.state.layers.when_idle(self.control.ready.set)

    def _prepare_previews(self, model_config: ModelConfig, crop: int) -> None:
        """Place the preview layers below the data and queue them (blank), so followers
        (Discriminator) can lay out their layers too. Adding a layer is slow, updating one in
        place is fast: they exist before the first step."""
        gap = max(crop // 8, 4)
        others = [ly for ly in self.viewer.layers if not is_helper(ly)]
        bottom = max((float(ly.extent.world[1][-2]) for ly in others), default=0.0)
        self._preview_origin = (bottom + gap, 0.0, crop + gap)
        self.state.preview_layers = dict(PREVIEW_NAMES)
        self.state.preview_anchor = SimpleNamespace(name=PREVIEW_NAMES["input"], scale=(1.0, 1.0),
                                                    translate=(bottom + gap, 0.0))
        channels = {"input": model_config.in_channels, "fake": model_config.out_channels,
                    "target": model_config.out_channels}
        self._put_previews({role: np.zeros((c, crop, crop), np.float32) for role, c in channels.items()})
        self._put_quality(np.ones((crop, crop), np.float32), np.zeros((crop, crop), np.float32))
        self.state.set_training(True)  # followers lay out their preview layers now (geometry is known)

    def _put_previews(self, images: dict) -> None:
        y0, x0, step = self._preview_origin
        for k, role in enumerate(("input", "fake", "target")):
            data = model_to_display(images[role])
            kw = {} if data.ndim == 3 else {"contrast_limits": (-1.0, 1.0), "colormap": "gray"}
            self.state.layers.put(PREVIEW_NAMES[role], data, translate=(y0, x0 + k * step), **kw)

    def _put_quality(self, ssim: np.ndarray, error: np.ndarray) -> None:
        """SSIM (1 = same structure) and absolute error beside the previews, updated in place."""
        y0, x0, step = self._preview_origin
        self.state.layers.put(QUALITY_NAMES["ssim"], ssim, translate=(y0, x0 + 3 * step), colormap="viridis",
                              contrast_limits=(0.0, 1.0))
        self.state.layers.put(QUALITY_NAMES["error"], error, translate=(y0, x0 + 4 * step), colormap="magma",
                              contrast_limits=(0.0, 0.5))

    def _show_preview(self, event) -> None:
        """Update the preview and quality layers in place and tell the followers (Discriminator)."""
        if self._preview_origin is None:
            self._preview_origin = (0.0, 0.0, event.source.shape[-1] + 8)
        self._put_previews({"input": event.source, "fake": event.fake, "target": event.target})
        if event.ssim is not None:
            self._put_quality(event.ssim, event.error)
        self.state.last_preview = event
        self.state.preview.emit(event)

    def _on_worker_finished(self) -> None:
        self._steps.flush()
        self._previews.flush()
        self._finish_progress()
        self.worker = None
        self.state.set_training(False)
        self._update_buttons()

    def _finish_progress(self) -> None:
        self.progress_line.finish()
        if self.progress is not None:
            try:
                self.progress.close()
            except Exception:  # noqa: BLE001
                pass
            self.progress = None

    # --------------------------------------------------------------- closing with the viewer
    def _watch_window(self) -> None:
        import weakref

        window = self.window()
        watched = self._watched_window() if self._watched_window is not None else None
        if window is not None and window is not self and window is not watched:
            window.installEventFilter(self._close_filter)
            self._watched_window = weakref.ref(window)  # never keep the viewer's window alive

    def closeEvent(self, event):  # noqa: N802 - Qt name
        self.shutdown()
        super().closeEvent(event)

    def event(self, event):
        # napari's dock close button reparents the widget to None: stop training then.
        if event.type() == QEvent.Type.ParentChange:
            if self.parent() is not None:
                self._docked = True
            elif self._docked and self.running:
                self.shutdown()
        return super().event(event)
