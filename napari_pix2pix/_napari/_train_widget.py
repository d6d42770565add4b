"""The "Train" widget: model and optimisation settings, Start / Stop / Resume, live feedback.

Training runs in a napari ``thread_worker`` (:func:`._workers.train_events`) that yields the
engine's event stream; this widget turns events into a loss plot, a napari progress bar,
preview layers updated in place and notifications. The GUI thread never trains.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, Label, PushButton, SpinBox
from qtpy.QtCore import QEvent
from qtpy.QtWidgets import QHBoxLayout, QWidget

from ..config import (DEVICE_CHOICES, DISCRIMINATOR_CHOICES, GAN_MODE_CHOICES, GENERATOR_CHOICES, NORM_CHOICES,
                      ModelConfig, TrainConfig)
from ..errors import Pix2PixError
from ._common import DockWidget
from ._layers import error_text, model_to_display, notify
from ._plot import LossPlot
from ._workers import Failed, ModelReady, ModelSnapshot, Started, TrainingControl, train_events

PREVIEW_NAMES = {"input": "pix2pix preview input", "fake": "pix2pix preview fake",
                 "target": "pix2pix preview target"}
# the Quality view: where the fake differs from the target on the preview patch
QUALITY_NAMES = {"ssim": "pix2pix quality SSIM", "error": "pix2pix quality |error|"}
LOSSES = ("G_GAN", "G_L1", "D_real", "D_fake")
PANELS = {"losses": list(LOSSES), "validation L1": ["val L1"], "validation PSNR (dB)": ["val PSNR"]}


def _preload() -> None:
    """Import the training stack now (the widget is opening) rather than in the worker while
    the GUI is busy: big imports hold the GIL for long stretches."""
    try:
        import torch

        from .. import training  # noqa: F401
        from ..data import augment, sampling  # noqa: F401 - kornia, torch

        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # first optimizer imports torch._dynamo
        import kornia.augmentation  # noqa: F401 - imported by the augmenter on first use
    except Exception:  # noqa: BLE001 - the error shows when training starts
        pass


def receptive_field_text(discriminator: str, layers: int) -> str:
    """The receptive field of a discriminator built from the engine (no training needed)."""
    try:
        from ..models import build_discriminator, geometry

        geo = geometry(build_discriminator(ModelConfig(discriminator=discriminator, discriminator_layers=layers,
                                                       ndf=8, in_channels=1, out_channels=1), init=False))
    except Pix2PixError as exc:
        return error_text(exc)
    if geo.global_pool:
        return "receptive field: the whole image (one score per image)"
    return f"receptive field: {geo.rf} x {geo.rf} px, one score every {geo.jump} px"


class TrainWidget(DockWidget):
    """Generator/discriminator choice, lambda, learning rate and schedule, iterations, batch size,
    device, checkpoint folder; :meth:`start`, :meth:`stop` and :meth:`resume`.

    Public for scripts and tests: :attr:`plot` (its ``series`` hold the curves),
    :attr:`worker` (None when idle), :attr:`last_finished` (the engine's FinishedEvent).
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        m, t = ModelConfig(), TrainConfig()
        self.generator = ComboBox(label="generator", choices=GENERATOR_CHOICES, value=m.generator)
        self.ngf = SpinBox(label="G filters (ngf)", value=m.ngf, min=1, max=512)
        self.discriminator = ComboBox(label="discriminator", choices=DISCRIMINATOR_CHOICES, value=m.discriminator)
        self.d_layers = SpinBox(label="D layers", value=m.discriminator_layers, min=1, max=5)
        self.ndf = SpinBox(label="D filters (ndf)", value=m.ndf, min=1, max=512)
        self.rf_label = Label(value="")
        self.norm = ComboBox(label="norm", choices=NORM_CHOICES, value=m.norm)
        self.gan_mode = ComboBox(label="GAN loss", choices=GAN_MODE_CHOICES, value=t.gan_mode)
        self.lambda_l1 = FloatSpinBox(label="lambda (L1)", value=t.lambda_l1, min=0.0, max=1e4, step=10.0)
        self.lr = FloatSpinBox(label="learning rate", value=t.lr, min=1e-7, max=1.0, step=1e-5)
        self.lr.native.setDecimals(6)
        self.decay = FloatSpinBox(label="decay fraction", value=1 - t.constant_steps / t.steps, min=0.0, max=1.0,
                                  step=0.1, tooltip="the learning rate is constant, then decays linearly to 0 "
                                                    "over this fraction of the iterations (paper: 0.5)")
        self.steps = SpinBox(label="iterations", value=t.steps, min=1, max=10_000_000, step=100)
        self.batch_size = SpinBox(label="batch size", value=t.batch_size, min=1, max=1024)
        self.device = ComboBox(label="device", choices=DEVICE_CHOICES, value=t.device)
        self.devices_label = Label(value="")
        self.preview_every = SpinBox(label="preview every", value=t.preview_every, min=1, max=100_000)
        self.save_every = SpinBox(label="save every", value=t.checkpoint_every, min=0, max=10_000_000,
                                  tooltip="steps between checkpoints (0: at the end only)")
        self.folder = FileEdit(label="checkpoint folder", mode="d", value="")
        self.resume_file = FileEdit(label="resume from", mode="r", filter="*.safetensors", value="")
        self.form = Container(widgets=[
            self.generator, self.ngf, self.discriminator, self.d_layers, self.ndf, self.rf_label, self.norm,
            self.gan_mode, self.lambda_l1, self.lr, self.decay, self.steps, self.batch_size, self.device,
            self.devices_label, self.preview_every, self.save_every, self.folder, self.resume_file])
        self.start_button = PushButton(text="Start")
        self.stop_button = PushButton(text="Stop")
        self.resume_button = PushButton(text="Resume")
        buttons = QWidget()
        buttons.setLayout(QHBoxLayout())
        buttons.layout().setContentsMargins(0, 0, 0, 0)
        for b in (self.start_button, self.stop_button, self.resume_button):
            buttons.layout().addWidget(b.native)
        self.plot = LossPlot(PANELS, log_panels=("losses",))
        self.add(self.form)
        self.add(buttons)
        self.add(self.message)
        self.add(self.plot)

        self.worker = None
        self.control: TrainingControl | None = None
        self.progress = None
        self.last_finished = None
        self.saved: list[str] = []
        self._preview_origin = None
        self._task_id = None
        self._docked = False
        self._launched = False

        self.start_button.changed.connect(lambda *_: self.start())
        self.stop_button.changed.connect(lambda *_: self.stop())
        self.resume_button.changed.connect(lambda *_: self.resume())
        for w in (self.discriminator, self.d_layers):
            w.changed.connect(self._update_rf)
        self.state.dataset_changed.connect(self._on_dataset)
        self._update_rf()
        _preload()
        try:
            from ..devices import describe_devices

            self.devices_label.value = f"found: {describe_devices()}"
        except Exception as exc:  # noqa: BLE001 - informative only
            self.devices_label.value = f"devices unknown ({exc})"
        self._on_dataset(self.state)
        from qtpy.QtWidgets import QApplication

        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # -------------------------------------------------------------------------- settings
    def _update_rf(self, *_):
        self.d_layers.enabled = self.discriminator.value == "patch"
        self.rf_label.value = receptive_field_text(self.discriminator.value, int(self.d_layers.value))

    def _on_dataset(self, state):
        if state.train_dataset is not None and not self.running:
            self.show_message(f"data: {len(state.train_dataset)} training pair(s), patch size {state.crop}"
                              + (f", {len(state.val_dataset)} validation pair(s)" if state.val_dataset else ""))

    def configs(self) -> tuple[ModelConfig, TrainConfig]:
        """The engine configurations for the current settings and the paired data."""
        ds, val = self.state.train_dataset, self.state.val_dataset
        steps = int(self.steps.value)
        model = ModelConfig(generator=self.generator.value, in_channels=ds.in_channels, out_channels=ds.out_channels,
                            ngf=int(self.ngf.value), ndf=int(self.ndf.value), norm=self.norm.value,
                            discriminator=self.discriminator.value, discriminator_layers=int(self.d_layers.value))
        every = int(self.preview_every.value)
        folder = str(self.folder.value) if self.folder.value and str(self.folder.value) not in ("", ".") else None
        train = TrainConfig(steps=steps, decay_steps=int(round(float(self.decay.value) * steps)),
                            batch_size=int(self.batch_size.value), crop=int(self.state.crop), lr=float(self.lr.value),
                            lambda_l1=float(self.lambda_l1.value), gan_mode=self.gan_mode.value,
                            device=self.device.value, log_every=1, preview_every=every,
                            validate_every=every if val is not None and len(val) else 0,
                            checkpoint_every=int(self.save_every.value) if folder else 0, checkpoint_dir=folder)
        return model, train

    @property
    def running(self) -> bool:
        return self.worker is not None

    # --------------------------------------------------------------------------- actions
    def start(self, resume: str | None = None) -> bool:
        """Start training in a worker; False (with a message) when it cannot start."""
        if self.running:
            self.show_message("training is already running. Fix: press Stop first, or wait for it to finish.",
                              "warning", notify_user=True)
            return False
        if self.state.train_dataset is None:
            self.show_message("no paired data yet. Fix: pair an input and a target in the 'Pair data' widget "
                              "first.", "error")
            return False
        try:
            model_config, train_config = self.configs()
        except Pix2PixError as exc:
            self.show_error(exc)
            return False
        out = Path(train_config.checkpoint_dir) / "model.safetensors" if train_config.checkpoint_dir else None
        state = self.state

        def make_trainer():  # runs in the worker thread (imports torch there on first use)
            from ..training import Trainer

            return Trainer(model_config, train_config, state.train_dataset, val_dataset=state.val_dataset,
                           out=out, resume=resume)

        self.control = control = TrainingControl()
        self.last_finished = None
        self.plot.clear()
        self._register_task()
        self.worker = train_events(make_trainer, control)
        self.worker.yielded.connect(self._on_event)
        self.worker.finished.connect(self._on_worker_finished)
        self._launched = False
        from napari.utils import progress

        self.progress = progress(total=train_config.steps, desc="pix2pix training")
        self._set_running(True)
        self.show_message("resuming..." if resume else "starting...")
        # Preview (and followed map) layers are created before the worker runs: adding a layer
        # is slow, updating one in place is fast, so the GUI stays responsive while training.
        self._prepare_previews(model_config, train_config.crop)
        self.state.control = control
        self.state.set_training(True)
        self.state.layers.when_idle(self._launch)
        return True

    def _launch(self) -> None:
        if self.worker is not None and not self._launched:
            self._launched = True
            self.worker.start()

    def resume(self) -> bool:
        """Start from the checkpoint file in 'resume from' (weights, optimisers, step)."""
        path = str(self.resume_file.value or "")
        if not path or path == "." or not Path(path).is_file():
            self.show_message(f"no checkpoint file to resume from ({path or 'none chosen'}). Fix: choose a "
                              ".safetensors file written by a previous training in 'resume from'.", "error")
            return False
        return self.start(resume=path)

    def stop(self) -> bool:
        """Ask the running training to stop after the current step (it saves when a folder is set)."""
        if not self.running:
            self.show_message("nothing to stop: no training is running.", "warning", notify_user=True)
            return False
        self.control.stop()
        self.show_message("stopping after the current step...")
        return True

    def shutdown(self, timeout: float = 60.0) -> bool:
        """Stop training and wait for the worker (closing the widget or the viewer). True when
        the worker ended within ``timeout`` seconds."""
        if not self.running:
            return True
        worker, control = self.worker, self.control
        for signal, slot in ((worker.yielded, self._on_event), (worker.finished, self._on_worker_finished)):
            try:
                signal.disconnect(slot)
            except (TypeError, RuntimeError):
                pass
        control.stop()
        ended = control.wait(timeout) if self._launched else True
        self._finish_progress()
        self.worker = None
        self.state.set_training(False)
        self._update_task(done=True)
        return ended

    # ----------------------------------------------------------------------------- events
    def _on_event(self, event) -> None:
        from ..training import FinishedEvent, PreviewEvent, SavedEvent, StepEvent, ValidationEvent

        if isinstance(event, StepEvent):
            if "skipped" in event.losses:
                return
            for name in LOSSES:
                self.plot.add(name, event.step, event.losses.get(name))
            if self.progress is not None:
                self.progress.update(max(event.step - self.progress.n, 0))
            losses = "  ".join(f"{k} {event.losses[k]:.3f}" for k in LOSSES if k in event.losses)
            self.show_message(f"step {event.step}/{event.total}  {losses}  lr {event.lr:.2e}")
        elif isinstance(event, PreviewEvent):
            self._show_preview(event)
        elif isinstance(event, ValidationEvent):
            self.plot.add("val L1", event.step, event.metrics.get("L1"))
            self.plot.add("val PSNR", event.step, event.metrics.get("PSNR"))
        elif isinstance(event, SavedEvent):
            self.saved.append(event.path)
            notify(f"pix2pix: saved step {event.step} to {event.path}")
        elif isinstance(event, FinishedEvent):
            self.last_finished = event
            how = "stopped" if event.stopped else "finished"
            where = f", saved to {event.path}" if event.path else " (not saved: choose a checkpoint folder to keep it)"
            text = f"training {how} at step {event.step} after {event.seconds:.1f} s{where}."
            self.show_message(text, notify_user=True)
        elif isinstance(event, Started):
            self.state.geometry = event.geometry
            if self.progress is not None and event.step:
                self.progress.update(event.step)
        elif isinstance(event, ModelReady):
            self.state.set_model(event.model, event.path)
        elif isinstance(event, ModelSnapshot):
            self.state.snapshot.emit(event.model)
        elif isinstance(event, Failed):
            self.show_error(event.error)

    def _prepare_previews(self, model_config: ModelConfig, crop: int) -> None:
        """Place the preview layers below the data and queue them (blank) with the receptive-field
        geometry of the discriminator, so followers can lay out their layers too."""
        from ..models import build_discriminator, geometry

        self.state.geometry = geometry(build_discriminator(model_config, init=False))
        gap = max(crop // 8, 4)
        others = [ly for ly in self.viewer.layers if not ly.name.startswith("pix2pix ")]
        bottom = max((float(ly.extent.world[1][-2]) for ly in others), default=0.0)
        self._preview_origin = (bottom + gap, 0.0, crop + gap)
        self.state.preview_layers = dict(PREVIEW_NAMES)
        self.state.preview_anchor = SimpleNamespace(name=PREVIEW_NAMES["input"], scale=(1.0, 1.0),
                                                    translate=(bottom + gap, 0.0))
        channels = {"input": model_config.in_channels, "fake": model_config.out_channels,
                    "target": model_config.out_channels}
        self._put_previews({role: np.zeros((c, crop, crop), np.float32) for role, c in channels.items()})
        self._put_quality(np.ones((crop, crop), np.float32), np.zeros((crop, crop), np.float32))

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
        self._finish_progress()
        self.worker = None
        self._set_running(False)
        self.state.set_training(False)
        self._update_task(done=True)

    def _finish_progress(self) -> None:
        if self.progress is not None:
            try:
                self.progress.close()
            except Exception:  # noqa: BLE001
                pass
            self.progress = None

    def _set_running(self, running: bool) -> None:
        self.start_button.enabled = True  # pressing again gives a message, never a second run
        self.resume_button.enabled = not running
        self.form.enabled = not running

    # --------------------------------------------------------------- closing with the viewer
    def _register_task(self) -> None:
        """Tell napari's window a task runs, so closing the viewer stops (and saves) it first."""
        try:
            import warnings

            from napari.utils.task_status import Status

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # private napari API, used with care
                self._task_id = self.viewer.window._register_task_status(
                    "napari-pix2pix", Status.BUSY, "Pix2Pix training", cancel_callback=self.shutdown)
        except Exception:  # noqa: BLE001 - without it, closeEvent and aboutToQuit still stop training
            self._task_id = None

    def _update_task(self, done: bool) -> None:
        if self._task_id is None:
            return
        try:
            import warnings

            from napari.utils.task_status import Status

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                self.viewer.window._update_task_status(self._task_id, Status.COMPLETED, "Pix2Pix training ended")
        except Exception:  # noqa: BLE001
            pass
        self._task_id = None

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

