"""A small live line plot drawn with QPainter (napari does not ship matplotlib).

:class:`LossPlot` has one panel per group of series (losses; validation metrics) and
exposes its data (:attr:`LossPlot.series`) so tests and scripts can read what is drawn.
"""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

_COLOURS = ["#4e9bd6", "#e8a33d", "#5cb85c", "#d9534f", "#b07cd8", "#8fd3c7"]


class LossPlot(QWidget):
    """Line plot of named series grouped into panels.

    ``panels``: ``{panel title: [series names]}``; ``log_panels``: titles drawn on a log axis
    (losses of very different size, e.g. lambda * L1 next to the GAN terms). :meth:`add` appends
    a point and repaints; :attr:`series` maps each name to its ``(steps, values)`` lists.
    """

    def __init__(self, panels: dict[str, list[str]], log_panels=(), parent=None):
        super().__init__(parent)
        self.panels = {title: list(names) for title, names in panels.items()}
        self.log_panels = set(log_panels)  # panels drawn with a log10 y axis (positive values only)
        self.series: dict[str, tuple[list[float], list[float]]] = {
            name: ([], []) for names in self.panels.values() for name in names}
        self.colours = {name: QColor(_COLOURS[i % len(_COLOURS)]) for i, name in enumerate(self.series)}
        self.setMinimumHeight(220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # ---------------------------------------------------------------------------- data
    def add(self, name: str, step: float, value: float) -> None:
        """Append ``(step, value)`` to series ``name`` (non-finite values are skipped)."""
        if name not in self.series or value is None or not math.isfinite(float(value)):
            return
        steps, values = self.series[name]
        steps.append(float(step))
        values.append(float(value))
        self.update()

    def clear(self) -> None:
        for steps, values in self.series.values():
            steps.clear()
            values.clear()
        self.update()

    def count(self, name: str) -> int:
        return len(self.series[name][0])

    # ---------------------------------------------------------------------------- drawing
    def paintEvent(self, event):  # noqa: N802 - Qt name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#262930"))
        n = max(len(self.panels), 1)
        height = self.height() / n
        for k, (title, names) in enumerate(self.panels.items()):
            self._panel(painter, QRectF(0, k * height, self.width(), height), title, names)
        painter.end()

    def _panel(self, p: QPainter, rect: QRectF, title: str, names: list[str]) -> None:
        left, right, top, bottom = 46, 8, 18, 18
        plot = QRectF(rect.left() + left, rect.top() + top, rect.width() - left - right,
                      rect.height() - top - bottom)
        text = QColor("#d0d0d0")
        p.setPen(QPen(QColor("#5a5f69"), 1))
        p.drawRect(plot)
        log = title in self.log_panels

        def points(name):
            steps, values = self.series[name]
            if not log:
                return steps, values
            kept = [(s, math.log10(v)) for s, v in zip(steps, values) if v > 0]
            return [s for s, _ in kept], [v for _, v in kept]

        xs = [x for name in names for x in points(name)[0]]
        ys = [y for name in names for y in points(name)[1]]
        # legend
        p.setPen(text)
        p.drawText(QPointF(rect.left() + 4, rect.top() + 13), title + (" (log)" if title in self.log_panels else ""))
        x = rect.left() + 8 + p.fontMetrics().horizontalAdvance(title + (" (log)" if log else "")) + 12
        for name in names:
            p.setPen(QPen(self.colours[name], 2))
            p.drawLine(QPointF(x, rect.top() + 9), QPointF(x + 12, rect.top() + 9))
            p.setPen(text)
            p.drawText(QPointF(x + 15, rect.top() + 13), name)
            x += 22 + p.fontMetrics().horizontalAdvance(name)
        if not xs:
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "no data yet")
            return
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if x1 == x0:
            x1 = x0 + 1
        if y1 == y0:
            y0, y1 = y0 - 0.5, y1 + 0.5
        pad = (y1 - y0) * 0.05
        y0, y1 = y0 - pad, y1 + pad

        def to_px(xv: float, yv: float) -> QPointF:
            return QPointF(plot.left() + (xv - x0) / (x1 - x0) * plot.width(),
                           plot.bottom() - (yv - y0) / (y1 - y0) * plot.height())

        p.setPen(text)
        top_label, bottom_label = (10 ** y1, 10 ** y0) if log else (y1, y0)
        p.drawText(QRectF(rect.left(), plot.top() - 6, left - 4, 14), Qt.AlignmentFlag.AlignRight, f"{top_label:.3g}")
        p.drawText(QRectF(rect.left(), plot.bottom() - 8, left - 4, 14), Qt.AlignmentFlag.AlignRight,
                   f"{bottom_label:.3g}")
        p.drawText(QRectF(plot.left(), plot.bottom() + 2, 80, 14), Qt.AlignmentFlag.AlignLeft, f"{x0:g}")
        p.drawText(QRectF(plot.right() - 80, plot.bottom() + 2, 80, 14), Qt.AlignmentFlag.AlignRight,
                   f"step {x1:g}")
        for name in names:
            steps, values = points(name)
            if not steps:
                continue
            p.setPen(QPen(self.colours[name], 1.5))
            if len(steps) == 1:
                pt = to_px(steps[0], values[0])
                p.drawEllipse(pt, 2, 2)
                continue
            path = QPainterPath(to_px(steps[0], values[0]))
            for s, v in zip(steps[1:], values[1:]):
                path.lineTo(to_px(s, v))
            p.drawPath(path)
