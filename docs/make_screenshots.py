"""Screenshots of the four napari widgets in use (docs/screenshots/*.png).

Run from the repository root::

    python docs/make_screenshots.py                 # starts a virtual display if none exists
    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/make_screenshots.py

It opens napari with the 2-D nuclei sample, docks the widgets (as the demo does), pairs
labels -> image, trains a small model for a few hundred CPU steps, translates the labels with
it and shows the discriminator's maps, saving one screenshot per widget with the window at
1366x768 and at 1920x1080 (``<widget>-<width>x<height>.png``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def ensure_display():
    """A virtual X display (pyvirtualdisplay, which pytest-xvfb installs) when there is none."""
    if os.environ.get("DISPLAY") or sys.platform in ("darwin", "win32"):
        return None
    from pyvirtualdisplay import Display

    display = Display(visible=False, size=(1920, 1080), color_depth=24)
    display.start()
    return display


def wait(predicate, timeout: float = 600.0) -> None:
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    end = time.monotonic() + timeout
    while not predicate():
        app.processEvents()
        time.sleep(0.01)
        if time.monotonic() > end:
            raise TimeoutError("timed out waiting for the widgets")
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)


def show_only(viewer, names) -> None:
    for layer in viewer.layers:
        layer.visible = layer.name in names


def shot(viewer, widget, path: Path) -> None:
    """Bring ``widget``'s dock to the front and save a screenshot of the whole window."""
    for inner in viewer.window.dock_widgets.values():
        if inner is widget:
            dock = widget.parent()
            while dock is not None and not hasattr(dock, "setFloating"):
                dock = dock.parent()
            if dock is not None:
                dock.show()
                dock.raise_()
    wait(lambda: True)
    viewer.window.screenshot(str(path), canvas_only=False)
    print("wrote", path)


SIZES = ((1366, 768), (1920, 1080))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "screenshots")
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    display = ensure_display()
    try:
        import napari

        from napari_pix2pix._napari.demo import dock_widgets, prefill

        viewer = napari.Viewer(title="napari-pix2pix", show=True)
        viewer.window.resize(*SIZES[0])
        viewer.open_sample("napari-pix2pix", "nuclei-2d")
        widgets = dock_widgets(viewer)
        folder = Path(tempfile.mkdtemp(prefix="pix2pix-shots-"))
        prefill(widgets, "nuclei-2d", {"steps": args.steps, "preview_every": 20, "checkpoint_dir": str(folder)})
        pair, train = widgets["Pair data"], widgets["Train"]
        disc, trans = widgets["Discriminator"], widgets["Translate"]
        wait(lambda: all(w.idle for w in widgets.values()))

        # 1. pairing: report and example patches (in a worker)
        assert pair.pair(), pair.message.text()
        wait(lambda: pair.idle)
        assert pair.state.train_dataset is not None, pair.message.text()
        # 2. training: progress, loss plot, previews (and the followed discriminator maps)
        assert train.start(), train.message.text()
        wait(lambda: train.idle)
        # 3. translate the labels with the trained model (file path filled in by the training)
        wait(lambda: trans.idle and trans.model is not None)
        trans.input_layer.select("nuclei labels")
        trans.tile_form.set("tile", 256)
        trans.tile_form.set("overlap", 32)
        assert trans.run(), trans.message.text()
        wait(lambda: trans.idle)
        out = trans.last_layer
        # 4. discriminator maps of the real and the fake pair, and one cell's receptive field
        disc.follow.value = False
        disc.input_layer.select("nuclei labels")
        disc.target_layer.select("nuclei")
        assert disc.compute(), disc.message.text()
        wait(lambda: disc.idle)
        fake = disc.map_layers["fake"]
        cell = (int(fake.data.shape[0] * 0.4), int(fake.data.shape[1] * 0.55))
        position = [t + s * c for t, s, c in zip(fake.translate, fake.scale, cell)]
        disc.select_cell(position)

        def pair_view():
            show_only(viewer, {"nuclei", "nuclei labels", "pix2pix: examples A", "pix2pix: examples B"})
            viewer.reset_view()

        def train_view():
            show_only(viewer, {"nuclei", "pix2pix: preview input", "pix2pix: preview fake",
                               "pix2pix: preview target"})
            preview = viewer.layers["pix2pix: preview fake"]
            viewer.reset_view()
            viewer.camera.center = (float(preview.translate[0]) + 16, 104)
            viewer.camera.zoom = 1.4
            train.scroll.ensureWidgetVisible(train.plot)  # the loss plot, below the options

        def translate_view():
            show_only(viewer, {"nuclei labels", out.name, "nuclei"})
            viewer.canvas.grid.enabled = True
            viewer.canvas.grid.stride = 1
            viewer.reset_view()

        def disc_view():
            viewer.canvas.grid.enabled = False
            show_only(viewer, {"nuclei", fake.name, "pix2pix: receptive field"})
            viewer.layers.selection.active = fake
            viewer.reset_view()
            viewer.camera.zoom *= 2.5
            viewer.camera.center = position

        views = [("pair-data", pair, pair_view), ("train", train, train_view),
                 ("translate", trans, translate_view), ("discriminator", disc, disc_view)]
        for width, height in SIZES:
            viewer.window.resize(width, height)
            wait(lambda: True)
            for name, widget, view in views:
                view()
                shot(viewer, widget, args.out / f"{name}-{width}x{height}.png")
        viewer.canvas.grid.enabled = False
        viewer.close()
    finally:
        if display is not None:
            display.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
