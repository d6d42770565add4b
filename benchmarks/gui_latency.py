"""Longest Qt event-loop stall in a napari viewer while training runs in a napari worker.

    python benchmarks/gui_latency.py          # unet_256, 256^2, batch 1, ~20 steps with previews
    python benchmarks/gui_latency.py --quick  # tiny model, a few steps (seconds)

A QTimer fires every 10 ms on the GUI thread; the largest gap between its ticks minus 10 ms is
the stall the user would feel. Training runs as the napari widget runs it:
``napari.qt.threading.thread_worker`` over ``Trainer.events()``, previews pushed into an image
layer from the ``yielded`` signal. The idle viewer is measured first, as a reference.
Needs a display: without ``DISPLAY`` the script re-runs itself under ``xvfb-run`` (never use
QT_QPA_PLATFORM=offscreen with napari: vispy crashes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

import _common  # noqa: F401
from _common import machine_line, table


def measure(args) -> list:
    import numpy as np
    import napari
    from napari.qt.threading import thread_worker
    from qtpy.QtCore import QEventLoop, QTimer

    sys.path.insert(0, str(_common.REPO / "tests"))
    from _helpers import nuclei_2d

    from napari_pix2pix.config import DataConfig, ModelConfig, TrainConfig
    from napari_pix2pix.data.sources import from_arrays
    from napari_pix2pix.training import PreviewEvent, StepEvent, Trainer

    viewer = napari.Viewer(show=True)
    layer = viewer.add_image(np.zeros((args.crop, args.crop), np.float32), name="preview")
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def run_loop(seconds=None, worker=None):
        loop = QEventLoop()
        if worker is not None:
            worker.finished.connect(loop.quit)
            worker.start()
        if seconds is not None:
            QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    def gaps():
        g = np.diff(np.asarray(ticks)) * 1000
        ticks.clear()
        return g

    timer.start()
    run_loop(seconds=0.5)  # let the window settle
    gaps()
    run_loop(seconds=args.idle)
    idle = gaps()

    image, labels = nuclei_2d()
    dataset = from_arrays(labels, image, DataConfig())
    mc = ModelConfig(generator=args.generator, ngf=args.ngf, ndf=args.ngf, in_channels=1, out_channels=1)
    tc = TrainConfig(steps=args.steps, crop=args.crop, batch_size=1, device="cpu", preview_every=args.preview_every,
                     log_every=1)
    trainer = Trainer(mc, tc, dataset)
    steps = []

    @thread_worker
    def train():
        yield from trainer.events()

    def on_event(event):
        if isinstance(event, StepEvent):
            steps.append(event.seconds)
        elif isinstance(event, PreviewEvent):
            layer.data = event.fake[0]

    worker = train()
    worker.yielded.connect(on_event)
    run_loop(worker=worker)
    busy = gaps()
    timer.stop()
    viewer.close()

    def row(name, g, extra=""):
        stall = max(float(g.max()) - 10.0, 0.0) if len(g) else float("nan")
        return [name, len(g), float(np.median(g)) if len(g) else float("nan"),
                float(np.percentile(g, 99)) if len(g) else float("nan"), stall, int((g > 60).sum()), extra]

    return [row("idle viewer", idle),
            row("training in thread_worker", busy,
                f"{len(steps)} steps, median {np.median(steps):.2f} s/step, previews every {args.preview_every}")]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--no-xvfb", action="store_true", help="use the current display as it is")
    args = p.parse_args(argv)
    if not os.environ.get("DISPLAY") and not args.no_xvfb:
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            sys.exit("no DISPLAY and no xvfb-run: run under a display or install xvfb")
        os.environ.pop("QT_QPA_PLATFORM", None)
        cmd = [xvfb, "-a", "-s", "-screen 0 1280x1024x24", sys.executable, __file__, "--no-xvfb", *(argv or sys.argv[1:])]
        sys.exit(subprocess.call(cmd))
    args.generator, args.ngf, args.crop, args.preview_every, args.idle = "unet_256", 64, 256, 5, 2.0
    if args.quick:
        args.generator, args.ngf, args.crop, args.preview_every, args.idle, args.steps = "unet_32", 8, 32, 2, 0.5, 4
    print(machine_line())
    rows = measure(args)
    title = (f"Qt event-loop latency (QTimer every 10 ms) in a napari viewer under {os.environ.get('DISPLAY')}, "
             f"training {args.generator} ngf {args.ngf}, {args.crop}^2, batch 1, {args.steps} steps")
    print(table(["phase", "ticks", "median tick ms", "p99 tick ms", "longest stall ms", "ticks > 60 ms", "note"],
                rows, title))


if __name__ == "__main__":
    main()
