"""The Train dock's live plot, drawn with pyqtgraph.

:class:`LossPlot` shows the four training losses as named curves (G cGAN, G L1, D real,
D fake) with exponential smoothing and a log-scale toggle, and the validation metrics (PSNR,
SSIM) as they arrive. Raw values stay in :attr:`LossPlot.series` (what tests and scripts read);
the curves are redrawn at most every 200 ms so a fast training never floods the GUI.
:meth:`LossPlot.load_history` fills the plot from a checkpoint's history (Resume). The
pyqtgraph canvas is built by :meth:`LossPlot.build` (the Train dock imports pyqtgraph in a
worker first, so opening the dock does not wait for it); data added before is kept.
"""

from __future__ import annotations

import math

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QCheckBox, QDoubleSpinBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from ..render import CURVE_COLOURS, LOSS_LABELS, VALIDATION_LABELS

# engine key -> curve name, and each curve's colour: one table with the nodes' curve image
LOSS_NAMES, VALIDATION_NAMES, _COLOURS = LOSS_LABELS, VALIDATION_LABELS, CURVE_COLOURS


def smooth(values: list[float], weight: float) -> list[float]:
    """Exponential moving average (TensorBoard-style, bias-corrected); ``weight`` in [0, 1)."""
    if weight <= 0 or not values:
        return list(values)
    out, last, norm = [], 0.0, 0.0
    for v in values:
        last = weight * last + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out.append(last / norm)
    return out


class LossPlot(QWidget):
    """Losses and validation metrics of a training. :meth:`add` appends one point,
    :meth:`clear` empties every series, :meth:`load_history` replaces them with a checkpoint's
    history, :attr:`smoothing` and :attr:`log_scale` are the two display controls."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.series: dict[str, tuple[list[float], list[float]]] = {
            name: ([], []) for name in (*LOSS_NAMES.values(), *VALIDATION_NAMES.values())}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(QLabel("smoothing"))
        self.smoothing = QDoubleSpinBox()
        self.smoothing.setRange(0.0, 0.99)
        self.smoothing.setSingleStep(0.1)
        self.smoothing.setValue(0.6)
        self.smoothing.setToolTip("exponential moving average of the curves (0: raw values)")
        controls.addWidget(self.smoothing)
        self.log_scale = QCheckBox("log scale")
        self.log_scale.setChecked(True)
        self.log_scale.setToolTip("log10 y axis for the losses (lambda * L1 is much larger than the GAN terms)")
        controls.addWidget(self.log_scale)
        controls.addStretch()
        layout.addLayout(controls)
        # the legend as wrapping text above the plot (an in-plot legend is clipped in a narrow dock)
        self.legend = QLabel("  ".join(f'<span style="color:{_COLOURS[n]}">&#9632; {n}</span>'
                                       for n in (*LOSS_NAMES.values(), *VALIDATION_NAMES.values())))
        self.legend.setWordWrap(True)
        layout.addWidget(self.legend)
        self.placeholder = QLabel("loading the plot...")
        self.placeholder.setMinimumHeight(300)
        self.placeholder.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout.addWidget(self.placeholder)
        self.graphics = None
        self.curves = {}
        self._stages: list = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.redraw)
        self.smoothing.valueChanged.connect(lambda *_: self.redraw())
        self.log_scale.toggled.connect(lambda *_: self.redraw())

    def build(self) -> None:
        """Create the pyqtgraph canvas now (what :meth:`build_later` has not built yet) and draw."""
        if self.graphics is None and not self._stages:
            self._stages = self._build_stages()
        while self._stages:
            self._stages.pop(0)()

    def build_later(self) -> None:
        """Create the canvas one piece per event-loop turn (each piece well under 100 ms): the
        dock stays responsive while pyqtgraph builds its items."""
        if self.graphics is not None or self._stages:
            return
        self._stages = self._build_stages()
        self._next_stage()

    @property
    def building(self) -> bool:
        return bool(self._stages)

    def _next_stage(self) -> None:
        if self._stages:
            try:
                self._stages.pop(0)()
            except RuntimeError:  # the widget was deleted meanwhile
                self._stages = []
                return
            if self._stages:
                QTimer.singleShot(0, self._next_stage)

    def _build_stages(self) -> list:
        import pyqtgraph as pg

        def canvas():
            self.graphics = pg.GraphicsLayoutWidget()
            self.graphics.setMinimumHeight(300)
            # never wider than the dock: the plots shrink with it (no sideways scrolling)
            self.graphics.setMinimumWidth(160)
            self.graphics.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
            self.layout().replaceWidget(self.placeholder, self.graphics)
            self.placeholder.deleteLater()
            self.placeholder = None

        def losses():
            self.losses = self.graphics.addPlot(row=0, col=0, title="losses")
            self.losses.setLabel("bottom", "step")
            for name in LOSS_NAMES.values():
                self.curves[name] = self.losses.plot([], [], name=name, pen=pg.mkPen(_COLOURS[name], width=1.5))

        def validation(row, name, title):
            def stage():
                plot = self.graphics.addPlot(row=row, col=0, title=title)
                self.curves[name] = plot.plot([], [], name=name, pen=pg.mkPen(_COLOURS[name], width=1.5),
                                              symbol="o", symbolSize=4, symbolBrush=_COLOURS[name])
                setattr(self, "psnr" if "PSNR" in name else "ssim", plot)
            return stage

        def finish():
            self.graphics.ci.layout.setRowStretchFactor(0, 3)
            self.graphics.ci.layout.setRowStretchFactor(1, 1)
            self.graphics.ci.layout.setRowStretchFactor(2, 1)
            self.redraw()

        return [canvas, losses, validation(1, "val PSNR", "validation PSNR (dB)"),
                validation(2, "val SSIM", "validation SSIM"), finish]

    # ---------------------------------------------------------------------------- data
    def add(self, name: str, step: float, value) -> None:
        """Append ``(step, value)`` to series ``name`` (an engine key such as ``G_GAN`` or a curve
        name; non-finite values are skipped) and schedule a redraw."""
        name = LOSS_NAMES.get(name, name)
        if name not in self.series or value is None or not math.isfinite(float(value)):
            return
        steps, values = self.series[name]
        steps.append(float(step))
        values.append(float(value))
        if not self._timer.isActive():
            self._timer.start()

    def add_losses(self, step: int, losses: dict) -> None:
        for key, name in LOSS_NAMES.items():
            self.add(name, step, losses.get(key))

    def add_validation(self, step: int, metrics: dict) -> None:
        for key, name in VALIDATION_NAMES.items():
            self.add(name, step, metrics.get(key))

    def clear(self) -> None:
        for steps, values in self.series.values():
            steps.clear()
            values.clear()
        self.redraw()

    def load_history(self, history: list[dict]) -> None:
        """Replace the series with a checkpoint's history (records of ``step``, the losses and
        ``val_<metric>``): the curves of a resumed training start where the file left off."""
        for steps, values in self.series.values():
            steps.clear()
            values.clear()
        for record in history or []:
            step = record.get("step")
            if step is None:
                continue
            self.add_losses(step, record)
            self.add_validation(step, {k[4:]: v for k, v in record.items() if k.startswith("val_")})
        self.redraw()

    def count(self, name: str) -> int:
        return len(self.series[LOSS_NAMES.get(name, name)][0])

    # ---------------------------------------------------------------------------- drawing
    def redraw(self) -> None:
        if self.graphics is None or self._stages:
            return
        weight = float(self.smoothing.value())
        log = self.log_scale.isChecked()
        self.losses.setLogMode(y=log)
        for name, curve in self.curves.items():
            steps, values = self.series[name]
            if name in LOSS_NAMES.values():
                ys = smooth(values, weight)
                if log:  # log10 axis: drop what it cannot show rather than warn
                    kept = [(s, v) for s, v in zip(steps, ys) if v > 0]
                    curve.setData([s for s, _ in kept], [v for _, v in kept])
                    continue
                curve.setData(steps, ys)
            else:
                curve.setData(steps, values)
