"""The demo: napari with a sample loaded, the four widgets docked and small training settings.

``python -m napari_pix2pix demo`` trains headless, then calls :func:`show_demo` when a display exists;
from Python::

    from napari_pix2pix._napari.demo import open_demo_viewer
    viewer = open_demo_viewer("nuclei-2d")
    napari.run()
"""

from __future__ import annotations

PLUGIN = "napari-pix2pix"
WIDGETS = ("Pair data", "Train", "Discriminator", "Translate")

# Small but sensible: learns something visible on a laptop CPU in a few minutes.
DEMO_SETTINGS = {
    "crop": 64, "validation": 0.1,
    "generator": "unet_64", "ngf": 16, "ndf": 16, "discriminator_layers": 3,
    "steps": 500, "batch_size": 4, "preview_every": 25,
}

_SAMPLE_PAIRS = {  # sample key -> (A layer, B layer)
    "nuclei-2d": ("nuclei labels", "nuclei"),
    "nuclei-3d": ("nuclei 3d labels", "nuclei 3d"),
    "astronaut-edges": ("astronaut edges", "astronaut"),
}


def dock_widgets(viewer, names=WIDGETS) -> dict:
    """Dock the plugin's widgets on ``viewer``; returns ``{display name: widget}``."""
    widgets = {}
    for name in names:
        _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=name != names[0])
        widgets[name] = widget
    return widgets


def prefill(widgets: dict, dataset_name: str = "nuclei-2d", settings: dict | None = None) -> None:
    """Choose the sample's layers and tiny-but-sensible settings in the docked widgets.

    The nuclei samples are paired labels -> image (A = labels, B = the microscopy image), the
    astronaut sample edges -> photo."""
    s = {**DEMO_SETTINGS, **(settings or {})}
    pair, train = widgets.get("Pair data"), widgets.get("Train")
    a_name, b_name = _SAMPLE_PAIRS.get(dataset_name, (None, None))
    if pair is not None:
        if a_name and b_name:
            pair.layer_a.select(a_name)
            pair.layer_b.select(b_name)
        pair.crop.value = s["crop"]
        pair.validation.value = s["validation"]
    if train is not None:
        for key in ("generator", "ngf", "ndf", "discriminator_layers", "steps", "batch_size", "preview_every"):
            getattr(train, key).value = s[key]
        if not train.train_form.values().get("checkpoint_dir"):
            import tempfile

            train.checkpoint_dir.value = s.get("checkpoint_dir") or tempfile.mkdtemp(prefix="napari-pix2pix-demo-")
    for key in ("Translate", "Discriminator"):
        widget = widgets.get(key)
        if widget is not None and a_name:
            widget.input_layer.select(a_name)
    disc = widgets.get("Discriminator")
    if disc is not None:
        disc.follow.value = True


def open_demo_viewer(dataset_name: str = "nuclei-2d", show: bool = True):
    """Open napari, load sample ``dataset_name`` (nuclei-2d, nuclei-3d or astronaut-edges), dock
    the four widgets and pre-fill small training settings. Returns the viewer (call
    ``napari.run()`` to hand control to the user)."""
    return _open(dataset_name, show)[0]


def _open(dataset_name: str, show: bool):
    import napari

    viewer = napari.Viewer(title=f"napari-pix2pix demo ({dataset_name})", show=show)
    viewer.open_sample(PLUGIN, dataset_name)
    widgets = dock_widgets(viewer)
    prefill(widgets, dataset_name)
    viewer.window.activate()  # public: raise the window and give it focus
    return viewer, widgets


def show_demo(summary: dict, show: bool = True, run: bool = True):
    """After the CLI demo's headless training (:func:`napari_pix2pix.demo.run_demo`): open the demo
    viewer, add the translation as a layer and point the Translate widget at the trained model.
    Returns ``(viewer, {widget name: widget})``."""
    import napari

    viewer, widgets = _open("nuclei-2d", show)
    viewer.add_image(summary["translated"], name="translated (demo model)", colormap="magma")
    widgets["Translate"].model_path.value = summary["model_path"]
    print("demo: napari is open with the sample, the translation and the Pix2Pix widgets docked.")
    if run:
        napari.run()
    return viewer, widgets
