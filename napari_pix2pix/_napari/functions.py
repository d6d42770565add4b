"""Plain napari functions: layers in, layer data out (``napari.types.LayerDataTuple``).

They are what the Translate and Discriminator widgets run, and napari also offers them as
magicgui function widgets (``autogenerate`` in ``napari.yaml``): napari adds the returned layer
itself, so other function widgets and plugins can chain from it. Called from Python they work
without a GUI::

    from napari_pix2pix._napari.functions import translate_layer
    data, meta, kind = translate_layer(viewer.layers["nuclei"], "model.safetensors", tile=256)
    viewer.add_layer(napari.layers.Layer.create(data, meta, kind))

torch is imported on first call, not at import. (No ``from __future__ import annotations`` here:
magicgui reads the real annotation objects.)
"""

import threading
from pathlib import Path
from typing import Annotated, Any, Callable

import napari.layers
import napari.types
import numpy as np

from .. import __version__
from ..config import TileConfig
from ..errors import InputError, ModelFileError
from ._form import magicgui_options
from ._layers import (box_rectangle, channel_axis, current_plane, helper_name, layer_array, map_placement, spatial,
                      symmetric_limits, unique_name)

MAP_COLORMAP = "PiYG"  # diverging: pink = judged fake (logit < 0), green = judged real (> 0)

_DEFAULT_TILE = TileConfig()
_MODELS: dict[tuple, Any] = {}
_MODELS_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------- models
def file_key(path) -> tuple | None:
    """``(resolved path, size, mtime_ns)`` of a file (None when it is missing): what tells that a
    model file changed on disk."""
    try:
        p = Path(path).expanduser()
        stat = p.stat()
    except (OSError, TypeError):
        return None
    return str(p.resolve()), stat.st_size, stat.st_mtime_ns


def layer_channels(layer) -> int:
    """Channels the engine sees in ``layer``: the colour channels of an RGB layer, else 1."""
    if getattr(layer, "rgb", False):
        return int(np.shape(layer.data[0] if getattr(layer, "multiscale", False) else layer.data)[-1])
    return 1


def model_accepts(model, layer) -> bool:
    """Whether ``model`` can take ``layer`` as its input: a Labels layer when the model's source
    is labels, otherwise an image with the model's number of input channels."""
    kind = layer.__class__.__name__
    if model.is_labels("a"):
        return kind == "Labels"
    return kind == "Image" and layer_channels(layer) == int(model.config.in_channels)


def model_defaults(model) -> dict:
    """Inference settings a model file stores (``tile``, ``overlap``, ``mode``), when it does,
    plus a tile no smaller than the patches it was trained on."""
    import json

    meta = getattr(model.checkpoint, "metadata", None) or {}
    out = {}
    try:
        stored = json.loads(meta.get("inference") or "{}")
    except ValueError:
        stored = {}
    for key in ("tile", "overlap", "mode"):
        if key in stored:
            out[key] = stored[key]
    training = getattr(model.checkpoint, "training", None)
    crop = getattr(training, "crop", None)
    if "tile" not in out and crop and _DEFAULT_TILE.tile and crop > _DEFAULT_TILE.tile:
        out["tile"] = int(crop)
    return out


def load_model(path, device: str = "auto"):
    """Load a model file with :meth:`Pix2PixModel.load`, cached by path, size, mtime and device
    (the last three models stay in memory)."""
    from ..model import Pix2PixModel

    if path is None or str(path).strip() in ("", "."):
        raise ModelFileError("no model file is chosen.", "choose a .safetensors model trained with napari-pix2pix.")
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelFileError(f"model file {p} does not exist.", "choose an existing .safetensors model file.")
    stat = p.stat()
    key = (str(p.resolve()), stat.st_size, stat.st_mtime_ns, device)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
    if model is None:
        model = Pix2PixModel.load(p, device=device)
        with _MODELS_LOCK:
            while len(_MODELS) >= 3:
                _MODELS.pop(next(iter(_MODELS)))
            _MODELS[key] = model
    return model


def model_summary(model) -> str:
    """A few lines for the widgets: architecture, channels, receptive field, training data."""
    info = model.info()
    trained = info.get("trained_on") or {}
    kind = trained.get("kind", "unknown data")
    items = trained.get("items") or trained.get("files") or []
    what = f"{kind}" + (f", {len(items)} item(s)" if items else "")
    if trained.get("a") and trained.get("b"):
        what += f": {Path(str(trained['a'])).name} -> {Path(str(trained['b'])).name}"
    rf = info.get("receptive_field")
    lines = [
        f"{info['generator']} (ngf {info['ngf']}, {info['parameters']:,} parameters), "
        f"{info['in_channels']} -> {info['out_channels']} channel(s)",
        f"D: {info['discriminator']}"
        + (f" x{info['discriminator_layers']}" if info["discriminator"] == "patch" else "")
        + (f", receptive field {rf} px" if isinstance(rf, int) else f", receptive field: {rf}"),
        f"trained {info['steps']} steps on {what}",
        f"output: {'labels' if model.is_labels('b') else 'image'}",
    ]
    if info.get("sha256"):
        lines.append(f"sha256 {info['sha256'][:16]}...")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- translate
def _layer_extras(layer) -> dict:
    extras = {}
    for key in ("units", "axis_labels"):
        value = getattr(layer, key, None)
        if value is not None:
            extras[key] = tuple(str(v) for v in value) if key == "units" else tuple(value)
    return extras


def translate_layer_data(layer, model, *, model_path=None, tile: int = _DEFAULT_TILE.tile,
                         overlap: int = _DEFAULT_TILE.overlap, mode: str = _DEFAULT_TILE.mode,
                         device: str = _DEFAULT_TILE.device, batch_size: int = _DEFAULT_TILE.batch_size,
                         progress: Callable[[int, int], None] | None = None,
                         cancel: Callable[[], bool] | None = None) -> napari.types.LayerDataTuple:
    """Translate ``layer`` (2-D or a stack) with ``model`` (a loaded ``Pix2PixModel``).

    The result is named after the input and the model, keeps the input's scale, translate and
    units, and records the model file, its sha256 and the parameters in ``metadata['pix2pix']``.
    """
    from ..inference import translate

    config = TileConfig(tile=int(tile), overlap=int(overlap), mode=mode, device=device, batch_size=int(batch_size))
    image = layer_array(layer)
    out = translate(model, image, config=config, channel_axis=channel_axis(layer), output_dtype="target",
                    progress=progress, cancel=cancel)
    path = model_path or getattr(model, "path", None)
    stem = Path(path).stem if path else f"model-step{model.step}"
    labels = bool(model.is_labels("b")) and out.dtype.kind in "biu" and out.ndim == image.ndim - (
        1 if channel_axis(layer) is not None else 0)
    meta = {
        "name": f"{layer.name} [{stem}]",
        "scale": tuple(layer.scale),
        "translate": tuple(layer.translate),
        **_layer_extras(layer),
        "metadata": {"pix2pix": {
            "model_file": str(path) if path else None,
            "model_sha256": model.sha256,
            "model_step": int(model.step),
            "generator": model.config.generator,
            "source_layer": layer.name,
            "tile": config.tile, "overlap": config.overlap, "mode": config.mode,
            "device": config.device, "batch_size": config.batch_size,
            "napari_pix2pix_version": __version__,
        }},
    }
    if not labels and out.ndim == image.ndim and out.shape[-1:] in ((3,), (4,)) and out.ndim >= 3:
        meta["rgb"] = True
    return out, meta, "labels" if labels else "image"


def _input_layers(widget=None) -> list:
    """Choices of the function widgets' input: image and labels layers, helper layers left out
    (a label -> image model takes a Labels layer)."""
    import napari

    from ._layers import image_layers, is_helper

    viewer = napari.current_viewer()
    return [(ly.name, ly) for ly in image_layers(viewer) if not is_helper(ly)] if viewer is not None else []


InputLayer = Annotated[napari.layers.Layer, {"choices": _input_layers}]


def translate_layer(
    image: InputLayer,
    model_path: Annotated[Path, {"filter": "*.safetensors"}] = Path(),
    tile: Annotated[int, magicgui_options(TileConfig, "tile")] = _DEFAULT_TILE.tile,
    overlap: Annotated[int, magicgui_options(TileConfig, "overlap")] = _DEFAULT_TILE.overlap,
    mode: Annotated[str, magicgui_options(TileConfig, "mode")] = _DEFAULT_TILE.mode,
    device: Annotated[str, magicgui_options(TileConfig, "device")] = _DEFAULT_TILE.device,
) -> napari.types.LayerDataTuple:
    """Translate an image (or labels) layer with a Pix2Pix model file; napari adds the result as
    a new layer with a unique name (``nuclei [model]``, then ``nuclei [model] 2``).

    ``tile``/``overlap``: tile side and shared border in pixels (0: whole image at once).
    ``mode``: ``eval`` (deterministic) or ``train`` (the paper's test-time dropout/batch stats).
    """
    import napari

    model = load_model(model_path, device)
    data, meta, kind = translate_layer_data(image, model, model_path=model_path, tile=tile, overlap=overlap,
                                            mode=mode, device=device)
    meta = {**meta, "name": unique_name(napari.current_viewer(), meta["name"])}
    _record_workflow(image, (data, meta, kind), model_path, tile, overlap, mode)
    return data, meta, kind


def quality_maps_layer(
    image: InputLayer,
    target: InputLayer,
    model_path: Annotated[Path, {"filter": "*.safetensors"}] = Path(),
    tile: Annotated[int, magicgui_options(TileConfig, "tile")] = _DEFAULT_TILE.tile,
    overlap: Annotated[int, magicgui_options(TileConfig, "overlap")] = _DEFAULT_TILE.overlap,
    mode: Annotated[str, magicgui_options(TileConfig, "mode")] = _DEFAULT_TILE.mode,
) -> list[napari.types.LayerDataTuple]:
    """The Quality view: SSIM map and absolute-error map of the model's translation of ``image``
    against ``target`` (same size), as layers placed over ``image``."""
    from ..evaluate import quality_maps

    model = load_model(model_path, "auto")
    maps = quality_maps(model, layer_array(image), layer_array(target),
                        config=TileConfig(tile=int(tile), overlap=int(overlap), mode=mode),
                        channel_axis=channel_axis(image))
    place = {"scale": tuple(spatial(image.scale, maps["ssim_map"].ndim)),
             "translate": tuple(spatial(image.translate, maps["ssim_map"].ndim)),
             "metadata": {"pix2pix": {"model_file": str(model_path), "model_sha256": model.sha256,
                                      "source_layer": image.name, "target_layer": target.name}}}
    error = maps["abs_error"]
    return [(maps["ssim_map"], {"name": f"{image.name} SSIM", "colormap": "viridis",
                                "contrast_limits": (0.0, 1.0), **place}, "image"),
            (error, {"name": f"{image.name} |error|", "colormap": "magma",
                     "contrast_limits": (0.0, max(float(error.max()), 1e-6)), **place}, "image")]


def _record_workflow(image, data, model_path, tile, overlap, mode) -> None:
    """Record the step in napari-workflows' graph when that plugin is installed (else nothing)."""
    try:
        from napari_workflows import WorkflowManager
    except Exception:  # noqa: BLE001 - optional plugin, absent: nothing to record
        return
    try:
        import napari

        viewer = napari.current_viewer()
        if viewer is None:
            return
        manager = WorkflowManager.install(viewer)
        manager.workflow.set(data[1]["name"], translate_layer, image.name, model_path=Path(model_path), tile=tile,
                             overlap=overlap, mode=mode)
    except Exception:  # noqa: BLE001 - recording is best effort, never breaks translation
        return


# ---------------------------------------------------------------------- discriminator maps
def map_layer_data(dmap, layer, *, name: str, limits=None, extra_meta: dict | None = None
                   ) -> napari.types.LayerDataTuple:
    """One DiscriminatorMap as an image layer over ``layer``: diverging colormap, contrast limits
    symmetric around 0 on the logits, each cell over the centre of its receptive field."""
    scale, translate = map_placement(dmap, layer)
    meta = {
        "name": name,
        "scale": scale,
        "translate": translate,
        "colormap": MAP_COLORMAP,
        "contrast_limits": list(limits or symmetric_limits(dmap.logits)),
        "opacity": 0.6,
        "blending": "translucent",
        "interpolation2d": "nearest",
        "metadata": {"pix2pix_dmap": {
            "mean_score": dmap.mean_score, "fraction_real": dmap.fraction_real, "receptive_field": dmap.rf,
            "jump": dmap.jump, "start": dmap.start, "image_shape": list(dmap.image_shape),
            "source_layer": getattr(layer, "name", None), **(extra_meta or {})}},
    }
    return np.asarray(dmap.logits, np.float32), meta, "image"


def layer_planes(source_layer, target_layer=None, viewer=None):
    """The current 2-D planes of the source and target layers (checked to be the same size)."""
    source = current_plane(source_layer, viewer)
    target = current_plane(target_layer, viewer) if target_layer is not None else None
    if target is not None and source.shape[:2] != target.shape[:2]:
        raise InputError(f"the input layer {source_layer.name!r} ({source.shape[0]}x{source.shape[1]}) and the "
                         f"target layer {target_layer.name!r} ({target.shape[0]}x{target.shape[1]}) differ in size.",
                         "choose a target of the same height and width, or use the generated output.")
    return source, target


def compute_maps(model, source, target=None, *, channel_axis_source=None, channel_axis_target=None,
                 mode: str = "eval"):
    """The engine's ``discriminator_maps`` on arrays (safe to run in a worker thread)."""
    from ..discriminator_map import discriminator_maps

    return discriminator_maps(model, source, target, channel_axis_source=channel_axis_source,
                              channel_axis_target=channel_axis_target, mode=mode)


def maps_layer_data(real, fake, source_layer, target_layer=None, *, model=None, model_path=None,
                    suffix: str = "") -> list:
    """Layer data for the real map (when computed) and the fake map over ``source_layer``,
    sharing one symmetric colour scale."""
    limits = symmetric_limits(fake.logits, real.logits if real is not None else None)
    extra = {}
    if model is not None:
        extra = {"model_file": str(model_path or getattr(model, "path", None) or "") or None,
                 "model_sha256": model.sha256}
    name = getattr(source_layer, "name", "image")
    layers = []
    if real is not None:
        layers.append(map_layer_data(real, source_layer, name=helper_name(f"{name} D real{suffix}"), limits=limits,
                                     extra_meta={**extra, "pair": "real",
                                                 "target_layer": getattr(target_layer, "name", None)}))
    layers.append(map_layer_data(fake, source_layer, name=helper_name(f"{name} D fake{suffix}"), limits=limits,
                                 extra_meta={**extra, "pair": "fake"}))
    return layers


def discriminator_map_data(model, source_layer, target_layer=None, *, viewer=None, mode: str = "eval",
                           model_path=None):
    """``(layer data list, real map or None, fake map)`` for the current 2-D plane of the layers."""
    source, target = layer_planes(source_layer, target_layer, viewer)
    real, fake = compute_maps(model, source, target, channel_axis_source=channel_axis(source_layer),
                              channel_axis_target=channel_axis(target_layer) if target_layer is not None else None,
                              mode=mode)
    return maps_layer_data(real, fake, source_layer, target_layer, model=model, model_path=model_path), real, fake


def preview_maps(event, geometry):
    """DiscriminatorMaps ``(real, fake)`` of a training PreviewEvent, placed like the engine's."""
    from ..discriminator_map import DiscriminatorMap

    shape = event.source.shape[-2:]
    return (DiscriminatorMap.from_geometry(event.d_real, geometry, shape),
            DiscriminatorMap.from_geometry(event.d_fake, geometry, shape))


def discriminator_map_layer(
    image: InputLayer,
    target: napari.layers.Image | None = None,
    model_path: Annotated[Path, {"filter": "*.safetensors"}] = Path(),
    mode: Annotated[str, magicgui_options(TileConfig, "mode")] = _DEFAULT_TILE.mode,
) -> list[napari.types.LayerDataTuple]:
    """PatchGAN maps of the model's discriminator over ``image``: for the real pair (with
    ``target``) and for the fake pair (with the generator's output), as diverging-colormap
    layers placed over the centres of the cells' receptive fields."""
    model = load_model(model_path, "auto")
    layers, _, _ = discriminator_map_data(model, image, target, mode=mode, model_path=model_path)
    return layers


def receptive_field_rectangle(dmap, layer, position) -> np.ndarray | None:
    """Corners (world coordinates) of the receptive field of the map cell under world
    ``position`` on ``layer``; None when the position is outside the map."""
    from ._layers import world_to_pixel

    row, col = world_to_pixel(position, layer)
    cell = dmap.cell_at(row, col)
    if cell is None:
        return None
    return box_rectangle(dmap.cell_box(*cell), layer)


__all__ = ["translate_layer", "quality_maps_layer", "model_accepts", "model_defaults", "file_key", "discriminator_map_layer", "translate_layer_data", "discriminator_map_data",
           "map_layer_data", "load_model", "model_summary", "receptive_field_rectangle", "spatial"]
