"""Screenshots of the four napari widgets in use (docs/screenshots/*.png).

Run from the repository root::

    python docs/make_screenshots.py                 # starts a virtual display if none exists
    xvfb-run -a -s "-screen 0 1400x900x24" python docs/make_screenshots.py

It opens napari with the 2-D nuclei sample, docks the widgets (as the demo does), pairs
labels -> image, trains a small model for a few hundred CPU steps, translates the labels with
it and shows the discriminator's maps, saving one screenshot per widget.
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

    display = Display(visible=False, size=(1400, 900), color_depth=24)
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
    for dock in viewer.window._dock_widgets.values():
        if dock.isAncestorOf(widget):
            dock.show()
            dock.raise_()
    wait(lambda: True)
    viewer.window.screenshot(str(path), canvas_only=False)
    print("wrote", path)


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
        viewer.window.resize(1100, 700)
        viewer.open_sample("napari-pix2pix", "nuclei-2d")
        widgets = dock_widgets(viewer)
        prefill(widgets, "nuclei-2d", {"steps": args.steps, "preview_every": 20})
        pair, train = widgets["Pair data"], widgets["Train"]
        disc, trans = widgets["Discriminator"], widgets["Translate"]

        # 1. pairing: report and example patches
        assert pair.pair(), pair.message.text()
        viewer.reset_view()
        shot(viewer, pair, args.out / "pair-data.png")

        # 2. training: loss plot, previews (and the followed discriminator maps)
        folder = Path(tempfile.mkdtemp(prefix="pix2pix-shots-"))
        train.folder.value = str(folder)
        assert train.start(), train.message.text()
        wait(lambda: train.worker is None)
        show_only(viewer, {"nuclei", "pix2pix preview input", "pix2pix preview fake", "pix2pix preview target",
                           "pix2pix examples A", "pix2pix examples B"})
        preview = viewer.layers["pix2pix preview fake"]
        viewer.reset_view()
        viewer.camera.center = (float(preview.translate[0]) + 16, 104)
        viewer.camera.zoom = 1.4
        shot(viewer, train, args.out / "train.png")

        # 3. translate the labels with the trained model (file path filled in by the training)
        for layer in [ly for ly in viewer.layers if ly.name.startswith("pix2pix")]:
            viewer.layers.remove(layer)
        trans.input_layer.select("nuclei labels")
        trans.tile.value, trans.overlap.value = 256, 32
        assert trans.run(), trans.message.text()
        wait(lambda: trans.worker is None)
        out = trans.last_layer
        show_only(viewer, {"nuclei labels", out.name, "nuclei"})
        viewer.grid.enabled = True
        viewer.grid.stride = 1
        viewer.reset_view()
        shot(viewer, trans, args.out / "translate.png")
        viewer.grid.enabled = False

        # 4. discriminator maps of the real and the fake pair, and one cell's receptive field
        disc.follow.value = False
        disc.input_layer.select("nuclei labels")
        disc.target_layer.select("nuclei")
        assert disc.compute(), disc.message.text()
        wait(lambda: disc.worker is None)
        fake = disc.map_layers["fake"]
        show_only(viewer, {"nuclei", fake.name})
        viewer.layers.selection.active = fake
        cell = (int(fake.data.shape[0] * 0.4), int(fake.data.shape[1] * 0.55))
        position = [t + s * c for t, s, c in zip(fake.translate, fake.scale, cell)]
        disc.select_cell(position)
        viewer.layers["pix2pix receptive field"].visible = True
        viewer.reset_view()
        viewer.camera.zoom *= 2.5
        viewer.camera.center = position
        shot(viewer, disc, args.out / "discriminator.png")
        viewer.close()
    finally:
        if display is not None:
            display.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
